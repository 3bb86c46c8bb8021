//! `zc search`: seeded NAS runs (zc-search) from a YAML config, their steps in Parquet, the
//! mean search curves, and the table of trained models needed to reach target accuracies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;
use serde::Deserialize;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::{Dataset, ImageSet, MinibatchSampler};
use zc_proxies::{Backend, Engine, Nb201Network, SampledBatches, Weights, proxy};
use zc_search::{Accuracies, Algorithm, ProxyScores, Run, Step, Variant};
use zc_space::Cell;

use crate::store::{self, Settings, column, write_atomic, write_text_atomic};
use crate::{provenance, table};

/// A search experiment, as written in YAML (`experiments/figure3.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Experiment name.
    pub name: String,
    /// Dataset whose accuracies are searched: cifar10, cifar100 or ImageNet16-120.
    pub dataset: String,
    /// Metric the search optimises; default: the one-seed validation accuracy where the
    /// table has one (CIFAR-100, ImageNet16-120), else the test accuracy.
    #[serde(default)]
    pub select: Option<String>,
    /// Metric the curves report (default `test`).
    #[serde(default = "default_report")]
    pub report: String,
    /// Distinct trained models per run.
    pub budget: usize,
    /// Seeded runs per variant.
    pub runs: usize,
    /// Run r of every variant uses seed `seed + r`.
    #[serde(default)]
    pub seed: u64,
    /// Where the proxy scores come from.
    pub proxy: ProxySource,
    /// Variants per algorithm (rand, rl, ae, bp), e.g. `ae: [baseline, move]`.
    pub algorithms: BTreeMap<String, Vec<String>>,
    /// Accuracies (percent) whose first crossing by the mean curve the table reports.
    #[serde(default = "default_targets")]
    pub targets: Vec<f64>,
    /// Output directory.
    pub output: PathBuf,
}

/// The proxy of the zero-cost variants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySource {
    /// Sweep Parquet files or directories (`zc sweep` output). Cells missing from them are
    /// scored on demand with the engine exactly as `zc sweep` scored the others (the rows'
    /// precision, data load and images; flex sweeps only), and kept for the next run.
    pub sweep: Vec<PathBuf>,
    /// The proxy: a column of the sweep files (default synflow).
    #[serde(default = "default_proxy")]
    pub name: String,
    /// The sweep seed (network initialisation) to read (default 0).
    #[serde(default)]
    pub seed: u64,
}

fn default_report() -> String {
    "test".into()
}

fn default_targets() -> Vec<f64> {
    vec![73.0, 73.2]
}

fn default_proxy() -> String {
    "synflow".into()
}

/// A config checked against the data, ready to run.
pub struct SearchExperiment {
    /// The config as written.
    pub config: SearchConfig,
    /// The config file.
    pub path: PathBuf,
    /// The dataset.
    pub dataset: Dataset,
    /// The optimised metric.
    pub select: Metric,
    /// The reported metric.
    pub report: Metric,
    /// The variants in panel order.
    pub variants: Vec<(Algorithm, Variant)>,
}

