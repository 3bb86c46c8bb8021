//! Zen-NAS's pass: the network re-initialised with Gaussian weights, run on Gaussian noise and
//! on the noise slightly mixed with more noise; no data, no backward.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{PassCx, Precision, device_params, to_host};
use crate::ProxyError;
use crate::network::forward::{ForwardConfig, NormMode, forward};
use crate::network::{Nb201Network, Weights, standard_normal};

/// Zen-NAS's mixup weight.
pub const MIXUP_GAMMA: f64 = 1e-2;
/// The BatchNorm momentum whose running-variance update zen's scale term reads.
const MOMENTUM: f64 = 0.1;

/// The two terms of the Zen score.
#[derive(Debug, Clone, Copy)]
pub struct ZenTerms {
    /// `mean_n Σ_chw |f(x1) − f(x1 + γ x2)|` of the feature map f before global pooling.
    pub delta: f64,
    /// `Σ log sqrt(mean_c running_var)` over the affine BatchNorms after the two forwards.
    pub log_bn_scale: f64,
}

/// Gaussian weights and inputs drawn from a seed derived from the cell's weights (so the draw
/// is deterministic per cell and weight seed), then [`zen_terms`].
pub(super) fn run(cx: &PassCx<'_>) -> Result<ZenTerms, ProxyError> {
    let seed = cx.weights.digest();
    let weights = Weights::gaussian(cx.net, seed);
    let shape = [
        cx.first_batch.batch_size,
        3,
        cx.first_batch.resolution,
        cx.first_batch.resolution,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed.rotate_left(17));
    let n = shape.iter().product();
    let x1 = standard_normal(&mut rng, n);
    let x2 = standard_normal(&mut rng, n);
    Ok(zen_terms(
        cx.net,
        &weights,
        &x1,
        &x2,
        shape,
        cx.device,
        cx.precision,
    ))
}

/// The Zen terms of `net` with `weights` on inputs `x1` and `x2` (row-major `shape`): two
/// train-mode forwards (on x1 and on x1 + γ·x2), and the running variance every affine
/// BatchNorm holds after them, starting from 1 with momentum 0.1: `0.81 + 0.09 v₁ + 0.1 v₂` of
/// the unbiased batch variances, as PyTorch updates it.
pub(crate) fn zen_terms(
    net: &Nb201Network,
    weights: &Weights,
    x1: &[f32],
    x2: &[f32],
    shape: [usize; 4],
    device: &Device,
    precision: Precision,
) -> ZenTerms {
    let dtype = precision.dtype();
    let params = device_params(net, weights, device, dtype, false, false);
    let config = ForwardConfig {
        zen: true,
        ..ForwardConfig::new(NormMode::All)
    };
    let mixed: Vec<f32> = x1
        .iter()
        .zip(x2)
        .map(|(a, b)| a + MIXUP_GAMMA as f32 * b)
        .collect();
    let input =
        |values: Vec<f32>| Tensor::<4>::from_data(TensorData::new(values, shape), (device, dtype));
    let first = forward(net, &params, input(x1.to_vec()), config);
    let second = forward(net, &params, input(mixed), config);
    let (f1, f2) = (
        first.pre_gap.expect("zen observations"),
        second.pre_gap.expect("zen observations"),
    );
    let delta = to_host((f1 - f2).abs().sum_dims(&[1, 2, 3]).mean())
        .first()
        .copied()
        .unwrap_or(f64::NAN);
    let keep = 1.0 - MOMENTUM;
    let log_bn_scale = first
        .norm_stats
        .into_iter()
        .zip(second.norm_stats)
        .map(|(s1, s2)| {
            let (v1, v2) = (to_host(s1.var), to_host(s2.var));
            let mean = v1
                .iter()
                .zip(&v2)
                .map(|(a, b)| keep * keep + keep * MOMENTUM * a + MOMENTUM * b)
                .sum::<f64>()
                / v1.len() as f64;
            mean.sqrt().ln()
        })
        .sum();
    ZenTerms {
        delta,
        log_bn_scale,
    }
}
