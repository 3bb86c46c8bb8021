//! Sweeps over a recorded forward ([`ForwardRecord`]): the network's backward written out op by
//! op on flex's kernels, outside autodiff, so that the passes that need a backward of the same
//! forward share it: the loss's and the input Jacobian's sweeps ([`backward`]), and GraSP's
//! `H g` as the tangent of the loss's sweep ([`tangent_forward`], then [`hessian_gradient`]).
//! Each op's step mirrors the forward in [`super::forward`] and reads the values it kept (last
//! first going back).

use burn::backend::Dispatch;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::forward::{ForwardRecord, avg_pool_2x2};
use super::ops::conv::{
    conv2d, conv2d_input_grad, conv2d_input_grad_pair, conv2d_pair, conv2d_weight_grad,
    masked_conv2d,
};
use super::ops::norm;
use super::ops::pool::{avg_pool_3x3, avg_pool_3x3_adjoint};
use super::ops::relu::ReluBackend;
use super::ops::tap::tap_plane_sums;
use super::{Block, EdgeOp, LayerKind, Nb201Network, Norm};
use zc_space::EDGES;

/// What a sweep computes besides the gradients it passes back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// Each weight layer's gradient.
    pub weights: bool,
    /// Fisher's `Σ_hw A·dL/dA` per image and channel of each weight layer's output `A`.
    pub fisher: bool,
    /// The gradient with respect to the input images.
    pub input: bool,
    /// The gradients reaching each BatchNorm's output and each reduction shortcut's output,
    /// for a tangent sweep ([`hessian_gradient`]).
    pub cotangents: bool,
}

/// A backward sweep's results; per weight layer, in [`Nb201Network::layers`] order (`None`
/// where no gradient reached the layer, or where not wanted).
pub(crate) struct Swept {
    /// The gradient of each layer's weight, in its flattened shape.
    pub weights: Vec<Option<Tensor<1>>>,
    /// Fisher's sums `[N, C_out]` of each layer.
    pub fisher: Vec<Option<Tensor<2>>>,
    /// The gradient with respect to the images (zero where the logits ignore them).
    pub input: Option<Tensor<4>>,
    /// With `cotangents`, the gradient reaching each BatchNorm's output (times the norm's
    /// gamma) and each reduction shortcut's output, in the sweep's order.
    pub cotangents: Vec<Option<Tensor<4>>>,
}

/// Back-propagates `seed` (the gradient of the logits) through `record`, a recorded forward of
/// `net` with `params` (the values of [`Nb201Network::params`], outside autodiff).
pub(crate) fn backward(
    net: &Nb201Network,
    params: &[Tensor<1>],
    record: ForwardRecord,
    seed: Tensor<2>,
    wanted: Wanted,
) -> Swept {
    let ForwardRecord {
        values,
        stats,
        logits,
        ..
    } = record;
    let layers = net.layers().len();
    let mut sweep = Sweep {
        net,
        params,
        values,
        stats,
        wanted,
        weights: vec![None; layers],
        fisher: vec![None; layers],
        cotangents: Vec::new(),
    };
    // Head: linear (and its tap), global average pool, ReLU, BatchNorm.
    let spec = &net.layers[net.classifier];
    let LayerKind::Linear { d_in, d_out } = spec.kind else {
        unreachable!("the classifier is linear")
    };
    let relu_input = sweep.pop();
    let [n, c, h, w] = relu_input.dims();
    if wanted.weights {
        let features = relu_mask(relu_input.clone(), relu_input.clone())
            .mean_dims(&[2, 3])
            .reshape([n, c]);
        let grad = seed.clone().transpose().matmul(features);
        sweep.weights[net.classifier] = Some(grad.reshape([d_out * d_in]));
    }
    if wanted.fisher {
        sweep.fisher[net.classifier] = Some(logits * seed.clone());
    }
    let weight = params[spec.weight].clone().reshape([d_out, d_in]);
    let spread = seed
        .matmul(weight)
        .reshape([n, c, 1, 1])
        .div_scalar((h * w) as f64)
        .expand([n, c, h, w]);
    let mut grad = Some(relu_mask(relu_input, spread));
    grad = sweep.norm(grad, net.head_norm).1;
    for block in net.blocks.iter().rev() {
        grad = match block {
            Block::Cell(ops) => cell_back(&mut sweep, grad, ops),
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
                let output = sweep.pop();
                sweep.tap(*shortcut, output, grad.as_ref());
                // The tangent sweep recomputes the gradient at a conv's output from the one at
                // its norm's output; the shortcut has no norm: its own is kept.
                sweep.keep(grad.as_ref());
                let through_shortcut = sweep.conv(grad.clone(), *shortcut, false);
                let through_shortcut = through_shortcut.map(avg_pool_2x2_adjoint);
                let b = sweep.relu_conv_norm(grad, *conv_b);
                let through_convs = sweep.relu_conv_norm(b, *conv_a);
                add(through_shortcut, through_convs)
            }
        };
    }
    let (stem_conv, stem_norm) = net.stem;
    let (output, grad) = sweep.norm(grad, stem_norm);
    sweep.tap(stem_conv, output, grad.as_ref());
    let image = sweep.values.last().cloned();
    let grad = sweep.conv_with(grad, stem_conv, false, wanted.input);
    debug_assert!(sweep.values.is_empty(), "every recorded value read");
    let image = image.expect("the record starts with the images");
    Swept {
        weights: sweep.weights,
        fisher: sweep.fisher,
        cotangents: sweep.cotangents,
        input: wanted
            .input
            .then(|| grad.unwrap_or_else(|| image.zeros_like())),
    }
}