impl SearchExperiment {
    /// Reads and validates a config: every key, algorithm, variant and metric is checked.
    pub fn load(path: &Path, table: &GroundTruth) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read search config {}", path.display()))?;
        let config: SearchConfig = serde_norway::from_str(&text)
            .with_context(|| format!("invalid search config {}", path.display()))?;
        let context = || format!("in search config {}", path.display());
        let dataset: Dataset = config.dataset.parse().with_context(context)?;
        let select = match &config.select {
            Some(name) => Metric::parse(name, dataset).with_context(context)?,
            None if table.accuracies(dataset, Metric::Val1Seed).is_ok() => Metric::Val1Seed,
            None => Metric::Test,
        };
        let report = Metric::parse(&config.report, dataset).with_context(context)?;
        for metric in [select, report] {
            table.accuracies(dataset, metric).with_context(context)?;
        }
        if config.budget == 0 || config.runs == 0 {
            bail!("budget and runs must be at least 1 ({})", context());
        }
        if config.budget > Cell::COUNT {
            bail!(
                "budget {} exceeds the {} cells of the space ({})",
                config.budget,
                Cell::COUNT,
                context()
            );
        }
        if config.proxy.sweep.is_empty() {
            bail!("proxy.sweep names no sweep files ({})", context());
        }
        proxy::find(&config.proxy.name).with_context(context)?;
        let mut variants = Vec::new();
        for (name, list) in &config.algorithms {
            let algorithm: Algorithm = name
                .parse()
                .with_context(|| format!("algorithms.{name} {}", context()))?;
            for text in list {
                let variant: Variant = text
                    .parse()
                    .with_context(|| format!("algorithms.{name} {}", context()))?;
                algorithm
                    .check(variant)
                    .with_context(|| format!("algorithms.{name} {}", context()))?;
                if variants.contains(&(algorithm, variant)) {
                    bail!("algorithms.{name} lists {variant} twice ({})", context());
                }
                variants.push((algorithm, variant));
            }
        }
        if variants.is_empty() {
            bail!("no algorithms ({})", context());
        }
        variants.sort_by_key(|(a, _)| Algorithm::ALL.iter().position(|x| x == a));
        Ok(SearchExperiment {
            config,
            path: path.to_path_buf(),
            dataset,
            select,
            report,
            variants,
        })
    }
}

/// The benchmark's accuracies for the search, indexed by cell code.
pub fn accuracies(
    table: &GroundTruth,
    dataset: Dataset,
    select: Metric,
    report: Metric,
) -> anyhow::Result<Accuracies> {
    Ok(Accuracies::new(
        table.accuracies_by_code(dataset, select)?,
        table.accuracies_by_code(dataset, report)?,
    )?)
}

/// Where `zc search` keeps the cells it scored on demand: a sweep directory under its output,
/// read again by the next run of the same search.
pub fn on_demand_dir(experiment: &SearchExperiment) -> PathBuf {
    experiment
        .config
        .output
        .join(format!("on-demand-{}", experiment.config.proxy.name))
}

/// The proxy's scores from the sweep files (and the cells an earlier run scored on demand),
/// with the cells they lack scored on demand with the sweep rows' settings.
pub fn proxy_scores(
    experiment: &SearchExperiment,
    table: &GroundTruth,
    data_dir: &Path,
) -> anyhow::Result<(ProxyScores, Settings)> {
    let source = &experiment.config.proxy;
    let mut inputs = source.sweep.clone();
    let kept = on_demand_dir(experiment);
    if kept.is_dir() {
        inputs.push(kept);
    }
    let (column, settings) = table::proxy_column(
        &inputs,
        experiment.dataset.name(),
        source.seed,
        &source.name,
    )
    .with_context(|| format!("proxy scores from {}", display_paths(&inputs)))?;
    let mut by_code = vec![None; Cell::COUNT];
    for (index, score) in column {
        let cell = table.cell(index)?;
        by_code[usize::from(cell.code())] = Some(score);
    }
    let missing = by_code.iter().filter(|s| s.is_none()).count();
    let scorer = (missing > 0)
        .then(|| on_demand_scorer(experiment, &settings, data_dir, missing))
        .transpose()?;
    Ok((ProxyScores::new(&source.name, by_code, scorer)?, settings))
}

