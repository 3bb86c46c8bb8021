//! The convolution of the NB201 network (square kernel, zero padding `k/2`, stride 1 or 2,
//! no groups or dilation): im2col + `gemm` kernels on flex ([`super::conv_kernel`]), burn's
//! `conv2d` elsewhere.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

use super::conv_kernel::{self as kernel, Geometry};
use super::{dispatch_dtype, is_flex};

/// The convolution as a backend extension (flex kernel; autodiff's backward built on the
/// kernels).
#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `conv2d(x, weight)` with stride `stride` and padding `pad`, no bias.
    fn nb201_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;
}

fn options(stride: usize, pad: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1)
}

/// `conv2d(x, weight)` (no bias) with stride `stride` and padding `kernel / 2`: the fast kernels
/// on the flex backend, burn's `conv2d` elsewhere.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize) -> Tensor<4> {
    let pad = weight.dims()[2] / 2;
    if !is_flex(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, None, options(stride, pad));
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as ConvBackend>::nb201_conv(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        pad,
    ))
}

/// The geometry of a convolution of `x` (`[N, C_in, H, W]`) by `weight` (`[C_out, C_in, k, k]`).
fn geometry(x: &FlexTensor, weight: &FlexTensor, stride: usize, pad: usize) -> Geometry {
    let [batch, c_in, h, w] = x.layout().shape().dims();
    let [c_out, _, kernel, _] = weight.layout().shape().dims();
    Geometry {
        batch,
        c_in,
        c_out,
        h,
        w,
        kernel,
        stride,
        pad,
    }
}

impl ConvBackend for Flex {
    fn nb201_conv(x: FlexTensor, weight: FlexTensor, stride: usize, pad: usize) -> FlexTensor {
        let g = geometry(&x, &weight, stride, pad);
        let shape = [g.batch, g.c_out, g.h_out(), g.w_out()];
        dispatch_dtype!([&x, &weight], shape.to_vec(), |ins, y| {
            kernel::forward(&g, ins[0], ins[1], y)
        })
    }
}

/// The gradient of the convolution with respect to `x`.
fn backward_input(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    stride: usize,
    pad: usize,
) -> FlexTensor {
    let g = geometry(x, weight, stride, pad);
    let shape = [g.batch, g.c_in, g.h, g.w];
    dispatch_dtype!([weight, grad], shape.to_vec(), |ins, dx| {
        kernel::backward_input(&g, ins[0], ins[1], dx)
    })
}

/// The gradient of the convolution with respect to `weight`.
fn backward_weight(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    stride: usize,
    pad: usize,
) -> FlexTensor {
    let g = geometry(x, weight, stride, pad);
    let shape = [g.c_out, g.c_in, g.kernel, g.kernel];
    dispatch_dtype!([x, grad], shape.to_vec(), |ins, dw| {
        kernel::backward_weight(&g, ins[0], ins[1], dw)
    })
}

/// The backward step of [`ConvBackend::nb201_conv`] under autodiff.
#[derive(Debug)]
struct ConvStep;

impl Backward<Flex, 2> for ConvStep {
    type State = (NodeId, NodeId, usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, stride, pad) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        if let Some(node) = node_x {
            let dx = backward_input(&x, &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = backward_weight(&x, &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dw);
        }
    }
}

impl<C: CheckpointStrategy> ConvBackend for Autodiff<Flex, C> {
    fn nb201_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        match ConvStep
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                prep.finish(
                    (x_state, weight_state, stride, pad),
                    Flex::nb201_conv(x.into_primitive(), weight.into_primitive(), stride, pad),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_conv(
                x.into_primitive(),
                weight.into_primitive(),
                stride,
                pad,
            )),
        }
    }
}
