//! The convolution of the NB201 network (square kernel, zero padding `k/2`, stride 1 or 2,
//! no groups or dilation): `gemm` kernels on flex ([`super::conv_kernel`]), burn's `conv2d`
//! elsewhere. The ReLU before a convolution can be fused into it ([`masked_conv2d`]): the
//! kernel masks the input while copying it into its product's buffer, so the ReLU's output is
//! never stored (nor kept for the backward: the input before the ReLU, which its producers
//! keep anyway, serves both).

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

use super::conv_kernel::{self as kernel, Geometry, Input};
use super::{ConstantStep, dispatch_dtype, is_flex};

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

    /// `conv2d(x·[mask > 0], weight)` (`x` where `mask <= 0` does not hold, else 0) with stride
    /// `stride` and padding `pad`, no bias; no gradient reaches `mask`.
    fn nb201_masked_conv(
        mask: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;

    /// The gradient reaching `input` through `conv2d(input, weight)` (through
    /// `conv2d(relu(input), weight)` when `relu_first`) from the output gradient `grad`, for
    /// backward sweeps outside autodiff: the result is a constant.
    fn nb201_conv_input_grad(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;

    /// `conv2d(a·m, weight_a) + conv2d(b·m, weight_b)` with `m = [mask > 0]` when `relu_first`
    /// (else 1), stride `stride` and padding `pad`, no bias: a tangent's two terms as one
    /// product, for sweeps outside autodiff (the result is a constant).
    #[allow(clippy::too_many_arguments)]
    fn nb201_conv_pair(
        mask: FloatTensor<Self>,
        a: FloatTensor<Self>,
        weight_a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight_b: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;

    /// The sum of the gradients reaching `input` through `conv2d(input, weight_a)` from `grad_a`
    /// and through `conv2d(input, weight_b)` from `grad_b` (through the ReLU fused first when
    /// `relu_first`), as one product, for sweeps outside autodiff (the result is a constant).
    #[allow(clippy::too_many_arguments)]
    fn nb201_conv_input_grad_pair(
        input: FloatTensor<Self>,
        weight_a: FloatTensor<Self>,
        grad_a: FloatTensor<Self>,
        weight_b: FloatTensor<Self>,
        grad_b: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;

    /// The gradient reaching `weight` through `conv2d(input, weight)` (through
    /// `conv2d(input·[mask > 0], weight)` when `relu_first`) from the output gradient `grad`,
    /// for backward sweeps outside autodiff: the result is a constant.
    fn nb201_conv_weight_grad(
        mask: FloatTensor<Self>,
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        relu_first: bool,
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

/// `conv2d(x·[mask > 0], weight)` (no bias; stride `stride`, padding `kernel / 2`): the
/// convolution of `relu(x)` when `mask` is `x`, and of a ReLU's tangent `t` when `mask` is the
/// ReLU's input and `x` is `t`. No gradient reaches `mask`, as none reaches the mask of
/// PyTorch's ReLU (relu'' = 0). Masked inside the kernel on flex; elsewhere masked first.
pub fn masked_conv2d(mask: Tensor<4>, x: Tensor<4>, weight: Tensor<4>, stride: usize) -> Tensor<4> {
    if !is_flex(&x.device()) {
        let zero = mask.detach().lower_equal_elem(0.0);
        return conv2d(x.mask_fill(zero, 0.0), weight, stride);
    }
    let pad = weight.dims()[2] / 2;
    Tensor::from_dispatch(<burn::backend::Dispatch as ConvBackend>::nb201_masked_conv(
        mask.into_dispatch(),
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        pad,
    ))
}

/// The gradient reaching `input` through [`conv2d`] (through [`masked_conv2d`] by itself, the
/// ReLU fused before the convolution, when `relu_first`) from the output gradient `grad`:
/// flex's kernels, for the backward sweeps of [`crate::network::sweep`] (flex only).
pub(crate) fn conv2d_input_grad(
    input: Tensor<4>,
    weight: Tensor<4>,
    grad: Tensor<4>,
    relu_first: bool,
    stride: usize,
) -> Tensor<4> {
    let pad = weight.dims()[2] / 2;
    Tensor::from_dispatch(
        <burn::backend::Dispatch as ConvBackend>::nb201_conv_input_grad(
            input.into_dispatch(),
            weight.into_dispatch(),
            grad.into_dispatch(),
            relu_first,
            stride,
            pad,
        ),
    )
}

/// The gradient reaching `weight` through [`conv2d`] of `input` (through [`masked_conv2d`] of
/// `input` masked by `mask` when `relu_first`) from the output gradient `grad`: flex's
/// kernels, for the backward sweeps of [`crate::network::sweep`] (flex only).
pub(crate) fn conv2d_weight_grad(
    (mask, input): (Tensor<4>, Tensor<4>),
    weight: Tensor<4>,
    grad: Tensor<4>,
    relu_first: bool,
    stride: usize,
) -> Tensor<4> {
    let pad = weight.dims()[2] / 2;
    Tensor::from_dispatch(
        <burn::backend::Dispatch as ConvBackend>::nb201_conv_weight_grad(
            mask.into_dispatch(),
            input.into_dispatch(),
            weight.into_dispatch(),
            grad.into_dispatch(),
            relu_first,
            stride,
            pad,
        ),
    )
}

/// `conv2d(a·m, weight_a) + conv2d(b·m, weight_b)` with `m` the fused ReLU's mask `[mask > 0]`
/// when `relu_first` (else 1): one product over both inputs, where [`masked_conv2d`] twice would
/// make two outputs to add (flex only, outside autodiff).
pub(crate) fn conv2d_pair(
    mask: Tensor<4>,
    [(a, weight_a), (b, weight_b)]: [(Tensor<4>, Tensor<4>); 2],
    relu_first: bool,
    stride: usize,
) -> Tensor<4> {
    let pad = weight_a.dims()[2] / 2;
    Tensor::from_dispatch(<burn::backend::Dispatch as ConvBackend>::nb201_conv_pair(
        mask.into_dispatch(),
        a.into_dispatch(),
        weight_a.into_dispatch(),
        b.into_dispatch(),
        weight_b.into_dispatch(),
        relu_first,
        stride,
        pad,
    ))
}

/// The sum of [`conv2d_input_grad`] for two (weight, output gradient) pairs of one input, as one
/// product (flex only, outside autodiff).
pub(crate) fn conv2d_input_grad_pair(
    input: Tensor<4>,
    [(weight_a, grad_a), (weight_b, grad_b)]: [(Tensor<4>, Tensor<4>); 2],
    relu_first: bool,
    stride: usize,
) -> Tensor<4> {
    let pad = weight_a.dims()[2] / 2;
    Tensor::from_dispatch(
        <burn::backend::Dispatch as ConvBackend>::nb201_conv_input_grad_pair(
            input.into_dispatch(),
            weight_a.into_dispatch(),
            grad_a.into_dispatch(),
            weight_b.into_dispatch(),
            grad_b.into_dispatch(),
            relu_first,
            stride,
            pad,
        ),
    )
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
        dispatch_dtype!(uninit [&x, &weight], shape.to_vec(), |ins, y| {
            kernel::forward(&g, Input::plain(ins[0]), ins[1], y)
        })
    }

    fn nb201_masked_conv(
        mask: FlexTensor,
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        pad: usize,
    ) -> FlexTensor {
        let g = geometry(&x, &weight, stride, pad);
        let shape = [g.batch, g.c_out, g.h_out(), g.w_out()];
        dispatch_dtype!(uninit [&x, &mask, &weight], shape.to_vec(), |ins, y| {
            let input = Input {
                x: ins[0],
                mask: Some(ins[1]),
            };
            kernel::forward(&g, input, ins[2], y)
        })
    }

    fn nb201_conv_pair(
        mask: FlexTensor,
        a: FlexTensor,
        weight_a: FlexTensor,
        b: FlexTensor,
        weight_b: FlexTensor,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FlexTensor {
        let g = geometry(&a, &weight_a, stride, pad);
        let shape = [g.batch, g.c_out, g.h_out(), g.w_out()];
        dispatch_dtype!(
            uninit [&a, &b, &mask, &weight_a, &weight_b],
            shape.to_vec(),
            |ins, y| {
                let mask = relu_first.then_some(ins[2]);
                let (a, b) = (Input { x: ins[0], mask }, Input { x: ins[1], mask });
                kernel::forward_sum(&g, &[(a, ins[3]), (b, ins[4])], y)
            }
        )
    }

    fn nb201_conv_input_grad_pair(
        input: FlexTensor,
        weight_a: FlexTensor,
        grad_a: FlexTensor,
        weight_b: FlexTensor,
        grad_b: FlexTensor,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FlexTensor {
        let g = geometry(&input, &weight_a, stride, pad);
        let shape = [g.batch, g.c_in, g.h, g.w].to_vec();
        dispatch_dtype!(
            uninit [&weight_a, &grad_a, &weight_b, &grad_b, &input],
            shape,
            |ins, dx| {
                let mask = relu_first.then_some(ins[4]);
                kernel::backward_input_sum(&g, &[(ins[0], ins[1]), (ins[2], ins[3])], mask, dx)
            }
        )
    }

    fn nb201_conv_input_grad(
        input: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FlexTensor {
        let mask = relu_first.then_some(&input);
        backward_input(&input, mask, &weight, &grad, stride, pad)
    }

    fn nb201_conv_weight_grad(
        mask: FlexTensor,
        input: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FlexTensor {
        let mask = relu_first.then_some(&mask);
        backward_weight(&input, mask, &weight, &grad, stride, pad)
    }
}

/// The gradient of the convolution with respect to `x` (masked by `mask`, when the input was).
fn backward_input(
    x: &FlexTensor,
    mask: Option<&FlexTensor>,
    weight: &FlexTensor,
    grad: &FlexTensor,
    stride: usize,
    pad: usize,
) -> FlexTensor {
    let g = geometry(x, weight, stride, pad);
    let shape = [g.batch, g.c_in, g.h, g.w].to_vec();
    match mask {
        None => dispatch_dtype!(uninit [weight, grad], shape, |ins, dx| {
            kernel::backward_input(&g, ins[0], ins[1], None, dx)
        }),
        Some(mask) => dispatch_dtype!(uninit [weight, grad, mask], shape, |ins, dx| {
            kernel::backward_input(&g, ins[0], ins[1], Some(ins[2]), dx)
        }),
    }
}

/// The gradient of the convolution with respect to `weight` (of the masked input, when masked).
fn backward_weight(
    x: &FlexTensor,
    mask: Option<&FlexTensor>,
    weight: &FlexTensor,
    grad: &FlexTensor,
    stride: usize,
    pad: usize,
) -> FlexTensor {
    let g = geometry(x, weight, stride, pad);
    let shape = [g.c_out, g.c_in, g.kernel, g.kernel].to_vec();
    match mask {
        None => dispatch_dtype!([x, grad], shape, |ins, dw| {
            kernel::backward_weight(&g, Input::plain(ins[0]), ins[1], dw)
        }),
        Some(mask) => dispatch_dtype!([x, grad, mask], shape, |ins, dw| {
            let input = Input {
                x: ins[0],
                mask: Some(ins[2]),
            };
            kernel::backward_weight(&g, input, ins[1], dw)
        }),
    }
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
            let dx = backward_input(&x, None, &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = backward_weight(&x, None, &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dw);
        }
    }
}

/// The backward step of [`ConvBackend::nb201_masked_conv`] under autodiff: the mask is a
/// constant.
#[derive(Debug)]
struct MaskedConvStep;

impl Backward<Flex, 3> for MaskedConvStep {
    type State = ([NodeId; 3], usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [_, node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (states, stride, pad) = ops.state;
        let [mask, x, weight] =
            states.map(|state| checkpointer.retrieve_node_output::<FlexTensor>(state));
        if let Some(node) = node_x {
            let dx = backward_input(&x, Some(&mask), &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = backward_weight(&x, Some(&mask), &weight, &grad, stride, pad);
            grads.register::<Flex>(node.id, dw);
        }
    }
}

impl<C: CheckpointStrategy> ConvBackend for Autodiff<Flex, C> {
    fn nb201_conv_input_grad(
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        let dx = Flex::nb201_conv_input_grad(
            input.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
            relu_first,
            stride,
            pad,
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(dx)
    }

    fn nb201_conv_weight_grad(
        mask: FloatTensor<Self>,
        input: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        let dw = Flex::nb201_conv_weight_grad(
            mask.into_primitive(),
            input.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
            relu_first,
            stride,
            pad,
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(dw)
    }

    fn nb201_conv_pair(
        mask: FloatTensor<Self>,
        a: FloatTensor<Self>,
        weight_a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight_b: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        let y = Flex::nb201_conv_pair(
            mask.into_primitive(),
            a.into_primitive(),
            weight_a.into_primitive(),
            b.into_primitive(),
            weight_b.into_primitive(),
            relu_first,
            stride,
            pad,
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(y)
    }

    fn nb201_conv_input_grad_pair(
        input: FloatTensor<Self>,
        weight_a: FloatTensor<Self>,
        grad_a: FloatTensor<Self>,
        weight_b: FloatTensor<Self>,
        grad_b: FloatTensor<Self>,
        relu_first: bool,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        let dx = Flex::nb201_conv_input_grad_pair(
            input.into_primitive(),
            weight_a.into_primitive(),
            grad_a.into_primitive(),
            weight_b.into_primitive(),
            grad_b.into_primitive(),
            relu_first,
            stride,
            pad,
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(dx)
    }

    fn nb201_masked_conv(
        mask: FloatTensor<Self>,
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        let nodes = [mask.node(), x.node(), weight.node()];
        match MaskedConvStep
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let states = [&mask, &x, &weight].map(|t| prep.checkpoint(t));
                prep.finish(
                    (states, stride, pad),
                    Flex::nb201_masked_conv(
                        mask.into_primitive(),
                        x.into_primitive(),
                        weight.into_primitive(),
                        stride,
                        pad,
                    ),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_masked_conv(
                mask.into_primitive(),
                x.into_primitive(),
                weight.into_primitive(),
                stride,
                pad,
            )),
        }
    }

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
