//! Shared helpers of the integration tests: starting the real binary, making test files.
//! Spawning processes, checking for tools and root, and network namespaces come from
//! `netboot_testkit`.

#![allow(dead_code, unreachable_pub)]

pub mod clients;
pub mod nft;
pub mod relay;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netboot_testkit::process::Service;
pub use netboot_testkit::process::{have_tool, is_root};
pub use netboot_testkit::write_test_file;

/// A running `pxe-tftp`, killed on drop.
pub struct Server {
    /// The process; dropping it kills the server.
    service: Service,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the binary on a free loopback port serving `root`, with extra arguments.
    pub fn start(root: &Path, extra: &[&str]) -> Self {
        Self::start_with(
            Command::new(env!("CARGO_BIN_EXE_pxe-tftp")),
            root,
            "127.0.0.1:0",
            extra,
        )
    }

    /// Starts `command` (the binary, possibly wrapped in `ip netns exec`) and waits for its
    /// first "listening on" line. With `TFTP_TEST_LOG` set the server's log is copied to the
    /// test's stderr; `TFTP_TEST_LOG=debug` also raises its level.
    pub fn start_with(mut command: Command, root: &Path, listen: &str, extra: &[&str]) -> Self {
        let echo = std::env::var_os("TFTP_TEST_LOG").is_some();
        command
            .args([
                "--root".as_ref(),
                root.as_os_str(),
                "--listen".as_ref(),
                listen.as_ref(),
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("TFTP_TEST_LOG")
                    .ok()
                    .filter(|l| l.contains("debug"))
                    .unwrap_or("info".into()),
            );
        let service = if echo {
            Service::spawn_echoing("pxe-tftp", &mut command)
        } else {
            Service::spawn("pxe-tftp", &mut command)
        };
        let addr = service.listening(1, Duration::from_secs(60))[0].addr;
        Self { service, addr }
    }
}

/// Creates `<dir>/root` and `<dir>/uploads` and a config file enabling uploads into the latter,
/// with `settings` (TOML lines) added to its `[tftp]` section. Returns root, uploads, config.
pub fn upload_setup(dir: &Path, settings: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = at(dir, "root");
    let uploads = at(dir, "uploads");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&uploads).unwrap();
    let config = at(dir, "netboot.toml");
    std::fs::write(
        &config,
        format!("[tftp]\nallow_upload = true\nupload_dir = \"uploads\"\n{settings}"),
    )
    .unwrap();
    (root, uploads, config)
}

/// Asserts two files have identical bytes, naming the first difference.
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let a = std::fs::read(expected).unwrap();
    let b = std::fs::read(actual).unwrap_or_else(|e| panic!("{}: {e}", actual.display()));
    assert_eq!(
        a.len(),
        b.len(),
        "{} has {} bytes, expected {}",
        actual.display(),
        b.len(),
        a.len()
    );
    if let Some(at) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!(
            "{} differs from {} at byte {at}",
            actual.display(),
            expected.display()
        );
    }
}

/// Runs a client command, failing with its output when it does not succeed.
pub fn run_client(mut command: Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("creating a temporary directory")
}

/// `dir/name` as a `PathBuf`.
pub fn at(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