/// `v` where the ReLU input `x > 0` (the ReLU's backward; `relu(x)` when `v` is `x`).
fn relu_mask(x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ReluBackend>::nb201_relu_mask(
        x.into_dispatch(),
        v.into_dispatch(),
    ))
}

/// A backward sweep's step through a cell's ReLU-conv-BN op; the cells' other ops (skip, pool)
/// are linear, the same for a gradient and for a gradient's tangent.
trait EdgeStep {
    fn relu_conv_norm(&mut self, grad: Option<Tensor<4>>, conv: (usize, Norm))
    -> Option<Tensor<4>>;
}

impl EdgeStep for Sweep<'_> {
    fn relu_conv_norm(
        &mut self,
        grad: Option<Tensor<4>>,
        conv: (usize, Norm),
    ) -> Option<Tensor<4>> {
        Sweep::relu_conv_norm(self, grad, conv)
    }
}

impl EdgeStep for TangentSweep<'_> {
    fn relu_conv_norm(&mut self, dot: Option<Tensor<4>>, conv: (usize, Norm)) -> Option<Tensor<4>> {
        TangentSweep::relu_conv_norm(self, dot, conv)
    }
}

/// Back through a cell: its nodes in reverse, each edge's op in reverse.
fn cell_back(
    step: &mut impl EdgeStep,
    grad: Option<Tensor<4>>,
    ops: &[Option<EdgeOp>; 6],
) -> Option<Tensor<4>> {
    let mut nodes: [Option<Tensor<4>>; 4] = [None, None, None, grad];
    for node in (1..4).rev() {
        for (edge, op) in EDGES.iter().zip(ops).rev() {
            let (true, Some(op)) = (edge.to == node, op) else {
                continue;
            };
            let grad = nodes[node].clone();
            let back = match *op {
                EdgeOp::Skip => grad,
                EdgeOp::AvgPool => grad.map(avg_pool_3x3_adjoint),
                EdgeOp::Conv(layer) => step.relu_conv_norm(grad, (layer, Norm::Plain)),
            };
            nodes[edge.from] = add(nodes[edge.from].take(), back);
        }
    }
    nodes[0].take()
}

/// The adjoint of the reduction shortcut's 2x2 average pool: each gradient spread over its
/// window, divided by 4.
fn avg_pool_2x2_adjoint(grad: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = grad.dims();
    grad.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
        .div_scalar(4.0)
}

/// Every BatchNorm's input carries its statistics in a record ([`ForwardRecord::stats`]).
const RECORDED_STATS: &str = "a recorded BatchNorm input keeps its statistics";

