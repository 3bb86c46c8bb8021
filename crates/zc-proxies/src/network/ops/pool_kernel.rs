//! NB201's 3x3 average pool (stride 1, padding 1, padded positions not counted) on each plane
//! of `[N, C, H, W]`: `y = box(x) ⊙ r`, with `box` the 3x3 box sum and `r` one over the number
//! of in-bounds positions of each window. It is linear and `box` is self-adjoint, so its
//! backward is `dx = box(dy ⊙ r)`.

use super::Scalar;

/// One over the window's in-bounds count along an axis of `len` at `i`.
fn span(i: usize, len: usize) -> f64 {
    let lo = i.saturating_sub(1);
    let hi = (i + 1).min(len - 1);
    (hi - lo + 1) as f64
}

/// Adds the 3x3 box sum of the `h x w` plane `x`, scaled per output by `scale(i, j)`, into `out`
/// (`scale` applied before the sum when `scale_input`, else after).
fn box_sum<T: Scalar>(
    x: &[T],
    h: usize,
    w: usize,
    scale: &[T],
    scale_input: bool,
    row: &mut [T],
    out: &mut [T],
) {
    // Horizontal sums into `row`, one row at a time, added to the three output rows it touches.
    for i in 0..h {
        let input = &x[i * w..(i + 1) * w];
        let factors = &scale[i * w..(i + 1) * w];
        for (j, r) in row.iter_mut().enumerate() {
            let at = |k: usize| {
                if scale_input {
                    input[k] * factors[k]
                } else {
                    input[k]
                }
            };
            let mut sum = at(j);
            if j > 0 {
                sum += at(j - 1);
            }
            if j + 1 < w {
                sum += at(j + 1);
            }
            *r = sum;
        }
        for target in i.saturating_sub(1)..=(i + 1).min(h - 1) {
            let dst = &mut out[target * w..(target + 1) * w];
            for (d, &v) in dst.iter_mut().zip(row.iter()) {
                *d += v;
            }
        }
    }
    if !scale_input {
        for (d, &f) in out.iter_mut().zip(scale) {
            *d = *d * f;
        }
    }
}

/// The per-position factors `r` of an `h x w` plane.
fn factors<T: Scalar>(h: usize, w: usize) -> Vec<T> {
    (0..h)
        .flat_map(|i| (0..w).map(move |j| T::narrow(1.0 / (span(i, h) * span(j, w)))))
        .collect()
}

/// `out = avg_pool(x)`, plane by plane (`h x w` each).
pub(crate) fn forward<T: Scalar>(x: &[T], h: usize, w: usize, out: &mut [T]) {
    apply(x, h, w, false, out);
}

/// `out = avg_poolᵀ(dy)`.
pub(crate) fn backward<T: Scalar>(dy: &[T], h: usize, w: usize, out: &mut [T]) {
    apply(dy, h, w, true, out);
}

fn apply<T: Scalar>(x: &[T], h: usize, w: usize, scale_input: bool, out: &mut [T]) {
    let scale = factors::<T>(h, w);
    let mut row = vec![T::default(); w];
    out.fill(T::default());
    for (input, output) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        box_sum(input, h, w, &scale, scale_input, &mut row, output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward is the definition (mean of the in-bounds 3x3 window), and the backward its
    /// adjoint: <dy, pool(x)> = <poolᵀ(dy), x>.
    #[test]
    fn forward_is_the_window_mean_and_backward_its_adjoint() {
        for (h, w) in [(1, 1), (2, 3), (4, 4), (5, 7)] {
            let n = 2 * h * w;
            let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let dy: Vec<f64> = (0..n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
            let mut y = vec![0.0; n];
            forward(&x, h, w, &mut y);
            for p in 0..2 {
                for i in 0..h {
                    for j in 0..w {
                        let (mut sum, mut count) = (0.0, 0.0);
                        for a in i.saturating_sub(1)..=(i + 1).min(h - 1) {
                            for b in j.saturating_sub(1)..=(j + 1).min(w - 1) {
                                sum += x[p * h * w + a * w + b];
                                count += 1.0;
                            }
                        }
                        let got = y[p * h * w + i * w + j];
                        assert!((got - sum / count).abs() < 1e-12, "{h}x{w} ({i},{j})");
                    }
                }
            }
            let mut dx = vec![0.0; n];
            backward(&dy, h, w, &mut dx);
            let lhs: f64 = dy.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{h}x{w}: {lhs} vs {rhs}");
        }
    }
}
