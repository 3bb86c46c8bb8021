//! Deterministic random sampling of cells.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cell::Cell;
use crate::error::SpaceError;
use crate::op::Op;

/// `n` distinct cells drawn uniformly without replacement, in random order.
///
/// The draw is deterministic for a `seed` (a `ChaCha8Rng` seeded with
/// `seed_from_u64(seed)`); `n = 15625` returns a permutation of the whole space.
pub fn sample_cells(seed: u64, n: usize) -> Result<Vec<Cell>, SpaceError> {
    if n > Cell::COUNT {
        return Err(SpaceError::SampleTooLarge { requested: n });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(rand::seq::index::sample(&mut rng, Cell::COUNT, n)
        .into_iter()
        .filter_map(|code| Cell::from_code(code as u16).ok())
        .collect())
}

/// A uniformly random cell: each edge gets an op drawn uniformly from [`Op::ALL`].
pub fn random_cell(rng: &mut impl Rng) -> Cell {
    Cell::new(std::array::from_fn(|_| {
        Op::ALL[rng.random_range(0..Op::ALL.len())]
    }))
}
