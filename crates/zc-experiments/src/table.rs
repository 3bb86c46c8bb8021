//! `zc table`: rank correlations of swept proxies with the ground truth, beside the paper's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use polars::prelude::{Column, DataFrame};
use serde::Serialize;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_proxies::proxy::REGISTRY;

use crate::stats;
use crate::store::{self, Settings, column};
use crate::training::{self, TrainRuns};

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
    /// Cells whose score is NaN (dropped; for `vote`, cells with a NaN voter, kept).
    pub nan_count: usize,
    /// Cells of the section whose rows lack this proxy (not counted in `n`).
    pub missing: usize,
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
    /// Cost per cell in baseline training minibatches, the paper's Figure 2 unit (196 per
    /// epoch of the real network): a proxy 1, the vote 3, `train_12ep` 12 epochs, a training
    /// read its epochs times its FLOPs relative to the real network's.
    pub cost_minibatches: f64,
    /// Measured seconds per cell, where the inputs record them (training reads: the epochs'
    /// training and evaluation).
    pub seconds_per_cell: Option<f64>,
}

/// Baseline training minibatches per epoch (the paper's Figure 2: 50,000 images, batch 256).
pub const MINIBATCHES_PER_EPOCH: f64 = 196.0;

/// A training row of the table: a reduced setting read after an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRead {
    /// Row name (`econas`, `econas+`, `r8c8_e40`).
    pub name: String,
    /// Setting, e.g. `r8c4`.
    pub setting: String,
    /// Epoch read.
    pub epoch: usize,
}

impl std::str::FromStr for TrainingRead {
    type Err = anyhow::Error;

    /// `econas` (r8c4 at epoch 20), `econas+` (r16c8 at epoch 15) or `rRcC@E`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let read = |name: &str, setting: &str, epoch| TrainingRead {
            name: name.into(),
            setting: setting.into(),
            epoch,
        };
        match s {
            "econas" => Ok(read("econas", "r8c4", 20)),
            "econas+" => Ok(read("econas+", "r16c8", 15)),
            _ => {
                let parsed = s.split_once('@').and_then(|(setting, epoch)| {
                    let setting: zc_train::Setting = setting.parse().ok()?;
                    Some((setting.to_string(), epoch.parse::<usize>().ok()?))
                });
                match parsed {
                    Some((setting, epoch)) => {
                        Ok(read(&format!("{setting}_e{epoch}"), &setting, epoch))
                    }
                    None => bail!(
                        "\"{s}\" is not a training read: write econas, econas+ or SETTING@EPOCH \
                         (e.g. r8c8@40)"
                    ),
                }
            }
        }
    }
}

/// Swept scores of one dataset and seed, all computed with one [`Settings`].
#[derive(Debug)]
pub struct SweptColumns {
    /// The settings of every row.
    pub settings: Settings,
    /// Official indices of the cells, in reading order.
    pub indices: Vec<usize>,
    /// Per proxy, its score for each cell of `indices` (`None`: the cell's row lacks the proxy).
    pub proxies: BTreeMap<String, Vec<Option<f64>>>,
    /// The `git_revision`s of the rows.
    pub revisions: BTreeSet<String>,
}

impl SweptColumns {
    /// The same columns over the cells in `keep` only.
    fn restricted(&self, keep: &BTreeSet<usize>) -> SweptColumns {
        let rows: Vec<usize> = (0..self.indices.len())
            .filter(|&r| keep.contains(&self.indices[r]))
            .collect();
        SweptColumns {
            settings: self.settings.clone(),
            indices: rows.iter().map(|&r| self.indices[r]).collect(),
            proxies: self
                .proxies
                .iter()
                .map(|(name, column)| (name.clone(), rows.iter().map(|&r| column[r]).collect()))
                .collect(),
            revisions: self.revisions.clone(),
        }
    }

    /// The proxy's (official index, score) pairs over the cells that have it.
    pub fn pairs(&self, proxy: &str) -> Option<Vec<(usize, f64)>> {
        let column = self.proxies.get(proxy)?;
        Some(
            self.indices
                .iter()
                .zip(column)
                .filter_map(|(&i, v)| Some((i, (*v)?)))
                .collect(),
        )
    }
}

/// Sweep rows read from files, grouped by (dataset, seed).
#[derive(Debug)]
pub struct Swept {
    /// The groups.
    pub groups: BTreeMap<(String, u64), SweptColumns>,
    /// What was combined and how, for the reader of a table (duplicates, partial proxies).
    pub notes: Vec<String>,
}

