//! The benchmark as a trainer: querying a cell's accuracy is "training" it, counted by a budget.

use std::collections::HashMap;

use zc_space::Cell;

use crate::SearchError;

/// The accuracies a search sees, one per cell, indexed by [`Cell::code`].
///
/// `select` is what the search optimises (a validation accuracy where the benchmark has one);
/// `report` is what the curves show (the test accuracy), as in the paper.
#[derive(Debug, Clone)]
pub struct Accuracies {
    select: Vec<f64>,
    report: Vec<f64>,
}

impl Accuracies {
    /// Tables indexed by [`Cell::code`], both of length [`Cell::COUNT`].
    pub fn new(select: Vec<f64>, report: Vec<f64>) -> Result<Self, SearchError> {
        for (what, v) in [
            ("selection accuracy", &select),
            ("report accuracy", &report),
        ] {
            if v.len() != Cell::COUNT {
                return Err(SearchError::WrongLength {
                    what,
                    found: v.len(),
                    expected: Cell::COUNT,
                });
            }
            if let Some(code) = v.iter().position(|a| !a.is_finite()) {
                return Err(SearchError::NotFinite { what, code });
            }
        }
        Ok(Accuracies { select, report })
    }

    /// The selection accuracy of `cell`.
    pub fn select(&self, cell: Cell) -> f64 {
        self.select[usize::from(cell.code())]
    }

    /// The reported accuracy of `cell`.
    pub fn report(&self, cell: Cell) -> f64 {
        self.report[usize::from(cell.code())]
    }
}

/// One trained model of a search run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// How many distinct models have been trained, this one included (1-based).
    pub trained: usize,
    /// The cell trained.
    pub cell: Cell,
    /// Its selection accuracy.
    pub select_accuracy: f64,
    /// Its reported accuracy.
    pub report_accuracy: f64,
    /// The reported accuracy of the best cell so far by selection accuracy.
    pub best_report_accuracy: f64,
}

/// Consecutive repeated queries after which a run that proposes nothing new is stopped early.
const MAX_REPEATS: usize = 100_000;

/// Trains cells (queries the benchmark) until the budget of distinct cells is spent.
#[derive(Debug)]
pub struct Trainer<'a> {
    accuracies: &'a Accuracies,
    budget: usize,
    trained: HashMap<Cell, f64>,
    steps: Vec<Step>,
    best: Option<(f64, f64)>,
    repeats: usize,
}

impl<'a> Trainer<'a> {
    /// A trainer over `accuracies` with a budget of `budget` distinct trained cells.
    pub fn new(accuracies: &'a Accuracies, budget: usize) -> Self {
        Trainer {
            accuracies,
            budget: budget.min(Cell::COUNT),
            trained: HashMap::new(),
            steps: Vec::new(),
            best: None,
            repeats: 0,
        }
    }

    /// Trains `cell` and returns its selection accuracy, or `None` when the budget is spent.
    /// A cell trained before returns its accuracy again at no cost.
    pub fn train(&mut self, cell: Cell) -> Option<f64> {
        if let Some(&acc) = self.trained.get(&cell) {
            self.repeats += 1;
            return Some(acc);
        }
        if self.is_done() {
            return None;
        }
        self.repeats = 0;
        let select = self.accuracies.select(cell);
        let report = self.accuracies.report(cell);
        if self.best.is_none_or(|(best, _)| select > best) {
            self.best = Some((select, report));
        }
        self.trained.insert(cell, select);
        self.steps.push(Step {
            trained: self.steps.len() + 1,
            cell,
            select_accuracy: select,
            report_accuracy: report,
            best_report_accuracy: self.best.map_or(report, |(_, r)| r),
        });
        Some(select)
    }

    /// The selection accuracy of `cell` if it has been trained.
    pub fn trained_accuracy(&self, cell: Cell) -> Option<f64> {
        self.trained.get(&cell).copied()
    }

    /// Whether the budget is spent, or the run has proposed only trained cells for so long
    /// that it cannot be expected to find a new one.
    pub fn is_done(&self) -> bool {
        self.steps.len() >= self.budget || self.repeats >= MAX_REPEATS
    }

    /// How many distinct cells have been trained.
    pub fn trained_count(&self) -> usize {
        self.steps.len()
    }

    /// The cells trained so far with their selection accuracies, in training order.
    pub fn history(&self) -> impl Iterator<Item = (Cell, f64)> + '_ {
        self.steps.iter().map(|s| (s.cell, s.select_accuracy))
    }

    /// The run's steps, one per trained model.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracies() -> Accuracies {
        let select = (0..Cell::COUNT).map(|i| i as f64).collect::<Vec<_>>();
        let report = select.iter().map(|v| -v).collect();
        Accuracies::new(select, report).unwrap()
    }

    #[test]
    fn counts_distinct_cells_and_tracks_the_best_by_selection() {
        let acc = accuracies();
        let mut trainer = Trainer::new(&acc, 2);
        let a = Cell::from_code(10).unwrap();
        let b = Cell::from_code(5).unwrap();
        assert_eq!(trainer.train(a), Some(10.0));
        assert_eq!(trainer.train(a), Some(10.0), "a re-query is free");
        assert_eq!(trainer.trained_count(), 1);
        assert_eq!(trainer.train(b), Some(5.0));
        assert!(trainer.is_done());
        assert_eq!(trainer.train(Cell::from_code(7).unwrap()), None);
        assert_eq!(trainer.train(b), Some(5.0), "trained cells stay queryable");
        let steps = trainer.into_steps();
        assert_eq!(steps.len(), 2);
        // The best by selection is still a (10), whose reported accuracy is -10.
        assert_eq!(steps[1].best_report_accuracy, -10.0);
        assert_eq!(steps[1].report_accuracy, -5.0);
    }

    #[test]
    fn rejects_tables_of_the_wrong_length() {
        let err = Accuracies::new(vec![0.0; 3], vec![0.0; Cell::COUNT]).unwrap_err();
        assert!(err.to_string().contains("selection accuracy has 3 values"));
    }
}
