//! Test support shared by the integration tests of the workspace. A dev-dependency of the
//! crates, and a dependency of `xtask` (whose benchmarks read `listening on` lines with
//! [`process::Listening`]); never published. It depends on nothing beyond `nix`, so that stays
//! cheap.
//!
//! - [`golden`]: compare output with committed files, rewrite them with `UPDATE_GOLDEN=1`;
//! - [`pcap`]: read the UDP datagrams of the firmware captures in `testdata/pcap/`;
//! - [`link`]: a seeded lossy, duplicating, reordering datagram link in virtual time;
//! - [`net`]: loopback ports for tests;
//! - [`netns`]: a pair of network namespaces joined by a veth link, removed on drop;
//! - [`ops`]: `--check-config` exit statuses, scraping `[metrics]`, sending signals;
//! - [`process`]: spawn a real binary, learn its ports from its `listening on` log lines,
//!   kill it on drop; check for tools and root (skip outside CI, fail under `CI`).
//!
//! Helpers panic with a message instead of returning errors: a broken fixture or a server that
//! never starts is a failed test.

pub mod golden;
pub mod link;
pub mod net;
pub mod netns;
pub mod ops;
pub mod pcap;
pub mod process;
pub mod tls;

use std::path::{Path, PathBuf};

/// `testdata/` at the workspace root.
pub fn testdata() -> PathBuf {
    workspace_root().join("testdata")
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("the testkit lives in crates/netboot-testkit")
}
