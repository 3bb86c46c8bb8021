//! One module per subcommand.

pub mod compare;
pub mod data;
pub mod figures;
pub mod score;
pub mod search;
pub mod space;
pub mod submit;
pub mod sweep;
pub mod table;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// `println!` into stdout that returns an error instead of panicking when stdout is closed
/// (`zc space --sample 100 | head -1`); `main` ends quietly on that error.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// The subdirectory of `data/` whose presence marks a project directory.
const PROJECT_MARKER: &str = "data/nb201";

/// The project directory: the nearest directory at or above the current one that holds
/// `data/nb201/` (a checkout of this repository, or a copy of it). Relative paths in experiment
/// configs resolve against it, and its `data/` is the default data directory. `None` outside
/// any project.
pub fn project_dir() -> anyhow::Result<Option<PathBuf>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd
        .ancestors()
        .find(|dir| dir.join(PROJECT_MARKER).is_dir())
        .map(Path::to_path_buf))
}

/// The data directory: `--data-dir`, else `$ZC_DATA_DIR`, else the project directory's `data/`.
pub fn data_dir(flag: Option<PathBuf>, project: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match (flag, std::env::var_os("ZC_DATA_DIR")) {
        (Some(dir), _) => dir,
        (None, Some(env)) if env.is_empty() => {
            bail!("ZC_DATA_DIR is set but empty: set it to the data directory, or unset it")
        }
        (None, Some(env)) => PathBuf::from(env),
        (None, None) => match project {
            Some(project) => project.join("data"),
            None => bail!(
                "no data directory: the current directory is not inside a zc project (no \
                 {PROJECT_MARKER}/ here or above); give --data-dir DIR or set ZC_DATA_DIR"
            ),
        },
    };
    Ok(dir.canonicalize().unwrap_or(dir))
}

/// Loads a sweep config with the command line's overrides: the ground truth and the
/// experiment, its relative `output` resolved in the project directory, `--all-cells` and
/// `--output` applied.
pub fn load_experiment(
    data_dir: &Path,
    project: Option<&Path>,
    config: &Path,
    all_cells: bool,
    output: Option<PathBuf>,
) -> anyhow::Result<(
    zc_benchmark::GroundTruth,
    zc_experiments::config::Experiment,
)> {
    let table = zc_benchmark::GroundTruth::load_shipped(data_dir)?;
    let mut experiment = zc_experiments::config::Experiment::load(config, &table)?;
    experiment.output = in_project(project, &experiment.output);
    if all_cells {
        experiment.select_all_cells(&table);
    }
    if let Some(output) = output {
        experiment.set_output(output);
    }
    Ok((table, experiment))
}

/// Resolves a path from a config: relative paths are relative to the project directory (the
/// current directory outside a project).
pub fn in_project(project: Option<&Path>, path: &Path) -> PathBuf {
    project.map_or_else(|| path.to_path_buf(), |p| p.join(path))
}

/// A cell as given on the command line: an official index (resolved through the ground-truth
/// table) or an architecture string.
pub enum CellArg {
    /// Official NB201 index.
    Index(usize),
    /// Parsed architecture string.
    Arch(zc_space::Cell),
}

impl CellArg {
    /// Parses an index or an architecture string.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text.trim().parse::<usize>() {
            Ok(index) => CellArg::Index(index),
            Err(_) => CellArg::Arch(text.parse()?),
        })
    }

    /// The cell, looking an index up in `table` (loaded only when needed).
    pub fn resolve(
        self,
        table: impl FnOnce() -> anyhow::Result<zc_benchmark::GroundTruth>,
    ) -> anyhow::Result<zc_space::Cell> {
        match self {
            CellArg::Index(index) => Ok(table()?.cell(index)?),
            CellArg::Arch(cell) => Ok(cell),
        }
    }
}
