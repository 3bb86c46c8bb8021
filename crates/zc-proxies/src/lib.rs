//! The NB201 network in burn and the zero-cost proxies of Abdelfattah et al. (ICLR 2021).
//!
//! - [`network`]: the network of a cell (reference parameter names), its weights and the
//!   functional forward pass;
//! - [`pass`]: the forward/backward passes the proxies share;
//! - [`proxy`]: one file per proxy, the [`Proxy`] trait and the [`proxy::REGISTRY`];
//! - [`Engine`]: runs each needed pass once per cell, then every requested proxy.

mod correlation;
mod engine;
mod error;
pub mod network;
pub mod pass;
pub mod proxy;

pub use engine::{Backend, CellScores, Engine, ProxyScore};
pub use error::ProxyError;
pub use network::{Minibatch, Nb201Network, Weights, load_batches};
pub use pass::{BatchSource, FixedBatches, Precision, SampledBatches};
pub use proxy::{Proxy, Score};
