//! `zc compare`: is a proxy really better than the baselines?
//!
//! Scores come from sweep files (any proxy column, plus `vote_mean_rank` where synflow,
//! jacob_cov and snip are there), the free baselines (`params`, `flops` from the cell,
//! `train_12ep` from the benchmark), and external files (CSV or Parquet with a cell column and
//! score columns), so a proxy written anywhere can be compared without Rust.
//!
//! Every statistic of a (dataset, seed) section is computed on the **common cells**: those where
//! every compared score and the ground truth are finite, so the proxies are compared on exactly
//! the same cells. Intervals are percentile bootstraps over cells; a pair's difference of
//! correlations takes both correlations from the same resample (a paired bootstrap), and its
//! p-value is the two-sided bootstrap p of "no difference".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use polars::prelude::{Column, DataFrame, DataType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_space::Cell;

use crate::store;
use crate::{stats, table};

/// The mean rank of synflow, jacob_cov and snip: the paper's vote as a score.
pub const VOTE: &str = table::VOTE_MEAN_RANK;
/// The 12-epoch validation accuracy (a reduced-training baseline that costs nothing here).
pub const TRAIN_12EP: &str = table::TRAIN_12EP;
/// The default baselines, those available are used.
pub const DEFAULT_BASELINES: [&str; 5] = ["synflow", "jacob_cov", VOTE, "params", TRAIN_12EP];

/// Every section's scores, keyed by (dataset name, seed).
pub type Sections = BTreeMap<(String, u64), Scores>;

/// Scores of one (dataset, seed): per score name, cell index -> value.
#[derive(Debug, Default)]
pub struct Scores {
    /// Per score name, official cell index -> value.
    pub columns: BTreeMap<String, BTreeMap<usize, f64>>,
}

/// An external score file: a CSV or Parquet file with a cell column (`index`, `nb201_index`,
/// `arch` or `arch_str`: an official index or an architecture string), optionally a `dataset`
/// column, and score columns.
#[derive(Debug, Clone)]
pub struct External {
    /// The file.
    pub path: PathBuf,
    /// The dataset of rows without a `dataset` column.
    pub dataset: Option<Dataset>,
    /// The score columns to read (default: every numeric column but the cell, dataset and seed).
    pub columns: Vec<String>,
    /// Prefix for the score names (to tell `synflow` from another implementation's).
    pub prefix: String,
}

const CELL_COLUMNS: [&str; 4] = ["index", "nb201_index", "arch", "arch_str"];
const NON_SCORES: [&str; 6] = [
    "index",
    "nb201_index",
    "arch",
    "arch_str",
    "dataset",
    "seed",
];

/// Reads an external file into a frame (CSV through the csv crate, Parquet through polars).
fn read_external_frame(path: &Path) -> anyhow::Result<DataFrame> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        return store::read_parquet(path);
    }
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read {} as CSV", path.display()))?;
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), line + 1))?;
        if record.len() != headers.len() {
            bail!(
                "{}: row {} has {} fields, the header {}",
                path.display(),
                line + 1,
                record.len(),
                headers.len()
            );
        }
        for (column, field) in cells.iter_mut().zip(record.iter()) {
            column.push(field.to_string());
        }
    }
    let n = cells.first().map_or(0, Vec::len);
    let columns = headers
        .iter()
        .zip(cells)
        .map(|(name, values)| {
            // A column whose every field parses as a number is numeric (empty = missing).
            let numbers: Option<Vec<Option<f64>>> = values
                .iter()
                .map(|v| match v.trim() {
                    "" => Some(None),
                    t => t.parse::<f64>().ok().map(Some),
                })
                .collect();
            match numbers {
                Some(numbers) => Column::new(name.as_str().into(), numbers),
                None => Column::new(name.as_str().into(), values),
            }
        })
        .collect();
    Ok(DataFrame::new(n, columns)?)
}

