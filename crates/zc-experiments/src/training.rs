//! Training experiments (`zc train`): reduced training (EcoNAS and its variants) of many cells,
//! one Parquet row per (cell, setting, seed, epoch).
//!
//! A job is one training run: a cell at one setting (`rRcC`) from one seed, every epoch
//! evaluated on the test images. Each finished job is written at once as its own part file,
//! so a killed run loses only the jobs it was in the middle of; a rerun skips every job whose
//! rows are on disk. A directory holds the runs of one [`TrainIdentity`] (data, recipe,
//! precision): a rerun with another is refused before any work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::{Column, DataFrame, DataType};
use serde::{Deserialize, Serialize};
use zc_benchmark::GroundTruth;
use zc_data::{Dataset, ImageSet, LabelLayout};
use zc_proxies::{Nb201Network, Precision, Weights};
use zc_train::{Recipe, Setting, TrainData, Training};

use crate::config::{CellSpec, parse_precision, reject_duplicates};
use crate::provenance;
use crate::store::{self, ShardLock};
use crate::sweep::Shard;

/// Column names of a training row.
pub mod column {
    /// Dataset name.
    pub const DATASET: &str = "dataset";
    /// Seed of the initial weights and of the data order and augmentation (u64).
    pub const SEED: &str = "seed";
    /// Official NB201 index (u32).
    pub const INDEX: &str = "index";
    /// Architecture string.
    pub const ARCH: &str = "arch";
    /// Reduced-training setting, e.g. `r8c4`.
    pub const SETTING: &str = "setting";
    /// Epoch after which the row was read (0: untrained).
    pub const EPOCH: &str = "epoch";
    /// Mean training loss of the epoch (NaN at epoch 0).
    pub const TRAIN_LOSS: &str = "train_loss";
    /// Mean test cross-entropy.
    pub const TEST_LOSS: &str = "test_loss";
    /// Test accuracy, percent.
    pub const TEST_ACCURACY: &str = "test_accuracy";
    /// Seconds of the epoch's training steps.
    pub const TRAIN_SECONDS: &str = "train_seconds";
    /// Seconds of the epoch's evaluation.
    pub const EVAL_SECONDS: &str = "eval_seconds";
    /// Forward FLOPs of one epoch's training images (per-image FLOPs times images).
    pub const EPOCH_FLOPS: &str = "epoch_flops";
    /// The same for the real network (r32c16) on the same images: the cost unit.
    pub const BASELINE_EPOCH_FLOPS: &str = "baseline_epoch_flops";
    /// What the data is (`shipped CIFAR-10 sample: ...` or `official CIFAR-10: ...`).
    pub const DATA: &str = "data";
    /// SHA-256 of the training and test image files.
    pub const IMAGES_SHA256: &str = "images_sha256";
    /// Epochs of the recipe (the cosine period).
    pub const EPOCHS: &str = "epochs";
    /// Training images per step.
    pub const BATCH_SIZE: &str = "batch_size";
    /// `f32` or `f64`.
    pub const PRECISION: &str = "precision";
    /// Compute backend.
    pub const BACKEND: &str = "backend";
    /// Config name.
    pub const CONFIG: &str = "config";
    /// Harness version.
    pub const VERSION: &str = "version";
    /// Git revision of the binary.
    pub const GIT_REVISION: &str = "git_revision";
}

/// A training config as written (YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Name recorded in every row.
    pub name: String,
    /// Dataset (only `cifar10`: the paper's reduced-training experiments).
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// `shipped` (the shipped 1,000 training images, a stratified part held out for testing)
    /// or `{official: DIR}` (the official CIFAR-10 binary files in DIR).
    #[serde(default)]
    pub data: DataSpec,
    /// Images of each class held out for testing from the shipped sample.
    #[serde(default = "default_test_per_class")]
    pub test_per_class: usize,
    /// Reduced settings, e.g. `[r8c4, r16c8]`.
    pub settings: Vec<String>,
    /// Epochs (the cosine schedule's period).
    pub epochs: usize,
    /// Training images per step.
    pub batch_size: usize,
    /// Seeds (initial weights, data order, augmentation).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Which cells, as in sweep configs.
    pub cells: CellSpec,
    /// `f32` (as the reference) or `f64`.
    #[serde(default = "default_precision")]
    pub precision: String,
    /// Output directory (relative to the project directory).
    pub output: PathBuf,
    /// Runs trained at once, one per core (0 = as many as cores).
    #[serde(default)]
    pub workers: usize,
}

