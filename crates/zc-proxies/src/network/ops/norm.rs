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
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use super::norm_kernel::{self as kernel, Dims, Stats};
use super::{ConstantStep, Scalar, is_flex, run_typed_uninit};
use crate::network::BN_EPS;

/// The batch norm as a backend extension (flex kernels; autodiff's backward built on them).
#[backend_extension(Flex, Autodiff)]
pub trait NormBackend: Backend {
    /// `(x - mean) / sqrt(var + eps)` per channel of `[N, C, H, W]`, batch statistics.
    fn nb201_batch_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The norm's Jacobian at `x` applied to `v` (its tangent along `v`, and, being symmetric,
    /// its backward of `v`).
    fn nb201_batch_norm_jacobian(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The batch statistics of `x` as `[C, 2]` (each channel's mean and `1/sqrt(σ² + ε)`), for
    /// the ops below, which take them rather than computing them again: a recorded forward
    /// keeps them for the backward sweeps. Outside autodiff (constants), as are the ops below.
    fn nb201_batch_norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `n̂(x)` with the given statistics.
    fn nb201_batch_norm_with(x: FloatTensor<Self>, stats: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `J_x v` with the given statistics.
    fn nb201_batch_norm_jacobian_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `∇_x <b, J_x t>` (what a tangent `t` of the input adds to the backward of `b`) with the
    /// given statistics.
    fn nb201_batch_norm_tangent_backward_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        t: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Per channel (`[C]`), the tangent of `<J_x b, x>` along `t` (of `x`) and `b_dot` (of `b`),
    /// with the given statistics and `dy = J_x b`.
    fn nb201_batch_norm_dot_tangent_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        b: FloatTensor<Self>,
        b_dot: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The batch statistics of `x` for [`batch_norm_with`] and the sweeps' norm steps (flex only).
pub(crate) fn stats(x: &Tensor<4>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm_stats(
        x.clone().into_dispatch(),
    ))
}

/// The batch norm of `x` with its statistics `stats` ([`stats`]; flex only, outside autodiff).
pub(crate) fn batch_norm_with(x: Tensor<4>, stats: Tensor<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm_with(
        x.into_dispatch(),
        stats.into_dispatch(),
    ))
}

/// `J_x v` for the batch norm at `x` with statistics `stats` (flex only, outside autodiff).
pub(crate) fn jacobian_with(x: Tensor<4>, stats: Tensor<2>, v: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as NormBackend>::nb201_batch_norm_jacobian_with(
        x.into_dispatch(),
        stats.into_dispatch(),
        v.into_dispatch(),
    ))
}

/// `∇_x <b, J_x t>` for the batch norm at `x` with statistics `stats` (flex only, outside
/// autodiff).
pub(crate) fn tangent_backward_with(
    x: Tensor<4>,
    stats: Tensor<2>,
    t: Tensor<4>,
    b: Tensor<4>,
) -> Tensor<4> {
    Tensor::from_dispatch(
        <Dispatch as NormBackend>::nb201_batch_norm_tangent_backward_with(
            x.into_dispatch(),
            stats.into_dispatch(),
            t.into_dispatch(),
            b.into_dispatch(),
        ),
    )
}

/// Per channel (`[C]`), the tangent of `<J_x b, x>` for the batch norm at `x` with statistics
/// `stats` when `x` moves along `t` and `b` along `b_dot`, given `dy = J_x b` (flex only, outside
/// autodiff): a weight layer's `<d(dy), x> + <dy, t>` when the norm follows it, without their
/// cancellation ([`kernel::dot_tangent`]).
pub(crate) fn dot_tangent_with(
    x: Tensor<4>,
    stats: Tensor<2>,
    [b, b_dot, t, dy]: [Tensor<4>; 4],
) -> Tensor<1> {
    Tensor::from_dispatch(
        <Dispatch as NormBackend>::nb201_batch_norm_dot_tangent_with(
            x.into_dispatch(),
            stats.into_dispatch(),
            b.into_dispatch(),
            b_dot.into_dispatch(),
            t.into_dispatch(),
            dy.into_dispatch(),
        ),
    )
}

/// The batch norm of `x` (batch statistics, no affine) and its tangent along `t`: the kernels on
/// flex, composed tensor ops elsewhere.
pub fn batch_norm(x: Tensor<4>, t: Option<Tensor<4>>) -> (Tensor<4>, Option<Tensor<4>>) {
    if !is_flex(&x.device()) {
        return composed_batch_norm(x, t);
    }
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

/// Per-channel mean over batch and space. For float32 the sum is accumulated in float64 so that
/// a constant channel (a conv fed by an all-zero node) has a mean exactly equal to its value
/// and normalises to exact zeros, as in PyTorch.
pub(crate) fn channel_mean(x: &Tensor<4>) -> Tensor<4> {
    if x.dtype() == DType::F32 {
        x.clone()
            .cast(FloatDType::F64)
            .mean_dims(&[0, 2, 3])
            .cast(FloatDType::F32)
    } else {
        x.clone().mean_dims(&[0, 2, 3])
    }
}

/// The batch norm with batch statistics (no affine) and its tangent, composed of tensor ops:
/// what backends without NB201's kernels run.
fn composed_batch_norm(x: Tensor<4>, t: Option<Tensor<4>>) -> (Tensor<4>, Option<Tensor<4>>) {
    let dims = [0, 2, 3];
    let centred = x.clone() - channel_mean(&x);
    let inv_std = centred
        .clone()
        .square()
        .mean_dims(&dims)
        .add_scalar(BN_EPS)
        .sqrt()
        .recip();
    let normed = centred.clone() * inv_std.clone();
    let tangent = t.map(|t| {
        let t_centred = t.clone() - t.mean_dims(&dims);
        let half_var_tangent = (centred * t_centred.clone()).mean_dims(&dims);
        (t_centred - normed.clone() * half_var_tangent * inv_std.clone()) * inv_std
    });
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

/// Every channel's statistics of a norm's input, in its dtype: computed once per norm and kept
/// for the backward.
#[derive(Clone, Debug)]
enum ChannelStats {
    F32(Vec<Stats<f32>>),
    F64(Vec<Stats<f64>>),
}

fn channel_stats(x: &FlexTensor) -> ChannelStats {
    let d = dims(x);
    let x = x.to_contiguous();
    match x.dtype() {
        DType::F32 => ChannelStats::F32(kernel::stats(&d, x.as_slice().expect("contiguous"))),
        DType::F64 => ChannelStats::F64(kernel::stats(&d, x.as_slice().expect("contiguous"))),
        other => panic!("NB201's kernels run in float32 or float64, not {other:?}"),
    }
}

/// Runs a kernel with the statistics and inputs of their dtype, into a tensor shaped as `x` (which
/// the kernel writes in full).
macro_rules! with_stats {
    ($stats:expr, $x:expr, $inputs:expr, |$s:ident, $ins:ident, $out:ident| $body:expr) => {{
        let shape = $x.layout().shape().to_vec();
        match $stats {
            ChannelStats::F32($s) => run_typed_uninit::<f32, _>($inputs, shape, |$ins, $out| $body),
            ChannelStats::F64($s) => run_typed_uninit::<f64, _>($inputs, shape, |$ins, $out| $body),
        }
    }};
}

/// `n̂(x)`.
fn normalise(x: &FlexTensor, stats: &ChannelStats) -> FlexTensor {
    let d = dims(x);
    with_stats!(stats, x, [x], |s, ins, out| kernel::forward(
        &d, s, ins[0], out
    ))
}

/// `J_x v`.
fn jacobian(x: &FlexTensor, v: &FlexTensor, stats: &ChannelStats) -> FlexTensor {
    let d = dims(x);
    with_stats!(stats, x, [x, v], |s, ins, out| {
        kernel::jacobian(&d, s, ins[0], ins[1], out)
    })
}

/// `∇_x <grad, J_x t>`: the part of the tangent's backward that reaches `x`.
fn tangent_backward(
    x: &FlexTensor,
    t: &FlexTensor,
    grad: &FlexTensor,
    stats: &ChannelStats,
) -> FlexTensor {
    let d = dims(x);
    with_stats!(stats, x, [x, t, grad], |s, ins, out| {
        kernel::tangent_backward(&d, s, ins[0], ins[1], ins[2], out)
    })
}

/// [`kernel::dot_tangent`] as a `[C]` tensor in `x`'s dtype.
fn dot_tangent(
    x: &FlexTensor,
    [b, b_dot, t, dy]: [&FlexTensor; 4],
    stats: &ChannelStats,
) -> FlexTensor {
    fn run<T: Scalar>(d: &Dims, s: &[Stats<T>], inputs: [&FlexTensor; 5]) -> FlexTensor {
        let inputs = inputs.map(|t| t.to_contiguous());
        let slices = [0, 1, 2, 3, 4].map(|i| inputs[i].as_slice::<T>().expect("contiguous"));
        let values: Vec<T> = kernel::dot_tangent(d, s, slices)
            .into_iter()
            .map(T::narrow)
            .collect();
        FlexTensor::from_data(TensorData::new(values, [d.channels]))
    }
    let d = dims(x);
    match stats {
        ChannelStats::F32(s) => run(&d, s, [x, b, b_dot, t, dy]),
        ChannelStats::F64(s) => run(&d, s, [x, b, b_dot, t, dy]),
    }
}

impl NormBackend for Flex {
    fn nb201_batch_norm(x: FlexTensor) -> FlexTensor {
        normalise(&x, &channel_stats(&x))
    }

    fn nb201_batch_norm_jacobian(x: FlexTensor, v: FlexTensor) -> FlexTensor {
        jacobian(&x, &v, &channel_stats(&x))
    }

    fn nb201_batch_norm_stats(x: FlexTensor) -> FlexTensor {
        stats_tensor(&channel_stats(&x))
    }

    fn nb201_batch_norm_with(x: FlexTensor, stats: FlexTensor) -> FlexTensor {
        normalise(&x, &stats_of(&stats))
    }

    fn nb201_batch_norm_jacobian_with(
        x: FlexTensor,
        stats: FlexTensor,
        v: FlexTensor,
    ) -> FlexTensor {
        jacobian(&x, &v, &stats_of(&stats))
    }

    fn nb201_batch_norm_tangent_backward_with(
        x: FlexTensor,
        stats: FlexTensor,
        t: FlexTensor,
        b: FlexTensor,
    ) -> FlexTensor {
        tangent_backward(&x, &t, &b, &stats_of(&stats))
    }

    fn nb201_batch_norm_dot_tangent_with(
        x: FlexTensor,
        stats: FlexTensor,
        b: FlexTensor,
        b_dot: FlexTensor,
        t: FlexTensor,
        dy: FlexTensor,
    ) -> FlexTensor {
        dot_tangent(&x, [&b, &b_dot, &t, &dy], &stats_of(&stats))
    }
}

/// Statistics as a `[C, 2]` tensor: each channel's mean and inverse standard deviation.
fn stats_tensor(stats: &ChannelStats) -> FlexTensor {
    fn data<T: Scalar>(s: &[Stats<T>]) -> TensorData {
        let pairs: Vec<T> = s.iter().flat_map(|s| [s.mean, s.inv_std]).collect();
        TensorData::new(pairs, [s.len(), 2])
    }
    FlexTensor::from_data(match stats {
        ChannelStats::F32(s) => data(s),
        ChannelStats::F64(s) => data(s),
    })
}

/// The statistics of a [`stats_tensor`].
fn stats_of(t: &FlexTensor) -> ChannelStats {
    fn read<T: Scalar>(values: &[T]) -> Vec<Stats<T>> {
        values
            .chunks(2)
            .map(|p| Stats {
                mean: p[0],
                inv_std: p[1],
            })
            .collect()
    }
    let t = t.to_contiguous();
    match t.dtype() {
        DType::F32 => ChannelStats::F32(read(t.as_slice::<f32>().expect("contiguous"))),
        DType::F64 => ChannelStats::F64(read(t.as_slice::<f64>().expect("contiguous"))),
        other => panic!("NB201's kernels run in float32 or float64, not {other:?}"),
    }
}

/// Backward of the norm: `dx = J_x dy`.
#[derive(Debug)]
struct NormStep;

impl Backward<Flex, 1> for NormStep {
    type State = (NodeId, ChannelStats);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, stats) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, jacobian(&x, &grad, &stats));
        }
    }
}

