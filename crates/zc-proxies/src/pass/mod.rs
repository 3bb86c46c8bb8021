//! The forward/backward passes behind the proxies. Each kind ([`PassKind`]) is one file here,
//! runs at most once per cell, and every proxy that needs it reads its result. Results come back
//! to the host as float64.
//!
//! To add a pass: write its file with a `run(cx: &PassCx, ...)`, add a [`PassKind`] (after its
//! dependencies) with its name, [`PassKind::deps`] (and [`PassKind::also_serves`] if its
//! result is another kind's too) and one line in [`PassKind::run`], a [`PassOutput`] variant if
//! its result is of a new type, and an accessor on [`PassResults`]; give the shard sizing of
//! `zc submit` (`zc-experiments/src/cluster.rs`, `pass_seconds`) its typical cost.

mod hessian;
mod jacobian;
mod loss;
mod meco;
mod relu_kernel;
mod synflow;
mod zen;

use burn::tensor::{DType, Device, Gradients, Tensor, TensorData};

pub use jacobian::InputJacobian;
pub use loss::LossGradients;
pub use relu_kernel::ReluKernel;
pub use synflow::SynflowGradients;
pub(crate) use zen::zen_terms;
pub use zen::{MIXUP_GAMMA, ZenTerms};

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::ProxyError;
use crate::network::forward::{ForwardRecord, NormMode};
use crate::network::{Minibatch, Nb201Network, Weights};

/// The kinds of pass a proxy can depend on. Each kind lives in its own file of this module and
/// runs at most once per cell; a kind's dependencies come before it in this declaration order,
/// so running the needed kinds in order runs every dependency first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PassKind {
    /// The [`PassKind::Loss`] pass with fisher taps: dL/dA at every conv/linear output. When it
    /// runs, the loss pass does not: its result serves as the loss pass's.
    FisherTaps,
    /// Forward + backward of the cross-entropy loss on the minibatch (BN on): dL/dtheta.
    Loss,
    /// Gradient of the sum of logits w.r.t. the input images (jacob_cov, epe_nas). After the
    /// loss pass, whose forward it shares on flex (a second backward sweep over its record).
    InputJacobian,
    /// GraSP's `θ_l · (H g)_l` per weight layer, `H g` the Hessian-vector product with the loss
    /// pass's gradient `g` (needs [`PassKind::Loss`]).
    HessianGradient,
    /// synflow: |theta| in float64, one all-ones image, BN only in the reduction blocks.
    Synflow,
    /// synflow with every BN kept.
    SynflowBn,
    /// The loss pass on a second, independent minibatch (batch stream 1; ZiCo).
    SecondBatchLoss,
    /// The ReLU-pattern kernel of the minibatch (nwot): one forward, no backward.
    ReluKernel,
    /// Zen-NAS's two forwards with Gaussian weights and inputs.
    Zen,
    /// MeCo's forward of one image with the channel-correlation observer.
    Meco,
}

impl PassKind {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PassKind::FisherTaps => "fisher_taps",
            PassKind::Loss => "loss",
            PassKind::HessianGradient => "hessian_gradient",
            PassKind::InputJacobian => "input_jacobian",
            PassKind::Synflow => "synflow",
            PassKind::SynflowBn => "synflow_bn",
            PassKind::SecondBatchLoss => "second_batch_loss",
            PassKind::ReluKernel => "relu_kernel",
            PassKind::Zen => "zen",
            PassKind::Meco => "meco",
        }
    }

    /// The kinds whose results this one reads.
    pub fn deps(self) -> &'static [PassKind] {
        match self {
            PassKind::HessianGradient => &[PassKind::Loss],
            _ => &[],
        }
    }

    /// The kinds whose result this one also provides (the fisher-tapped loss pass is the loss
    /// pass too): when it runs they do not, their results are read from it, and its time is
    /// shared by the proxies of all of them.
    pub fn also_serves(self) -> &'static [PassKind] {
        match self {
            PassKind::FisherTaps => &[PassKind::Loss],
            _ => &[],
        }
    }

    /// Runs the pass; `done` holds the results of its dependencies.
    pub(crate) fn run(self, cx: &PassCx<'_>, done: &PassResults) -> Result<PassOutput, ProxyError> {
        Ok(match self {
            PassKind::FisherTaps => PassOutput::Loss(loss::run(cx, done, 0, true)?),
            PassKind::Loss => PassOutput::Loss(loss::run(cx, done, 0, false)?),
            PassKind::HessianGradient => {
                let direction = &done.loss(PassKind::Loss)?.grads;
                PassOutput::HessianGradient(hessian::run(cx, done, direction)?)
            }
            PassKind::InputJacobian => PassOutput::Jacobian(jacobian::run(cx, done)?),
            PassKind::Synflow => PassOutput::Synflow(synflow::run(cx, NormMode::ReductionOnly)),
            PassKind::SynflowBn => PassOutput::Synflow(synflow::run(cx, NormMode::All)),
            PassKind::SecondBatchLoss => PassOutput::Loss(loss::run(cx, done, 1, false)?),
            PassKind::ReluKernel => PassOutput::Kernel(relu_kernel::run(cx)?),
            PassKind::Zen => PassOutput::Zen(zen::run(cx)?),
            PassKind::Meco => PassOutput::Scalar(meco::run(cx)?),
        })
    }
}

