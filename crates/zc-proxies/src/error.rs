//! Errors of the network and proxy layer.

use std::path::PathBuf;

/// Everything that can go wrong while building a network, loading tensors or scoring a cell.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A proxy name that is not in the registry.
    #[error("unknown proxy \"{name}\"; valid proxies: {valid}")]
    UnknownProxy {
        /// The name asked for.
        name: String,
        /// Comma-separated list of the registered names.
        valid: String,
    },
    /// A safetensors file could not be read or parsed.
    #[error("cannot read safetensors file {path}: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A tensor the network needs is absent from a weights file.
    #[error("{path} has no tensor \"{name}\" (needed by the network of {arch})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The reference parameter name.
        name: String,
        /// The architecture string.
        arch: String,
    },
    /// A tensor has the wrong shape or dtype.
    #[error("{path}: tensor \"{name}\" {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Values given for a parameter do not fit it.
    #[error("parameter \"{name}\": {reason}")]
    BadValues {
        /// The parameter's reference name.
        name: String,
        /// What is wrong with the values.
        reason: String,
    },
    /// The minibatch does not fit the network (resolution, channels, labels).
    #[error("minibatch does not fit the network: {0}")]
    BadBatch(String),
    /// A proxy needs more minibatches than were given (e.g. ZiCo's second batch with a single
    /// `--batch` file).
    #[error(
        "minibatch stream {stream} is needed (a proxy uses several minibatches) but only {available} was given"
    )]
    NoSuchBatch {
        /// The stream asked for (0-based).
        stream: usize,
        /// How many were given.
        available: usize,
    },
    /// A proxy read a pass the engine did not run (a registry bug: the proxy must declare it).
    #[error("internal error: pass {0} was not run")]
    PassNotRun(&'static str),
}
