//! epe_nas (Lopes, Alirezazadeh and Alexandre, ICANN 2021): how decorrelated the input
//! Jacobians of the images of each class are.
//!
//! As the authors' `search.py` computes it (`eval_score_perclass` called without `n_classes`, so
//! its default 10 picks the "sum" branch for every dataset): per class c of the minibatch, with
//! its images in batch order, `s_c = Σ_ij log(|C_ij| + 1e-5)` over the correlation matrix C of
//! their Jacobian rows (a class with one image has C = [1]); the score is `Σ_c |s_c|`. NASLib
//! instead takes a pairwise branch for more than 100 classes (ImageNet16-120); we follow the
//! authors. NaN when a row is constant (the output does not depend on the input), as numpy's
//! corrcoef gives. The authors draw 256 augmented training images; the score uses the engine's
//! minibatch (`batch_size` of the sweep).

use super::jacob_cov::correlation;
use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// `Σ_c |Σ_ij log(|corr(J_c)_ij| + 1e-5)|` over the classes c of the minibatch.
pub struct EpeNas;

/// The authors' regulariser.
const K: f64 = 1e-5;

impl Proxy for EpeNas {
    fn name(&self) -> &'static str {
        "epe_nas"
    }
    fn summary(&self) -> &'static str {
        "sum over classes of |sum_ij log(|corrcoef(input Jacobians of the class)_ij| + 1e-5)|"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::InputJacobian]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let j = inputs.jacobian()?;
        Ok(Score::scalar(score(&j.values, j.cols, inputs.labels)))
    }
}

/// The score of row-major Jacobian rows (`cols` values each) with their labels.
fn score(values: &[f64], cols: usize, labels: &[i64]) -> f64 {
    // Classes in order of first appearance, their rows in batch order.
    let mut classes: Vec<(i64, Vec<f64>)> = Vec::new();
    for (row, &label) in values.chunks_exact(cols).zip(labels) {
        match classes.iter_mut().find(|(l, _)| *l == label) {
            Some((_, rows)) => rows.extend_from_slice(row),
            None => classes.push((label, row.to_vec())),
        }
    }
    classes
        .iter()
        .map(|(_, rows)| {
            let n = rows.len() / cols;
            match correlation(rows, n, cols) {
                Some(c) => c.iter().map(|v| (v.abs() + K).ln()).sum::<f64>().abs(),
                None => f64::NAN,
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_scored_separately_and_summed() {
        // Class 0: rows [1,2,3] and [3,2,1] (correlation -1); class 1: one row (C = [1]).
        let values = [1.0, 2.0, 3.0, 5.0, 1.0, 0.0, 3.0, 2.0, 1.0];
        let labels = [0, 1, 0];
        let class0 = 2.0 * (1.0 + K).ln() + 2.0 * (1.0 + K).ln();
        let class1 = (1.0 + K).ln();
        assert!((score(&values, 3, &labels) - (class0 + class1)).abs() < 1e-15);
        // Orthogonal rows: off-diagonal log(1e-5) dominates, and the absolute value is taken.
        let values = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
        let expected = (2.0 * (1.0 + K).ln() + 2.0 * K.ln()).abs();
        assert!((score(&values, 4, &[7, 7]) - expected).abs() < 1e-12);
    }

    #[test]
    fn a_constant_row_is_nan() {
        assert!(score(&[0.0, 0.0, 0.0, 1.0, 2.0, 3.0], 3, &[0, 0]).is_nan());
    }
}