/// Scores cells the sweep lacks exactly as `zc sweep` scored the others: the same network,
/// weights and minibatch, with the sweep rows' backend, precision, data load and images.
fn on_demand_scorer(
    experiment: &SearchExperiment,
    settings: &Settings,
    data_dir: &Path,
    missing: usize,
) -> anyhow::Result<zc_search::Scorer> {
    let dataset = experiment.dataset;
    let seed = experiment.config.proxy.seed;
    let proxy = proxy::find(&experiment.config.proxy.name)?;
    let images = ImageSet::read_shipped(data_dir, dataset)
        .with_context(|| format!("images of {} for on-demand proxy scores", dataset.name()))?;
    if images.sha256() != settings.images_sha256 {
        bail!(
            "the sweep rows were computed on other {} images (sha256 {}) than {} (sha256 {}): \
             cells scored on demand would not be comparable; use the data directory of the sweep",
            dataset.name(),
            settings.images_sha256,
            data_dir.display(),
            images.sha256()
        );
    }
    let backend = match settings.backend.as_str() {
        "flex" => Backend::Flex,
        other => bail!(
            "the sweep rows were computed with backend {other}; on-demand scoring runs on flex \
             only, which would mix backends: score the missing cells with `zc sweep` instead"
        ),
    };
    let engine = Engine::new(backend, settings.precision()?);
    let sampler = Arc::new(MinibatchSampler::new(images, settings.data_load()?, seed)?);
    let (scored, started) = (AtomicUsize::new(0), Instant::now());
    eprintln!(
        "{missing} cells lack a {} score; they are scored on demand when the search asks \
         ({settings}) and kept in {}",
        proxy.name(),
        on_demand_dir(experiment).display()
    );
    Ok(Box::new(move |cell: Cell| {
        let network = Nb201Network::new(cell, dataset.num_classes());
        let weights = Weights::init(&network, seed);
        let data = SampledBatches {
            sampler: &sampler,
            key: u64::from(cell.code()),
        };
        let scores = engine
            .score_from(&network, &weights, &data, &[proxy])
            .map_err(|e| e.to_string())?;
        let done = scored.fetch_add(1, Ordering::Relaxed) + 1;
        if done.is_multiple_of(50) {
            eprintln!(
                "scored {done} cells on demand ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(scores.proxies[0].score.total)
    }))
}

/// Adds the cells scored on demand to [`on_demand_dir`] (a sweep file in the row schema, so the
/// next run, `zc table` and `zc search` read them like any sweep).
fn keep_on_demand(
    experiment: &SearchExperiment,
    table: &GroundTruth,
    proxy: &ProxyScores,
    settings: &Settings,
) -> anyhow::Result<()> {
    let computed = proxy.computed();
    if computed.is_empty() {
        return Ok(());
    }
    let dir = on_demand_dir(experiment);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let seed = experiment.config.proxy.seed;
    let path = dir.join(format!(
        "{}.parquet",
        crate::sweep::file_prefix(experiment.dataset, seed, crate::sweep::Shard::WHOLE)
    ));
    let n = computed.len();
    let constant = |name: &str, v: &str| Column::new(name.into(), vec![v.to_string(); n]);
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                column::INDEX.into(),
                computed
                    .iter()
                    .map(|(c, _)| table.index_of(*c) as u32)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                column::ARCH.into(),
                computed
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .collect::<Vec<_>>(),
            ),
            constant(column::DATASET, experiment.dataset.name()),
            Column::new(column::SEED.into(), vec![seed; n]),
            Column::new(
                proxy.name().into(),
                computed.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            ),
            constant(column::BACKEND, &settings.backend),
            constant(column::PRECISION, &settings.precision),
            constant(column::DATALOAD, &settings.dataload),
            Column::new(column::BATCH_SIZE.into(), vec![settings.batch_size; n]),
            Column::new(column::PER_CLASS.into(), vec![settings.per_class; n]),
            constant(column::IMAGES_SHA256, &settings.images_sha256),
            constant(
                column::CONFIG,
                &format!("{} (on demand)", experiment.config.name),
            ),
            constant(column::VERSION, provenance::VERSION),
            constant(column::GIT_REVISION, provenance::GIT_REVISION),
        ],
    )?;
    if path.exists() {
        let mut old = store::read_parquet(&path)?;
        old.vstack_mut_owned(df.select(old.get_column_names_owned())?)?;
        df = old;
    }
    store::write_atomic(&mut df, &path)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps of one run.