/// Reads an external score file: (dataset name, score name) -> cell index -> value.
pub fn read_external(
    external: &External,
    truth: &GroundTruth,
) -> anyhow::Result<BTreeMap<(String, String), BTreeMap<usize, f64>>> {
    let path = &external.path;
    let df = read_external_frame(path)?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let cell_column = CELL_COLUMNS
        .iter()
        .find(|c| names.iter().any(|n| n == *c))
        .with_context(|| {
            format!(
                "{} has no cell column (one of {})",
                path.display(),
                CELL_COLUMNS.join(", ")
            )
        })?;
    let cells: Vec<usize> = {
        let column = df.column(cell_column)?;
        if column.dtype().is_primitive_numeric() {
            let values = store::f64_column(&df, cell_column)?;
            values
                .iter()
                .enumerate()
                .map(|(row, &v)| {
                    if v.fract() == 0.0 && v >= 0.0 && (v as usize) < Cell::COUNT {
                        Ok(v as usize)
                    } else {
                        bail!(
                            "{} row {}: {cell_column} {v} is not an official index (0 to 15624)",
                            path.display(),
                            row + 1
                        )
                    }
                })
                .collect::<anyhow::Result<_>>()?
        } else {
            let text = column.cast(&DataType::String)?;
            text.str()?
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let v = v.unwrap_or("");
                    let cell: Cell = v.parse().with_context(|| {
                        format!("{} row {}: {cell_column}", path.display(), row + 1)
                    })?;
                    Ok(truth.index_of(cell))
                })
                .collect::<anyhow::Result<_>>()?
        }
    };
    let datasets: Vec<String> = if names.iter().any(|n| n == "dataset") {
        let column = df.column("dataset")?.cast(&DataType::String)?;
        column
            .str()?
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let d: Dataset = v
                    .unwrap_or("")
                    .parse()
                    .with_context(|| format!("{} row {}: dataset", path.display(), row + 1))?;
                Ok(d.name().to_string())
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        let dataset = external.dataset.with_context(|| {
            format!(
                "{} has no `dataset` column: give the dataset of its scores with --dataset",
                path.display()
            )
        })?;
        vec![dataset.name().to_string(); df.height()]
    };
    let score_columns: Vec<String> = if external.columns.is_empty() {
        names
            .iter()
            .filter(|n| !NON_SCORES.contains(&n.as_str()))
            .filter(|n| df.column(n).is_ok_and(|c| c.dtype().is_primitive_numeric()))
            .cloned()
            .collect()
    } else {
        for c in &external.columns {
            if !names.contains(c) {
                bail!(
                    "{} has no column `{c}` (columns: {})",
                    path.display(),
                    names.join(", ")
                );
            }
        }
        external.columns.clone()
    };
    if score_columns.is_empty() {
        bail!("{} has no numeric score column", path.display());
    }
    let mut out: BTreeMap<(String, String), BTreeMap<usize, f64>> = BTreeMap::new();
    for name in &score_columns {
        let values = store::f64_column(&df, name)
            .with_context(|| format!("{}: column `{name}` is not numeric", path.display()))?;
        for ((&cell, dataset), value) in cells.iter().zip(&datasets).zip(values) {
            let column = out
                .entry((dataset.clone(), format!("{}{name}", external.prefix)))
                .or_default();
            if let Some(old) = column.insert(cell, value)
                && !(old == value || (old.is_nan() && value.is_nan()))
            {
                bail!(
                    "{}: cell {cell} has two different `{name}` values for {dataset}",
                    path.display()
                );
            }
        }
    }
    Ok(out)
}

