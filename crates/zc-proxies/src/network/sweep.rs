//! Backward sweeps over a recorded forward ([`ForwardRecord`]): the network's backward written
//! out op by op on flex's kernels, outside autodiff, so that several backwards of one forward
//! (the loss's, the input Jacobian's) run the forward once. Each op's step mirrors the forward
//! in [`super::forward`] and reads the values it kept, last first.

use burn::backend::Dispatch;
use burn::tensor::Tensor;

use super::forward::ForwardRecord;
use super::ops::conv::{conv2d_input_grad, conv2d_weight_grad};
use super::ops::norm::NormBackend;
use super::ops::pool::avg_pool_3x3_adjoint;
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
}

/// A sweep's results, per weight layer in [`Nb201Network::layers`] order where per layer
/// (`None` where no gradient reached the layer, or where not wanted).
pub(crate) struct Swept {
    /// The gradient of each layer's weight, in its flattened shape.
    pub weights: Vec<Option<Tensor<1>>>,
    /// Fisher's sums `[N, C_out]` of each layer.
    pub fisher: Vec<Option<Tensor<2>>>,
    /// The gradient with respect to the images (zero where the logits ignore them).
    pub input: Option<Tensor<4>>,
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
    let ForwardRecord { values, logits } = record;
    let layers = net.layers().len();
    let mut sweep = Sweep {
        net,
        params,
        values,
        wanted,
        weights: vec![None; layers],
        fisher: vec![None; layers],
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
            Block::Cell(ops) => sweep.cell(grad, ops),
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
                let output = sweep.pop();
                sweep.tap(*shortcut, output, grad.as_ref());
                let through_shortcut = sweep.conv(grad.clone(), *shortcut, false).map(|g| {
                    let [n, c, h, w] = g.dims();
                    g.reshape([n, c, h, 1, w, 1])
                        .expand([n, c, h, 2, w, 2])
                        .reshape([n, c, 2 * h, 2 * w])
                        .div_scalar(4.0)
                });
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
    /// The recorded values not read yet (read from the end).
    values: Vec<Tensor<4>>,
    wanted: Wanted,
    weights: Vec<Option<Tensor<1>>>,
    fisher: Vec<Option<Tensor<2>>>,
}

impl Sweep<'_> {
    fn pop(&mut self) -> Tensor<4> {
        self.values
            .pop()
            .expect("the record holds one value per recorded op")
    }

    /// Back through a BatchNorm (batch statistics, then the affine part if any): its input (the
    /// output of the convolution before it) and the gradient reaching that input.
    fn norm(&mut self, grad: Option<Tensor<4>>, norm: Norm) -> (Tensor<4>, Option<Tensor<4>>) {
        let input = self.pop();
        let Some(grad) = grad else {
            return (input, None);
        };
        let grad = match norm {
            Norm::Plain => grad,
            Norm::Affine { gamma, .. } => {
                let c = grad.dims()[1];
                grad * self.params[gamma].clone().reshape([1, c, 1, 1])
            }
        };
        // The norm's Jacobian is symmetric: its backward is its tangent.
        let grad = Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm_jacobian(
            input.clone().into_dispatch(),
            grad.into_dispatch(),
        ));
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
        let LayerKind::Conv {
            c_in,
            c_out,
            kernel,
            stride,
        } = spec.kind
        else {
            unreachable!("layer {} is not a convolution", spec.name)
        };
        let weight = self.params[spec.weight]
            .clone()
            .reshape([c_out, c_in, kernel, kernel]);
        if self.wanted.weights {
            let dw = conv2d_weight_grad(
                input.clone(),
                weight.clone(),
                grad.clone(),
                relu_first,
                stride,
            );
            self.weights[layer] = Some(dw.reshape([c_out * c_in * kernel * kernel]));
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

    /// Back through a cell: its nodes in reverse, each edge's op in reverse.
    fn cell(&mut self, grad: Option<Tensor<4>>, ops: &[Option<EdgeOp>; 6]) -> Option<Tensor<4>> {
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
                    EdgeOp::Conv(layer) => self.relu_conv_norm(grad, (layer, Norm::Plain)),
                };
                nodes[edge.from] = add(nodes[edge.from].take(), back);
            }
        }
        nodes[0].take()
    }
}
