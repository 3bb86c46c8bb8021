//! The loss pass: forward + backward of the cross-entropy on a minibatch (BN on), with fisher's
//! taps when asked for.

use super::{PassCx, PassKind, PassResults, device_params, inputs, layer_grads, one_hot, to_host};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, cross_entropy, forward};
use crate::network::ops::is_flex;

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
/// fisher channel sums. On flex, the forward of the usual minibatch is recorded into `done`
/// when the input-Jacobian pass runs too: it is that pass's forward as well.
pub(super) fn run(
    cx: &PassCx<'_>,
    done: &PassResults,
    stream: usize,
    fisher: bool,
) -> Result<LossGradients, ProxyError> {
    let (net, weights, device) = (cx.net, cx.weights, cx.device);
    let batch = cx.batch(stream)?;
    let batch = batch.as_ref();
    let dtype = cx.precision.dtype();
    let params = device_params(net, weights, device, dtype, false, true);
    let config = ForwardConfig {
        fisher_taps: fisher,
        record: stream == 0 && is_flex(device) && cx.running.contains(&PassKind::InputJacobian),
        ..ForwardConfig::new(NormMode::All)
    };
    let mut out = forward(net, &params, inputs(batch, device, dtype), config);
    if let Some(record) = out.record.take() {
        done.keep_record(record);
    }
    let loss = cross_entropy(out.logits, one_hot(batch, net.num_classes(), device, dtype));
    let grads = loss.backward();
    let fisher_channel_sums = fisher.then(|| {
        let mut sums = vec![0.0; net.layers().len()];
        for tap in &out.taps {
            // s_nk = sum over space of A*G (the leaf's gradient); F_k = 0.5 * mean_n s_nk^2.
            let Some(s) = tap.leaf.grad(&grads) else {
                continue;
            };
            let [n, c, _, _] = s.dims();
            let f = s.reshape([n, c]).square().mean_dim(0).mul_scalar(0.5).abs();
            sums[tap.layer] += to_host(f).iter().sum::<f64>();
        }
        sums
    });
    Ok(LossGradients {
        grads: layer_grads(net, &params, &grads),
        fisher_channel_sums,
    })
}
