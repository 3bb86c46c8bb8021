//! The files of a sweep directory: the row schema, the settings that make a row's value, atomic
//! writes, and a lock per shard.
//!
//! A sweep row is identified by (dataset, seed, cell index) **and** the [`Settings`] it was
//! computed with. A directory never holds rows of two settings: the sweep refuses to add rows
//! of other settings to it, and the readers refuse a directory (or a list of inputs) that mixes
//! them, naming the setting, the files and the way out.

use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use polars::prelude::{
    BooleanChunked, DataFrame, DataType, NewChunkedArray, ParquetReader, ParquetWriter, SerReader,
};
use serde::{Deserialize, Serialize};
use zc_data::{DataLoad, Dataset};
use zc_proxies::{Backend, Precision};

/// Column names of a sweep row (besides one column per proxy and `{proxy}_seconds`).
pub mod column {
    /// Official NB201 index (u32).
    pub const INDEX: &str = "index";
    /// Architecture string.
    pub const ARCH: &str = "arch";
    /// Dataset name.
    pub const DATASET: &str = "dataset";
    /// Seed of the weights and the minibatch (u64).
    pub const SEED: &str = "seed";
    /// Seconds the whole cell took.
    pub const CELL_SECONDS: &str = "cell_seconds";
    /// Compute backend (`flex`, `cuda:0`).
    pub const BACKEND: &str = "backend";
    /// Precision of the minibatch passes (`f32`, `f64`).
    pub const PRECISION: &str = "precision";
    /// Data load kind: `random` or `per_class`.
    pub const DATALOAD: &str = "dataload";
    /// Images per minibatch (u32).
    pub const BATCH_SIZE: &str = "batch_size";
    /// Images per class of the `per_class` data load (u32; null for `random`).
    pub const PER_CLASS: &str = "per_class";
    /// SHA-256 of the image file(s) the minibatches were drawn from.
    pub const IMAGES_SHA256: &str = "images_sha256";
    /// Name of the experiment config.
    pub const CONFIG: &str = "config";
    /// Crate version of the harness.
    pub const VERSION: &str = "version";
    /// Git revision the `zc` binary was built from.
    pub const GIT_REVISION: &str = "git_revision";
}

/// Everything besides the cell, dataset and seed that changes a proxy's value: the identity of
/// a row together with its key. (A proxy's own parameters are part of its column name.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Settings {
    /// Backend family (`flex`, `cuda`); the device number does not change values.
    pub backend: String,
    /// `f32` or `f64`.
    pub precision: String,
    /// `random` or `per_class`.
    pub dataload: String,
    /// Images per minibatch.
    pub batch_size: u32,
    /// Images per class (`per_class` only).
    pub per_class: Option<u32>,
    /// SHA-256 of the image file(s).
    pub images_sha256: String,
}

impl Settings {
    /// The settings of a run on `dataset`'s images (with digest `images_sha256`).
    pub fn new(
        backend: Backend,
        precision: Precision,
        dataload: DataLoad,
        dataset: Dataset,
        images_sha256: String,
    ) -> Self {
        let (kind, per_class) = match dataload {
            DataLoad::Random { .. } => ("random", None),
            DataLoad::PerClass { per_class } => ("per_class", Some(per_class as u32)),
        };
        Settings {
            backend: backend_family(&backend.name()).to_string(),
            precision: precision.name().to_string(),
            dataload: kind.to_string(),
            batch_size: dataload.batch_size(dataset.num_classes()) as u32,
            per_class,
            images_sha256,
        }
    }

    /// The data load these settings describe.
    pub fn data_load(&self) -> anyhow::Result<DataLoad> {
        match (self.dataload.as_str(), self.per_class) {
            ("random", _) => Ok(DataLoad::Random {
                batch_size: self.batch_size as usize,
            }),
            ("per_class", Some(k)) => Ok(DataLoad::PerClass {
                per_class: k as usize,
            }),
            (other, _) => bail!("unknown data load \"{other}\" (valid: random, per_class)"),
        }
    }

    /// The precision these settings describe.
    pub fn precision(&self) -> anyhow::Result<Precision> {
        crate::config::parse_precision(&self.precision)
    }

