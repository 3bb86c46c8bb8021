//! Running a sweep on a Slurm cluster: one job array (one shard per task) plus a dependent job
//! that checks every shard and writes the table; the shards' state from their manifests and
//! `squeue`; and what to resubmit.
//!
//! Everything a submission does is written under `OUTPUT/slurm/` first (the sbatch scripts, a
//! copy of the config, `submissions.json`), so a user can read, edit and submit the scripts by
//! hand. Resubmitting a shard is always safe: sweeps resume, and a shard holds a lock while it runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use zc_proxies::pass::PassKind;

use crate::config::Experiment;
use crate::store;
use crate::sweep::{Manifest, Shard};

/// Slurm options of a submission.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` of each shard task (Slurm's format, e.g. `02:00:00`).
    pub time: String,
    /// `--cpus-per-task`: the shard scores this many cells at once.
    pub cpus_per_task: usize,
    /// `--mem` (e.g. `8G`).
    pub mem: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// Further `#SBATCH` arguments, as given (e.g. `--qos=low`).
    pub extra: Vec<String>,
}

/// What to submit: the experiment's sweep, split into `shards` tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Experiment name.
    pub name: String,
    /// The `zc` binary the tasks run (it must be reachable from the nodes).
    pub zc: PathBuf,
    /// Data directory, passed to every task.
    pub data_dir: PathBuf,
    /// The copy of the config the tasks read.
    pub config: PathBuf,
    /// The output directory every shard writes into.
    pub output: PathBuf,
    /// Whether the tasks score all cells (`--all-cells`).
    pub all_cells: bool,
    /// Number of shards.
    pub shards: usize,
    /// Shards to run (1-based); all of them unless resubmitting some.
    pub tasks: Vec<usize>,
    /// Slurm options.
    pub slurm: SlurmOptions,
}

/// Rough one-core seconds per job (cell, dataset, seed) of a pass: means over 12 uniform cells
/// with NB201's kernels (flex, f32, batch 64, CIFAR-10, the other core busy); used only to size
/// shards. `FisherTaps` is what the taps add to the loss pass.
fn pass_seconds(pass: PassKind) -> f64 {
    match pass {
        PassKind::Loss | PassKind::SecondBatchLoss => 0.3,
        PassKind::ReluKernel => 0.3,
        PassKind::Zen => 0.25,
        PassKind::Meco => 0.03,
        PassKind::FisherTaps => 0.1,
        PassKind::HessianGradient => 0.35,
        PassKind::InputJacobian => 0.08,
        PassKind::Synflow | PassKind::SynflowBn => 0.01,
    }
}

/// Estimated one-core seconds per job of `experiment`: the median `cell_seconds` of rows already
/// in its output directory, else the sum of its passes' typical costs.
pub fn seconds_per_job(experiment: &Experiment) -> f64 {
    let measured: Vec<f64> = store::read_dir(&experiment.output)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, df)| store::f64_column(df, store::column::CELL_SECONDS).ok())
        .flatten()
        .filter(|s| s.is_finite())
        .collect();
    if !measured.is_empty() {
        let mut sorted = measured;
        sorted.sort_by(f64::total_cmp);
        return sorted[sorted.len() / 2];
    }
    let mut passes: Vec<PassKind> = experiment
        .proxies
        .iter()
        .flat_map(|p| p.passes().iter().copied())
        .collect();
    passes.sort();
    passes.dedup();
    0.02 + passes.into_iter().map(pass_seconds).sum::<f64>()
}

/// Shards so that each task takes about `minutes_per_task` on `cpus` cores: at least 1, at most
/// one per cell.
pub fn default_shards(experiment: &Experiment, minutes_per_task: f64, cpus: usize) -> usize {
    let jobs = experiment.cells.len() * experiment.datasets.len() * experiment.seeds.len();
    let seconds = jobs as f64 * seconds_per_job(experiment) / cpus.max(1) as f64;
    ((seconds / (minutes_per_task * 60.0)).ceil() as usize).clamp(1, experiment.cells.len().max(1))
}

