//! The functional forward pass of [`Nb201Network`].
//!
//! One implementation serves every pass the proxies need:
//! - BatchNorm everywhere (batch statistics), or only in the reduction blocks (synflow's quirk);
//! - fisher taps: every conv/linear output A times (1 + a zero leaf per image and channel),
//!   whose gradient is fisher's `sum_hw A·dL/dA`;
//! - a forward-mode tangent: given a direction for the conv/linear weights, every activation
//!   carries its directional derivative, so the loss's tangent is `<dL/dtheta, direction>`.
//!   Back-propagating that tangent yields the Hessian-vector product GraSP needs, exactly and
//!   without double backward (ReLU's mask is a constant, as in PyTorch where relu'' = 0).

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

use super::ops::conv::{conv2d, masked_conv2d};
use super::ops::norm::{self, channel_mean};
use super::ops::{pool, relu, tap};
use super::{BN_EPS, Block, EdgeOp, LayerKind, Nb201Network, Norm};
use zc_space::EDGES;

/// Which BatchNorm layers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormMode {
    /// Every BatchNorm, with batch statistics.
    All,
    /// Only the reduction blocks' BatchNorms: the reference's `bn=False` copy used by synflow.
    ReductionOnly,
}

/// Options of one forward pass.
#[derive(Clone, Copy)]
pub struct ForwardConfig<'a> {
    /// Which BatchNorm layers run.
    pub norms: NormMode,
    /// Tap every conv/linear output for fisher (see [`FisherTap`]).
    pub fisher_taps: bool,
    /// Direction per weight layer (indexed like [`Nb201Network::layers`], flattened weight
    /// shape); `Some` propagates the tangent.
    pub direction: Option<&'a [Tensor<1>]>,
    /// Accumulate nwot's kernel of binary ReLU codes over every ReLU's input.
    pub relu_kernel: bool,
    /// Record zen's observations: the feature map before global pooling and the unbiased batch
    /// variance of every affine BatchNorm (the ones with running statistics in the reference).
    pub zen: bool,
    /// Sum MeCo's smallest channel-correlation eigenvalue over the first image's feature maps.
    pub meco: bool,
    /// Record every affine BatchNorm's batch mean and unbiased variance (what training folds
    /// into the running statistics).
    pub record_norm_stats: bool,
    /// Skip the ops of cell nodes that do not reach the cell's output, and tie an ignored cell
    /// input to the output with a zero factor (training): on an autodiff device a branch no
    /// backward reaches keeps its graph alive for as long as the parameters live, which grows
    /// without bound over training steps. Neither changes the loss or the logits. The reference
    /// computes dead nodes, which only proxies that observe every op can see.
    pub skip_dead_nodes: bool,
    /// Evaluation mode: the affine BatchNorms (the ones that track running statistics in the
    /// reference) normalise with these, in forward order; the cells' BatchNorms, which track
    /// none, keep batch statistics as in the reference's eval mode.
    pub running_stats: Option<&'a [NormStats]>,
    /// Keep what a backward sweep over this forward reads ([`ForwardRecord`]). Only for a
    /// forward outside autodiff with every BatchNorm on batch statistics, dead nodes computed,
    /// and no direction or MeCo.
    pub record: bool,
}

/// The values a backward sweep ([`super::sweep`]) reads, kept by a forward in the order it
/// met them (outside autodiff: the values, not their graph): every convolution's input (the
/// ReLU's input for a ReLU-conv op), every BatchNorm's input, the reduction shortcut's output,
/// then the head ReLU's input.
#[derive(Clone, Debug)]
pub struct ForwardRecord {
    pub(crate) values: Vec<Tensor<4>>,
    /// The batch statistics of the values that are a BatchNorm's input (`[C, 2]`, see
    /// [`norm::stats`]), computed once for the forward and every sweep.
    pub(crate) stats: Vec<Option<Tensor<2>>>,
    /// The tangents of `values` along a direction, once [`super::sweep::tangent_forward`]
    /// has filled them in: those the tangent sweep reads (`None`: zero, or not read).
    pub(crate) tangents: Vec<Option<Tensor<4>>>,
    /// The forward's logits.
    pub(crate) logits: Tensor<2>,
    /// Their tangent, with the values' tangents.
    pub(crate) logit_tangent: Option<Tensor<2>>,
}