/// A BatchNorm's output gradient times its gamma (the gradient of its normalised values).
fn scale_by_gamma(params: &[Tensor<1>], grad: Tensor<4>, norm: Norm) -> Tensor<4> {
    match norm {
        Norm::Plain => grad,
        Norm::Affine { gamma, .. } => {
            let c = grad.dims()[1];
            grad * params[gamma].clone().reshape([1, c, 1, 1])
        }
    }
}

/// The sum of two optional gradients (`None`: zero).
fn add(a: Option<Tensor<4>>, b: Option<Tensor<4>>) -> Option<Tensor<4>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

struct Sweep<'a> {
    net: &'a Nb201Network,
    params: &'a [Tensor<1>],
    /// The recorded values not read yet (read from the end), and their statistics.
    values: Vec<Tensor<4>>,
    stats: Vec<Option<Tensor<2>>>,
    wanted: Wanted,
    weights: Vec<Option<Tensor<1>>>,
    fisher: Vec<Option<Tensor<2>>>,
    cotangents: Vec<Option<Tensor<4>>>,
}

impl Sweep<'_> {
    /// Keeps a gradient for a tangent sweep, when wanted.
    fn keep(&mut self, grad: Option<&Tensor<4>>) {
        if self.wanted.cotangents {
            self.cotangents.push(grad.cloned());
        }
    }

    fn pop(&mut self) -> Tensor<4> {
        self.pop_norm().0
    }

    /// The next value and its statistics (a BatchNorm's input).
    fn pop_norm(&mut self) -> (Tensor<4>, Option<Tensor<2>>) {
        let value = self.values.pop();
        let stats = self.stats.pop().flatten();
        (
            value.expect("the record holds one value per recorded op"),
            stats,
        )
    }

    /// Back through a BatchNorm (batch statistics, then the affine part if any): its input (the
    /// output of the convolution before it) and the gradient reaching that input.
    fn norm(&mut self, grad: Option<Tensor<4>>, norm: Norm) -> (Tensor<4>, Option<Tensor<4>>) {
        let (input, stats) = self.pop_norm();
        let Some(grad) = grad else {
            self.keep(None);
            return (input, None);
        };
        let grad = scale_by_gamma(self.params, grad, norm);
        self.keep(Some(&grad));
        // The norm's Jacobian is symmetric: its backward is its tangent.
        let grad = norm::jacobian_with(input.clone(), stats.expect(RECORDED_STATS), grad);
        (input, Some(grad))
    }

    /// Fisher's tap on the output `output` of weight layer `layer`, which `grad` reaches.
    fn tap(&mut self, layer: usize, output: Tensor<4>, grad: Option<&Tensor<4>>) {
        if let (true, Some(grad)) = (self.wanted.fisher, grad) {
            let [n, c, _, _] = output.dims();
            let sums = tap_plane_sums(output, grad.clone()).reshape([n, c]);
            self.fisher[layer] = Some(sums);
        }
    }

    /// Back through convolution `layer` (after a fused ReLU when `relu_first`), passing the
    /// gradient back to its input.
    fn conv(
        &mut self,
        grad: Option<Tensor<4>>,
        layer: usize,
        relu_first: bool,
    ) -> Option<Tensor<4>> {
        self.conv_with(grad, layer, relu_first, true)
    }

    /// [`Sweep::conv`], passing the gradient back only when `to_input`.
    fn conv_with(
        &mut self,
        grad: Option<Tensor<4>>,
        layer: usize,
        relu_first: bool,
        to_input: bool,
    ) -> Option<Tensor<4>> {
        let input = self.pop();
        let grad = grad?;
        let spec = &self.net.layers[layer];
        let (shape, stride) = spec.conv_shape();
        let weight = self.params[spec.weight].clone().reshape(shape);
        if self.wanted.weights {
            let dw = conv2d_weight_grad(
                (input.clone(), input.clone()),
                weight.clone(),
                grad.clone(),
                relu_first,
                stride,
            );
            self.weights[layer] = Some(dw.reshape([shape.iter().product::<usize>()]));
        }
        to_input.then(|| conv2d_input_grad(input, weight, grad, relu_first, stride))
    }

    /// Back through a ReLU-conv-BN op (fisher's tap between the conv and the norm).
    fn relu_conv_norm(
        &mut self,
        grad: Option<Tensor<4>>,
        (layer, norm): (usize, Norm),
    ) -> Option<Tensor<4>> {
        let (output, grad) = self.norm(grad, norm);
        self.tap(layer, output, grad.as_ref());
        self.conv(grad, layer, true)
    }
}

