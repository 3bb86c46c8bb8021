//! GraSP's Hessian-gradient pass: `θ_l · (H g)_l` per weight layer, `θ` the weights and `g` the
//! loss pass's gradient.

use burn::tensor::{Device, Tensor, TensorData};

use super::{PassCx, PassResults, device_params, inputs, layer_grads, one_hot};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, cross_entropy_tangent, forward};
use crate::network::sweep::{hessian_gradient, tangent_forward};
use crate::proxy::sum_pairs;

/// `θ_l · (H g)_l` for each conv/linear weight layer `l`, `H` the Hessian of the loss over those
/// weights and `g` = `direction` (the loss gradient). On flex, when the loss pass kept its
/// recorded forward and its backward sweep's gradients (`done`): from the tangent of that sweep
/// along `g` (forward-over-reverse), after the tangent of the recorded forward, without forming
/// `H g`. Else (and on other backends) `H g` by back-propagating the forward-mode tangent of the
/// loss along `g` through autodiff (reverse-over-forward), then its product with `θ`. Both are
/// exact.
pub(super) fn run(
    cx: &PassCx<'_>,
    done: &PassResults,
    direction: &[Vec<f64>],
) -> Result<Vec<f64>, ProxyError> {
    let (net, weights, batch) = (cx.net, cx.weights, cx.first_batch);
    let dtype = cx.precision.dtype();
    let on = |device: &Device| -> Vec<Tensor<1>> {
        direction
            .iter()
            .map(|d| Tensor::from_data(TensorData::new(d.clone(), [d.len()]), (device, dtype)))
            .collect()
    };
    if let (Some(mut record), Some(cotangents)) = (done.record(true), done.take_cotangents()) {
        let device = cx.device.clone().inner();
        let params = device_params(net, weights, &device, dtype, false, false);
        let direction = on(&device);
        tangent_forward(net, &params, &direction, &mut record);
        let one_hot = one_hot(batch, net.num_classes(), &device, dtype);
        return Ok(hessian_gradient(
            net, &params, &direction, record, cotangents, one_hot,
        ));
    }
    let device = cx.device;
    let params = device_params(net, weights, device, dtype, false, true);
    let direction = on(device);
    let config = ForwardConfig {
        direction: Some(&direction),
        ..ForwardConfig::new(NormMode::All)
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let tangent = out.tangent.expect("a direction yields a tangent");
    let one_hot = one_hot(batch, net.num_classes(), device, dtype);
    let grads = cross_entropy_tangent(out.logits, tangent, one_hot).backward();
    let hg = layer_grads(net, &params, &grads);
    Ok(net
        .layers()
        .iter()
        .zip(hg)
        .map(|(layer, hg)| sum_pairs(weights.get(layer.weight), &hg, |w, h| w * h))
        .collect())
}
