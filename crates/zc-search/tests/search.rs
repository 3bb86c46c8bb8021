//! The search algorithms on the real NAS-Bench-201 CIFAR-100 table, with #params as the proxy
//! (a real zero-cost baseline: Spearman 0.74 with the accuracies) so that no proxy sweep is
//! needed.

use std::path::Path;

use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_search::{Accuracies, Algorithm, ProxyScores, Run};
use zc_space::Cell;

fn benchmark() -> (Accuracies, ProxyScores) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let truth = GroundTruth::load_shipped(&data).expect("the shipped ground truth loads");
    let by_code = |metric| truth.accuracies_by_code(Dataset::Cifar100, metric).unwrap();
    let accuracies = Accuracies::new(by_code(Metric::Val1Seed), by_code(Metric::Test)).unwrap();
    let params = Cell::all().map(|c| c.param_count(100) as f64).collect();
    (
        accuracies,
        ProxyScores::from_table("params", params).unwrap(),
    )
}

fn run(algorithm: Algorithm, variant: &str, budget: usize, seed: u64) -> Run {
    Run {
        algorithm,
        variant: variant.parse().unwrap(),
        budget,
        seed,
    }
}

/// Mean final best (reported) accuracy over `runs` seeds.
fn mean_final_best(
    acc: &Accuracies,
    proxy: &ProxyScores,
    algorithm: Algorithm,
    variant: &str,
    budget: usize,
    runs: u64,
) -> f64 {
    (0..runs)
        .map(|seed| {
            let steps = run(algorithm, variant, budget, seed)
                .execute(acc, proxy)
                .unwrap();
            steps.last().unwrap().best_report_accuracy
        })
        .sum::<f64>()
        / runs as f64
}

#[test]
fn every_algorithm_is_deterministic_for_a_seed_and_respects_the_budget() {
    let (acc, proxy) = benchmark();
    for (algorithm, variant) in [
        (Algorithm::Random, "baseline"),
        (Algorithm::Random, "warmup(500)"),
        (Algorithm::Reinforce, "baseline"),
        (Algorithm::Reinforce, "warmup(200)+move(10)"),
        (Algorithm::Evolution, "baseline"),
        (Algorithm::Evolution, "warmup(500)+move"),
        (Algorithm::Predictor, "baseline"),
        (Algorithm::Predictor, "warmup(256)"),
    ] {
        let budget = 90;
        let first = run(algorithm, variant, budget, 7)
            .execute(&acc, &proxy)
            .unwrap();
        let again = run(algorithm, variant, budget, 7)
            .execute(&acc, &proxy)
            .unwrap();
        let other = run(algorithm, variant, budget, 8)
            .execute(&acc, &proxy)
            .unwrap();
        assert_eq!(first, again, "{algorithm} {variant}: same seed, same run");
        assert_ne!(
            first, other,
            "{algorithm} {variant}: another seed, another run"
        );
        assert_eq!(
            first.len(),
            budget,
            "{algorithm} {variant} spends the budget exactly"
        );
        let mut cells: Vec<Cell> = first.iter().map(|s| s.cell).collect();
        cells.sort();
        cells.dedup();
        assert_eq!(
            cells.len(),
            budget,
            "{algorithm} {variant}: every step is a new cell"
        );
        let mut best: Option<(f64, f64)> = None;
        for (i, step) in first.iter().enumerate() {
            assert_eq!(step.trained, i + 1);
            assert_eq!(step.select_accuracy, acc.select(step.cell));
            assert_eq!(step.report_accuracy, acc.report(step.cell));
            if best.is_none_or(|(b, _)| step.select_accuracy > b) {
                best = Some((step.select_accuracy, step.report_accuracy));
            }
            assert_eq!(step.best_report_accuracy, best.unwrap().1);
        }
    }
}

#[test]
fn every_algorithm_beats_random_search_on_average() {
    let (acc, proxy) = benchmark();
    let budget = 100;
    let random = mean_final_best(&acc, &proxy, Algorithm::Random, "baseline", budget, 40);
    for (algorithm, runs) in [
        (Algorithm::Reinforce, 40),
        (Algorithm::Evolution, 40),
        (Algorithm::Predictor, 8),
    ] {
        let mean = mean_final_best(&acc, &proxy, algorithm, "baseline", budget, runs);
        assert!(
            mean > random,
            "{algorithm}: {mean:.3} vs random {random:.3}"
        );
    }
}

/// The proxy's `k` best scores over the whole space, best first.
fn top_scores(proxy: &ProxyScores, k: usize) -> Vec<f64> {
    let mut all: Vec<f64> = Cell::all().map(|c| proxy.score(c).unwrap()).collect();
    all.sort_by(|a, b| b.total_cmp(a));
    all.truncate(k);
    all
}

#[test]
fn warmup_over_the_whole_space_starts_from_the_proxys_top_cells() {
    let (acc, proxy) = benchmark();
    let scores_of = |steps: &[zc_search::Step], k: usize| -> Vec<f64> {
        steps[..k]
            .iter()
            .map(|s| proxy.score(s.cell).unwrap())
            .collect()
    };
    // RAND trains in proxy order.
    let steps = run(Algorithm::Random, "warmup(15625)", 100, 3)
        .execute(&acc, &proxy)
        .unwrap();
    assert_eq!(scores_of(&steps, 100), top_scores(&proxy, 100));
    // AE's initial population is the top 64.
    let steps = run(Algorithm::Evolution, "warmup(15625)", 100, 3)
        .execute(&acc, &proxy)
        .unwrap();
    assert_eq!(scores_of(&steps, 64), top_scores(&proxy, 64));
}

#[test]
fn proxy_help_pays_off_where_the_paper_says_it_does() {
    let (acc, proxy) = benchmark();
    let budget = 100;
    for (algorithm, variant, runs) in [
        (Algorithm::Random, "warmup(3000)", 20),
        (Algorithm::Reinforce, "move(100)", 20),
        (Algorithm::Evolution, "move", 20),
        (Algorithm::Predictor, "warmup(256)", 6),
    ] {
        let helped = mean_final_best(&acc, &proxy, algorithm, variant, budget, runs);
        let plain = mean_final_best(&acc, &proxy, algorithm, "baseline", budget, runs);
        assert!(
            helped > plain,
            "{algorithm} {variant}: {helped:.3} vs baseline {plain:.3}"
        );
    }
}