pub struct RunResult {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The variant.
    pub variant: Variant,
    /// Run number (0-based); its seed is the config's seed plus this.
    pub run: usize,
    /// One step per trained model.
    pub steps: Vec<Step>,
}

/// Runs every variant `runs` times in parallel, with a progress bar.
pub fn run_all(
    experiment: &SearchExperiment,
    accuracies: &Accuracies,
    proxy: &ProxyScores,
) -> anyhow::Result<Vec<RunResult>> {
    let c = &experiment.config;
    let jobs: Vec<(Algorithm, Variant, usize)> = experiment
        .variants
        .iter()
        .flat_map(|&(a, v)| (0..c.runs).map(move |r| (a, v, r)))
        .collect();
    let (total, started, finished) = (jobs.len(), Instant::now(), AtomicUsize::new(0));
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} runs  {per_sec}  ETA {eta}  {msg}",
        )?
        .progress_chars("=> "),
    );
    let results = jobs
        .into_par_iter()
        .map(|(algorithm, variant, run)| {
            let spec = Run {
                algorithm,
                variant,
                budget: c.budget,
                seed: c.seed + run as u64,
            };
            let steps = spec
                .execute(accuracies, proxy)
                .with_context(|| format!("{algorithm} {variant} run {run}"))?;
            progress.set_message(format!("{algorithm} {variant}"));
            progress.inc(1);
            if progress.is_hidden() {
                // No terminal (a log file, CI): a plain line every 5% of the runs instead.
                let done = finished.fetch_add(1, Ordering::Relaxed) + 1;
                if done.is_multiple_of(total.div_ceil(20)) || done == total {
                    let elapsed = started.elapsed().as_secs_f64();
                    eprintln!(
                        "{done}/{total} runs, {:.1} runs/s, ETA {:.0} s",
                        done as f64 / elapsed,
                        elapsed / done as f64 * (total - done) as f64
                    );
                }
            }
            Ok(RunResult {
                algorithm,
                variant,
                run,
                steps,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>();
    progress.finish_and_clear();
    results
}

/// The mean search curve of one variant.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The variant.
    pub variant: Variant,
    /// Runs averaged.
    pub runs: usize,
    /// Mean best reported accuracy after 1, 2, ... trained models.
    pub mean: Vec<f64>,
    /// Half-width of the 95% interval of the mean (1.96 standard errors).
    pub ci95: Vec<f64>,
}

impl Curve {
    /// Trained models the mean curve needs to reach `target`, if it does.
    pub fn models_to_reach(&self, target: f64) -> Option<usize> {
        self.mean.iter().position(|&m| m >= target).map(|i| i + 1)
    }
}

/// The mean curve of every variant, in run order. A run that stopped before the budget keeps
/// its last best.
pub fn curves(results: &[RunResult], budget: usize) -> Vec<Curve> {
    let mut groups: Vec<((Algorithm, Variant), Vec<&RunResult>)> = Vec::new();
    for r in results {
        match groups
            .iter_mut()
            .find(|(k, _)| *k == (r.algorithm, r.variant))
        {
            Some((_, v)) => v.push(r),
            None => groups.push(((r.algorithm, r.variant), vec![r])),
        }
    }
    groups
        .into_iter()
        .map(|((algorithm, variant), runs)| {
            let n = runs.len() as f64;
            let at =
                |r: &RunResult, i: usize| r.steps[i.min(r.steps.len() - 1)].best_report_accuracy;
            let mut mean = Vec::with_capacity(budget);
            let mut ci95 = Vec::with_capacity(budget);
            for i in 0..budget {
                let m = runs.iter().map(|r| at(r, i)).sum::<f64>() / n;
                let var =
                    runs.iter().map(|r| (at(r, i) - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                mean.push(m);
                ci95.push(1.96 * (var / n).sqrt());
            }
            Curve {
                algorithm,
                variant,
                runs: runs.len(),
                mean,
                ci95,
            }
        })
        .collect()
}

/// Every step of every run as a frame.
pub fn steps_frame(results: &[RunResult], table: &GroundTruth) -> anyhow::Result<DataFrame> {
    let rows = results
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r, s)));
    let (mut algorithm, mut variant, mut run, mut step, mut index, mut arch) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut select, mut accuracy, mut best) = (vec![], vec![], vec![]);
    for (r, s) in rows {
        algorithm.push(r.algorithm.name());
        variant.push(r.variant.to_string());
        run.push(r.run as u32);
        step.push(s.trained as u32);
        index.push(table.index_of(s.cell) as u32);
        arch.push(s.cell.to_string());
        select.push(s.select_accuracy);
        accuracy.push(s.report_accuracy);
        best.push(s.best_report_accuracy);
    }
    Ok(DataFrame::new(
        run.len(),
        vec![
            Column::new("algorithm".into(), algorithm),
            Column::new("variant".into(), variant),
            Column::new("run".into(), run),
            Column::new("step".into(), step),
            Column::new("index".into(), index),
            Column::new("arch".into(), arch),
            Column::new("select_accuracy".into(), select),
            Column::new("accuracy".into(), accuracy),
            Column::new("best_accuracy".into(), best),
        ],
    )?)
}