/// Every score of every (dataset, seed): the sweeps' proxy columns and vote, the external
/// files' columns (for every seed of their dataset; seed 0 when no sweep has the dataset), and
/// the free baselines over the cells that have any other score. Also returns the names of the
/// external scores.
pub fn gather(
    sweeps: &[PathBuf],
    externals: &[External],
    truth: &GroundTruth,
) -> anyhow::Result<(Sections, BTreeSet<String>)> {
    let mut out = Sections::new();
    let mut external_names = BTreeSet::new();
    if !sweeps.is_empty() {
        for ((dataset, seed), group) in table::load(sweeps)?.groups {
            let scores = out.entry((dataset, seed)).or_default();
            for name in group.proxies.keys() {
                let pairs = group.pairs(name).unwrap_or_default();
                scores
                    .columns
                    .insert(name.clone(), pairs.into_iter().collect());
            }
            let voters = ["synflow", "jacob_cov", "snip"].map(|p| scores.columns.get(p));
            if let [Some(a), Some(b), Some(c)] = voters {
                let cells: Vec<usize> = a
                    .keys()
                    .filter(|i| b.contains_key(i) && c.contains_key(i))
                    .copied()
                    .collect();
                let column = |m: &BTreeMap<usize, f64>| cells.iter().map(|i| m[i]).collect();
                let (x, y, z): (Vec<f64>, Vec<f64>, Vec<f64>) = (column(a), column(b), column(c));
                let vote = stats::mean_rank(&[&x, &y, &z]);
                scores
                    .columns
                    .insert(VOTE.into(), cells.into_iter().zip(vote).collect());
            }
        }
    }
    for external in externals {
        for ((dataset, name), column) in read_external(external, truth)? {
            external_names.insert(name.clone());
            let mut seeds: Vec<u64> = out
                .keys()
                .filter(|(d, _)| *d == dataset)
                .map(|(_, s)| *s)
                .collect();
            if seeds.is_empty() {
                seeds.push(0);
            }
            for seed in seeds {
                let scores = out.entry((dataset.clone(), seed)).or_default();
                if scores.columns.contains_key(&name) {
                    bail!(
                        "{}: score `{name}` for {dataset} is given twice (a sweep column or \
                         another file has it); rename it with --prefix",
                        external.path.display()
                    );
                }
                scores.columns.insert(name.clone(), column.clone());
            }
        }
    }
    for ((dataset, _), scores) in out.iter_mut() {
        let dataset: Dataset = dataset.parse()?;
        let cells: BTreeSet<usize> = scores
            .columns
            .values()
            .flat_map(|c| c.keys().copied())
            .collect();
        let early = truth.accuracies(dataset, Metric::Valid12Epochs)?;
        let classes = dataset.num_classes();
        let free = |name: &str| -> Vec<f64> {
            cells
                .iter()
                .map(|&i| {
                    let cell = truth.cells()[i];
                    match name {
                        "params" => cell.param_count(classes) as f64,
                        "flops" => cell.flops(classes, dataset.resolution()) as f64,
                        _ => early[i],
                    }
                })
                .collect()
        };
        for name in ["params", "flops", TRAIN_12EP] {
            if !scores.columns.contains_key(name) {
                let column = cells.iter().copied().zip(free(name)).collect();
                scores.columns.insert(name.to_string(), column);
            }
        }
    }
    Ok((out, external_names))
}

/// Options of a comparison.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The proxies under test (default: the external scores, else every score that is not a
    /// baseline).
    pub new: Vec<String>,
    /// The baselines (default: those of [`DEFAULT_BASELINES`] that are available).
    pub baselines: Vec<String>,
    /// Ground-truth metric (`paper` = the paper's target per dataset).
    pub target: String,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// k of the top-k hit rate.
    pub top_k: usize,
    /// Seed of the resamples.
    pub seed: u64,
}

/// One score's statistics on a section's common cells.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyStats {
    /// Dataset.
    pub dataset: String,
    /// Seed of the sweep rows.
    pub seed: u64,
    /// Score name.
    pub proxy: String,
    /// `new` or `baseline`.
    pub role: String,
    /// Common cells.
    pub n: usize,
    /// Spearman rho.
    pub spearman: f64,
    /// Bootstrap 95% interval of rho.
    pub spearman_ci: (f64, f64),
    /// Kendall tau-b.
    pub kendall: f64,
    /// Bootstrap 95% interval of tau.
    pub kendall_ci: (f64, f64),
    /// Fraction of the truly best 10% of cells that the score ranks in its best 10%.
    pub top10_hit: f64,
    /// Fraction of the score's k best cells that are among the k truly best.
    pub topk_hit: f64,
}

/// A new proxy against a baseline on the same cells.
#[derive(Debug, Clone, Serialize)]
pub struct PairStats {
    /// Dataset.
    pub dataset: String,
    /// Seed.
    pub seed: u64,
    /// The proxy under test.
    pub new: String,
    /// The baseline.
    pub baseline: String,
    /// rho(new) - rho(baseline).
    pub delta_spearman: f64,
    /// Paired-bootstrap 95% interval of the difference.
    pub delta_ci: (f64, f64),
    /// Two-sided paired-bootstrap p-value of "no difference" (at least 1/(resamples+1)).
    pub p_value: f64,
}

