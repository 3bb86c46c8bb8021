//! synflow's pass: |theta| in float64 on one all-ones image.

use burn::tensor::{DType, Tensor};

use super::{PassCx, device_params, layer_grads, to_host};
use crate::network::forward::{ForwardConfig, NormMode, forward};

/// Result of a synflow pass.
#[derive(Debug, Clone)]
pub struct SynflowGradients {
    /// |W| per weight layer.
    pub abs_weights: Vec<Vec<f64>>,
    /// dR/d|W| per weight layer, R = sum of logits.
    pub grads: Vec<Vec<f64>>,
}

/// synflow's pass: |theta| in float64, R = sum of logits of one all-ones image, backward.
pub(super) fn run(cx: &PassCx<'_>, norms: NormMode) -> SynflowGradients {
    let (net, weights, device, resolution) =
        (cx.net, cx.weights, cx.device, cx.first_batch.resolution);
    let params = device_params(net, weights, device, DType::F64, true, true);
    let x = Tensor::<4>::ones([1, 3, resolution, resolution], (device, DType::F64));
    let out = forward(net, &params, x, ForwardConfig::new(norms));
    let grads = out.logits.sum().backward();
    let abs_weights = net
        .layers()
        .iter()
        .map(|l| to_host(params[l.weight].clone().inner()))
        .collect();
    SynflowGradients {
        abs_weights,
        grads: layer_grads(net, &params, &grads),
    }
}
