//! `zc score`: every requested proxy for one cell.

use std::path::{Path, PathBuf};

use anyhow::Context;
use zc_benchmark::GroundTruth;
use zc_data::{DataLoad, Dataset, ImageSet, MinibatchSampler};
use zc_proxies::{
    Backend, Engine, FixedBatches, Nb201Network, Precision, SampledBatches, Weights, load_batches,
    pass::PassKind, proxy,
};

/// Arguments of `zc score`.
#[derive(clap::Args)]
pub struct Args {
    /// The cell: architecture string or official index.
    #[arg(long)]
    arch: String,
    /// Dataset: sets the class count and, without --batch, where the minibatch comes from.
    #[arg(long, default_value = "cifar10", value_parser = parse_dataset)]
    dataset: Dataset,
    /// Comma-separated proxies (see `zc proxies`), or `all`.
    #[arg(long, default_value = "all")]
    proxies: String,
    /// Seed of the weight initialisation and of the minibatch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weights in the reference's parameter names (safetensors) instead of a seeded init.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Minibatch (safetensors with `inputs` f32 [N,3,H,W] and `targets` i64 [N], and
    /// `inputs_1`/`targets_1` for proxies that use a second one) instead of batches drawn from
    /// the shipped images. May name the same file as --weights.
    #[arg(long, value_name = "FILE")]
    batch: Option<PathBuf>,
    /// Precision of the minibatch passes: f32 (as the reference) or f64 (exact, ~2x slower).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    precision: Precision,
    /// Print one JSON object mapping each proxy to its value (null for NaN).
    #[arg(long)]
    json: bool,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    zc_experiments::config::parse_precision(s).map_err(|e| e.to_string())
}

fn parse_dataset(s: &str) -> Result<Dataset, String> {
    s.parse().map_err(|e: zc_data::DataError| e.to_string())
}

/// Runs `zc score`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let proxies = proxy::parse_list(&args.proxies)?;
    zc_experiments::config::reject_duplicates("--proxies", proxies.iter().map(|p| p.name()))?;
    let cell =
        super::CellArg::parse(&args.arch)?.resolve(|| Ok(GroundTruth::load_shipped(data_dir)?))?;
    let network = Nb201Network::new(cell, args.dataset.num_classes());
    let weights = match &args.weights {
        Some(path) => Weights::load(&network, path)?,
        None => Weights::init(&network, args.seed),
    };
    let engine = Engine::new(Backend::Flex, args.precision);
    let scores = match &args.batch {
        Some(path) => {
            let batches = load_batches(path)?;
            let mut proxies = proxies;
            if batches.len() < 2 && args.proxies.trim() == "all" {
                // `all` on a one-batch file: leave out what needs a second minibatch, and say so.
                proxies.retain(|p| {
                    let needs_two = p.passes().contains(&PassKind::SecondBatchLoss);
                    if needs_two {
                        eprintln!(
                            "note: {} left out: it needs a second minibatch (inputs_1/targets_1 in {})",
                            p.name(),
                            path.display()
                        );
                    }
                    !needs_two
                });
            }
            engine.score_from(&network, &weights, &FixedBatches(&batches), &proxies)?
        }
        None => {
            let images = ImageSet::read_shipped(data_dir, args.dataset)
                .with_context(|| format!("images of {}", args.dataset.name()))?;
            let sampler =
                MinibatchSampler::new(images, DataLoad::Random { batch_size: 64 }, args.seed)?;
            let data = SampledBatches {
                sampler: &sampler,
                key: u64::from(cell.code()),
            };
            engine.score_from(&network, &weights, &data, &proxies)?
        }
    };
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = scores
            .proxies
            .iter()
            .map(|p| {
                (
                    p.name.to_string(),
                    serde_json::Number::from_f64(p.score.total).into(),
                )
            })
            .collect();
        super::outln!("{}", serde_json::Value::Object(object))?;
        return Ok(());
    }
    super::outln!(
        "arch {cell}  dataset {}  backend {}  precision {}",
        args.dataset.name(),
        engine.backend().name(),
        engine.precision().name()
    )?;
    super::outln!("{:<11} {:>24} {:>9}", "proxy", "value", "seconds")?;
    for p in &scores.proxies {
        super::outln!(
            "{:<11} {:>24} {:>9.3}",
            p.name,
            format!("{:.9e}", p.score.total),
            p.seconds
        )?;
    }
    let passes: Vec<String> = scores
        .passes
        .iter()
        .map(|(k, s)| format!("{} {s:.3}s", k.name()))
        .collect();
    super::outln!(
        "passes: {}  (total {:.3}s)",
        passes.join(", "),
        scores.seconds()
    )?;
    if !scores.non_finite().is_empty() {
        super::outln!("non-finite (NaN): {}", scores.non_finite().join(", "))?;
    }
    Ok(())
}
