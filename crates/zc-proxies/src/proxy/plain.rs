//! plain: the signed first-order saliency W * dL/dW.

use super::{Proxy, ProxyInputs, Score, sum_pairs};
use crate::{ProxyError, pass::PassKind};

/// Sum of W * dL/dW.
pub struct Plain;

impl Proxy for Plain {
    fn name(&self) -> &'static str {
        "plain"
    }
    fn summary(&self) -> &'static str {
        "sum of W * dL/dW (signed)"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        inputs.per_layer_from_loss(|w, g| sum_pairs(w, g, |w, g| w * g))
    }
}
