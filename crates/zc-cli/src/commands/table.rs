//! `zc table`: correlation tables from sweep results.

use std::path::{Path, PathBuf};

use zc_benchmark::GroundTruth;
use zc_experiments::provenance;
use zc_experiments::table::{self, TableOptions, TrainingRead};

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
    /// Also write the table to OUT.md and OUT.parquet (OUT is a file stem, e.g. results/table1;
    /// not a directory, and not inside a sweep directory).
    #[arg(long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Bootstrap resamples of the 95% interval.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Print the rows as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Training results of `zc train` (a directory or files) to add as rows beside the
    /// proxies; every row of their dataset then covers only the trained cells.
    #[arg(long, value_name = "DIR")]
    train: Vec<PathBuf>,
    /// The training rows: econas (r8c4 at epoch 20), econas+ (r16c8 at epoch 15) or
    /// SETTING@EPOCH, comma-separated. Default: econas and econas+ where trained, and each
    /// setting's last epoch.
    #[arg(long, value_delimiter = ',', value_name = "READS")]
    train_rows: Vec<TrainingRead>,
}

/// Runs `zc table`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let gt = GroundTruth::load_shipped(data_dir)?;
    let options = TableOptions {
        target: args.target,
        bootstrap: args.bootstrap,
        train: args.train.clone(),
        train_reads: args.train_rows,
    };
    let table = table::compute(&args.results, &gt, data_dir, &options)?;
    for note in &table.notes {
        eprintln!("note: {note}");
    }
    let sources: Vec<String> = args
        .results
        .iter()
        .chain(&args.train)
        .map(|p| p.display().to_string())
        .collect();
    // Only what the inputs determine, so an unchanged table is rewritten byte for byte: the
    // revisions that matter are the sweep rows', listed per section.
    let provenance = format!(
        "From {} by zc {} (`--target {}`, {} bootstrap resamples); each row's config, seed, \
         settings, revision and timings are in the sweep and training files.",
        sources.join(", "),
        provenance::VERSION,
        options.target,
        options.bootstrap
    );
    if args.json {
        super::outln!("{}", serde_json::to_string_pretty(&table)?)?;
    } else {
        use std::io::Write as _;
        write!(
            std::io::stdout().lock(),
            "{}",
            table::markdown(&table, &provenance)
        )?;
    }
    if let Some(out) = args.out {
        let (md, pq) = table::write(&table, &out, &provenance)?;
        eprintln!("wrote {} and {}", md.display(), pq.display());
    }
    Ok(())
}
