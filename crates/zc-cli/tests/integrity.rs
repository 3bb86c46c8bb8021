//! Results that cannot lie: a sweep never mixes settings and its manifest describes its rows,
//! tables say what they combined and refuse conflicts, provenance comes from where `zc` runs,
//! and the CLI exits quietly on a closed pipe.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use polars::prelude::{Column, DataFrame};
use zc_benchmark::GroundTruth;
use zc_experiments::config::Experiment;
use zc_experiments::store::{self, ShardLock};
use zc_experiments::sweep::{self, Manifest, Shard};
use zc_experiments::table::{self, TableOptions};

const ZC: &str = env!("CARGO_BIN_EXE_zc");

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
        .canonicalize()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-integrity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// `zc ARGS` in `cwd`, with `ZC_DATA_DIR` unset unless given.
fn zc(cwd: &Path, args: &[&str], data_env: Option<&str>) -> Output {
    let mut command = Command::new(ZC);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("ZC_DATA_DIR");
    if let Some(value) = data_env {
        command.env("ZC_DATA_DIR", value);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A data-free sweep (synflow needs no images, but its rows still carry every setting).
fn config(output: &Path, extra: &str) -> String {
    format!(
        "name: integrity\ndatasets: [{{name: ImageNet16-120}}]\nproxies: [synflow, params]\n\
         cells: {{sample: 6, seed: 4}}\noutput: {}\nworkers: 1\nchunk: 4\n{extra}",
        output.display()
    )
}

fn experiment(text: &str) -> anyhow::Result<Experiment> {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    Experiment::resolve(serde_norway::from_str(text)?, text.to_string(), &table)
}

fn manifest(dir: &Path, tag: &str) -> Manifest {
    let text = std::fs::read_to_string(dir.join(format!("manifest_{tag}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_sweep_refuses_rows_of_other_settings_and_its_manifest_describes_its_rows() {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let dir = temp_dir("settings");
    let out = dir.join("out");
    let e = experiment(&config(&out, "")).unwrap();
    let summary = sweep::run(&e, &table, &data_dir(), Shard::WHOLE).unwrap();
    assert_eq!((summary.scored, summary.skipped), (6, 0));
    // Plain setting columns, the images' digest, the binary's revision.
    let (_, df) = store::read_dir(&out).unwrap().remove(0);
    let text = |c: &str| {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string()
    };
    assert_eq!(text("dataload"), "random");
    assert_eq!(
        df.column("batch_size").unwrap().u32().unwrap().get(0),
        Some(64)
    );
    let images = zc_data::ImageSet::read_shipped(&data_dir(), zc_data::Dataset::ImageNet16_120);
    assert_eq!(text("images_sha256"), images.unwrap().sha256());
    assert_eq!(
        text("git_revision"),
        zc_experiments::provenance::GIT_REVISION
    );
    let first = manifest(&out, "shard1of1");
    assert_eq!(first.status, "finished");
    assert_eq!(first.settings["ImageNet16-120"].precision, "f32");
    assert_eq!((first.jobs_in_shard, first.jobs_done), (6, 6));
    assert_eq!(first.rows_in_files.values().sum::<usize>(), 6);
    assert_eq!(first.runs.len(), 1);
    // A rerun with nothing to do leaves the manifest byte for byte as it was.
    let before = std::fs::read(out.join("manifest_shard1of1.json")).unwrap();
    let again = sweep::run(&e, &table, &data_dir(), Shard::WHOLE).unwrap();
    assert_eq!((again.scored, again.skipped), (0, 6));
    assert_eq!(
        std::fs::read(out.join("manifest_shard1of1.json")).unwrap(),
        before
    );
    // A rerun with nothing to do but another selection (a subset of the cells, more workers)
    // does not make the manifest describe it: the rows are still those of the sample.
    let subset: Vec<String> = e.cells[..3].iter().map(usize::to_string).collect();
    let mut narrower = experiment(&config(&out, "").replace(
        "{sample: 6, seed: 4}",
        &format!("{{list: [{}]}}", subset.join(", ")),
    ))
    .unwrap();
    narrower.set_workers(2);
    assert_eq!(
        sweep::run(&narrower, &table, &data_dir(), Shard::WHOLE)
            .unwrap()
            .scored,
        0
    );
    assert_eq!(
        std::fs::read(out.join("manifest_shard1of1.json")).unwrap(),
        before
    );
    // Another set of proxies is refused before any work.
    let err = format!(
        "{:#}",
        sweep::run(
            &experiment(&config(&out, "").replace("[synflow, params]", "[synflow]")).unwrap(),
            &table,
            &data_dir(),
            Shard::WHOLE
        )
        .unwrap_err()
    );
    assert!(
        err.contains("has the proxies [params, synflow] but this run has [synflow]"),
        "{err}"
    );
    // Every value-affecting setting is part of "already done": each change is refused, naming
    // the setting, and nothing is written.
    for (extra, named) in [
        ("precision: f64\n", "precision f32 there, this run f64"),
        ("batch_size: 128\n", "batch_size 64 there, this run 128"),
        (
            "dataload: {per_class: 1}\n",
            "dataload random there, this run per_class",
        ),
    ] {
        let changed = experiment(&config(&out, extra)).unwrap();
        let err = format!(
            "{:#}",
            sweep::run(&changed, &table, &data_dir(), Shard::WHOLE).unwrap_err()
        );
        assert!(err.contains(named) && err.contains("--output"), "{err}");
    }
    // Other images (one pixel changed) are other settings too.
    let other_data = dir.join("data");
    copy_data(&other_data);
    let file = other_data.join("images/imagenet16_120_derived_278.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let err = format!(
        "{:#}",
        sweep::run(&e, &table, &other_data, Shard::WHOLE).unwrap_err()
    );
    assert!(err.contains("images_sha256"), "{err}");
    // The refused runs left the rows and the manifest as they were.
    assert_eq!(store::read_dir(&out).unwrap().len(), 1);
    assert_eq!(
        std::fs::read(out.join("manifest_shard1of1.json")).unwrap(),
        before
    );
    // The directory's settings are claimed by its first run: even with no rows yet (a shard of
    // other settings started at the same moment), other settings are refused.
    let claimed = dir.join("claimed");
    std::fs::create_dir_all(&claimed).unwrap();
    std::fs::copy(
        out.join("sweep_settings.json"),
        claimed.join("sweep_settings.json"),
    )
    .unwrap();
    let mut f64_run = experiment(&config(&claimed, "precision: f64\n")).unwrap();
    f64_run.output = claimed.clone();
    let err = format!(
        "{:#}",
        sweep::run(&f64_run, &table, &data_dir(), Shard::WHOLE).unwrap_err()
    );
    assert!(err.contains("precision f32 there, this run f64"), "{err}");
    // Command-line overrides are part of what the manifest describes.
    let out2 = dir.join("out2");
    let path = dir.join("sweep.yaml");
    std::fs::write(&path, config(&dir.join("unused"), "")).unwrap();
    let run = zc(
        &dir,
        &[
            "--data-dir",
            data_dir().to_str().unwrap(),
            "sweep",
            path.to_str().unwrap(),
            "--output",
            out2.to_str().unwrap(),
            "--shard",
            "2/3",
        ],
        None,
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("ran 2 jobs"));
    let m = manifest(&out2, "shard2of3");
    assert_eq!(m.shard, "2/3");
    assert_eq!(
        m.experiment.overrides,
        [format!("--output {}", out2.display())]
    );
    assert_eq!(
        (m.jobs_in_shard, m.rows_in_files.values().sum::<usize>()),
        (2, 2)
    );
    assert!(!dir.join("unused").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A project copy's `data/`: the ground truth and the ImageNet16-120 images.
fn copy_data(to: &Path) {
    for file in [
        "nb201/nb201_ground_truth.parquet",
        "images/imagenet16_120_derived_278.bin",
        "images/imagenet16_120_derived_278_manifest.csv",
    ] {
        let target = to.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(data_dir().join(file), target).unwrap();
    }
}

#[test]
fn the_same_shard_cannot_run_twice_at_once() {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let dir = temp_dir("lock");
    let e = experiment(&config(&dir, "")).unwrap();
    let held = ShardLock::acquire(&dir, "shard1of1").unwrap();
    let err = format!(
        "{:#}",
        sweep::run(&e, &table, &data_dir(), Shard::WHOLE).unwrap_err()
    );
    assert!(err.contains("already being swept"), "{err}");
    // Another shard is free to run.
    let shard = Shard { index: 1, count: 2 };
    assert_eq!(
        sweep::run(&e, &table, &data_dir(), shard).unwrap().scored,
        3
    );
    drop(held);
    assert_eq!(
        sweep::run(&e, &table, &data_dir(), Shard::WHOLE)
            .unwrap()
            .scored,
        3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicates_and_bad_cells_are_rejected_up_front_naming_the_key() {
    let out = Path::new("/tmp/unused");
    let err = |text: String| format!("{:#}", experiment(&text).err().expect("must be rejected"));
    let base = config(out, "");
    assert!(
        err(base.replace("[synflow, params]", "[params, params]"))
            .contains("proxies: params is given twice")
    );
    assert!(err(format!("{base}seeds: [1, 2, 1]\n")).contains("seeds: 1 is given twice"));
    assert!(
        err(base.replace(
            "[{name: ImageNet16-120}]",
            "[{name: ImageNet16-120}, {name: in16}]"
        ))
        .contains("datasets: ImageNet16-120 is given twice")
    );
    let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let list = |cells: &str| base.replace("{sample: 6, seed: 4}", &format!("{{list: [{cells}]}}"));
    assert!(err(list(&format!("9930, \"{arch}\""))).contains("cells: list: 9930 is given twice"));
    let negative = err(list("0, -1"));
    assert!(
        negative.contains("-1 is not a cell") && negative.contains("official index"),
        "{negative}"
    );
    let run = zc(
        &data_dir(),
        &["score", "--arch", "0", "--proxies", "synflow,synflow"],
        None,
    );
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("synflow is given twice"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    for args in [
        &["space", "--sample", "15625"][..],
        &["space", "0"],
        &["data", "check"],
    ] {
        let mut child = Command::new(ZC)
            .args(args)
            .current_dir(data_dir())
            .env_remove("ZC_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before reading a byte, as `head -c 0` would.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status} {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn data_and_outputs_come_from_the_project_zc_runs_in() {
    // A copy of the project: its own data/, run from a subdirectory.
    let copy = temp_dir("copy");
    copy_data(&copy.join("data"));
    let sub = copy.join("experiments");
    std::fs::create_dir_all(&sub).unwrap();
    let check = zc(&sub, &["space", "9930"], None);
    assert!(check.status.success(), "{}", stderr(&check));
    let run = zc(&sub, &["data", "check"], None);
    // The copy has only ImageNet16-120's images: the check reads the copy, not the original.
    assert!(
        stderr(&run).contains(&copy.join("data/images").display().to_string()),
        "{}",
        stderr(&run)
    );
    // A config's relative output lands in the project directory, wherever zc is started.
    let config_text = config(Path::new("results/copy-sweep"), "");
    std::fs::write(sub.join("sweep.yaml"), config_text).unwrap();
    let sweep = zc(&sub, &["sweep", "sweep.yaml"], None);
    assert!(sweep.status.success(), "{}", stderr(&sweep));
    assert!(
        copy.join("results/copy-sweep/manifest_shard1of1.json")
            .is_file()
    );
    // Outside any project there is no default data directory, and an empty ZC_DATA_DIR is no path.
    let outside = temp_dir("outside");
    let err = stderr(&zc(&outside, &["data", "check"], None));
    assert!(
        err.contains("--data-dir") && err.contains("ZC_DATA_DIR"),
        "{err}"
    );
    let err = stderr(&zc(&copy, &["data", "check"], Some("")));
    assert!(err.contains("ZC_DATA_DIR is set but empty"), "{err}");
    // The revision is the one the binary was built from.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(data_dir())
        .output()
        .ok()
        .filter(|h| h.status.success());
    if let Some(head) = head {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(zc_experiments::provenance::GIT_REVISION.starts_with(&head));
    }
    std::fs::remove_dir_all(&copy).unwrap();
    std::fs::remove_dir_all(&outside).unwrap();
}

/// A sweep file of cells `indices` with the given proxy columns, written as `dir/name`.
fn write_sweep(
    dir: &Path,
    name: &str,
    indices: &[u32],
    proxies: &[(&str, Vec<f64>)],
    precision: &str,
) {
    let n = indices.len();
    let text = |c: &str, v: &str| Column::new(c.into(), vec![v.to_string(); n]);
    let mut columns = vec![
        Column::new("index".into(), indices.to_vec()),
        text("dataset", "cifar10"),
        Column::new("seed".into(), vec![0u64; n]),
    ];
    for (proxy, values) in proxies {
        columns.push(Column::new((*proxy).into(), values.clone()));
    }
    columns.extend([
        text("backend", "flex"),
        text("precision", precision),
        text("dataload", "random"),
        Column::new("batch_size".into(), vec![64u32; n]),
        Column::new("per_class".into(), vec![None::<u32>; n]),
        text("images_sha256", "abc"),
        text("config", "synthetic"),
        text("version", "0"),
        text("git_revision", "test"),
    ]);
    std::fs::create_dir_all(dir).unwrap();
    let mut df = DataFrame::new(n, columns).unwrap();
    store::write_atomic(&mut df, &dir.join(name)).unwrap();
}

fn compute(inputs: &[PathBuf]) -> anyhow::Result<table::Table> {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let options = TableOptions {
        target: "test".into(),
        bootstrap: 50,
        ..Default::default()
    };
    table::compute(inputs, &table, &data_dir(), &options)
}

#[test]
fn a_table_says_what_it_combined_and_refuses_conflicts() {
    let dir = temp_dir("table");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let cells: Vec<u32> = (100..110).collect();
    let ramp = |k: f64| (0..10).map(|i| k * f64::from(i)).collect::<Vec<f64>>();
    let mut jacob = ramp(2.0);
    jacob[3] = f64::NAN;
    write_sweep(
        &a,
        "cifar10_seed0_shard1of2.parquet",
        &cells,
        &[
            ("synflow", ramp(1.0)),
            ("jacob_cov", jacob),
            ("snip", ramp(3.0)),
        ],
        "f32",
    );
    // Four more cells without jacob_cov and snip, and two cells again, agreeing.
    write_sweep(
        &a,
        "cifar10_seed0_shard2of2.parquet",
        &[108, 109, 200, 201, 202, 203],
        &[("synflow", vec![8.0, 9.0, 1.0, 2.0, 3.0, 4.0])],
        "f32",
    );
    let t = compute(std::slice::from_ref(&a)).unwrap();
    let row = |p: &str| t.rows.iter().find(|r| r.proxy == p).unwrap();
    assert_eq!((row("synflow").n, row("synflow").missing), (14, 0));
    assert_eq!((row("snip").n, row("snip").missing), (10, 4));
    assert_eq!((row("jacob_cov").n, row("jacob_cov").nan_count), (9, 1));
    // The vote counts every cell and says how many have a NaN (or missing) voter.
    assert_eq!((row("vote").n, row("vote").nan_count), (14, 5));
    let notes = t.notes.join("\n");
    assert!(notes.contains("2 rows were read more than once"), "{notes}");
    assert!(
        notes.contains("snip is missing for 4 of 14 cells"),
        "{notes}"
    );
    assert!(
        notes.contains("vote counts all 14 cells; 5 of them have a NaN voter"),
        "{notes}"
    );
    let md = table::markdown(&t, "test");
    assert!(
        md.contains("Notes:") && md.contains("precision f32"),
        "{md}"
    );
    // A copy of a row that disagrees is an error naming the cell, the proxy and both files.
    write_sweep(
        &b,
        "cifar10_seed0_shard1of1.parquet",
        &[109],
        &[("synflow", vec![9.5])],
        "f32",
    );
    let err = format!("{:#}", compute(&[a.clone(), b.clone()]).unwrap_err());
    assert!(
        err.contains("cell 109") && err.contains("synflow is 9 in") && err.contains("but 9.5 in"),
        "{err}"
    );
    // Rows of other settings are never mixed into one table.
    write_sweep(
        &b,
        "cifar10_seed0_shard1of1.parquet",
        &[300],
        &[("synflow", vec![1.0])],
        "f64",
    );
    let err = format!("{:#}", compute(&[a.clone(), b.clone()]).unwrap_err());
    assert!(
        err.contains("different settings") && err.contains("precision f64"),
        "{err}"
    );
    // A cell index outside the space is an error naming the file, not a panic.
    write_sweep(
        &b,
        "cifar10_seed0_shard1of1.parquet",
        &[20000],
        &[("synflow", vec![1.0])],
        "f32",
    );
    let err = format!("{:#}", compute(std::slice::from_ref(&b)).unwrap_err());
    assert!(err.contains("cell index 20000, outside NB201"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn table_outputs_are_explicit_stems_kept_apart_from_sweeps_and_stable() {
    let dir = temp_dir("out");
    let sweep_dir = dir.join("sweep");
    write_sweep(
        &sweep_dir,
        "cifar10_seed0_shard1of1.parquet",
        &(100..120).collect::<Vec<u32>>(),
        &[("params", (0..20).map(f64::from).collect())],
        "f32",
    );
    let data = data_dir();
    let table = |out: &Path| {
        zc(
            &dir,
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "table",
                "sweep",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        )
    };
    // The stem keeps its dots.
    let run = table(&dir.join("tables/t.v2"));
    assert!(run.status.success(), "{}", stderr(&run));
    let md = dir.join("tables/t.v2.md");
    assert!(md.is_file() && dir.join("tables/t.v2.parquet").is_file());
    // Rewriting an unchanged table leaves its bytes as they were.
    let before = std::fs::read(&md).unwrap();
    assert!(table(&dir.join("tables/t.v2")).status.success());
    assert_eq!(std::fs::read(&md).unwrap(), before);
    // Not into a sweep directory, and not a directory.
    let err = stderr(&table(&sweep_dir.join("table1")));
    assert!(err.contains("is a sweep directory"), "{err}");
    let err = stderr(&table(Path::new(&format!(
        "{}/",
        dir.join("tables").display()
    ))));
    assert!(err.contains("is a directory"), "{err}");
    // A stem named like a sweep directory writes beside it, as results/table1.md.
    assert!(table(&sweep_dir).status.success());
    assert!(dir.join("sweep.md").is_file());
    // A stray table in a sweep directory is named as such.
    std::fs::copy(dir.join("tables/t.v2.parquet"), sweep_dir.join("t.parquet")).unwrap();
    let err = stderr(&table(&dir.join("tables/t3")));
    assert!(
        err.contains("t.parquet is in a sweep directory but is not a sweep file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
