//! grad_norm: sum over layers of the Frobenius norm of dL/dW.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Sum of per-layer gradient norms.
pub struct GradNorm;

impl Proxy for GradNorm {
    fn name(&self) -> &'static str {
        "grad_norm"
    }
    fn summary(&self) -> &'static str {
        "sum over layers of ||dL/dW||_F"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        inputs.per_layer_from_loss(|_, g| g.iter().map(|x| x * x).sum::<f64>().sqrt())
    }
}
