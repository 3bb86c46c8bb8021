//! Batch normalisation with batch statistics and no affine, per channel of `[N, C, H, W]`:
//! `n̂ = (x - μ)·s` with `s = 1/sqrt(σ² + ε)`, `σ²` the biased batch variance.
//!
//! Its Jacobian is `J v = s·(v - mean(v) - n̂·mean(n̂·v))` (means over the channel's `M = N·H·W`
//! values), a symmetric operator: the same kernel gives the forward tangent `J t` and the
//! backward `J dy`. Back-propagating a tangent also needs the derivative of `<b, J t>` in `x`
//! (with `u = t - mean(t)`, `A = <b, u>`, `B = <b, n̂>`, `C = <n̂, t>`):
//! `-(s²/M)(A - BC/M)·n̂ - (s/M)(C·J b + B·J t)`.
//!
//! Sums are accumulated in float64. As in PyTorch, a constant channel has a mean equal to its
//! value and normalises to exact zeros.

use std::mem::MaybeUninit;

use super::Scalar;
use crate::network::BN_EPS;

/// `[N, C, H·W]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    /// Images.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// `H·W`.
    pub plane: usize,
}

impl Dims {
    /// Values per channel.
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Where channel `c` of image `n` starts.
    fn at(&self, n: usize, c: usize) -> usize {
        (n * self.channels + c) * self.plane
    }

    /// Per channel `c`, the sums of the `R` values `f(c)` gives for the aligned values of
    /// `inputs`. Memory is read in order, plane after plane ([`plane_sums`]): a channel's planes
    /// lie apart, and reading them channel by channel defeated the prefetcher.
    // Inlined into the multiversioned kernels, so that it is compiled for their CPU features.
    #[inline(always)]
    fn sums<T: Scalar, const K: usize, const R: usize, F: Fn([T; K]) -> [f64; R]>(
        &self,
        inputs: [&[T]; K],
        f: impl Fn(usize) -> F,
    ) -> Vec<[f64; R]> {
        let mut totals = vec![[0.0; R]; self.channels];
        let mut scratch = [[0.0; CHUNK]; R];
        for n in 0..self.batch {
            for (c, total) in totals.iter_mut().enumerate() {
                let start = self.at(n, c);
                let planes = inputs.map(|data| &data[start..start + self.plane]);
                for (t, part) in total.iter_mut().zip(plane_sums(planes, f(c), &mut scratch)) {
                    *t += part;
                }
            }
        }
        totals
    }

    /// Writes `f(c)` of the aligned values of `inputs` into channel `c` of `out` (all of it,
    /// which may be uninitialised), in memory order.
    #[inline(always)]
    fn fill<T: Scalar, const K: usize, F: Fn([T; K]) -> T>(
        &self,
        out: &mut [MaybeUninit<T>],
        inputs: [&[T]; K],
        f: impl Fn(usize) -> F,
    ) {
        for n in 0..self.batch {
            for c in 0..self.channels {
                let start = self.at(n, c);
                let planes = inputs.map(|data| &data[start..start + self.plane]);
                let f = f(c);
                for (i, d) in out[start..start + self.plane].iter_mut().enumerate() {
                    d.write(f(planes.map(|p| p[i])));
                }
            }
        }
    }
}

/// Values per chunk of [`plane_sums`].
pub(crate) const CHUNK: usize = 256;

/// The sums of the `R` values `f` gives for the aligned values of `planes` (`values`: scratch,
/// reused across calls so that small planes do not pay for zeroing it). Chunk by chunk, `f`'s
/// values are first written out (a loop that vectorises over the values), then each row summed
/// into 8 interleaved partial sums (which vectorises too; computing and summing in one loop did
/// not, and one running float64 sum would not).
#[inline(always)]
pub(crate) fn plane_sums<T: Scalar, const K: usize, const R: usize>(
    planes: [&[T]; K],
    f: impl Fn([T; K]) -> [f64; R],
    values: &mut [[f64; CHUNK]; R],
) -> [f64; R] {
    const LANES: usize = 8;
    let mut acc = [[0.0; LANES]; R];
    let len = planes[0].len();
    for start in (0..len).step_by(CHUNK) {
        let n = CHUNK.min(len - start);
        let parts = planes.map(|p| &p[start..start + n]);
        for i in 0..n {
            for (row, v) in values.iter_mut().zip(f(parts.map(|p| p[i]))) {
                row[i] = v;
            }
        }
        for (acc, row) in acc.iter_mut().zip(values.iter()) {
            let (whole, rest) = row[..n].split_at(n / LANES * LANES);
            for step in whole.chunks_exact(LANES) {
                for (a, v) in acc.iter_mut().zip(step) {
                    *a += v;
                }
            }
            for (a, v) in acc.iter_mut().zip(rest) {
                *a += v;
            }
        }
    }
    acc.map(|lanes| lanes.iter().sum())
}

/// A channel's mean and inverse standard deviation, rounded to `T` as the forward uses them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats<T> {
    /// The mean.
    pub mean: T,
    /// `1/sqrt(σ² + ε)`.
    pub inv_std: T,
}

