//! `zc sweep`: run an experiment config into Parquet.

use std::path::{Path, PathBuf};

use zc_experiments::sweep::{self, Shard};

/// Arguments of `zc sweep`.
#[derive(clap::Args)]
pub struct Args {
    /// Experiment config (YAML), e.g. experiments/table1.yaml.
    config: PathBuf,
    /// Take part K of N of the cells (deterministic), e.g. 2/4, to split a sweep over machines.
    #[arg(long, default_value = "1/1")]
    shard: Shard,
    /// Score all 15,625 cells instead of the config's selection.
    #[arg(long)]
    all_cells: bool,
    /// Output directory instead of the config's.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Cells scored at once (default: the config's, else one per core).
    #[arg(long)]
    workers: Option<usize>,
}

/// Runs `zc sweep`.
pub fn run(data_dir: &Path, project: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let (table, mut experiment) =
        super::load_experiment(data_dir, project, &args.config, args.all_cells, args.output)?;
    if let Some(workers) = args.workers {
        experiment.set_workers(workers);
    }
    super::outln!(
        "sweep {}: {} cells x {} datasets x {} seeds, shard {}/{}, {} proxies, backend {} ({}) -> {}",
        experiment.name,
        experiment.cells.len(),
        experiment.datasets.len(),
        experiment.seeds.len(),
        args.shard.index,
        args.shard.count,
        experiment.proxies.len(),
        experiment.backend.name(),
        experiment.precision.name(),
        experiment.output.display()
    )?;
    let summary = sweep::run(&experiment, &table, data_dir, args.shard)?;
    super::outln!(
        "ran {} jobs (cell x dataset x seed) in {:.0}s ({:.2}s per job), {} already done",
        summary.scored,
        summary.seconds,
        summary.seconds / summary.scored.max(1) as f64,
        summary.skipped
    )?;
    let nans: Vec<String> = summary
        .nan_counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    if !nans.is_empty() {
        super::outln!("NaN scores: {}", nans.join(", "))?;
    }
    for file in summary.files {
        super::outln!("wrote {}", file.display())?;
    }
    Ok(())
}
