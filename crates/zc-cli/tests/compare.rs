//! `zc compare`: statistics on common cells checked against direct computations, external
//! CSV and Parquet scores, and the errors that name the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::{Column, DataFrame};
use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_experiments::compare::{self, CompareOptions, External};
use zc_experiments::{stats, store};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(new: &[&str], baselines: &[&str]) -> CompareOptions {
    CompareOptions {
        new: new.iter().map(|s| s.to_string()).collect(),
        baselines: baselines.iter().map(|s| s.to_string()).collect(),
        target: "test".into(),
        bootstrap: 200,
        top_k: 5,
        seed: 0,
    }
}

/// A CSV of CIFAR-100 scores for `cells` (by arch string): `oracle` = the test accuracy itself,
/// `noisy` = the accuracy with cell-dependent noise, and one empty `noisy` field.
fn write_csv(path: &Path, truth: &GroundTruth, cells: &[usize]) {
    let accuracy = truth.accuracies(Dataset::Cifar100, Metric::Test).unwrap();
    let mut text = String::from("arch,oracle,noisy\n");
    for (k, &i) in cells.iter().enumerate() {
        let noise = ((i * 7919) % 100) as f64 / 10.0;
        let noisy = if k == 3 {
            String::new()
        } else {
            (accuracy[i] + noise).to_string()
        };
        text.push_str(&format!("{},{},{noisy}\n", truth.cells()[i], accuracy[i]));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn external_scores_are_compared_with_the_free_baselines_on_common_cells() {
    let truth = GroundTruth::load_shipped(&data_dir()).unwrap();
    let dir = temp_dir("external");
    let cells: Vec<usize> = (0..300).map(|k| k * 51 + 7).collect();
    let csv = dir.join("scores.csv");
    write_csv(&csv, &truth, &cells);
    let external = External {
        path: csv.clone(),
        dataset: Some(Dataset::Cifar100),
        columns: Vec::new(),
        prefix: "my_".into(),
    };
    let (scores, names) = compare::gather(&[], std::slice::from_ref(&external), &truth).unwrap();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["my_noisy", "my_oracle"]
    );
    let result = compare::compare(
        &scores,
        &truth,
        &options(&["my_oracle", "my_noisy"], &["params", "train_12ep"]),
    )
    .unwrap();
    let section = &result.sections[0];
    // The empty field leaves 299 cells with every score.
    assert_eq!((section.common, section.cells), (299, 300));
    assert_eq!(
        section.dropped,
        BTreeMap::from([("my_noisy".to_string(), 1)])
    );
    let stat = |name: &str| section.proxies.iter().find(|p| p.proxy == name).unwrap();
    // The oracle ranks perfectly: rho = tau = 1 in every resample, every hit.
    let oracle = stat("my_oracle");
    assert_eq!((oracle.spearman, oracle.spearman_ci), (1.0, (1.0, 1.0)));
    assert_eq!(
        (oracle.kendall, oracle.top10_hit, oracle.topk_hit),
        (1.0, 1.0, 1.0)
    );
    // The baselines' rho is the direct Spearman over the same 299 cells.
    let common: Vec<usize> = cells.iter().copied().filter(|&i| i != cells[3]).collect();
    let accuracy = truth.accuracies(Dataset::Cifar100, Metric::Test).unwrap();
    let y: Vec<f64> = common.iter().map(|&i| accuracy[i]).collect();
    let params: Vec<f64> = common
        .iter()
        .map(|&i| truth.cells()[i].param_count(100) as f64)
        .collect();
    let rho_params = stats::spearman(&params, &y);
    assert!((stat("params").spearman - rho_params).abs() < 1e-12);
    let (low, high) = stat("params").spearman_ci;
    assert!(low < rho_params && rho_params < high);
    // The oracle beats #params in every resample: the smallest p a bootstrap can give.
    let pair = section
        .pairs
        .iter()
        .find(|p| p.new == "my_oracle" && p.baseline == "params")
        .unwrap();
    assert!((pair.delta_spearman - (1.0 - rho_params)).abs() < 1e-12);
    assert!(pair.delta_ci.0 > 0.0);
    assert!((pair.p_value - 1.0 / 201.0).abs() < 1e-12);
    // The same scores from Parquet, with index cells, give the same statistics.
    let parquet = dir.join("scores.parquet");
    let oracle_values: Vec<f64> = cells.iter().map(|&i| accuracy[i]).collect();
    let mut df = DataFrame::new(
        cells.len(),
        vec![
            Column::new(
                "index".into(),
                cells.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            ),
            Column::new("oracle".into(), oracle_values),
        ],
    )
    .unwrap();
    store::write_atomic(&mut df, &parquet).unwrap();
    let external = External {
        path: parquet,
        ..external
    };
    let (scores, _) = compare::gather(&[], &[external], &truth).unwrap();
    let again = compare::compare(&scores, &truth, &options(&["my_oracle"], &["params"])).unwrap();
    let params_again = again.sections[0]
        .proxies
        .iter()
        .find(|p| p.proxy == "params")
        .unwrap();
    assert_eq!(again.sections[0].common, 300);
    assert!(params_again.spearman.is_finite());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_external_files_are_named() {
    let truth = GroundTruth::load_shipped(&data_dir()).unwrap();
    let dir = temp_dir("errors");
    let err = |text: &str, dataset: Option<Dataset>| {
        let path = dir.join("bad.csv");
        std::fs::write(&path, text).unwrap();
        let external = External {
            path,
            dataset,
            columns: Vec::new(),
            prefix: String::new(),
        };
        format!(
            "{:#}",
            compare::gather(&[], &[external], &truth).unwrap_err()
        )
    };
    let c100 = Some(Dataset::Cifar100);
    assert!(err("cell,score\n1,2\n", c100).contains("no cell column"));
    assert!(err("index,score\n1,2\n", None).contains("--dataset"));
    assert!(err("index,score\n99999,2\n", c100).contains("99999 is not an official index"));
    assert!(err("arch,score\n|nope|,2\n", c100).contains("row 1: arch"));
    assert!(err("index,score\n1,2\n1,3\n", c100).contains("two different `score` values"));
    assert!(err("index,score\n1,2,3\n", c100).contains("row 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zc_compare_on_a_committed_sweep_and_an_external_csv() {
    let dir = temp_dir("cli");
    let truth = GroundTruth::load_shipped(&data_dir()).unwrap();
    let csv = dir.join("scores.csv");
    write_csv(&csv, &truth, &(0..400).map(|k| k * 37).collect::<Vec<_>>());
    let out = dir.join("report");
    let run = Command::new(env!("CARGO_BIN_EXE_zc"))
        .arg("--data-dir")
        .arg(data_dir())
        .args([
            "compare",
            "--bootstrap",
            "200",
            "--prefix",
            "x_",
            "--dataset",
            "cifar100",
        ])
        .arg(data_dir().join("../results/table1-1000"))
        .arg("--external")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Only CIFAR-100 has the external scores; the other datasets are named as not compared.
    assert!(stderr.contains("not compared: ImageNet16-120"), "{stderr}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| x_oracle | new | 1.000 | [1.000, 1.000] |"),
        "{md}"
    );
    assert!(md.contains("| x_oracle | synflow |"), "{md}");
    for file in [
        "report.parquet",
        "report_pairs.parquet",
        "report_cifar100_seed0.png",
        "report_cifar100_seed0.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let pairs = store::read_parquet(&dir.join("report_pairs.parquet")).unwrap();
    // Two new scores x five default baselines.
    assert_eq!(pairs.height(), 10);
    std::fs::remove_dir_all(&dir).unwrap();
}