/// GraSP's `θ_l · (H g)_l` for each weight layer `l` (`θ` the weights, `g` = `direction`, the
/// loss gradient; 0 where nothing reached the layer), by forward-over-reverse without forming
/// `H g`: the tangent along `g` of the loss's backward sweep, which gives the tangent `d(dy)` of
/// the gradient `dy` at each weight layer's output `y = θ_l * x`. `(H g)_l` is the tangent of
/// `dW = dy ⊗ x`, `d(dy) ⊗ x + dy ⊗ dx`, so its product with `θ_l` is `<d(dy), θ_l * x> +
/// <dy, θ_l * dx>`: `θ_l * x` is `y`, recorded, and `θ_l * dx` is `y`'s tangent `y_dot = θ_l *
/// dx + g_l * x` less `g_l * x`, whose product with `dy` is `<g_l, dy ⊗ x> = |g_l|²`:
///
/// `θ_l · (H g)_l = <d(dy), y> + <dy, y_dot> - |g_l|²`,
///
/// sums over the layer's output instead of two weight-gradient products. The first two are the
/// tangent of `<dy, y>`; where a BatchNorm reads `y`, they cancel to ~1e-5 of their size (the
/// norm is invariant to `y`'s scale but for its `ε`), and that tangent is taken through the
/// norm instead ([`norm::dot_tangent_with`]), which float32 resolves. `record` is the
/// loss's recorded forward with its tangents along `direction` ([`tangent_forward`]),
/// `cotangents` the loss sweep's kept gradients ([`Wanted::cotangents`]) and `one_hot` the
/// labels. The tangent of each backward step reads the primal gradient the loss sweep passed
/// through it (kept, or recomputed from the one at the next norm's output):
/// - a convolution `y = W * x`: `d(dx) = Wᵀ d(dy) + gᵀ dy` (masked by the fused ReLU's constant
///   mask);
/// - a BatchNorm: `d(dx) = J_x d(dy) + ∇_x <dy, J_x dx>`;
/// - the loss: `d(dL/dz) = (p ⊙ (dz - <p, dz>)) / N`, `p` the softmax.
pub(crate) fn hessian_gradient(
    net: &Nb201Network,
    params: &[Tensor<1>],
    direction: &[Tensor<1>],
    record: ForwardRecord,
    cotangents: Vec<Option<Tensor<4>>>,
    one_hot: Tensor<2>,
) -> Vec<f64> {
    let ForwardRecord {
        values,
        stats,
        tangents,
        logits,
        logit_tangent,
    } = record;
    let mut sweep = TangentSweep {
        net,
        params,
        direction,
        values: values
            .into_iter()
            .zip(tangents)
            .zip(stats)
            .map(|((x, t), s)| (x, t, s))
            .collect(),
        cotangents: cotangents.into_iter(),
        sums: vec![0.0; net.layers().len()],
    };
    let n = logits.dims()[0];
    let p = softmax(logits, 1);
    let grad = (p.clone() - one_hot).div_scalar(n as f64);
    let z_dot = logit_tangent.expect("a forward along a direction has the logits' tangent");
    let centred = z_dot.clone() - (p.clone() * z_dot.clone()).sum_dim(1);
    let grad_dot = (p * centred).div_scalar(n as f64);
    // Head: linear, global average pool, ReLU, BatchNorm.
    let spec = &net.layers[net.classifier];
    let LayerKind::Linear { d_in, d_out } = spec.kind else {
        unreachable!("the classifier is linear")
    };
    let (x, _) = sweep.pop();
    let [_, c, h, w] = x.dims();
    let features = relu_mask(x.clone(), x.clone())
        .mean_dims(&[2, 3])
        .reshape([n, c]);
    let weight = params[spec.weight].clone().reshape([d_out, d_in]);
    let output = features.matmul(weight.clone().transpose());
    sweep.add_sum(net.classifier, &grad_dot, output);
    sweep.add_sum(net.classifier, &grad, z_dot);
    let g = direction[net.classifier].clone().reshape([d_out, d_in]);
    let back = grad_dot.matmul(weight) + grad.matmul(g);
    let spread = back
        .reshape([n, c, 1, 1])
        .div_scalar((h * w) as f64)
        .expand([n, c, h, w]);
    let mut dot = Some(relu_mask(x, spread));
    dot = sweep.norm(dot, net.head_norm, None).0;
    for block in net.blocks.iter().rev() {
        dot = match block {
            Block::Cell(ops) => cell_back(&mut sweep, dot, ops),
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
                // The shortcut's output `y` (no norm reads it) and its tangent.
                let (y, y_dot) = sweep.pop();
                let grad = sweep.cotangent();
                sweep.add_output_sum(*shortcut, dot.clone(), y);
                if let Some(y_dot) = y_dot {
                    sweep.add_output_sum(*shortcut, grad.clone(), y_dot);
                }
                let through_shortcut = sweep.conv((dot.clone(), grad), *shortcut, false);
                let through_shortcut = through_shortcut.map(avg_pool_2x2_adjoint);
                let b = sweep.relu_conv_norm(dot, *conv_b);
                let through_convs = sweep.relu_conv_norm(b, *conv_a);
                add(through_shortcut, through_convs)
            }
        };
    }
    let (stem_conv, stem_norm) = net.stem;
    sweep.norm(dot, stem_norm, Some(stem_conv));
    sweep.pop(); // the images
    debug_assert!(sweep.values.is_empty(), "every recorded value read");
    debug_assert!(
        sweep.cotangents.next().is_none(),
        "every kept gradient read"
    );
    // Where no gradient reached a layer, `g_l` and both sums are zero.
    sweep
        .sums
        .iter()
        .zip(direction)
        .map(|(sum, g)| sum - host_sum(g.clone().powi_scalar(2)))
        .collect()
}

