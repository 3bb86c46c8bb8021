//! synflow (Tanaka et al. 2020): |theta| everywhere, one all-ones image in float64,
//! R = sum of logits, score |W * dR/dW|. `synflow` drops BN except in the reduction blocks
//! (the reference's quirk); `synflow_bn` keeps every BN.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Synaptic flow, with or without BN.
pub struct Synflow {
    /// Keep every BatchNorm (`synflow_bn`).
    pub keep_bn: bool,
}

impl Proxy for Synflow {
    fn name(&self) -> &'static str {
        if self.keep_bn {
            "synflow_bn"
        } else {
            "synflow"
        }
    }
    fn summary(&self) -> &'static str {
        if self.keep_bn {
            "sum of |W * dR/dW| on |theta|, all-ones input, float64, BN kept"
        } else {
            "sum of |W * dR/dW| on |theta|, all-ones input, float64, BN only in reduction blocks"
        }
    }
    fn passes(&self) -> &'static [PassKind] {
        if self.keep_bn {
            &[PassKind::SynflowBn]
        } else {
            &[PassKind::Synflow]
        }
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let pass = inputs.synflow(self.keep_bn)?;
        let values = pass
            .abs_weights
            .iter()
            .zip(&pass.grads)
            .map(|(w, g)| w.iter().zip(g).map(|(w, g)| (w * g).abs()).sum::<f64>())
            .collect();
        Ok(Score::from_layers(values))
    }
}
