//! `zc train`: reduced training (EcoNAS and its variants) of the cells of a training config.

use std::path::{Path, PathBuf};

use zc_experiments::sweep::Shard;
use zc_experiments::training::{self, DataSpec, TrainExperiment};

/// Arguments of `zc train`.
#[derive(clap::Args)]
pub struct Args {
    /// Training config (YAML), e.g. experiments/econas.yaml.
    config: PathBuf,
    /// Take part K of N of the cells (deterministic), e.g. 2/4, to split the runs over machines.
    #[arg(long, default_value = "1/1")]
    shard: Shard,
    /// Train on the official CIFAR-10 binary files in DIR (data_batch_1.bin .. data_batch_5.bin,
    /// test_batch.bin: the paper's 50,000 / 10,000 images) instead of the config's data.
    #[arg(long, value_name = "DIR")]
    official: Option<PathBuf>,
    /// Train all 15,625 cells instead of the config's selection.
    #[arg(long)]
    all_cells: bool,
    /// Output directory instead of the config's.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Runs trained at once, one per core (default: the config's, else one per core).
    #[arg(long)]
    workers: Option<usize>,
}

/// Runs `zc train`.
pub fn run(data_dir: &Path, project: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let table = zc_benchmark::GroundTruth::load_shipped(data_dir)?;
    let mut experiment = TrainExperiment::load(&args.config, &table)?;
    experiment.output = super::in_project(project, &experiment.output);
    if let DataSpec::Official(dir) = &experiment.data {
        experiment.data = DataSpec::Official(super::in_project(project, dir));
    }
    if let Some(dir) = args.official {
        experiment.set_official(dir);
    }
    if args.all_cells {
        experiment.select_all_cells(&table);
    }
    if let Some(output) = args.output {
        experiment.set_output(output);
    }
    if let Some(workers) = args.workers {
        experiment.set_workers(workers);
    }
    let settings: Vec<String> = experiment.settings.iter().map(|s| s.to_string()).collect();
    super::outln!(
        "train {}: {} cells x {} settings ({}) x {} seeds, {} epochs of batch {}, shard {}/{}, {} -> {}",
        experiment.name,
        experiment.cells.len(),
        settings.len(),
        settings.join(", "),
        experiment.seeds.len(),
        experiment.recipe.epochs,
        experiment.recipe.batch_size,
        args.shard.index,
        args.shard.count,
        experiment.precision.name(),
        experiment.output.display()
    )?;
    let data = training::load_data(&experiment, data_dir)?;
    super::outln!("data: {}", data.description())?;
    let summary = training::run(&experiment, &table, &data, args.shard)?;
    super::outln!(
        "trained {} runs (cell x setting x seed) in {:.0}s ({:.1}s per run), {} already done",
        summary.trained,
        summary.seconds,
        summary.seconds / summary.trained.max(1) as f64,
        summary.skipped
    )?;
    for file in summary.files {
        super::outln!("wrote {}", file.display())?;
    }
    Ok(())
}