/// Backward of the Jacobian product `J_x v`: `dv = J_x dy`, `dx = ∇_x <dy, J_x v>`.
#[derive(Debug)]
struct JacobianStep;

impl Backward<Flex, 2> for JacobianStep {
    type State = (NodeId, NodeId, ChannelStats);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_v] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, v_state, stats) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let v = checkpointer.retrieve_node_output::<FlexTensor>(v_state);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tangent_backward(&x, &v, &grad, &stats));
        }
        if let Some(node) = node_v {
            grads.register::<Flex>(node.id, jacobian(&x, &grad, &stats));
        }
    }
}

impl<C: CheckpointStrategy> NormBackend for Autodiff<Flex, C> {
    fn nb201_batch_norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = Flex::nb201_batch_norm_stats(x.into_primitive());
        ConstantStep.prepare::<C>([]).compute_bound().stateless(out)
    }

    fn nb201_batch_norm_with(x: FloatTensor<Self>, stats: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = Flex::nb201_batch_norm_with(x.into_primitive(), stats.into_primitive());
        ConstantStep.prepare::<C>([]).compute_bound().stateless(out)
    }

    fn nb201_batch_norm_jacobian_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let out = Flex::nb201_batch_norm_jacobian_with(
            x.into_primitive(),
            stats.into_primitive(),
            v.into_primitive(),
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(out)
    }

    fn nb201_batch_norm_tangent_backward_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        t: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let out = Flex::nb201_batch_norm_tangent_backward_with(
            x.into_primitive(),
            stats.into_primitive(),
            t.into_primitive(),
            b.into_primitive(),
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(out)
    }

    fn nb201_batch_norm_dot_tangent_with(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        b: FloatTensor<Self>,
        b_dot: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let out = Flex::nb201_batch_norm_dot_tangent_with(
            x.into_primitive(),
            stats.into_primitive(),
            b.into_primitive(),
            b_dot.into_primitive(),
            t.into_primitive(),
            dy.into_primitive(),
        );
        ConstantStep.prepare::<C>([]).compute_bound().stateless(out)
    }

    fn nb201_batch_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let stats = channel_stats(x.primitive());
        match NormStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                let out = normalise(x.primitive(), &stats);
                prep.finish((state, stats), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(normalise(x.primitive(), &stats)),
        }
    }

    fn nb201_batch_norm_jacobian(x: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self> {
        let stats = channel_stats(x.primitive());
        match JacobianStep
            .prepare::<C>([x.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, v_state) = (prep.checkpoint(&x), prep.checkpoint(&v));
                let out = jacobian(x.primitive(), v.primitive(), &stats);
                prep.finish((x_state, v_state, stats), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(jacobian(x.primitive(), v.primitive(), &stats)),
        }
    }
}
