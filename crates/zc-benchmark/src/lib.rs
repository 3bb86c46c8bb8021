//! The NAS-Bench-201 ground truth: for each of the 15,625 cells, in official index order, the
//! accuracies of the trained networks (see `data/README.md` for the columns).
//!
//! The official index (0..15624) is the row order of the shipped table; it is not the cell's
//! base-5 code. [`GroundTruth`] maps between the two.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use zc_data::Dataset;
use zc_space::Cell;

/// Errors of the ground-truth table.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    /// The file cannot be read as Parquet.
    #[error("cannot read ground-truth table {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The table is readable but wrong (missing column, bad row, wrong size).
    #[error("ground-truth table {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An index outside 0..15624.
    #[error("NB201 index {0} is out of range 0..15624")]
    IndexOutOfRange(usize),
    /// A metric the table does not hold for a dataset.
    #[error("the table has no {metric} accuracy for {dataset}; available: {available}")]
    Unavailable {
        /// The metric asked for.
        metric: &'static str,
        /// The dataset.
        dataset: &'static str,
        /// Metrics available for that dataset.
        available: String,
    },
    /// An unknown metric name.
    #[error(
        "unknown metric \"{0}\"; valid metrics: test, valid_oritest_1seed, val_1seed, valid_12ep, test_12ep, paper"
    )]
    UnknownMetric(String),
}