/// The sum of `t`'s elements, in float64 on the host.
fn host_sum<const D: usize>(t: Tensor<D>) -> f64 {
    t.into_data().convert::<f64>().iter::<f64>().sum()
}

struct TangentSweep<'a> {
    net: &'a Nb201Network,
    params: &'a [Tensor<1>],
    direction: &'a [Tensor<1>],
    /// The recorded values, their tangents and their statistics, not read yet (read from the
    /// end).
    values: Vec<(Tensor<4>, Option<Tensor<4>>, Option<Tensor<2>>)>,
    /// The loss sweep's gradients, in its order (which is this sweep's).
    cotangents: std::vec::IntoIter<Option<Tensor<4>>>,
    /// Per weight layer, `<d(dy), y> + <dy, y_dot>` so far.
    sums: Vec<f64>,
}

impl TangentSweep<'_> {
    fn pop(&mut self) -> (Tensor<4>, Option<Tensor<4>>) {
        let (x, t, _) = self.pop_norm();
        (x, t)
    }

    fn pop_norm(&mut self) -> (Tensor<4>, Option<Tensor<4>>, Option<Tensor<2>>) {
        self.values
            .pop()
            .expect("the record holds one value per recorded op")
    }

    fn cotangent(&mut self) -> Option<Tensor<4>> {
        self.cotangents
            .next()
            .expect("the loss sweep kept one gradient per step")
    }

    /// Adds `<a, b>` to layer `layer`'s sum.
    fn add_sum<const D: usize>(&mut self, layer: usize, a: &Tensor<D>, b: Tensor<D>) {
        self.sums[layer] += host_sum(b * a.clone());
    }

    /// Adds `<a, b>` over a `[N, C, H, W]` output to layer `layer`'s sum (nothing if `a` is
    /// `None`: zero).
    fn add_output_sum(&mut self, layer: usize, a: Option<Tensor<4>>, b: Tensor<4>) {
        if let Some(a) = a {
            self.sums[layer] += host_sum(tap_plane_sums(a, b));
        }
    }

    /// The tangent of the backward through a BatchNorm: what reaches its input. When the norm
    /// reads weight layer `after`'s output `y`, also the loss sweep's gradient `dy` there
    /// (recomputed from the one kept at the norm's output), and the layer's
    /// `<d(dy), y> + <dy, y_dot>` added to its sum, as the tangent of `<dy, y>` through the norm
    /// ([`norm::dot_tangent_with`]).
    fn norm(
        &mut self,
        dot: Option<Tensor<4>>,
        norm: Norm,
        after: Option<usize>,
    ) -> (Option<Tensor<4>>, Option<Tensor<4>>) {
        let (x, x_dot, stats) = self.pop_norm();
        let stats = stats.expect(RECORDED_STATS);
        let grad = self.cotangent();
        let dot = dot.map(|d| scale_by_gamma(self.params, d, norm));
        let mut out = dot
            .clone()
            .map(|d| norm::jacobian_with(x.clone(), stats.clone(), d));
        let input_grad = grad
            .as_ref()
            .filter(|_| after.is_some())
            .map(|b| norm::jacobian_with(x.clone(), stats.clone(), b.clone()));
        if let Some(layer) = after
            && (grad.is_some() || dot.is_some())
        {
            let zeros = || x.zeros_like();
            let inputs = [
                grad.clone().unwrap_or_else(zeros),
                dot.unwrap_or_else(zeros),
                x_dot.clone().unwrap_or_else(zeros),
                input_grad.clone().unwrap_or_else(zeros),
            ];
            let sums = norm::dot_tangent_with(x.clone(), stats.clone(), inputs);
            self.sums[layer] += host_sum(sums);
        }
        if let (Some(t), Some(b)) = (x_dot, grad) {
            out = add(out, Some(norm::tangent_backward_with(x, stats, t, b)));
        }
        (out, input_grad)
    }

    /// The tangent of the backward through convolution `layer` (after a fused ReLU when
    /// `relu_first`), given the loss sweep's gradient `grad` at its output and that gradient's
    /// tangent `dot`: what reaches its input.
    fn conv(
        &mut self,
        (dot, grad): (Option<Tensor<4>>, Option<Tensor<4>>),
        layer: usize,
        relu_first: bool,
    ) -> Option<Tensor<4>> {
        let (x, _) = self.pop();
        let spec = &self.net.layers[layer];
        let (shape, stride) = spec.conv_shape();
        let weight = self.params[spec.weight].clone().reshape(shape);
        let g = self.direction[layer].clone().reshape(shape);
        let back =
            |w: Tensor<4>, d: Tensor<4>| conv2d_input_grad(x.clone(), w, d, relu_first, stride);
        match (dot, grad) {
            (Some(d), Some(b)) => Some(conv2d_input_grad_pair(
                x.clone(),
                [(weight, d), (g, b)],
                relu_first,
                stride,
            )),
            (Some(d), None) => Some(back(weight, d)),
            (None, b) => b.map(|b| back(g, b)),
        }
    }

    fn relu_conv_norm(
        &mut self,
        dot: Option<Tensor<4>>,
        (layer, norm): (usize, Norm),
    ) -> Option<Tensor<4>> {
        let step = self.norm(dot, norm, Some(layer));
        self.conv(step, layer, true)
    }
}

