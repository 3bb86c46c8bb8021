//! Training experiments end to end: config validation, resuming after `kill -9` with nothing
//! finished lost, and training reads in the table on the trained cells.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_experiments::training::{self, TrainExperiment};
use zc_experiments::{econas, stats, table};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-train-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fast config: r8c4, two epochs, the first `cells` cells of the 1,000-cell sample (so that
/// results/table1-1000 has them).
fn fast_config(cells: usize, output: &Path) -> String {
    format!(
        "name: test\nsettings: [r8c4]\nepochs: 2\nbatch_size: 200\n\
         cells: {{sample: 1000, seed: 2021, first: {cells}}}\noutput: {}\nworkers: 1\n",
        output.display()
    )
}

fn experiment(text: &str, table: &GroundTruth) -> anyhow::Result<TrainExperiment> {
    TrainExperiment::resolve(serde_norway::from_str(text)?, text.to_string(), table)
}

/// (seed, index, setting) -> test accuracy per epoch, from a training directory.
fn accuracies(dir: &Path) -> BTreeMap<(u64, usize, String), Vec<f64>> {
    training::read_runs(&[dir.to_path_buf()])
        .unwrap()
        .runs
        .into_iter()
        .map(|(k, rows)| (k, rows.iter().map(|r| r.test_accuracy).collect()))
        .collect()
}

#[test]
fn config_errors_name_the_key() {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let base = fast_config(3, Path::new("/tmp/unused"));
    assert!(experiment(&base, &table).is_ok());
    let cases = [
        (
            "settings: [r8c4]",
            "settings: [r7c4]",
            "\"r7c4\" is not a training setting",
        ),
        (
            "settings: [r8c4]",
            "settings: [r8c4, r8c4]",
            "settings: r8c4 is given twice",
        ),
        ("epochs: 2", "epochs: 0", "epochs must be at least 1"),
        (
            "name: test",
            "name: test\nlearning_rate: 0.1",
            "unknown field `learning_rate`",
        ),
        (
            "name: test",
            "name: test\ndataset: cifar100",
            "only cifar10 is supported",
        ),
        ("first: 3", "first: 0", "first must be between 1"),
    ];
    for (from, to, expected) in cases {
        let text = base.replace(from, to);
        let error = format!("{:#}", experiment(&text, &table).unwrap_err());
        assert!(error.contains(expected), "{to}: {error}");
    }
    // Official data that is not there: the error names the missing file.
    let mut e = experiment(&base, &table).unwrap();
    e.set_official(PathBuf::from("/nonexistent/cifar"));
    let error = format!("{:#}", training::load_data(&e, &data_dir()).unwrap_err());
    assert!(
        error.contains("/nonexistent/cifar/data_batch_1.bin is missing"),
        "{error}"
    );
}

#[test]
fn a_killed_training_resumes_without_losing_finished_runs() {
    let dir = temp_dir("resume");
    let (out, clean) = (dir.join("out"), dir.join("clean"));
    let config = dir.join("train.yaml");
    std::fs::write(&config, fast_config(8, &out)).unwrap();
    let zc = env!("CARGO_BIN_EXE_zc");
    common::kill_after_first_part(&["train", config.to_str().unwrap()], &out);
    let partial = accuracies(&out);
    assert!(
        !partial.is_empty() && partial.len() < 8,
        "{} runs",
        partial.len()
    );
    let rerun = Command::new(zc)
        .args(["train", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        stdout.contains(&format!("trained {} runs", 8 - partial.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} already done", partial.len())),
        "{stdout}"
    );
    let resumed = accuracies(&out);
    assert_eq!(resumed.len(), 8);
    for (key, values) in &resumed {
        assert_eq!(values.len(), 3, "epochs 0, 1, 2 of {key:?}");
    }
    for (key, values) in &partial {
        assert_eq!(&resumed[key], values, "run {key:?} changed");
    }
    // The same as a run that was never interrupted (training is deterministic).
    let full = Command::new(zc)
        .args([
            "train",
            config.to_str().unwrap(),
            "--output",
            clean.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(full.status.success());
    assert_eq!(resumed, accuracies(&clean));
    // Another recipe into the same directory is refused, naming what differs.
    std::fs::write(
        &config,
        fast_config(8, &out).replace("batch_size: 200", "batch_size: 100"),
    )
    .unwrap();
    let other = Command::new(zc)
        .args(["train", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("batch_size 200 there, this run 100"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    // The table puts the training read beside the proxies, on the trained cells only.
    let gt = GroundTruth::load_shipped(&data_dir()).unwrap();
    let options = table::TableOptions {
        train: vec![out.clone()],
        bootstrap: 50,
        ..Default::default()
    };
    let sweep = data_dir().join("../results/table1-1000");
    let computed = table::compute(&[sweep], &gt, &data_dir(), &options).unwrap();
    let row = |name: &str| {
        computed
            .rows
            .iter()
            .find(|r| r.dataset == "cifar10" && r.proxy == name)
            .unwrap_or_else(|| panic!("no {name} row"))
    };
    let read = row("r8c4_e2");
    let truth = gt
        .accuracies(
            Dataset::Cifar10,
            Metric::parse("paper", Dataset::Cifar10).unwrap(),
        )
        .unwrap();
    let (x, y): (Vec<f64>, Vec<f64>) = resumed
        .iter()
        .map(|((_, index, _), acc)| (acc[2], truth[*index]))
        .unzip();
    assert_eq!(read.n, 8);
    assert!((read.spearman - stats::spearman(&x, &y)).abs() < 1e-12);
    assert!(read.seconds_per_cell.is_some_and(|s| s > 0.0));
    // Two epochs of r8c4: about 2 x 1/230 baseline epochs of 196 minibatches.
    assert!(
        (1.0..3.0).contains(&read.cost_minibatches),
        "{}",
        read.cost_minibatches
    );
    assert_eq!(row("synflow").n, 8);
    assert_eq!(row("synflow").cost_minibatches, 1.0);

    // Figures 1 and 2 from the same rows: the curve's last point is the table's read.
    let figures = econas::figures(
        std::slice::from_ref(&out),
        &[data_dir().join("../results/table1-1000")],
        &gt,
        &data_dir(),
        &dir.join("figures/econas"),
        "test",
    )
    .unwrap();
    let [curve] = figures.curves.as_slice() else {
        panic!("one setting, one curve")
    };
    assert_eq!((curve.setting.as_str(), curve.cells), ("r8c4", 8));
    let epochs: Vec<usize> = curve.points.iter().map(|p| p.0).collect();
    assert_eq!(epochs, [0, 1, 2]);
    assert!((curve.points[2].1 - read.spearman).abs() < 1e-12);
    assert!(
        (curve.points[2].2 * table::MINIBATCHES_PER_EPOCH - read.cost_minibatches).abs() < 1e-9
    );
    for file in &figures.files {
        assert!(
            std::fs::metadata(file).is_ok_and(|m| m.len() > 0),
            "{}",
            file.display()
        );
    }
    // A directory is not a stem: nothing is written as `DIR/-figure1.png`.
    let error = econas::figures(
        std::slice::from_ref(&out),
        &[data_dir().join("../results/table1-1000")],
        &gt,
        &data_dir(),
        &dir,
        "test",
    )
    .err()
    .expect("a directory as --out is refused");
    assert!(format!("{error:#}").contains("is a directory"), "{error:#}");
    let report = std::fs::read_to_string(dir.join("figures/econas.md")).unwrap();
    assert!(report.contains("**Data-reduced**"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