/// Single-quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_arg(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// The `--array` value: `1-N`, or the listed shards.
fn array_spec(plan: &Plan) -> String {
    if plan.tasks.len() == plan.shards && plan.tasks.iter().enumerate().all(|(i, &k)| k == i + 1) {
        format!("1-{}", plan.shards)
    } else {
        plan.tasks
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn sbatch_header(
    out: &mut String,
    plan: &Plan,
    job_name: &str,
    log: &Path,
    time: &str,
    cpus: usize,
) {
    let s = &plan.slurm;
    let _ = writeln!(out, "#!/bin/bash");
    let _ = writeln!(out, "#SBATCH --job-name={job_name}");
    let _ = writeln!(out, "#SBATCH --output={}", log.display());
    let _ = writeln!(out, "#SBATCH --time={time}");
    let _ = writeln!(out, "#SBATCH --cpus-per-task={cpus}");
    let _ = writeln!(out, "#SBATCH --ntasks=1");
    for (flag, value) in [
        ("partition", &s.partition),
        ("mem", &s.mem),
        ("account", &s.account),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "#SBATCH --{flag}={v}");
        }
    }
    for extra in &s.extra {
        let _ = writeln!(out, "#SBATCH {extra}");
    }
}

/// The job-array script: task K runs shard K of N.
pub fn shard_script(plan: &Plan) -> String {
    let mut out = String::new();
    let logs = plan.output.join("slurm").join("logs");
    sbatch_header(
        &mut out,
        plan,
        &format!("zc-{}", plan.name),
        &logs.join(format!("shard-%a-of-{}.log", plan.shards)),
        &plan.slurm.time,
        plan.slurm.cpus_per_task,
    );
    let _ = writeln!(out, "#SBATCH --array={}", array_spec(plan));
    let _ = writeln!(
        out,
        "\n# Shard $SLURM_ARRAY_TASK_ID of {} of the sweep `{}`. Sweeps resume, so resubmitting a\n\
         # shard (sbatch --array=K this-script) finishes it without redoing finished rows.\n\
         set -euo pipefail",
        plan.shards, plan.name
    );
    let _ = writeln!(
        out,
        "exec {} --data-dir {} sweep {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --output {} \
         --workers \"${{SLURM_CPUS_PER_TASK:-{}}}\"{}",
        path_arg(&plan.zc),
        path_arg(&plan.data_dir),
        path_arg(&plan.config),
        plan.shards,
        path_arg(&plan.output),
        plan.slurm.cpus_per_task,
        if plan.all_cells { " --all-cells" } else { "" }
    );
    out
}

/// The job that runs after every shard succeeded: checks the shards and writes the table
/// beside the output directory (`OUTPUT.md`, `OUTPUT.parquet`).
pub fn merge_script(plan: &Plan) -> String {
    let mut out = String::new();
    sbatch_header(
        &mut out,
        plan,
        &format!("zc-{}-merge", plan.name),
        &plan.output.join("slurm").join("logs").join("merge.log"),
        "00:30:00",
        1,
    );
    let _ = writeln!(
        out,
        "\n# Runs after every shard task succeeded (sbatch --dependency=afterok:ARRAY_JOB).\n\
         set -euo pipefail\n\
         {zc} --data-dir {data} status {output} --require-complete\n\
         exec {zc} --data-dir {data} table {output} --out {output}",
        zc = path_arg(&plan.zc),
        data = path_arg(&plan.data_dir),
        output = path_arg(&plan.output),
    );
    out
}

/// One submission, as recorded in `OUTPUT/slurm/submissions.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    /// What was submitted.
    pub plan: Plan,
    /// Slurm's id of the job array.
    pub array_job: String,
    /// Slurm's id of the merge job.
    pub merge_job: String,
    /// When (Unix seconds).
    pub submitted_unix: u64,
}

/// The submission directory of an output directory.
pub fn slurm_dir(output: &Path) -> PathBuf {
    output.join("slurm")
}

/// Writes the scripts (and nothing else) for `plan`; returns their paths.
pub fn write_scripts(plan: &Plan) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = slurm_dir(&plan.output);
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let (shards, merge) = (dir.join("shards.sbatch"), dir.join("merge.sbatch"));
    store::write_text_atomic(&shards, &shard_script(plan))?;
    store::write_text_atomic(&merge, &merge_script(plan))?;
    Ok((shards, merge))
}

fn run_sbatch(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .context("cannot run sbatch: is Slurm installed here (and SLURM_CONF set)?")?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        bail!("sbatch printed no job id");
    }
    Ok(id)
}

