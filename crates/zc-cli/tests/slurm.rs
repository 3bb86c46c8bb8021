//! `zc submit` and `zc status` against a real Slurm cluster (`scripts/slurm-local-start.sh`
//! starts one on this machine; `.ci/run` does so before the tests). Without Slurm the cluster
//! tests say they are skipped and why, unless `ZC_REQUIRE_SLURM` is set (as in CI), where they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use zc_benchmark::GroundTruth;
use zc_experiments::config::Experiment;
use zc_experiments::sweep::{self, Shard};
use zc_experiments::table;

const ZC: &str = env!("CARGO_BIN_EXE_zc");

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
        .canonicalize()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zc-slurm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether a Slurm cluster answers; prints why a test is skipped when not.
fn slurm_is_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        let why = "no Slurm cluster answers `sinfo` here (start one with \
                   `eval \"$(scripts/slurm-local-start.sh)\"`)";
        assert!(
            std::env::var_os("ZC_REQUIRE_SLURM").is_none(),
            "{why}, but ZC_REQUIRE_SLURM is set"
        );
        eprintln!("skipped: {why}");
    }
    up
}

fn zc(args: &[&str]) -> Output {
    let output = Command::new(ZC)
        .arg("--data-dir")
        .arg(data_dir())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "zc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn config(dir: &Path, cells: usize, proxies: &str) -> PathBuf {
    let path = dir.join("sweep.yaml");
    std::fs::write(
        &path,
        format!(
            "name: cluster\ndatasets: [{{name: ImageNet16-120}}]\nproxies: [{proxies}]\n\
             cells: {{sample: {cells}, seed: 11}}\noutput: {}\nchunk: 4\n",
            dir.join("out").display()
        ),
    )
    .unwrap();
    path
}

/// The job ids of the latest submission in `out`.
fn job_ids(out: &Path) -> Vec<String> {
    let last = zc_experiments::cluster::submissions(out)
        .unwrap()
        .pop()
        .unwrap();
    vec![last.array_job, last.merge_job]
}

