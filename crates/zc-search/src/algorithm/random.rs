//! Random search: train uniformly random cells; with `warmup(N)`, first the N scored cells in
//! proxy order.

use zc_space::random_cell;

use super::Search;
use crate::SearchError;

pub(super) fn search(s: &mut Search) -> Result<(), SearchError> {
    if let Some(n) = s.variant.warmup {
        for cell in s.warmup_ranking(n)? {
            if s.trainer.train(cell).is_none() {
                return Ok(());
            }
        }
    }
    while !s.trainer.is_done() {
        s.trainer.train(random_cell(s.rng));
    }
    Ok(())
}