// multiversion runs the first of its targets that the CPU supports, so the widest comes first.
/// Every channel's [`Stats`] of `x`: computed once per norm, and shared by its forward, its
/// tangent and their backwards.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
pub(crate) fn stats<T: Scalar>(dims: &Dims, x: &[T]) -> Vec<Stats<T>> {
    let means: Vec<T> = dims
        .sums([x], |_| |[v]: [T; 1]| [v.wide()])
        .into_iter()
        .map(|[sum]| T::narrow(sum / dims.count()))
        .collect();
    // The centred value is rounded to T first, as PyTorch's float32 computes it.
    let squares = dims.sums([x], |c| {
        let mean = means[c].wide();
        move |[v]: [T; 1]| {
            let centred = T::narrow(v.wide() - mean).wide();
            [centred * centred]
        }
    });
    means
        .iter()
        .zip(squares)
        .map(|(&mean, [squares])| Stats {
            mean,
            inv_std: T::narrow(1.0 / (squares / dims.count() + BN_EPS).sqrt()),
        })
        .collect()
}

impl<T: Scalar> Stats<T> {
    /// `n̂` in `T`'s arithmetic, as PyTorch computes it.
    fn normed(&self, x: T) -> T {
        (x - self.mean) * self.inv_std
    }
}

/// `out = n̂(x)`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
pub(crate) fn forward<T: Scalar>(
    dims: &Dims,
    stats: &[Stats<T>],
    x: &[T],
    out: &mut [MaybeUninit<T>],
) {
    dims.fill(out, [x], |c| {
        let stats = stats[c];
        move |[v]: [T; 1]| stats.normed(v)
    });
}

/// `out = J_x v`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
pub(crate) fn jacobian<T: Scalar>(
    dims: &Dims,
    stats: &[Stats<T>],
    x: &[T],
    v: &[T],
    out: &mut [MaybeUninit<T>],
) {
    let m = dims.count();
    let sums = dims.sums([x, v], |c| {
        let stats = stats[c];
        move |[x, v]: [T; 2]| [v.wide(), stats.normed(x).wide() * v.wide()]
    });
    let means: Vec<(T, T)> = sums
        .iter()
        .map(|&[sum_v, sum_nv]| (T::narrow(sum_v / m), T::narrow(sum_nv / m)))
        .collect();
    dims.fill(out, [x, v], |c| {
        let ((mean_v, mean_nv), stats) = (means[c], stats[c]);
        move |[x, v]: [T; 2]| stats.inv_std * (v - mean_v - stats.normed(x) * mean_nv)
    });
}

/// `out = ∇_x <b, J_x t>`: what back-propagating a tangent through the norm adds to `x`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
pub(crate) fn tangent_backward<T: Scalar>(
    dims: &Dims,
    stats: &[Stats<T>],
    x: &[T],
    t: &[T],
    b: &[T],
    out: &mut [MaybeUninit<T>],
) {
    let m = dims.count();
    let sums = dims.sums([x, t, b], |c| {
        let stats = stats[c];
        move |[x, t, b]: [T; 3]| {
            let (n, t, b) = (stats.normed(x).wide(), t.wide(), b.wide());
            [b, t, b * t, n * b, n * t]
        }
    });
    let terms: Vec<[T; 5]> = sums
        .iter()
        .zip(stats)
        .map(|(&[sum_b, sum_t, sum_bt, bb, cc], stats)| {
            let s = stats.inv_std.wide();
            let (mean_b, mean_t) = (sum_b / m, sum_t / m);
            let a = sum_bt - mean_t * mean_b * m;
            // -(s²/M)(A - BC/M) n̂ - (s/M)(C J b + B J t), with J b = s(b - mean_b - n̂ B/M) and
            // J t = s(t - mean_t - n̂ C/M), gathered per term:
            let on_b = -s * s * cc / m;
            let on_t = -s * s * bb / m;
            let on_n = -s * s / m * (a - bb * cc / m) + 2.0 * s * s * bb * cc / (m * m);
            [on_n, on_b, on_t, mean_b, mean_t].map(T::narrow)
        })
        .collect();
    dims.fill(out, [x, t, b], |c| {
        let ([on_n, on_b, on_t, mean_b, mean_t], stats) = (terms[c], stats[c]);
        move |[x, t, b]: [T; 3]| on_n * stats.normed(x) + on_b * (b - mean_b) + on_t * (t - mean_t)
    });
}