/// Waits until none of `jobs` is in Slurm's queue.
fn wait_for(jobs: &[String]) {
    let start = Instant::now();
    loop {
        let queue = Command::new("squeue")
            .args(["-h", "-j", &jobs.join(",")])
            .output()
            .unwrap();
        if queue.stdout.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "jobs {jobs:?} still queued: {}",
            String::from_utf8_lossy(&queue.stdout)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// (cell index -> every proxy value as bits) of the rows under `dir`, via the table reader
/// (which refuses conflicting duplicates).
fn rows(dir: &Path) -> BTreeMap<usize, Vec<u64>> {
    let swept = table::load(&[dir.to_path_buf()]).unwrap();
    assert_eq!(swept.groups.len(), 1);
    let group = swept.groups.values().next().unwrap();
    let mut out = BTreeMap::new();
    for (i, &index) in group.indices.iter().enumerate() {
        let values = group
            .proxies
            .values()
            .map(|c| c[i].unwrap().to_bits())
            .collect();
        out.insert(index, values);
    }
    out
}

/// The same sweep on this machine, in one process.
fn single_machine(config: &Path, output: &Path) -> BTreeMap<usize, Vec<u64>> {
    let table = GroundTruth::load_shipped(&data_dir()).unwrap();
    let mut e = Experiment::load(config, &table).unwrap();
    e.set_output(output.to_path_buf());
    sweep::run(&e, &table, &data_dir(), Shard::WHOLE).unwrap();
    rows(output)
}

#[test]
fn dry_run_writes_readable_scripts_and_submits_nothing() {
    let dir = temp_dir("dry");
    let config = config(&dir, 16, "synflow, params");
    let out = dir.join("out");
    let run = zc(&[
        "submit",
        config.to_str().unwrap(),
        "--shards",
        "4",
        "--partition",
        "gpu",
        "--mem",
        "4G",
        "--sbatch-arg=--qos=low",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    for line in [
        "#SBATCH --array=1-4",
        "#SBATCH --partition=gpu",
        "#SBATCH --mem=4G",
        "#SBATCH --qos=low",
        "sweep '",
        "--shard \"${SLURM_ARRAY_TASK_ID}/4\"",
        "status '",
        "--require-complete",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    let script = std::fs::read_to_string(out.join("slurm/shards.sbatch")).unwrap();
    assert!(text.contains(&script));
    assert!(!out.join("slurm/submissions.json").exists());
    // A resubmission of some shards lists them.
    let run = zc(&[
        "submit",
        config.to_str().unwrap(),
        "--shards",
        "4",
        "--only",
        "3,1",
        "--dry-run",
    ]);
    assert!(String::from_utf8_lossy(&run.stdout).contains("#SBATCH --array=1,3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_sharded_cluster_sweep_equals_the_single_machine_sweep() {
    if !slurm_is_up() {
        return;
    }
    let dir = temp_dir("equal");
    let config = config(&dir, 16, "synflow, params");
    let out = dir.join("out");
    let run = zc(&["submit", config.to_str().unwrap(), "--shards", "4"]);
    assert!(String::from_utf8_lossy(&run.stdout).contains("submitted job array"));
    wait_for(&job_ids(&out));
    let status =
        String::from_utf8_lossy(&zc(&["status", out.to_str().unwrap()]).stdout).to_string();
    assert!(status.contains("4 of 4 shards done"), "{status}");
    // The merge job ran after the shards and wrote the table beside the directory.
    let md = std::fs::read_to_string(dir.join("out.md")).unwrap();
    assert!(md.contains("| params | 16 |"), "{md}");
    let cluster = rows(&out);
    assert_eq!(cluster.len(), 16);
    assert_eq!(cluster, single_machine(&config, &dir.join("single")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_shard_killed_mid_run_is_resubmitted_and_nothing_is_lost_or_duplicated() {
    if !slurm_is_up() {
        return;
    }
    let dir = temp_dir("kill");
    // grad_norm on ImageNet16-120 takes about 0.2 s a cell: each shard runs for seconds.
    let config = config(&dir, 60, "grad_norm, params");
    let out = dir.join("out");
    zc(&["submit", config.to_str().unwrap(), "--shards", "2"]);
    let jobs = job_ids(&out);
    // Cancel shard 1 once it has written its first part file.
    let start = Instant::now();
    let has_part = || {
        std::fs::read_dir(&out).is_ok_and(|d| {
            d.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with("ImageNet16-120_seed0_shard1of2.part-")
            })
        })
    };
    while !has_part() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "shard 1 wrote no part"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = Command::new("scancel")
        .arg(format!("{}_1", jobs[0]))
        .status()
        .unwrap();
    assert!(cancel.success());
    wait_for(&jobs);
    let status =
        String::from_utf8_lossy(&zc(&["status", out.to_str().unwrap()]).stdout).to_string();
    assert!(status.contains("    1  failed"), "{status}");
    assert!(status.contains("--only 1"), "{status}");
    assert!(
        !dir.join("out.md").exists(),
        "the merge job must not run after a failed shard"
    );
    // Resubmit the failed shard: it resumes and the merge job writes the table.
    zc(&[
        "submit",
        config.to_str().unwrap(),
        "--shards",
        "2",
        "--only",
        "1",
    ]);
    wait_for(&job_ids(&out));
    let status =
        String::from_utf8_lossy(&zc(&["status", out.to_str().unwrap()]).stdout).to_string();
    assert!(status.contains("2 of 2 shards done"), "{status}");
    assert!(dir.join("out.md").is_file());
    let cluster = rows(&out);
    assert_eq!(cluster.len(), 60);
    assert_eq!(cluster, single_machine(&config, &dir.join("single")));
    std::fs::remove_dir_all(&dir).unwrap();
}
