//! The loss pass: forward + backward of the cross-entropy on a minibatch (BN on), with fisher's
//! per-channel sums when asked for.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::{
    PassCx, PassKind, PassResults, device_params, inputs, layer_grads, one_hot, per_layer_on_host,
    to_host,
};
use crate::ProxyError;
use crate::network::Minibatch;
use crate::network::forward::{ForwardConfig, NormMode, cross_entropy, forward};
use crate::network::sweep::{Wanted, backward};

/// Result of the loss pass.
#[derive(Debug, Clone)]
pub struct LossGradients {
    /// dL/dW per weight layer (flattened, [`Nb201Network::layers`] order).
    pub grads: Vec<Vec<f64>>,
    /// Per layer: sum over output channels k of `0.5 * mean_n (sum_hw A*G)^2`; present when
    /// the pass ran with fisher taps.
    pub fisher_channel_sums: Option<Vec<f64>>,
}

/// Forward + backward of the loss on minibatch `stream`; with `fisher`, also the per-layer
/// fisher channel sums. On flex, a recorded forward and a backward sweep over it; on the usual
/// minibatch, the record is kept in `done` for the input-Jacobian and Hessian-gradient passes
/// when they run too (it is their forward as well), and the sweep's gradients for the
/// Hessian-gradient pass (it runs the tangent of this sweep). Elsewhere (or with
/// [`PassCx::sweeps`] off), autodiff, fisher through taps.
pub(super) fn run(
    cx: &PassCx<'_>,
    done: &PassResults,
    stream: usize,
    fisher: bool,
) -> Result<LossGradients, ProxyError> {
    let batch = cx.batch(stream)?;
    let batch = batch.as_ref();
    if !cx.sweeps {
        return Ok(by_autodiff(cx, batch, fisher));
    }
    let (net, dtype) = (cx.net, cx.precision.dtype());
    let device = cx.device.clone().inner();
    let params = device_params(net, cx.weights, &device, dtype, false, false);
    let config = ForwardConfig {
        record: true,
        ..ForwardConfig::new(NormMode::All)
    };
    let out = forward(net, &params, inputs(batch, &device, dtype), config);
    let record = out.record.expect("a recorded forward keeps its record");
    // The gradient of the mean cross-entropy with respect to the logits.
    let one_hot = one_hot(batch, net.num_classes(), &device, dtype);
    let seed = (softmax(out.logits, 1) - one_hot).div_scalar(batch.batch_size as f64);
    let shared = stream == 0;
    let later = |kind| shared && cx.running.contains(&kind);
    if later(PassKind::InputJacobian) || later(PassKind::HessianGradient) {
        done.keep_record(record.clone());
    }
    let wanted = Wanted {
        weights: true,
        fisher,
        input: false,
        cotangents: later(PassKind::HessianGradient),
    };
    let swept = backward(net, &params, record, seed, wanted);
    if wanted.cotangents {
        done.keep_cotangents(swept.cotangents);
    }
    let grads = per_layer_on_host(net, &params, swept.weights);
    let fisher_channel_sums = fisher.then(|| {
        swept
            .fisher
            .into_iter()
            .map(|s| s.map_or(0.0, |s| to_host(fisher_of_sums(s)).iter().sum()))
            .collect()
    });
    Ok(LossGradients {
        grads,
        fisher_channel_sums,
    })
}

/// Fisher per channel from the sums `s_nk = Σ_hw A·dL/dA` (`[N, C]`): `0.5·mean_n s_nk²`.
fn fisher_of_sums(s: Tensor<2>) -> Tensor<1> {
    s.square().mean_dim(0).mul_scalar(0.5).abs().squeeze_dim(0)
}

/// The loss pass through autodiff (backends without NB201's kernels), fisher through taps.
fn by_autodiff(cx: &PassCx<'_>, batch: &Minibatch, fisher: bool) -> LossGradients {
    let (net, weights, device) = (cx.net, cx.weights, cx.device);
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, true);
    let config = ForwardConfig {
        fisher_taps: fisher,
        ..ForwardConfig::new(NormMode::All)
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let loss = cross_entropy(out.logits, one_hot(batch, net.num_classes(), device, dtype));
    let grads = loss.backward();
    let fisher_channel_sums = fisher.then(|| {
        let mut sums = vec![0.0; net.layers().len()];
        for tap in &out.taps {
            // s_nk = sum over space of A*G (the leaf's gradient).
            let Some(s) = tap.leaf.grad(&grads) else {
                continue;
            };
            let [n, c, _, _] = s.dims();
            sums[tap.layer] += to_host(fisher_of_sums(s.reshape([n, c])))
                .iter()
                .sum::<f64>();
        }
        sums
    });
    LossGradients {
        grads: layer_grads(net, &params, &grads),
        fisher_channel_sums,
    }
}
