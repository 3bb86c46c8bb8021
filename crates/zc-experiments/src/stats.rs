//! Rank statistics for comparing proxy scores with ground-truth accuracies.
//!
//! Spearman and the rank helpers are small functions written here (statrs has no rank
//! correlation); Kendall's tau-b comes from the `kendalls` crate.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Ranks 1..n with ties sharing their average rank (`scipy.stats.rankdata` "average").
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) share the mean of ranks start+1..=end.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson correlation; NaN when either side is constant or fewer than 2 values.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        f64::NAN
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Pairs where both values are finite, and how many pairs were dropped.
pub fn finite_pairs(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>, usize) {
    let (a, b): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .unzip();
    let dropped = x.len() - a.len();
    (a, b, dropped)
}

/// Spearman's rho over the pairs where both values are finite (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (a, b, _) = finite_pairs(x, y);
    pearson(&average_ranks(&a), &average_ranks(&b))
}

/// Kendall's tau-b over the pairs where both values are finite.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let (a, b, _) = finite_pairs(x, y);
    kendalls::tau_b_with_comparator(&a, &b, |p: &f64, q: &f64| p.total_cmp(q))
        .map_or(f64::NAN, |(tau, _)| tau)
}

/// Spearman over the `fraction` of cells with the highest ground truth `y`.
pub fn top_fraction_spearman(x: &[f64], y: &[f64], fraction: f64) -> f64 {
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| y[b].total_cmp(&y[a]));
    let keep = ((y.len() as f64) * fraction).round() as usize;
    let top = &order[..keep.min(order.len())];
    let (tx, ty): (Vec<f64>, Vec<f64>) = top.iter().map(|&i| (x[i], y[i])).unzip();
    spearman(&tx, &ty)
}

/// Percentile bootstrap 95% interval of Spearman's rho (`resamples` resamples of the finite
/// pairs, deterministic for `seed`).
pub fn bootstrap_spearman_ci(x: &[f64], y: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let (a, b, _) = finite_pairs(x, y);
    if a.len() < 3 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rhos: Vec<f64> = (0..resamples)
        .map(|_| {
            let (ra, rb): (Vec<f64>, Vec<f64>) = (0..a.len())
                .map(|_| {
                    let i = rng.random_range(0..a.len());
                    (a[i], b[i])
                })
                .unzip();
            pearson(&average_ranks(&ra), &average_ranks(&rb))
        })
        .filter(|r| r.is_finite())
        .collect();
    if rhos.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    rhos.sort_by(f64::total_cmp);
    let at = |q: f64| rhos[((q * (rhos.len() - 1) as f64).round() as usize).min(rhos.len() - 1)];
    (at(0.025), at(0.975))
}

/// The paper's "vote" (its Table 1's 0.82): over all ordered pairs (i, j), i != j, whose ground
/// truth differs, predict "i better than j" when at least two of the proxies have
/// `m_i - m_j > 0` (NaN or 0 count as not > 0); the fraction of pairs predicted correctly.
pub fn vote_accuracy(proxies: [&[f64]; 3], truth: &[f64]) -> f64 {
    let n = truth.len();
    let (mut correct, mut total) = (0u64, 0u64);
    for i in 0..n {
        for j in 0..n {
            if i == j || truth[i] == truth[j] {
                continue;
            }
            let votes = proxies.iter().filter(|m| m[i] - m[j] > 0.0).count();
            total += 1;
            correct += u64::from((votes >= 2) == (truth[i] > truth[j]));
        }
    }
    if total == 0 {
        f64::NAN
    } else {
        correct as f64 / total as f64
    }
}

