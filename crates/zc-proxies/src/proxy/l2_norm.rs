//! l2_norm: sum over layers of the Frobenius norm of W (no pass needed).

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Sum of per-layer weight norms.
pub struct L2Norm;

impl Proxy for L2Norm {
    fn name(&self) -> &'static str {
        "l2_norm"
    }
    fn summary(&self) -> &'static str {
        "sum over layers of ||W||_F"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let layers = 0..inputs.network.layers().len();
        Ok(Score::from_layers(
            layers
                .map(|l| {
                    inputs
                        .layer_weight(l)
                        .iter()
                        .map(|&w| f64::from(w).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect(),
        ))
    }
}