/// Per-channel statistics of one affine BatchNorm (`[C]` each).
#[derive(Clone, Debug)]
pub struct NormStats {
    /// Mean.
    pub mean: Tensor<1>,
    /// Variance (unbiased when recorded from a batch, as PyTorch's running estimate uses).
    pub var: Tensor<1>,
}

impl ForwardConfig<'_> {
    /// A forward with `norms` and no extras (no taps, tangent or observations); passes switch
    /// on what they need with struct update syntax.
    pub fn new(norms: NormMode) -> Self {
        ForwardConfig {
            norms,
            fisher_taps: false,
            direction: None,
            relu_kernel: false,
            zen: false,
            meco: false,
            record_norm_stats: false,
            skip_dead_nodes: false,
            running_stats: None,
            record: false,
        }
    }
}

/// A fisher tap: a conv/linear output `A` (bias included, before BN; linear as
/// `[N, C, 1, 1]`) enters the network as `A·(1 + leaf)`, with `leaf` zeros `[N, C, 1, 1]`. That
/// changes no value or gradient, and the leaf's gradient is `sum_hw A·dL/dA` per image and
/// channel, what fisher squares.
pub struct FisherTap {
    /// Index into [`Nb201Network::layers`].
    pub layer: usize,
    /// The zero leaf `[N, C, 1, 1]`.
    pub leaf: Tensor<4>,
}

/// What a forward pass returns.
pub struct ForwardOutput {
    /// Logits `[N, classes]`.
    pub logits: Tensor<2>,
    /// Tangent of the logits along the direction, when one was given.
    pub tangent: Option<Tensor<2>>,
    /// Fisher taps, in layer order, when asked for.
    pub taps: Vec<FisherTap>,
    /// `[N, N]`: sum over every ReLU of `c cᵀ + (1-c)(1-c)ᵀ`, `c` the per-image 0/1 codes
    /// `input > 0`, when asked for. As nwot's authors' hooks (on every module whose type name
    /// contains "ReLU") count them: twice for the ReLU of a ReLU-conv-BN op (each conv edge, the
    /// reduction blocks' two: the op's hook and its ReLU's), once for the head's ReLU.
    pub relu_kernel: Option<Tensor<2>>,
    /// The head's output before global average pooling `[N, C, H, W]`, with `zen`.
    pub pre_gap: Option<Tensor<4>>,
    /// Per affine BatchNorm, in forward order: the per-channel batch mean and unbiased batch
    /// variance of its input, with `zen` or `record_norm_stats`.
    pub norm_stats: Vec<NormStats>,
    /// With `meco`: the sum over every module output of the reference network (its forward
    /// hooks on every module, containers included) of the smallest eigenvalue of the first
    /// image's channel correlation matrix (NaN entries, from constant channels, set to 0).
    /// Outputs seen by several modules count once per module; 1-D outputs (the pooled features,
    /// the logits) and zero maps add 0.
    pub meco: f64,
    /// With `record`, what a backward sweep reads.
    pub record: Option<ForwardRecord>,
}

/// An activation with its optional tangent (`None` means a zero tangent).
#[derive(Clone)]
struct Act<const D: usize> {
    v: Tensor<D>,
    t: Option<Tensor<D>>,
}

impl<const D: usize> Act<D> {
    fn map(self, f: impl Fn(Tensor<D>) -> Tensor<D>) -> Self {
        Act {
            v: f(self.v),
            t: self.t.map(f),
        }
    }

    fn add(self, other: Self) -> Self {
        Act {
            v: self.v + other.v,
            t: add_tangent(self.t, other.t),
        }
    }
}

/// Sum of two optional tangents.
fn add_tangent<const D: usize>(a: Option<Tensor<D>>, b: Option<Tensor<D>>) -> Option<Tensor<D>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

