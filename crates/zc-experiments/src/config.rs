//! Experiment configs (YAML in `experiments/`): what to score, on which data, into which output.
//!
//! Unknown keys are rejected (with the key's name), and every value is checked when the config
//! is resolved into an [`Experiment`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::{DataLoad, Dataset};
use zc_proxies::{Backend, Precision, Proxy, proxy};
use zc_space::{Cell, sample_cells};

/// A config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name recorded in every result row.
    pub name: String,
    /// Search space; only `nb201`.
    #[serde(default = "default_space")]
    pub search_space: String,
    /// Datasets and their ground-truth targets.
    pub datasets: Vec<DatasetEntry>,
    /// Proxy names (see `zc proxies`).
    pub proxies: Vec<String>,
    /// Minibatch size of the `random` data load.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `random` (a fresh random batch per cell) or `{per_class: k}`.
    #[serde(default)]
    pub dataload: DataLoadSpec,
    /// Seeds: each seed re-draws weights and minibatches.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Which cells: `all`, `{sample: N, seed: S}` or `{list: [index or arch string, ...]}`.
    pub cells: CellSpec,
    /// `flex` (CPU) or `cuda` (needs the `cuda` build feature).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// `f32` (as the reference) or `f64`.
    #[serde(default = "default_precision")]
    pub precision: String,
    /// Output directory of the sweep's Parquet files (a relative path is relative to the project
    /// directory: the nearest directory at or above the current one that holds `data/nb201/`).
    pub output: PathBuf,
    /// Cells scored at once, one per core (0 = as many as cores).
    #[serde(default)]
    pub workers: usize,
    /// Rows per Parquet part file: at most this much work is lost to an interruption.
    #[serde(default = "default_chunk")]
    pub chunk: usize,
}

/// A dataset and the ground-truth metric its proxies are compared with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// `cifar10`, `cifar100` or `ImageNet16-120`.
    pub name: String,
    /// A metric name (`test`, `valid_oritest_1seed`, ...) or `paper` (the paper's target).
    #[serde(default = "default_target")]
    pub target: String,
}

/// How minibatches are drawn: `random` or `{per_class: k}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "RawChoice")]
pub enum DataLoadSpec {
    /// `batch_size` distinct random training images.
    #[default]
    Random,
    /// `per_class` images of every class.
    PerClass(usize),
}

/// Which cells to score: `all`, `{sample: N, seed: S}` (optionally `first: K`: the first K
/// cells of that sample, so that a smaller experiment covers cells of a larger one) or
/// `{list: [index or arch string, ...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawChoice")]
pub enum CellSpec {
    /// All 15,625 cells.
    All,
    /// A uniform sample without replacement.
    Sample {
        /// Number of cells.
        n: usize,
        /// Seed of the sample.
        seed: u64,
        /// Keep only the first this many cells of the sample.
        first: Option<usize>,
    },
    /// Explicit cells: official indices or architecture strings.
    List(Vec<CellRef>),
}