/// Submits the scripts of `plan` (written first): the array, then the merge job after it.
pub fn submit(plan: &Plan) -> anyhow::Result<Submission> {
    let (shards, merge) = write_scripts(plan)?;
    let array_job = run_sbatch(&[&shards.display().to_string()])?;
    let merge_job = run_sbatch(&[
        &format!("--dependency=afterok:{array_job}"),
        &merge.display().to_string(),
    ])?;
    let submission = Submission {
        plan: plan.clone(),
        array_job,
        merge_job,
        submitted_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let mut all = submissions(&plan.output)?;
    all.push(submission.clone());
    store::write_text_atomic(
        &slurm_dir(&plan.output).join("submissions.json"),
        &(serde_json::to_string_pretty(&all)? + "\n"),
    )?;
    Ok(submission)
}

/// The submissions recorded for an output directory, oldest first.
pub fn submissions(output: &Path) -> anyhow::Result<Vec<Submission>> {
    let path = slurm_dir(output).join("submissions.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a submissions file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Where a shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardState {
    /// Every job of the shard has its row.
    Done,
    /// Running, by its manifest and by Slurm.
    Running,
    /// Waiting in Slurm's queue.
    Pending,
    /// Started but neither finished nor in the queue (killed, timed out, failed).
    Failed,
    /// Never started and not in the queue.
    Missing,
}

/// One shard's state and the evidence for it.
#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    /// 1-based shard number.
    pub shard: usize,
    /// Its state.
    pub state: ShardState,
    /// Jobs done of the shard's jobs, from its manifest (for a running shard, as it started).
    pub jobs_done: Option<(usize, usize)>,
    /// Rows in the shard's own files now (merged and part files).
    pub rows_on_disk: usize,
    /// Slurm's state code of its task (`R`, `PD`, ...), if it is in the queue.
    pub queue: Option<String>,
}

/// Slurm's queue state of every array task of `jobs`: shard number -> state code. `None` when
/// `squeue` cannot be run (no Slurm here).
pub fn queued_tasks(array_jobs: &[String]) -> Option<BTreeMap<usize, String>> {
    if array_jobs.is_empty() {
        return Some(BTreeMap::new());
    }
    let output = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %t", "-j", &array_jobs.join(",")])
        .output()
        .ok()?;
    // squeue exits non-zero for job ids it no longer knows: the queue holds none of them.
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let (id, state) = line.trim().split_once(' ')?;
                let (_, task) = id.split_once('_')?;
                Some((task.parse().ok()?, state.trim().to_string()))
            })
            .collect(),
    )
}

/// The state of shards `1..=shards` of the sweep in `output`, from the shard manifests and the
/// queue state `queue` (shard -> Slurm state code).
pub fn shard_states(
    output: &Path,
    shards: usize,
    queue: &BTreeMap<usize, String>,
) -> anyhow::Result<Vec<ShardStatus>> {
    let frames = store::read_dir(output)?;
    (1..=shards)
        .map(|k| {
            let tag = Shard {
                index: k,
                count: shards,
            }
            .tag();
            let path = output.join(format!("manifest_{tag}.json"));
            let manifest: Option<Manifest> = match std::fs::read_to_string(&path) {
                Ok(text) => Some(
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a shard manifest", path.display()))?,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let marker = format!("_{tag}.");
            let rows_on_disk = frames
                .iter()
                .filter(|(p, _)| p.to_string_lossy().contains(&marker))
                .map(|(_, df)| df.height())
                .sum();
            let in_queue = queue.get(&k).cloned();
            let complete = manifest
                .as_ref()
                .is_some_and(|m| m.status == "finished" && m.jobs_done == m.jobs_in_shard);
            let state = match (&in_queue, &manifest) {
                _ if complete => ShardState::Done,
                (Some(code), _) if code == "PD" => ShardState::Pending,
                (Some(_), _) => ShardState::Running,
                (None, Some(_)) => ShardState::Failed,
                (None, None) => ShardState::Missing,
            };
            Ok(ShardStatus {
                shard: k,
                state,
                jobs_done: manifest.map(|m| (m.jobs_done, m.jobs_in_shard)),
                rows_on_disk,
                queue: in_queue,
            })
        })
        .collect()
}

/// The number of shards of the sweep in `output`: from its latest submission, else from its
/// manifests' names (`manifest_shardKofN.json`, the largest N).
pub fn shard_count(output: &Path) -> anyhow::Result<Option<usize>> {
    if let Some(last) = submissions(output)?.last() {
        return Ok(Some(last.plan.shards));
    }
    let mut count = None;
    for entry in std::fs::read_dir(output)
        .with_context(|| format!("cannot list {}", output.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        let n = name
            .strip_prefix("manifest_shard")
            .and_then(|r| r.strip_suffix(".json"))
            .and_then(|r| r.split_once("of"))
            .and_then(|(_, n)| n.parse::<usize>().ok());
        count = count.max(n);
    }
    Ok(count)
}
