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
use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, TensorData};

use super::pool_kernel as kernel;
use super::{ConstantStep, dispatch_dtype, is_flex};

/// The pool as a backend extension (flex kernel; autodiff's backward built on it).
#[backend_extension(Flex, Autodiff)]
pub trait PoolBackend: Backend {
    /// The 3x3 average pool of `[N, C, H, W]`.
    fn nb201_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The pool's adjoint applied to `grad`, for backward sweeps outside autodiff: the result
    /// is a constant.
    fn nb201_avg_pool_adjoint(grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The 3x3 average pool: the kernel on flex, composed tensor ops elsewhere.
pub fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    if !is_flex(&x.device()) {
        return composed_avg_pool_3x3(x);
    }
    Tensor::from_dispatch(<Dispatch as PoolBackend>::nb201_avg_pool(x.into_dispatch()))
}

/// The adjoint of [`avg_pool_3x3`] applied to `grad`: flex's kernel, for the backward sweeps of
/// [`crate::network::sweep`] (flex only).
pub(crate) fn avg_pool_3x3_adjoint(grad: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as PoolBackend>::nb201_avg_pool_adjoint(
        grad.into_dispatch(),
    ))
}

/// [`avg_pool_3x3`] composed of tensor ops, for backends without NB201's kernels: a separable
/// box sum of the zero-padded input times the reciprocal of each window's count.
fn composed_avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let padded = x.clone().pad((1, 1, 1, 1), PadMode::Constant(0.0));
    let box3 = |t: Tensor<4>, dim: usize, len: usize| {
        t.clone().narrow(dim, 0, len) + t.clone().narrow(dim, 1, len) + t.narrow(dim, 2, len)
    };
    let sums = box3(box3(padded, 3, w), 2, h);
    // Window counts: 3 per axis inside, 2 on a border row or column.
    let span = |i: usize, len: usize| if i == 0 || i + 1 == len { 2.0 } else { 3.0 };
    let inverse: Vec<f64> = (0..h)
        .flat_map(|i| (0..w).map(move |j| 1.0 / (span(i, h) * span(j, w))))
        .collect();
    let inverse = Tensor::<4>::from_data(
        TensorData::new(inverse, [1, 1, h, w]),
        (&x.device(), x.dtype()),
    );
    sums * inverse
}

impl PoolBackend for Flex {
    fn nb201_avg_pool(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let (h, w) = (shape[2], shape[3]);
        dispatch_dtype!(uninit[&x], shape, |ins, out| kernel::forward(
            ins[0], h, w, out
        ))
    }

    fn nb201_avg_pool_adjoint(grad: FlexTensor) -> FlexTensor {
        backward(grad)
    }
}

/// The pool's backward: `dx = poolᵀ(dy)`.
fn backward(grad: FlexTensor) -> FlexTensor {
    let shape = grad.layout().shape().to_vec();
    let (h, w) = (shape[2], shape[3]);
    dispatch_dtype!(uninit[&grad], shape, |ins, out| kernel::backward(
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
    fn nb201_avg_pool_adjoint(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let dx = Flex::nb201_avg_pool_adjoint(grad.into_primitive());
        ConstantStep.prepare::<C>([]).compute_bound().stateless(dx)
    }

    fn nb201_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match PoolStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((), Flex::nb201_avg_pool(x.into_primitive())),
            OpsKind::UnTracked(prep) => prep.finish(Flex::nb201_avg_pool(x.into_primitive())),
        }
    }
}
