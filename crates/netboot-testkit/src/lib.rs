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
//!   kill it on drop; check for tools and root (skip outside CI, fail under `CI`);
//! - [`slapd`]: a private OpenLDAP directory to log in against.
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
pub mod slapd;
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

/// Writes `len` deterministic pseudo-random bytes (no repeating pattern a wrong or shifted
/// block could match) to `path`.
pub fn write_test_file(path: &Path, len: usize, seed: u64) {
    use std::io::Write as _;
    let mut state = seed | 1;
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut remaining = len;
    let mut chunk = vec![0u8; 1 << 16];
    while remaining > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = remaining.min(chunk.len());
        out.write_all(&chunk[..n]).expect("writing the test file");
        remaining -= n;
    }
    out.flush().expect("writing the test file");
}
