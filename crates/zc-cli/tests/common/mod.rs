//! Helpers shared by the end-to-end tests.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `zc ARGS`, kills it (SIGKILL) as soon as a part file (`*.part-*.parquet`) appears in
/// `out`, and waits for it to end: the state a `kill -9` leaves behind after some work.
pub fn kill_after_first_part(args: &[&str], out: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zc"))
        .args(args)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let is_part = |name: &str| name.contains(".part-") && name.ends_with(".parquet");
    while !std::fs::read_dir(out).is_ok_and(|d| {
        d.flatten()
            .any(|e| is_part(&e.file_name().to_string_lossy()))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no part file appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
