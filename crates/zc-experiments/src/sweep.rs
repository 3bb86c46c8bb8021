//! `zc sweep`: score cells with proxies and append the rows to Parquet.
//!
//! A job is one (cell, dataset, seed); it makes one row.
//!
//! - Resumable: rows are written in part files of `chunk` rows, each atomically (temporary file,
//!   fsync, rename). A rerun reads every row already in the output directory and runs only the
//!   jobs whose row is missing, so a kill at any moment loses at most the unwritten chunk.
//! - Settings-aware: a row counts as done only if it was computed with the same [`Settings`]
//!   (backend, precision, data load, batch size, image files). A directory holding rows of
//!   other settings is refused with an error that names them, so results never mix settings.
//! - Shardable: `--shard K/N` takes every N-th cell of the list, starting at K-1; the N parts
//!   together are the whole list and read as one table. A shard holds a lock while it runs.
//! - Parallel: one cell per worker, each worker with a one-thread pool (two cells at once on two
//!   cores is about twice the throughput of one cell on two threads with the flex backend).
//! - When a shard finishes, its part files are merged into one file per dataset and seed, and
//!   `manifest_shardKofN.json` describes the rows its files hold.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};
use zc_benchmark::GroundTruth;
use zc_data::{Dataset, ImageSet, MinibatchSampler};
use zc_proxies::{CellScores, Engine, Nb201Network, SampledBatches, Weights};

use crate::config::Experiment;
use crate::provenance;
use crate::store::{self, RowKey, Settings, ShardLock, column};

/// Part K of N of a cell list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based part number.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

impl Shard {
    /// The whole list.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// The items of this shard: positions `index-1, index-1+count, ...`.
    pub fn select<T: Copy>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index - 1)
            .step_by(self.count)
            .copied()
            .collect()
    }

    /// `shardKofN`, as in file names.
    pub fn tag(&self) -> String {
        format!("shard{}of{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index >= 1 && index <= count => Ok(Shard { index, count }),
            _ => bail!("invalid shard \"{s}\": expected K/N with 1 <= K <= N, e.g. 2/4"),
        }
    }
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepSummary {
    /// Jobs (cell, dataset, seed) run by this invocation.
    pub scored: usize,
    /// Jobs of the shard whose rows were already in the output directory.
    pub skipped: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// NaN count per proxy among the rows scored by this run.
    pub nan_counts: Vec<(String, usize)>,
    /// The files this run merged new rows into.
    pub files: Vec<PathBuf>,
}

/// One scored job.
struct Row {
    index: u32,
    dataset: Dataset,
    seed: u64,
    scores: CellScores,
}

/// The frame of a chunk of rows: the row schema of [`store::column`].
struct RowSchema<'a> {
    experiment: &'a Experiment,
    table: &'a GroundTruth,
    settings: &'a BTreeMap<Dataset, Settings>,
}