/// Fills in `record`'s tangents along `direction` (per weight layer): a forward that carries
/// only the tangent, reading the recorded values where the forward along the direction
/// would recompute them. Each convolution's tangent is `W * dx + g * x` (after the fused ReLU,
/// whose mask the recorded input gives; one product over both inputs), each BatchNorm's `J_x dx`.
/// It keeps the tangents [`hessian_gradient`] reads: those of the norms' inputs and of the
/// reduction shortcuts' outputs.
pub(crate) fn tangent_forward(
    net: &Nb201Network,
    params: &[Tensor<1>],
    direction: &[Tensor<1>],
    record: &mut ForwardRecord,
) {
    let mut pass = TangentForward {
        net,
        params,
        direction,
        values: &record.values,
        stats: &record.stats,
        tangents: Vec::with_capacity(record.values.len()),
    };
    let (stem_conv, stem_norm) = net.stem;
    let mut t = pass.conv(None, stem_conv, false);
    t = pass.norm(t, stem_norm);
    for block in &net.blocks {
        t = match block {
            Block::Cell(ops) => pass.cell(t, ops),
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
                let a = pass.relu_conv_norm(t.clone(), *conv_a);
                let b = pass.relu_conv_norm(a, *conv_b);
                let shortcut = pass.conv(t.map(avg_pool_2x2), *shortcut, false);
                pass.keep(shortcut.clone());
                add(shortcut, b)
            }
        };
    }
    t = pass.norm(t, net.head_norm);
    let x = pass.pass_over();
    let spec = &net.layers[net.classifier];
    let LayerKind::Linear { d_in, d_out } = spec.kind else {
        unreachable!("the classifier is linear")
    };
    let [n, c, _, _] = x.dims();
    let pool = |t: Tensor<4>| t.mean_dims(&[2, 3]).reshape([n, c]);
    let features = pool(relu_mask(x.clone(), x.clone()));
    let g = direction[net.classifier].clone().reshape([d_out, d_in]);
    let mut logit_tangent = features.matmul(g.transpose());
    if let Some(t) = t {
        let weight = params[spec.weight].clone().reshape([d_out, d_in]);
        logit_tangent = logit_tangent + pool(relu_mask(x, t)).matmul(weight.transpose());
    }
    record.tangents = pass.tangents;
    record.logit_tangent = Some(logit_tangent);
}

