//! Predictor-based search (BP): train a round of cells, fit the relation predictor on every
//! cell trained so far, train the untrained cells it ranks highest, repeat. `warmup(N)`
//! pre-trains the predictor on the proxy scores of N random cells, so the first round is
//! already chosen by the predictor instead of at random.

use rand::Rng;
use zc_space::Cell;

use super::{Search, random_distinct_cells};
use crate::SearchError;
use crate::relation_predictor::RelationPredictor;

/// Cells trained per round.
const ROUND: usize = 20;
/// Adam steps of the warmup pre-training on proxy scores.
const PRETRAIN_STEPS: usize = 300;
/// Adam steps after each round (the predictor is fine-tuned, not re-initialised).
const FIT_STEPS: usize = 100;

pub(super) fn search(s: &mut Search) -> Result<(), SearchError> {
    let mut predictor = RelationPredictor::new(s.rng.random());
    let all: Vec<Cell> = Cell::all().collect();
    let mut pretrained = false;
    if let Some(n) = s.variant.warmup {
        let cells = random_distinct_cells(s.rng, n);
        let scores = cells
            .iter()
            .map(|&c| s.proxy.score(c))
            .collect::<Result<Vec<_>, _>>()?;
        // The predictor learns ranks: NaN scores (-inf) go just below the smallest number,
        // +inf just above the largest.
        let finite = scores.iter().copied().filter(|v| v.is_finite());
        let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let scores: Vec<f64> = scores
            .iter()
            .map(|&v| match v {
                f64::NEG_INFINITY => low - 1.0,
                f64::INFINITY => high + 1.0,
                v => v,
            })
            .collect();
        pretrained = predictor.fit(&cells, &scores, PRETRAIN_STEPS);
    }
    let mut next: Vec<Cell> = if pretrained {
        top_untrained(&predictor, &all, s, ROUND)
    } else {
        random_distinct_cells(s.rng, ROUND)
    };
    loop {
        for &cell in &next {
            if s.trainer.train(cell).is_none() {
                return Ok(());
            }
        }
        if s.trainer.is_done() {
            return Ok(());
        }
        let (cells, accuracies): (Vec<Cell>, Vec<f64>) = s.trainer.history().unzip();
        predictor.fit(&cells, &accuracies, FIT_STEPS);
        next = top_untrained(&predictor, &all, s, ROUND);
    }
}

/// The `k` untrained cells the predictor ranks highest.
fn top_untrained(predictor: &RelationPredictor, all: &[Cell], s: &Search, k: usize) -> Vec<Cell> {
    let predicted = predictor.predict(all);
    let mut order: Vec<usize> = (0..all.len())
        .filter(|&i| s.trainer.trained_accuracy(all[i]).is_none())
        .collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    order.into_iter().take(k).map(|i| all[i]).collect()
}
