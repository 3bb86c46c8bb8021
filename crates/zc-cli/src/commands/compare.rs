//! `zc compare`: a proxy against the baselines, with statistics.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zc_benchmark::GroundTruth;
use zc_data::Dataset;
use zc_experiments::compare::{self, CompareOptions, External};
use zc_experiments::{figure, provenance, store};

/// Arguments of `zc compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Sweep Parquet files or directories (`zc sweep` output); may be empty with --external.
    results: Vec<PathBuf>,
    /// External scores: a CSV or Parquet file with a cell column (index, nb201_index, arch or
    /// arch_str) and score columns (repeatable).
    #[arg(long, value_name = "FILE")]
    external: Vec<PathBuf>,
    /// Dataset of external files without a `dataset` column.
    #[arg(long, value_parser = parse_dataset)]
    dataset: Option<Dataset>,
    /// Score columns to read from the external files (default: every numeric one).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    columns: Vec<String>,
    /// Prefix of the external scores' names (e.g. `nbsz_`, to tell them from our columns).
    #[arg(long, default_value = "")]
    prefix: String,
    /// The proxies under test (default: the external scores, else every non-baseline score).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    new: Vec<String>,
    /// Baselines (default: synflow, jacob_cov, vote_mean_rank, params, train_12ep where present).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    baselines: Vec<String>,
    /// Ground truth: a metric name, or `paper` (the paper's target per dataset).
    #[arg(long, default_value = "paper")]
    target: String,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// k of the top-k hit rate.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Write STEM.md, STEM.parquet (per score), STEM_pairs.parquet and a figure per section
    /// (STEM_DATASET_seedS.png/.svg).
    #[arg(long, value_name = "STEM")]
    out: Option<PathBuf>,
    /// Print the statistics as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

fn parse_dataset(s: &str) -> Result<Dataset, String> {
    s.parse().map_err(|e: zc_data::DataError| e.to_string())
}

/// Runs `zc compare`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    if args.results.is_empty() && args.external.is_empty() {
        bail!("give sweep results, --external files, or both");
    }
    if args.bootstrap < 100 {
        bail!("--bootstrap must be at least 100 for a 95% interval");
    }
    let truth = GroundTruth::load_shipped(data_dir)?;
    let externals: Vec<External> = args
        .external
        .iter()
        .map(|path| External {
            path: path.clone(),
            dataset: args.dataset,
            columns: args.columns.clone(),
            prefix: args.prefix.clone(),
        })
        .collect();
    let (scores, external_names) = compare::gather(&args.results, &externals, &truth)?;
    let new = if args.new.is_empty() {
        external_names.into_iter().collect()
    } else {
        args.new
    };
    let options = CompareOptions {
        new,
        baselines: args.baselines,
        target: args.target,
        bootstrap: args.bootstrap,
        top_k: args.top_k,
        seed: 0,
    };
    let comparison = compare::compare(&scores, &truth, &options)?;
    for skipped in &comparison.skipped {
        eprintln!("note: not compared: {skipped}");
    }
    let inputs: Vec<String> = args
        .results
        .iter()
        .chain(&args.external)
        .map(|p| p.display().to_string())
        .collect();
    let provenance_line = format!(
        "From {} by zc {} (`--target {}`).",
        inputs.join(", "),
        provenance::VERSION,
        options.target
    );
    let markdown = compare::markdown(&comparison, &provenance_line);
    if args.json {
        super::outln!("{}", serde_json::to_string_pretty(&comparison)?)?;
    } else {
        use std::io::Write as _;
        write!(std::io::stdout().lock(), "{markdown}")?;
    }
    if let Some(out) = args.out {
        let with = |suffix: &str| {
            let mut name = out.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        store::write_text_atomic(&with(".md"), &markdown)?;
        let (mut proxies, mut pairs) = compare::frames(&comparison)?;
        store::write_atomic(&mut proxies, &with(".parquet"))?;
        store::write_atomic(&mut pairs, &with("_pairs.parquet"))?;
        for section in &comparison.sections {
            let title = format!(
                "NAS-Bench-201 {} (seed {}): {} common cells, target {}",
                section.dataset, section.seed, section.common, section.target
            );
            figure::draw_comparison(
                section,
                &title,
                &with(&format!("_{}_seed{}", section.dataset, section.seed)),
            )?;
        }
        eprintln!(
            "wrote {}.md, .parquet, _pairs.parquet and the figures",
            out.display()
        );
    }
    Ok(())
}
