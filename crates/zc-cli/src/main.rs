//! `zc`: the command line of the zero-cost NAS harness.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Zero-cost proxies for NAS-Bench-201: inspect the search space, check the data, score cells.
#[derive(Parser)]
#[command(name = "zc", version, about, long_about = None)]
struct Cli {
    /// Data directory (ground-truth table, images, fixtures). Default: $ZC_DATA_DIR, else the
    /// repository's `data/`.
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
    /// Rank-correlation table (Spearman, CI, top-10%, Kendall, vote) of sweep results vs. the paper.
    Table(commands::table::Args),
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
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = commands::data_dir(cli.data_dir);
    match cli.command {
        Command::Space(args) => commands::space::run(&data_dir, args),
        Command::Data {
            command: DataCommand::Check,
        } => commands::data::check(&data_dir),
        Command::Score(args) => commands::score::run(&data_dir, args),
        Command::Sweep(args) => commands::sweep::run(&data_dir, args),
        Command::Table(args) => commands::table::run(&data_dir, args),
        Command::Search(args) => commands::search::run(&data_dir, args),
        Command::Proxies => {
            for p in zc_proxies::proxy::REGISTRY {
                println!("{:<11} {}", p.name(), p.summary());
            }
            Ok(())
        }
    }
}