/// Which accuracy of a trained cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// 200 epochs, mean over seeds, on the test set (CIFAR-10 trained on all 50k images;
    /// CIFAR-100 and ImageNet16-120 on x-test).
    Test,
    /// CIFAR-10 only: the one-seed `cifar10-valid` model on the 10k test set (the paper's target).
    ValidOriTest1Seed,
    /// CIFAR-100 and ImageNet16-120: one seed, 200 epochs, validation split.
    Val1Seed,
    /// The 12-epoch schedule on the validation split (mean over seeds).
    Valid12Epochs,
    /// The 12-epoch schedule on the test split (mean over seeds).
    Test12Epochs,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 5] = [
        Metric::Test,
        Metric::ValidOriTest1Seed,
        Metric::Val1Seed,
        Metric::Valid12Epochs,
        Metric::Test12Epochs,
    ];

    /// Name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Test => "test",
            Metric::ValidOriTest1Seed => "valid_oritest_1seed",
            Metric::Val1Seed => "val_1seed",
            Metric::Valid12Epochs => "valid_12ep",
            Metric::Test12Epochs => "test_12ep",
        }
    }

    /// The paper's Table-1 target for `dataset`: CIFAR-10 against the one-seed
    /// `cifar10-valid` model's test accuracy, the others against x-test.
    pub fn paper_target(dataset: Dataset) -> Metric {
        match dataset {
            Dataset::Cifar10 => Metric::ValidOriTest1Seed,
            _ => Metric::Test,
        }
    }

    /// Parses a metric name for `dataset` (`paper` resolves to [`Metric::paper_target`]).
    pub fn parse(name: &str, dataset: Dataset) -> Result<Metric, BenchmarkError> {
        if name == "paper" {
            return Ok(Metric::paper_target(dataset));
        }
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| BenchmarkError::UnknownMetric(name.into()))
    }

    /// The table column holding this metric for `dataset`, if any.
    pub fn column(self, dataset: Dataset) -> Option<&'static str> {
        use Dataset::*;
        use Metric::*;
        Some(match (self, dataset) {
            (Test, Cifar10) => "c10_test_acc_200ep",
            (Test, Cifar100) => "c100_test_acc_200ep",
            (Test, ImageNet16_120) => "in16_test_acc_200ep",
            (ValidOriTest1Seed, Cifar10) => "c10valid_oritest_acc_200ep_1seed",
            (Val1Seed, Cifar100) => "c100_val_acc_200ep_1seed",
            (Val1Seed, ImageNet16_120) => "in16_val_acc_200ep_1seed",
            (Valid12Epochs, Cifar10) => "c10valid_xvalid_acc_12ep",
            (Valid12Epochs, Cifar100) => "c100_xvalid_acc_12ep",
            (Valid12Epochs, ImageNet16_120) => "in16_xvalid_acc_12ep",
            (Test12Epochs, Cifar10) => "c10_oritest_acc_12ep",
            (Test12Epochs, Cifar100) => "c100_xtest_acc_12ep",
            (Test12Epochs, ImageNet16_120) => "in16_xtest_acc_12ep",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every accuracy column, for validation and iteration.
fn accuracy_columns() -> impl Iterator<Item = (Dataset, Metric, &'static str)> {
    Dataset::ALL.into_iter().flat_map(|d| {
        Metric::ALL
            .into_iter()
            .filter_map(move |m| m.column(d).map(|c| (d, m, c)))
    })
}

/// The ground-truth table, held in memory.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    cells: Vec<Cell>,
    index_by_code: Vec<u32>,
    reachable: Vec<bool>,
    accuracies: Vec<(Dataset, Metric, Vec<f64>)>,
}

/// Path of the shipped table under a data directory.
pub fn shipped_path(data_dir: &Path) -> PathBuf {
    data_dir.join("nb201").join("nb201_ground_truth.parquet")
}

impl GroundTruth {
    /// Loads the shipped table (`DATA_DIR/nb201/nb201_ground_truth.parquet`).
    pub fn load_shipped(data_dir: &Path) -> Result<Self, BenchmarkError> {
        Self::load(&shipped_path(data_dir))
    }

    /// Loads and validates a ground-truth Parquet file: 15,625 rows in index order, every cell
    /// exactly once, every accuracy finite and within 0..100.
    pub fn load(path: &Path) -> Result<Self, BenchmarkError> {
        let read_err = |reason: String| BenchmarkError::Read {
            path: path.into(),
            reason,
        };
        let invalid = |reason: String| BenchmarkError::Invalid {
            path: path.into(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| read_err(e.to_string()))?;
        if df.height() != Cell::COUNT {
            return Err(invalid(format!(
                "{} rows, expected {}",
                df.height(),
                Cell::COUNT
            )));
        }
        let column = |name: &str| {
            df.column(name)
                .map_err(|_| invalid(format!("missing column \"{name}\"")))
        };
        let floats = |name: &str| -> Result<Vec<f64>, BenchmarkError> {
            let cast = column(name)?
                .cast(&DataType::Float64)
                .map_err(|e| invalid(format!("column \"{name}\": {e}")))?;
            let values = cast
                .f64()
                .map_err(|e| invalid(format!("column \"{name}\": {e}")))?;
            values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.ok_or_else(|| invalid(format!("column \"{name}\" row {row} is null")))
                })
                .collect()
        };
        for (row, index) in floats("nb201_index")?.into_iter().enumerate() {
            if index != row as f64 {
                return Err(invalid(format!(
                    "row {row} has nb201_index {index}; rows must be in index order"
                )));
            }
        }
        let arch = column("arch_str")?;
        let arch = arch
            .str()
            .map_err(|e| invalid(format!("column \"arch_str\": {e}")))?;
        let mut cells = Vec::with_capacity(Cell::COUNT);
        let mut index_by_code = vec![u32::MAX; Cell::COUNT];
        for (row, s) in arch.iter().enumerate() {
            let s = s.ok_or_else(|| invalid(format!("arch_str row {row} is null")))?;
            let cell: Cell = s.parse().map_err(|e| invalid(format!("row {row}: {e}")))?;
            let slot = &mut index_by_code[usize::from(cell.code())];
            if *slot != u32::MAX {
                return Err(invalid(format!(
                    "cell {s} appears at rows {} and {row}",
                    *slot
                )));
            }
            *slot = row as u32;
            cells.push(cell);
        }
        let reachable = cells.iter().map(Cell::is_output_reachable).collect();
        let accuracies = accuracy_columns()
            .map(|(d, m, name)| {
                let values = floats(name)?;
                if let Some((row, v)) = values
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(0.0..=100.0).contains(*v))
                {
                    return Err(invalid(format!(
                        "column \"{name}\" row {row} is {v}, not a percentage"
                    )));
                }
                Ok((d, m, values))
            })
            .collect::<Result<_, BenchmarkError>>()?;
        Ok(Self {
            cells,
            index_by_code,
            reachable,
            accuracies,
        })
    }

    /// Number of cells (15,625).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Always false for a valid table.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cell at official index `index`.
    pub fn cell(&self, index: usize) -> Result<Cell, BenchmarkError> {
        self.cells
            .get(index)
            .copied()
            .ok_or(BenchmarkError::IndexOutOfRange(index))
    }

    /// All cells in official index order.
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// The official index of `cell`.
    pub fn index_of(&self, cell: Cell) -> usize {
        self.index_by_code[usize::from(cell.code())] as usize
    }

    /// Whether the cell's output depends on its input.
    pub fn is_output_reachable(&self, index: usize) -> bool {
        self.reachable[index]
    }

    /// Accuracies (percent) of every cell, in index order.
    pub fn accuracies(&self, dataset: Dataset, metric: Metric) -> Result<&[f64], BenchmarkError> {
        self.accuracies
            .iter()
            .find(|(d, m, _)| *d == dataset && *m == metric)
            .map(|(_, _, v)| v.as_slice())
            .ok_or_else(|| BenchmarkError::Unavailable {
                metric: metric.name(),
                dataset: dataset.name(),
                available: Metric::ALL
                    .into_iter()
                    .filter(|m| m.column(dataset).is_some())
                    .map(Metric::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Accuracies (percent) of every cell, indexed by [`Cell::code`] instead of the official
    /// index (what code that enumerates the space by cell, such as a search, wants).
    pub fn accuracies_by_code(
        &self,
        dataset: Dataset,
        metric: Metric,
    ) -> Result<Vec<f64>, BenchmarkError> {
        let values = self.accuracies(dataset, metric)?;
        Ok(Cell::all()
            .map(|cell| values[self.index_of(cell)])
            .collect())
    }

    /// Accuracy of the cell at `index`.
    pub fn accuracy(
        &self,
        index: usize,
        dataset: Dataset,
        metric: Metric,
    ) -> Result<f64, BenchmarkError> {
        let values = self.accuracies(dataset, metric)?;
        values
            .get(index)
            .copied()
            .ok_or(BenchmarkError::IndexOutOfRange(index))
    }

    /// Every (metric, accuracy) the table holds for the cell at `index` on `dataset`.
    pub fn all_accuracies(&self, index: usize, dataset: Dataset) -> Vec<(Metric, f64)> {
        self.accuracies
            .iter()
            .filter(|(d, _, _)| *d == dataset)
            .map(|(_, m, v)| (*m, v[index]))
            .collect()
    }

    /// The index and accuracy of the best cell (lowest index among ties).
    pub fn best(&self, dataset: Dataset, metric: Metric) -> Result<(usize, f64), BenchmarkError> {
        let values = self.accuracies(dataset, metric)?;
        Ok(values
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f64::MIN),
                |best, (i, v)| if v > best.1 { (i, v) } else { best },
            ))
    }
}
