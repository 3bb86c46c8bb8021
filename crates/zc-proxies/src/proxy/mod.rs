//! The zero-cost proxies: one [`Proxy`] trait, one small file per proxy, one [`REGISTRY`].
//!
//! A proxy declares the passes it needs ([`PassKind`]); the [`crate::Engine`] runs each pass
//! once per cell and hands every proxy the shared results in [`ProxyInputs`].
//! To add a proxy: write a file here implementing [`Proxy`] and list it in [`REGISTRY`].

mod epe_nas;
mod fisher;
mod flops;
mod grad_norm;
mod grasp;
mod jacob_cov;
mod l2_norm;
mod meco;
mod nwot;
mod params;
mod plain;
mod snip;
mod synflow;
mod zen;
mod zico;

use crate::ProxyError;
use crate::network::{Nb201Network, Weights};
use crate::pass::{
    InputJacobian, LossGradients, PassKind, PassResults, ReluKernel, SynflowGradients,
};

/// A proxy's value for one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The score: the sum over layers, or a scalar. NaN when not finite.
    pub total: f64,
    /// Per weight layer ([`Nb201Network::layers`] order); empty for scalar proxies.
    pub per_layer: Vec<f64>,
}

impl Score {
    /// A score summed from per-layer values (NaN when the sum is not finite).
    pub fn from_layers(per_layer: Vec<f64>) -> Self {
        let total = per_layer.iter().sum::<f64>();
        Self {
            total: if total.is_finite() { total } else { f64::NAN },
            per_layer,
        }
    }

    /// A scalar score (NaN when not finite).
    pub fn scalar(value: f64) -> Self {
        Self {
            total: if value.is_finite() { value } else { f64::NAN },
            per_layer: Vec::new(),
        }
    }
}

/// Everything a proxy may read: the network, its weights, the minibatch's resolution and
/// labels, and the results of the passes it declared.
pub struct ProxyInputs<'a> {
    /// The network scored.
    pub network: &'a Nb201Network,
    /// Its parameter values.
    pub weights: &'a Weights,
    /// Input resolution of the minibatch.
    pub resolution: usize,
    /// Class labels of the minibatch (stream 0).
    pub labels: &'a [i64],
    /// The results of the passes that ran.
    pub passes: &'a PassResults,
}

impl ProxyInputs<'_> {
    /// Weight values of layer `layer`.
    pub fn layer_weight(&self, layer: usize) -> &[f32] {
        self.weights.get(self.network.layers()[layer].weight)
    }

    /// The loss pass.
    pub fn loss(&self) -> Result<&LossGradients, ProxyError> {
        self.passes.loss(PassKind::Loss)
    }

    /// `θ_l · (H g)_l` per weight layer (`θ` the weights, `H g` the Hessian of the loss times
    /// its gradient).
    pub fn hessian_gradient(&self) -> Result<&[f64], ProxyError> {
        self.passes.hessian_gradient()
    }

    /// The input Jacobian.
    pub fn jacobian(&self) -> Result<&InputJacobian, ProxyError> {
        self.passes.jacobian()
    }

    /// The loss pass on the second minibatch.
    pub fn second_loss(&self) -> Result<&LossGradients, ProxyError> {
        self.passes.loss(PassKind::SecondBatchLoss)
    }

    /// The ReLU-code kernel.
    pub fn relu_kernel(&self) -> Result<&ReluKernel, ProxyError> {
        self.passes.relu_kernel()
    }

    /// A synflow pass, with or without the BNs outside the reduction blocks.
    pub fn synflow(&self, keep_bn: bool) -> Result<&SynflowGradients, ProxyError> {
        self.passes.synflow(if keep_bn {
            PassKind::SynflowBn
        } else {
            PassKind::Synflow
        })
    }

    /// Applies `f` to (weights, gradients) of every layer: a per-layer score from the loss pass.
    pub fn per_layer_from_loss(
        &self,
        f: impl Fn(&[f32], &[f64]) -> f64,
    ) -> Result<Score, ProxyError> {
        let loss = self.loss()?;
        let values = (0..self.network.layers().len())
            .map(|l| f(self.layer_weight(l), &loss.grads[l]))
            .collect();
        Ok(Score::from_layers(values))
    }
}

/// A zero-cost proxy.
pub trait Proxy: Sync {
    /// Registry name (e.g. `snip`).
    fn name(&self) -> &'static str;
    /// One line on what it computes.
    fn summary(&self) -> &'static str;
    /// The passes it reads (empty for proxies that need no pass).
    fn passes(&self) -> &'static [PassKind];
    /// Computes the score from shared pass results.
    fn score(&self, inputs: &ProxyInputs<'_>) -> Result<Score, ProxyError>;
}

/// Every proxy, in the order reports list them.
pub static REGISTRY: &[&dyn Proxy] = &[
    &grad_norm::GradNorm,
    &snip::Snip,
    &grasp::Grasp,
    &fisher::Fisher,
    &jacob_cov::JacobCov,
    &plain::Plain,
    &synflow::Synflow { keep_bn: false },
    &synflow::Synflow { keep_bn: true },
    &l2_norm::L2Norm,
    &params::Params,
    &flops::Flops,
    &nwot::Nwot,
    &epe_nas::EpeNas,
    &zico::Zico,
    &zen::Zen,
    &meco::Meco,
];

/// Looks a proxy up by name.
pub fn find(name: &str) -> Result<&'static dyn Proxy, ProxyError> {
    REGISTRY
        .iter()
        .copied()
        .find(|p| p.name() == name)
        .ok_or_else(|| ProxyError::UnknownProxy {
            name: name.to_string(),
            valid: REGISTRY
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Parses a comma-separated list of proxy names (`all` selects every proxy).
pub fn parse_list(list: &str) -> Result<Vec<&'static dyn Proxy>, ProxyError> {
    if list.trim() == "all" {
        return Ok(REGISTRY.to_vec());
    }
    list.split(',').map(|name| find(name.trim())).collect()
}

/// Sum of `f(w, g)` over a layer's weights and a per-weight quantity, in f64.
pub(crate) fn sum_pairs(weights: &[f32], other: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    weights
        .iter()
        .zip(other)
        .map(|(&w, &g)| f(f64::from(w), g))
        .sum()
}
