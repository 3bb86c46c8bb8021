//! Architecture strings, codes, enumeration, neighbours and reachability.

use std::collections::HashSet;

use zc_space::{Cell, EDGES, NUM_EDGES, Op, SpaceError};

const EXAMPLE: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

#[test]
fn parses_the_reference_example() {
    let cell: Cell = EXAMPLE.parse().unwrap();
    use Op::{NorConv3x3 as C3, SkipConnect as Skip};
    assert_eq!(cell.ops(), [C3, C3, C3, Skip, C3, C3]);
    assert_eq!(cell.op(3), Skip);
    assert_eq!(cell.to_string(), EXAMPLE);
    // code = 3 + 3*5 + 3*25 + 1*125 + 3*625 + 3*3125
    assert_eq!(cell.code(), 3 + 15 + 75 + 125 + 1875 + 9375);
}

#[test]
fn edges_are_in_arch_string_order() {
    let pairs = EDGES.map(|e| (e.to, e.from));
    assert_eq!(pairs, [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]);
}

#[test]
fn every_cell_round_trips_through_its_string_and_code() {
    let cells: Vec<Cell> = Cell::all().collect();
    assert_eq!(cells.len(), Cell::COUNT);
    for (code, cell) in cells.iter().enumerate() {
        assert_eq!(usize::from(cell.code()), code);
        assert_eq!(Cell::from_code(cell.code()), Ok(*cell));
        assert_eq!(cell.to_string().parse::<Cell>(), Ok(*cell));
    }
    let strings: HashSet<String> = cells.iter().map(Cell::to_string).collect();
    assert_eq!(
        strings.len(),
        Cell::COUNT,
        "distinct cells format distinctly"
    );
    assert_eq!(
        Cell::from_code(15_625),
        Err(SpaceError::CodeOutOfRange { code: 15_625 })
    );
}

#[test]
fn exactly_341_cells_have_an_unreachable_output() {
    assert_eq!(
        Cell::all().filter(|c| !c.is_output_reachable()).count(),
        341
    );
    assert!(!Cell::new([Op::None; NUM_EDGES]).is_output_reachable());
    // Only the path 0 -> 1 -> 2 -> 3 is open.
    let chain = Cell::new([
        Op::AvgPool3x3,
        Op::None,
        Op::SkipConnect,
        Op::None,
        Op::None,
        Op::NorConv1x1,
    ]);
    assert!(chain.is_output_reachable());
    assert!(!chain.with_op(2, Op::None).is_output_reachable());
}

#[test]
fn neighbours_differ_in_exactly_one_edge() {
    for cell in Cell::all().step_by(97) {
        let neighbours = cell.neighbours();
        assert_eq!(neighbours.len(), 24);
        assert_eq!(neighbours.iter().collect::<HashSet<_>>().len(), 24);
        for n in &neighbours {
            assert_ne!(*n, cell);
            let changed = (0..NUM_EDGES).filter(|&e| n.op(e) != cell.op(e)).count();
            assert_eq!(changed, 1, "{n} vs {cell}");
        }
    }
    let first = Cell::new([Op::None; NUM_EDGES]).neighbours();
    assert_eq!(
        first[0],
        Cell::new([Op::None; NUM_EDGES]).with_op(0, Op::SkipConnect)
    );
    assert_eq!(
        first[4],
        Cell::new([Op::None; NUM_EDGES]).with_op(1, Op::SkipConnect)
    );
}

/// Parses `input` and returns the error message, asserting it quotes the input.
fn parse_error(input: &str) -> String {
    let message = input.parse::<Cell>().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("malformed architecture string {input:?}: ")),
        "{message}"
    );
    message
}

#[test]
fn malformed_strings_are_rejected_with_a_reason() {
    let cases = [
        ("", "empty string"),
        (&EXAMPLE[1..], "missing leading `|`"),
        (&EXAMPLE[..EXAMPLE.len() - 1], "missing trailing `|`"),
        (
            " |none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "missing leading `|`",
        ),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",
            "expected 3 `+`-separated node groups, found 2",
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|",
            "expected 3 `+`-separated node groups, found 4",
        ),
        (
            "|none~0|+|none~0|+|none~0|none~1|none~2|",
            "node 2 expects 2 edges, found 1",
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|",
            "node 3 expects 3 edges, found 4",
        ),
        (
            "||+|none~0|none~1|+|none~0|none~1|none~2|",
            "node 1 expects 1 edges, found 0",
        ),
        (
            "|none~0|+|none~0|none~1|+|conv_5x5~0|none~1|none~2|",
            "unknown op \"conv_5x5\" on edge 3 (node 3 <- 0); valid ops: none, skip_connect, \
             nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
        ),
        (
            "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|",
            "edge 2 must come from node 1, found ~0",
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~02|",
            "edge 5 must come from node 2, found ~02",
        ),
        (
            "|none~0|+|none~0|none|+|none~0|none~1|none~2|",
            "token \"none\" on edge 2 (node 2 <- 1) lacks `~source`",
        ),
        (
            "|none~0|+none~0|none~1|+|none~0|none~1|none~2|",
            "node 2 group \"none~0|none~1|\" must start and end with `|`",
        ),
    ];
    for (input, reason) in cases {
        let message = parse_error(input);
        assert!(message.ends_with(reason), "{input:?}: {message}");
    }
}
