//! Neural architecture search over NAS-Bench-201 with zero-cost proxies.
//!
//! "Training a model" is a query of the benchmark's accuracy table ([`Accuracies`]), counted by
//! a [`Trainer`] against a budget of trained models. Four algorithms ([`Algorithm`]) search the
//! space, each optionally helped by a zero-cost proxy ([`ProxyScores`]) through a [`Variant`]:
//! `warmup(N)` spends N proxy evaluations before training (RAND, AE, BP: N random cells, the
//! best of which seed the search; RL: N policy samples rewarded by the proxy), `move(k)` uses the
//! proxy to choose which proposed cell to train.
//!
//! Re-querying a cell that was already trained costs nothing and is counted once: the budget
//! is the number of distinct cells trained. The algorithm still sees the result (aging
//! evolution adds the child to its population again, REINFORCE updates on it).
//!
//! ```
//! use zc_search::{Accuracies, Algorithm, ProxyScores, Run, Variant};
//! use zc_space::Cell;
//!
//! // A toy benchmark: accuracy grows with the number of 3x3 convolutions.
//! let acc: Vec<f64> = Cell::all()
//!     .map(|c| c.ops().iter().filter(|op| op.name() == "nor_conv_3x3").count() as f64)
//!     .collect();
//! let accuracies = Accuracies::new(acc.clone(), acc.clone())?;
//! let proxy = ProxyScores::from_table("toy", acc)?;
//! let run = Run { algorithm: Algorithm::Evolution, variant: Variant::BASELINE, budget: 100, seed: 1 };
//! let steps = run.execute(&accuracies, &proxy)?;
//! assert_eq!(steps.len(), 100);
//! # Ok::<(), zc_search::SearchError>(())
//! ```

pub mod algorithm;
mod error;
mod proxy;
pub mod relation_predictor;
mod trainer;
mod variant;

pub use algorithm::{Algorithm, Run};
pub use error::SearchError;
pub use proxy::{ProxyScores, Scorer};
pub use trainer::{Accuracies, Step, Trainer};
pub use variant::Variant;
