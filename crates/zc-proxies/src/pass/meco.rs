//! MeCo's pass: one train-mode forward of the minibatch's first image, summing the smallest
//! eigenvalue of each module output's channel correlation (see `ForwardOutput::meco`).

use burn::tensor::{Tensor, TensorData};

use super::{PassCx, device_params};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, forward};

pub(super) fn run(cx: &PassCx<'_>) -> Result<f64, ProxyError> {
    let (net, weights, device, batch) = (cx.net, cx.weights, cx.device, cx.first_batch);
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, false);
    let r = batch.resolution;
    let first = batch.images[..3 * r * r].to_vec();
    let x = Tensor::<4>::from_data(TensorData::new(first, [1, 3, r, r]), (device, dtype));
    let config = ForwardConfig {
        meco: true,
        ..ForwardConfig::new(NormMode::All)
    };
    Ok(forward(net, &params, x, config).meco)
}
