//! `zc table`: rank correlations of swept proxies with the ground truth, beside the paper's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use polars::prelude::{Column, DataFrame, DataType};
use serde::Serialize;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_proxies::proxy::REGISTRY;

use crate::stats;
use crate::sweep::{read_dir, read_parquet, row_keys, write_atomic, write_text_atomic};

/// Name of the vote row (the paper's pairwise majority of synflow, jacob_cov and snip).
pub const VOTE: &str = "vote";
/// Name of the vote's mean-rank score row.
pub const VOTE_MEAN_RANK: &str = "vote_mean_rank";
/// Name of the free reduced-training baseline row (12-epoch validation accuracy).
pub const TRAIN_12EP: &str = "train_12ep";

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    /// Dataset name.
    pub dataset: String,
    /// Seed of the sweep rows.
    pub seed: u64,
    /// Proxy (or `vote`, `vote_mean_rank`, `train_12ep`).
    pub proxy: String,
    /// Ground-truth metric.
    pub target: String,
    /// Cells with a finite score.
    pub n: usize,
    /// Cells whose score is NaN (dropped).
    pub nan_count: usize,
    /// Spearman rho (signed); for `vote`, the pairwise agreement.
    pub spearman: f64,
    /// Bootstrap 95% interval of rho.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Spearman over the top 10% cells by ground truth.
    pub top10_spearman: f64,
    /// Kendall tau-b.
    pub kendall: f64,
    /// The paper's value (absolute Spearman; the vote's agreement), where it printed one.
    pub paper: Option<f64>,
}

/// Swept scores of one dataset and seed: cell indices and a column per proxy.
struct Scores {
    indices: Vec<usize>,
    proxies: BTreeMap<String, Vec<f64>>,
}

