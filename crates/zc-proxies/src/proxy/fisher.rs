//! fisher (Theis et al. 2018; Turner et al. 2020): per output channel k,
//! F_k = 0.5 * mean_n (sum_hw A * dL/dA)^2, counted once per weight of the channel.

use super::{Proxy, ProxyInputs, Score};
use crate::{ProxyError, pass::PassKind};

/// Channel-wise Fisher information of the conv/linear outputs.
pub struct Fisher;

impl Proxy for Fisher {
    fn name(&self) -> &'static str {
        "fisher"
    }
    fn summary(&self) -> &'static str {
        "sum over channels of 0.5*mean_n(sum_hw A*dL/dA)^2, times C_in*k*k"
    }
    fn passes(&self) -> &'static [PassKind] {
        &[PassKind::Loss, PassKind::FisherTaps]
    }
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError> {
        let sums = inputs
            .loss()?
            .fisher_channel_sums
            .as_ref()
            .ok_or(ProxyError::PassNotRun("fisher_taps"))?;
        let layers = inputs.network.layers();
        Ok(Score::from_layers(
            sums.iter()
                .zip(layers)
                .map(|(s, l)| s * l.fan_in() as f64)
                .collect(),
        ))
    }
}