/// The curves as a frame: one row per variant and step.
pub fn curves_frame(curves: &[Curve]) -> anyhow::Result<DataFrame> {
    let (mut algorithm, mut variant, mut step, mut mean, mut ci) =
        (vec![], vec![], vec![], vec![], vec![]);
    for c in curves {
        for (i, (&m, &h)) in c.mean.iter().zip(&c.ci95).enumerate() {
            algorithm.push(c.algorithm.name());
            variant.push(c.variant.to_string());
            step.push(i as u32 + 1);
            mean.push(m);
            ci.push(h);
        }
    }
    Ok(DataFrame::new(
        step.len(),
        vec![
            Column::new("algorithm".into(), algorithm),
            Column::new("variant".into(), variant),
            Column::new("step".into(), step),
            Column::new("mean_best_accuracy".into(), mean),
            Column::new("ci95".into(), ci),
        ],
    )?)
}

/// The table of final accuracies and trained models needed to reach each target, with the
/// speedup over the algorithm's baseline.
pub fn markdown(curves: &[Curve], targets: &[f64], provenance: &str) -> String {
    let mut out = String::from("| algorithm | variant | runs | final mean best (± 95% CI) |");
    for t in targets {
        out.push_str(&format!(" models to {t:.1}% | speedup |"));
    }
    out.push_str("\n|---|---|---:|---:|");
    for _ in targets {
        out.push_str("---:|---:|");
    }
    out.push('\n');
    for c in curves {
        let last = c.mean.len() - 1;
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} ± {:.2} |",
            c.algorithm.name().to_uppercase(),
            c.variant,
            c.runs,
            c.mean[last],
            c.ci95[last]
        ));
        let baseline = curves
            .iter()
            .find(|b| b.algorithm == c.algorithm && b.variant == Variant::BASELINE);
        for &t in targets {
            let reach = c.models_to_reach(t);
            let budget = c.mean.len();
            let speedup = match (baseline.and_then(|b| b.models_to_reach(t)), reach) {
                (_, None) => "—".to_string(),
                (Some(b), Some(n)) => format!("{:.1}x", b as f64 / n as f64),
                (None, Some(n)) if baseline.is_some() => {
                    format!("> {:.1}x", budget as f64 / n as f64)
                }
                (None, Some(_)) => "—".to_string(),
            };
            let reach = reach.map_or(format!("> {budget}"), |n| n.to_string());
            out.push_str(&format!(" {reach} | {speedup} |"));
        }
        out.push('\n');
    }
    out.push_str(&format!("\n{provenance}\n"));
    out
}