impl RowSchema<'_> {
    fn frame(&self, rows: &[Row]) -> anyhow::Result<DataFrame> {
        let experiment = self.experiment;
        let n = rows.len();
        let text = |name: &str, v: &str| Column::new(name.into(), vec![v.to_string(); n]);
        let setting = |r: &Row| &self.settings[&r.dataset];
        let mut columns = vec![
            Column::new(
                column::INDEX.into(),
                rows.iter().map(|r| r.index).collect::<Vec<_>>(),
            ),
            Column::new(
                column::ARCH.into(),
                rows.iter()
                    .map(|r| self.table.cells()[r.index as usize].to_string())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                column::DATASET.into(),
                rows.iter().map(|r| r.dataset.name()).collect::<Vec<_>>(),
            ),
            Column::new(
                column::SEED.into(),
                rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
            ),
        ];
        for (i, proxy) in experiment.proxies.iter().enumerate() {
            let values: Vec<f64> = rows
                .iter()
                .map(|r| r.scores.proxies[i].score.total)
                .collect();
            columns.push(Column::new(proxy.name().into(), values));
        }
        for (i, proxy) in experiment.proxies.iter().enumerate() {
            let seconds: Vec<f64> = rows.iter().map(|r| r.scores.proxies[i].seconds).collect();
            columns.push(Column::new(
                format!("{}_seconds", proxy.name()).into(),
                seconds,
            ));
        }
        columns.push(Column::new(
            column::CELL_SECONDS.into(),
            rows.iter().map(|r| r.scores.seconds()).collect::<Vec<_>>(),
        ));
        columns.push(text(column::BACKEND, &experiment.backend.name()));
        columns.push(text(column::PRECISION, experiment.precision.name()));
        columns.push(Column::new(
            column::DATALOAD.into(),
            rows.iter()
                .map(|r| setting(r).dataload.clone())
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            column::BATCH_SIZE.into(),
            rows.iter()
                .map(|r| setting(r).batch_size)
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            column::PER_CLASS.into(),
            rows.iter()
                .map(|r| setting(r).per_class)
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            column::IMAGES_SHA256.into(),
            rows.iter()
                .map(|r| setting(r).images_sha256.clone())
                .collect::<Vec<_>>(),
        ));
        columns.push(text(column::CONFIG, &experiment.name));
        columns.push(text(column::VERSION, provenance::VERSION));
        columns.push(text(column::GIT_REVISION, provenance::GIT_REVISION));
        Ok(DataFrame::new(n, columns)?)
    }
}

/// `DATASET_seedS_shardKofN`: the stem of a shard's files for one dataset and seed.
pub fn file_prefix(dataset: Dataset, seed: u64, shard: Shard) -> String {
    format!("{}_seed{seed}_{}", dataset.name(), shard.tag())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The manifest of one shard: the settings and experiment of its rows, how many rows its files
/// hold, and the invocations that added rows.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// `K/N`.
    pub shard: String,
    /// `running` (row counts are from before the run), `finished` or `failed`. A rerun with no
    /// job to do keeps the experiment of the run that made the rows.
    pub status: String,
    /// The settings of every row, per dataset.
    pub settings: BTreeMap<String, Settings>,
    /// The experiment of the latest invocation that ran jobs, after command-line overrides.
    pub experiment: ManifestExperiment,
    /// Jobs (cell, dataset, seed) of the shard.
    pub jobs_in_shard: usize,
    /// Jobs of the shard whose row is in the directory (in this shard's files or others').
    pub jobs_done: usize,
    /// Rows in each of this shard's merged files.
    pub rows_in_files: BTreeMap<String, usize>,
    /// The `git_revision`s of the rows in this shard's files.
    pub revisions: BTreeSet<String>,
    /// The invocations that ran jobs, oldest first.
    pub runs: Vec<RunRecord>,
}

/// The experiment part of a [`Manifest`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestExperiment {
    /// Config name.
    pub config: String,
    /// The config text as written.
    pub config_text: String,
    /// Command-line overrides of the config, as typed.
    pub overrides: Vec<String>,
    /// How the cells were chosen (after overrides).
    pub cells: String,
    /// Number of cells (before sharding).
    pub cell_count: usize,
    /// Datasets.
    pub datasets: Vec<String>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Proxies.
    pub proxies: Vec<String>,
}

/// One invocation that ran jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Revision of the `zc` binary.
    pub git_revision: String,
    /// Start time (Unix seconds).
    pub started_unix: u64,
    /// End time, if it ended (a killed run has none).
    pub finished_unix: Option<u64>,
    /// Jobs it ran.
    pub jobs: usize,
    /// `running`, `finished`, `failed` or `killed` (found still `running` by a later run).
    pub status: String,
}

/// The images and settings of every dataset of an experiment, and (once the output directory
/// has been checked) a sampler per dataset and seed.
struct Inputs {
    images: BTreeMap<Dataset, Arc<ImageSet>>,
    settings: BTreeMap<Dataset, Settings>,
    samplers: HashMap<(Dataset, u64), MinibatchSampler>,
}