/// A section: one dataset and seed.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Dataset.
    pub dataset: String,
    /// Seed.
    pub seed: u64,
    /// Ground-truth metric.
    pub target: String,
    /// Common cells.
    pub common: usize,
    /// Cells with any score (before keeping the common ones).
    pub cells: usize,
    /// Per score, its cells without a finite value (why cells are not common).
    pub dropped: BTreeMap<String, usize>,
    /// Per score.
    pub proxies: Vec<ProxyStats>,
    /// Per (new, baseline).
    pub pairs: Vec<PairStats>,
    /// (score ranks, truth ranks) on the common cells, for the scatter plots, per score.
    #[serde(skip)]
    pub ranks: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
}

/// The comparison of every section.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Sections in (dataset, seed) order.
    pub sections: Vec<Section>,
    /// Sections left out because they have none of the proxies under test, with the reason.
    pub skipped: Vec<String>,
    /// Resamples of the bootstrap.
    pub bootstrap: usize,
    /// k of the top-k hit rate.
    pub top_k: usize,
}

fn percentile_ci(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at =
        |q: f64| finite[((q * (finite.len() - 1) as f64).round() as usize).min(finite.len() - 1)];
    (at(0.025), at(0.975))
}

/// Indices of the `k` largest values (ties by position).
fn top(values: &[f64], k: usize) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.into_iter().take(k).collect()
}

/// Fraction of `truth`'s `k` best that `x` also puts in its `k` best.
fn hit_rate(x: &[f64], truth: &[f64], k: usize) -> f64 {
    let k = k.min(x.len());
    if k == 0 {
        return f64::NAN;
    }
    top(x, k).intersection(&top(truth, k)).count() as f64 / k as f64
}

