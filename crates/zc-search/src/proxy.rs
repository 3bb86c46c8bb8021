//! Zero-cost proxy scores as the search sees them: a table, with missing cells scored on demand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use zc_space::Cell;

use crate::SearchError;

/// Computes the score of a cell missing from the table (e.g. with the proxy engine).
pub type Scorer = Box<dyn Fn(Cell) -> Result<f64, String> + Send + Sync>;

/// A proxy's scores (higher is better). Looked up in a table; a cell missing from it is scored
/// by the [`Scorer`] and cached (parallel runs asking for the same new cell at the same moment
/// may each compute it; the scorer is deterministic, so they agree). NaN scores rank below
/// every number.
pub struct ProxyScores {
    name: String,
    table: Vec<Option<f64>>,
    scorer: Option<Scorer>,
    computed: Mutex<HashMap<Cell, f64>>,
    computed_count: AtomicUsize,
}

impl std::fmt::Debug for ProxyScores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyScores")
            .field("name", &self.name)
            .field("known", &self.known_count())
            .field("has_scorer", &self.scorer.is_some())
            .finish()
    }
}

impl ProxyScores {
    /// A complete table indexed by [`Cell::code`].
    pub fn from_table(name: &str, scores: Vec<f64>) -> Result<Self, SearchError> {
        Self::new(name, scores.into_iter().map(Some).collect(), None)
    }

    /// A partial table indexed by [`Cell::code`] (`None` = not scored yet) and an optional
    /// scorer for the missing cells.
    pub fn new(
        name: &str,
        table: Vec<Option<f64>>,
        scorer: Option<Scorer>,
    ) -> Result<Self, SearchError> {
        if table.len() != Cell::COUNT {
            return Err(SearchError::WrongLength {
                what: "proxy score table",
                found: table.len(),
                expected: Cell::COUNT,
            });
        }
        Ok(ProxyScores {
            name: name.to_string(),
            table,
            scorer,
            computed: Mutex::new(HashMap::new()),
            computed_count: AtomicUsize::new(0),
        })
    }

    /// The proxy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many cells the table holds.
    pub fn known_count(&self) -> usize {
        self.table.iter().filter(|s| s.is_some()).count()
    }

    /// How many cells were scored on demand so far.
    pub fn computed_count(&self) -> usize {
        self.computed_count.load(Ordering::Relaxed)
    }

    /// The cells scored on demand so far and their raw scores, in cell-code order.
    pub fn computed(&self) -> Vec<(Cell, f64)> {
        let mut cells: Vec<(Cell, f64)> = self.lock().iter().map(|(&c, &s)| (c, s)).collect();
        cells.sort_by_key(|(c, _)| c.code());
        cells
    }

    /// The score of `cell`, NaN mapped to negative infinity so that it ranks last.
    pub fn score(&self, cell: Cell) -> Result<f64, SearchError> {
        let raw = match self.table[usize::from(cell.code())] {
            Some(s) => s,
            None => self.score_missing(cell)?,
        };
        Ok(if raw.is_nan() { f64::NEG_INFINITY } else { raw })
    }

    fn score_missing(&self, cell: Cell) -> Result<f64, SearchError> {
        if let Some(&s) = self.lock().get(&cell) {
            return Ok(s);
        }
        let scorer = self.scorer.as_ref().ok_or_else(|| SearchError::Proxy {
            proxy: self.name.clone(),
            cell: cell.to_string(),
            why: "not in the score table, and no scorer to compute it".into(),
        })?;
        let s = scorer(cell).map_err(|why| SearchError::Proxy {
            proxy: self.name.clone(),
            cell: cell.to_string(),
            why,
        })?;
        if self.lock().insert(cell, s).is_none() {
            self.computed_count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Cell, f64>> {
        // A poisoned cache only means another run panicked; its entries are still valid.
        self.computed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cell of `cells` with the highest score (the first on ties).
    ///
    /// # Panics
    /// If `cells` is empty.
    pub fn best_of(&self, cells: &[Cell]) -> Result<Cell, SearchError> {
        let mut best: Option<(Cell, f64)> = None;
        for &c in cells {
            let s = self.score(c)?;
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((c, s));
            }
        }
        Ok(best.expect("best_of needs at least one cell").0)
    }

    /// `cells` sorted by descending score (stable on ties).
    pub fn rank(&self, cells: &[Cell]) -> Result<Vec<Cell>, SearchError> {
        let mut scored = cells
            .iter()
            .map(|&c| Ok((c, self.score(c)?)))
            .collect::<Result<Vec<_>, SearchError>>()?;
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored.into_iter().map(|(c, _)| c).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cells_are_scored_once_on_demand() {
        let mut table = vec![Some(1.0); Cell::COUNT];
        table[3] = None;
        table[4] = Some(f64::NAN);
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let scorer: Scorer = Box::new(move |c| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok(f64::from(c.code()) * 10.0)
        });
        let proxy = ProxyScores::new("p", table, Some(scorer)).unwrap();
        let c3 = Cell::from_code(3).unwrap();
        assert_eq!(proxy.score(c3).unwrap(), 30.0);
        assert_eq!(proxy.score(c3).unwrap(), 30.0);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(proxy.computed_count(), 1);
        assert_eq!(
            proxy.score(Cell::from_code(4).unwrap()).unwrap(),
            f64::NEG_INFINITY
        );
        let cells: Vec<Cell> = [0, 3, 4].map(|i| Cell::from_code(i).unwrap()).to_vec();
        assert_eq!(proxy.best_of(&cells).unwrap(), c3);
        assert_eq!(proxy.rank(&cells).unwrap()[2], cells[2]);
    }

    #[test]
    fn a_missing_cell_without_a_scorer_is_an_error_naming_it() {
        let proxy = ProxyScores::new("synflow", vec![None; Cell::COUNT], None).unwrap();
        assert!(ProxyScores::from_table("short", vec![1.0; 3]).is_err());
        let err = proxy.score(Cell::from_code(0).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("synflow could not score |none~0|"),
            "{err}"
        );
    }
}