impl Inputs {
    fn load(experiment: &Experiment, data_dir: &Path) -> anyhow::Result<Inputs> {
        let mut images = BTreeMap::new();
        let mut settings = BTreeMap::new();
        for &(dataset, _) in &experiment.datasets {
            let set = ImageSet::read_shipped(data_dir, dataset)
                .with_context(|| format!("images of {}", dataset.name()))?;
            settings.insert(
                dataset,
                Settings::new(
                    experiment.backend,
                    experiment.precision,
                    experiment.dataload,
                    dataset,
                    set.sha256(),
                ),
            );
            images.insert(dataset, Arc::new(set));
        }
        Ok(Inputs {
            images,
            settings,
            samplers: HashMap::new(),
        })
    }

    fn build_samplers(&mut self, experiment: &Experiment) -> anyhow::Result<()> {
        for (&dataset, images) in &self.images {
            for &seed in &experiment.seeds {
                let sampler = MinibatchSampler::new(images.clone(), experiment.dataload, seed)?;
                self.samplers.insert((dataset, seed), sampler);
            }
        }
        Ok(())
    }
}

/// The keys of the rows already in `output`, after checking that every row there was computed
/// with this run's settings and has exactly this experiment's proxies.
fn rows_done(
    output: &Path,
    experiment: &Experiment,
    settings: &BTreeMap<Dataset, Settings>,
) -> anyhow::Result<HashSet<RowKey>> {
    let mut done = HashSet::new();
    let mut ours_proxies: Vec<&str> = experiment.proxies.iter().map(|p| p.name()).collect();
    ours_proxies.sort_unstable();
    for (path, df) in store::read_dir(output)? {
        let mut theirs_proxies = store::proxy_columns(&df);
        theirs_proxies.sort();
        if theirs_proxies != ours_proxies {
            bail!(
                "{} has the proxies [{}] but this run has [{}]: a sweep directory holds one set of \
                 proxies; sweep into another output directory (--output DIR)",
                path.display(),
                theirs_proxies.join(", "),
                ours_proxies.join(", ")
            );
        }
        for (key, theirs) in store::row_identities(&df, &path)? {
            let dataset = key.0.parse::<Dataset>().ok();
            if let Some(ours) = dataset.and_then(|d| settings.get(&d)) {
                refuse_other_settings(output, &key.0, &path, &theirs, ours)?;
            } else if let Some(any) = settings.values().next() {
                // Another dataset: its images and per-class batch size are its own.
                let ours = Settings {
                    images_sha256: theirs.images_sha256.clone(),
                    batch_size: if theirs.per_class.is_some() {
                        theirs.batch_size
                    } else {
                        any.batch_size
                    },
                    ..any.clone()
                };
                refuse_other_settings(output, &key.0, &path, &theirs, &ours)?;
            }
            done.insert(key);
        }
    }
    Ok(done)
}

/// An error naming every setting in which rows of `dataset` in `path` differ from this run's.
fn refuse_other_settings(
    output: &Path,
    dataset: &str,
    path: &Path,
    theirs: &Settings,
    ours: &Settings,
) -> anyhow::Result<()> {
    let differences = theirs.differences(ours);
    if differences.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = differences
        .iter()
        .map(|(name, there, here)| format!("{name} {there} there, this run {here}"))
        .collect();
    bail!(
        "{} holds rows computed with other settings than this run ({dataset}: {}; e.g. {}). A \
         sweep directory holds rows of one set of settings, so a resumed sweep never mixes them: \
         sweep into another directory (--output DIR, or `output:` in the config), or move those \
         files away",
        output.display(),
        named.join(", "),
        path.display()
    )
}

