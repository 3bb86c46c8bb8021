//! Records the git revision the `zc` binary is built from, so results name the code that
//! produced them wherever the binary runs (a copy of the tree, a cluster node without git).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("..")
        .join("..");
    let git = |args: &[&str]| {
        Command::new("git")
            // No index refresh: this script watches .git/index and must not rewrite it.
            .arg("--no-optional-locks")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // The sources that make the binary: a change to any of them, committed or not, tracked or
    // new, marks the revision dirty.
    let sources = ["crates", "Cargo.toml", "Cargo.lock"];
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let mut status = vec!["status", "--porcelain", "--"];
            status.extend(sources);
            if git(&status).is_some_and(|s| !s.is_empty()) {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=ZC_GIT_REVISION={revision}");
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "index"] {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&git_dir).join(file).display()
            );
        }
    }
    // Branch refs live in the common directory (the same as the git dir outside worktrees).
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        for file in ["refs", "packed-refs"] {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&common).join(file).display()
            );
        }
    }
    for source in sources {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
}
