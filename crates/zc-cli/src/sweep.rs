//! `zc sweep`: score cells with proxies and append the rows to Parquet.
//!
//! - Resumable: rows are written in part files of `chunk` rows, each atomically (temporary file,
//!   fsync, rename). A rerun reads every row already in the output directory and scores only
//!   what is missing, so a kill at any moment loses at most the unwritten chunk.
//! - Shardable: `--shard K/N` takes every N-th cell of the list, starting at K-1; the N parts
//!   together are the whole list and read as one table.
//! - Parallel: one cell per worker, each worker with a one-thread pool (two cells at once on two
//!   cores is about twice the throughput of one cell on two threads with the flex backend).
//! - When a shard finishes, its part files are merged into one file per dataset and seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::{
    BooleanChunked, Column, DataFrame, DataType, NewChunkedArray, ParquetReader, ParquetWriter,
    SerReader,
};
use zc_benchmark::GroundTruth;
use zc_data::{Dataset, ImageSet, MinibatchSampler};
use zc_proxies::{CellScores, Engine, Nb201Network, Weights};

use crate::config::Experiment;
use crate::provenance;

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

    fn tag(&self) -> String {
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
    /// Cells scored by this run.
    pub scored: usize,
    /// Cells found already done.
    pub skipped: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// NaN count per proxy among the rows scored by this run.
    pub nan_counts: Vec<(String, usize)>,
    /// The merged files of this shard.
    pub files: Vec<PathBuf>,
}

/// One scored cell.
struct Row {
    index: u32,
    dataset: Dataset,
    seed: u64,
    scores: CellScores,
}

/// Identity of a row: dataset name, seed, cell index.
type RowKey = (String, u64, u32);

/// Reads every Parquet file under `dir`.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<(PathBuf, DataFrame)>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| read_parquet(&p).map(|df| (p, df)))
        .collect()
}

/// Reads one Parquet file.
pub fn read_parquet(path: &Path) -> anyhow::Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {} as Parquet", path.display()))
}

/// The (dataset, seed, index) keys of a sweep frame.
pub fn row_keys(df: &DataFrame) -> anyhow::Result<Vec<RowKey>> {
    let dataset = df.column("dataset")?.str()?.clone();
    let seed = df.column("seed")?.cast(&DataType::UInt64)?;
    let index = df.column("index")?.cast(&DataType::UInt32)?;
    let keys = dataset
        .iter()
        .zip(seed.u64()?.iter())
        .zip(index.u32()?.iter())
        .filter_map(|((d, s), i)| Some((d?.to_string(), s?, i?)))
        .collect();
    Ok(keys)
}

/// Writes `df` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(df: &mut DataFrame, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    ParquetWriter::new(&file)
        .finish(df)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Writes a text file atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {}", tmp.display()))?;
    Ok(())
}

/// Fixed metadata of every row of a run.
struct RunInfo<'a> {
    experiment: &'a Experiment,
    table: &'a GroundTruth,
    revision: String,
}

impl RunInfo<'_> {
    fn frame(&self, rows: &[Row]) -> anyhow::Result<DataFrame> {
        let e = self.experiment;
        let n = rows.len();
        let text = |name: &str, v: String| Column::new(name.into(), vec![v; n]);
        let mut columns = vec![
            Column::new(
                "index".into(),
                rows.iter().map(|r| r.index).collect::<Vec<_>>(),
            ),
            Column::new(
                "arch".into(),
                rows.iter()
                    .map(|r| self.table.cells()[r.index as usize].to_string())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "dataset".into(),
                rows.iter().map(|r| r.dataset.name()).collect::<Vec<_>>(),
            ),
            Column::new(
                "seed".into(),
                rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
            ),
        ];
        for (i, proxy) in e.proxies.iter().enumerate() {
            let values: Vec<f64> = rows
                .iter()
                .map(|r| r.scores.proxies[i].score.total)
                .collect();
            columns.push(Column::new(proxy.name().into(), values));
        }
        for (i, proxy) in e.proxies.iter().enumerate() {
            let seconds: Vec<f64> = rows.iter().map(|r| r.scores.proxies[i].seconds).collect();
            columns.push(Column::new(
                format!("{}_seconds", proxy.name()).into(),
                seconds,
            ));
        }
        columns.push(Column::new(
            "cell_seconds".into(),
            rows.iter().map(|r| r.scores.seconds()).collect::<Vec<_>>(),
        ));
        columns.push(text("backend", e.backend.name()));
        columns.push(text("precision", e.precision.name().into()));
        columns.push(text("dataload", format!("{:?}", e.dataload)));
        columns.push(text("config", e.config.name.clone()));
        columns.push(text("version", provenance::VERSION.into()));
        columns.push(text("git_revision", self.revision.clone()));
        Ok(DataFrame::new(n, columns)?)
    }
}

