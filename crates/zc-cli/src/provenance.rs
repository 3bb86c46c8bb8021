//! What produced a result: crate version and git revision of the working tree.

use std::process::Command;

/// Crate version of the harness.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision of the working tree (`abc1234`, with `-dirty` when it has uncommitted
/// changes), or `unknown` outside a git checkout.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    }
}
