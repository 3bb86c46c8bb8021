//! Aging evolution (Real et al.): a population of 64, tournaments of 10, one-edge mutations of
//! the winner; the oldest member dies. `warmup(N)` starts from the proxy's top 64 of N cells;
//! `move` mutates to the parent's best neighbour by proxy (a random one with probability 1/4).

use std::collections::VecDeque;

use rand::Rng;
use rand::seq::index;
use zc_space::{Cell, NUM_EDGES, Op, random_cell};

use super::Search;
use crate::variant::MoveProposal;
use crate::{ProxyScores, SearchError};

/// Population size.
const POPULATION: usize = 64;
/// Tournament size.
const TOURNAMENT: usize = 10;
/// Probability that `move` takes a random neighbour instead of the best by proxy.
pub const RANDOM_MOVE_PROBABILITY: f64 = 0.25;

pub(super) fn search(s: &mut Search) -> Result<(), SearchError> {
    let mut population: VecDeque<(Cell, f64)> = VecDeque::with_capacity(POPULATION + 1);
    let seeds = match s.variant.warmup {
        Some(n) => s.warmup_ranking(n)?,
        None => Vec::new(),
    };
    let mut seeds = seeds.into_iter().take(POPULATION);
    while population.len() < POPULATION {
        let cell = seeds.next().unwrap_or_else(|| random_cell(s.rng));
        let Some(acc) = s.trainer.train(cell) else {
            return Ok(());
        };
        population.push_back((cell, acc));
    }
    while !s.trainer.is_done() {
        let parent = index::sample(s.rng, population.len(), TOURNAMENT.min(population.len()))
            .into_iter()
            .map(|i| population[i])
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("the tournament is not empty")
            .0;
        let child = match s.variant.proposal {
            Some(MoveProposal::Neighbours) => propose_move(parent, s.proxy, s.rng)?,
            _ => mutate(parent, s.rng),
        };
        let Some(acc) = s.trainer.train(child) else {
            break;
        };
        population.push_back((child, acc));
        population.pop_front();
    }
    Ok(())
}

/// A uniformly random one-edit neighbour: one edge gets a different op.
fn mutate(parent: Cell, rng: &mut impl Rng) -> Cell {
    let edge = rng.random_range(0..NUM_EDGES);
    let current = parent.op(edge).index();
    let shift = rng.random_range(1..Op::ALL.len());
    parent.with_op(edge, Op::ALL[(current + shift) % Op::ALL.len()])
}

/// The move proposal: the parent's best neighbour by proxy, or with probability
/// [`RANDOM_MOVE_PROBABILITY`] a random neighbour.
pub fn propose_move(
    parent: Cell,
    proxy: &ProxyScores,
    rng: &mut impl Rng,
) -> Result<Cell, SearchError> {
    if rng.random_bool(RANDOM_MOVE_PROBABILITY) {
        return Ok(mutate(parent, rng));
    }
    proxy.best_of(&parent.neighbours())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mutation_changes_exactly_one_edge() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..500 {
            let parent = random_cell(&mut rng);
            let child = mutate(parent, &mut rng);
            let changed = (0..NUM_EDGES)
                .filter(|&e| parent.op(e) != child.op(e))
                .count();
            assert_eq!(changed, 1);
        }
    }

    #[test]
    fn move_picks_the_best_neighbour_three_times_in_four() {
        // Score = the cell's code: the best neighbour is the one with the largest code.
        let scores = (0..Cell::COUNT).map(|c| c as f64).collect();
        let proxy = ProxyScores::from_table("code", scores).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let parent = Cell::from_code(4321).unwrap();
        let best = *parent.neighbours().iter().max_by_key(|c| c.code()).unwrap();
        let trials = 4000;
        let hits = (0..trials)
            .filter(|_| propose_move(parent, &proxy, &mut rng).unwrap() == best)
            .count();
        // 0.75 by proxy + 0.25 * 1/24 by chance.
        let expected = 0.75 + 0.25 / 24.0;
        let rate = hits as f64 / trials as f64;
        assert!((rate - expected).abs() < 0.03, "rate {rate}");
    }
}
