//! Passes that share work give what they give alone: the input Jacobian as a backward sweep over
//! the loss pass's recorded forward (when both run) equals the one from its own forward and
//! autodiff (when it runs alone), on a conv-only cell, one with pools and skips, and the
//! degenerate one whose output ignores its input (a zero Jacobian: jacob_cov NaN both ways).

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

/// jacob_cov and epe_nas of `arch`, alone or beside a loss-pass proxy.
fn jacobian_proxies(arch: &str, beside_loss: bool) -> Vec<f64> {
    let cell: Cell = arch.parse().unwrap();
    let network = Nb201Network::new(cell, 10);
    let weights = Weights::init(&network, 3);
    let mut names = vec!["jacob_cov", "epe_nas"];
    if beside_loss {
        names.push("grad_norm");
    }
    let proxies: Vec<&dyn Proxy> = names.iter().map(|n| proxy::find(n).unwrap()).collect();
    let scores = Engine::new(Backend::Flex, Precision::F64)
        .score(&network, &weights, &minibatch(8, 16), &proxies)
        .unwrap();
    scores.proxies[..2].iter().map(|p| p.score.total).collect()
}

/// Node 0 reaches no other node: the logits ignore the images.
const DEGENERATE: &str = "|none~0|+|none~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|";

#[test]
fn input_jacobian_from_the_loss_forward_equals_its_own() {
    for arch in [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|",
        DEGENERATE,
    ] {
        let alone = jacobian_proxies(arch, false);
        let shared = jacobian_proxies(arch, true);
        assert_eq!(
            alone[0].is_nan(),
            arch == DEGENERATE,
            "{arch}: jacob_cov {}",
            alone[0]
        );
        for (a, s) in alone.iter().zip(&shared) {
            if a.is_nan() {
                assert!(s.is_nan(), "{arch}: {a} alone, {s} shared");
                continue;
            }
            assert!(
                (a - s).abs() <= 1e-12 * a.abs().max(1.0),
                "{arch}: {a} alone, {s} shared"
            );
        }
    }
}
