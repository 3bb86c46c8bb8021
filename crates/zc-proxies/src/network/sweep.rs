//! Backward sweeps over a recorded forward ([`ForwardRecord`]): the network's backward written
//! out op by op on flex's kernels, outside autodiff, so that a second backward of the same
//! forward (another seed) does not run the forward again. Each op's step mirrors the forward
//! in [`super::forward`] and reads the values it kept, last first.

use burn::backend::Dispatch;
use burn::tensor::Tensor;

use super::forward::ForwardRecord;
use super::ops::conv::conv2d_input_grad;
use super::ops::norm::NormBackend;
use super::ops::pool::avg_pool_3x3_adjoint;
use super::ops::relu::ReluBackend;
use super::{Block, EdgeOp, LayerKind, Nb201Network, Norm};
use zc_space::EDGES;

/// The gradient of `<seed, logits>` with respect to the forward's input images (`[N, 3, H, W]`),
/// by one backward sweep over `record`, a recorded forward of `net` with `params` (the values
/// of [`Nb201Network::params`], outside autodiff). Zero where the logits do not depend on the
/// images (a cell whose output ignores its input).
pub(crate) fn input_gradient(
    net: &Nb201Network,
    params: &[Tensor<1>],
    record: ForwardRecord,
    seed: Tensor<2>,
) -> Tensor<4> {
    let mut sweep = Sweep {
        net,
        params,
        values: record.values,
    };
    // Head: linear, global average pool, ReLU, BatchNorm.
    let spec = &net.layers[net.classifier];
    let LayerKind::Linear { d_in, d_out } = spec.kind else {
        unreachable!("the classifier is linear")
    };
    let weight = params[spec.weight].clone().reshape([d_out, d_in]);
    let features = seed.matmul(weight);
    let relu_input = sweep.pop();
    let [n, c, h, w] = relu_input.dims();
    let spread = features
        .reshape([n, c, 1, 1])
        .div_scalar((h * w) as f64)
        .expand([n, c, h, w]);
    let mut grad = Some(relu_mask(relu_input, spread));
    grad = sweep.norm(grad, net.head_norm);
    for block in net.blocks.iter().rev() {
        grad = match block {
            Block::Cell(ops) => sweep.cell(grad, ops),
            Block::Reduction {
                conv_a,
                conv_b,
                shortcut,
            } => {
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
    grad = sweep.norm(grad, stem_norm);
    let image = sweep.values.last().cloned();
    let grad = sweep.conv(grad, stem_conv, false);
    debug_assert!(sweep.values.is_empty(), "every recorded value read");
    let image = image.expect("the record starts with the images");
    grad.unwrap_or_else(|| image.zeros_like())
}

/// `v` where the ReLU input `x > 0` (the ReLU's backward).
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
}

impl Sweep<'_> {
    fn pop(&mut self) -> Tensor<4> {
        self.values
            .pop()
            .expect("the record holds one value per recorded op")
    }

    /// Back through a BatchNorm (batch statistics, then the affine part if any).
    fn norm(&mut self, grad: Option<Tensor<4>>, norm: Norm) -> Option<Tensor<4>> {
        let input = self.pop();
        let grad = grad?;
        let grad = match norm {
            Norm::Plain => grad,
            Norm::Affine { gamma, .. } => {
                let c = grad.dims()[1];
                grad * self.params[gamma].clone().reshape([1, c, 1, 1])
            }
        };
        // The norm's Jacobian is symmetric: its backward is its tangent.
        Some(Tensor::from_dispatch(
            <Dispatch as NormBackend>::nb201_batch_norm_jacobian(
                input.into_dispatch(),
                grad.into_dispatch(),
            ),
        ))
    }

    /// Back through convolution `layer` (after a fused ReLU when `relu_first`).
    fn conv(
        &mut self,
        grad: Option<Tensor<4>>,
        layer: usize,
        relu_first: bool,
    ) -> Option<Tensor<4>> {
        let input = self.pop();
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
        Some(conv2d_input_grad(input, weight, grad?, relu_first, stride))
    }

    /// Back through a ReLU-conv-BN op.
    fn relu_conv_norm(
        &mut self,
        grad: Option<Tensor<4>>,
        (layer, norm): (usize, Norm),
    ) -> Option<Tensor<4>> {
        let grad = self.norm(grad, norm);
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
