//! `zc search`: NAS runs with and without zero-cost help, their curves, table and figure.

use std::path::{Path, PathBuf};

use zc_benchmark::GroundTruth;
use zc_experiments::{figure, search};

/// Arguments of `zc search`.
#[derive(clap::Args)]
pub struct Args {
    /// Search config (YAML), e.g. experiments/figure3.yaml.
    config: PathBuf,
    /// Seeded runs per variant instead of the config's.
    #[arg(long)]
    runs: Option<usize>,
    /// Output directory instead of the config's.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// Runs `zc search`.
pub fn run(data_dir: &Path, project: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let table = GroundTruth::load_shipped(data_dir)?;
    let mut experiment = search::SearchExperiment::load(&args.config, &table)?;
    // Relative paths of the config are relative to the project directory.
    experiment.config.output = super::in_project(project, &experiment.config.output);
    for sweep in &mut experiment.config.proxy.sweep {
        *sweep = super::in_project(project, sweep);
    }
    if let Some(runs) = args.runs {
        anyhow::ensure!(runs > 0, "--runs must be at least 1");
        experiment.config.runs = runs;
    }
    if let Some(output) = args.output {
        experiment.config.output = output;
    }
    let (curves, outputs) = search::run(&experiment, &table, data_dir)?;
    let c = &experiment.config;
    let stem = c.output.join(&c.name);
    let title = format!(
        "NAS-Bench-201 {}: mean best {} accuracy over {} runs (band: 95% CI), proxy {}",
        experiment.dataset.name(),
        experiment.report,
        c.runs,
        c.proxy.name
    );
    let y_label = format!("best {} accuracy (%)", experiment.report);
    figure::draw(&curves, &c.targets, &title, &y_label, &stem)?;
    {
        use std::io::Write as _;
        write!(
            std::io::stdout().lock(),
            "{}",
            std::fs::read_to_string(&outputs.table)?
        )?;
    }
    eprintln!(
        "wrote {}, {}, {}, {}, {}.png and {}.svg",
        outputs.steps.display(),
        outputs.curves.display(),
        outputs.table.display(),
        outputs.manifest.display(),
        stem.display(),
        stem.display()
    );
    Ok(())
}
