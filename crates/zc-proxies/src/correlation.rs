//! Correlation matrices of rows (numpy's and torch's `corrcoef`), shared by jacob_cov, epe_nas
//! and MeCo's observer.

use nalgebra::DMatrix;

/// The Pearson correlation of the rows of a row-major `rows x cols` matrix, clamped to [-1, 1],
/// and which rows are constant (or not finite): their entries, diagonal included, are 0 (where
/// `corrcoef` gives NaN).
pub(crate) fn row_correlation(
    values: &[f64],
    rows: usize,
    cols: usize,
) -> (DMatrix<f64>, Vec<bool>) {
    let centred: Vec<Vec<f64>> = values
        .chunks_exact(cols)
        .map(|row| {
            let mean = row.iter().sum::<f64>() / cols as f64;
            row.iter().map(|&v| v - mean).collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let norms: Vec<f64> = centred.iter().map(|r| dot(r, r).sqrt()).collect();
    let constant: Vec<bool> = norms.iter().map(|&n| n == 0.0 || !n.is_finite()).collect();
    let mut corr = DMatrix::<f64>::zeros(rows, rows);
    for i in (0..rows).filter(|&i| !constant[i]) {
        for k in (i..rows).filter(|&k| !constant[k]) {
            let c = (dot(&centred[i], &centred[k]) / (norms[i] * norms[k])).clamp(-1.0, 1.0);
            corr[(i, k)] = c;
            corr[(k, i)] = c;
        }
    }
    (corr, constant)
}
