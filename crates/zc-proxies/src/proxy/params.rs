//! params: the number of learnable parameters (active ops only), a strong baseline.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Parameter count.
pub struct Params;

impl Proxy for Params {
    fn name(&self) -> &'static str {
        "params"
    }
    fn summary(&self) -> &'static str {
        "number of parameters (baseline)"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        Ok(Score::scalar(
            inputs
                .network
                .cell()
                .param_count(inputs.network.num_classes()) as f64,
        ))
    }
}