/// What `zc search` wrote.
pub struct SearchOutputs {
    /// Every step of every run.
    pub steps: PathBuf,
    /// The mean curves.
    pub curves: PathBuf,
    /// The Markdown table.
    pub table: PathBuf,
    /// The run's provenance.
    pub manifest: PathBuf,
}

/// Runs a search experiment end to end and writes its Parquet files, table and manifest
/// (atomically). Returns the curves for plotting.
pub fn run(
    experiment: &SearchExperiment,
    table: &GroundTruth,
    data_dir: &Path,
) -> anyhow::Result<(Vec<Curve>, SearchOutputs)> {
    let started = Instant::now();
    let c = &experiment.config;
    let accuracies = accuracies(
        table,
        experiment.dataset,
        experiment.select,
        experiment.report,
    )?;
    let (proxy, settings) = proxy_scores(experiment, table, data_dir)?;
    eprintln!(
        "search {}: {} variants x {} runs, budget {}, {} (select {}, report {}), proxy {} ({} of {} cells swept)",
        c.name,
        experiment.variants.len(),
        c.runs,
        c.budget,
        experiment.dataset.name(),
        experiment.select,
        experiment.report,
        proxy.name(),
        proxy.known_count(),
        Cell::COUNT
    );
    let results = run_all(experiment, &accuracies, &proxy);
    // Keep what was scored on demand, even when a run failed.
    keep_on_demand(experiment, table, &proxy, &settings)?;
    let results = results?;
    let curves = curves(&results, c.budget);
    std::fs::create_dir_all(&c.output)
        .with_context(|| format!("cannot create {}", c.output.display()))?;
    let revision = provenance::GIT_REVISION;
    let outputs = SearchOutputs {
        steps: c.output.join("search_steps.parquet"),
        curves: c.output.join("search_curves.parquet"),
        table: c.output.join(format!("{}.md", c.name)),
        manifest: c.output.join("manifest.json"),
    };
    write_atomic(&mut steps_frame(&results, table)?, &outputs.steps)?;
    write_atomic(&mut curves_frame(&curves)?, &outputs.curves)?;
    let provenance = format!(
        "{} {}: mean over {} seeded runs (seeds {}..{}) of the {} accuracy of the best cell so far by {}; budget {} trained models; proxy {} from {} ({} cells scored on demand); zc {} (git {}).",
        experiment.dataset.name(),
        c.name,
        c.runs,
        c.seed,
        c.seed + c.runs as u64 - 1,
        experiment.report,
        experiment.select,
        c.budget,
        proxy.name(),
        display_paths(&c.proxy.sweep),
        proxy.computed_count(),
        provenance::VERSION,
        revision
    );
    write_text_atomic(&outputs.table, &markdown(&curves, &c.targets, &provenance))?;
    let manifest = serde_json::json!({
        "config": experiment.path.display().to_string(),
        "name": c.name,
        "dataset": experiment.dataset.name(),
        "select": experiment.select.name(),
        "report": experiment.report.name(),
        "budget": c.budget,
        "runs": c.runs,
        "seed": c.seed,
        "proxy": proxy.name(),
        "proxy_sweep": display_paths(&c.proxy.sweep),
        "proxy_cells_swept": proxy.known_count(),
        "proxy_cells_scored_on_demand": proxy.computed_count(),
        "variants": experiment.variants.iter().map(|(a, v)| format!("{a} {v}")).collect::<Vec<_>>(),
        "zc_version": provenance::VERSION,
        "git_revision": revision,
        "seconds": started.elapsed().as_secs_f64(),
    });
    write_text_atomic(&outputs.manifest, &serde_json::to_string_pretty(&manifest)?)?;
    Ok((curves, outputs))
}
