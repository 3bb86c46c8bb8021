//! `zc table`: correlation tables from sweep results.

use std::path::{Path, PathBuf};

use zc_benchmark::GroundTruth;
use zc_cli::provenance;
use zc_cli::table::{self, TableOptions};

/// Arguments of `zc table`.
#[derive(clap::Args)]
pub struct Args {
    /// Sweep Parquet files, or directories of them.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Ground truth: a metric name (test, valid_oritest_1seed, val_1seed, valid_12ep, test_12ep)
    /// or `paper` (CIFAR-10: one-seed cifar10-valid test accuracy; others: x-test).
    #[arg(long, default_value = "paper")]
    target: String,
    /// Write OUT.md and OUT.parquet (e.g. results/table1).
    #[arg(long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Bootstrap resamples of the 95% interval.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Print the rows as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
}

/// Runs `zc table`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let gt = GroundTruth::load_shipped(data_dir)?;
    let options = TableOptions {
        target: args.target,
        bootstrap: args.bootstrap,
    };
    let rows = table::compute(&args.results, &gt, data_dir, &options)?;
    let sources: Vec<String> = args
        .results
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let provenance = format!(
        "From {} by zc {} (git {}); sweep provenance (config, seed, revision, backend, timings) is in the sweep files.",
        sources.join(", "),
        provenance::VERSION,
        provenance::git_revision()
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table::markdown(&rows, &provenance));
    }
    if let Some(out) = args.out {
        let (md, pq) = table::write(&rows, &out, &provenance)?;
        eprintln!("wrote {} and {}", md.display(), pq.display());
    }
    Ok(())
}
