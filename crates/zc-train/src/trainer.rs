//! One training run of one NB201 network: burn's SGD and cosine schedule on the functional
//! forward of `zc_proxies`, with the BatchNorm running statistics the reference's eval mode uses.

use std::time::Instant;

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Module, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use zc_data::Minibatch;
use zc_proxies::Nb201Network;
use zc_proxies::network::forward::{ForwardConfig, NormMode, NormStats, cross_entropy, forward};
use zc_proxies::pass::{inputs, one_hot};
use zc_proxies::{Precision, Weights};

use crate::{Recipe, TrainData, TrainError};

/// PyTorch's BatchNorm momentum: `running = (1 - m) * running + m * batch`.
const NORM_MOMENTUM: f64 = 0.1;

/// Every learnable tensor of the network, flattened, in [`Nb201Network::params`] order: the
/// module burn's optimiser updates.
#[derive(Module, Debug)]
struct Parameters {
    tensors: Vec<Param<Tensor<1>>>,
}

/// Test-set metrics after an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy over the test images.
    pub loss: f64,
    /// Fraction of test images classified correctly (0 to 1).
    pub accuracy: f64,
}

/// What one epoch of [`Training::run`] reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch number, 1-based (0: the untrained network).
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (NaN at epoch 0; the reference logs the last
    /// step's instead).
    pub train_loss: f64,
    /// Test metrics.
    pub test: Evaluation,
    /// Seconds the epoch's training steps took (evaluation excluded).
    pub train_seconds: f64,
    /// Seconds the evaluation took.
    pub eval_seconds: f64,
}

/// A network being trained: parameters on an autodiff device, burn's SGD state and the
/// affine BatchNorms' running statistics.
pub struct Training<'a> {
    net: &'a Nb201Network,
    device: Device,
    params: Parameters,
    optimizer: ModuleOptimizer,
    running: Vec<NormStats>,
    recipe: Recipe,
    dtype: DType,
}

