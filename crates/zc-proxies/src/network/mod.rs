//! The NB201 network of the reference code (C=16, N=5; any initial channel count C for
//! reduced training), built from a [`Cell`] with only its active ops.
//!
//! The network is described here as data ([`Nb201Network`]: parameters and weight layers named
//! exactly as the reference's PyTorch state dict) and run by the functional forward pass in
//! [`forward`]. Parameter values live in [`Weights`].

pub mod forward;
pub mod ops;
pub(crate) mod sweep;
mod weights;

pub(crate) use weights::standard_normal;
pub use weights::{Minibatch, Weights, load_batches};

use zc_space::{Cell, NUM_EDGES, Op};

/// Initial channel count of the first stage.
pub const STEM_CHANNELS: usize = 16;
/// Cells per stage.
pub const CELLS_PER_STAGE: usize = 5;
/// BatchNorm epsilon (PyTorch default).
pub const BN_EPS: f64 = 1e-5;

/// What a parameter is, which fixes its PyTorch-default initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRole {
    /// Conv or Linear weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Weight {
        /// Input channels times kernel area (or input features).
        fan_in: usize,
    },
    /// Conv or Linear bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Bias {
        /// Fan-in of the layer the bias belongs to.
        fan_in: usize,
    },
    /// BatchNorm scale, initialised to 1.
    BnGamma,
    /// BatchNorm shift, initialised to 0.
    BnBeta,
}

/// One learnable tensor of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name in the reference state dict, e.g. `stack_cell1.0.options.7.op.1.weight`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Role (and so initialisation).
    pub role: ParamRole,
}

impl ParamSpec {
    /// Number of scalars.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Geometry of a Conv2d or Linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// 2-D convolution, square kernel, symmetric padding.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Fully connected layer.
    Linear {
        /// Input features.
        d_in: usize,
        /// Output features.
        d_out: usize,
    },
}

/// A Conv2d or Linear layer: the unit every per-layer proxy reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightLayer {
    /// Module name in the reference, e.g. `reduction1.conv_a.op.1`.
    pub name: String,
    /// Geometry.
    pub kind: LayerKind,
    /// Index of the weight in [`Nb201Network::params`].
    pub weight: usize,
    /// Index of the bias, if the layer has one.
    pub bias: Option<usize>,
}

impl WeightLayer {
    /// Weights per output channel (C_in * k * k, or d_in): how often fisher counts a channel.
    pub fn fan_in(&self) -> usize {
        match self.kind {
            LayerKind::Conv { c_in, kernel, .. } => c_in * kernel * kernel,
            LayerKind::Linear { d_in, .. } => d_in,
        }
    }

    /// A convolution's weight shape `[C_out, C_in, k, k]` and stride.
    ///
    /// # Panics
    /// If the layer is linear (the network's structure names which layers are convolutions).
    pub fn conv_shape(&self) -> ([usize; 4], usize) {
        let LayerKind::Conv {
            c_in,
            c_out,
            kernel,
            stride,
        } = self.kind
        else {
            panic!("layer {} is not a convolution", self.name)
        };
        ([c_out, c_in, kernel, kernel], stride)
    }
}

/// A BatchNorm layer: affine ones carry (gamma, beta) parameter indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// Batch statistics, no affine parameters (the cell convs).
    Plain,
    /// Batch statistics then `gamma * x + beta`.
    Affine {
        /// Index of gamma in [`Nb201Network::params`].
        gamma: usize,
        /// Index of beta.
        beta: usize,
    },
}

/// One active op on a cell edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeOp {
    /// Identity.
    Skip,
    /// 3x3 average pool, stride 1, padding not counted.
    AvgPool,
    /// ReLU, conv (index into [`Nb201Network::layers`]), non-affine BN.
    Conv(usize),
}

/// A stage block of the network body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A search cell: the active op of each edge (`None` for `none`).
    Cell([Option<EdgeOp>; NUM_EDGES]),
    /// The ResNet basic block that halves resolution and doubles channels.
    Reduction {
        /// ReLU, conv 3x3 stride 2, affine BN.
        conv_a: (usize, Norm),
        /// ReLU, conv 3x3, affine BN.
        conv_b: (usize, Norm),
        /// AvgPool 2x2 stride 2, then this conv 1x1 (no BN).
        shortcut: usize,
    },
}

/// The NB201 network for one cell and class count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nb201Network {
    cell: Cell,
    num_classes: usize,
    params: Vec<ParamSpec>,
    layers: Vec<WeightLayer>,
    stem: (usize, Norm),
    blocks: Vec<Block>,
    head_norm: Norm,
    classifier: usize,
}

/// Reference index of an op in the supernet's option list (`model_OPS_order`).
fn reference_option(op: Op) -> usize {
    match op {
        Op::None => 0,
        Op::AvgPool3x3 => 1,
        Op::NorConv3x3 => 2,
        Op::NorConv1x1 => 3,
        Op::SkipConnect => 4,
    }
}

/// Accumulates parameters and layers in reference module order.
struct Builder {
    params: Vec<ParamSpec>,
    layers: Vec<WeightLayer>,
}

