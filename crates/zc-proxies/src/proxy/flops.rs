//! flops: analytic multiply-accumulates of the network (active ops only), a strong baseline.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// FLOPs at the minibatch resolution.
pub struct Flops;

impl Proxy for Flops {
    fn name(&self) -> &'static str {
        "flops"
    }
    fn summary(&self) -> &'static str {
        "FLOPs of one forward pass (baseline)"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let net = inputs.network;
        Ok(Score::scalar(
            net.cell().flops(net.num_classes(), inputs.resolution) as f64,
        ))
    }
}
