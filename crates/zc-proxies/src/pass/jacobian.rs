//! The input-Jacobian pass: d(sum of logits)/d(input) per image (jacob_cov, epe_nas).

use burn::tensor::Tensor;

use super::{PassCx, PassKind, PassResults, device_params, inputs, to_host};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, forward};
use crate::network::sweep::{Wanted, backward};

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

/// d(sum of logits)/d(input), BN on: one row per image. A backward sweep over the loss pass's
/// recorded forward when it kept one (`done`), else a forward and backward of its own.
pub(super) fn run(cx: &PassCx<'_>, done: &PassResults) -> Result<InputJacobian, ProxyError> {
    let (net, weights, device, batch) = (cx.net, cx.weights, cx.device, cx.first_batch);
    let dtype = cx.precision.dtype();
    let rows = batch.batch_size;
    let cols = 3 * batch.resolution * batch.resolution;
    let params = device_params(net, weights, device, dtype, false, false);
    let last = !cx.running.contains(&PassKind::HessianGradient);
    if let Some(record) = done.record(last) {
        let params: Vec<Tensor<1>> = params.into_iter().map(Tensor::inner).collect();
        let seed = Tensor::ones([rows, net.num_classes()], (&device.clone().inner(), dtype));
        let wanted = Wanted {
            weights: false,
            fisher: false,
            input: true,
            cotangents: false,
        };
        let gradient = backward(net, &params, record, seed, wanted).input;
        return Ok(InputJacobian {
            values: to_host(gradient.expect("the input's gradient was wanted")),
            rows,
            cols,
        });
    }
    let x = inputs(batch, device, dtype).require_grad();
    let config = ForwardConfig::new(NormMode::All);
    let total = forward(net, &params, x.clone(), config).logits.sum();
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
