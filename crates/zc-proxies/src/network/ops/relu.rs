//! ReLU and its tangent as flex kernels with their own backward. burn's ReLU and the masking of
//! a tangent each build a boolean mask tensor and copy through it, a tenth of a cell's time.
//!
//! The tangent of `relu(x)` along `t` is `t·[x > 0]`: the mask is a constant of the tangent
//! (relu'' = 0, as PyTorch differentiates it), so its backward reaches `t` only.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::{Scalar, dispatch_dtype, is_flex};

/// ReLU as a backend extension (flex kernels; autodiff's backward built on them).
#[backend_extension(Flex, Autodiff)]
pub trait ReluBackend: Backend {
    /// `max(x, 0)`.
    fn nb201_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `v·[x > 0]` (`v` where `x` is NaN): the tangent of the ReLU at `x` along `v`, and its backward of `v`.
    fn nb201_relu_mask(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The ReLU of `x` and its tangent along `t`: the kernels on flex, tensor ops elsewhere.
pub fn relu<const D: usize>(x: Tensor<D>, t: Option<Tensor<D>>) -> (Tensor<D>, Option<Tensor<D>>) {
    if !is_flex(&x.device()) {
        let t = t.map(|t| t.mask_fill(x.clone().lower_equal_elem(0.0), 0.0));
        return (burn::tensor::activation::relu(x), t);
    }
    let tangent = t.map(|t| {
        Tensor::from_dispatch(<Dispatch as ReluBackend>::nb201_relu_mask(
            x.clone().into_dispatch(),
            t.into_dispatch(),
        ))
    });
    let value = Tensor::from_dispatch(<Dispatch as ReluBackend>::nb201_relu(x.into_dispatch()));
    (value, tangent)
}

/// `out = v` where `x <= 0` does not hold (so a NaN passes, as through PyTorch's ReLU), else 0.
fn mask<T: Scalar>(x: &[T], v: &[T], out: &mut [T]) {
    for ((o, &x), &v) in out.iter_mut().zip(x).zip(v) {
        *o = if x <= T::default() { T::default() } else { v };
    }
}

impl ReluBackend for Flex {
    fn nb201_relu(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        dispatch_dtype!([&x], shape, |ins, out| mask(ins[0], ins[0], out))
    }

    fn nb201_relu_mask(x: FlexTensor, v: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        dispatch_dtype!([&x, &v], shape, |ins, out| mask(ins[0], ins[1], out))
    }
}

/// Backward of the ReLU: `dx = dy·[x > 0]`.
#[derive(Debug)]
struct ReluStep;

impl Backward<Flex, 1> for ReluStep {
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
            grads.register::<Flex>(node.id, Flex::nb201_relu_mask(x, grad));
        }
    }
}

/// Backward of the masking `v·[x > 0]`: `dv = dy·[x > 0]`; the mask is a constant in `x`.
#[derive(Debug)]
struct MaskStep;

impl Backward<Flex, 2> for MaskStep {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [_, node_v] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FlexTensor>(ops.state);
        if let Some(node) = node_v {
            grads.register::<Flex>(node.id, Flex::nb201_relu_mask(x, grad));
        }
    }
}

impl<C: CheckpointStrategy> ReluBackend for Autodiff<Flex, C> {
    fn nb201_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, Flex::nb201_relu(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_relu(x.into_primitive())),
        }
    }

    fn nb201_relu_mask(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaskStep
            .prepare::<C>([x.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(
                    state,
                    Flex::nb201_relu_mask(x.into_primitive(), v.into_primitive()),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_relu_mask(
                x.into_primitive(),
                v.into_primitive(),
            )),
        }
    }
}