struct TangentForward<'a> {
    net: &'a Nb201Network,
    params: &'a [Tensor<1>],
    direction: &'a [Tensor<1>],
    values: &'a [Tensor<4>],
    stats: &'a [Option<Tensor<2>>],
    /// The tangents of the values read so far.
    tangents: Vec<Option<Tensor<4>>>,
}

impl TangentForward<'_> {
    /// Records `t` as the next value's tangent; returns that value.
    fn keep(&mut self, t: Option<Tensor<4>>) -> Tensor<4> {
        let x = self.values[self.tangents.len()].clone();
        self.tangents.push(t);
        x
    }

    /// The next value, whose tangent the sweep does not read (a convolution's or the head's
    /// input): not kept, so that it is freed once the forward is past it.
    fn pass_over(&mut self) -> Tensor<4> {
        self.keep(None)
    }

    fn norm(&mut self, t: Option<Tensor<4>>, norm: Norm) -> Option<Tensor<4>> {
        let stats = self.stats[self.tangents.len()]
            .clone()
            .expect(RECORDED_STATS);
        let x = self.keep(t.clone());
        // The norm's tangent, then its affine part's (gamma is no weight layer: it stays put).
        let t = norm::jacobian_with(x, stats, t?);
        Some(scale_by_gamma(self.params, t, norm))
    }

    fn conv(&mut self, t: Option<Tensor<4>>, layer: usize, relu_first: bool) -> Option<Tensor<4>> {
        let x = self.pass_over();
        let spec = &self.net.layers[layer];
        let (shape, stride) = spec.conv_shape();
        let g = self.direction[layer].clone().reshape(shape);
        let Some(t) = t else {
            return Some(match relu_first {
                true => masked_conv2d(x.clone(), x, g, stride),
                false => conv2d(x, g, stride),
            });
        };
        let weight = self.params[spec.weight].clone().reshape(shape);
        let terms = [(x.clone(), g), (t, weight)];
        Some(conv2d_pair(x, terms, relu_first, stride))
    }

    fn relu_conv_norm(
        &mut self,
        t: Option<Tensor<4>>,
        (layer, norm): (usize, Norm),
    ) -> Option<Tensor<4>> {
        let t = self.conv(t, layer, true);
        self.norm(t, norm)
    }

    fn cell(&mut self, t: Option<Tensor<4>>, ops: &[Option<EdgeOp>; 6]) -> Option<Tensor<4>> {
        let mut nodes: Vec<Option<Tensor<4>>> = vec![t];
        for node in 1..4 {
            let mut sum = None;
            for (edge, op) in EDGES.iter().zip(ops) {
                let (true, Some(op)) = (edge.to == node, op) else {
                    continue;
                };
                let input = nodes[edge.from].clone();
                let out = match *op {
                    EdgeOp::Skip => input,
                    EdgeOp::AvgPool => input.map(avg_pool_3x3),
                    EdgeOp::Conv(layer) => self.relu_conv_norm(input, (layer, Norm::Plain)),
                };
                sum = add(sum, out);
            }
            nodes.push(sum);
        }
        nodes.pop().expect("four nodes")
    }
}
