//! Image resizing as torchvision's `Resize` does it to a PIL image: Pillow's bilinear filter
//! with antialiasing (support scaled by the reduction factor), in Pillow's 8-bit fixed point,
//! horizontal pass then vertical pass, each rounded to uint8. Matching it exactly keeps the
//! reduced-resolution inputs those of the authors' pipeline.

/// Bits of Pillow's fixed-point coefficients for 8-bit images (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter taps of one output pixel: the first input index and the weights.
struct Taps {
    first: usize,
    weights: Vec<i64>,
}

/// Pillow's `precompute_coeffs` for the bilinear (triangle) filter, then its 8-bit
/// normalisation to fixed point.
fn taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support (1) times the filter scale
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let last = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (first..last)
                .map(|x| {
                    let d = ((x as f64 - center + 0.5) / filter_scale).abs();
                    if d < 1.0 { 1.0 - d } else { 0.0 }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let weights = raw
                .iter()
                .map(|w| {
                    let k = w / total * one;
                    (if k < 0.0 { k - 0.5 } else { k + 0.5 }) as i64
                })
                .collect();
            Taps { first, weights }
        })
        .collect()
}

/// Rounds a fixed-point sum to a byte as Pillow's `clip8` does.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes one planar `3 x side x side` uint8 image to `3 x out x out`.
pub fn resize_planar(image: &[u8], side: usize, out: usize) -> Vec<u8> {
    if out == side {
        return image.to_vec();
    }
    let taps = taps(side, out);
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut result = Vec::with_capacity(3 * out * out);
    for plane in image.chunks_exact(side * side) {
        // Horizontal: side rows of out values.
        let mut rows = vec![0u8; side * out];
        for y in 0..side {
            for (x, t) in taps.iter().enumerate() {
                let sum = t.weights.iter().enumerate().fold(half, |acc, (i, w)| {
                    acc + w * i64::from(plane[y * side + t.first + i])
                });
                rows[y * out + x] = clip8(sum);
            }
        }
        // Vertical.
        for t in &taps {
            for x in 0..out {
                let sum = t.weights.iter().enumerate().fold(half, |acc, (i, w)| {
                    acc + w * i64::from(rows[(t.first + i) * out + x])
                });
                result.push(clip8(sum));
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_a_constant_keeps_it_and_a_ramp_averages() {
        let constant = vec![77u8; 3 * 4 * 4];
        assert_eq!(resize_planar(&constant, 4, 2), vec![77u8; 3 * 2 * 2]);
        // Taps of a halving: 1/8, 3/8, 3/8, 1/8 inside, renormalised at the borders.
        let t = taps(8, 4);
        let one = f64::from(1u32 << PRECISION_BITS);
        let w: Vec<f64> = t[1].weights.iter().map(|&k| k as f64 / one).collect();
        assert_eq!(t[1].first, 1);
        for (a, b) in w.iter().zip([0.125, 0.375, 0.375, 0.125]) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
