//! The input-Jacobian pass: d(sum of logits)/d(input) per image (jacob_cov, epe_nas).

use super::{PassCx, device_params, inputs, to_host};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, forward};

/// Input Jacobian rows: one row of `3*H*W` values per image.
#[derive(Debug, Clone)]
pub struct InputJacobian {
    /// Row-major `[rows, cols]`.
    pub values: Vec<f64>,
    /// Images in the batch.
    pub rows: usize,
    /// Values per image.
    pub cols: usize,
}

/// d(sum of logits)/d(input), BN on: one row per image.
pub(super) fn run(cx: &PassCx<'_>) -> Result<InputJacobian, ProxyError> {
    let (net, weights, device, batch) = (cx.net, cx.weights, cx.device, cx.first_batch);
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, false);
    let x = inputs(batch, device, dtype).require_grad();
    let config = ForwardConfig::new(NormMode::All);
    let total = forward(net, &params, x.clone(), config).logits.sum();
    let rows = batch.batch_size;
    let cols = 3 * batch.resolution * batch.resolution;
    // When no path of active ops joins input and output, the logits do not depend on the input:
    // the Jacobian is zero (and jacob_cov NaN).
    let gradient = total
        .is_tracked()
        .then(|| total.backward())
        .and_then(|grads| x.grad(&grads));
    Ok(InputJacobian {
        values: gradient.map_or_else(|| vec![0.0; rows * cols], to_host),
        rows,
        cols,
    })
}
