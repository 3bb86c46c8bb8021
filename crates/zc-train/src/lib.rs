//! Reduced training of NB201 networks, the EcoNAS proxies of the paper's Figures 1 and 2.
//!
//! - [`Setting`]: a reduced setting `rRcC` (input resolution, initial channels) and its FLOPs;
//! - [`Recipe`]: the authors' SGD recipe (Nesterov, weight decay, cosine schedule);
//! - [`TrainData`]: training and test images, augmented and resized as the authors' pipeline;
//! - [`Training`]: one network trained with burn's optimiser on the shared NB201 forward.

mod data;
mod error;
pub mod resize;
mod setting;
mod trainer;

pub use data::TrainData;
pub use error::TrainError;
pub use setting::{Recipe, Setting};
pub use trainer::{EpochReport, Evaluation, Training};