/// Where the training images come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// The shipped sample, with a stratified held-out test part.
    #[default]
    Shipped,
    /// The official CIFAR-10 binary files (`data_batch_1.bin` .. `data_batch_5.bin`,
    /// `test_batch.bin`) in a directory.
    Official(PathBuf),
}

fn default_dataset() -> String {
    "cifar10".into()
}
fn default_test_per_class() -> usize {
    20
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_precision() -> String {
    "f32".into()
}

/// A validated training experiment.
#[derive(Debug, Clone)]
pub struct TrainExperiment {
    /// Config name.
    pub name: String,
    /// Config text as written.
    pub text: String,
    /// Dataset.
    pub dataset: Dataset,
    /// Where the images come from.
    pub data: DataSpec,
    /// Held-out test images per class (shipped data).
    pub test_per_class: usize,
    /// Settings, in config order.
    pub settings: Vec<Setting>,
    /// The recipe.
    pub recipe: Recipe,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Official indices of the cells.
    pub cells: Vec<usize>,
    /// How the cells were chosen.
    pub cell_selection: String,
    /// Precision.
    pub precision: Precision,
    /// Output directory.
    pub output: PathBuf,
    /// Parallel runs (0 = one per core).
    pub workers: usize,
    /// Command-line overrides, as typed.
    pub overrides: Vec<String>,
}

impl TrainExperiment {
    /// Reads and validates a training config.
    pub fn load(path: &Path, table: &GroundTruth) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: TrainConfig = serde_norway::from_str(&text)
            .with_context(|| format!("{} is not a valid training config", path.display()))?;
        Self::resolve(config, text, table).with_context(|| format!("in {}", path.display()))
    }

    /// Validates a parsed config.
    pub fn resolve(config: TrainConfig, text: String, table: &GroundTruth) -> anyhow::Result<Self> {
        let dataset: Dataset = config.dataset.parse().context("dataset")?;
        if dataset != Dataset::Cifar10 {
            bail!(
                "dataset: only cifar10 is supported (the paper's reduced-training experiments), not {}",
                dataset.name()
            );
        }
        if config.settings.is_empty() {
            bail!("settings: at least one setting (e.g. r8c4) is needed");
        }
        let settings = config
            .settings
            .iter()
            .map(|s| s.parse::<Setting>().context("settings"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        reject_duplicates("settings", settings.iter().copied())?;
        let recipe =
            Recipe::paper(config.epochs, config.batch_size).context("epochs/batch_size")?;
        if config.seeds.is_empty() {
            bail!("seeds: at least one seed is needed");
        }
        reject_duplicates("seeds", config.seeds.iter().copied())?;
        if matches!(config.data, DataSpec::Shipped) && config.test_per_class == 0 {
            bail!("test_per_class: must be at least 1 with the shipped data");
        }
        let (cells, cell_selection) = config.cells.resolve(table)?;
        Ok(TrainExperiment {
            name: config.name,
            text,
            dataset,
            data: config.data,
            test_per_class: config.test_per_class,
            settings,
            recipe,
            seeds: config.seeds,
            cells,
            cell_selection,
            precision: parse_precision(&config.precision)?,
            output: config.output,
            workers: config.workers,
            overrides: Vec::new(),
        })
    }

    /// Trains on the official CIFAR-10 files in `dir` instead (`--official DIR`).
    pub fn set_official(&mut self, dir: PathBuf) {
        self.overrides.push(format!("--official {}", dir.display()));
        self.data = DataSpec::Official(dir);
    }

    /// Trains every cell instead of the config's selection (`--all-cells`).
    pub fn select_all_cells(&mut self, table: &GroundTruth) {
        self.overrides.push("--all-cells".into());
        self.cells = (0..table.len()).collect();
        self.cell_selection = "all".into();
    }

    /// Writes into `output` instead (`--output`).
    pub fn set_output(&mut self, output: PathBuf) {
        self.overrides
            .push(format!("--output {}", output.display()));
        self.output = output;
    }

    /// Trains `workers` runs at once (`--workers`).
    pub fn set_workers(&mut self, workers: usize) {
        self.overrides.push(format!("--workers {workers}"));
        self.workers = workers;
    }
}

/// Everything besides (dataset, seed, cell, setting, epoch) that changes a training row's
/// values. A directory holds rows of one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainIdentity {
    /// Dataset.
    pub dataset: String,
    /// What the data is.
    pub data: String,
    /// SHA-256 of the training and test files.
    pub images_sha256: String,
    /// Epochs of the recipe.
    pub epochs: u32,
    /// Images per step.
    pub batch_size: u32,
    /// Precision.
    pub precision: String,
    /// Backend.
    pub backend: String,
}

impl TrainIdentity {
    /// Each differing setting as `NAME A there, B here` (`there`: `other`).
    fn differences(&self, other: &TrainIdentity, here: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, a: &str, b: &str| {
            if a != b {
                out.push(format!("{name} {a} there, {here} {b}"));
            }
        };
        check("dataset", &other.dataset, &self.dataset);
        check("data", &other.data, &self.data);
        check("images_sha256", &other.images_sha256, &self.images_sha256);
        check(
            "epochs",
            &other.epochs.to_string(),
            &self.epochs.to_string(),
        );
        check(
            "batch_size",
            &other.batch_size.to_string(),
            &self.batch_size.to_string(),
        );
        check("precision", &other.precision, &self.precision);
        check("backend", &other.backend, &self.backend);
        out
    }
}

/// Reads the images of `experiment` and splits them into training and test sets.
pub fn load_data(experiment: &TrainExperiment, data_dir: &Path) -> anyhow::Result<TrainData> {
    match &experiment.data {
        DataSpec::Shipped => {
            let set = ImageSet::read_shipped(data_dir, experiment.dataset)
                .context("the shipped CIFAR-10 training sample")?;
            let data = TrainData::held_out(Arc::new(set), experiment.test_per_class)?;
            let description = format!(
                "shipped CIFAR-10 sample (data-reduced, not the paper's 50,000 images): {}",
                data.description()
            );
            Ok(data.described(description))
        }
        DataSpec::Official(dir) => {
            let train_files: Vec<PathBuf> = (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .collect();
            let test_file = dir.join("test_batch.bin");
            for file in train_files.iter().chain([&test_file]) {
                if !file.is_file() {
                    bail!(
                        "{} is missing: `data: {{official: DIR}}` (or --official DIR) needs the official \
                         CIFAR-10 binary files data_batch_1.bin .. data_batch_5.bin and test_batch.bin in DIR",
                        file.display()
                    );
                }
            }
            let train = ImageSet::read(&train_files, Dataset::Cifar10, LabelLayout::OneByte)?;
            let test = ImageSet::read(&[&test_file], Dataset::Cifar10, LabelLayout::OneByte)?;
            let data = TrainData::separate(Arc::new(train), Arc::new(test))?;
            let description = format!("official CIFAR-10: {}", data.description());
            Ok(data.described(description))
        }
    }
}

/// What a training run of `zc train` did.
#[derive(Debug)]
pub struct TrainSummary {
    /// Jobs trained by this invocation.
    pub trained: usize,
    /// Jobs whose rows were already on disk.
    pub skipped: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// The merged files.
    pub files: Vec<PathBuf>,
}

/// One finished job's rows.
struct JobRows {
    seed: u64,
    index: usize,
    setting: Setting,
    reports: Vec<zc_train::EpochReport>,
}

/// The manifest of one shard of a training directory.
#[derive(Debug, Serialize, Deserialize)]
pub struct TrainManifest {
    /// `K/N`.
    pub shard: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// The identity of every row.
    pub identity: TrainIdentity,
    /// Config name.
    pub config: String,
    /// Config text as written.
    pub config_text: String,
    /// Command-line overrides.
    pub overrides: Vec<String>,
    /// How the cells were chosen.
    pub cells: String,
    /// Jobs (cell, setting, seed) of the shard.
    pub jobs_in_shard: usize,
    /// Jobs of the shard whose rows are on disk.
    pub jobs_done: usize,
    /// Revision of the binary of the latest run.
    pub git_revision: String,
    /// When the latest run started and ended (Unix seconds).
    pub started_unix: u64,
    /// End of the latest run, if it ended.
    pub finished_unix: Option<u64>,
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `train_{dataset}_shardKofN`: the file prefix of a shard's rows.
pub fn file_prefix(dataset: Dataset, shard: Shard) -> String {
    format!("train_{}_{}", dataset.name(), shard.tag())
}

/// Whether `name` is a training results file (merged or part).
pub fn is_train_file_name(name: &str) -> bool {
    name.starts_with("train_") && name.ends_with(".parquet")
}

/// Runs (or resumes) a training experiment's shard on `data` (from [`load_data`]).
pub fn run(
    experiment: &TrainExperiment,
    table: &GroundTruth,
    data: &TrainData,
    shard: Shard,
) -> anyhow::Result<TrainSummary> {
    let start = Instant::now();
    let started_unix = unix_seconds();
    let output = experiment.output.as_path();
    let identity = TrainIdentity {
        dataset: experiment.dataset.name().to_string(),
        data: data.description().to_string(),
        images_sha256: data.images_sha256().to_string(),
        epochs: experiment.recipe.epochs as u32,
        batch_size: experiment.recipe.batch_size as u32,
        precision: experiment.precision.name().to_string(),
        backend: "flex".into(),
    };
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let _lock = ShardLock::acquire(output, &format!("train-{}", shard.tag()))?;
    let existing = read_runs(&[output.to_path_buf()])?;
    if let Some(there) = &existing.identity
        && there != &identity
    {
        bail!(
            "{} holds training rows of other settings ({}); train into another directory (--output)",
            output.display(),
            identity.differences(there, "this run").join(", ")
        );
    }
    let prefix = file_prefix(experiment.dataset, shard);
    crate::sweep::remove_stale_temporaries(output, std::slice::from_ref(&prefix))?;
    let cells = shard.select(&experiment.cells);
    let mut jobs = Vec::new();
    let mut skipped = 0;
    // Cell-major: an interrupted run has covered every setting and seed of its cells.
    for &index in &cells {
        for &setting in &experiment.settings {
            for &seed in &experiment.seeds {
                let key = (seed, index, setting.to_string());
                if existing
                    .runs
                    .get(&key)
                    .is_some_and(|r| r.len() == experiment.recipe.epochs + 1)
                {
                    skipped += 1;
                } else {
                    jobs.push((seed, index, setting));
                }
            }
        }
    }
    let total = jobs.len();
    let manifest_path = output.join(format!("train_manifest_{}.json", shard.tag()));
    let manifest = |status: &str, done: usize, finished: Option<u64>| TrainManifest {
        shard: format!("{}/{}", shard.index, shard.count),
        status: status.into(),
        identity: identity.clone(),
        config: experiment.name.clone(),
        config_text: experiment.text.clone(),
        overrides: experiment.overrides.clone(),
        cells: experiment.cell_selection.clone(),
        jobs_in_shard: cells.len() * experiment.settings.len() * experiment.seeds.len(),
        jobs_done: done,
        git_revision: provenance::GIT_REVISION.into(),
        started_unix,
        finished_unix: finished,
    };
    if total == 0 {
        store::merge_parts(output, &prefix, job_keys)?;
        // A run killed after its last part file left its manifest `running`: it is finished.
        let stale = std::fs::read_to_string(&manifest_path)
            .ok()
            .and_then(|t| serde_json::from_str::<TrainManifest>(&t).ok())
            .is_some_and(|m| m.status != "finished");
        if stale {
            write_manifest(
                &manifest_path,
                &manifest("finished", skipped, Some(unix_seconds())),
            )?;
        }
        return Ok(TrainSummary {
            trained: 0,
            skipped,
            seconds: start.elapsed().as_secs_f64(),
            files: existing_files(output, &prefix),
        });
    }
    write_manifest(&manifest_path, &manifest("running", skipped, None))?;
    let (finished, outcome) = train_jobs(experiment, table, data, &identity, shard, jobs);
    let done = skipped + finished;
    let status = if outcome.is_ok() {
        "finished"
    } else {
        "failed"
    };
    let merged = store::merge_parts(output, &prefix, job_keys);
    let _ = write_manifest(
        &manifest_path,
        &manifest(status, done, Some(unix_seconds())),
    );
    outcome?;
    merged?;
    Ok(TrainSummary {
        trained: finished,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
        files: existing_files(output, &prefix),
    })
}

fn existing_files(output: &Path, prefix: &str) -> Vec<PathBuf> {
    let merged = output.join(format!("{prefix}.parquet"));
    if merged.exists() {
        vec![merged]
    } else {
        Vec::new()
    }
}

fn write_manifest(path: &Path, manifest: &TrainManifest) -> anyhow::Result<()> {
    store::write_text_atomic(path, &(serde_json::to_string_pretty(manifest)? + "\n"))
}

/// Trains `jobs` on `experiment.workers` threads (one core each), writing each finished job
/// as a part file; returns how many were written, and the first error. After an error no new
/// job starts, but the jobs already running finish and are written.
fn train_jobs(
    experiment: &TrainExperiment,
    table: &GroundTruth,
    data: &TrainData,
    identity: &TrainIdentity,
    shard: Shard,
    jobs: Vec<(u64, usize, Setting)>,
) -> (usize, anyhow::Result<()>) {
    let mut finished = 0usize;
    let result = train_jobs_counted(
        experiment,
        table,
        data,
        identity,
        shard,
        jobs,
        &mut finished,
    );
    (finished, result)
}

fn train_jobs_counted(
    experiment: &TrainExperiment,
    table: &GroundTruth,
    data: &TrainData,
    identity: &TrainIdentity,
    shard: Shard,
    jobs: Vec<(u64, usize, Setting)>,
    finished: &mut usize,
) -> anyhow::Result<()> {
    let output = experiment.output.as_path();
    let total = jobs.len();
    let epochs = experiment.recipe.epochs;
    // Progress in epochs (a job is minutes): the ETA moves with every epoch of every worker.
    let progress = ProgressBar::new((total * epochs) as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} epochs  ETA {eta}  {msg}",
        )?
        .progress_chars("=> "),
    );
    let workers = match experiment.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(total.max(1));
    let queue = Arc::new(Mutex::new(jobs.into_iter()));
    enum Message {
        Epoch,
        Done(anyhow::Result<JobRows>),
    }
    let (tx, rx) = mpsc::channel::<Message>();
    let run_id = format!("{}-{}", std::process::id(), unix_seconds());
    let started = Instant::now();
    let mut first_error = None;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (queue, tx) = (queue.clone(), tx.clone());
            scope.spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool,
                    Err(e) => return tx.send(Message::Done(Err(e.into()))).unwrap_or(()),
                };
                loop {
                    let job = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some((seed, index, setting)) = job else {
                        break;
                    };
                    let result = pool.install(|| -> anyhow::Result<JobRows> {
                        let cell = table.cell(index)?;
                        let network =
                            Nb201Network::with_channels(cell, data.num_classes(), setting.channels);
                        let weights = Weights::init(&network, seed);
                        let mut training = Training::new(
                            &network,
                            &weights,
                            experiment.recipe,
                            experiment.precision,
                        );
                        let mut reports = Vec::with_capacity(epochs + 1);
                        training
                            .run(data, setting.resolution, seed, |report| {
                                reports.push(*report);
                                if report.epoch > 0 {
                                    let _ = tx.send(Message::Epoch);
                                }
                                true
                            })
                            .with_context(|| {
                                format!("training cell {index} at {setting}, seed {seed}")
                            })?;
                        Ok(JobRows {
                            seed,
                            index,
                            setting,
                            reports,
                        })
                    });
                    if tx.send(Message::Done(result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for message in rx {
            match message {
                Message::Epoch => {
                    progress.inc(1);
                    if progress.is_hidden() {
                        let done = progress.position() as usize;
                        if done.is_multiple_of(epochs) {
                            let elapsed = started.elapsed().as_secs_f64();
                            eprintln!(
                                "{done}/{} epochs, ETA {:.0} s",
                                total * epochs,
                                elapsed / done as f64 * (total * epochs - done) as f64
                            );
                        }
                    }
                }
                Message::Done(Ok(rows)) => {
                    let mut df = frame(experiment, table, data, identity, &rows)?;
                    let name = format!(
                        "{}.part-{run_id}-{:05}.parquet",
                        file_prefix(experiment.dataset, shard),
                        *finished
                    );
                    store::write_atomic(&mut df, &output.join(name))?;
                    *finished += 1;
                    progress.set_message(format!("{finished}/{total} runs"));
                }
                Message::Done(Err(e)) => {
                    // No new job; the running ones finish and are written.
                    queue
                        .lock()
                        .map(|mut q| q.by_ref().for_each(drop))
                        .unwrap_or(());
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    progress.finish_and_clear();
    Ok(())
}

/// The rows of one finished job.
fn frame(
    experiment: &TrainExperiment,
    table: &GroundTruth,
    data: &TrainData,
    identity: &TrainIdentity,
    rows: &JobRows,
) -> anyhow::Result<DataFrame> {
    let cell = table.cell(rows.index)?;
    let n = rows.reports.len();
    let classes = data.num_classes();
    let images = data.train_len() as u64;
    let epoch_flops = rows.setting.flops_per_image(cell, classes) * images;
    let baseline_flops = Setting::BASELINE.flops_per_image(cell, classes) * images;
    let text = |v: &str| vec![v.to_string(); n];
    let reports = &rows.reports;
    let columns = vec![
        Column::new(column::DATASET.into(), text(experiment.dataset.name())),
        Column::new(column::SEED.into(), vec![rows.seed; n]),
        Column::new(column::INDEX.into(), vec![rows.index as u32; n]),
        Column::new(column::ARCH.into(), text(&cell.to_string())),
        Column::new(column::SETTING.into(), text(&rows.setting.to_string())),
        Column::new(
            column::EPOCH.into(),
            reports.iter().map(|r| r.epoch as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            column::TRAIN_LOSS.into(),
            reports.iter().map(|r| r.train_loss).collect::<Vec<_>>(),
        ),
        Column::new(
            column::TEST_LOSS.into(),
            reports.iter().map(|r| r.test.loss).collect::<Vec<_>>(),
        ),
        Column::new(
            column::TEST_ACCURACY.into(),
            reports
                .iter()
                .map(|r| 100.0 * r.test.accuracy)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            column::TRAIN_SECONDS.into(),
            reports.iter().map(|r| r.train_seconds).collect::<Vec<_>>(),
        ),
        Column::new(
            column::EVAL_SECONDS.into(),
            reports.iter().map(|r| r.eval_seconds).collect::<Vec<_>>(),
        ),
        Column::new(column::EPOCH_FLOPS.into(), vec![epoch_flops; n]),
        Column::new(column::BASELINE_EPOCH_FLOPS.into(), vec![baseline_flops; n]),
        Column::new(column::DATA.into(), text(&identity.data)),
        Column::new(column::IMAGES_SHA256.into(), text(&identity.images_sha256)),
        Column::new(column::EPOCHS.into(), vec![identity.epochs; n]),
        Column::new(column::BATCH_SIZE.into(), vec![identity.batch_size; n]),
        Column::new(column::PRECISION.into(), text(&identity.precision)),
        Column::new(column::BACKEND.into(), text(&identity.backend)),
        Column::new(column::CONFIG.into(), text(&experiment.name)),
        Column::new(column::VERSION.into(), text(provenance::VERSION)),
        Column::new(column::GIT_REVISION.into(), text(provenance::GIT_REVISION)),
    ];
    Ok(DataFrame::new(n, columns)?)
}

/// (seed, index, setting, epoch) of every row.
fn job_keys(df: &DataFrame, path: &Path) -> anyhow::Result<Vec<(u64, u32, String, u32)>> {
    let need = |name: &str| {
        df.column(name).with_context(|| {
            format!(
                "{} has no `{name}` column: not a training file",
                path.display()
            )
        })
    };
    let seeds: Vec<Option<u64>> = need(column::SEED)?
        .cast(&DataType::UInt64)?
        .u64()?
        .iter()
        .collect();
    let indices: Vec<Option<u32>> = need(column::INDEX)?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .collect();
    let epochs: Vec<Option<u32>> = need(column::EPOCH)?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .collect();
    let settings = need(column::SETTING)?.str()?.clone();
    (0..df.height())
        .map(
            |i| match (seeds[i], indices[i], settings.get(i), epochs[i]) {
                (Some(s), Some(x), Some(t), Some(e)) => Ok((s, x, t.to_string(), e)),
                _ => bail!("{}: row {i} has an empty key column", path.display()),
            },
        )
        .collect()
}

/// One training run read back: its rows by epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    /// Epoch.
    pub epoch: usize,
    /// Test accuracy, percent.
    pub test_accuracy: f64,
    /// Seconds of training and evaluation of this epoch.
    pub seconds: f64,
    /// Forward FLOPs of the epoch.
    pub epoch_flops: f64,
    /// Forward FLOPs of a baseline (r32c16) epoch on the same images.
    pub baseline_epoch_flops: f64,
}

/// Training results read from files or directories.
#[derive(Debug, Default)]
pub struct TrainRuns {
    /// The identity of the rows (one per input set).
    pub identity: Option<TrainIdentity>,
    /// (seed, index, setting) -> rows sorted by epoch.
    pub runs: BTreeMap<(u64, usize, String), Vec<EpochRow>>,
    /// Dataset of the rows.
    pub dataset: Option<String>,
    /// Git revisions of the rows.
    pub revisions: BTreeSet<String>,
}

/// Reads training files (`train_*.parquet`, merged or parts) from files or directories. Rows
/// of two identities are an error; a row read twice counts once.
pub fn read_runs(inputs: &[PathBuf]) -> anyhow::Result<TrainRuns> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for entry in std::fs::read_dir(input)
                .with_context(|| format!("cannot list {}", input.display()))?
            {
                let path = entry?.path();
                if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_train_file_name)
                {
                    files.push(path);
                }
            }
        } else if input.exists() {
            files.push(input.clone());
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    files.sort();
    let mut out = TrainRuns::default();
    let mut seen = BTreeSet::new();
    for path in files {
        let df = match store::read_parquet(&path) {
            Ok(df) => df,
            // A part file merged away by a run that finished meanwhile.
            Err(_) if !path.exists() => continue,
            Err(e) => return Err(e),
        };
        let keys = job_keys(&df, &path)?;
        let text = |name: &str| -> anyhow::Result<Vec<String>> {
            Ok(df
                .column(name)
                .with_context(|| format!("{} has no `{name}` column", path.display()))?
                .cast(&DataType::String)?
                .str()?
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect())
        };
        let number = |name: &str| -> anyhow::Result<Vec<f64>> {
            Ok(df
                .column(name)
                .with_context(|| format!("{} has no `{name}` column", path.display()))?
                .cast(&DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        };
        let (data, sha, precision, backend, dataset, revision) = (
            text(column::DATA)?,
            text(column::IMAGES_SHA256)?,
            text(column::PRECISION)?,
            text(column::BACKEND)?,
            text(column::DATASET)?,
            text(column::GIT_REVISION)?,
        );
        let (epochs, batch) = (number(column::EPOCHS)?, number(column::BATCH_SIZE)?);
        let (accuracy, train_s, eval_s, flops, base) = (
            number(column::TEST_ACCURACY)?,
            number(column::TRAIN_SECONDS)?,
            number(column::EVAL_SECONDS)?,
            number(column::EPOCH_FLOPS)?,
            number(column::BASELINE_EPOCH_FLOPS)?,
        );
        for (i, key) in keys.into_iter().enumerate() {
            let identity = TrainIdentity {
                dataset: dataset[i].clone(),
                data: data[i].clone(),
                images_sha256: sha[i].clone(),
                epochs: epochs[i] as u32,
                batch_size: batch[i] as u32,
                precision: precision[i].clone(),
                backend: backend[i].clone(),
            };
            match &out.identity {
                Some(first) if first != &identity => bail!(
                    "{} holds training rows of other settings than the files read before it \
                     ({}); give inputs of one training setup",
                    path.display(),
                    identity.differences(first, "in this file").join(", ")
                ),
                Some(_) => {}
                None => out.identity = Some(identity),
            }
            out.dataset.get_or_insert_with(|| dataset[i].clone());
            out.revisions.insert(revision[i].clone());
            if !seen.insert(key.clone()) {
                continue;
            }
            let (seed, index, setting, epoch) = key;
            out.runs
                .entry((seed, index as usize, setting))
                .or_default()
                .push(EpochRow {
                    epoch: epoch as usize,
                    test_accuracy: accuracy[i],
                    seconds: train_s[i] + eval_s[i],
                    epoch_flops: flops[i],
                    baseline_epoch_flops: base[i],
                });
        }
    }
    for rows in out.runs.values_mut() {
        rows.sort_by_key(|r| r.epoch);
    }
    Ok(out)
}
