//! The NAS-Bench-201 search space.
//!
//! A [`Cell`] is a DAG of [`NUM_NODES`] nodes whose [`NUM_EDGES`] edges each carry one of the
//! five operations in [`Op::ALL`], giving [`Cell::COUNT`] = 5^6 = 15,625 cells. This crate
//! parses and formats NB201 architecture strings, enumerates and samples cells, lists one-edit
//! neighbours, and computes the analytic #params and FLOPs of the network a cell is stacked into.
//!
//! ```
//! use zc_space::{Cell, Op};
//!
//! let arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";
//! let cell: Cell = arch.parse()?;
//! assert_eq!(cell.op(0), Op::AvgPool3x3);
//! assert_eq!(cell.to_string(), arch);
//! assert_eq!(cell.param_count(10), 128_186);
//! assert!(cell.is_output_reachable());
//! assert_eq!(Cell::all().count(), Cell::COUNT);
//! # Ok::<(), zc_space::SpaceError>(())
//! ```

mod cell;
mod cost;
mod error;
mod op;
mod sample;

pub use cell::{Cell, EDGES, Edge, NUM_EDGES, NUM_NODES};
pub use error::SpaceError;
pub use op::Op;
pub use sample::{random_cell, sample_cells};