/// Where a pass gets its minibatches: stream 0 is the proxies' minibatch, streams 1, 2, ... are
/// further independent ones (for proxies that need several).
pub trait BatchSource: Sync {
    /// Minibatch number `stream`.
    fn batch(&self, stream: usize) -> Result<Minibatch, ProxyError>;
}

/// Fixed minibatches (given files, a test's batches): stream i is the i-th.
pub struct FixedBatches<'a>(pub &'a [Minibatch]);

impl BatchSource for FixedBatches<'_> {
    fn batch(&self, stream: usize) -> Result<Minibatch, ProxyError> {
        self.0.get(stream).cloned().ok_or(ProxyError::NoSuchBatch {
            stream,
            available: self.0.len(),
        })
    }
}

/// Minibatches drawn by a sampler for one cell: stream 0 is `sampler.batch(key)` (what every
/// sweep has always used), stream s is `sampler.batch(key + s * 2^32)`, an independent draw
/// (cell keys are below 2^32). Independent draws from a small image set can share images
/// (two random 64-image batches of the 1,000 shipped CIFAR-10 images share about 4).
pub struct SampledBatches<'a> {
    /// The sampler (seeded, with the data load).
    pub sampler: &'a zc_data::MinibatchSampler,
    /// The cell's key (its code).
    pub key: u64,
}

impl BatchSource for SampledBatches<'_> {
    fn batch(&self, stream: usize) -> Result<Minibatch, ProxyError> {
        Ok(self.sampler.batch(self.key + ((stream as u64) << 32)))
    }
}

/// What a pass works on: the network, its weights, the device and precision, the minibatches.
pub struct PassCx<'a> {
    /// The network.
    pub net: &'a Nb201Network,
    /// Its weights.
    pub weights: &'a Weights,
    /// The device (with autodiff).
    pub device: &'a Device,
    /// Precision of the minibatch passes.
    pub precision: Precision,
    /// Minibatch stream 0, drawn once.
    pub first_batch: &'a Minibatch,
    /// Every stream.
    pub data: &'a dyn BatchSource,
    /// The kinds that run for this cell: a pass keeps what a later one can share.
    pub running: &'a BTreeSet<PassKind>,
    /// Run the loss pass as a recorded forward and backward sweeps that later passes share
    /// (flex only), rather than through autodiff.
    pub sweeps: bool,
}

impl PassCx<'_> {
    /// Minibatch `stream` (stream 0 without drawing it again), checked against the network.
    pub fn batch(&self, stream: usize) -> Result<std::borrow::Cow<'_, Minibatch>, ProxyError> {
        if stream == 0 {
            return Ok(std::borrow::Cow::Borrowed(self.first_batch));
        }
        let batch = self.data.batch(stream)?;
        check_batch(self.net, &batch)?;
        Ok(std::borrow::Cow::Owned(batch))
    }
}

/// A pass's result.
#[derive(Debug, Clone)]
pub enum PassOutput {
    /// Loss gradients.
    Loss(LossGradients),
    /// `θ_l · (H g)_l` per weight layer.
    HessianGradient(Vec<f64>),
    /// Input Jacobian rows.
    Jacobian(InputJacobian),
    /// synflow's |W| and gradients.
    Synflow(SynflowGradients),
    /// A kernel over the images of the batch.
    Kernel(ReluKernel),
    /// Zen's terms.
    Zen(ZenTerms),
    /// A scalar (MeCo's sum).
    Scalar(f64),
}

