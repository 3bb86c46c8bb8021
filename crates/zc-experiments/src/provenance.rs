//! What produced a result: crate version and the git revision the binary was built from.

/// Crate version of the harness.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the `zc` binary was built from (`abc1234def56`, with `-dirty` when its
/// sources differed from that commit at build time), or `unknown` when built outside a git
/// checkout. Captured by `build.rs`, so it names the code that ran, wherever it runs.
pub const GIT_REVISION: &str = env!("ZC_GIT_REVISION");
