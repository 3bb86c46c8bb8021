//! `zc search` end to end: config validation, and a small run whose outputs are checked
//! against the ground truth.

use std::path::PathBuf;

use zc_benchmark::GroundTruth;
use zc_experiments::search::{self, SearchExperiment};
use zc_experiments::{figure, store};
use zc_search::Variant;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-search-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small search over the committed Table-1 sweep rows (400 cells); the cells they lack are
/// scored on demand (`params` needs no pass, only the network's weights).
fn config(output: &std::path::Path, algorithms: &str) -> String {
    format!(
        "name: small\ndataset: cifar100\nbudget: 30\nruns: 3\nseed: 5\n\
         proxy: {{sweep: [{}], name: params}}\nalgorithms: {algorithms}\noutput: {}\n",
        data_dir().join("../results/table1").display(),
        output.display()
    )
}

fn load(dir: &std::path::Path, text: &str) -> anyhow::Result<SearchExperiment> {
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    SearchExperiment::load(&path, &table)
}

#[test]
fn config_errors_name_what_is_wrong() {
    let dir = temp_dir("errors");
    let good = config(&dir, "{rand: [baseline]}");
    assert!(load(&dir, &good).is_ok());
    for (text, expected) in [
        (
            good.replace("budget: 30", "budget: 30\nbudgett: 3"),
            "budgett",
        ),
        (config(&dir, "{evolution: [baseline]}"), "evolution"),
        (config(&dir, "{ae: [warmup(x)]}"), "warmup(x)"),
        (config(&dir, "{rand: [move]}"), "only RL and AE"),
        (config(&dir, "{rl: [move]}"), "move(k)"),
        (good.replace("name: params", "name: synflw"), "synflw"),
        (
            good.replace("dataset: cifar100", "dataset: cifar1000"),
            "cifar1000",
        ),
        (good.replace("runs: 3", "runs: 0"), "at least 1"),
        (good.replace("budget: 30", "budget: 20000"), "exceeds"),
        (config(&dir, "{rand: [baseline, baseline]}"), "twice"),
    ] {
        let err = format!("{:#}", load(&dir, &text).err().expect(&text));
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
}

#[test]
fn a_small_search_writes_consistent_steps_curves_table_and_figure() {
    let dir = temp_dir("run");
    let experiment = load(
        &dir,
        &config(
            &dir,
            "{rand: [baseline, warmup(15625)], ae: [baseline, move]}",
        ),
    )
    .unwrap();
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let (curves, outputs) = search::run(&experiment, &table, &data_dir()).unwrap();
    figure::draw(
        &curves,
        &[73.0],
        "test",
        "best test accuracy (%)",
        &dir.join("small"),
    )
    .unwrap();
    for file in ["small.png", "small.svg", "small.md", "manifest.json"] {
        assert!(
            std::fs::metadata(dir.join(file)).unwrap().len() > 100,
            "{file}"
        );
    }
    assert_eq!(curves.len(), 4);
    let steps = store::read_parquet(&outputs.steps).unwrap();
    assert_eq!(
        steps.height(),
        4 * 3 * 30,
        "4 variants x 3 runs x 30 models"
    );
    // Every row's accuracy is the table's x-test accuracy of its cell; selection is val_1seed.
    let test = table
        .accuracies(zc_data::Dataset::Cifar100, zc_benchmark::Metric::Test)
        .unwrap();
    let index = steps.column("index").unwrap().u32().unwrap().clone();
    let accuracy = steps.column("accuracy").unwrap().f64().unwrap().clone();
    for (i, a) in index.iter().zip(accuracy.iter()) {
        assert_eq!(test[i.unwrap() as usize], a.unwrap());
    }
    // warmup(15625) with params trains the largest networks first: the best is all 3x3 convs.
    let warm = curves
        .iter()
        .find(|c| c.variant.warmup == Some(15625))
        .unwrap();
    let dense = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let dense_index = table.index_of(dense.parse().unwrap());
    assert_eq!(index.get(3 * 30).map(|i| i as usize), Some(dense_index));
    assert!(warm.mean.iter().all(|m| m.is_finite()));
    let md = std::fs::read_to_string(&outputs.table).unwrap();
    assert!(md.contains("| AE | move | 3 |"), "{md}");
    // The cells scored on demand are kept as sweep rows with the sweep's settings, and the next
    // run reads them instead of scoring them again.
    let kept = search::on_demand_dir(&experiment);
    let rows = store::read_dir(&kept).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.height(), 15625 - 400);
    let (again, settings) = search::proxy_scores(&experiment, &table, &data_dir()).unwrap();
    assert_eq!((again.known_count(), again.computed_count()), (15625, 0));
    assert_eq!(
        (settings.precision.as_str(), settings.batch_size),
        ("f32", 64)
    );
    assert!(curves.iter().any(|c| c.variant == Variant::BASELINE));
}