/// The results of the passes that ran for one cell, by kind.
#[derive(Debug, Default)]
pub struct PassResults {
    outputs: std::collections::BTreeMap<PassKind, PassOutput>,
    /// The loss pass's recorded forward, until the last pass that reads it takes it.
    record: RefCell<Option<ForwardRecord>>,
    /// The loss pass's backward-sweep gradients, until the Hessian-gradient pass takes them.
    cotangents: RefCell<Option<Vec<Option<Tensor<4>>>>>,
}

impl PassResults {
    pub(crate) fn insert(&mut self, kind: PassKind, output: PassOutput) {
        self.outputs.insert(kind, output);
    }

    /// Keeps a recorded forward of the minibatch for a later pass.
    fn keep_record(&self, record: ForwardRecord) {
        *self.record.borrow_mut() = Some(record);
    }

    /// The recorded forward of the minibatch, if a pass kept one: taken when `last` (its
    /// memory is freed once the taker is done), else a copy (sharing the values).
    fn record(&self, last: bool) -> Option<ForwardRecord> {
        let mut record = self.record.borrow_mut();
        if last { record.take() } else { record.clone() }
    }

    /// Keeps the loss sweep's gradients for the Hessian-gradient pass.
    fn keep_cotangents(&self, cotangents: Vec<Option<Tensor<4>>>) {
        *self.cotangents.borrow_mut() = Some(cotangents);
    }

    /// The loss sweep's gradients, if the loss pass kept them (taken).
    fn take_cotangents(&self) -> Option<Vec<Option<Tensor<4>>>> {
        self.cotangents.borrow_mut().take()
    }

    /// The result of `kind`, or of the kind that ran in its place ([`PassKind::also_serves`]).
    fn get(&self, kind: PassKind) -> Result<&PassOutput, ProxyError> {
        self.outputs
            .get(&kind)
            .or_else(|| {
                self.outputs
                    .iter()
                    .find(|(k, _)| k.also_serves().contains(&kind))
                    .map(|(_, output)| output)
            })
            .ok_or(ProxyError::PassNotRun(kind.name()))
    }

    /// The loss gradients of `kind` (a loss-type pass).
    pub fn loss(&self, kind: PassKind) -> Result<&LossGradients, ProxyError> {
        match self.get(kind)? {
            PassOutput::Loss(l) => Ok(l),
            _ => Err(ProxyError::PassNotRun(kind.name())),
        }
    }

    /// `θ_l · (H g)_l` per weight layer.
    pub fn hessian_gradient(&self) -> Result<&[f64], ProxyError> {
        match self.get(PassKind::HessianGradient)? {
            PassOutput::HessianGradient(g) => Ok(g),
            _ => Err(ProxyError::PassNotRun(PassKind::HessianGradient.name())),
        }
    }

    /// The input Jacobian.
    pub fn jacobian(&self) -> Result<&InputJacobian, ProxyError> {
        match self.get(PassKind::InputJacobian)? {
            PassOutput::Jacobian(j) => Ok(j),
            _ => Err(ProxyError::PassNotRun(PassKind::InputJacobian.name())),
        }
    }

    /// A synflow pass's result.
    pub fn synflow(&self, kind: PassKind) -> Result<&SynflowGradients, ProxyError> {
        match self.get(kind)? {
            PassOutput::Synflow(s) => Ok(s),
            _ => Err(ProxyError::PassNotRun(kind.name())),
        }
    }

    /// MeCo's sum.
    pub fn meco(&self) -> Result<f64, ProxyError> {
        match self.get(PassKind::Meco)? {
            PassOutput::Scalar(v) => Ok(*v),
            _ => Err(ProxyError::PassNotRun(PassKind::Meco.name())),
        }
    }

    /// Zen's terms.
    pub fn zen(&self) -> Result<&ZenTerms, ProxyError> {
        match self.get(PassKind::Zen)? {
            PassOutput::Zen(z) => Ok(z),
            _ => Err(ProxyError::PassNotRun(PassKind::Zen.name())),
        }
    }

    /// The ReLU-pattern kernel.
    pub fn relu_kernel(&self) -> Result<&ReluKernel, ProxyError> {
        match self.get(PassKind::ReluKernel)? {
            PassOutput::Kernel(k) => Ok(k),
            _ => Err(ProxyError::PassNotRun(PassKind::ReluKernel.name())),
        }
    }
}