/// A proper score for the vote: the mean of the proxies' average ranks, ranked over the cells
/// where every proxy is finite (NaN elsewhere).
pub fn mean_rank(proxies: &[&[f64]]) -> Vec<f64> {
    let n = proxies.first().map_or(0, |p| p.len());
    let valid: Vec<usize> = (0..n)
        .filter(|&i| proxies.iter().all(|p| p[i].is_finite()))
        .collect();
    let mut score = vec![f64::NAN; n];
    for &i in &valid {
        score[i] = 0.0;
    }
    for p in proxies {
        let values: Vec<f64> = valid.iter().map(|&i| p[i]).collect();
        for (&i, r) in valid.iter().zip(average_ranks(&values)) {
            score[i] += r / proxies.len() as f64;
        }
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
        assert_eq!(average_ranks(&[1.0, 1.0, 1.0]), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn spearman_hand_computed() {
        // Perfect monotone (non-linear) relation.
        assert!(close(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]),
            1.0
        ));
        assert!(close(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]),
            -1.0
        ));
        // x ranks 1,2,3,4,5 vs y ranks 2,1,4,3,5: d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8.
        assert!(close(
            spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]),
            0.8
        ));
        // Ties: x = [1, 2, 2, 3] ranks [1, 2.5, 2.5, 4] vs y = [1, 2, 3, 4]:
        // Pearson of the ranks = 4.5 / sqrt(4.5 * 5) = 0.9486832980505138.
        assert!(close(
            spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]),
            4.5 / (4.5f64 * 5.0).sqrt()
        ));
    }

    #[test]
    fn nan_pairs_are_dropped_and_counted() {
        let x = [1.0, f64::NAN, 3.0, 4.0, 5.0, 2.0];
        let y = [1.0, 9.0, 3.0, 4.0, 5.0, f64::INFINITY];
        let (a, _, dropped) = finite_pairs(&x, &y);
        assert_eq!((a, dropped), (vec![1.0, 3.0, 4.0, 5.0], 2));
        assert!(close(spearman(&x, &y), 1.0));
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn kendall_hand_computed() {
        // Pairs of [1,2,3,4] vs [1,3,2,4]: 5 concordant, 1 discordant: tau = 4/6.
        assert!(close(
            kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]),
            4.0 / 6.0
        ));
        // Ties in x: x=[1,1,2], y=[1,2,3]: P=2, Q=0, T=1, U=0: tau_b = 2/sqrt(3*2).
        assert!(close(
            kendall_tau_b(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]),
            2.0 / 6f64.sqrt()
        ));
    }

    #[test]
    fn top_fraction_keeps_the_best_cells() {
        // The top half by y (y = 10, 9, 8) has x perfectly reversed there.
        let x = [3.0, 2.0, 1.0, 0.0, 5.0, 6.0];
        let y = [10.0, 9.0, 8.0, 1.0, 2.0, 3.0];
        assert!(close(top_fraction_spearman(&x, &y, 0.5), 1.0));
        let x = [1.0, 2.0, 3.0, 0.0, 5.0, 6.0];
        assert!(close(top_fraction_spearman(&x, &y, 0.5), -1.0));
    }

    #[test]
    fn vote_counts_majorities_over_ordered_pairs() {
        let truth = [1.0, 2.0, 3.0];
        // All three proxies rank correctly: every pair right.
        let good = [1.0, 2.0, 3.0];
        assert!(close(vote_accuracy([&good, &good, &good], &truth), 1.0));
        // Two of three reversed: the majority is wrong on every pair.
        let bad = [3.0, 2.0, 1.0];
        assert!(close(vote_accuracy([&good, &bad, &bad], &truth), 0.0));
        // NaN never votes "better": with one good proxy and two NaN, only pairs whose truth says
        // "i worse" (predicted "not better") are right: 3 of 6.
        let nan = [f64::NAN; 3];
        assert!(close(vote_accuracy([&good, &nan, &nan], &truth), 0.5));
        // Pairs with equal truth are skipped: only (0,1),(1,0) count here.
        assert!(close(
            vote_accuracy([&good, &good, &good], &[1.0, 2.0, 2.0]),
            1.0
        ));
    }

    #[test]
    fn bootstrap_interval_brackets_rho() {
        let x: Vec<f64> = (0..200)
            .map(|i| f64::from(i) + 30.0 * (f64::from(i) * 0.7).sin())
            .collect();
        let y: Vec<f64> = (0..200).map(f64::from).collect();
        let rho = spearman(&x, &y);
        let (lo, hi) = bootstrap_spearman_ci(&x, &y, 500, 1);
        assert!(lo < rho && rho < hi && hi - lo < 0.1, "{lo} {rho} {hi}");
        assert_eq!((lo, hi), bootstrap_spearman_ci(&x, &y, 500, 1));
    }

    #[test]
    fn mean_rank_is_nan_where_a_proxy_is() {
        let a = [1.0, 2.0, 3.0];
        let b = [3.0, f64::NAN, 1.0];
        let m = mean_rank(&[&a, &b]);
        // Ranked over cells 0 and 2 only: a -> [1, 2], b -> [2, 1].
        assert!(close(m[0], 1.5) && m[1].is_nan() && close(m[2], 1.5));
    }
}
