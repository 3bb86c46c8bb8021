//! One module per subcommand.

pub mod data;
pub mod score;
pub mod search;
pub mod space;
pub mod sweep;
pub mod table;

use std::path::PathBuf;

/// The data directory: the flag, else `$ZC_DATA_DIR`, else the repository's `data/`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    let dir = flag
        .or_else(|| std::env::var_os("ZC_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data")));
    dir.canonicalize().unwrap_or(dir)
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
