//! Parameter values: PyTorch-default initialisation from a seed, or loading from a safetensors
//! file in the reference's parameter names; and reading a minibatch from safetensors.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};

pub use zc_data::Minibatch;

use super::{Nb201Network, ParamRole};
use crate::ProxyError;

/// Host-side values of every parameter of a network, in [`Nb201Network::params`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    values: Vec<Vec<f32>>,
}

impl Weights {
    /// PyTorch-default initialisation: conv/linear weights and biases uniform in
    /// ±1/sqrt(fan_in), BN gamma 1 and beta 0. Deterministic for (`seed`, cell).
    pub fn init(network: &Nb201Network, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(network.cell().code()) << 32));
        let values = network
            .params()
            .iter()
            .map(|p| match p.role {
                ParamRole::Weight { fan_in } | ParamRole::Bias { fan_in } => {
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    (0..p.numel())
                        .map(|_| rng.random_range(-bound..bound))
                        .collect()
                }
                ParamRole::BnGamma => vec![1.0; p.numel()],
                ParamRole::BnBeta => vec![0.0; p.numel()],
            })
            .collect();
        Self { values }
    }

    /// Zen-NAS's re-initialisation: conv/linear weights standard normal, biases 0, BN gamma 1
    /// and beta 0. Deterministic for `seed`.
    pub fn gaussian(network: &Nb201Network, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = network
            .params()
            .iter()
            .map(|p| match p.role {
                ParamRole::Weight { .. } => standard_normal(&mut rng, p.numel()),
                ParamRole::Bias { .. } | ParamRole::BnBeta => vec![0.0; p.numel()],
                ParamRole::BnGamma => vec![1.0; p.numel()],
            })
            .collect();
        Self { values }
    }

    /// A 64-bit digest of every value (FNV-1a over the bits), to seed draws that must be
    /// deterministic per cell and weight seed.
    pub fn digest(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for v in self.values.iter().flatten() {
            for byte in v.to_bits().to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }

    /// Loads every parameter of `network` by its reference name from a safetensors file
    /// (float32 or float64). Tensors the network does not use are ignored; a missing tensor or a
    /// shape mismatch (e.g. a classifier for another class count) is an error.
    pub fn load(network: &Nb201Network, path: &Path) -> Result<Self, ProxyError> {
        let bytes = read(path)?;
        let file = parse(path, &bytes)?;
        let values = network
            .params()
            .iter()
            .map(|p| {
                let view = file
                    .tensor(&p.name)
                    .map_err(|_| ProxyError::MissingTensor {
                        path: path.into(),
                        name: p.name.clone(),
                        arch: network.cell().to_string(),
                    })?;
                if view.shape() != p.shape.as_slice() {
                    return Err(ProxyError::BadTensor {
                        path: path.into(),
                        name: p.name.clone(),
                        reason: format!(
                            "has shape {:?} but the network needs {:?} ({} classes)",
                            view.shape(),
                            p.shape,
                            network.num_classes()
                        ),
                    });
                }
                floats(path, &p.name, view.dtype(), view.data())
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { values })
    }

    /// Values from `value(index, spec)` for every parameter of `network` in order (e.g. an
    /// initialisation another implementation can reproduce, or trained values). A wrong length
    /// is an error naming the parameter.
    pub fn from_fn(
        network: &Nb201Network,
        mut value: impl FnMut(usize, &super::ParamSpec) -> Vec<f32>,
    ) -> Result<Self, ProxyError> {
        let values = network
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = value(i, p);
                if v.len() == p.numel() {
                    Ok(v)
                } else {
                    Err(ProxyError::BadValues {
                        name: p.name.clone(),
                        reason: format!("{} values for a tensor of {}", v.len(), p.numel()),
                    })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { values })
    }

    /// Values of parameter `index` (row-major, PyTorch layout).
    pub fn get(&self, index: usize) -> &[f32] {
        &self.values[index]
    }
}

/// Reads the minibatches of a safetensors file: stream 0 from `inputs` (float32 or float64
/// `[N,3,H,W]`, square) and `targets` (int64 `[N]`), as the parity fixtures hold them, and
/// streams 1, 2, ... from `inputs_1`/`targets_1`, ... while the file has them (for proxies that
/// use several minibatches). Other tensors are ignored.
pub fn load_batches(path: &Path) -> Result<Vec<Minibatch>, ProxyError> {
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let mut batches = Vec::new();
    loop {
        let suffix = match batches.len() {
            0 => String::new(),
            k => format!("_{k}"),
        };
        let (inputs_name, targets_name) = (format!("inputs{suffix}"), format!("targets{suffix}"));
        if !batches.is_empty() && file.tensor(&inputs_name).is_err() {
            return Ok(batches);
        }
        let get = |name: &str| {
            file.tensor(name).map_err(|_| ProxyError::BadTensor {
                path: path.into(),
                name: name.into(),
                reason: format!(
                    "is missing (a batch file needs `{inputs_name}` and `{targets_name}`)"
                ),
            })
        };
        let inputs = get(&inputs_name)?;
        let targets = get(&targets_name)?;
        let bad = |name: &str, reason: String| ProxyError::BadTensor {
            path: path.into(),
            name: name.into(),
            reason,
        };
        let shape = inputs.shape();
        if shape.len() != 4 || shape[1] != 3 || shape[2] != shape[3] {
            return Err(bad(
                &inputs_name,
                format!("has shape {shape:?}, expected [N, 3, H, H]"),
            ));
        }
        if targets.shape() != [shape[0]] || targets.dtype() != Dtype::I64 {
            return Err(bad(&targets_name, format!("must be int64 [{}]", shape[0])));
        }
        let labels = targets
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("chunks of 8 bytes")))
            .collect();
        batches.push(Minibatch {
            images: floats(path, &inputs_name, inputs.dtype(), inputs.data())?,
            labels,
            batch_size: shape[0],
            resolution: shape[2],
        });
    }
}

/// `n` standard normal values (Box-Muller).
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, ProxyError> {
    std::fs::read(path).map_err(|e| ProxyError::Safetensors {
        path: path.into(),
        reason: e.to_string(),
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ProxyError> {
    SafeTensors::deserialize(bytes).map_err(|e| ProxyError::Safetensors {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Little-endian float32 or float64 bytes as f32 values.
fn floats(path: &Path, name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, ProxyError> {
    match dtype {
        Dtype::F32 => Ok(data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect()),
        Dtype::F64 => Ok(data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect()),
        other => Err(ProxyError::BadTensor {
            path: path.into(),
            name: name.into(),
            reason: format!("has dtype {other:?}, expected float32 or float64"),
        }),
    }
}
