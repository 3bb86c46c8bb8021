//! `zc submit`: a sweep as a Slurm job array, and `zc status`: where its shards stand.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zc_experiments::cluster::{self, Plan, ShardState, SlurmOptions};

/// Arguments of `zc submit`.
#[derive(clap::Args)]
pub struct Args {
    /// Experiment config (YAML) of `zc sweep`.
    config: PathBuf,
    /// Number of shards (one array task each). Default: enough for about --minutes-per-task each.
    #[arg(long)]
    shards: Option<usize>,
    /// Target minutes per task when choosing the number of shards (from measured rows in the
    /// output directory, else a per-proxy estimate).
    #[arg(long, default_value_t = 30.0)]
    minutes_per_task: f64,
    /// Submit only these shards (e.g. 2,5), to resubmit failed or missing ones: safe, sweeps resume.
    #[arg(long, value_delimiter = ',', value_name = "K,...")]
    only: Vec<usize>,
    /// Score all 15,625 cells instead of the config's selection.
    #[arg(long)]
    all_cells: bool,
    /// Output directory instead of the config's (must be on a filesystem every node sees).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit of each task (Slurm format). Default: twice --minutes-per-task.
    #[arg(long)]
    time: Option<String>,
    /// CPUs per task: the shard scores this many cells at once (one per core).
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// Memory per task (e.g. 4G). Default: the partition's.
    #[arg(long)]
    mem: Option<String>,
    /// Slurm account.
    #[arg(long)]
    account: Option<String>,
    /// Another #SBATCH argument, as sbatch takes it (repeatable), e.g. --sbatch-arg=--qos=low.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Print the scripts (and write them under OUTPUT/slurm/) without submitting.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `zc submit`.
pub fn run(data_dir: &Path, project: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let (_, experiment) = super::load_experiment(
        data_dir,
        project,
        &args.config,
        args.all_cells,
        args.output.clone(),
    )?;
    if args.cpus_per_task == 0 || args.minutes_per_task <= 0.0 {
        bail!("--cpus-per-task and --minutes-per-task must be positive");
    }
    let output = absolute(&experiment.output)?;
    let shards = match args.shards {
        Some(0) => bail!("--shards must be at least 1"),
        Some(n) => n,
        None => cluster::default_shards(&experiment, args.minutes_per_task, args.cpus_per_task),
    };
    let tasks = if args.only.is_empty() {
        (1..=shards).collect()
    } else {
        if let Some(k) = args.only.iter().find(|&&k| k == 0 || k > shards) {
            bail!("--only {k}: shards are numbered 1 to {shards}");
        }
        let mut only = args.only.clone();
        only.sort_unstable();
        only.dedup();
        only
    };
    // The tasks read a copy of the config, so editing the original later changes nothing.
    let slurm_dir = cluster::slurm_dir(&output);
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    let config = slurm_dir.join("config.yaml");
    zc_experiments::store::write_text_atomic(&config, &experiment.text)?;
    let plan = Plan {
        name: experiment.name.clone(),
        zc: std::env::current_exe().context("cannot find the zc binary")?,
        data_dir: absolute(data_dir)?,
        config,
        output: output.clone(),
        all_cells: args.all_cells,
        shards,
        tasks,
        slurm: SlurmOptions {
            partition: args.partition,
            time: args
                .time
                .unwrap_or_else(|| slurm_time(2.0 * args.minutes_per_task)),
            cpus_per_task: args.cpus_per_task,
            mem: args.mem,
            account: args.account,
            extra: args.sbatch_args,
        },
    };
    let jobs = experiment.cells.len() * experiment.datasets.len() * experiment.seeds.len();
    let per_job = cluster::seconds_per_job(&experiment);
    let summary = format!(
        "{}: {} jobs (cells x datasets x seeds) in {} shards, tasks {:?}, ~{:.1} core-s per job, \
         ~{:.1} min per task on {} cpu(s); output {}",
        plan.name,
        jobs,
        shards,
        plan.tasks,
        per_job,
        jobs as f64 / shards as f64 * per_job / plan.slurm.cpus_per_task as f64 / 60.0,
        plan.slurm.cpus_per_task,
        output.display()
    );
    if args.dry_run {
        let (shard_script, merge_script) = cluster::write_scripts(&plan)?;
        super::outln!("# {summary}")?;
        super::outln!("# {} (sbatch {0})", shard_script.display())?;
        super::outln!("{}", cluster::shard_script(&plan))?;
        super::outln!(
            "# {} (sbatch --dependency=afterok:ARRAY_JOB_ID {0})",
            merge_script.display()
        )?;
        super::outln!("{}", cluster::merge_script(&plan))?;
        return Ok(());
    }
    let submission = cluster::submit(&plan)?;
    super::outln!("{summary}")?;
    super::outln!(
        "submitted job array {} ({} tasks) and merge job {} (after every task succeeded)",
        submission.array_job,
        plan.tasks.len(),
        submission.merge_job
    )?;
    super::outln!(
        "scripts and logs in {}; follow with: zc status {}",
        slurm_dir.display(),
        output.display()
    )?;
    Ok(())
}

/// Minutes as Slurm's `HH:MM:SS`.
fn slurm_time(minutes: f64) -> String {
    let total = (minutes * 60.0).ceil() as u64;
    format!(
        "{:02}:{:02}:{:02}",
        total / 3600,
        total / 60 % 60,
        total % 60
    )
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// Arguments of `zc status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The output directory of a sharded sweep.
    output: PathBuf,
    /// Exit with an error unless every shard is done (the merge job's check).
    #[arg(long)]
    require_complete: bool,
}

/// Runs `zc status`.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let output = &args.output;
    let shards = cluster::shard_count(output)?.with_context(|| {
        format!(
            "{} has no shard manifests and no Slurm submission",
            output.display()
        )
    })?;
    let submissions = cluster::submissions(output)?;
    let array_jobs: Vec<String> = submissions.iter().map(|s| s.array_job.clone()).collect();
    let queue = cluster::queued_tasks(&array_jobs);
    let states = cluster::shard_states(output, shards, &queue.clone().unwrap_or_default())?;
    super::outln!("{}: {shards} shards", output.display())?;
    if queue.is_none() {
        super::outln!("(squeue is not available here: queue states unknown)")?;
    }
    super::outln!(
        "{:>5}  {:<8} {:>11} {:>13}  queue",
        "shard",
        "state",
        "jobs done",
        "rows on disk"
    )?;
    for s in &states {
        let done = s.jobs_done.map_or("-".into(), |(d, n)| format!("{d}/{n}"));
        let state = serde_json::to_value(s.state)?;
        super::outln!(
            "{:>5}  {:<8} {:>11} {:>13}  {}",
            s.shard,
            state.as_str().unwrap_or("?"),
            done,
            s.rows_on_disk,
            s.queue.as_deref().unwrap_or("-")
        )?;
    }
    let redo: Vec<String> = states
        .iter()
        .filter(|s| matches!(s.state, ShardState::Failed | ShardState::Missing))
        .map(|s| s.shard.to_string())
        .collect();
    let done = states
        .iter()
        .filter(|s| s.state == ShardState::Done)
        .count();
    super::outln!("{done} of {shards} shards done")?;
    if !redo.is_empty() {
        let config = cluster::slurm_dir(output).join("config.yaml");
        let mut options = String::new();
        if let Some(last) = submissions.last() {
            let (plan, slurm) = (&last.plan, &last.plan.slurm);
            if plan.all_cells {
                options.push_str(" --all-cells");
            }
            options.push_str(&format!(
                " --time {} --cpus-per-task {}",
                slurm.time, slurm.cpus_per_task
            ));
            for (flag, value) in [
                ("partition", &slurm.partition),
                ("mem", &slurm.mem),
                ("account", &slurm.account),
            ] {
                if let Some(v) = value {
                    options.push_str(&format!(" --{flag} {v}"));
                }
            }
            for extra in &slurm.extra {
                options.push_str(&format!(" --sbatch-arg={extra}"));
            }
        }
        super::outln!(
            "resubmit the failed or missing shards (safe: sweeps resume):\n  zc submit {} --output {} --shards {shards} --only {}{options}",
            config.display(),
            output.display(),
            redo.join(",")
        )?;
    }
    if args.require_complete && done < shards {
        bail!("{} of {shards} shards are not done", shards - done);
    }
    Ok(())
}
