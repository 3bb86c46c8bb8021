//! grasp (Wang et al. 2020): -W * (H g), with g = dL/dW held constant.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Gradient signal preservation.
pub struct Grasp;

impl Proxy for Grasp {
    fn name(&self) -> &'static str {
        "grasp"
    }
    fn summary(&self) -> &'static str {
        "sum of -W * (H g), g = dL/dW"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss, PassKind::HessianGradient]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let values = inputs.hessian_gradient()?.iter().map(|v| -v).collect();
        Ok(Score::from_layers(values))
    }
}