fn file_prefix(dataset: Dataset, seed: u64, shard: Shard) -> String {
    format!("{}_seed{seed}_{}", dataset.name(), shard.tag())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs (or resumes) the sweep of `experiment`, shard `shard`, into `output`.
pub fn run(
    experiment: &Experiment,
    table: &GroundTruth,
    data_dir: &Path,
    output: &Path,
    shard: Shard,
) -> anyhow::Result<SweepSummary> {
    let start = Instant::now();
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    // Rows already present anywhere in the output directory, and a check that they carry every
    // proxy of this config.
    let mut done: HashSet<RowKey> = HashSet::new();
    for (path, df) in read_dir(output)? {
        for p in &experiment.proxies {
            if df.column(p.name()).is_err() {
                bail!(
                    "{} has no column \"{}\": it was written by another config; use another output",
                    path.display(),
                    p.name()
                );
            }
        }
        done.extend(row_keys(&df)?);
    }
    // Temporary files of this shard left by a killed run (other shards may be writing theirs).
    let prefixes: Vec<String> = experiment
        .datasets
        .iter()
        .flat_map(|&(d, _)| {
            experiment
                .config
                .seeds
                .iter()
                .map(move |&s| file_prefix(d, s, shard))
        })
        .collect();
    for entry in std::fs::read_dir(output)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove {name}"))?;
        }
    }
    let cells = shard.select(&experiment.cells);
    let mut jobs = Vec::new();
    let mut skipped = 0;
    // Cell-major order: an interrupted sweep has covered every dataset and seed equally.
    for &index in &cells {
        for &(dataset, _) in &experiment.datasets {
            for &seed in &experiment.config.seeds {
                if done.contains(&(dataset.name().to_string(), seed, index as u32)) {
                    skipped += 1;
                } else {
                    jobs.push((dataset, seed, index));
                }
            }
        }
    }
    let samplers: HashMap<(Dataset, u64), MinibatchSampler> = experiment
        .datasets
        .iter()
        .map(|&(dataset, _)| {
            let images = Arc::new(
                ImageSet::read_shipped(data_dir, dataset)
                    .with_context(|| format!("images of {}", dataset.name()))?,
            );
            experiment
                .config
                .seeds
                .iter()
                .map(|&seed| {
                    Ok((
                        (dataset, seed),
                        MinibatchSampler::new(images.clone(), experiment.dataload, seed)?,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let info = RunInfo {
        experiment,
        table,
        revision: provenance::git_revision(),
    };
    let manifest = serde_json::json!({
        "config": experiment.config.name,
        "config_text": experiment.text,
        "shard": format!("{}/{}", shard.index, shard.count),
        "git_revision": info.revision,
        "version": provenance::VERSION,
        "backend": experiment.backend.name(),
        "precision": experiment.precision.name(),
        "started_unix": unix_seconds(),
        "cells_in_shard": cells.len() * experiment.datasets.len() * experiment.config.seeds.len(),
        "already_done": skipped,
    });
    write_text_atomic(
        &output.join(format!("manifest_{}.json", shard.tag())),
        &serde_json::to_string_pretty(&manifest)?,
    )?;

    let total = jobs.len();
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} cells  {per_sec}  ETA {eta}  {msg}",
        )?
        .progress_chars("=> "),
    );
    let workers = match experiment.config.workers {
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
        let mut df = info.frame(rows)?;
        *part += 1;
        // Unique per run (process and start time), so a rerun never overwrites an earlier part.
        let name = format!(
            "{}.part-{run_id}-{:05}.parquet",
            file_prefix(dataset, seed, shard),
            part
        );
        write_atomic(&mut df, &output.join(name))?;
        rows.clear();
        Ok(())
    };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (queue, tx, samplers) = (queue.clone(), tx.clone(), &samplers);
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
                        let batch = samplers[&(dataset, seed)].batch(u64::from(cell.code()));
                        let scores =
                            engine.score(&network, &weights, &batch, &experiment.proxies)?;
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
            if buffer.len() >= experiment.config.chunk {
                write_part(buffer, key.0, key.1, &mut part)?;
            }
            progress.inc(1);
            if progress.is_hidden() {
                // No terminal (a log file, CI): a plain line every chunk of cells instead.
                let done = progress.position() as usize;
                if done.is_multiple_of(experiment.config.chunk) || done == total {
                    let elapsed = start.elapsed().as_secs_f64();
                    let eta = elapsed / done as f64 * (total - done) as f64;
                    eprintln!(
                        "{done}/{total} cells, {:.2} cells/s, ETA {:.0} s",
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
        // Keep what finished even when a cell failed.
        for ((dataset, seed), rows) in buffers.iter_mut() {
            let _ = write_part(rows, *dataset, *seed, &mut part);
        }
    })?;
    progress.finish_and_clear();
    let mut files = Vec::new();
    for &(dataset, _) in &experiment.datasets {
        for &seed in &experiment.config.seeds {
            if let Some(file) = merge_parts(output, &file_prefix(dataset, seed, shard))? {
                files.push(file);
            }
        }
    }
    Ok(SweepSummary {
        scored: total,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
        nan_counts,
        files,
    })
}

/// Merges `{prefix}.parquet` and every `{prefix}.part-*.parquet` into `{prefix}.parquet`
/// (duplicate rows dropped), then removes the parts.
fn merge_parts(output: &Path, prefix: &str) -> anyhow::Result<Option<PathBuf>> {
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
        return Ok(merged_path.exists().then_some(merged_path));
    }
    sources.sort();
    let parts = sources.clone();
    if merged_path.exists() {
        sources.insert(0, merged_path.clone());
    }
    let mut merged: Option<DataFrame> = None;
    let mut seen: HashSet<RowKey> = HashSet::new();
    for path in &sources {
        let df = read_parquet(path)?;
        let keep: Vec<bool> = row_keys(&df)?.into_iter().map(|k| seen.insert(k)).collect();
        let df = df.filter(&BooleanChunked::from_slice("keep".into(), &keep))?;
        match merged.as_mut() {
            Some(m) => {
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
