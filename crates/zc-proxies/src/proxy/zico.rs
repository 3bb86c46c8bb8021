//! ZiCo (Li, Yang, Bhardwaj and Marculescu, ICLR 2023): the loss gradients' absolute mean over
//! their standard deviation across two minibatches.
//!
//! As the authors' `compute_zico.py` computes it: the cross-entropy gradients of every conv and
//! linear weight on two independent minibatches (gradients zeroed in between; stream 0 and
//! stream 1 of the engine's data); per weight σ = population std of the two signed gradients
//! (|g₁ − g₂| / 2) and μ = mean of their absolute values; per layer `t = Σ μ/σ` over the
//! weights with σ ≠ 0; the score is `Σ log t` over the layers with t ≠ 0. (The paper's Eq. 15
//! writes the std of |∇|; the code, which produced the published numbers, uses the signed one.)
//! The authors' two batches are disjoint (consecutive shuffled batches); the sampler's streams
//! are independent draws, which can share a few images of a small image set.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// `Σ_layers log Σ_w mean|g| / std(g)` over two minibatches.
pub struct Zico;

impl Proxy for Zico {
    fn name(&self) -> &'static str {
        "zico"
    }
    fn summary(&self) -> &'static str {
        "sum over layers of log(sum mean|g|/std(g)), g = loss gradients of two minibatches"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss, PassKind::SecondBatchLoss]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let first = &inputs.loss()?.grads;
        let second = &inputs.second_loss()?.grads;
        let per_layer: Vec<f64> = first
            .iter()
            .zip(second)
            .map(|(a, b)| layer_term(a, b))
            .collect();
        Ok(Score::from_layers(per_layer))
    }
}

/// `log Σ μ/σ` of one layer (0 when no weight has σ ≠ 0 or the sum is 0: the layer is skipped).
fn layer_term(a: &[f64], b: &[f64]) -> f64 {
    let t: f64 = a
        .iter()
        .zip(b)
        .filter_map(|(&x, &y)| {
            let std = (x - y).abs() / 2.0;
            (std != 0.0).then(|| (x.abs() + y.abs()) / 2.0 / std)
        })
        .sum();
    if t == 0.0 { 0.0 } else { t.ln() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_layer_terms() {
        // Weights: (1, 3): μ 2, σ 1 -> 2; (-1, 1): μ 1, σ 1 -> 1; (2, 2): σ 0, skipped.
        let t: f64 = 2.0 + 1.0;
        assert!((layer_term(&[1.0, -1.0, 2.0], &[3.0, 1.0, 2.0]) - t.ln()).abs() < 1e-15);
        // A layer whose gradients agree (or are zero) everywhere contributes nothing.
        assert_eq!(layer_term(&[0.0, 2.0], &[0.0, 2.0]), 0.0);
    }
}