/// Records the settings of the directory's rows in `sweep_settings.json` (created by the first
/// run), or checks this run's against it: shards started at the same moment with different
/// settings cannot both write into one directory.
fn claim_settings(output: &Path, settings: &BTreeMap<Dataset, Settings>) -> anyhow::Result<()> {
    let path = output.join("sweep_settings.json");
    let ours: BTreeMap<String, Settings> = settings
        .iter()
        .map(|(d, s)| (d.name().to_string(), s.clone()))
        .collect();
    let text = serde_json::to_string_pretty(&ours)? + "\n";
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match created {
        Ok(mut file) => {
            use std::io::Write as _;
            file.write_all(text.as_bytes())?;
            return Ok(file.sync_all()?);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    // An empty file: another run is writing it right now.
    let mut recorded = String::new();
    for _ in 0..50 {
        recorded = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !recorded.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut theirs: BTreeMap<String, Settings> = serde_json::from_str(&recorded)
        .with_context(|| format!("{} is not a settings file", path.display()))?;
    for (dataset, ours) in &ours {
        match theirs.get(dataset) {
            Some(recorded) => refuse_other_settings(output, dataset, &path, recorded, ours)?,
            None => {
                theirs.insert(dataset.clone(), ours.clone());
            }
        }
    }
    store::write_text_atomic(&path, &(serde_json::to_string_pretty(&theirs)? + "\n"))
}

/// Removes this shard's temporary files left by a killed run (the shard lock is held, so no
/// live run of this shard owns them; other shards' files are left alone).
pub(crate) fn remove_stale_temporaries(output: &Path, prefixes: &[String]) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(output)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stem = name.trim_start_matches('.');
        let ours = prefixes.iter().any(|p| stem.starts_with(&format!("{p}.")));
        if name.ends_with(".tmp") && ours {
            std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove {name}"))?;
        }
    }
    Ok(())
}

/// Runs (or resumes) shard `shard` of `experiment` into `experiment.output`.
pub fn run(
    experiment: &Experiment,
    table: &GroundTruth,
    data_dir: &Path,
    shard: Shard,
) -> anyhow::Result<SweepSummary> {
    let start = Instant::now();
    let started_unix = unix_seconds();
    let output = experiment.output.as_path();
    let mut inputs = Inputs::load(experiment, data_dir)?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let _lock = ShardLock::acquire(output, &shard.tag())?;
    let done = rows_done(output, experiment, &inputs.settings)?;
    claim_settings(output, &inputs.settings)?;
    inputs.build_samplers(experiment)?;
    let prefixes: Vec<String> = experiment
        .datasets
        .iter()
        .flat_map(|&(d, _)| {
            experiment
                .seeds
                .iter()
                .map(move |&s| file_prefix(d, s, shard))
        })
        .collect();
    remove_stale_temporaries(output, &prefixes)?;
    let cells = shard.select(&experiment.cells);
    let mut jobs = Vec::new();
    let mut skipped = 0;
    // Cell-major order: an interrupted sweep has covered every dataset and seed equally.
    for &index in &cells {
        for &(dataset, _) in &experiment.datasets {
            for &seed in &experiment.seeds {
                if done.contains(&(dataset.name().to_string(), seed, index as u32)) {
                    skipped += 1;
                } else {
                    jobs.push((dataset, seed, index));
                }
            }
        }
    }
    let total = jobs.len();
    let manifest_path = output.join(format!("manifest_{}.json", shard.tag()));
    let earlier = Manifest::read(&manifest_path);
    let mut runs = earlier.as_ref().map_or_else(Vec::new, |m| m.runs.clone());
    // With the lock held, no earlier run of this shard is alive.
    for run in runs.iter_mut().filter(|r| r.status == "running") {
        run.status = "killed".into();
    }
    let this_run = RunRecord {
        git_revision: provenance::GIT_REVISION.into(),
        started_unix,
        finished_unix: None,
        jobs: total,
        status: "running".into(),
    };
    let manifest = |status: &str, runs: Vec<RunRecord>, jobs_done: usize| {
        manifest(
            experiment,
            &inputs.settings,
            shard,
            cells.len(),
            jobs_done,
            status,
            runs,
        )
    };
    if total > 0 {
        let mut running = runs.clone();
        running.push(this_run.clone());
        write_manifest(&manifest_path, &manifest("running", running, skipped)?)?;
    }
    let schema = RowSchema {
        experiment,
        table,
        settings: &inputs.settings,
    };
    let outcome = score_jobs(experiment, table, &inputs, &schema, shard, jobs, start);
    let finished = |status: &str| RunRecord {
        finished_unix: Some(unix_seconds()),
        status: status.into(),
        ..this_run.clone()
    };
    let nan_counts = match outcome {
        Ok(nan_counts) => nan_counts,
        Err(e) => {
            runs.push(finished("failed"));
            // The scoring error is what the user needs; a manifest problem must not hide it.
            if let Ok(failed) = manifest("failed", runs, skipped) {
                let _ = write_manifest(&manifest_path, &failed);
            }
            return Err(e);
        }
    };
    let mut files = Vec::new();
    for prefix in &prefixes {
        let keys = |df: &DataFrame, path: &Path| -> anyhow::Result<Vec<RowKey>> {
            Ok(store::row_identities(df, path)?
                .into_iter()
                .map(|(k, _)| k)
                .collect())
        };
        if let Some(file) = store::merge_parts(output, prefix, keys)? {
            files.push(file);
        }
    }
    let finished_manifest = match earlier {
        // Nothing ran: the rows are those the earlier manifest describes (plus any parts of a
        // killed run merged just now), whatever this invocation's config or overrides say.
        Some(mut earlier) if total == 0 => {
            let fresh = manifest("finished", runs, skipped)?;
            earlier.status = "finished".into();
            earlier.runs = fresh.runs;
            earlier.rows_in_files = fresh.rows_in_files;
            earlier.revisions = fresh.revisions;
            earlier
        }
        _ => {
            if total > 0 {
                runs.push(finished("finished"));
            }
            manifest("finished", runs, skipped + total)?
        }
    };
    write_manifest(&manifest_path, &finished_manifest)?;
    Ok(SweepSummary {
        scored: total,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
        nan_counts,
        files,
    })
}

impl Manifest {
    /// The manifest at `path`, if there is one of this format.
    pub fn read(path: &Path) -> Option<Manifest> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

fn manifest(
    experiment: &Experiment,
    settings: &BTreeMap<Dataset, Settings>,
    shard: Shard,
    cells_in_shard: usize,
    jobs_done: usize,
    status: &str,
    runs: Vec<RunRecord>,
) -> anyhow::Result<Manifest> {
    let mut rows_in_files = BTreeMap::new();
    let mut revisions = BTreeSet::new();
    for (path, df) in store::read_dir(&experiment.output)? {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into());
        if name.ends_with(&format!("_{}.parquet", shard.tag())) {
            rows_in_files.insert(name, df.height());
            let column = df.column(column::GIT_REVISION)?.str()?.clone();
            revisions.extend(column.iter().flatten().map(str::to_string));
        }
    }
    Ok(Manifest {
        shard: format!("{}/{}", shard.index, shard.count),
        status: status.into(),
        settings: settings
            .iter()
            .map(|(d, s)| (d.name().to_string(), s.clone()))
            .collect(),
        experiment: ManifestExperiment {
            config: experiment.name.clone(),
            config_text: experiment.text.clone(),
            overrides: experiment.overrides.clone(),
            cells: experiment.cell_selection.clone(),
            cell_count: experiment.cells.len(),
            datasets: experiment
                .datasets
                .iter()
                .map(|(d, _)| d.name().to_string())
                .collect(),
            seeds: experiment.seeds.clone(),
            proxies: experiment
                .proxies
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
        },
        jobs_in_shard: cells_in_shard * experiment.datasets.len() * experiment.seeds.len(),
        jobs_done,
        rows_in_files,
        revisions,
        runs,
    })
}

fn write_manifest(path: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    store::write_text_atomic(path, &(serde_json::to_string_pretty(manifest)? + "\n"))
}

/// Runs `jobs` on the experiment's workers, writing part files of `chunk` rows as they finish;
/// returns the NaN count per proxy. Finished rows are written even when a job fails.
fn score_jobs(
    experiment: &Experiment,
    table: &GroundTruth,
    inputs: &Inputs,
    schema: &RowSchema,
    shard: Shard,
    jobs: Vec<(Dataset, u64, usize)>,
    start: Instant,
) -> anyhow::Result<Vec<(String, usize)>> {
    let output = experiment.output.as_path();
    let total = jobs.len();
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} jobs  {per_sec}  ETA {eta}  {msg}",
        )?
        .progress_chars("=> "),
    );
    let workers = match experiment.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(total.max(1));
    let queue = Arc::new(Mutex::new(jobs.into_iter()));
    let (tx, rx) = mpsc::channel::<anyhow::Result<Row>>();
    let mut buffers: BTreeMap<(Dataset, u64), Vec<Row>> = BTreeMap::new();
    let mut nan_counts: Vec<(String, usize)> = experiment
        .proxies
        .iter()
        .map(|p| (p.name().to_string(), 0))
        .collect();
    let mut part = 0usize;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let write_part = |rows: &mut Vec<Row>,
                      dataset: Dataset,
                      seed: u64,
                      part: &mut usize|
     -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut df = schema.frame(rows)?;
        *part += 1;
        // Unique per run (process and start time), so a rerun never overwrites an earlier part.
        let name = format!(
            "{}.part-{run_id}-{:05}.parquet",
            file_prefix(dataset, seed, shard),
            part
        );
        store::write_atomic(&mut df, &output.join(name))?;
        rows.clear();
        Ok(())
    };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (queue, tx, samplers) = (queue.clone(), tx.clone(), &inputs.samplers);
            scope.spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool,
                    Err(e) => return tx.send(Err(e.into())).unwrap_or(()),
                };
                let engine = Engine::new(experiment.backend, experiment.precision);
                loop {
                    let job = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some((dataset, seed, index)) = job else {
                        break;
                    };
                    let result = pool.install(|| -> anyhow::Result<Row> {
                        let cell = table.cell(index)?;
                        let network = Nb201Network::new(cell, dataset.num_classes());
                        let weights = Weights::init(&network, seed);
                        let data = SampledBatches {
                            sampler: &samplers[&(dataset, seed)],
                            key: u64::from(cell.code()),
                        };
                        let scores =
                            engine.score_from(&network, &weights, &data, &experiment.proxies)?;
                        Ok(Row {
                            index: index as u32,
                            dataset,
                            seed,
                            scores,
                        })
                    });
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            let row = match result {
                Ok(row) => row,
                Err(e) => {
                    // Stop handing out work; finished rows are written below.
                    queue
                        .lock()
                        .map(|mut q| q.by_ref().for_each(drop))
                        .unwrap_or(());
                    return Err(e);
                }
            };
            for (count, p) in nan_counts.iter_mut().zip(&row.scores.proxies) {
                count.1 += usize::from(p.score.total.is_nan());
            }
            let key = (row.dataset, row.seed);
            let buffer = buffers.entry(key).or_default();
            buffer.push(row);
            if buffer.len() >= experiment.chunk {
                write_part(buffer, key.0, key.1, &mut part)?;
            }
            progress.inc(1);
            if progress.is_hidden() {
                // No terminal (a log file, CI): a plain line every chunk of jobs instead.
                let done = progress.position() as usize;
                if done.is_multiple_of(experiment.chunk) || done == total {
                    let elapsed = start.elapsed().as_secs_f64();
                    let eta = elapsed / done as f64 * (total - done) as f64;
                    eprintln!(
                        "{done}/{total} jobs, {:.2} jobs/s, ETA {:.0} s",
                        done as f64 / elapsed,
                        eta
                    );
                }
            }
        }
        Ok(())
    })
    .and_then(|()| {
        for ((dataset, seed), rows) in buffers.iter_mut() {
            write_part(rows, *dataset, *seed, &mut part)?;
        }
        Ok(())
    })
    .inspect_err(|_| {
        // Keep what finished even when a job failed.
        for ((dataset, seed), rows) in buffers.iter_mut() {
            let _ = write_part(rows, *dataset, *seed, &mut part);
        }
    })?;
    progress.finish_and_clear();
    Ok(nan_counts)
}
