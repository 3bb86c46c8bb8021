//! nwot's pass: the kernel of binary ReLU codes of the minibatch's images. One forward with
//! batch statistics (train-mode BN), no backward: in NB201 every ReLU lies on a path to the
//! output, so the authors' backward-gated hooks see the same ReLUs as a plain forward.

use super::{PassCx, device_params, inputs, to_host};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, forward};

/// `K[i][j]` = number of ReLU units on which images i and j agree (both active or both
/// inactive), summed over the ReLUs as nwot's authors' hooks count them: twice for a
/// ReLU-conv-BN op's ReLU, once for the head's.
#[derive(Debug, Clone)]
pub struct ReluKernel {
    /// Row-major `[n, n]`.
    pub values: Vec<f64>,
    /// Images in the batch.
    pub n: usize,
}

pub(super) fn run(cx: &PassCx<'_>) -> Result<ReluKernel, ProxyError> {
    let (net, weights, device, batch) = (cx.net, cx.weights, cx.device, cx.first_batch);
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, false);
    let config = ForwardConfig {
        relu_kernel: true,
        ..ForwardConfig::new(NormMode::All)
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let n = batch.batch_size;
    let kernel = out
        .relu_kernel
        .expect("every network has at least the head's ReLU");
    Ok(ReluKernel {
        values: to_host(kernel),
        n,
    })
}
