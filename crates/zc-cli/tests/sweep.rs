//! The experiment runner end to end: config validation, resuming after `kill -9`, sharding,
//! and the table's statistics on real sweep rows.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;
use zc_experiments::config::Experiment;
use zc_experiments::store::read_dir;
use zc_experiments::sweep::{self, Shard};
use zc_experiments::{stats, table};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-cli-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fast config: ImageNet16-120 (16x16) and proxies without minibatch passes.
fn fast_config(cells: usize, output: &Path) -> String {
    format!(
        "name: test\ndatasets: [{{name: ImageNet16-120}}]\nproxies: [synflow, params, l2_norm]\n\
         cells: {{sample: {cells}, seed: 3}}\noutput: {}\nworkers: 1\nchunk: 3\n",
        output.display()
    )
}

fn experiment(text: &str, table: &GroundTruth) -> anyhow::Result<Experiment> {
    Experiment::resolve(serde_norway::from_str(text)?, text.to_string(), table)
}

/// (index -> synflow) of every row in a directory, failing on duplicates.
fn synflow_rows(dir: &Path) -> BTreeMap<u32, f64> {
    let mut rows = BTreeMap::new();
    for (_, df) in read_dir(dir).unwrap() {
        let index = df.column("index").unwrap().u32().unwrap().clone();
        let synflow = df.column("synflow").unwrap().f64().unwrap().clone();
        for (i, s) in index.iter().zip(synflow.iter()) {
            assert!(
                rows.insert(i.unwrap(), s.unwrap()).is_none(),
                "duplicate row {i:?} in {}",
                dir.display()
            );
        }
    }
    rows
}

#[test]
fn config_errors_name_the_key() {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let base = fast_config(5, Path::new("/tmp/unused"));
    let err = |text: String| {
        format!(
            "{:#}",
            experiment(&text, &table)
                .err()
                .expect("config must be rejected")
        )
    };
    assert!(err(base.replace("workers: 1", "wrokers: 1")).contains("unknown field `wrokers`"));
    assert!(err(base.replace("synflow,", "synflo,")).contains("unknown proxy \"synflo\""));
    assert!(err(base.replace("ImageNet16-120", "mnist")).contains("mnist"));
    assert!(
        err(base.replace("{sample: 5, seed: 3}", "{sample: 5, list: [1]}"))
            .contains("exactly one of sample and list")
    );
    assert!(
        err(base.replace("{sample: 5, seed: 3}", "{smaple: 5}")).contains("unknown key `smaple`")
    );
    assert!(err(base.replace("{sample: 5, seed: 3}", "{sample: 99999}")).contains("cells"));
    assert!(
        err(base.replace("{sample: 5, seed: 3}", "{list: [\"|nope|\"]}"))
            .contains("malformed architecture string")
    );
    assert!(err(base.replace("name: test", "name: test\nprecision: f16")).contains("precision"));
    assert!(err(format!("{base}dataload: {{per_class: 0}}\n")).contains("per_class"));
    let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let ok = experiment(
        &base.replace(
            "{sample: 5, seed: 3}",
            &format!("{{list: [135, \"{arch}\"]}}"),
        ),
        &table,
    )
    .unwrap();
    assert_eq!(ok.cells, vec![135, 9930]);
    assert!(
        "0/2".parse::<Shard>().is_err()
            && "3/2".parse::<Shard>().is_err()
            && "x".parse::<Shard>().is_err()
    );
}

#[test]
fn a_killed_sweep_resumes_without_losing_or_redoing_rows() {
    let dir = temp_dir("resume");
    let (out, clean) = (dir.join("out"), dir.join("clean"));
    let config = dir.join("sweep.yaml");
    std::fs::write(&config, fast_config(150, &out)).unwrap();
    let zc = env!("CARGO_BIN_EXE_zc");
    common::kill_after_first_part(&["sweep", config.to_str().unwrap()], &out);
    let partial = synflow_rows(&out);
    assert!(
        !partial.is_empty() && partial.len() < 150,
        "{} rows after the kill",
        partial.len()
    );
    let rerun = Command::new(zc)
        .args(["sweep", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        stdout.contains(&format!("ran {} jobs", 150 - partial.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} already done", partial.len())),
        "{stdout}"
    );
    // Stale temporary files of the killed run are gone; the merged file, the manifest and the
    // settings file stay.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .filter(|n: &String| !n.ends_with(".lock"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let resumed = synflow_rows(&out);
    assert_eq!(resumed.len(), 150);
    // The manifest records the killed run as such, and the one that finished the shard.
    let manifest = sweep::Manifest::read(&out.join("manifest_shard1of1.json")).unwrap();
    let statuses: Vec<&str> = manifest.runs.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["killed", "finished"]);
    assert_eq!(
        (manifest.jobs_done, manifest.runs[1].jobs),
        (150, 150 - partial.len())
    );
    for (index, value) in &partial {
        assert_eq!(resumed[index], *value, "row {index} changed");
    }
    // Identical to a sweep that was never interrupted.
    let full = Command::new(zc)
        .args([
            "sweep",
            config.to_str().unwrap(),
            "--output",
            clean.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(full.status.success());
    assert_eq!(resumed, synflow_rows(&clean));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_together_are_the_whole_sweep_and_the_table_agrees() {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let dir = temp_dir("shards");
    let (sharded, whole) = (dir.join("sharded"), dir.join("whole"));
    let mut e = experiment(&fast_config(20, &whole), &table).unwrap();
    sweep::run(&e, &table, &data_dir(), Shard::WHOLE).unwrap();
    e.set_output(sharded.clone());
    for k in 1..=3 {
        let shard = Shard { index: k, count: 3 };
        let summary = sweep::run(&e, &table, &data_dir(), shard).unwrap();
        assert_eq!(summary.scored, shard.select(&e.cells).len());
    }
    let (a, b) = (synflow_rows(&sharded), synflow_rows(&whole));
    assert_eq!(a.len(), 20);
    assert_eq!(a, b);
    // The table's params row is Spearman of #params against the x-test accuracy of those cells.
    let options = table::TableOptions {
        target: "paper".into(),
        bootstrap: 200,
        ..Default::default()
    };
    let computed = table::compute(
        std::slice::from_ref(&sharded),
        &table,
        &data_dir(),
        &options,
    )
    .unwrap();
    assert!(computed.notes.is_empty(), "{:?}", computed.notes);
    let rows = &computed.rows;
    let params = rows.iter().find(|r| r.proxy == "params").unwrap();
    let truth = table
        .accuracies(Dataset::ImageNet16_120, Metric::Test)
        .unwrap();
    let indices: Vec<usize> = a.keys().map(|&i| i as usize).collect();
    let x: Vec<f64> = indices
        .iter()
        .map(|&i| table.cell(i).unwrap().param_count(120) as f64)
        .collect();
    let y: Vec<f64> = indices.iter().map(|&i| truth[i]).collect();
    assert!((params.spearman - stats::spearman(&x, &y)).abs() < 1e-12);
    assert_eq!(
        (params.n, params.nan_count, params.target.as_str()),
        (20, 0, "test")
    );
    assert!(params.ci_low <= params.spearman && params.spearman <= params.ci_high);
    assert!(rows.iter().any(|r| r.proxy == table::TRAIN_12EP));
    assert!(
        rows.iter().all(|r| r.proxy != table::VOTE),
        "no vote without jacob_cov and snip"
    );
    let md = table::markdown(&computed, "test");
    assert!(
        md.contains("| params | 20 | 0 |")
            && md.contains("## ImageNet16-120 (seed 0, target `test`, 20 cells)"),
        "{md}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