/// Reads the sweep files named by `inputs` (files, or directories of them) into one table per
/// (dataset, seed).
///
/// - Rows of one (dataset, seed) computed with different [`Settings`] are an error naming the
///   settings and the files: a table never mixes settings.
/// - A row present in several files is counted once if the copies agree on every proxy (NaN
///   equals NaN); copies that disagree are an error naming the cell, the proxy and both files.
/// - A proxy that only some rows have is kept for those rows; a note says how many cells lack
///   it (its statistics cover only the cells that have it).
pub fn load(inputs: &[PathBuf]) -> anyhow::Result<Swept> {
    let mut frames = Vec::new();
    for input in inputs {
        if input.is_dir() {
            frames.extend(store::read_dir(input)?);
        } else {
            frames.push((input.clone(), store::read_parquet(input)?));
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
    let mut groups: BTreeMap<(String, u64), SweptColumns> = BTreeMap::new();
    // Where each row was first read, and its position in its group.
    let mut first: HashMap<store::RowKey, (PathBuf, usize)> = HashMap::new();
    let mut settings_source: BTreeMap<(String, u64), PathBuf> = BTreeMap::new();
    let mut duplicates = 0usize;
    for (path, df) in frames {
        let identities = store::row_identities(&df, &path)?;
        let proxies = store::proxy_columns(&df);
        let columns = proxies
            .iter()
            .map(|p| store::f64_column(&df, p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let revisions = df.column(column::GIT_REVISION)?.str()?.clone();
        for (row, (key, settings)) in identities.into_iter().enumerate() {
            let (dataset, seed, index) = key.clone();
            let group = groups
                .entry((dataset.clone(), seed))
                .or_insert_with(|| SweptColumns {
                    settings: settings.clone(),
                    indices: Vec::new(),
                    proxies: BTreeMap::new(),
                    revisions: BTreeSet::new(),
                });
            let source = settings_source
                .entry((dataset.clone(), seed))
                .or_insert_with(|| path.clone());
            if group.settings != settings {
                bail!(
                    "{dataset} rows with different settings: {} in {}, {} in {}; a table never \
                     mixes settings: give inputs computed with one set of settings",
                    group.settings,
                    source.display(),
                    settings,
                    path.display()
                );
            }
            if let Some(revision) = revisions.get(row) {
                group.revisions.insert(revision.to_string());
            }
            let position = match first.get(&key) {
                Some((earlier, position)) => {
                    duplicates += 1;
                    for (name, values) in proxies.iter().zip(&columns) {
                        let new = values[row];
                        if let Some(Some(old)) = group.proxies.get(name).map(|c| c[*position]) {
                            let agree = old == new || (old.is_nan() && new.is_nan());
                            if !agree {
                                bail!(
                                    "conflicting rows for {dataset} seed {seed} cell {index}: \
                                     {name} is {old} in {} but {new} in {}; remove one of them",
                                    earlier.display(),
                                    path.display()
                                );
                            }
                        }
                    }
                    *position
                }
                None => {
                    first.insert(key, (path.clone(), group.indices.len()));
                    group.indices.push(index as usize);
                    for column in group.proxies.values_mut() {
                        column.push(None);
                    }
                    group.indices.len() - 1
                }
            };
            for (name, values) in proxies.iter().zip(&columns) {
                let n = group.indices.len();
                let column = group
                    .proxies
                    .entry(name.clone())
                    .or_insert_with(|| vec![None; n]);
                column[position] = Some(values[row]);
            }
        }
    }
    let mut notes = Vec::new();
    if duplicates > 0 {
        notes.push(format!(
            "{duplicates} rows were read more than once (overlapping files); the copies agree and \
             each cell counts once"
        ));
    }
    for ((dataset, seed), group) in &groups {
        for (name, column) in &group.proxies {
            let missing = column.iter().filter(|v| v.is_none()).count();
            if missing > 0 {
                notes.push(format!(
                    "{dataset} seed {seed}: {name} is missing for {missing} of {} cells (some \
                     files lack it); its statistics cover the {} cells that have it",
                    column.len(),
                    column.len() - missing
                ));
            }
        }
    }
    Ok(Swept { groups, notes })
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
    /// Training results (files or directories from `zc train`) to add as rows; every section
    /// of their dataset is then restricted to the trained cells.
    pub train: Vec<PathBuf>,
    /// The training rows; empty: econas and econas+ where trained, and each setting's last
    /// epoch.
    pub train_reads: Vec<TrainingRead>,
}

impl Default for TableOptions {
    /// The paper's targets, 1,000 bootstrap resamples, no training rows.
    fn default() -> Self {
        TableOptions {
            target: "paper".into(),
            bootstrap: 1000,
            train: Vec::new(),
            train_reads: Vec::new(),
        }
    }
}

/// A computed table: its rows, the settings and revisions of each (dataset, seed) section, and
/// notes on how the inputs were combined.
#[derive(Debug, Serialize)]
pub struct Table {
    /// The lines of the table.
    pub rows: Vec<TableRow>,
    /// Per `dataset/seed`: the settings of its sweep rows and their git revisions.
    pub sections: BTreeMap<String, (Settings, BTreeSet<String>)>,
    /// How inputs were combined (duplicates, proxies some rows lack, the vote's n).
    pub notes: Vec<String>,
}

/// Computes the table from sweep files.
pub fn compute(
    inputs: &[PathBuf],
    table: &GroundTruth,
    data_dir: &Path,
    options: &TableOptions,
) -> anyhow::Result<Table> {
    let trained = if options.train.is_empty() {
        None
    } else {
        Some(training::read_runs(&options.train)?)
    };
    compute_with_runs(inputs, table, data_dir, options, trained.as_ref())
}

/// [`compute`] with the training rows of `options.train` already read (`None`: no training
/// rows), for callers that use them otherwise too.
pub fn compute_with_runs(
    inputs: &[PathBuf],
    table: &GroundTruth,
    data_dir: &Path,
    options: &TableOptions,
    trained: Option<&TrainRuns>,
) -> anyhow::Result<Table> {
    let paper = paper_values(data_dir)?;
    let swept = load(inputs)?;
    let mut notes = swept.notes;
    let mut rows = Vec::new();
    let mut sections = BTreeMap::new();
    for ((dataset_name, seed), scores) in swept.groups {
        let restricted;
        let scores = match trained {
            Some(runs) if runs.dataset.as_deref() == Some(dataset_name.as_str()) => {
                let cells: BTreeSet<usize> = runs
                    .runs
                    .keys()
                    .filter(|(s, _, _)| *s == seed)
                    .map(|(_, index, _)| *index)
                    .collect();
                if cells.is_empty() {
                    bail!(
                        "the training rows of {dataset_name} have no seed {seed}, the sweep rows' \
                         seed: train with the sweep's seed (or give sweep rows of the training's)"
                    );
                }
                restricted = scores.restricted(&cells);
                notes.push(format!(
                    "{dataset_name} seed {seed}: every row covers the {} cells trained in {} (of \
                     the {} swept), so proxies and training reads compare on the same cells",
                    restricted.indices.len(),
                    options
                        .train
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    scores.indices.len()
                ));
                &restricted
            }
            _ => &scores,
        };
        let dataset: Dataset = dataset_name.parse()?;
        let metric = Metric::parse(&options.target, dataset)?;
        let all_truth = table.accuracies(dataset, metric)?;
        let row = |proxy: &str, cells: &[usize], x: &[f64], missing: usize, cost: f64| {
            let truth: Vec<f64> = cells.iter().map(|&i| all_truth[i]).collect();
            let (_, _, nan_count) = stats::finite_pairs(x, &truth);
            let (ci_low, ci_high) = stats::bootstrap_spearman_ci(x, &truth, options.bootstrap, 0);
            TableRow {
                dataset: dataset_name.clone(),
                seed,
                proxy: proxy.to_string(),
                target: metric.name().to_string(),
                n: x.len() - nan_count,
                nan_count,
                missing,
                spearman: stats::spearman(x, &truth),
                ci_low,
                ci_high,
                top10_spearman: stats::top_fraction_spearman(x, &truth, 0.1),
                kendall: stats::kendall_tau_b(x, &truth),
                paper: paper
                    .get(&(dataset_name.clone(), proxy.to_string()))
                    .copied(),
                cost_minibatches: cost,
                seconds_per_cell: None,
            }
        };
        // Registry order, then the vote and the free 12-epoch baseline.
        for proxy in REGISTRY {
            if let Some(pairs) = scores.pairs(proxy.name()) {
                let (cells, x): (Vec<usize>, Vec<f64>) = pairs.into_iter().unzip();
                rows.push(row(
                    proxy.name(),
                    &cells,
                    &x,
                    scores.indices.len() - cells.len(),
                    1.0,
                ));
            }
        }
        // The vote over every cell: a cell whose voter is NaN (or missing) votes "not better".
        let voter = |p: &str| -> Option<Vec<f64>> {
            Some(
                scores
                    .proxies
                    .get(p)?
                    .iter()
                    .map(|v| v.unwrap_or(f64::NAN))
                    .collect(),
            )
        };
        if let [Some(a), Some(b), Some(c)] = ["synflow", "jacob_cov", "snip"].map(voter) {
            let mut vote = row(
                VOTE_MEAN_RANK,
                &scores.indices,
                &stats::mean_rank(&[&a, &b, &c]),
                0,
                3.0,
            );
            rows.push(vote.clone());
            let truth: Vec<f64> = scores.indices.iter().map(|&i| all_truth[i]).collect();
            vote.proxy = VOTE.into();
            vote.n = truth.len();
            vote.spearman = stats::vote_accuracy([&a, &b, &c], &truth);
            (vote.ci_low, vote.ci_high, vote.top10_spearman, vote.kendall) =
                (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
            vote.paper = paper
                .get(&(dataset_name.clone(), VOTE.to_string()))
                .copied();
            if vote.nan_count > 0 {
                notes.push(format!(
                    "{dataset_name} seed {seed}: vote counts all {} cells; {} of them have a NaN \
                     voter, which votes \"not better\" in every pair (its NaN column)",
                    vote.n, vote.nan_count
                ));
            }
            rows.push(vote);
        }
        let early = table.accuracies(dataset, Metric::Valid12Epochs)?;
        rows.push(row(
            TRAIN_12EP,
            &scores.indices,
            &scores.indices.iter().map(|&i| early[i]).collect::<Vec<_>>(),
            0,
            12.0 * MINIBATCHES_PER_EPOCH,
        ));
        if let Some(runs) = trained.filter(|r| r.dataset.as_deref() == Some(dataset_name.as_str()))
        {
            for read in training_reads(runs, &options.train_reads) {
                let mut cells = Vec::new();
                let (mut x, mut cost, mut seconds) = (Vec::new(), 0.0, 0.0);
                for &index in &scores.indices {
                    let Some(epochs) = runs.runs.get(&(seed, index, read.setting.clone())) else {
                        continue;
                    };
                    let Some(at) = epochs.iter().find(|e| e.epoch == read.epoch) else {
                        bail!(
                            "{}: the {} runs of {dataset_name} seed {seed} have no epoch {} \
                             (cell {index})",
                            read.name,
                            read.setting,
                            read.epoch
                        );
                    };
                    cells.push(index);
                    x.push(at.test_accuracy);
                    cost += read.epoch as f64 * at.epoch_flops / at.baseline_epoch_flops;
                    seconds += epochs
                        .iter()
                        .filter(|e| (1..=read.epoch).contains(&e.epoch))
                        .map(|e| e.seconds)
                        .sum::<f64>();
                }
                if cells.is_empty() {
                    continue;
                }
                let n = cells.len() as f64;
                let mut r = row(
                    &read.name,
                    &cells,
                    &x,
                    scores.indices.len() - cells.len(),
                    cost / n * MINIBATCHES_PER_EPOCH,
                );
                r.seconds_per_cell = Some(seconds / n);
                rows.push(r);
            }
        }
        sections.insert(
            format!("{dataset_name}/{seed}"),
            (scores.settings.clone(), scores.revisions.clone()),
        );
    }
    Ok(Table {
        rows,
        sections,
        notes,
    })
}

/// The reads asked for, or by default econas and econas+ where their settings were trained,
/// and each trained setting's last epoch.
fn training_reads(runs: &TrainRuns, asked: &[TrainingRead]) -> Vec<TrainingRead> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let trained: BTreeSet<&str> = runs.runs.keys().map(|(_, _, s)| s.as_str()).collect();
    let epochs = runs.identity.as_ref().map_or(0, |i| i.epochs as usize);
    let mut reads: Vec<TrainingRead> = ["econas", "econas+"]
        .iter()
        .filter_map(|name| name.parse::<TrainingRead>().ok())
        .filter(|r| trained.contains(r.setting.as_str()) && r.epoch <= epochs)
        .collect();
    let mut settings: Vec<zc_train::Setting> =
        trained.iter().filter_map(|s| s.parse().ok()).collect();
    settings.sort_by_key(|s| (s.resolution, s.channels));
    reads.extend(settings.into_iter().map(|s| TrainingRead {
        name: format!("{s}_e{epochs}"),
        setting: s.to_string(),
        epoch: epochs,
    }));
    reads
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.3}")
    }
}

/// The table as Markdown, one section per dataset and seed, then the notes.
pub fn markdown(table: &Table, provenance: &str) -> String {
    let rows = &table.rows;
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
         12-epoch validation accuracy (a reduced-training baseline that costs nothing here); `econas` (r8c4 \
         read at epoch 20), `econas+` (r16c8 at epoch 15) and `rRcC_eE` rows are reduced-training runs of \
         `zc train`. Cost: baseline training minibatches per cell (the paper's Figure 2 unit, 196 per epoch \
         of the real network; training reads by FLOPs); s/cell: measured seconds where recorded.\n"
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
            rows[0].n + rows[0].nan_count + rows[0].missing
        );
        if let Some((settings, revisions)) = table.sections.get(&format!("{dataset}/{seed}")) {
            let revisions: Vec<&str> = revisions.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "Sweep rows: {settings}; zc git {}.\n",
                revisions.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "| proxy | n | NaN | Spearman ρ | 95% CI | top-10% ρ | Kendall τ | paper | Δ | cost | s/cell |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
        );
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
            let seconds = r.seconds_per_cell.map_or("".into(), |s| format!("{s:.1}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {ci} | {} | {} | {paper} | {diff} | {} | {seconds} |",
                r.proxy,
                r.n,
                r.nan_count,
                fmt(r.spearman),
                fmt(r.top10_spearman),
                fmt(r.kendall),
                format_cost(r.cost_minibatches)
            );
        }
        let _ = writeln!(out);
    }
    if !table.notes.is_empty() {
        let _ = writeln!(out, "Notes:\n");
        for note in &table.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(out);
    }
    out
}

/// A cost in minibatches: integers as such, fractions with three decimals.
fn format_cost(cost: f64) -> String {
    if cost.fract() == 0.0 {
        format!("{cost:.0}")
    } else {
        format!("{cost:.3}")
    }
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
            Column::new(
                "missing".into(),
                rows.iter().map(|r| r.missing as u64).collect::<Vec<_>>(),
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
            Column::new("cost_minibatches".into(), f(|r| r.cost_minibatches)),
            Column::new(
                "seconds_per_cell".into(),
                rows.iter().map(|r| r.seconds_per_cell).collect::<Vec<_>>(),
            ),
        ],
    )?;
    store::write_atomic(&mut df, path)
}