struct Pass<'a> {
    net: &'a Nb201Network,
    params: &'a [Tensor<1>],
    config: ForwardConfig<'a>,
    taps: Vec<FisherTap>,
    relu_kernel: Option<Tensor<2>>,
    norm_stats: Vec<NormStats>,
    /// Affine BatchNorms seen so far (indexes `running_stats`).
    affine_seen: usize,
    meco: f64,
    /// With `record`, the values kept so far, with their statistics for a BatchNorm's input.
    record: Option<Vec<(Tensor<4>, Option<Tensor<2>>)>>,
}

/// Runs the network on `x` (`[N, 3, H, W]`) with parameter tensors `params` (flattened, in
/// [`Nb201Network::params`] order, all on the device and dtype of `x`).
pub fn forward(
    net: &Nb201Network,
    params: &[Tensor<1>],
    x: Tensor<4>,
    config: ForwardConfig<'_>,
) -> ForwardOutput {
    let mut pass = Pass {
        net,
        params,
        config,
        taps: Vec::new(),
        relu_kernel: None,
        norm_stats: Vec::new(),
        affine_seen: 0,
        meco: 0.0,
        record: config.record.then(Vec::new),
    };
    assert!(
        !config.record
            || (config.norms == NormMode::All
                && !config.skip_dead_nodes
                && !config.meco
                && config.direction.is_none()
                && config.running_stats.is_none()),
        "a recorded forward runs every BatchNorm on batch statistics, every node, no direction \
         or MeCo"
    );
    let (stem_conv, stem_norm) = net.stem;
    let mut h = pass.conv(Act { v: x, t: None }, stem_conv);
    pass.observe(&h, 1); // stem.net.0
    h = pass.norm(h, stem_norm, false);
    pass.observe(&h, 3); // stem.net.1, stem.net, stem
    for (i, block) in net.blocks.iter().enumerate() {
        h = match block {
            Block::Cell(ops) => {
                let out = pass.cell(h, ops);
                // The cell; the last cell of a stage is also the stage's Sequential output.
                let last = !matches!(net.blocks.get(i + 1), Some(Block::Cell(_)));
                pass.observe(&out, 1 + usize::from(last));
                out
            }
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
                let a = pass.relu_conv_norm(h.clone(), *conv_a, true);
                let b = pass.relu_conv_norm(a, *conv_b, true);
                let pooled = h.map(avg_pool_2x2);
                pass.observe(&pooled, 1); // residual.0
                let shortcut = pass.conv(pooled, *shortcut);
                // Fisher's tap on the shortcut's output, which no BatchNorm's input records.
                pass.keep(&shortcut);
                pass.observe(&shortcut, 2); // residual.1, residual
                let out = shortcut.add(b);
                pass.observe(&out, 1); // the block
                out
            }
        };
    }
    h = pass.norm(h, net.head_norm, false);
    pass.observe(&h, 1); // lastact.0
    pass.keep(&h);
    h = pass.relu(h, 1.0);
    pass.observe(&h, 2); // lastact.1, lastact
    let pre_gap = config.zen.then(|| h.v.clone());
    let [n, c, _, _] = h.v.dims();
    let features = Act {
        v: h.v.mean_dims(&[2, 3]).reshape([n, c]),
        t: h.t.map(|t| t.mean_dims(&[2, 3]).reshape([n, c])),
    };
    let logits = pass.linear(features, net.classifier);
    let record = pass.record.map(|kept| {
        let (values, stats) = kept.into_iter().unzip();
        ForwardRecord {
            values,
            stats,
            tangents: Vec::new(),
            logits: logits.v.clone().inner(),
            logit_tangent: None,
        }
    });
    ForwardOutput {
        logits: logits.v,
        tangent: logits.t,
        taps: pass.taps,
        relu_kernel: pass.relu_kernel,
        pre_gap,
        norm_stats: pass.norm_stats,
        meco: pass.meco,
        record,
    }
}