/// Collects the `.parquet` files named by `inputs` (files, or directories of them).
fn load(inputs: &[PathBuf]) -> anyhow::Result<BTreeMap<(String, u64), Scores>> {
    let mut frames = Vec::new();
    for input in inputs {
        if input.is_dir() {
            frames.extend(read_dir(input)?);
        } else {
            frames.push((input.clone(), read_parquet(input)?));
        }
    }
    if frames.is_empty() {
        bail!(
            "no sweep files (.parquet) in {}",
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let known: Vec<&str> = REGISTRY.iter().map(|p| p.name()).collect();
    let mut out: BTreeMap<(String, u64), Scores> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (path, df) in frames {
        let keys =
            row_keys(&df).with_context(|| format!("{} is not a sweep file", path.display()))?;
        let proxies: Vec<&str> = df
            .get_column_names()
            .into_iter()
            .map(|c| c.as_str())
            .filter(|c| known.contains(c))
            .collect();
        let columns = proxies
            .iter()
            .map(|&p| {
                let col = df.column(p)?.cast(&DataType::Float64)?;
                Ok(col
                    .f64()?
                    .iter()
                    .map(|v| v.unwrap_or(f64::NAN))
                    .collect::<Vec<f64>>())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (row, (dataset, seed, index)) in keys.into_iter().enumerate() {
            if !seen.insert((dataset.clone(), seed, index)) {
                continue;
            }
            let entry = out.entry((dataset, seed)).or_insert_with(|| Scores {
                indices: Vec::new(),
                proxies: BTreeMap::new(),
            });
            let position = entry.indices.len();
            entry.indices.push(index as usize);
            for (name, values) in proxies.iter().zip(&columns) {
                let column = entry.proxies.entry(name.to_string()).or_default();
                column.resize(position, f64::NAN);
                column.push(values[row]);
            }
        }
    }
    for scores in out.values_mut() {
        let n = scores.indices.len();
        for column in scores.proxies.values_mut() {
            column.resize(n, f64::NAN);
        }
    }
    Ok(out)
}

/// The paper's Table 1 (`data/reference/paper_table1_spearman.csv`): (dataset, proxy) -> value.
fn paper_values(data_dir: &Path) -> anyhow::Result<BTreeMap<(String, String), f64>> {
    let path = data_dir.join("reference").join("paper_table1_spearman.csv");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty paper table")?
        .split(',')
        .collect();
    let mut out = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let dataset = match fields[0] {
            "CIFAR10" => "cifar10",
            "CIFAR100" => "cifar100",
            other => other,
        };
        for (name, value) in header.iter().zip(&fields).skip(1) {
            let proxy = if name.starts_with("vote") { VOTE } else { name };
            let value: f64 = value
                .parse()
                .with_context(|| format!("{}: bad number \"{value}\"", path.display()))?;
            out.insert((dataset.to_string(), proxy.to_string()), value);
        }
    }
    Ok(out)
}

/// Options of the table.
pub struct TableOptions {
    /// Ground-truth metric name per dataset (`paper` = the paper's target).
    pub target: String,
    /// Bootstrap resamples for the interval.
    pub bootstrap: usize,
}

/// Computes the table from sweep files.
pub fn compute(
    inputs: &[PathBuf],
    table: &GroundTruth,
    data_dir: &Path,
    options: &TableOptions,
) -> anyhow::Result<Vec<TableRow>> {
    let paper = paper_values(data_dir)?;
    let mut rows = Vec::new();
    for ((dataset_name, seed), scores) in load(inputs)? {
        let dataset: Dataset = dataset_name.parse()?;
        let metric = Metric::parse(&options.target, dataset)?;
        let all_truth = table.accuracies(dataset, metric)?;
        let truth: Vec<f64> = scores.indices.iter().map(|&i| all_truth[i]).collect();
        let row = |proxy: &str, x: &[f64]| {
            let (_, _, nan_count) = stats::finite_pairs(x, &truth);
            let (ci_low, ci_high) = stats::bootstrap_spearman_ci(x, &truth, options.bootstrap, 0);
            TableRow {
                dataset: dataset_name.clone(),
                seed,
                proxy: proxy.to_string(),
                target: metric.name().to_string(),
                n: x.len() - nan_count,
                nan_count,
                spearman: stats::spearman(x, &truth),
                ci_low,
                ci_high,
                top10_spearman: stats::top_fraction_spearman(x, &truth, 0.1),
                kendall: stats::kendall_tau_b(x, &truth),
                paper: paper
                    .get(&(dataset_name.clone(), proxy.to_string()))
                    .copied(),
            }
        };
        // Registry order, then the vote and the free 12-epoch baseline.
        for proxy in REGISTRY {
            if let Some(x) = scores.proxies.get(proxy.name()) {
                rows.push(row(proxy.name(), x));
            }
        }
        let voters = ["synflow", "jacob_cov", "snip"].map(|p| scores.proxies.get(p));
        if let [Some(a), Some(b), Some(c)] = voters {
            let mut vote = row(VOTE_MEAN_RANK, &stats::mean_rank(&[a, b, c]));
            rows.push(vote.clone());
            vote.proxy = VOTE.into();
            // Every pair counts: a NaN score votes "not better" (nan_count says how many cells).
            vote.n = truth.len();
            vote.spearman = stats::vote_accuracy([a, b, c], &truth);
            (vote.ci_low, vote.ci_high, vote.top10_spearman, vote.kendall) =
                (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
            vote.paper = paper
                .get(&(dataset_name.clone(), VOTE.to_string()))
                .copied();
            rows.push(vote);
        }
        let early = table.accuracies(dataset, Metric::Valid12Epochs)?;
        rows.push(row(
            TRAIN_12EP,
            &scores.indices.iter().map(|&i| early[i]).collect::<Vec<_>>(),
        ));
    }
    Ok(rows)
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.3}")
    }
}

/// The table as Markdown, one section per dataset and seed.
pub fn markdown(rows: &[TableRow], provenance: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Zero-cost proxies on NAS-Bench-201: rank correlation with accuracy\n"
    );
    let _ = writeln!(out, "{provenance}\n");
    let _ = writeln!(
        out,
        "Signed Spearman ρ with a bootstrap 95% interval, ρ over the top-10% cells, Kendall τ-b. The paper printed |ρ|; \
         Δ = |ours| − paper. `vote` is the paper's pairwise majority of synflow, jacob_cov and snip (a pairwise \
         agreement, not a correlation); `vote_mean_rank` the mean of their ranks as a score; `train_12ep` the \
         12-epoch validation accuracy (a reduced-training baseline that costs nothing here).\n"
    );
    let mut groups: BTreeMap<(String, u64, String), Vec<&TableRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.dataset.clone(), r.seed, r.target.clone()))
            .or_default()
            .push(r);
    }
    for ((dataset, seed, target), rows) in groups {
        let _ = writeln!(
            out,
            "## {dataset} (seed {seed}, target `{target}`, {} cells)\n",
            rows[0].n + rows[0].nan_count
        );
        let _ = writeln!(
            out,
            "| proxy | n | NaN | Spearman ρ | 95% CI | top-10% ρ | Kendall τ | paper | Δ |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---|---:|---:|---:|---:|");
        for r in rows {
            let paper = r.paper.map_or("".into(), |p| format!("{p:.3}"));
            let diff = r
                .paper
                .map_or("".into(), |p| format!("{:+.3}", r.spearman.abs() - p));
            let ci = if r.ci_low.is_nan() {
                "".into()
            } else {
                format!("[{}, {}]", fmt(r.ci_low), fmt(r.ci_high))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {ci} | {} | {} | {paper} | {diff} |",
                r.proxy,
                r.n,
                r.nan_count,
                fmt(r.spearman),
                fmt(r.top10_spearman),
                fmt(r.kendall)
            );
        }
        let _ = writeln!(out);
    }
    out
}

