//! snip (Lee et al. 2019): connection sensitivity |W * dL/dW|.

use super::{Proxy, ProxyInputs, Score, sum_pairs};
use crate::{ProxyError, pass::PassKind};

/// Sum of |W * dL/dW|.
pub struct Snip;

impl Proxy for Snip {
    fn name(&self) -> &'static str {
        "snip"
    }
    fn summary(&self) -> &'static str {
        "sum of |W * dL/dW|"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        inputs.per_layer_from_loss(|w, g| sum_pairs(w, g, |w, g| (w * g).abs()))
    }
}