/// Writes `{out}.md` and `{out}.parquet` (`out` is a file stem: `results/table1` writes
/// `results/table1.md` beside the sweep directory `results/table1/`; `results/t.v2` writes
/// `results/t.v2.md`). Refuses a directory (`results/`) and a stem inside a sweep directory:
/// tables and sweep rows are kept apart.
pub fn write(table: &Table, out: &Path, provenance: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    if out
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
    {
        bail!(
            "--out {} is a directory; give a file stem such as results/table1 (writes \
             results/table1.md and results/table1.parquet)",
            out.display()
        );
    }
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    {
        if is_sweep_dir(dir)? {
            bail!(
                "--out {}: {} is a sweep directory; write tables beside it, not into it (e.g. \
                 --out {})",
                out.display(),
                dir.display(),
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let with_suffix = |suffix: &str| {
        let mut name = out.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (md, pq) = (with_suffix(".md"), with_suffix(".parquet"));
    store::write_text_atomic(&md, &markdown(table, provenance))?;
    write_parquet(&table.rows, &pq)?;
    Ok((md, pq))
}

/// Whether `dir` holds sweep files or shard manifests.
fn is_sweep_dir(dir: &Path) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if store::is_sweep_file_name(&name) || name.starts_with("manifest_shard") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One proxy's swept scores for `dataset` and `seed` from sweep files (or directories of
/// them): (official cell index, score) pairs over the cells that have it, and the settings
/// they were computed with.
pub fn proxy_column(
    inputs: &[PathBuf],
    dataset: &str,
    seed: u64,
    proxy: &str,
) -> anyhow::Result<(Vec<(usize, f64)>, Settings)> {
    let swept = load(inputs)?;
    let scores = swept
        .groups
        .get(&(dataset.to_string(), seed))
        .with_context(|| {
            let found: Vec<String> = swept
                .groups
                .keys()
                .map(|(d, s)| format!("{d} seed {s}"))
                .collect();
            format!(
                "no {dataset} seed {seed} rows in the sweep files (found: {})",
                found.join(", ")
            )
        })?;
    let pairs = scores.pairs(proxy).with_context(|| {
        let found: Vec<&str> = scores.proxies.keys().map(String::as_str).collect();
        format!(
            "the sweep files have no {proxy} column for {dataset} (found: {})",
            found.join(", ")
        )
    })?;
    Ok((pairs, scores.settings.clone()))
}
