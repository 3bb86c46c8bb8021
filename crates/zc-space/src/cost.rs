//! Analytic #params and FLOPs of the network a cell is stacked into.
//!
//! The network (the reference code's variant, C = 16, N = 5): stem Conv3x3(3 -> 16, no bias) +
//! BN(16, affine); 5 cells at 16 channels; reduction block 16 -> 32; 5 cells at 32; reduction
//! 32 -> 64; 5 cells at 64; head BN(64, affine) -> ReLU -> global average pool ->
//! Linear(64 -> classes, with bias). Cell convolutions carry a bias and a non-affine BN.
//! A reduction block is Conv3x3 stride 2 (no bias) + BN(affine) -> Conv3x3 (no bias) +
//! BN(affine), with shortcut AvgPool 2x2 stride 2 -> Conv1x1 (no bias). Only the active ops
//! of a cell (those on its edges) are counted; `none`, `skip_connect` and `avg_pool_3x3` have
//! no parameters.

use crate::cell::Cell;
use crate::op::Op;

/// Input channels of the stem.
const IMAGE_CHANNELS: u64 = 3;
/// Channels of the three stages of the real network (initial channels 16).
const STAGE_CHANNELS: [u64; 3] = [16, 32, 64];
/// Cells per stage.
const CELLS_PER_STAGE: u64 = 5;
/// Window of the reduction shortcut's average pool (2x2).
const SHORTCUT_POOL_WINDOW: u64 = 4;

/// Weights (plus bias) of a `k x k` convolution from `cin` to `cout` channels.
fn conv_params(cin: u64, cout: u64, k: u64, bias: bool) -> u64 {
    cin * cout * k * k + if bias { cout } else { 0 }
}

/// Parameters of an affine BatchNorm over `c` channels (gamma and beta).
fn affine_bn_params(c: u64) -> u64 {
    2 * c
}

/// The consecutive (input, output) channel pairs of the two reduction blocks.
fn reductions(stages: [u64; 3]) -> impl Iterator<Item = (u64, u64)> {
    [(stages[0], stages[1]), (stages[1], stages[2])].into_iter()
}

/// Adds up cost terms, saturating at `u64::MAX` instead of overflowing.
fn total(terms: impl IntoIterator<Item = u64>) -> u64 {
    terms.into_iter().fold(0, u64::saturating_add)
}

impl Cell {
    /// The convolution kernel sizes of the cell's active conv ops.
    fn conv_kernels(&self) -> impl Iterator<Item = u64> {
        self.ops()
            .into_iter()
            .filter_map(Op::kernel_size)
            .map(|k| k as u64)
    }

    /// The number of trainable parameters of the whole network for `num_classes` classes:
    /// conv and linear weights and biases plus affine BN parameters, active ops only.
    pub fn param_count(&self, num_classes: usize) -> u64 {
        let classes = num_classes as u64;
        let stem = conv_params(IMAGE_CHANNELS, STAGE_CHANNELS[0], 3, false)
            + affine_bn_params(STAGE_CHANNELS[0]);
        let cells = STAGE_CHANNELS.iter().map(|&c| {
            CELLS_PER_STAGE
                * self
                    .conv_kernels()
                    .map(|k| conv_params(c, c, k, true))
                    .sum::<u64>()
        });
        let reduction = reductions(STAGE_CHANNELS).map(|(cin, cout)| {
            conv_params(cin, cout, 3, false)
                + affine_bn_params(cout)
                + conv_params(cout, cout, 3, false)
                + affine_bn_params(cout)
                + conv_params(cin, cout, 1, false)
        });
        let last = STAGE_CHANNELS[2];
        let head = [
            affine_bn_params(last),
            classes.saturating_mul(last),
            classes,
        ];
        total([stem].into_iter().chain(cells).chain(reduction).chain(head))
    }

    /// The FLOPs of one forward pass of one `resolution x resolution` image through the
    /// whole network with `num_classes` classes, active ops only.
    ///
    /// Convention: multiply-accumulates of every convolution (output elements times
    /// `c_in * k * k`) and linear layer (`in * out`), plus one addition per output element
    /// of every layer with a bias, plus `k * k` per output element of every pooling layer
    /// (the cells' 3x3 average pools, the reductions' 2x2 shortcut pools, and the head's
    /// global average pool, whose window is the whole last feature map). BatchNorm, ReLU,
    /// identities and the additions joining edges and branches are not counted.
    ///
    /// Stage 1 runs at `resolution`, stage 2 at `⌈resolution / 2⌉`, stage 3 at
    /// `⌈resolution / 4⌉` (the stride-2 convolutions' output sizes; the network itself
    /// needs a resolution divisible by 4, e.g. 32 for CIFAR or 16 for ImageNet16-120).
    pub fn flops(&self, num_classes: usize, resolution: usize) -> u64 {
        self.flops_with_channels(num_classes, resolution, STAGE_CHANNELS[0] as usize)
    }

    /// [`Cell::flops`] of the network with `channels` initial channels (stages `channels`,
    /// `2 * channels`, `4 * channels`): the reduced networks of EcoNAS-style training.
    pub fn flops_with_channels(
        &self,
        num_classes: usize,
        resolution: usize,
        channels: usize,
    ) -> u64 {
        let c0 = channels as u64;
        let stages = [c0, 2 * c0, 4 * c0];
        let classes = num_classes as u64;
        let side = resolution as u64;
        let sides = [side, side.div_ceil(2), side.div_ceil(4)];
        let areas = sides.map(|s| s.saturating_mul(s));
        let stem = areas[0].saturating_mul(conv_params(IMAGE_CHANNELS, stages[0], 3, false));
        let cells = stages.iter().zip(areas).map(|(&c, area)| {
            let per_position = total(self.ops().into_iter().map(|op| match op.kernel_size() {
                Some(k) => conv_params(c, c, k as u64, true),
                None if op == Op::AvgPool3x3 => c * 9,
                None => 0,
            }));
            area.saturating_mul(CELLS_PER_STAGE * per_position)
        });
        let reduction = reductions(stages)
            .zip(&areas[1..])
            .map(|((cin, cout), &area)| {
                area.saturating_mul(
                    conv_params(cin, cout, 3, false)
                        + conv_params(cout, cout, 3, false)
                        + cin * SHORTCUT_POOL_WINDOW
                        + conv_params(cin, cout, 1, false),
                )
            });
        let last = stages[2];
        let head = [
            areas[2].saturating_mul(last),
            classes.saturating_mul(last + 1),
        ];
        total([stem].into_iter().chain(cells).chain(reduction).chain(head))
    }
}