/// Floating-point precision of the minibatch passes (loss, Hessian-gradient, input Jacobian).
/// synflow always runs in float64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32, as the reference code runs (default; about twice as fast).
    #[default]
    F32,
    /// float64: the exact values that float32 implementations scatter around.
    F64,
}

impl Precision {
    /// The tensor dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }

    /// Name recorded in results (`f32`, `f64`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Builds device tensors from host weights: every parameter as a flat tensor in `dtype`;
/// weights of conv/linear layers become gradient leaves when `track_weights`.
pub(super) fn device_params(
    net: &Nb201Network,
    weights: &Weights,
    device: &Device,
    dtype: DType,
    abs: bool,
    track_weights: bool,
) -> Vec<Tensor<1>> {
    let mut is_weight = vec![false; net.params().len()];
    for layer in net.layers() {
        is_weight[layer.weight] = true;
    }
    net.params()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let values = weights.get(i);
            let values = if abs {
                values.iter().map(|v| v.abs()).collect()
            } else {
                values.to_vec()
            };
            let t = Tensor::<1>::from_data(TensorData::new(values, [p.numel()]), (device, dtype));
            if track_weights && is_weight[i] {
                t.require_grad()
            } else {
                t
            }
        })
        .collect()
}

/// The minibatch's images as a `[N, 3, H, W]` tensor on `device` in `dtype`.
pub fn inputs(batch: &Minibatch, device: &Device, dtype: DType) -> Tensor<4> {
    let shape = [batch.batch_size, 3, batch.resolution, batch.resolution];
    Tensor::from_data(
        TensorData::new(batch.images.clone(), shape),
        (device, dtype),
    )
}

/// The minibatch's labels one-hot, `[N, classes]`, on `device` in `dtype`.
pub fn one_hot(batch: &Minibatch, classes: usize, device: &Device, dtype: DType) -> Tensor<2> {
    let mut values = vec![0.0f32; batch.batch_size * classes];
    for (row, &label) in batch.labels.iter().enumerate() {
        values[row * classes + label as usize] = 1.0;
    }
    Tensor::from_data(
        TensorData::new(values, [batch.batch_size, classes]),
        (device, dtype),
    )
}

pub(super) fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float tensor data")
}

/// Gradient of each layer's weight leaf on the host, zeros where the layer got none.
pub(super) fn layer_grads(
    net: &Nb201Network,
    params: &[Tensor<1>],
    grads: &Gradients,
) -> Vec<Vec<f64>> {
    let leaves = net.layers().iter().map(|l| params[l.weight].grad(grads));
    per_layer_on_host(net, params, leaves)
}

/// One weight-shaped value per layer (flattened, [`Nb201Network::layers`] order) on the host,
/// zeros where a layer has none.
pub(super) fn per_layer_on_host(
    net: &Nb201Network,
    params: &[Tensor<1>],
    values: impl IntoIterator<Item = Option<Tensor<1>>>,
) -> Vec<Vec<f64>> {
    net.layers()
        .iter()
        .zip(values)
        .map(|(layer, value)| {
            value.map_or_else(|| vec![0.0; params[layer.weight].dims()[0]], to_host)
        })
        .collect()
}

/// Checks that a minibatch fits the network: a non-empty batch of 3-channel images at a
/// resolution divisible by 4, and labels below the class count.
pub(crate) fn check_batch(network: &Nb201Network, batch: &Minibatch) -> Result<(), ProxyError> {
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

#[cfg(test)]
mod tests {
    use super::PassKind;

    const ALL: [PassKind; 10] = [
        PassKind::FisherTaps,
        PassKind::Loss,
        PassKind::InputJacobian,
        PassKind::HessianGradient,
        PassKind::Synflow,
        PassKind::SynflowBn,
        PassKind::SecondBatchLoss,
        PassKind::ReluKernel,
        PassKind::Zen,
        PassKind::Meco,
    ];

    /// The engine runs kinds in declaration order: what a kind reads (its dependencies, and
    /// the kinds whose result it may reuse) must come first.
    #[test]
    fn dependencies_and_reused_results_come_first() {
        for kind in ALL {
            for dep in kind.deps() {
                assert!(dep < &kind, "{} depends on {}", kind.name(), dep.name());
            }
            for served in kind.also_serves() {
                assert!(&kind < served, "{} reuses {}", served.name(), kind.name());
            }
        }
        let mut names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
