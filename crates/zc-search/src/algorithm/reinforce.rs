//! REINFORCE (Williams, 1992) with a categorical policy per edge and a moving-average baseline.
//! The reward is the selection accuracy in percent. `warmup(N)` pre-trains the policy for N
//! samples of its own, each rewarded by the percentile of its proxy score among 256 random
//! reference cells (so it scores up to N + 256 cells); `move(k)` samples k cells and trains only the best untrained one by proxy.

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use zc_space::{Cell, NUM_EDGES, Op};

use super::{Search, random_distinct_cells};
use crate::SearchError;
use crate::variant::MoveProposal;

/// Step size of the policy-gradient update (rewards are in percent).
const LEARNING_RATE: f64 = 0.02;
/// Decay of the baseline's moving average.
const BASELINE_DECAY: f64 = 0.9;
/// Cells scored to turn a proxy score into a percentile reward during warmup.
const REFERENCE_CELLS: usize = 256;
/// Spread of the warmup reward: a proxy percentile of p (0..1) is worth `p * WARMUP_REWARD`,
/// about the spread of accuracies among reasonable cells, so warmup moves the policy about as
/// fast as training does.
const WARMUP_REWARD: f64 = 10.0;
/// Logits are kept within +-LOGIT_LIMIT so that every op keeps a probability above 0.15%
/// (1 / (1 + 4 e^5)) and the controller keeps proposing new cells instead of collapsing onto one.
const LOGIT_LIMIT: f64 = 2.5;

/// The controller: logits of a categorical distribution over ops for each edge.
#[derive(Debug, Clone)]
pub(super) struct Policy {
    logits: [[f64; Op::ALL.len()]; NUM_EDGES],
    baseline: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            logits: [[0.0; Op::ALL.len()]; NUM_EDGES],
            baseline: None,
        }
    }
}

impl Policy {
    fn probabilities(&self, edge: usize) -> [f64; Op::ALL.len()] {
        let logits = self.logits[edge];
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp = logits.map(|l| (l - max).exp());
        let total: f64 = exp.iter().sum();
        exp.map(|e| e / total)
    }

    /// A cell drawn from the policy.
    pub(super) fn sample(&self, rng: &mut impl Rng) -> Cell {
        Cell::new(std::array::from_fn(|e| {
            let choice = WeightedIndex::new(self.probabilities(e))
                .expect("softmax probabilities are finite and positive");
            Op::ALL[choice.sample(rng)]
        }))
    }

    /// One REINFORCE step: raises the log-probability of `cell` in proportion to how much
    /// `reward` beats the baseline, then updates the baseline.
    pub(super) fn reinforce(&mut self, cell: Cell, reward: f64) {
        let baseline = *self.baseline.get_or_insert(reward);
        let advantage = reward - baseline;
        for e in 0..NUM_EDGES {
            let p = self.probabilities(e);
            let chosen = cell.op(e).index();
            for (o, logit) in self.logits[e].iter_mut().enumerate() {
                let indicator = if o == chosen { 1.0 } else { 0.0 };
                *logit = (*logit + LEARNING_RATE * advantage * (indicator - p[o]))
                    .clamp(-LOGIT_LIMIT, LOGIT_LIMIT);
            }
        }
        self.baseline = Some(BASELINE_DECAY * baseline + (1.0 - BASELINE_DECAY) * reward);
    }

    /// Forgets the baseline (rewards change scale between warmup and search).
    fn reset_baseline(&mut self) {
        self.baseline = None;
    }
}

pub(super) fn search(s: &mut Search) -> Result<(), SearchError> {
    let mut policy = Policy::default();
    if let Some(n) = s.variant.warmup {
        // Proxy scores have arbitrary scales: the reward is the percentile of the score among
        // reference cells.
        let mut reference = random_distinct_cells(s.rng, REFERENCE_CELLS)
            .into_iter()
            .map(|c| s.proxy.score(c))
            .collect::<Result<Vec<_>, _>>()?;
        reference.sort_by(f64::total_cmp);
        for _ in 0..n {
            let cell = policy.sample(s.rng);
            let score = s.proxy.score(cell)?;
            let below = reference.partition_point(|&r| r < score);
            policy.reinforce(cell, WARMUP_REWARD * below as f64 / reference.len() as f64);
        }
        policy.reset_baseline();
    }
    while !s.trainer.is_done() {
        let cell = match s.variant.proposal {
            Some(MoveProposal::Sample(k)) => {
                // A concentrated policy keeps sampling the same cells: rank the untrained
                // candidates, so that the best-by-proxy pick is a model worth training.
                let candidates: Vec<Cell> = (0..k).map(|_| policy.sample(s.rng)).collect();
                let untrained: Vec<Cell> = candidates
                    .iter()
                    .copied()
                    .filter(|&c| s.trainer.trained_accuracy(c).is_none())
                    .collect();
                s.proxy.best_of(if untrained.is_empty() {
                    &candidates
                } else {
                    &untrained
                })?
            }
            _ => policy.sample(s.rng),
        };
        let Some(acc) = s.trainer.train(cell) else {
            break;
        };
        policy.reinforce(cell, acc);
    }
    Ok(())
}