    /// Each setting that differs: (name, this value, the other's value).
    pub fn differences(&self, other: &Settings) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, a: String, b: String| {
            if a != b {
                out.push((name, a, b));
            }
        };
        check("backend", self.backend.clone(), other.backend.clone());
        check("precision", self.precision.clone(), other.precision.clone());
        check("dataload", self.dataload.clone(), other.dataload.clone());
        check(
            "batch_size",
            self.batch_size.to_string(),
            other.batch_size.to_string(),
        );
        let k = |s: &Settings| s.per_class.map_or("-".into(), |k| k.to_string());
        check("per_class", k(self), k(other));
        check(
            "images_sha256",
            short(&self.images_sha256),
            short(&other.images_sha256),
        );
        out
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend {}, precision {}, dataload {}",
            self.backend, self.precision, self.dataload
        )?;
        if let Some(k) = self.per_class {
            write!(f, " ({k} per class)")?;
        }
        write!(
            f,
            ", batch {} images, images sha256 {}",
            self.batch_size,
            short(&self.images_sha256)
        )
    }
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// `cuda:0` -> `cuda`.
fn backend_family(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// The (dataset, seed, index) key of a row.
pub type RowKey = (String, u64, u32);

/// The keys and settings of every row of a sweep frame, in row order.
pub fn row_identities(df: &DataFrame, path: &Path) -> anyhow::Result<Vec<(RowKey, Settings)>> {
    let need = |name: &str| {
        df.column(name).with_context(|| {
            format!(
                "{} has no `{name}` column: it is not a sweep file of this zc version (older \
                 sweeps did not record every setting); sweep into a new directory",
                path.display()
            )
        })
    };
    let text = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        Ok(need(name)?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let number = |name: &str| -> anyhow::Result<Vec<Option<u64>>> {
        Ok(need(name)?.cast(&DataType::UInt64)?.u64()?.iter().collect())
    };
    let (dataset, seed, index) = (
        text(column::DATASET)?,
        number(column::SEED)?,
        number(column::INDEX)?,
    );
    let (backend, precision, dataload, batch, per_class, sha) = (
        text(column::BACKEND)?,
        text(column::PRECISION)?,
        text(column::DATALOAD)?,
        number(column::BATCH_SIZE)?,
        number(column::PER_CLASS)?,
        text(column::IMAGES_SHA256)?,
    );
    (0..df.height())
        .map(|i| {
            let missing = || format!("{}: row {i} has an empty key or setting", path.display());
            let index = index[i].with_context(missing)?;
            if index >= zc_space::Cell::COUNT as u64 {
                bail!(
                    "{}: row {i} has cell index {index}, outside NB201's 0..15624",
                    path.display()
                );
            }
            let key = (
                dataset[i].clone().with_context(missing)?,
                seed[i].with_context(missing)?,
                index as u32,
            );
            let settings = Settings {
                backend: backend_family(&backend[i].clone().with_context(missing)?).to_string(),
                precision: precision[i].clone().with_context(missing)?,
                dataload: dataload[i].clone().with_context(missing)?,
                batch_size: u32::try_from(batch[i].with_context(missing)?)?,
                per_class: per_class[i].map(u32::try_from).transpose()?,
                images_sha256: sha[i].clone().with_context(missing)?,
            };
            Ok((key, settings))
        })
        .collect()
}

/// The proxy columns of a sweep frame: every column that names a registered proxy.
pub fn proxy_columns(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .into_iter()
        .map(|c| c.as_str())
        .filter(|c| zc_proxies::proxy::find(c).is_ok())
        .map(str::to_string)
        .collect()
}

/// One column as f64 values (null as NaN).
pub fn f64_column(df: &DataFrame, name: &str) -> anyhow::Result<Vec<f64>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// Whether `name` is a sweep file's name: `DATASET_seedS_shardKofN.parquet` or one of its
/// `.part-*.parquet` files.
pub fn is_sweep_file_name(name: &str) -> bool {
    name.ends_with(".parquet") && name.contains("_seed") && name.contains("_shard")
}

/// Reads every sweep Parquet file in `dir`, sorted by name.
///
/// A file that disappears between listing and reading (another shard merged its part files) is
/// a sign the listing is stale: the directory is listed again, up to a few times, so the result
/// is a consistent snapshot. A `.parquet` file that is not a sweep file is an error that names
/// it (tables and other outputs belong outside sweep directories).
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<(PathBuf, DataFrame)>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    'retry: for attempt in 0.. {
        let mut paths = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string());
            let Some(name) = name.filter(|n| n.ends_with(".parquet")) else {
                continue;
            };
            if !is_sweep_file_name(&name) {
                bail!(
                    "{} is in a sweep directory but is not a sweep file (DATASET_seedS_shardKofN.parquet): \
                     move it out; write tables elsewhere (zc table --out)",
                    path.display()
                );
            }
            paths.push(path);
        }
        paths.sort();
        let mut frames = Vec::with_capacity(paths.len());
        for path in paths {
            match File::open(&path) {
                Ok(file) => frames.push((path.clone(), parquet_frame(file, &path)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 10 => {
                    continue 'retry;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            }
        }
        return Ok(frames);
    }
    unreachable!("the retry loop returns")
}

/// Reads one Parquet file.
pub fn read_parquet(path: &Path) -> anyhow::Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    parquet_frame(file, path)
}

fn parquet_frame(file: File, path: &Path) -> anyhow::Result<DataFrame> {
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {} as Parquet", path.display()))
}

/// A temporary name beside `path`, unique to this process and call, so two writers of the same
/// file never share a temporary file.
fn temporary(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes with `write` into a temporary file beside `path`, fsyncs it and renames it over
/// `path`: readers see the old file or the whole new one, never a part.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temporary(path);
    let result = (|| {
        let mut file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut file).with_context(|| format!("cannot write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `df` to `path` as Parquet, atomically.
pub fn write_atomic(df: &mut DataFrame, path: &Path) -> anyhow::Result<()> {
    write_atomically(path, |file| {
        ParquetWriter::new(file).finish(df)?;
        Ok(())
    })
}

/// Writes a text file atomically; an unchanged file is left as it is (no rewrite).
pub fn write_text_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    write_atomically(path, |file| Ok(file.write_all(text.as_bytes())?))
}

/// Merges `{prefix}.parquet` and every `{prefix}.part-*.parquet` in `output` into
/// `{prefix}.parquet`, keeping the first row of each key (`keys` gives a file's row keys in
/// order), then removes the parts; `None` when there were no parts. Call it with the shard's
/// lock held.
pub fn merge_parts<K: std::hash::Hash + Eq>(
    output: &Path,
    prefix: &str,
    keys: impl Fn(&DataFrame, &Path) -> anyhow::Result<Vec<K>>,
) -> anyhow::Result<Option<PathBuf>> {
    let merged_path = output.join(format!("{prefix}.parquet"));
    let part_prefix = format!("{prefix}.part-");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(output)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&part_prefix) && n.ends_with(".parquet"))
        })
        .collect();
    if sources.is_empty() {
        return Ok(None);
    }
    sources.sort();
    let parts = sources.clone();
    if merged_path.exists() {
        sources.insert(0, merged_path.clone());
    }
    let mut merged: Option<DataFrame> = None;
    let mut seen = std::collections::HashSet::new();
    for path in &sources {
        let df = read_parquet(path)?;
        let keep: Vec<bool> = keys(&df, path)?
            .into_iter()
            .map(|k| seen.insert(k))
            .collect();
        let df = df.filter(&BooleanChunked::from_slice("keep".into(), &keep))?;
        match merged.as_mut() {
            Some(m) => {
                // Same columns (the directory's schema is checked at start), maybe reordered.
                let df = df.select(m.get_column_names_owned()).with_context(|| {
                    format!("{} does not fit {prefix}'s columns", path.display())
                })?;
                m.vstack_mut_owned(df)?;
            }
            None => merged = Some(df),
        }
    }
    if let Some(mut df) = merged {
        df.rechunk_mut();
        write_atomic(&mut df, &merged_path)?;
        for part in parts {
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove {}", part.display()))?;
        }
    }
    Ok(Some(merged_path))
}

/// An exclusive lock on one shard of a sweep directory, held while the shard runs: a second run
/// of the same shard at once fails at the start with a clear error. The lock file
/// (`.shardKofN.lock`) stays, so no two runs can ever lock two different files.
pub struct ShardLock {
    _file: File,
}

impl ShardLock {
    /// Takes the lock `dir/.TAG.lock`.
    pub fn acquire(dir: &Path, tag: &str) -> anyhow::Result<ShardLock> {
        let path = dir.join(format!(".{tag}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(ShardLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{tag} of {} is already being swept by another process (lock {}); wait for it, \
                 or sweep another shard",
                dir.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}
