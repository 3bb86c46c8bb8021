//! Errors of the search crate.

use thiserror::Error;

/// What can go wrong when configuring or running a search.
#[derive(Debug, Error)]
pub enum SearchError {
    /// An accuracy or score table does not have one value per cell.
    #[error("{what} has {found} values, expected one per cell ({expected})")]
    WrongLength {
        /// Which table.
        what: &'static str,
        /// Its length.
        found: usize,
        /// The number of cells.
        expected: usize,
    },
    /// A table value that is NaN or infinite.
    #[error("{what} of the cell with code {code} is not a finite number")]
    NotFinite {
        /// Which table.
        what: &'static str,
        /// The cell's code.
        code: usize,
    },
    /// A variant string that does not parse.
    #[error("bad variant {text:?}: {why}")]
    BadVariant {
        /// The text given.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// An algorithm name that is not known.
    #[error("unknown algorithm {0:?} (known: rand, rl, ae, bp)")]
    UnknownAlgorithm(String),
    /// A variant that the algorithm does not support.
    #[error("algorithm {algorithm} does not support {variant}: {why}")]
    Unsupported {
        /// The algorithm.
        algorithm: &'static str,
        /// The variant.
        variant: String,
        /// Why not.
        why: &'static str,
    },
    /// The proxy could not score a cell.
    #[error("proxy {proxy} could not score {cell}: {why}")]
    Proxy {
        /// The proxy's name.
        proxy: String,
        /// The cell's architecture string.
        cell: String,
        /// What went wrong.
        why: String,
    },
}
