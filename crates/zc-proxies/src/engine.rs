//! The scoring engine: runs each pass the requested proxies need once per cell, then every
//! proxy on the shared results, and times both.

use std::collections::BTreeSet;
use std::time::Instant;

use burn::tensor::Device;

use crate::ProxyError;
use crate::network::forward::NormMode;
use crate::network::{Minibatch, Nb201Network, Weights};
use crate::pass::{self, PassKind, Precision};
use crate::proxy::{Proxy, ProxyInputs, Score};

/// Compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's pure-Rust `flex` CPU backend (default).
    Flex,
    /// burn-cuda, GPU `index` (cargo feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

impl Backend {
    /// Name recorded in results.
    pub fn name(self) -> String {
        match self {
            Backend::Flex => "flex".into(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(i) => format!("cuda:{i}"),
        }
    }
}

/// One proxy's result for one cell.
#[derive(Debug, Clone)]
pub struct ProxyScore {
    /// Proxy name.
    pub name: &'static str,
    /// The value.
    pub score: Score,
    /// Seconds: the proxy's own work plus its share of the passes it used (a pass shared by k
    /// requested proxies counts 1/k to each), so the shares add up to the cell's total time.
    pub seconds: f64,
}

/// All requested proxies' results for one cell.
#[derive(Debug, Clone)]
pub struct CellScores {
    /// In the order requested.
    pub proxies: Vec<ProxyScore>,
    /// Wall-clock seconds of each pass that ran.
    pub passes: Vec<(PassKind, f64)>,
}

impl CellScores {
    /// Names of the proxies whose value is NaN (not finite, or undefined as jacob_cov is for a
    /// cell whose output does not depend on its input).
    pub fn non_finite(&self) -> Vec<&'static str> {
        self.proxies
            .iter()
            .filter(|p| p.score.total.is_nan())
            .map(|p| p.name)
            .collect()
    }

    /// Total seconds spent on the cell.
    pub fn seconds(&self) -> f64 {
        self.proxies.iter().map(|p| p.seconds).sum()
    }
}

/// Scores cells with a set of proxies on one backend.
pub struct Engine {
    backend: Backend,
    precision: Precision,
    device: Device,
}

impl Engine {
    /// An engine on `backend`, with autodiff, running the minibatch passes in `precision`.
    pub fn new(backend: Backend, precision: Precision) -> Self {
        let device = match backend {
            Backend::Flex => Device::flex(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(i) => Device::cuda(i),
        };
        Self {
            backend,
            precision,
            device: device.autodiff(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Precision of the minibatch passes.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Scores `network` with `weights` on `batch` for every proxy in `proxies`.
    pub fn score(
        &self,
        network: &Nb201Network,
        weights: &Weights,
        batch: &Minibatch,
        proxies: &[&dyn Proxy],
    ) -> Result<CellScores, ProxyError> {
        check_batch(network, batch)?;
        let needed: BTreeSet<PassKind> = proxies
            .iter()
            .flat_map(|p| p.passes().iter().copied())
            .collect();
        let mut inputs = ProxyInputs {
            network,
            weights,
            resolution: batch.resolution,
            loss: None,
            hessian_gradient: None,
            jacobian: None,
            synflow: None,
            synflow_bn: None,
        };
        let mut pass_seconds = Vec::new();
        let mut timed = |kind: PassKind, seconds: f64| pass_seconds.push((kind, seconds));
        let device = &self.device;
        if needed.contains(&PassKind::Loss) || needed.contains(&PassKind::FisherTaps) {
            let start = Instant::now();
            let fisher = needed.contains(&PassKind::FisherTaps);
            inputs.loss = Some(pass::loss_gradients(
                network,
                weights,
                batch,
                device,
                self.precision,
                fisher,
            ));
            timed(PassKind::Loss, start.elapsed().as_secs_f64());
        }
        if needed.contains(&PassKind::HessianGradient) {
            let start = Instant::now();
            let g = &inputs
                .loss
                .as_ref()
                .ok_or(ProxyError::PassNotRun("loss"))?
                .grads;
            inputs.hessian_gradient = Some(pass::hessian_gradient(
                network,
                weights,
                batch,
                device,
                self.precision,
                g,
            ));
            timed(PassKind::HessianGradient, start.elapsed().as_secs_f64());
        }
        if needed.contains(&PassKind::InputJacobian) {
            let start = Instant::now();
            inputs.jacobian = Some(pass::input_jacobian(
                network,
                weights,
                batch,
                device,
                self.precision,
            ));
            timed(PassKind::InputJacobian, start.elapsed().as_secs_f64());
        }
        for (kind, norms) in [
            (PassKind::Synflow, NormMode::ReductionOnly),
            (PassKind::SynflowBn, NormMode::All),
        ] {
            if needed.contains(&kind) {
                let start = Instant::now();
                let result =
                    pass::synflow_gradients(network, weights, batch.resolution, device, norms);
                match kind {
                    PassKind::Synflow => inputs.synflow = Some(result),
                    _ => inputs.synflow_bn = Some(result),
                }
                timed(kind, start.elapsed().as_secs_f64());
            }
        }
        let share = |kind: PassKind| {
            let users = proxies
                .iter()
                .filter(|p| p.passes().contains(&kind))
                .count()
                .max(1);
            let seconds: f64 = pass_seconds
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, s)| s)
                .sum();
            seconds / users as f64
        };
        let scores = proxies
            .iter()
            .map(|proxy| {
                let start = Instant::now();
                let score = proxy.score(&inputs)?;
                let own = start.elapsed().as_secs_f64();
                let seconds = own + proxy.passes().iter().map(|&k| share(k)).sum::<f64>();
                Ok(ProxyScore {
                    name: proxy.name(),
                    score,
                    seconds,
                })
            })
            .collect::<Result<_, ProxyError>>()?;
        Ok(CellScores {
            proxies: scores,
            passes: pass_seconds,
        })
    }
}

fn check_batch(network: &Nb201Network, batch: &Minibatch) -> Result<(), ProxyError> {
    let n = batch.batch_size;
    let r = batch.resolution;
    if n == 0 || r == 0 || !r.is_multiple_of(4) {
        return Err(ProxyError::BadBatch(format!(
            "batch {n} at resolution {r}: need a non-empty batch and a resolution divisible by 4"
        )));
    }
    if batch.images.len() != n * 3 * r * r || batch.labels.len() != n {
        return Err(ProxyError::BadBatch(format!(
            "{} image values and {} labels do not make {n} images of 3x{r}x{r}",
            batch.images.len(),
            batch.labels.len()
        )));
    }
    if let Some(bad) = batch
        .labels
        .iter()
        .find(|&&l| l < 0 || l as usize >= network.num_classes())
    {
        return Err(ProxyError::BadBatch(format!(
            "label {bad} is outside the {} classes of the network",
            network.num_classes()
        )));
    }
    Ok(())
}
