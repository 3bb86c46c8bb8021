//! `zc`: the command line of the zero-cost NAS harness.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Zero-cost proxies for NAS-Bench-201: inspect the search space, check the data, score cells.
#[derive(Parser)]
#[command(name = "zc", version, about, long_about = None)]
struct Cli {
    /// Data directory (ground-truth table, images, fixtures). Default: $ZC_DATA_DIR, else the
    /// project directory's `data/` (the project directory is the nearest directory at or above
    /// the current one holding `data/nb201/`; relative paths in configs resolve against it).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a cell (string, index, reachability, #params, FLOPs, accuracies, neighbours) or sample cells.
    Space(commands::space::Args),
    /// Data files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Score one cell with zero-cost proxies and print each value and the seconds it took.
    Score(commands::score::Args),
    /// Score the cells of an experiment config into Parquet (resumable, shardable).
    Sweep(commands::sweep::Args),
    /// Reduced training (EcoNAS and its variants) of the cells of a training config into
    /// Parquet, one row per cell, setting, seed and epoch (resumable, shardable).
    Train(commands::train::Args),
    /// The paper's Figures 1 and 2 (reduced training vs. epochs, FLOPs and runtime; every
    /// proxy and baseline vs. cost) from training results and proxy sweeps, with their numbers.
    Figures(commands::figures::Args),
    /// Submit a sweep config to Slurm: one job array (a shard per task) and a dependent job
    /// that writes the table; --dry-run prints the scripts.
    Submit(commands::submit::Args),
    /// Where the shards of a sweep directory stand (done, running, pending, failed, missing) and
    /// what to resubmit.
    Status(commands::submit::StatusArgs),
    /// Rank-correlation table (Spearman, CI, top-10%, Kendall, vote) of sweep results vs. the paper.
    Table(commands::table::Args),
    /// Is a proxy better than the baselines? Spearman and Kendall with bootstrap CIs on common
    /// cells, paired-bootstrap differences with p-values, top-k hit rates, figures; sweep
    /// columns and external CSV/Parquet scores.
    Compare(commands::compare::Args),
    /// NAS runs (RAND, RL, AE, BP) with zero-cost warmup and move proposal: curves, table, figure.
    Search(commands::search::Args),
    /// List the registered proxies.
    Proxies,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Validate every shipped data file and print what it holds.
    Check,
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output went away (`zc ... | head`): nothing left to say.
        Err(error) if is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Scoring a cell allocates and frees hundreds of activation maps of up to a few MiB. glibc's
/// malloc serves blocks that large with their own `mmap` once past its (adaptive) threshold and
/// returns the top of its heap to the kernel past another, so the same memory is faulted in
/// again, page by page, pass after pass. Fixed thresholds above any map keep freed memory for
/// reuse: 8% fewer page faults and 3% less time on the all-3x3 cell (2-core AMD EPYC).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        // The largest value glibc accepts for the mmap threshold (32 MiB on 64-bit).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let project = commands::project_dir()?;
    let data_dir = || commands::data_dir(cli.data_dir.clone(), project.as_deref());
    let project = project.as_deref();
    match cli.command {
        Command::Space(args) => commands::space::run(&data_dir()?, args),
        Command::Data {
            command: DataCommand::Check,
        } => commands::data::check(&data_dir()?),
        Command::Score(args) => commands::score::run(&data_dir()?, args),
        Command::Sweep(args) => commands::sweep::run(&data_dir()?, project, args),
        Command::Train(args) => commands::train::run(&data_dir()?, project, args),
        Command::Figures(args) => commands::figures::run(&data_dir()?, args),
        Command::Submit(args) => commands::submit::run(&data_dir()?, project, args),
        Command::Status(args) => commands::submit::status(args),
        Command::Table(args) => commands::table::run(&data_dir()?, args),
        Command::Compare(args) => commands::compare::run(&data_dir()?, args),
        Command::Search(args) => commands::search::run(&data_dir()?, project, args),
        Command::Proxies => {
            for p in zc_proxies::proxy::REGISTRY {
                commands::outln!("{:<11} {}", p.name(), p.summary())?;
            }
            Ok(())
        }
    }
}
