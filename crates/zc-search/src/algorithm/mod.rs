//! The search algorithms and one seeded run of them.

mod evolution;
mod predictor;
mod random;
mod reinforce;

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use zc_space::Cell;

pub use evolution::propose_move;

use crate::variant::MoveProposal;
use crate::{Accuracies, ProxyScores, SearchError, Step, Trainer, Variant};

/// A NAS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `rand`: random search; `warmup(N)` trains the N scored cells in proxy order first.
    Random,
    /// `rl`: a REINFORCE controller, one categorical policy per edge with a moving-average
    /// baseline; `warmup(N)` pre-trains it for N policy samples rewarded by the proxy, `move(k)` trains the best untrained
    /// one of k sampled cells by proxy.
    Reinforce,
    /// `ae`: aging evolution (population 64, tournament 10, mutate one edge); `warmup(N)`
    /// starts from the proxy's top 64, `move` mutates to the best neighbour by proxy.
    Evolution,
    /// `bp`: predictor-based search with a graph network that ranks pairs of cells, trained on
    /// the cells trained so far; `warmup(N)` pre-trains it on the proxy scores of N random cells.
    Predictor,
}

impl Algorithm {
    /// Every algorithm, in the paper's panel order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Random,
        Algorithm::Reinforce,
        Algorithm::Evolution,
        Algorithm::Predictor,
    ];

    /// The short name used in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Random => "rand",
            Algorithm::Reinforce => "rl",
            Algorithm::Evolution => "ae",
            Algorithm::Predictor => "bp",
        }
    }

    /// Checks that the algorithm supports `variant`.
    pub fn check(self, variant: Variant) -> Result<(), SearchError> {
        let unsupported = |why| {
            Err(SearchError::Unsupported {
                algorithm: self.name(),
                variant: variant.to_string(),
                why,
            })
        };
        match (self, variant.proposal) {
            (_, None) => Ok(()),
            (Algorithm::Reinforce, Some(MoveProposal::Sample(_))) => Ok(()),
            (Algorithm::Evolution, Some(MoveProposal::Neighbours)) => Ok(()),
            (Algorithm::Reinforce, Some(MoveProposal::Neighbours)) => {
                unsupported("RL's move proposal samples k cells: write move(k)")
            }
            (Algorithm::Evolution, Some(MoveProposal::Sample(_))) => {
                unsupported("AE's move proposal ranks the 24 neighbours: write move")
            }
            (Algorithm::Random | Algorithm::Predictor, Some(_)) => {
                unsupported("only RL and AE have a move proposal")
            }
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self, SearchError> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| SearchError::UnknownAlgorithm(s.to_string()))
    }
}

/// One seeded search run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// How it uses the proxy.
    pub variant: Variant,
    /// Distinct cells it may train.
    pub budget: usize,
    /// Seed of every random choice of the run.
    pub seed: u64,
}

impl Run {
    /// Runs the search and returns one step per trained model (fewer than the budget only if
    /// the algorithm stopped proposing new cells).
    pub fn execute(
        &self,
        accuracies: &Accuracies,
        proxy: &ProxyScores,
    ) -> Result<Vec<Step>, SearchError> {
        self.algorithm.check(self.variant)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut trainer = Trainer::new(accuracies, self.budget);
        let mut search = Search {
            trainer: &mut trainer,
            variant: self.variant,
            proxy,
            rng: &mut rng,
        };
        match self.algorithm {
            Algorithm::Random => random::search(&mut search)?,
            Algorithm::Reinforce => reinforce::search(&mut search)?,
            Algorithm::Evolution => evolution::search(&mut search)?,
            Algorithm::Predictor => predictor::search(&mut search)?,
        }
        Ok(trainer.into_steps())
    }
}

/// What every algorithm works with.
struct Search<'t, 'a> {
    trainer: &'t mut Trainer<'a>,
    variant: Variant,
    proxy: &'t ProxyScores,
    rng: &'t mut ChaCha8Rng,
}

impl Search<'_, '_> {
    /// `warmup(N)`: N distinct random cells (all of them for N = 15,625), best by proxy first.
    fn warmup_ranking(&mut self, n: usize) -> Result<Vec<Cell>, SearchError> {
        let cells = random_distinct_cells(self.rng, n);
        self.proxy.rank(&cells)
    }
}

/// `n` distinct cells drawn uniformly at random.
fn random_distinct_cells(rng: &mut ChaCha8Rng, n: usize) -> Vec<Cell> {
    index::sample(rng, Cell::COUNT, n.min(Cell::COUNT))
        .into_iter()
        .map(|code| Cell::from_code(code as u16).expect("codes below Cell::COUNT are cells"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
        }
        assert!(
            "evolution"
                .parse::<Algorithm>()
                .unwrap_err()
                .to_string()
                .contains("rand, rl, ae, bp")
        );
    }

    #[test]
    fn move_proposals_are_checked_per_algorithm() {
        let mv: Variant = "move".parse().unwrap();
        let mvk: Variant = "move(10)".parse().unwrap();
        assert!(Algorithm::Evolution.check(mv).is_ok());
        assert!(Algorithm::Reinforce.check(mvk).is_ok());
        assert!(Algorithm::Evolution.check(mvk).is_err());
        assert!(Algorithm::Reinforce.check(mv).is_err());
        assert!(Algorithm::Random.check(mv).is_err());
        assert!(Algorithm::Predictor.check(mvk).is_err());
    }
}