impl Builder {
    fn param(&mut self, name: String, shape: Vec<usize>, role: ParamRole) -> usize {
        self.params.push(ParamSpec { name, shape, role });
        self.params.len() - 1
    }

    fn conv(
        &mut self,
        name: String,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        bias: bool,
    ) -> usize {
        let fan_in = c_in * kernel * kernel;
        let weight = self.param(
            format!("{name}.weight"),
            vec![c_out, c_in, kernel, kernel],
            ParamRole::Weight { fan_in },
        );
        let bias = bias.then(|| {
            self.param(
                format!("{name}.bias"),
                vec![c_out],
                ParamRole::Bias { fan_in },
            )
        });
        self.layers.push(WeightLayer {
            name,
            kind: LayerKind::Conv {
                c_in,
                c_out,
                kernel,
                stride,
            },
            weight,
            bias,
        });
        self.layers.len() - 1
    }

    fn affine_norm(&mut self, name: &str, channels: usize) -> Norm {
        let gamma = self.param(format!("{name}.weight"), vec![channels], ParamRole::BnGamma);
        let beta = self.param(format!("{name}.bias"), vec![channels], ParamRole::BnBeta);
        Norm::Affine { gamma, beta }
    }
}

impl Nb201Network {
    /// Builds the network of `cell` for `num_classes` outputs (active ops only).
    pub fn new(cell: Cell, num_classes: usize) -> Self {
        Self::with_channels(cell, num_classes, STEM_CHANNELS)
    }

    /// The network with `stem_channels` initial channels (stages C, 2C, 4C), as the
    /// reference's `init_channels`: the reduced networks of EcoNAS-style training.
    pub fn with_channels(cell: Cell, num_classes: usize, stem_channels: usize) -> Self {
        let mut b = Builder {
            params: Vec::new(),
            layers: Vec::new(),
        };
        let stem_conv = b.conv("stem.net.0".into(), 3, stem_channels, 3, 1, false);
        let stem = (stem_conv, b.affine_norm("stem.net.1", stem_channels));
        let mut blocks = Vec::new();
        let mut channels = stem_channels;
        for stage in 1..=3 {
            if stage > 1 {
                let r = stage - 1;
                let (c_in, c_out) = (channels, channels * 2);
                // The reference registers the shortcut before conv_a and conv_b.
                let shortcut = b.conv(format!("reduction{r}.residual.1"), c_in, c_out, 1, 1, false);
                let a = b.conv(
                    format!("reduction{r}.conv_a.op.1"),
                    c_in,
                    c_out,
                    3,
                    2,
                    false,
                );
                let a_norm = b.affine_norm(&format!("reduction{r}.conv_a.op.2"), c_out);
                let bb = b.conv(
                    format!("reduction{r}.conv_b.op.1"),
                    c_out,
                    c_out,
                    3,
                    1,
                    false,
                );
                let b_norm = b.affine_norm(&format!("reduction{r}.conv_b.op.2"), c_out);
                blocks.push(Block::Reduction {
                    conv_a: (a, a_norm),
                    conv_b: (bb, b_norm),
                    shortcut,
                });
                channels = c_out;
            }
            for c in 0..CELLS_PER_STAGE {
                let ops = std::array::from_fn(|e| {
                    let op = cell.op(e);
                    let option = 5 * e + reference_option(op);
                    let prefix = format!("stack_cell{stage}.{c}.options.{option}");
                    match op {
                        Op::None => None,
                        Op::SkipConnect => Some(EdgeOp::Skip),
                        Op::AvgPool3x3 => Some(EdgeOp::AvgPool),
                        Op::NorConv1x1 | Op::NorConv3x3 => {
                            let k = op.kernel_size().unwrap_or(1);
                            Some(EdgeOp::Conv(b.conv(
                                format!("{prefix}.op.1"),
                                channels,
                                channels,
                                k,
                                1,
                                true,
                            )))
                        }
                    }
                });
                blocks.push(Block::Cell(ops));
            }
        }
        let head_norm = b.affine_norm("top.lastact.0", channels);
        let fan_in = channels;
        let weight = b.param(
            "top.classifier.weight".into(),
            vec![num_classes, channels],
            ParamRole::Weight { fan_in },
        );
        let bias = b.param(
            "top.classifier.bias".into(),
            vec![num_classes],
            ParamRole::Bias { fan_in },
        );
        b.layers.push(WeightLayer {
            name: "top.classifier".into(),
            kind: LayerKind::Linear {
                d_in: channels,
                d_out: num_classes,
            },
            weight,
            bias: Some(bias),
        });
        let classifier = b.layers.len() - 1;
        Self {
            cell,
            num_classes,
            params: b.params,
            layers: b.layers,
            stem,
            blocks,
            head_norm,
            classifier,
        }
    }

    /// The cell this network is built from.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Number of output classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// All learnable tensors, in reference module order.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// Conv2d and Linear layers, in reference module order.
    pub fn layers(&self) -> &[WeightLayer] {
        &self.layers
    }

    /// Total number of learnable scalars (equals the analytic `Cell::param_count`).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(ParamSpec::numel).sum()
    }
}
