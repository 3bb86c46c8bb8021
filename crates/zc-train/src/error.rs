//! Errors of reduced training.

use thiserror::Error;

/// What can go wrong setting up or running a training.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A reduced-training setting name is not of the form `rRcC`.
    #[error(
        "\"{0}\" is not a training setting: write rRcC with the input resolution R (8 to 32, a multiple of 4) and the initial channels C, e.g. r8c4 or r32c16"
    )]
    BadSetting(String),
    /// A recipe value is out of range.
    #[error("training recipe: {0}")]
    BadRecipe(String),
    /// The data cannot be split or batched as asked.
    #[error("training data: {0}")]
    BadData(String),
}
