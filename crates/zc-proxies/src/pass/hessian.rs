//! GraSP's Hessian-gradient pass: `H g` with `g` the loss pass's gradient.

use burn::tensor::{Tensor, TensorData};

use super::{PassCx, device_params, inputs, layer_grads, one_hot};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, cross_entropy_tangent, forward};

/// Hessian-vector product `H g` over the conv/linear weights, by back-propagating the forward-mode
/// tangent of the loss along `direction` (the loss gradient, held constant).
pub(super) fn run(cx: &PassCx<'_>, direction: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, ProxyError> {
    let (net, weights, device, batch) = (cx.net, cx.weights, cx.device, cx.first_batch);
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, true);
    let direction: Vec<Tensor<1>> = direction
        .iter()
        .map(|d| Tensor::from_data(TensorData::new(d.clone(), [d.len()]), (device, dtype)))
        .collect();
    let config = ForwardConfig {
        direction: Some(&direction),
        ..ForwardConfig::new(NormMode::All)
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let tangent = out.tangent.expect("a direction yields a tangent");
    let one_hot = one_hot(batch, net.num_classes(), device, dtype);
    let grads = cross_entropy_tangent(out.logits, tangent, one_hot).backward();
    Ok(layer_grads(net, &params, &grads))
}
