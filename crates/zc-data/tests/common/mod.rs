//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository's `data` directory.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data");

/// A file under the system temp dir with a unique name, removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    /// Writes `bytes` to a fresh file whose name contains `tag`.
    pub fn new(tag: &str, bytes: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("zc-data-test-{}-{n}-{tag}.bin", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One-label-byte records: `(label, planar pixels)` concatenated.
pub fn records<'a>(items: impl IntoIterator<Item = (u8, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (label, pixels) in items {
        out.push(label);
        out.extend_from_slice(pixels);
    }
    out
}
