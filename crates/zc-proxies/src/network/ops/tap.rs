//! Fisher's tap as a flex op with its own backward: `tap(a, leaf) = a·(1 + leaf)`, with `a`
//! `[N, C, H, W]` and `leaf` `[N, C, 1, 1]` broadcast over each plane. Its backward gives `a`
//! the gradient times `1 + leaf`, and `leaf` the plane sums `Σ_hw a·dy`, what fisher squares.
//!
//! Fisher's leaf is zero, so the forward is `a` itself and the gradient reaches `a` unchanged:
//! both are exact, and cost no copy. Composed of burn's ops, each tap made a full-size product
//! in the forward and two in the backward, for every conv output of the loss pass.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor};

use super::norm_kernel::{self, CHUNK};
use super::{ConstantStep, Scalar, dispatch_dtype, is_flex};

/// The tap as a backend extension (flex kernels; autodiff's backward built on them).
#[backend_extension(Flex, Autodiff)]
pub trait TapBackend: Backend {
    /// `a·(1 + leaf)`, `leaf` `[N, C, 1, 1]` broadcast over each plane of `a`.
    fn nb201_tap(a: FloatTensor<Self>, leaf: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `Σ_hw a·dy` per image and channel of `[N, C, H, W]` (as `[N, C, 1, 1]`, summed in
    /// float64): the leaf's gradient, for backward sweeps outside autodiff (a constant).
    fn nb201_plane_sums(a: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `a·(1 + leaf)`: the kernels on flex, tensor ops elsewhere.
pub fn tap(a: Tensor<4>, leaf: Tensor<4>) -> Tensor<4> {
    if !is_flex(&a.device()) {
        return a * leaf.add_scalar(1.0);
    }
    Tensor::from_dispatch(<Dispatch as TapBackend>::nb201_tap(
        a.into_dispatch(),
        leaf.into_dispatch(),
    ))
}

/// `Σ_hw a·dy` per image and channel of `a` and `dy` (`[N, C, H, W]`), as `[N, C, 1, 1]`:
/// fisher's per-channel sums, for the backward sweeps of [`crate::network::sweep`] (flex only).
pub(crate) fn tap_plane_sums(a: Tensor<4>, dy: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as TapBackend>::nb201_plane_sums(
        a.into_dispatch(),
        dy.into_dispatch(),
    ))
}

/// `out = a·(1 + leaf[p])` on each plane `p` of `a`.
fn scale<T: Scalar>(a: &[T], leaf: &[T], out: &mut [T]) {
    let plane = a.len() / leaf.len().max(1);
    for ((dst, src), &l) in out.chunks_mut(plane).zip(a.chunks(plane)).zip(leaf) {
        let factor = T::ONE + l;
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = v * factor;
        }
    }
}

// multiversion runs the first of its targets that the CPU supports, so the widest comes first.
/// `out[p] = Σ a·dy` over each plane `p`, accumulated in float64 (vectorised partial sums: one
/// running sum made this a tenth of the loss sweep's non-product time).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
fn plane_sums<T: Scalar>(a: &[T], dy: &[T], out: &mut [T]) {
    let plane = a.len() / out.len().max(1);
    let mut scratch = [[0.0; CHUNK]; 1];
    for ((sum, a), dy) in out.iter_mut().zip(a.chunks(plane)).zip(dy.chunks(plane)) {
        let [total] = norm_kernel::plane_sums(
            [a, dy],
            |[a, d]: [T; 2]| [a.wide() * d.wide()],
            &mut scratch,
        );
        *sum = T::narrow(total);
    }
}

/// Whether every value of `t` is zero.
fn is_zero(t: &FlexTensor) -> bool {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::F32 => t
            .as_slice::<f32>()
            .is_some_and(|v| v.iter().all(|&x| x == 0.0)),
        DType::F64 => t
            .as_slice::<f64>()
            .is_some_and(|v| v.iter().all(|&x| x == 0.0)),
        _ => false,
    }
}

impl TapBackend for Flex {
    fn nb201_tap(a: FlexTensor, leaf: FlexTensor) -> FlexTensor {
        if is_zero(&leaf) {
            return a;
        }
        let shape = a.layout().shape().to_vec();
        dispatch_dtype!([&a, &leaf], shape, |ins, out| scale(ins[0], ins[1], out))
    }

    fn nb201_plane_sums(a: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let [n, c, _, _] = a.layout().shape().dims();
        dispatch_dtype!([&a, &dy], vec![n, c, 1, 1], |ins, out| {
            plane_sums(ins[0], ins[1], out)
        })
    }
}

/// Backward of the tap: `da = dy·(1 + leaf)`, `dleaf = Σ_hw a·dy`.
#[derive(Debug)]
struct TapStep;

impl Backward<Flex, 2> for TapStep {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_a, node_leaf] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (a_state, leaf_state) = ops.state;
        let a = checkpointer.retrieve_node_output::<FlexTensor>(a_state);
        let leaf = checkpointer.retrieve_node_output::<FlexTensor>(leaf_state);
        if let Some(node) = node_leaf {
            let shape = leaf.layout().shape().to_vec();
            let dleaf = dispatch_dtype!([&a, &grad], shape, |ins, out| {
                plane_sums(ins[0], ins[1], out)
            });
            grads.register::<Flex>(node.id, dleaf);
        }
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, Flex::nb201_tap(grad, leaf));
        }
    }
}

impl<C: CheckpointStrategy> TapBackend for Autodiff<Flex, C> {
    fn nb201_plane_sums(a: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        let sums = Flex::nb201_plane_sums(a.into_primitive(), dy.into_primitive());
        ConstantStep
            .prepare::<C>([])
            .compute_bound()
            .stateless(sums)
    }

    fn nb201_tap(a: FloatTensor<Self>, leaf: FloatTensor<Self>) -> FloatTensor<Self> {
        match TapStep
            .prepare::<C>([a.node(), leaf.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&a), prep.checkpoint(&leaf));
                prep.finish(
                    state,
                    Flex::nb201_tap(a.into_primitive(), leaf.into_primitive()),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::nb201_tap(a.into_primitive(), leaf.into_primitive()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels are the tap's definition and its adjoint: `scale` multiplies each plane by
    /// `1 + leaf`, and `plane_sums` is the derivative of `<dy, a·(1 + leaf)>` in `leaf`.
    #[test]
    fn kernels_are_the_product_and_its_leaf_derivative() {
        let a: Vec<f64> = (0..12).map(|i| i as f64 - 5.5).collect();
        let dy: Vec<f64> = (0..12).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let leaf = [0.5, -1.0, 2.0];
        let mut out = vec![0.0; 12];
        scale(&a, &leaf, &mut out);
        for (i, (o, v)) in out.iter().zip(&a).enumerate() {
            assert_eq!(*o, v * (1.0 + leaf[i / 4]));
        }
        let mut sums = [0.0; 3];
        plane_sums(&a, &dy, &mut sums);
        for (p, sum) in sums.iter().enumerate() {
            let expected: f64 = (0..4).map(|j| a[4 * p + j] * dy[4 * p + j]).sum();
            assert_eq!(*sum, expected);
        }
    }
}
