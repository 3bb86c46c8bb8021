//! NB201's 3x3 average pool (stride 1, padding 1, `count_include_pad=False`): a flex kernel
//! ([`super::pool_kernel`]) with its own backward. Being linear, the pool is also its own
//! tangent.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::dispatch_dtype;
use super::pool_kernel as kernel;

/// The pool as a backend extension (flex kernel; autodiff's backward built on it).
#[backend_extension(Flex, Autodiff)]
pub trait PoolBackend: Backend {
    /// The 3x3 average pool of `[N, C, H, W]`.
    fn nb201_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The 3x3 average pool (flex devices only: see [`super::is_flex`]).
pub fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as PoolBackend>::nb201_avg_pool(x.into_dispatch()))
}

impl PoolBackend for Flex {
    fn nb201_avg_pool(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let (h, w) = (shape[2], shape[3]);
        dispatch_dtype!([&x], shape, |ins, out| kernel::forward(ins[0], h, w, out))
    }
}

/// The pool's backward: `dx = poolᵀ(dy)`.
fn backward(grad: FlexTensor) -> FlexTensor {
    let shape = grad.layout().shape().to_vec();
    let (h, w) = (shape[2], shape[3]);
    dispatch_dtype!([&grad], shape, |ins, out| kernel::backward(
        ins[0], h, w, out
    ))
}

/// Backward step of the pool: it needs no state.
#[derive(Debug)]
struct PoolStep;

impl Backward<Flex, 1> for PoolStep {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, backward(grad));
        }
    }
}

impl<C: CheckpointStrategy> PoolBackend for Autodiff<Flex, C> {
    fn nb201_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match PoolStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((), Flex::nb201_avg_pool(x.into_primitive())),
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_avg_pool(x.into_primitive())),
        }
    }
}