/// Cross-entropy (mean over the batch) of `logits` against one-hot targets.
pub fn cross_entropy(logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<1> {
    let n = logits.dims()[0] as f64;
    (log_softmax(logits, 1) * one_hot).sum().div_scalar(-n)
}

/// Tangent of [`cross_entropy`] given the tangent of the logits: `mean_n sum_c (p - y) t`.
pub fn cross_entropy_tangent(
    logits: Tensor<2>,
    tangent: Tensor<2>,
    one_hot: Tensor<2>,
) -> Tensor<1> {
    let n = logits.dims()[0] as f64;
    ((softmax(logits, 1) - one_hot) * tangent)
        .sum()
        .div_scalar(n)
}

/// 2x2 average pool, stride 2 (even sizes): a reshape and a mean, much faster on the CPU
/// backend than its generic pooling kernel.
pub(crate) fn avg_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h / 2, 2, w / 2, 2])
        .mean_dims(&[3, 5])
        .reshape([n, c, h / 2, w / 2])
}

fn relu_act<const D: usize>(x: Act<D>) -> Act<D> {
    let (v, t) = relu::relu(x.v, x.t);
    Act { v, t }
}

/// Per-channel batch mean and unbiased variance of `x`, detached: a branch off the loss's graph
/// that no backward reaches would keep the whole graph of every step alive on an autodiff device.
fn batch_stats(x: &Tensor<4>) -> NormStats {
    let x = x.clone().detach();
    let [n, c, h, w] = x.dims();
    let mean = channel_mean(&x);
    let var = (x - mean.clone())
        .square()
        .sum_dims(&[0, 2, 3])
        .reshape([c])
        .div_scalar((n * h * w) as f64 - 1.0);
    NormStats {
        mean: mean.reshape([c]),
        var,
    }
}

