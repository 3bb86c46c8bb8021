//! jacob_cov (Mellor et al. 2021, NASWOT v1): how decorrelated the input Jacobians of the
//! images in the batch are. NaN when a row has zero variance (the output does not depend on
//! the input), as the reference's exception path gives.

use nalgebra::DMatrix;

use crate::correlation::row_correlation;

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// `-sum(log(l + k) + 1/(l + k))` over the eigenvalues l of the Jacobian rows' correlation matrix.
pub struct JacobCov;

/// The reference's regulariser.
const K: f64 = 1e-5;

impl Proxy for JacobCov {
    fn name(&self) -> &'static str {
        "jacob_cov"
    }
    fn summary(&self) -> &'static str {
        "-sum(log(l+1e-5) + 1/(l+1e-5)), l = eigenvalues of corrcoef(input Jacobian rows)"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::InputJacobian]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let j = inputs.jacobian()?;
        Ok(Score::scalar(score(&j.values, j.rows, j.cols)))
    }
}

/// The score of a row-major `rows x cols` Jacobian.
fn score(values: &[f64], rows: usize, cols: usize) -> f64 {
    match correlation(values, rows, cols) {
        Some(corr) => {
            let eigenvalues = corr.symmetric_eigenvalues();
            -eigenvalues
                .iter()
                .map(|&l| (l + K).ln() + 1.0 / (l + K))
                .sum::<f64>()
        }
        None => f64::NAN,
    }
}

/// `np.corrcoef` of the rows (float64, clipped to [-1, 1]); `None` when a row is constant or
/// not finite.
pub(super) fn correlation(values: &[f64], rows: usize, cols: usize) -> Option<DMatrix<f64>> {
    let (corr, constant) = row_correlation(values, rows, cols);
    (!constant.contains(&true)).then_some(corr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncorrelated_rows_give_identity_eigenvalues() {
        // Two orthogonal zero-mean rows: correlation is the identity, eigenvalues 1 and 1.
        let values = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
        let expected = -2.0 * ((1.0 + K).ln() + 1.0 / (1.0 + K));
        assert!((score(&values, 2, 4) - expected).abs() < 1e-12);
    }

    #[test]
    fn identical_rows_give_a_zero_eigenvalue() {
        // Perfectly correlated rows: eigenvalues 2 and 0, and 1/(0 + k) dominates.
        let values = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
        let expected = -((2.0 + K).ln() + 1.0 / (2.0 + K) + K.ln() + 1.0 / K);
        assert!((score(&values, 2, 3) - expected).abs() < 1e-6 * expected.abs());
    }

    #[test]
    fn a_constant_row_is_nan() {
        assert!(score(&[0.0, 0.0, 0.0, 1.0, 2.0, 3.0], 2, 3).is_nan());
    }
}