/// Per channel, the tangent of `<J_x b, x>` (the gradient reaching the norm's input from `b`,
/// times that input) when `x` moves along `t` and `b` along `b_dot`, given `dy = J_x b`:
/// `ε·s²·(<n̂, b_dot> + <dy, t> - 2s·<n̂, t>·<n̂, b>/M)`.
///
/// A norm is invariant to the scale of its input but for `ε`: `J_x x = ε·s²·n̂`, so
/// `<J_x b, x> = ε·s²·<n̂, b>`, whose tangent this is. Written as the tangent of the product,
/// `<d(dy), x> + <dy, t>` (`d(dy)` the tangent of `dy`), it is the difference of two terms up to
/// ~1e5 times larger, which float32 could not resolve.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
pub(crate) fn dot_tangent<T: Scalar>(
    dims: &Dims,
    stats: &[Stats<T>],
    [x, b, b_dot, t, dy]: [&[T]; 5],
) -> Vec<f64> {
    let m = dims.count();
    let sums = dims.sums([x, b, b_dot, t, dy], |c| {
        let stats = stats[c];
        move |[x, b, b_dot, t, dy]: [T; 5]| {
            let n = stats.normed(x).wide();
            [
                n * b_dot.wide(),
                n * b.wide(),
                n * t.wide(),
                dy.wide() * t.wide(),
            ]
        }
    });
    sums.iter()
        .zip(stats)
        .map(|(&[n_b_dot, n_b, n_t, dy_t], stats)| {
            let s = stats.inv_std.wide();
            BN_EPS * s * s * (n_b_dot + dy_t - 2.0 * s * n_t * n_b / m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f64> {
        (0..len)
            .map(|i| ((i as u64 * 2654435761 + seed * 7919) % 1009) as f64 / 504.5 - 1.0)
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    fn shifted(x: &[f64], d: &[f64], e: f64) -> Vec<f64> {
        x.iter().zip(d).map(|(x, d)| x + e * d).collect()
    }

    /// The Jacobian, the tangent's backward and the tangent of `<J_x b, x>` agree with central
    /// differences of the forward and of the Jacobian, and the forward normalises each channel
    /// (mean 0, variance 1 - ε·s²).
    #[test]
    fn kernels_match_central_differences() {
        let dims = Dims {
            batch: 3,
            channels: 2,
            plane: 5,
        };
        let len = 30;
        let (x, v, b, d) = (
            values(len, 1),
            values(len, 2),
            values(len, 3),
            values(len, 4),
        );
        let e = 1e-6;
        let run = |f: &dyn Fn(&mut [MaybeUninit<f64>])| {
            let mut out = vec![MaybeUninit::uninit(); len];
            f(&mut out);
            out.into_iter()
                // SAFETY: the kernels write all of their output.
                .map(|v| unsafe { v.assume_init() })
                .collect::<Vec<f64>>()
        };
        let st = |x: &[f64]| stats(&dims, x);
        let normed = run(&|o| forward(&dims, &st(&x), &x, o));
        for (c, [sum]) in dims
            .sums([&normed[..]], |_| |[v]: [f64; 1]| [v])
            .into_iter()
            .enumerate()
        {
            let mean = sum / 15.0;
            assert!(mean.abs() < 1e-12, "channel {c} mean {mean}");
        }
        // J v = d n̂(x + e v) / de.
        let jv = run(&|o| jacobian(&dims, &st(&x), &x, &v, o));
        let plus = run(&|o| {
            let x = shifted(&x, &v, e);
            forward(&dims, &st(&x), &x, o)
        });
        let minus = run(&|o| {
            let x = shifted(&x, &v, -e);
            forward(&dims, &st(&x), &x, o)
        });
        for i in 0..len {
            let numeric = (plus[i] - minus[i]) / (2.0 * e);
            assert!(
                (jv[i] - numeric).abs() < 1e-6,
                "J v [{i}]: {} vs {numeric}",
                jv[i]
            );
        }
        // <∇_x <b, J_x v>, d> = d <b, J_{x + e d} v> / de.
        let grad = run(&|o| tangent_backward(&dims, &st(&x), &x, &v, &b, o));
        let at = |e: f64| {
            let x = shifted(&x, &d, e);
            dot(&b, &run(&|o| jacobian(&dims, &st(&x), &x, &v, o)))
        };
        let numeric = (at(e) - at(-e)) / (2.0 * e);
        assert!(
            (dot(&grad, &d) - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
            "tangent backward: {} vs {numeric}",
            dot(&grad, &d)
        );
        // Per channel, d <J_{x + e d} (b + e v), x + e d> / de, on a channel of a small variance
        // (where ε matters).
        let x: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| if (i / 5) % 2 == 1 { 0.003 * v } else { v })
            .collect();
        let dy = run(&|o| jacobian(&dims, &st(&x), &x, &b, o));
        let tangent = dot_tangent(&dims, &st(&x), [&x, &b, &v, &d, &dy]);
        let at = |e: f64| {
            let (x, b) = (shifted(&x, &d, e), shifted(&b, &v, e));
            let dy = run(&|o| jacobian(&dims, &st(&x), &x, &b, o));
            dims.sums([&dy[..], &x[..]], |_| |[g, x]: [f64; 2]| [g * x])
        };
        let (plus, minus) = (at(e), at(-e));
        for c in 0..2 {
            let numeric = (plus[c][0] - minus[c][0]) / (2.0 * e);
            assert!(
                (tangent[c] - numeric).abs() < 1e-6 * numeric.abs().max(1e-3),
                "dot tangent, channel {c}: {} vs {numeric}",
                tangent[c]
            );
        }
    }
}
