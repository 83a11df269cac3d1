//! Shared helpers of the integration tests: spawning the real binary, finding client tools,
//! making test files.

#![allow(dead_code, unreachable_pub)]

pub mod clients;
pub mod netns;
pub mod relay;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `pxe-tftp`, killed on drop.
pub struct Server {
    child: Child,
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
    /// "listening on" line.
    pub fn start_with(mut command: Command, root: &Path, listen: &str, extra: &[&str]) -> Self {
        command
            .args([
                "--root".as_ref(),
                root.as_os_str(),
                "--listen".as_ref(),
                listen.as_ref(),
            ])
            .args(extra)
            .env("NO_COLOR", "1")
            // TFTP_TEST_LOG=debug shows the server's log on the test's stderr.
            .env(
                "RUST_LOG",
                std::env::var("TFTP_TEST_LOG")
                    .ok()
                    .filter(|l| l.contains("debug"))
                    .unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawning pxe-tftp");
        let stderr = child.stderr.take().unwrap();
        let (found, addr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("TFTP_TEST_LOG").is_some() {
                    let _ = writeln!(std::io::stderr(), "[pxe-tftp] {line}");
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let text: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
                        .collect();
                    if let (Some(sender), Ok(addr)) = (found.take(), text.parse::<SocketAddr>()) {
                        let _ = sender.send(addr);
                    }
                }
            }
        });
        let addr = match addr.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("pxe-tftp did not log `listening on`: {:?}", child.wait());
            }
        };
        Self { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` is installed. Missing under `CI` is a failure; elsewhere the test is skipped.
pub fn have_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing; install the Debian package {package} (cargo xtask deps)"
        );
        eprintln!("skipping: {tool} not installed (Debian package {package})");
    }
    found
}

/// Whether the tests run as root (needed for network namespaces). Not root under `CI` fails.
pub fn is_root() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs root for network namespaces"
        );
        eprintln!("skipping: needs root for network namespaces");
    }
    root
}

/// Writes `len` deterministic pseudo-random bytes (no repeating pattern a wrong block could
/// match) to `path`.
pub fn write_test_file(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
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
        out.write_all(&chunk[..n]).unwrap();
        remaining -= n;
    }
    out.flush().unwrap();
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