/// Writes the rows as Parquet (atomically).
pub fn write_parquet(rows: &[TableRow], path: &Path) -> anyhow::Result<()> {
    let n = rows.len();
    let f = |get: fn(&TableRow) -> f64| rows.iter().map(get).collect::<Vec<f64>>();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                "dataset".into(),
                rows.iter().map(|r| r.dataset.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "seed".into(),
                rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
            ),
            Column::new(
                "proxy".into(),
                rows.iter().map(|r| r.proxy.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "target".into(),
                rows.iter().map(|r| r.target.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "n".into(),
                rows.iter().map(|r| r.n as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "nan_count".into(),
                rows.iter().map(|r| r.nan_count as u64).collect::<Vec<_>>(),
            ),
            Column::new("spearman".into(), f(|r| r.spearman)),
            Column::new("ci_low".into(), f(|r| r.ci_low)),
            Column::new("ci_high".into(), f(|r| r.ci_high)),
            Column::new("top10_spearman".into(), f(|r| r.top10_spearman)),
            Column::new("kendall".into(), f(|r| r.kendall)),
            Column::new(
                "paper".into(),
                rows.iter().map(|r| r.paper).collect::<Vec<_>>(),
            ),
        ],
    )?;
    write_atomic(&mut df, path)
}

/// Writes `{out}.md` and `{out}.parquet`.
pub fn write(
    rows: &[TableRow],
    out: &Path,
    provenance: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let md = out.with_extension("md");
    let pq = out.with_extension("parquet");
    write_text_atomic(&md, &markdown(rows, provenance))?;
    write_parquet(rows, &pq)?;
    Ok((md, pq))
}

/// One proxy's swept scores for `dataset` and `seed` from sweep files (or directories of
/// them): (official cell index, score) pairs.
pub fn proxy_column(
    inputs: &[PathBuf],
    dataset: &str,
    seed: u64,
    proxy: &str,
) -> anyhow::Result<Vec<(usize, f64)>> {
    let all = load(inputs)?;
    let scores = all.get(&(dataset.to_string(), seed)).with_context(|| {
        let found: Vec<String> = all.keys().map(|(d, s)| format!("{d} seed {s}")).collect();
        format!(
            "no {dataset} seed {seed} rows in the sweep files (found: {})",
            found.join(", ")
        )
    })?;
    let column = scores.proxies.get(proxy).with_context(|| {
        let found: Vec<&str> = scores.proxies.keys().map(String::as_str).collect();
        format!(
            "the sweep files have no {proxy} column for {dataset} (found: {})",
            found.join(", ")
        )
    })?;
    Ok(scores
        .indices
        .iter()
        .copied()
        .zip(column.iter().copied())
        .collect())
}
