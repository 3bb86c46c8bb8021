//! NB201's 3x3 average pool (stride 1, padding 1, padded positions not counted) on each plane
//! of `[N, C, H, W]`: `y = box(x) ⊙ r`, with `box` the 3x3 box sum and `r` one over the number
//! of in-bounds positions of each window. It is linear and `box` is self-adjoint, so its
//! backward is `dx = box(dy ⊙ r)`.

use std::mem::MaybeUninit;

use super::Scalar;

/// One over the window's in-bounds count along an axis of `len` at `i`.
fn span(i: usize, len: usize) -> f64 {
    let lo = i.saturating_sub(1);
    let hi = (i + 1).min(len - 1);
    (hi - lo + 1) as f64
}

/// `sums[j] = (a[j] + a[j-1]) + a[j+1]` over the in-bounds neighbours of each `j`.
#[inline(always)]
fn row_sums<T: Scalar>(a: &[T], sums: &mut [T]) {
    let w = a.len();
    if w == 1 {
        sums[0] = a[0];
        return;
    }
    sums[0] = a[0] + a[1];
    for (((s, &mid), &left), &right) in sums[1..w - 1]
        .iter_mut()
        .zip(&a[1..w - 1])
        .zip(&a[..w - 2])
        .zip(&a[2..])
    {
        *s = (mid + left) + right;
    }
    sums[w - 1] = a[w - 1] + a[w - 2];
}

// multiversion runs the first of its targets that the CPU supports, so the widest comes first.
/// The 3x3 box sum of the `h x w` plane `x` (its entries scaled by `scale` first when
/// `scale_input`), into `out` (scaled by `scale` after when not): row sums into `rows`, then
/// `out[i] = (rows[i-1] + rows[i]) + rows[i+1]` over the in-bounds rows.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
fn box_sum<T: Scalar>(
    x: &[T],
    (h, w): (usize, usize),
    scale: &[T],
    scale_input: bool,
    (scaled, rows): (&mut [T], &mut [T]),
    out: &mut [MaybeUninit<T>],
) {
    let input = if scale_input {
        for ((s, &v), &f) in scaled.iter_mut().zip(x).zip(scale) {
            *s = v * f;
        }
        &*scaled
    } else {
        x
    };
    for (a, sums) in input.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        row_sums(a, sums);
    }
    for i in 0..h {
        let dst = &mut out[i * w..(i + 1) * w];
        let factors = &scale[i * w..(i + 1) * w];
        let first = i.saturating_sub(1);
        let last = (i + 1).min(h - 1);
        let row = |r: usize| &rows[r * w..(r + 1) * w];
        let top = row(first);
        let mid = || row(first + 1);
        // `(top + mid) + bottom`, summed in that order.
        match (last - first, scale_input) {
            (2, false) => {
                for ((((d, &a), &b), &c), &f) in dst
                    .iter_mut()
                    .zip(top)
                    .zip(mid())
                    .zip(row(last))
                    .zip(factors)
                {
                    d.write((a + b + c) * f);
                }
            }
            (2, true) => {
                for (((d, &a), &b), &c) in dst.iter_mut().zip(top).zip(mid()).zip(row(last)) {
                    d.write(a + b + c);
                }
            }
            (1, false) => {
                for (((d, &a), &b), &f) in dst.iter_mut().zip(top).zip(mid()).zip(factors) {
                    d.write((a + b) * f);
                }
            }
            (1, true) => {
                for ((d, &a), &b) in dst.iter_mut().zip(top).zip(mid()) {
                    d.write(a + b);
                }
            }
            _ => {
                // A single row: the window holds it alone.
                for ((d, &a), &f) in dst.iter_mut().zip(top).zip(factors) {
                    d.write(if scale_input { a } else { a * f });
                }
            }
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
pub(crate) fn forward<T: Scalar>(x: &[T], h: usize, w: usize, out: &mut [MaybeUninit<T>]) {
    apply(x, h, w, false, out);
}

/// `out = avg_poolᵀ(dy)`.
pub(crate) fn backward<T: Scalar>(dy: &[T], h: usize, w: usize, out: &mut [MaybeUninit<T>]) {
    apply(dy, h, w, true, out);
}

fn apply<T: Scalar>(x: &[T], h: usize, w: usize, scale_input: bool, out: &mut [MaybeUninit<T>]) {
    let scale = factors::<T>(h, w);
    let (mut scaled, mut rows) = (vec![T::default(); h * w], vec![T::default(); h * w]);
    for (input, output) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        box_sum(
            input,
            (h, w),
            &scale,
            scale_input,
            (&mut scaled, &mut rows),
            output,
        );
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
            let run = |f: &dyn Fn(&mut [MaybeUninit<f64>])| -> Vec<f64> {
                let mut out = vec![MaybeUninit::uninit(); n];
                f(&mut out);
                // SAFETY: the kernels write all of their output.
                out.into_iter()
                    .map(|v| unsafe { v.assume_init() })
                    .collect()
            };
            let y = run(&|o| forward(&x, h, w, o));
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
            let dx = run(&|o| backward(&dy, h, w, o));
            let lhs: f64 = dy.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{h}x{w}: {lhs} vs {rhs}");
        }
    }
}