impl CellSpec {
    /// The official indices of the cells, and how they were chosen (for manifests). Cells
    /// listed twice are an error.
    pub fn resolve(&self, table: &GroundTruth) -> anyhow::Result<(Vec<usize>, String)> {
        let selection = match self {
            CellSpec::All => "all".to_string(),
            CellSpec::Sample {
                n,
                seed,
                first: None,
            } => format!("sample {n} (seed {seed})"),
            CellSpec::Sample {
                n,
                seed,
                first: Some(k),
            } => {
                format!("first {k} of sample {n} (seed {seed})")
            }
            CellSpec::List(list) => format!("list of {}", list.len()),
        };
        let cells: Vec<usize> = match self {
            CellSpec::All => (0..table.len()).collect(),
            CellSpec::Sample { n, seed, first } => sample_cells(*seed, *n)
                .with_context(|| "cells: sample")?
                .into_iter()
                .take(first.unwrap_or(*n))
                .map(|c| table.index_of(c))
                .collect(),
            CellSpec::List(list) => list
                .iter()
                .map(|c| match c {
                    CellRef::Index(i) => table.cell(*i).map(|_| *i).with_context(|| "cells: list"),
                    CellRef::Arch(s) => {
                        Ok(table.index_of(s.parse::<Cell>().with_context(|| "cells: list")?))
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        reject_duplicates("cells: list", cells.iter().copied())?;
        Ok((cells, selection))
    }
}

/// A cell in a list: index or architecture string.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "serde_norway::Value")]
pub enum CellRef {
    /// Official NB201 index.
    Index(usize),
    /// Architecture string.
    Arch(String),
}

impl TryFrom<serde_norway::Value> for CellRef {
    type Error = String;

    fn try_from(value: serde_norway::Value) -> Result<Self, String> {
        match value {
            serde_norway::Value::String(s) => Ok(CellRef::Arch(s)),
            serde_norway::Value::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .map(CellRef::Index)
                .ok_or_else(|| {
                    format!("{n} is not a cell: give an official index (0 to 15624) or an architecture string")
                }),
            other => Err(format!(
                "{other:?} is not a cell: give an official index (0 to 15624) or an architecture string"
            )),
        }
    }
}

/// A keyword or a small map, as written in YAML, before validation.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawChoice {
    Word(String),
    Map(BTreeMap<String, serde_norway::Value>),
}

impl RawChoice {
    /// The map's keys, checked against `allowed`.
    fn map(
        self,
        what: &str,
        allowed: &[&str],
    ) -> Result<BTreeMap<String, serde_norway::Value>, String> {
        match self {
            RawChoice::Word(w) => Err(format!("{what}: unknown value \"{w}\"")),
            RawChoice::Map(m) => match m.keys().find(|k| !allowed.contains(&k.as_str())) {
                Some(k) => Err(format!(
                    "{what}: unknown key `{k}`, expected one of: {}",
                    allowed.join(", ")
                )),
                None => Ok(m),
            },
        }
    }
}

fn field<T: serde::de::DeserializeOwned>(
    map: &BTreeMap<String, serde_norway::Value>,
    what: &str,
    key: &str,
) -> Result<Option<T>, String> {
    map.get(key)
        .map(|v| serde_norway::from_value(v.clone()).map_err(|e| format!("{what}.{key}: {e}")))
        .transpose()
}

impl TryFrom<RawChoice> for DataLoadSpec {
    type Error = String;

    fn try_from(raw: RawChoice) -> Result<Self, String> {
        if matches!(&raw, RawChoice::Word(w) if w == "random") {
            return Ok(DataLoadSpec::Random);
        }
        let map = raw.map("dataload (random or {per_class: k})", &["per_class"])?;
        Ok(DataLoadSpec::PerClass(
            field(&map, "dataload", "per_class")?.ok_or("dataload: per_class is missing")?,
        ))
    }
}

impl TryFrom<RawChoice> for CellSpec {
    type Error = String;

    fn try_from(raw: RawChoice) -> Result<Self, String> {
        if matches!(&raw, RawChoice::Word(w) if w == "all") {
            return Ok(CellSpec::All);
        }
        let what = "cells (all, {sample: N, seed: S, first: K} or {list: [...]})";
        let map = raw.map(what, &["sample", "seed", "first", "list"])?;
        match (
            field(&map, "cells", "sample")?,
            field(&map, "cells", "list")?,
        ) {
            (Some(n), None) => {
                let first: Option<usize> = field(&map, "cells", "first")?;
                if first.is_some_and(|k| k == 0 || k > n) {
                    return Err(format!(
                        "cells: first must be between 1 and the sample's {n}"
                    ));
                }
                Ok(CellSpec::Sample {
                    n,
                    seed: field(&map, "cells", "seed")?.unwrap_or(0),
                    first,
                })
            }
            (None, Some(list)) if !map.contains_key("first") => Ok(CellSpec::List(list)),
            (None, Some(_)) => Err("cells: first goes with sample, not list".into()),
            _ => Err(format!("{what}: give exactly one of sample and list")),
        }
    }
}

fn default_space() -> String {
    "nb201".into()
}
fn default_batch_size() -> usize {
    64
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_backend() -> String {
    "flex".into()
}
fn default_precision() -> String {
    "f32".into()
}
fn default_target() -> String {
    "paper".into()
}
fn default_chunk() -> usize {
    25
}

/// A validated, resolved experiment: what a sweep runs. The config as written is kept only as
/// text (for the manifest); every value a run uses is here, after command-line overrides.
pub struct Experiment {
    /// Name recorded in every result row.
    pub name: String,
    /// The config text, recorded in the manifest.
    pub text: String,
    /// Datasets with their resolved targets.
    pub datasets: Vec<(Dataset, Metric)>,
    /// The proxies, in config order.
    pub proxies: Vec<&'static dyn Proxy>,
    /// How minibatches are drawn.
    pub dataload: DataLoad,
    /// Compute backend.
    pub backend: Backend,
    /// Precision of the minibatch passes.
    pub precision: Precision,
    /// Seeds, in config order.
    pub seeds: Vec<u64>,
    /// Official indices of the cells, in scoring order.
    pub cells: Vec<usize>,
    /// How the cells were chosen, for the manifest (`sample 400 (seed 2021)`, `all`, ...).
    pub cell_selection: String,
    /// Output directory.
    pub output: PathBuf,
    /// Cells scored at once (0 = one per core).
    pub workers: usize,
    /// Rows per part file.
    pub chunk: usize,
    /// The command-line overrides applied to the config, as typed (`--all-cells`, ...).
    pub overrides: Vec<String>,
}

/// Parses a precision name.
pub fn parse_precision(name: &str) -> anyhow::Result<Precision> {
    match name {
        "f32" => Ok(Precision::F32),
        "f64" => Ok(Precision::F64),
        other => bail!("precision: unknown value \"{other}\"; valid: f32, f64"),
    }
}

fn parse_backend(name: &str) -> anyhow::Result<Backend> {
    match name {
        "flex" => Ok(Backend::Flex),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Backend::Cuda(0)),
        "cuda" => bail!("backend: \"cuda\" needs a build with `--features zc-proxies/cuda`"),
        other => bail!("backend: unknown value \"{other}\"; valid: flex, cuda"),
    }
}

impl Experiment {
    /// Reads, parses and validates a config file. `output` is kept as written: the command line
    /// resolves a relative one against the project directory (see `zc --help`).
    pub fn load(path: &Path, table: &GroundTruth) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let config: ExperimentConfig = serde_norway::from_str(&text)
            .with_context(|| format!("invalid config {}", path.display()))?;
        Self::resolve(config, text, table)
            .with_context(|| format!("invalid config {}", path.display()))
    }

    /// Scores all 15,625 cells instead of the config's selection (`--all-cells`).
    pub fn select_all_cells(&mut self, table: &GroundTruth) {
        self.cells = (0..table.len()).collect();
        self.cell_selection = "all".into();
        self.overrides.push("--all-cells".into());
    }

    /// Writes into `output` instead of the config's directory (`--output`).
    pub fn set_output(&mut self, output: PathBuf) {
        self.overrides
            .push(format!("--output {}", output.display()));
        self.output = output;
    }

    /// Scores `workers` cells at once (`--workers`; does not change any value).
    pub fn set_workers(&mut self, workers: usize) {
        self.overrides.push(format!("--workers {workers}"));
        self.workers = workers;
    }

    /// Validates a parsed config.
    pub fn resolve(
        config: ExperimentConfig,
        text: String,
        table: &GroundTruth,
    ) -> anyhow::Result<Self> {
        if config.search_space != "nb201" {
            bail!(
                "search_space: unknown value \"{}\"; valid: nb201",
                config.search_space
            );
        }
        if config.datasets.is_empty() {
            bail!("datasets: at least one dataset is needed");
        }
        let datasets = config
            .datasets
            .iter()
            .map(|d| {
                let dataset: Dataset = d.name.parse().with_context(|| "datasets: name")?;
                let metric =
                    Metric::parse(&d.target, dataset).with_context(|| "datasets: target")?;
                table
                    .accuracies(dataset, metric)
                    .with_context(|| "datasets: target")?;
                Ok((dataset, metric))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        reject_duplicates("datasets", datasets.iter().map(|(d, _)| d.name()))?;
        if config.proxies.is_empty() {
            bail!("proxies: at least one proxy is needed");
        }
        reject_duplicates("proxies", config.proxies.iter().cloned())?;
        let proxies = config
            .proxies
            .iter()
            .map(|name| proxy::find(name).with_context(|| "proxies"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if config.batch_size == 0 {
            bail!("batch_size: must be at least 1");
        }
        let dataload = match config.dataload {
            DataLoadSpec::Random => DataLoad::Random {
                batch_size: config.batch_size,
            },
            DataLoadSpec::PerClass(0) => bail!("dataload: per_class must be at least 1"),
            DataLoadSpec::PerClass(k) => DataLoad::PerClass { per_class: k },
        };
        if config.seeds.is_empty() {
            bail!("seeds: at least one seed is needed");
        }
        reject_duplicates("seeds", config.seeds.iter().copied())?;
        if config.chunk == 0 {
            bail!("chunk: must be at least 1");
        }
        let (cells, cell_selection) = config.cells.resolve(table)?;
        Ok(Self {
            backend: parse_backend(&config.backend)?,
            precision: parse_precision(&config.precision)?,
            name: config.name,
            text,
            datasets,
            proxies,
            dataload,
            seeds: config.seeds,
            cells,
            cell_selection,
            output: config.output,
            workers: config.workers,
            chunk: config.chunk,
            overrides: Vec::new(),
        })
    }
}

/// An error naming `key` and the first value given twice.
pub fn reject_duplicates<T: Eq + std::hash::Hash + std::fmt::Display>(
    key: &str,
    values: impl IntoIterator<Item = T>,
) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for value in values {
        if seen.contains(&value) {
            bail!("{key}: {value} is given twice; each may appear once");
        }
        seen.insert(value);
    }
    Ok(())
}
