//! #params and FLOPs, checked by hand and against NAS-Bench-Suite-Zero.

use zc_space::{Cell, NUM_EDGES, Op};

/// 50 rows (every 189th) of `nbsz_zc_c10_subset.csv` (NAS-Bench-Suite-Zero, CIFAR-10):
/// arch string, params (millions), flops (millions).
const NBSZ: &str = include_str!("data/nbsz_params_flops_c10.csv");

/// Parsed NBSZ rows: the cell, params and FLOPs (both as plain counts).
fn nbsz_rows() -> Vec<(Cell, i64, i64)> {
    NBSZ.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let millions = |s: &str| (s.parse::<f64>().unwrap() * 1e6).round() as i64;
            (
                fields[0].parse().unwrap(),
                millions(fields[1]),
                millions(fields[2]),
            )
        })
        .collect()
}

fn conv_count(cell: &Cell) -> i64 {
    cell.ops().iter().filter(|op| op.is_conv()).count() as i64
}

const HAND_CELL: &str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";

#[test]
fn params_of_the_hand_computed_cell() {
    // stem 3*16*9 + 32 = 464; two 1x1 convs, 5 cells per stage:
    // 2 * 5 * ((16*16+16) + (32*32+32) + (64*64+64)) = 54,880;
    // reductions (4608+64+9216+64+512) + (18432+128+36864+128+2048) = 14,464 + 57,600;
    // head 128 + 64*10 + 10 = 778.
    let cell: Cell = HAND_CELL.parse().unwrap();
    assert_eq!(cell.param_count(10), 128_186);
    assert_eq!(cell.param_count(100), 128_186 + 90 * 65);
    let skeleton = 464 + 14_464 + 57_600 + 778;
    assert_eq!(Cell::new([Op::None; NUM_EDGES]).param_count(10), skeleton);
    assert_eq!(
        Cell::new([Op::AvgPool3x3; NUM_EDGES]).param_count(10),
        skeleton
    );
}

#[test]
fn params_match_nbsz_up_to_its_bn_convention() {
    // NBSZ's cell convs have no bias but an affine BN: +C per conv op per cell.
    for (cell, nbsz, _) in nbsz_rows() {
        let ours = cell.param_count(10) as i64;
        assert_eq!(
            nbsz,
            ours + conv_count(&cell) * 5 * (16 + 32 + 64),
            "{cell}"
        );
    }
}

#[test]
fn flops_of_hand_computed_cells() {
    // Skeleton at 32x32, 10 classes: stem 1024*432 = 442,368;
    // reduction 1 (16x16 out): 256 * (4608 + 9216 + 16*4 + 512) = 3,686,400;
    // reduction 2 (8x8 out): 64 * (18432 + 36864 + 32*4 + 2048) = 3,678,208;
    // head: global pool 64*64 = 4,096, linear 640 + 10 = 650. Total 7,811,722.
    let none = Cell::new([Op::None; NUM_EDGES]);
    assert_eq!(none.flops(10, 32), 7_811_722);
    assert_eq!(
        Cell::new([Op::SkipConnect; NUM_EDGES]).flops(10, 32),
        7_811_722
    );
    // Per op, summed over 5 cells of each stage (1024*C=16, 256*C=32, 64*C=64):
    // avg_pool: 5 * (1024*144 + 256*288 + 64*576) = 1,290,240;
    // nor_conv_1x1: 5 * (1024*272 + 256*1056 + 64*4160) = 4,075,520.
    let cell: Cell = HAND_CELL.parse().unwrap();
    assert_eq!(cell.flops(10, 32), 7_811_722 + 1_290_240 + 2 * 4_075_520);
    // nor_conv_3x3: 5 * (1024*2320 + 256*9248 + 64*36928) = 35,532,800.
    let one_3x3 = none.with_op(0, Op::NorConv3x3);
    assert_eq!(one_3x3.flops(10, 32), 7_811_722 + 35_532_800);
}

#[test]
fn flops_match_nbsz_up_to_its_counter() {
    // NBSZ's counter charges 2 more operations per cell-conv output element than ours
    // (consistent with charging ReLU + affine BN instead of a bias), i.e.
    // 5 * 2 * (16*32*32 + 32*16*16 + 64*8*8) = 286,720 per conv op, plus a constant 132,150
    // from the layers outside the cells (it also charges their BN/ReLU; we do not).
    // Pools are charged alike: the difference does not depend on them.
    let rows = nbsz_rows();
    for (cell, _, nbsz) in &rows {
        let ours = cell.flops(10, 32) as i64;
        assert_eq!(*nbsz, ours + 132_150 + 286_720 * conv_count(cell), "{cell}");
    }
    let ours: Vec<f64> = rows
        .iter()
        .map(|(c, _, _)| c.flops(10, 32) as f64)
        .collect();
    let theirs: Vec<f64> = rows.iter().map(|r| r.2 as f64).collect();
    assert!(spearman(&ours, &theirs) > 0.99);
}

/// Spearman rank correlation with average ranks for ties.
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 - 1.0) / 2.0;
    let cov: f64 = ra
        .iter()
        .zip(&rb)
        .map(|(x, y)| (x - mean) * (y - mean))
        .sum();
    let var = |r: &[f64]| r.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    cov / (var(&ra) * var(&rb)).sqrt()
}

fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let end = (start..order.len())
            .find(|&k| values[order[k]] != values[order[start]])
            .unwrap_or(order.len());
        for &i in &order[start..end] {
            ranks[i] = (start + end - 1) as f64 / 2.0;
        }
        start = end;
    }
    ranks
}

#[test]
fn conv_ops_dominate_params_and_flops() {
    let all_3x3 = Cell::new([Op::NorConv3x3; NUM_EDGES]);
    let floor = Cell::new([Op::None; NUM_EDGES]).flops(10, 32);
    for cell in Cell::all() {
        let (params, flops) = (cell.param_count(10), cell.flops(10, 32));
        assert!(flops >= floor, "{cell}");
        if cell != all_3x3 {
            assert!(params < all_3x3.param_count(10), "{cell}");
            assert!(flops < all_3x3.flops(10, 32), "{cell}");
        }
        for edge in 0..NUM_EDGES {
            for conv in [Op::NorConv1x1, Op::NorConv3x3] {
                // `None < Some(1) < Some(3)`: a conv replaces a non-conv op or a smaller kernel.
                if cell.op(edge).kernel_size() < conv.kernel_size() {
                    let upgraded = cell.with_op(edge, conv);
                    assert!(upgraded.flops(10, 32) > flops, "{cell} edge {edge}");
                    assert!(upgraded.param_count(10) > params, "{cell} edge {edge}");
                }
            }
        }
    }
}

#[test]
fn flops_scale_with_resolution() {
    let cell: Cell = HAND_CELL.parse().unwrap();
    let (small, large) = (cell.flops(10, 16), cell.flops(10, 32));
    // Everything but the linear layer scales with the area.
    assert_eq!(large - 650, 4 * (small - 650));
    assert_eq!(cell.flops(120, 16), small - 650 + 64 * 120 + 120);
    // Absurd sizes saturate instead of overflowing.
    assert_eq!(cell.flops(usize::MAX, usize::MAX), u64::MAX);
    assert_eq!(cell.param_count(usize::MAX), u64::MAX);
}