/// Compares the scores of every section that has the proxies under test.
pub fn compare(
    scores: &Sections,
    truth: &GroundTruth,
    options: &CompareOptions,
) -> anyhow::Result<Comparison> {
    let mut sections = Vec::new();
    let mut skipped = Vec::new();
    for ((dataset_name, seed), section) in scores {
        let dataset: Dataset = dataset_name.parse()?;
        let metric = Metric::parse(&options.target, dataset)?;
        let accuracy = truth.accuracies(dataset, metric)?;
        let available: Vec<&String> = section.columns.keys().collect();
        let baselines: Vec<String> = if options.baselines.is_empty() {
            DEFAULT_BASELINES
                .iter()
                .filter(|b| section.columns.contains_key(**b))
                .map(|b| b.to_string())
                .collect()
        } else {
            options.baselines.clone()
        };
        let new: Vec<String> = if options.new.is_empty() {
            available
                .iter()
                .filter(|n| !baselines.contains(n))
                .map(|n| n.to_string())
                .collect()
        } else {
            options.new.clone()
        };
        if !options.new.is_empty() && !new.iter().any(|n| section.columns.contains_key(n)) {
            skipped.push(format!(
                "{dataset_name} seed {seed}: none of {} is scored there",
                new.join(", ")
            ));
            continue;
        }
        let names: Vec<String> = new.iter().chain(&baselines).cloned().collect();
        crate::config::reject_duplicates("compared scores (--new and --baselines)", names.iter())?;
        for name in &names {
            if !section.columns.contains_key(name) {
                bail!(
                    "{dataset_name} seed {seed}: no score `{name}` (available: {})",
                    available
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if new.is_empty() {
            bail!(
                "{dataset_name} seed {seed}: no proxy to test besides the baselines; name one with --new"
            );
        }
        let all_cells: BTreeSet<usize> = names
            .iter()
            .flat_map(|n| section.columns[n].keys().copied())
            .collect();
        let finite =
            |name: &str, i: usize| section.columns[name].get(&i).is_some_and(|v| v.is_finite());
        let common: Vec<usize> = all_cells
            .iter()
            .copied()
            .filter(|&i| accuracy[i].is_finite() && names.iter().all(|n| finite(n, i)))
            .collect();
        let dropped = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    all_cells.iter().filter(|&&i| !finite(n, i)).count(),
                )
            })
            .filter(|(_, d)| *d > 0)
            .collect();
        if common.len() < 3 {
            bail!(
                "{dataset_name} seed {seed}: only {} cells have every score ({}); a comparison needs at least 3",
                common.len(),
                names.join(", ")
            );
        }
        let y: Vec<f64> = common.iter().map(|&i| accuracy[i]).collect();
        let x: Vec<Vec<f64>> = names
            .iter()
            .map(|n| common.iter().map(|i| section.columns[n][i]).collect())
            .collect();
        // The bootstrap: the same resampled cells for every score.
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let mut rho_samples = vec![Vec::with_capacity(options.bootstrap); names.len()];
        let mut tau_samples = vec![Vec::with_capacity(options.bootstrap); names.len()];
        for _ in 0..options.bootstrap {
            let picks: Vec<usize> = (0..common.len())
                .map(|_| rng.random_range(0..common.len()))
                .collect();
            let ry: Vec<f64> = picks.iter().map(|&i| y[i]).collect();
            for (k, column) in x.iter().enumerate() {
                let rx: Vec<f64> = picks.iter().map(|&i| column[i]).collect();
                rho_samples[k].push(stats::spearman(&rx, &ry));
                tau_samples[k].push(stats::kendall_tau_b(&rx, &ry));
            }
        }
        let rho: Vec<f64> = x.iter().map(|c| stats::spearman(c, &y)).collect();
        let proxies = names
            .iter()
            .enumerate()
            .map(|(k, name)| ProxyStats {
                dataset: dataset_name.clone(),
                seed: *seed,
                proxy: name.clone(),
                role: if k < new.len() { "new" } else { "baseline" }.into(),
                n: common.len(),
                spearman: rho[k],
                spearman_ci: percentile_ci(&mut rho_samples[k].clone()),
                kendall: stats::kendall_tau_b(&x[k], &y),
                kendall_ci: percentile_ci(&mut tau_samples[k].clone()),
                top10_hit: hit_rate(&x[k], &y, (common.len() as f64 * 0.1).round() as usize),
                topk_hit: hit_rate(&x[k], &y, options.top_k),
            })
            .collect();
        let mut pairs = Vec::new();
        for (a, new_name) in new.iter().enumerate() {
            for (offset, base_name) in baselines.iter().enumerate() {
                let b = new.len() + offset;
                let mut deltas: Vec<f64> = rho_samples[a]
                    .iter()
                    .zip(&rho_samples[b])
                    .map(|(p, q)| p - q)
                    .filter(|d| d.is_finite())
                    .collect();
                let below = deltas.iter().filter(|d| **d <= 0.0).count();
                let above = deltas.iter().filter(|d| **d >= 0.0).count();
                let resamples = deltas.len();
                let p_value = ((2 * below.min(above) + 1) as f64 / (resamples + 1) as f64).min(1.0);
                pairs.push(PairStats {
                    dataset: dataset_name.clone(),
                    seed: *seed,
                    new: new_name.clone(),
                    baseline: base_name.clone(),
                    delta_spearman: rho[a] - rho[b],
                    delta_ci: percentile_ci(&mut deltas),
                    p_value,
                });
            }
        }
        let truth_ranks = stats::average_ranks(&y);
        let ranks = names
            .iter()
            .zip(&x)
            .map(|(n, c)| (n.clone(), (stats::average_ranks(c), truth_ranks.clone())))
            .collect();
        sections.push(Section {
            dataset: dataset_name.clone(),
            seed: *seed,
            target: metric.name().to_string(),
            common: common.len(),
            cells: all_cells.len(),
            dropped,
            proxies,
            pairs,
            ranks,
        });
    }
    if sections.is_empty() {
        bail!(
            "nothing to compare: {}",
            if skipped.is_empty() {
                "no scores".to_string()
            } else {
                skipped.join("; ")
            }
        );
    }
    Ok(Comparison {
        sections,
        skipped,
        bootstrap: options.bootstrap,
        top_k: options.top_k,
    })
}

/// A value with three decimals, a dash for NaN.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.3}")
    }
}

fn ci((low, high): (f64, f64)) -> String {
    format!("[{}, {}]", num(low), num(high))
}

