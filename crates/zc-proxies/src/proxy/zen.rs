//! zen (Zen-NAS; Lin et al., ICCV 2021): how much the pre-pooling features move when Gaussian
//! noise inputs are perturbed, for Gaussian weights, plus a BatchNorm scale term.
//!
//! As the authors' `compute_zen_score.py` computes it, with `repeat = 1` (what their search and
//! NASLib use): conv/linear weights re-drawn standard normal (biases 0, BN γ 1 and β 0); inputs
//! x₁, x₂ standard normal of the minibatch's shape; the score is
//! `log(mean_n Σ|f(x₁) − f(x₁ + 0.01 x₂)|) + Σ_BN log sqrt(mean running_var)`, with f the
//! features before global pooling and the sum over the
//! BatchNorms with running statistics (in the nasbench2 network: the stem's, the reduction
//! blocks', the head's; the cells' BNs have none, and the authors' loop would fail on them),
//! whose running variance after the two train-mode forwards is `0.81 + 0.09 v₁ + 0.1 v₂`. No data
//! is read; the Gaussian draws are seeded by the cell's initial weights. On this network the BN
//! term covers the same six BatchNorms for every cell, and zen ranks cells poorly (see README).

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// `log Δ + Σ log sqrt(mean running_var)` with Gaussian weights and inputs.
pub struct Zen;

impl Proxy for Zen {
    fn name(&self) -> &'static str {
        "zen"
    }
    fn summary(&self) -> &'static str {
        "log(mean |f(x1) - f(x1 + 0.01 x2)|) + BN scale, Gaussian weights and inputs"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Zen]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let terms = inputs.passes.zen()?;
        Ok(Score::scalar(terms.delta.ln() + terms.log_bn_scale))
    }
}
