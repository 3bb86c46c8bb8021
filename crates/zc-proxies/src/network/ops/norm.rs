//! Batch normalisation with batch statistics and no affine (the affine part stays with the
//! caller), with its forward tangent: fused kernels on flex ([`super::norm_kernel`]).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::dispatch_dtype;
use super::norm_kernel::{self as kernel, Dims};

/// The batch norm as a backend extension (flex kernels; autodiff's backward built on them).
#[backend_extension(Flex, Autodiff)]
pub trait NormBackend: Backend {
    /// `(x - mean) / sqrt(var + eps)` per channel of `[N, C, H, W]`, batch statistics.
    fn nb201_batch_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The norm's Jacobian at `x` applied to `v` (its tangent along `v`, and, being symmetric,
    /// its backward of `v`).
    fn nb201_batch_norm_jacobian(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The batch norm of `x` and its tangent along `t` (flex devices only: see
/// [`super::is_flex`]).
pub fn batch_norm(x: Tensor<4>, t: Option<Tensor<4>>) -> (Tensor<4>, Option<Tensor<4>>) {
    let tangent = t.map(|t| {
        Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm_jacobian(
            x.clone().into_dispatch(),
            t.into_dispatch(),
        ))
    });
    let normed = Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm(
        x.into_dispatch(),
    ));
    (normed, tangent)
}

fn dims(x: &FlexTensor) -> Dims {
    let [batch, channels, h, w] = x.layout().shape().dims();
    Dims {
        batch,
        channels,
        plane: h * w,
    }
}

impl NormBackend for Flex {
    fn nb201_batch_norm(x: FlexTensor) -> FlexTensor {
        let d = dims(&x);
        let shape = x.layout().shape().to_vec();
        dispatch_dtype!([&x], shape, |ins, out| kernel::forward(&d, ins[0], out))
    }

    fn nb201_batch_norm_jacobian(x: FlexTensor, v: FlexTensor) -> FlexTensor {
        let d = dims(&x);
        let shape = x.layout().shape().to_vec();
        dispatch_dtype!([&x, &v], shape, |ins, out| {
            kernel::jacobian(&d, ins[0], ins[1], out)
        })
    }
}

/// `∇_x <grad, J_x t>`: the part of the tangent's backward that reaches `x`.
fn tangent_backward(x: FlexTensor, t: FlexTensor, grad: FlexTensor) -> FlexTensor {
    let d = dims(&x);
    let shape = x.layout().shape().to_vec();
    dispatch_dtype!([&x, &t, &grad], shape, |ins, out| {
        kernel::tangent_backward(&d, ins[0], ins[1], ins[2], out)
    })
}

/// Backward of the norm: `dx = J_x dy`.
#[derive(Debug)]
struct NormStep;

impl Backward<Flex, 1> for NormStep {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FlexTensor>(ops.state);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, Flex::nb201_batch_norm_jacobian(x, grad));
        }
    }
}

/// Backward of the Jacobian product `J_x v`: `dv = J_x dy`, `dx = ∇_x <dy, J_x v>`.
#[derive(Debug)]
struct JacobianStep;

impl Backward<Flex, 2> for JacobianStep {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_v] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, v_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let v = checkpointer.retrieve_node_output::<FlexTensor>(v_state);
        if let Some(node) = node_x {
            let dx = tangent_backward(x.clone(), v, grad.clone());
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_v {
            grads.register::<Flex>(node.id, Flex::nb201_batch_norm_jacobian(x, grad));
        }
    }
}

impl<C: CheckpointStrategy> NormBackend for Autodiff<Flex, C> {
    fn nb201_batch_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match NormStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, Flex::nb201_batch_norm(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_batch_norm(x.into_primitive())),
        }
    }

    fn nb201_batch_norm_jacobian(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self> {
        match JacobianStep
            .prepare::<C>([x.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&v));
                prep.finish(
                    state,
                    Flex::nb201_batch_norm_jacobian(x.into_primitive(), v.into_primitive()),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_batch_norm_jacobian(
                x.into_primitive(),
                v.into_primitive(),
            )),
        }
    }
}