/// The comparison as Markdown.
pub fn markdown(comparison: &Comparison, provenance: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Is the proxy better than the baselines?\n\n{provenance}\n"
    );
    let _ = writeln!(
        out,
        "Every statistic of a section is computed on its common cells (every score and the ground \
         truth finite). 95% intervals: percentile bootstrap over cells ({} resamples); Δρ takes \
         both correlations from the same resample, p is its two-sided bootstrap p-value. Top-10%: \
         the share of the truly best 10% of cells that the score ranks in its best 10%; top-{k}: \
         the share of its {k} best cells among the {k} truly best.\n",
        comparison.bootstrap,
        k = comparison.top_k
    );
    for s in &comparison.sections {
        let _ = writeln!(
            out,
            "## {} (seed {}, target `{}`): {} cells have every score (of {} with any)\n",
            s.dataset, s.seed, s.target, s.common, s.cells
        );
        if !s.dropped.is_empty() {
            let dropped: Vec<String> = s.dropped.iter().map(|(n, d)| format!("{n} {d}")).collect();
            let _ = writeln!(
                out,
                "Cells without a finite score: {}.\n",
                dropped.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "| proxy | role | Spearman ρ | 95% CI | Kendall τ | 95% CI | top-10% hit | top-{} hit |",
            comparison.top_k
        );
        let _ = writeln!(out, "|---|---|---:|---|---:|---|---:|---:|");
        for p in &s.proxies {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                p.proxy,
                p.role,
                num(p.spearman),
                ci(p.spearman_ci),
                num(p.kendall),
                ci(p.kendall_ci),
                num(p.top10_hit),
                num(p.topk_hit)
            );
        }
        let _ = writeln!(out, "\n| proxy | vs baseline | Δρ | 95% CI | p |");
        let _ = writeln!(out, "|---|---|---:|---|---:|");
        for p in &s.pairs {
            let _ = writeln!(
                out,
                "| {} | {} | {:+.3} | {} | {:.3} |",
                p.new,
                p.baseline,
                p.delta_spearman,
                ci(p.delta_ci),
                p.p_value
            );
        }
        let _ = writeln!(out);
    }
    for skipped in &comparison.skipped {
        let _ = writeln!(out, "Not compared: {skipped}.");
    }
    out
}

/// The statistics as two frames: one row per (section, score) and one per (section, pair).
pub fn frames(comparison: &Comparison) -> anyhow::Result<(DataFrame, DataFrame)> {
    let p: Vec<&ProxyStats> = comparison
        .sections
        .iter()
        .flat_map(|s| &s.proxies)
        .collect();
    let f = |get: fn(&ProxyStats) -> f64| p.iter().map(|r| get(r)).collect::<Vec<f64>>();
    let proxies = DataFrame::new(
        p.len(),
        vec![
            Column::new(
                "dataset".into(),
                p.iter().map(|r| r.dataset.clone()).collect::<Vec<_>>(),
            ),
            Column::new("seed".into(), p.iter().map(|r| r.seed).collect::<Vec<_>>()),
            Column::new(
                "proxy".into(),
                p.iter().map(|r| r.proxy.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                p.iter().map(|r| r.role.clone()).collect::<Vec<_>>(),
            ),
            Column::new("n".into(), p.iter().map(|r| r.n as u64).collect::<Vec<_>>()),
            Column::new("spearman".into(), f(|r| r.spearman)),
            Column::new("spearman_ci_low".into(), f(|r| r.spearman_ci.0)),
            Column::new("spearman_ci_high".into(), f(|r| r.spearman_ci.1)),
            Column::new("kendall".into(), f(|r| r.kendall)),
            Column::new("kendall_ci_low".into(), f(|r| r.kendall_ci.0)),
            Column::new("kendall_ci_high".into(), f(|r| r.kendall_ci.1)),
            Column::new("top10_hit".into(), f(|r| r.top10_hit)),
            Column::new("topk_hit".into(), f(|r| r.topk_hit)),
        ],
    )?;
    let q: Vec<&PairStats> = comparison.sections.iter().flat_map(|s| &s.pairs).collect();
    let g = |get: fn(&PairStats) -> f64| q.iter().map(|r| get(r)).collect::<Vec<f64>>();
    let pairs = DataFrame::new(
        q.len(),
        vec![
            Column::new(
                "dataset".into(),
                q.iter().map(|r| r.dataset.clone()).collect::<Vec<_>>(),
            ),
            Column::new("seed".into(), q.iter().map(|r| r.seed).collect::<Vec<_>>()),
            Column::new(
                "new".into(),
                q.iter().map(|r| r.new.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "baseline".into(),
                q.iter().map(|r| r.baseline.clone()).collect::<Vec<_>>(),
            ),
            Column::new("delta_spearman".into(), g(|r| r.delta_spearman)),
            Column::new("delta_ci_low".into(), g(|r| r.delta_ci.0)),
            Column::new("delta_ci_high".into(), g(|r| r.delta_ci.1)),
            Column::new("p_value".into(), g(|r| r.p_value)),
        ],
    )?;
    Ok((proxies, pairs))
}
