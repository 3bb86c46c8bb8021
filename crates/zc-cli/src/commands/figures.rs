//! `zc figures`: the paper's Figures 1 and 2 from training results and proxy sweeps.

use std::path::{Path, PathBuf};

use zc_benchmark::GroundTruth;
use zc_experiments::{econas, provenance};

/// Arguments of `zc figures`.
#[derive(clap::Args)]
pub struct Args {
    /// Training results of `zc train` (a directory or files), e.g. results/econas.
    #[arg(long, required = true, value_name = "DIR")]
    train: Vec<PathBuf>,
    /// Proxy sweeps (directories or files), e.g. results/table1-1000.
    #[arg(long, required = true, value_name = "DIR")]
    sweep: Vec<PathBuf>,
    /// Output stem: writes OUT-figure1.{png,svg}, OUT-figure2.{png,svg} and OUT.md.
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
}

/// Runs `zc figures`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let table = GroundTruth::load_shipped(data_dir)?;
    let sources: Vec<String> = args
        .train
        .iter()
        .chain(&args.sweep)
        .map(|p| p.display().to_string())
        .collect();
    let provenance = format!(
        "From {} by zc {}; each row's config, seed, settings, revision and timings are in those files.",
        sources.join(", "),
        provenance::VERSION
    );
    let figures = econas::figures(
        &args.train,
        &args.sweep,
        &table,
        data_dir,
        &args.out,
        &provenance,
    )?;
    for note in &figures.table.notes {
        eprintln!("note: {note}");
    }
    for c in &figures.curves {
        let last = c.points.last();
        super::outln!(
            "{}: {} cells, rho {} after epoch {}",
            c.setting,
            c.cells,
            last.map_or("-".into(), |p| format!("{:.3}", p.1)),
            last.map_or(0, |p| p.0)
        )?;
    }
    for file in figures.files {
        super::outln!("wrote {}", file.display())?;
    }
    Ok(())
}
