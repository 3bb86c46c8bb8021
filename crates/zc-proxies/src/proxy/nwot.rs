//! nwot (NASWOT; Mellor, Turner, Storkey and Crowley, ICML 2021): how differently the images
//! of a minibatch switch the network's ReLUs on and off.
//!
//! As the authors' `score_networks.py` and `scores.py` compute it: at every ReLU (each conv
//! edge's, the reduction blocks' two, the head's), the input's binary codes `c = x > 0` per
//! image add `c cᵀ + (1−c)(1−c)ᵀ` to the kernel K (the number of units on which two images
//! agree); the score is `log|det K|` (numpy's `slogdet`, sign dropped). Their hooks go on every
//! module whose type name contains "ReLU", which includes the `ReLUConvBN` ops of NB201 (theirs
//! and nasbench2's alike): a conv op's codes are counted twice, the head's once. We count the
//! same, so the values are theirs. The authors' backward
//! gating selects the ReLUs on a path to the output, which in NB201 is every ReLU, so one forward
//! suffices. NaN when K is singular (the authors' −inf). The authors score a batch of 128
//! training images without augmentation; the score uses the engine's minibatch (for the
//! authors' setting, sweep with `batch_size: 128`).

use nalgebra::DMatrix;

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// `log|det K|` of the ReLU-code kernel of the minibatch.
pub struct Nwot;

impl Proxy for Nwot {
    fn name(&self) -> &'static str {
        "nwot"
    }
    fn summary(&self) -> &'static str {
        "log|det K|, K = sum over ReLUs of agreements of the images' binary codes"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::ReluKernel]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let kernel = inputs.relu_kernel()?;
        Ok(Score::scalar(log_abs_det(&kernel.values, kernel.n)))
    }
}

/// `log|det A|` of a row-major n x n matrix by LU decomposition (−inf when singular).
fn log_abs_det(values: &[f64], n: usize) -> f64 {
    let lu = DMatrix::from_row_slice(n, n, values).lu();
    let u = lu.u();
    (0..n).map(|i| u[(i, i)].abs().ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_determinants() {
        // det [[4, 2], [2, 3]] = 8.
        assert!((log_abs_det(&[4.0, 2.0, 2.0, 3.0], 2) - 8f64.ln()).abs() < 1e-15);
        // The sign is dropped: det [[0, 1], [1, 0]] = -1.
        assert!(log_abs_det(&[0.0, 1.0, 1.0, 0.0], 2).abs() < 1e-15);
        assert_eq!(log_abs_det(&[1.0, 2.0, 2.0, 4.0], 2), f64::NEG_INFINITY);
    }
}
