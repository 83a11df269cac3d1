//! Helpers shared by this crate's integration tests.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The classic-pcap reader of the DHCP tests, shared rather than copied.
#[path = "../../../netboot-dhcp/tests/common/pcap.rs"]
pub mod pcap;

/// `testdata/` at the workspace root.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// An arbitrary origin for virtual time. The crate never reads the clock; tests need one real
/// `Instant` only because `std` offers no other way to make one.
#[allow(
    clippy::disallowed_methods,
    reason = "the single real instant virtual time counts from"
)]
pub fn origin() -> Instant {
    Instant::now()
}

/// Whether golden files are being rewritten (`UPDATE_GOLDEN=1`, as in the other crates).
pub fn updating_golden() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden file, or rewrites the file when `UPDATE_GOLDEN=1`.
pub fn check_golden(path: &Path, actual: &[u8]) {
    if updating_golden() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if expected != actual {
        let (expected, actual) = (
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual),
        );
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs (first difference at line {}):\n expected: {:?}\n   actual: {:?}\nrun with UPDATE_GOLDEN=1 to accept",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}
