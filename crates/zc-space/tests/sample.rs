//! Deterministic sampling of cells.

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use zc_space::{Cell, SpaceError, random_cell, sample_cells};

#[test]
fn sampling_is_deterministic_distinct_and_seed_dependent() {
    let a = sample_cells(7, 1000).unwrap();
    assert_eq!(a.len(), 1000);
    assert_eq!(a, sample_cells(7, 1000).unwrap());
    assert_eq!(a.iter().collect::<HashSet<_>>().len(), 1000);
    let b = sample_cells(8, 1000).unwrap();
    assert_ne!(a, b);
    // Two independent draws of 1000 out of 15625 share about 64 cells, far from all of them.
    let shared = a
        .iter()
        .collect::<HashSet<_>>()
        .intersection(&b.iter().collect())
        .count();
    assert!(shared < 200, "{shared}");
    assert!(sample_cells(0, 0).unwrap().is_empty());
}

#[test]
fn sampling_the_whole_space_gives_every_cell_once() {
    let all: HashSet<Cell> = sample_cells(1, Cell::COUNT).unwrap().into_iter().collect();
    assert_eq!(all, Cell::all().collect());
    assert_eq!(
        sample_cells(1, Cell::COUNT + 1),
        Err(SpaceError::SampleTooLarge { requested: 15_626 })
    );
}

#[test]
fn random_cells_cover_every_op_on_every_edge() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let cells: Vec<Cell> = (0..2000).map(|_| random_cell(&mut rng)).collect();
    for edge in 0..zc_space::NUM_EDGES {
        let ops: HashSet<_> = cells.iter().map(|c| c.op(edge)).collect();
        assert_eq!(ops.len(), 5, "edge {edge}");
    }
    let mut again = ChaCha8Rng::seed_from_u64(3);
    assert_eq!(random_cell(&mut again), cells[0]);
}
