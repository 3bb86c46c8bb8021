//! NB201's heavy ops with their own CPU kernels: the convolution ([`conv`]), the batch
//! normalisation with batch statistics ([`norm`]), the 3x3 average pool ([`pool`]), the ReLU
//! ([`relu`]) and fisher's tap ([`tap`]).
//!
//! Each is a burn backend extension: flex implements it with host kernels written for NB201's
//! shapes, autodiff wraps it with its own backward, and on any other backend (CUDA) the
//! forward pass keeps composing burn's own ops. burn-flex's generic ops cost several times
//! more on these shapes: its convolution converts every call to channels-last and computes the
//! weight gradient as a convolution with a map-sized kernel, and a batch norm composed of
//! tensor ops makes a dozen full-size temporaries, each kept for the backward.

pub mod conv;
mod conv_kernel;
pub mod norm;
mod norm_kernel;
pub mod pool;
mod pool_kernel;
pub mod relu;
pub mod tap;

use std::mem::MaybeUninit;

use burn::backend::DispatchDevice;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Device, Element, TensorData};

/// What the kernels compute in: `f32` or `f64`.
pub(crate) trait Scalar:
    Copy
    + Default
    + Send
    + Sync
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + PartialOrd
    + bytemuck::Pod
    + Element
    + 'static
{
    /// One, for gemm's scale factors.
    const ONE: Self;
    /// Widens to float64 (the kernels accumulate sums in float64).
    fn wide(self) -> f64;
    /// Rounds a float64 to this type.
    fn narrow(v: f64) -> Self;
}

impl Scalar for f32 {
    const ONE: Self = 1.0;
    fn wide(self) -> f64 {
        self as f64
    }
    fn narrow(v: f64) -> Self {
        v as f32
    }
}

impl Scalar for f64 {
    const ONE: Self = 1.0;
    fn wide(self) -> f64 {
        self
    }
    fn narrow(v: f64) -> Self {
        v
    }
}

/// Whether tensors on `device` run on the flex backend (with or without autodiff), where the
/// kernels apply.
pub(crate) fn is_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// The autodiff step of a result computed outside autodiff (by a backward sweep): a constant,
/// which no gradient flows back through.
#[derive(Debug)]
pub(crate) struct ConstantStep;

impl Backward<Flex, 0> for ConstantStep {
    type State = ();

    fn backward(self, _: Ops<Self::State, 0>, _: &mut Gradients, _: &mut Checkpointer) {}
}

/// Runs `f` on the contiguous host data of `inputs` as `T`, into a new tensor of `shape`, which
/// starts zeroed.
fn run_typed<T: Scalar, const K: usize>(
    inputs: [&FlexTensor; K],
    shape: Vec<usize>,
    f: impl FnOnce([&[T]; K], &mut [T]),
) -> FlexTensor {
    let inputs = inputs.map(FlexTensor::to_contiguous);
    let mut out = vec![T::default(); shape.iter().product()];
    f(
        std::array::from_fn(|i| inputs[i].as_slice::<T>().expect("contiguous")),
        &mut out,
    );
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// [`run_typed`] for a kernel that writes all of its output: the output's memory is handed to
/// it uninitialised (zeroing it first cost a pass over every op's output).
fn run_typed_uninit<T: Scalar, const K: usize>(
    inputs: [&FlexTensor; K],
    shape: Vec<usize>,
    f: impl FnOnce([&[T]; K], &mut [MaybeUninit<T>]),
) -> FlexTensor {
    let inputs = inputs.map(FlexTensor::to_contiguous);
    let len = shape.iter().product();
    let mut out = Vec::with_capacity(len);
    f(
        std::array::from_fn(|i| inputs[i].as_slice::<T>().expect("contiguous")),
        &mut out.spare_capacity_mut()[..len],
    );
    // SAFETY: `f` wrote all `len` elements (this function's contract with its callers).
    unsafe { out.set_len(len) };
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// Runs a kernel in the dtype of the first input (float32 or float64; the others must match);
/// with `uninit`, a kernel that writes all of its output gets it uninitialised
/// ([`run_typed_uninit`]).
macro_rules! dispatch_dtype {
    (uninit $inputs:expr, $shape:expr, |$ins:ident, $out:ident| $body:expr) => {
        dispatch_dtype!(@run run_typed_uninit, $inputs, $shape, |$ins, $out| $body)
    };
    (@run $run:ident, $inputs:expr, $shape:expr, |$ins:ident, $out:ident| $body:expr) => {
        match $inputs[0].dtype() {
            burn::tensor::DType::F32 => {
                $crate::network::ops::$run::<f32, _>($inputs, $shape, |$ins, $out| $body)
            }
            burn::tensor::DType::F64 => {
                $crate::network::ops::$run::<f64, _>($inputs, $shape, |$ins, $out| $body)
            }
            other => panic!("NB201's kernels run in float32 or float64, not {other:?}"),
        }
    };
    ($inputs:expr, $shape:expr, |$ins:ident, $out:ident| $body:expr) => {
        dispatch_dtype!(@run run_typed, $inputs, $shape, |$ins, $out| $body)
    };
}
use dispatch_dtype;
