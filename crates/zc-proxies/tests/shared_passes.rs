//! The minibatch passes as backward sweeps over one recorded forward (the engine's default on
//! flex: the loss's sweep, the input Jacobian's sweep over the same record, GraSP's `H g` as the
//! tangent of the loss's sweep) give what autodiff gives ([`Engine::through_autodiff`]: each pass
//! its own forward and backward, `H g` by reverse-over-forward). In float64, per layer, on a
//! conv-only cell, one with pools and skips, and the degenerate one whose output ignores its
//! input (a zero Jacobian: jacob_cov and epe_nas NaN both ways).

use zc_proxies::proxy::{self, Proxy};
use zc_proxies::{Backend, Engine, Minibatch, Nb201Network, Precision, Weights};
use zc_space::Cell;

/// A deterministic minibatch of `n` images at `resolution`, labels below 10.
fn minibatch(n: usize, resolution: usize) -> Minibatch {
    let images = (0..n * 3 * resolution * resolution)
        .map(|i| ((i as u64 * 2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Minibatch {
        images,
        labels: (0..n).map(|i| (i * 7 % 10) as i64).collect(),
        batch_size: n,
        resolution,
    }
}

const PROXIES: [&str; 7] = [
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
    "jacob_cov",
    "plain",
    "epe_nas",
];

/// Each proxy's total and per-layer values for `arch`.
fn scores(arch: &str, engine: Engine) -> Vec<(f64, Vec<f64>)> {
    let cell: Cell = arch.parse().unwrap();
    let network = Nb201Network::new(cell, 10);
    let weights = Weights::init(&network, 3);
    let proxies: Vec<&dyn Proxy> = PROXIES.iter().map(|n| proxy::find(n).unwrap()).collect();
    let scores = engine
        .score(&network, &weights, &minibatch(8, 16), &proxies)
        .unwrap();
    scores
        .proxies
        .into_iter()
        .map(|p| (p.score.total, p.score.per_layer))
        .collect()
}

/// Node 0 reaches no other node: the logits ignore the images.
const DEGENERATE: &str = "|none~0|+|none~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|";

/// Equal to float64 rounding: the two orders of summation differ by ~1e-15, which GraSP's
/// cancellations (a sum of terms far larger than their total) amplify to ~2e-12 in a layer.
fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-10 * a.abs().max(1e-3)
}

#[test]
fn sweeps_equal_autodiff() {
    for arch in [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|",
        DEGENERATE,
    ] {
        let engine = || Engine::new(Backend::Flex, Precision::F64);
        let swept = scores(arch, engine());
        let autodiff = scores(arch, engine().through_autodiff());
        let jacob_cov = swept[4].0;
        assert_eq!(
            jacob_cov.is_nan(),
            arch == DEGENERATE,
            "{arch}: jacob_cov {jacob_cov}"
        );
        for ((name, (s, s_layers)), (a, a_layers)) in PROXIES.iter().zip(&swept).zip(&autodiff) {
            assert!(
                close(*a, *s),
                "{arch} {name}: {s} swept, {a} through autodiff"
            );
            assert_eq!(s_layers.len(), a_layers.len(), "{arch} {name}");
            for (i, (s, a)) in s_layers.iter().zip(a_layers).enumerate() {
                assert!(
                    close(*a, *s),
                    "{arch} {name} layer {i}: {s} swept, {a} autodiff"
                );
            }
        }
    }
}
