//! The forward/backward passes behind the proxies. Each kind runs at most once per cell and
//! every proxy that needs it reads its result. Results come back to the host as float64.

use burn::tensor::{DType, Device, Gradients, Tensor, TensorData};

use crate::network::forward::{
    ForwardConfig, NormMode, cross_entropy, cross_entropy_tangent, forward,
};
use crate::network::{Minibatch, Nb201Network, Weights};

/// The kinds of pass a proxy can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PassKind {
    /// Forward + backward of the cross-entropy loss on the minibatch (BN on): dL/dtheta.
    Loss,
    /// The [`PassKind::Loss`] pass with fisher taps: dL/dA at every conv/linear output.
    FisherTaps,
    /// Hessian-vector product H g with g from the loss pass (needs [`PassKind::Loss`]).
    HessianGradient,
    /// Gradient of the sum of logits w.r.t. the input images (jacob_cov).
    InputJacobian,
    /// synflow: |theta| in float64, one all-ones image, BN only in the reduction blocks.
    Synflow,
    /// synflow with every BN kept.
    SynflowBn,
}

impl PassKind {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PassKind::Loss => "loss",
            PassKind::FisherTaps => "fisher_taps",
            PassKind::HessianGradient => "hessian_gradient",
            PassKind::InputJacobian => "input_jacobian",
            PassKind::Synflow => "synflow",
            PassKind::SynflowBn => "synflow_bn",
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

/// Result of the loss pass.
#[derive(Debug, Clone)]
pub struct LossGradients {
    /// dL/dW per weight layer (flattened, [`Nb201Network::layers`] order).
    pub grads: Vec<Vec<f64>>,
    /// Per layer: sum over output channels k of `0.5 * mean_n (sum_hw A*G)^2`; present when
    /// the pass ran with fisher taps.
    pub fisher_channel_sums: Option<Vec<f64>>,
}

/// Result of a synflow pass.
#[derive(Debug, Clone)]
pub struct SynflowGradients {
    /// |W| per weight layer.
    pub abs_weights: Vec<Vec<f64>>,
    /// dR/d|W| per weight layer, R = sum of logits.
    pub grads: Vec<Vec<f64>>,
}

/// Input Jacobian rows: one row of `3*H*W` values per image.
#[derive(Debug, Clone)]
pub struct InputJacobian {
    /// Row-major `[rows, cols]`.
    pub values: Vec<f64>,
    /// Images in the batch.
    pub rows: usize,
    /// Values per image.
    pub cols: usize,
}

/// Builds device tensors from host weights: every parameter as a flat tensor in `dtype`;
/// weights of conv/linear layers become gradient leaves when `track_weights`.
fn device_params(
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

fn inputs(batch: &Minibatch, device: &Device, dtype: DType) -> Tensor<4> {
    let shape = [batch.batch_size, 3, batch.resolution, batch.resolution];
    Tensor::from_data(
        TensorData::new(batch.images.clone(), shape),
        (device, dtype),
    )
}

fn one_hot(batch: &Minibatch, classes: usize, device: &Device, dtype: DType) -> Tensor<2> {
    let mut values = vec![0.0f32; batch.batch_size * classes];
    for (row, &label) in batch.labels.iter().enumerate() {
        values[row * classes + label as usize] = 1.0;
    }
    Tensor::from_data(
        TensorData::new(values, [batch.batch_size, classes]),
        (device, dtype),
    )
}

fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float tensor data")
}

/// Gradient of each layer's weight leaf on the host, zeros where the layer got none.
fn layer_grads(net: &Nb201Network, params: &[Tensor<1>], grads: &Gradients) -> Vec<Vec<f64>> {
    net.layers()
        .iter()
        .map(|layer| {
            let leaf = &params[layer.weight];
            leaf.grad(grads)
                .map_or_else(|| vec![0.0; leaf.dims()[0]], to_host)
        })
        .collect()
}

/// Forward + backward of the loss; with `fisher`, also the per-layer fisher channel sums.
pub fn loss_gradients(
    net: &Nb201Network,
    weights: &Weights,
    batch: &Minibatch,
    device: &Device,
    precision: Precision,
    fisher: bool,
) -> LossGradients {
    let dtype = precision.dtype();
    let params = device_params(net, weights, device, dtype, false, true);
    let config = ForwardConfig {
        norms: NormMode::All,
        fisher_taps: fisher,
        direction: None,
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let loss = cross_entropy(out.logits, one_hot(batch, net.num_classes(), device, dtype));
    let grads = loss.backward();
    let fisher_channel_sums = fisher.then(|| {
        let mut sums = vec![0.0; net.layers().len()];
        for tap in &out.taps {
            let Some(g) = tap.leaf.grad(&grads) else {
                continue;
            };
            let a = tap.activation.clone().inner();
            let [n, c, _, _] = a.dims();
            // s_nk = sum over space of A*G; F_k = 0.5 * mean_n s_nk^2.
            let s = (a * g).sum_dims(&[2, 3]).reshape([n, c]);
            let f = s.square().mean_dim(0).mul_scalar(0.5).abs();
            sums[tap.layer] += to_host(f).iter().sum::<f64>();
        }
        sums
    });
    LossGradients {
        grads: layer_grads(net, &params, &grads),
        fisher_channel_sums,
    }
}

/// Hessian-vector product `H g` over the conv/linear weights, by back-propagating the forward-mode
/// tangent of the loss along `direction` (the loss gradient, held constant).
pub fn hessian_gradient(
    net: &Nb201Network,
    weights: &Weights,
    batch: &Minibatch,
    device: &Device,
    precision: Precision,
    direction: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let dtype = precision.dtype();
    let params = device_params(net, weights, device, dtype, false, true);
    let direction: Vec<Tensor<1>> = direction
        .iter()
        .map(|d| Tensor::from_data(TensorData::new(d.clone(), [d.len()]), (device, dtype)))
        .collect();
    let config = ForwardConfig {
        norms: NormMode::All,
        fisher_taps: false,
        direction: Some(&direction),
    };
    let out = forward(net, &params, inputs(batch, device, dtype), config);
    let tangent = out.tangent.expect("a direction yields a tangent");
    let one_hot = one_hot(batch, net.num_classes(), device, dtype);
    let grads = cross_entropy_tangent(out.logits, tangent, one_hot).backward();
    layer_grads(net, &params, &grads)
}

/// d(sum of logits)/d(input), BN on: one row per image.
pub fn input_jacobian(
    net: &Nb201Network,
    weights: &Weights,
    batch: &Minibatch,
    device: &Device,
    precision: Precision,
) -> InputJacobian {
    let dtype = precision.dtype();
    let params = device_params(net, weights, device, dtype, false, false);
    let x = inputs(batch, device, dtype).require_grad();
    let config = ForwardConfig {
        norms: NormMode::All,
        fisher_taps: false,
        direction: None,
    };
    let total = forward(net, &params, x.clone(), config).logits.sum();
    let rows = batch.batch_size;
    let cols = 3 * batch.resolution * batch.resolution;
    // When no path of active ops joins input and output, the logits do not depend on the input:
    // the Jacobian is zero (and jacob_cov NaN).
    let gradient = total
        .is_tracked()
        .then(|| total.backward())
        .and_then(|grads| x.grad(&grads));
    InputJacobian {
        values: gradient.map_or_else(|| vec![0.0; rows * cols], to_host),
        rows,
        cols,
    }
}

/// synflow's pass: |theta| in float64, R = sum of logits of one all-ones image, backward.
pub fn synflow_gradients(
    net: &Nb201Network,
    weights: &Weights,
    resolution: usize,
    device: &Device,
    norms: NormMode,
) -> SynflowGradients {
    let params = device_params(net, weights, device, DType::F64, true, true);
    let x = Tensor::<4>::ones([1, 3, resolution, resolution], (device, DType::F64));
    let out = forward(
        net,
        &params,
        x,
        ForwardConfig {
            norms,
            fisher_taps: false,
            direction: None,
        },
    );
    let grads = out.logits.sum().backward();
    let abs_weights = net
        .layers()
        .iter()
        .map(|l| to_host(params[l.weight].clone().inner()))
        .collect();
    SynflowGradients {
        abs_weights,
        grads: layer_grads(net, &params, &grads),
    }
}
