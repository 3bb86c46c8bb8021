//! MeCo (Jiang, Wang and Bie, NeurIPS 2023): how decorrelated the channels of the feature maps
//! are, for one image.
//!
//! As the authors' NB201 correlation script (`correlation/NAS_Bench_201.py`, `get_score` with
//! `measure='meco'`) computes it: a forward hook on every module of the network (containers and
//! the root included) takes the output's first image as a channels x positions matrix, its
//! channel correlation (`torch.corrcoef`, NaN entries set to 0) and the smallest real eigenvalue;
//! MeCo is the sum over hooks. An output seen by several modules (a BatchNorm's, its Sequential's
//! and its ReLU-conv-BN op's) counts once per module; 1-D outputs (pooled features, logits)
//! give 0. The authors feed one training image with the usual augmentation, resized to 32x32;
//! we take the first image of the engine's minibatch, at the dataset's resolution.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// The sum over module outputs of the smallest channel-correlation eigenvalue.
pub struct Meco;

impl Proxy for Meco {
    fn name(&self) -> &'static str {
        "meco"
    }
    fn summary(&self) -> &'static str {
        "sum over module outputs of the smallest eigenvalue of the channel correlation (one image)"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Meco]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        Ok(Score::scalar(inputs.passes.meco()?))
    }
}
