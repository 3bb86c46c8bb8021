//! Cells, their architecture strings, enumeration and neighbourhoods.

use std::fmt;
use std::str::FromStr;

use crate::error::SpaceError;
use crate::op::Op;

/// The number of edges of a cell.
pub const NUM_EDGES: usize = 6;
/// The number of nodes of a cell: node 0 is the input, node 3 the output.
pub const NUM_NODES: usize = 4;

/// A directed edge `from -> to` of the cell DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The node the edge writes to.
    pub to: usize,
    /// The node the edge reads from.
    pub from: usize,
}

/// The edges in architecture-string order: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
pub const EDGES: [Edge; NUM_EDGES] = [
    Edge { to: 1, from: 0 },
    Edge { to: 2, from: 0 },
    Edge { to: 2, from: 1 },
    Edge { to: 3, from: 0 },
    Edge { to: 3, from: 1 },
    Edge { to: 3, from: 2 },
];

/// One NB201 cell: the op on each of the [`EDGES`].
///
/// Ordering and hashing follow the ops edge by edge, in [`EDGES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    ops: [Op; NUM_EDGES],
}

impl Cell {
    /// The number of cells in the space, 5^6.
    pub const COUNT: usize = 15_625;

    /// The cell with `ops[e]` on edge `EDGES[e]`.
    pub fn new(ops: [Op; NUM_EDGES]) -> Cell {
        Cell { ops }
    }

    /// The ops on the edges, in [`EDGES`] order.
    pub fn ops(&self) -> [Op; NUM_EDGES] {
        self.ops
    }

    /// The op on edge `EDGES[edge]`.
    ///
    /// # Panics
    /// If `edge >= NUM_EDGES`.
    pub fn op(&self, edge: usize) -> Op {
        self.ops[edge]
    }

    /// The base-5 code of the cell: the sum over edges `e` of `ops[e].index() * 5^e`,
    /// in `0..15625`.
    ///
    /// This is NOT the official NAS-Bench-201 index, which is the row order of the
    /// ground-truth table and must be looked up there.
    pub fn code(&self) -> u16 {
        self.ops
            .iter()
            .rev()
            .fold(0, |code, op| code * 5 + op.index() as u16)
    }

    /// The cell with the given base-5 [`code`](Cell::code).
    pub fn from_code(code: u16) -> Result<Cell, SpaceError> {
        if usize::from(code) >= Cell::COUNT {
            return Err(SpaceError::CodeOutOfRange { code });
        }
        let mut rest = usize::from(code);
        Ok(Cell::new(std::array::from_fn(|_| {
            let op = Op::ALL[rest % 5];
            rest /= 5;
            op
        })))
    }

    /// All 15,625 cells in code order.
    pub fn all() -> impl Iterator<Item = Cell> {
        (0..Cell::COUNT as u16).filter_map(|code| Cell::from_code(code).ok())
    }

    /// A copy of the cell with `op` on edge `EDGES[edge]`.
    ///
    /// # Panics
    /// If `edge >= NUM_EDGES`.
    pub fn with_op(&self, edge: usize, op: Op) -> Cell {
        let mut ops = self.ops;
        ops[edge] = op;
        Cell::new(ops)
    }

    /// The 24 cells that differ from this one on exactly one edge, edge-major, then in
    /// [`Op::ALL`] order.
    pub fn neighbours(&self) -> Vec<Cell> {
        (0..NUM_EDGES)
            .flat_map(|edge| {
                Op::ALL
                    .into_iter()
                    .filter(move |&op| op != self.ops[edge])
                    .map(move |op| self.with_op(edge, op))
            })
            .collect()
    }

    /// Whether a path of non-`none` edges leads from the input (node 0) to the output
    /// (node 3). When it does not, the network's output does not depend on its input.
    pub fn is_output_reachable(&self) -> bool {
        let mut reachable = [true, false, false, false];
        // EDGES is sorted by target node, so one pass propagates reachability.
        for (edge, op) in EDGES.iter().zip(self.ops) {
            if op != Op::None && reachable[edge.from] {
                reachable[edge.to] = true;
            }
        }
        reachable[NUM_NODES - 1]
    }
}

impl fmt::Display for Cell {
    /// Formats the NB201 architecture string, e.g.
    /// `|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("|")?;
        for (edge, op) in EDGES.iter().zip(self.ops) {
            if edge.from == 0 && edge.to > 1 {
                f.write_str("+|")?;
            }
            write!(f, "{op}~{}|", edge.from)?;
        }
        Ok(())
    }
}

impl FromStr for Cell {
    type Err = SpaceError;

    /// Parses an NB201 architecture string strictly: no whitespace, exactly three
    /// `+`-separated node groups, each `|op~from|...|` with sources 0, 1, ... in order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = |reason: String| SpaceError::MalformedArch {
            input: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(malformed("empty string".into()));
        }
        if !s.starts_with('|') {
            return Err(malformed("missing leading `|`".into()));
        }
        if !s.ends_with('|') {
            return Err(malformed("missing trailing `|`".into()));
        }
        let groups: Vec<&str> = s.split('+').collect();
        if groups.len() != NUM_NODES - 1 {
            return Err(malformed(format!(
                "expected {} `+`-separated node groups, found {}",
                NUM_NODES - 1,
                groups.len()
            )));
        }
        let mut ops = [Op::None; NUM_EDGES];
        let mut edge = 0;
        for (to, group) in (1..NUM_NODES).zip(groups) {
            let tokens: Vec<&str> = match group.strip_prefix('|').and_then(|g| g.strip_suffix('|'))
            {
                Some("") => Vec::new(),
                Some(inner) => inner.split('|').collect(),
                None => {
                    return Err(malformed(format!(
                        "node {to} group {group:?} must start and end with `|`"
                    )));
                }
            };
            if tokens.len() != to {
                return Err(malformed(format!(
                    "node {to} expects {to} edges, found {}",
                    tokens.len()
                )));
            }
            for (from, token) in tokens.into_iter().enumerate() {
                let place = format!("edge {edge} (node {to} <- {from})");
                let (name, source) = token.split_once('~').ok_or_else(|| {
                    malformed(format!("token {token:?} on {place} lacks `~source`"))
                })?;
                ops[edge] = name.parse().map_err(|_| {
                    malformed(format!(
                        "unknown op {name:?} on {place}; valid ops: {}",
                        Op::valid_names()
                    ))
                })?;
                if source != from.to_string() {
                    return Err(malformed(format!(
                        "edge {edge} must come from node {from}, found ~{source}"
                    )));
                }
                edge += 1;
            }
        }
        Ok(Cell::new(ops))
    }
}
