//! The scoring engine: runs each pass the requested proxies need once per cell, then every
//! proxy on the shared results, and times both.

use std::collections::BTreeSet;
use std::time::Instant;

use burn::tensor::Device;

use crate::ProxyError;
use crate::network::{Minibatch, Nb201Network, Weights};
use crate::pass::{
    BatchSource, FixedBatches, PassCx, PassKind, PassResults, Precision, ZenTerms, check_batch,
};
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
    /// Seconds: the proxy's own work plus its share of the passes it used (a pass used by k
    /// requested proxies, directly, through a dependency, or because it also serves a kind they
    /// list, as the fisher-tapped loss pass serves the loss, counts 1/k to each), so the shares
    /// add up to the cell's total time.
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
    sweeps: bool,
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
            sweeps: true,
        }
    }

    /// This engine with the loss, input-Jacobian and Hessian-gradient passes through autodiff
    /// even on flex, where they are otherwise backward sweeps sharing one forward
    /// ([`crate::network::sweep`]): slower, for checking one against the other.
    pub fn through_autodiff(self) -> Self {
        Self {
            sweeps: false,
            ..self
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

    /// Zen's terms for given (Gaussian) `weights` and inputs `x1`, `x2` of `shape`: what the zen
    /// proxy computes after its own Gaussian draws, for checking it against other
    /// implementations on the same draws.
    pub fn zen_terms(
        &self,
        network: &Nb201Network,
        weights: &Weights,
        x1: &[f32],
        x2: &[f32],
        shape: [usize; 4],
    ) -> ZenTerms {
        crate::pass::zen_terms(
            network,
            weights,
            x1,
            x2,
            shape,
            &self.device,
            self.precision,
        )
    }

    /// Scores `network` with `weights` on `batch` for every proxy in `proxies` (a proxy that
    /// needs a second minibatch fails with [`ProxyError::NoSuchBatch`]; use
    /// [`Engine::score_from`]).
    pub fn score(
        &self,
        network: &Nb201Network,
        weights: &Weights,
        batch: &Minibatch,
        proxies: &[&dyn Proxy],
    ) -> Result<CellScores, ProxyError> {
        self.score_from(
            network,
            weights,
            &FixedBatches(std::slice::from_ref(batch)),
            proxies,
        )
    }

    /// Scores `network` with `weights` for every proxy in `proxies`, drawing minibatches from
    /// `data` (stream 0 for the usual one, further streams for proxies that need more). Runs
    /// each needed pass (and its dependencies) once, then every proxy on the shared results.
    pub fn score_from(
        &self,
        network: &Nb201Network,
        weights: &Weights,
        data: &dyn BatchSource,
        proxies: &[&dyn Proxy],
    ) -> Result<CellScores, ProxyError> {
        let batch = data.batch(0)?;
        check_batch(network, &batch)?;
        let mut needed: BTreeSet<PassKind> = proxies
            .iter()
            .flat_map(|p| p.passes().iter().copied())
            .collect();
        // Dependencies come earlier in PassKind's order: running in order runs them first.
        while let Some(dep) = needed
            .iter()
            .flat_map(|k| k.deps().iter().copied())
            .find(|d| !needed.contains(d))
        {
            needed.insert(dep);
        }
        // A kind another needed kind also serves does not run: its result is read from that one.
        let served: BTreeSet<PassKind> = needed
            .iter()
            .flat_map(|k| k.also_serves().iter().copied())
            .collect();
        needed.retain(|k| !served.contains(k));
        let cx = PassCx {
            net: network,
            weights,
            device: &self.device,
            precision: self.precision,
            first_batch: &batch,
            data,
            running: &needed,
            sweeps: self.sweeps && matches!(self.backend, Backend::Flex),
        };
        let mut results = PassResults::default();
        let mut pass_seconds = Vec::new();
        for &kind in &needed {
            let start = Instant::now();
            let output = kind.run(&cx, &results)?;
            results.insert(kind, output);
            pass_seconds.push((kind, start.elapsed().as_secs_f64()));
        }
        let inputs = ProxyInputs {
            network,
            weights,
            resolution: batch.resolution,
            labels: &batch.labels,
            passes: &results,
        };
        let share = |kind: PassKind| {
            let users = proxies.iter().filter(|p| uses(**p, kind)).count().max(1);
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
                let seconds = own
                    + pass_seconds
                        .iter()
                        .filter(|(k, _)| uses(*proxy, *k))
                        .map(|(k, _)| share(*k))
                        .sum::<f64>();
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

/// Whether `proxy` uses the result of `kind`: it lists `kind`, a kind `kind` also serves, or a
/// kind that depends on it (at any depth).
fn uses(proxy: &dyn Proxy, kind: PassKind) -> bool {
    fn reaches(from: PassKind, kind: PassKind) -> bool {
        from == kind
            || kind.also_serves().contains(&from)
            || from.deps().iter().any(|&d| reaches(d, kind))
    }
    proxy.passes().iter().any(|&p| reaches(p, kind))
}