impl Pass<'_> {
    /// Keeps `x`'s value for the backward sweeps, when recording.
    fn keep(&mut self, x: &Act<4>) {
        if let Some(record) = &mut self.record {
            record.push((x.v.clone().inner(), None));
        }
    }

    /// ReLU, recording the input's codes into the kernel (with `weight`) when asked for.
    fn relu(&mut self, x: Act<4>, weight: f64) -> Act<4> {
        self.record_relu_codes(&x, weight);
        relu_act(x)
    }

    /// Adds the ReLU input's codes to nwot's kernel (with `weight`) when asked for.
    fn record_relu_codes(&mut self, x: &Act<4>, weight: f64) {
        if self.config.relu_kernel {
            let [n, c, h, w] = x.v.dims();
            let flat = x.v.clone().reshape([n, c * h * w]);
            let on = flat.ones_like().mask_fill(flat.lower_equal_elem(0.0), 0.0);
            let off = on.ones_like() - on.clone();
            let k = (on.clone().matmul(on.transpose()) + off.clone().matmul(off.transpose()))
                .mul_scalar(weight);
            self.relu_kernel = Some(match self.relu_kernel.take() {
                Some(sum) => sum + k,
                None => k,
            });
        }
    }

    fn param4(&self, index: usize, shape: [usize; 4]) -> Tensor<4> {
        self.params[index].clone().reshape(shape)
    }

    fn conv(&mut self, x: Act<4>, layer: usize) -> Act<4> {
        self.conv_after(x, layer, false)
    }

    /// The convolution `layer` of `x`, or, with `relu_first`, of `relu(x)` with the ReLU fused
    /// into the convolution (its output, and its tangent's, never stored).
    fn conv_after(&mut self, x: Act<4>, layer: usize, relu_first: bool) -> Act<4> {
        self.keep(&x);
        let spec = &self.net.layers[layer];
        let (shape, stride) = spec.conv_shape();
        let weight = self.param4(spec.weight, shape);
        // `a` convolved by `w`, after the ReLU at `x.v` (which masks its tangents too).
        let conv = |a: Tensor<4>, w: Tensor<4>| match relu_first {
            true => masked_conv2d(x.v.clone(), a, w, stride),
            false => conv2d(a, w, stride),
        };
        let along_input = x.t.clone().map(|t| conv(t, weight.clone()));
        let along_weight = self
            .config
            .direction
            .map(|d| conv(x.v.clone(), d[layer].clone().reshape(shape)));
        let mut v = conv(x.v.clone(), weight);
        if let Some(b) = spec.bias {
            v = v + self.params[b].clone().reshape([1, shape[0], 1, 1]);
        }
        let v = self.tap(layer, v);
        Act {
            v,
            t: add_tangent(along_input, along_weight),
        }
    }

    fn linear(&mut self, x: Act<2>, layer: usize) -> Act<2> {
        let spec = &self.net.layers[layer];
        let LayerKind::Linear { d_in, d_out } = spec.kind else {
            unreachable!("layer {} is not linear", spec.name)
        };
        let weight_t = self.params[spec.weight]
            .clone()
            .reshape([d_out, d_in])
            .transpose();
        let along_input = x.t.map(|t| t.matmul(weight_t.clone()));
        let along_weight = self.config.direction.map(|d| {
            x.v.clone()
                .matmul(d[layer].clone().reshape([d_out, d_in]).transpose())
        });
        let mut v = x.v.matmul(weight_t);
        if let Some(b) = spec.bias {
            v = v + self.params[b].clone().reshape([1, d_out]);
        }
        let n = v.dims()[0];
        let v = self
            .tap(layer, v.reshape([n, d_out, 1, 1]))
            .reshape([n, d_out]);
        Act {
            v,
            t: add_tangent(along_input, along_weight),
        }
    }

    fn tap(&mut self, layer: usize, a: Tensor<4>) -> Tensor<4> {
        if !self.config.fisher_taps {
            return a;
        }
        let [n, c, _, _] = a.dims();
        let leaf = Tensor::zeros([n, c, 1, 1], (&a.device(), a.dtype())).require_grad();
        self.taps.push(FisherTap {
            layer,
            leaf: leaf.clone(),
        });
        tap::tap(a, leaf)
    }

    /// BatchNorm with batch statistics (and its tangent); `reduction` marks the reduction
    /// blocks' BNs, the only ones kept in [`NormMode::ReductionOnly`].
    fn norm(&mut self, x: Act<4>, norm: Norm, reduction: bool) -> Act<4> {
        if self.config.norms == NormMode::ReductionOnly && !reduction {
            return x;
        }
        let running = match (norm, self.config.running_stats) {
            (Norm::Affine { .. }, Some(stats)) => {
                self.affine_seen += 1;
                Some(&stats[self.affine_seen - 1])
            }
            _ => None,
        };
        if let Some(stats) = running {
            let c = x.v.dims()[1];
            let mean = stats.mean.clone().reshape([1, c, 1, 1]);
            let inv_std = stats
                .var
                .clone()
                .add_scalar(BN_EPS)
                .sqrt()
                .recip()
                .reshape([1, c, 1, 1]);
            let normed = (x.v - mean) * inv_std.clone();
            return self.affine(norm, normed, x.t.map(|t| t * inv_std));
        }
        if let Some(record) = &mut self.record {
            // A recorded forward (outside autodiff, no tangent): the statistics, computed once,
            // are kept for the sweeps.
            let stats = norm::stats(&x.v);
            record.push((x.v.clone().inner(), Some(stats.clone())));
            let normed = norm::batch_norm_with(x.v, stats);
            return self.affine(norm, normed, None);
        }
        if (self.config.zen || self.config.record_norm_stats) && matches!(norm, Norm::Affine { .. })
        {
            self.norm_stats.push(batch_stats(&x.v));
        }
        let (normed, tangent) = norm::batch_norm(x.v, x.t);
        self.affine(norm, normed, tangent)
    }

    /// The affine part of a BatchNorm (none for [`Norm::Plain`]) on normalised values.
    fn affine(&self, norm: Norm, normed: Tensor<4>, tangent: Option<Tensor<4>>) -> Act<4> {
        match norm {
            Norm::Plain => Act {
                v: normed,
                t: tangent,
            },
            Norm::Affine { gamma, beta } => {
                let c = normed.dims()[1];
                let gamma = self.params[gamma].clone().reshape([1, c, 1, 1]);
                let beta = self.params[beta].clone().reshape([1, c, 1, 1]);
                Act {
                    v: normed * gamma.clone() + beta,
                    t: tangent.map(|t| t * gamma),
                }
            }
        }
    }

    fn relu_conv_norm(
        &mut self,
        x: Act<4>,
        (layer, norm): (usize, Norm),
        reduction: bool,
    ) -> Act<4> {
        // MeCo observes the ReLU's output: only then is it stored.
        let h = if self.config.meco {
            let h = self.relu(x, 2.0);
            self.observe(&h, 1); // op.0 (ReLU)
            self.conv(h, layer)
        } else {
            self.record_relu_codes(&x, 2.0);
            self.conv_after(x, layer, true)
        };
        self.observe(&h, 1); // op.1 (Conv2d)
        let h = self.norm(h, norm, reduction);
        self.observe(&h, 3); // op.2 (BatchNorm2d), op (Sequential), the ReLUConvBN
        h
    }

    /// MeCo: adds `times` the smallest eigenvalue of the first image's channel correlation.
    fn observe(&mut self, x: &Act<4>, times: usize) {
        if !self.config.meco {
            return;
        }
        let [_, c, h, w] = x.v.dims();
        let first = x.v.clone().narrow(0, 0, 1);
        let values: Vec<f64> = first
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float tensor data");
        let smallest = smallest_correlation_eigenvalue(&values, c, h * w);
        if smallest.is_finite() {
            self.meco += smallest * times as f64;
        }
    }

    fn cell(&mut self, x: Act<4>, ops: &[Option<EdgeOp>; 6]) -> Act<4> {
        // Node values; a node without active inputs is zero, and ops still run on it as in the
        // reference (a conv fed by zeros outputs its bias, which fisher sees).
        let mut nodes: Vec<Act<4>> = vec![x];
        // live[k]: node k reaches the output (node 3) through active edges.
        let mut live = [false, false, false, true];
        for node in (0..3).rev() {
            live[node] = EDGES
                .iter()
                .zip(ops)
                .any(|(edge, op)| edge.from == node && op.is_some() && live[edge.to]);
        }
        for (node, &is_live) in live.iter().enumerate().skip(1) {
            let mut sum: Option<Act<4>> = None;
            if self.config.skip_dead_nodes && !is_live {
                nodes.push(Act {
                    v: nodes[0].v.zeros_like(),
                    t: None,
                });
                continue;
            }
            for (edge, op) in EDGES.iter().zip(ops) {
                let (true, Some(op)) = (edge.to == node, op) else {
                    continue;
                };
                let input = nodes[edge.from].clone();
                let out = match *op {
                    EdgeOp::Skip => {
                        self.observe(&input, 1); // the Identity op
                        input
                    }
                    EdgeOp::AvgPool => {
                        let out = input.map(pool::avg_pool_3x3);
                        self.observe(&out, 2); // the AvgPool2d and its POOLING op
                        out
                    }
                    EdgeOp::Conv(layer) => self.relu_conv_norm(input, (layer, Norm::Plain), false),
                };
                sum = Some(match sum {
                    Some(s) => s.add(out),
                    None => out,
                });
            }
            let zero = || Act {
                v: nodes[0].v.zeros_like(),
                t: None,
            };
            nodes.push(sum.unwrap_or_else(zero));
        }
        let out = nodes.pop().expect("four nodes");
        if self.config.skip_dead_nodes && !live[0] {
            // The output ignores the input (e.g. `none` on every edge out of node 0): everything
            // before this cell would be a branch no backward reaches. Zero times the input ties
            // it to the output without changing a value; its parameters get zero gradients
            // (the reference's get none), which changes nothing the loss or the logits see.
            let tie = nodes[0].clone().map(|t| t.mul_scalar(0.0));
            return out.add(tie);
        }
        out
    }
}

/// The smallest eigenvalue of the correlation matrix of `rows` rows of `cols` values
/// (`torch.corrcoef`; the NaN entries of a constant row set to 0).
fn smallest_correlation_eigenvalue(values: &[f64], rows: usize, cols: usize) -> f64 {
    let (corr, _) = crate::correlation::row_correlation(values, rows, cols);
    corr.symmetric_eigenvalues()
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
}
