//! The shipped table: published optima, index <-> cell mapping, and bad input.

use std::path::{Path, PathBuf};

use zc_benchmark::{BenchmarkError, GroundTruth, Metric};
use zc_data::Dataset;
use zc_space::Cell;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

#[test]
fn published_optima_and_mapping() {
    let gt = GroundTruth::load_shipped(&data_dir()).unwrap();
    assert_eq!(gt.len(), 15_625);
    let (i, acc) = gt.best(Dataset::Cifar10, Metric::Test).unwrap();
    assert_eq!(i, 6111);
    assert!((acc - 94.373_333).abs() < 1e-4, "{acc}");
    let (i, acc) = gt.best(Dataset::Cifar100, Metric::Test).unwrap();
    assert_eq!(i, 9930);
    assert!((acc - 73.513_333).abs() < 1e-4, "{acc}");
    assert_eq!(
        gt.cell(9930).unwrap().to_string(),
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    );
    let (i, acc) = gt.best(Dataset::ImageNet16_120, Metric::Test).unwrap();
    assert_eq!(i, 857);
    assert!((acc - 47.311_111).abs() < 1e-4, "{acc}");
    // index <-> cell is a bijection over the whole space.
    for (index, cell) in gt.cells().iter().enumerate() {
        assert_eq!(gt.index_of(*cell), index);
    }
    assert_eq!(
        Cell::all()
            .map(|c| gt.index_of(c))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        15_625
    );
    assert_eq!(
        (0..gt.len())
            .filter(|&i| !gt.is_output_reachable(i))
            .count(),
        341
    );
    assert!(matches!(
        gt.cell(15_625),
        Err(BenchmarkError::IndexOutOfRange(15_625))
    ));
}

#[test]
fn metrics_per_dataset() {
    let gt = GroundTruth::load_shipped(&data_dir()).unwrap();
    // Cell 0's row of the shipped CSV.
    let acc = |d, m| gt.accuracy(0, d, m).unwrap();
    assert!((acc(Dataset::Cifar10, Metric::Test) - 85.863_333).abs() < 1e-4);
    assert!((acc(Dataset::Cifar10, Metric::paper_target(Dataset::Cifar10)) - 81.9).abs() < 1e-9);
    assert!((acc(Dataset::Cifar100, Metric::Val1Seed) - 53.68).abs() < 1e-4);
    assert!((acc(Dataset::ImageNet16_120, Metric::Test12Epochs) - 17.0).abs() < 1e-4);
    assert!((acc(Dataset::Cifar10, Metric::Valid12Epochs) - 63.364).abs() < 1e-4);
    assert_eq!(gt.all_accuracies(0, Dataset::Cifar10).len(), 4);
    let err = gt
        .accuracies(Dataset::Cifar10, Metric::Val1Seed)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("available: test, valid_oritest_1seed, valid_12ep, test_12ep"),
        "{err}"
    );
    assert_eq!(
        Metric::parse("paper", Dataset::Cifar100).unwrap(),
        Metric::Test
    );
    assert!(
        Metric::parse("tset", Dataset::Cifar10)
            .unwrap_err()
            .to_string()
            .contains("\"tset\"")
    );
}

#[test]
fn missing_or_corrupt_table_is_a_clear_error() {
    let err = GroundTruth::load(Path::new("/nonexistent/table.parquet")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/table.parquet"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("zc-benchmark-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = dir.join("truncated.parquet");
    let bytes = std::fs::read(zc_benchmark::shipped_path(&data_dir())).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = GroundTruth::load(&truncated).unwrap_err();
    assert!(matches!(err, BenchmarkError::Read { .. }), "{err}");
    assert!(err.to_string().contains("truncated.parquet"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