impl<'a> Training<'a> {
    /// Starts training `net` from `weights` with `recipe` on burn's flex CPU backend, in
    /// `precision` (float32 as the reference runs; float64 for exact checks).
    pub fn new(
        net: &'a Nb201Network,
        weights: &Weights,
        recipe: Recipe,
        precision: Precision,
    ) -> Self {
        let device = Device::flex().autodiff();
        let dtype = precision.dtype();
        let tensors = net
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let data = TensorData::new(weights.get(i).to_vec(), [p.numel()]);
                Param::from_tensor(Tensor::<1>::from_data(data, (&device, dtype)))
            })
            .collect();
        let optimizer = SgdConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(recipe.weight_decay as f32)))
            .with_momentum(Some(MomentumConfig {
                momentum: recipe.momentum,
                dampening: 0.0,
                nesterov: true,
            }))
            .init();
        let inner = device.clone().inner();
        let running = affine_channels(net)
            .into_iter()
            .map(|c| NormStats {
                mean: Tensor::zeros([c], (&inner, dtype)),
                var: Tensor::ones([c], (&inner, dtype)),
            })
            .collect();
        Training {
            net,
            device,
            params: Parameters { tensors },
            optimizer,
            running,
            recipe,
            dtype,
        }
    }

    /// The cosine schedule of the recipe: one learning rate per epoch, as the reference steps
    /// its `CosineAnnealingLR` after every epoch.
    pub fn schedule(&self) -> Result<ModuleLrScheduler, TrainError> {
        CosineAnnealingLrSchedulerConfig::new(self.recipe.learning_rate, self.recipe.epochs)
            .with_min_lr(0.0)
            .init()
            .map_err(TrainError::BadRecipe)
    }

    /// One SGD step on `batch` at learning rate `lr` (train-mode BatchNorm, running statistics
    /// updated); returns the step's loss.
    pub fn step(&mut self, batch: &Minibatch, lr: f64) -> f64 {
        let values: Vec<Tensor<1>> = self.params.tensors.iter().map(Param::val).collect();
        let config = ForwardConfig {
            record_norm_stats: true,
            skip_dead_nodes: true,
            ..ForwardConfig::new(NormMode::All)
        };
        let x = inputs(batch, &self.device, self.dtype);
        let out = forward(self.net, &values, x, config);
        let one_hot = one_hot(batch, self.net.num_classes(), &self.device, self.dtype);
        let loss = cross_entropy(out.logits, one_hot);
        let loss_value = host(loss.clone())[0];
        let grads = GradientsParams::from_grads(loss.backward(), &self.params);
        let params = std::mem::replace(
            &mut self.params,
            Parameters {
                tensors: Vec::new(),
            },
        );
        self.params = self.optimizer.step(lr, params, grads);
        for (running, batch_stats) in self.running.iter_mut().zip(out.norm_stats) {
            let keep = 1.0 - NORM_MOMENTUM;
            running.mean = running.mean.clone().mul_scalar(keep)
                + batch_stats.mean.inner().mul_scalar(NORM_MOMENTUM);
            running.var = running.var.clone().mul_scalar(keep)
                + batch_stats.var.inner().mul_scalar(NORM_MOMENTUM);
        }
        loss_value
    }

    /// Eval-mode logits of `batch` (`[N * classes]`, row-major): running statistics in the
    /// affine BatchNorms, batch statistics in the cells' (which track none in the reference).
    pub fn logits(&self, batch: &Minibatch) -> Vec<f64> {
        let inner = self.device.clone().inner();
        let values: Vec<Tensor<1>> = self
            .params
            .tensors
            .iter()
            .map(|p| p.val().inner())
            .collect();
        let config = ForwardConfig {
            running_stats: Some(&self.running),
            ..ForwardConfig::new(NormMode::All)
        };
        let out = forward(self.net, &values, inputs(batch, &inner, self.dtype), config);
        host(out.logits.reshape([-1]))
    }

    /// Mean cross-entropy and accuracy over `batches` in eval mode; both NaN when a logit is
    /// not finite (a diverged network has no meaningful prediction).
    pub fn evaluate(&self, batches: &[Minibatch]) -> Evaluation {
        let classes = self.net.num_classes();
        let (mut loss, mut correct, mut count) = (0.0, 0usize, 0usize);
        for batch in batches {
            let logits = self.logits(batch);
            if logits.iter().any(|v| !v.is_finite()) {
                return Evaluation {
                    loss: f64::NAN,
                    accuracy: f64::NAN,
                };
            }
            for (row, &label) in logits.chunks_exact(classes).zip(&batch.labels) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
                loss += log_sum - row[label as usize];
                let best = row
                    .iter()
                    .enumerate()
                    .fold(0, |best, (i, &v)| if v > row[best] { i } else { best });
                correct += usize::from(best == label as usize);
                count += 1;
            }
        }
        Evaluation {
            loss: loss / count as f64,
            accuracy: correct as f64 / count as f64,
        }
    }

    /// The current parameter values on the host, in [`Nb201Network::params`] order.
    pub fn parameters(&self) -> Vec<Vec<f64>> {
        self.params.tensors.iter().map(|p| host(p.val())).collect()
    }

    /// Running (mean, variance) of every affine BatchNorm in forward order (stem, the
    /// reductions' conv_a and conv_b, the head).
    pub fn running_stats(&self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.running
            .iter()
            .map(|s| (host(s.mean.clone()), host(s.var.clone())))
            .collect()
    }

    /// The whole recipe on `data`: epoch 0 (the untrained network) is evaluated first, then
    /// every epoch trains on `data.epoch_batches(seed, epoch)` and is evaluated; `on_epoch` sees
    /// each report and may stop the run early by returning `false`. A diverged run goes on, as
    /// the reference's does: its losses and accuracies are reported as NaN.
    pub fn run(
        &mut self,
        data: &TrainData,
        resolution: usize,
        seed: u64,
        mut on_epoch: impl FnMut(&EpochReport) -> bool,
    ) -> Result<(), TrainError> {
        let test = data.test_batches(self.recipe.batch_size, resolution);
        let started = Instant::now();
        let untrained = self.evaluate(&test);
        let report = EpochReport {
            epoch: 0,
            train_loss: f64::NAN,
            test: untrained,
            train_seconds: 0.0,
            eval_seconds: started.elapsed().as_secs_f64(),
        };
        if !on_epoch(&report) {
            return Ok(());
        }
        let mut schedule = self.schedule()?;
        for epoch in 1..=self.recipe.epochs {
            let lr = schedule.step().base();
            let started = Instant::now();
            let batches = data.epoch_batches(seed, epoch, self.recipe.batch_size, resolution);
            let mut loss_sum = 0.0;
            for batch in &batches {
                loss_sum += self.step(batch, lr);
            }
            let train_loss = loss_sum / batches.len() as f64;
            let train_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let test = self.evaluate(&test);
            let report = EpochReport {
                epoch,
                train_loss,
                test,
                train_seconds,
                eval_seconds: started.elapsed().as_secs_f64(),
            };
            if !on_epoch(&report) {
                break;
            }
        }
        Ok(())
    }
}

/// Channels of every affine BatchNorm, in forward order.
fn affine_channels(net: &Nb201Network) -> Vec<usize> {
    // Affine BatchNorms are the parameters named `*.weight` with role BnGamma.
    net.params()
        .iter()
        .filter(|p| matches!(p.role, zc_proxies::network::ParamRole::BnGamma))
        .map(|p| p.numel())
        .collect()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float tensor data")
}
