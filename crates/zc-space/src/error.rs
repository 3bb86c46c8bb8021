//! The error type of the crate.

use crate::op::Op;

/// Everything that can go wrong when building, parsing or sampling cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    /// A string is not one of the five op names.
    #[error("unknown op {name:?}; valid ops: {}", Op::valid_names())]
    UnknownOp {
        /// The offending name.
        name: String,
    },
    /// An architecture string does not follow the NB201 grammar.
    #[error("malformed architecture string {input:?}: {reason}")]
    MalformedArch {
        /// The whole offending input.
        input: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// A cell code is not below [`crate::Cell::COUNT`].
    #[error("cell code {code} is out of range: codes run from 0 to 15624")]
    CodeOutOfRange {
        /// The offending code.
        code: u16,
    },
    /// More distinct cells were requested than the space holds.
    #[error("cannot sample {requested} distinct cells: the space holds only 15625")]
    SampleTooLarge {
        /// The requested number of cells.
        requested: usize,
    },
}
