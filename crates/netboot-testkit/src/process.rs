//! Running the real binaries from tests, and deciding whether a test can run at all.
//!
//! A [`Service`] is a spawned binary whose stderr is read line by line (colour codes removed)
//! on a thread; its `listening on <addr> (<label>)` lines tell the test which ephemeral ports
//! it bound. The process is killed when the `Service` is dropped, also when the test fails.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use netboot_testkit::process::Service;
//!
//! let mut command = Command::new("target/debug/pxe-https");
//! command.args(["--config", "netboot.toml"]).env("RUST_LOG", "info");
//! let server = Service::spawn("pxe-https", &mut command);
//! let https = server.listening(1, Duration::from_secs(60))[0].addr;
//! # let _ = https;
//! ```
//!
//! Tests that need a tool or root call [`have_tool`] or [`is_root`] first: outside CI a missing
//! requirement skips the test with a note on stderr; with `CI` set it fails the test, so CI
//! never passes by skipping.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the log must stay quiet for [`Service::drain_log`] to return.
pub const LOG_QUIET: Duration = Duration::from_millis(200);
/// The longest [`Service::drain_log`] reads a log that keeps talking.
pub const LOG_SETTLE_MAX: Duration = Duration::from_secs(5);

/// Whether the tests run under CI (the `CI` environment variable is set).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Reports that a test cannot run because of `reason`: panics with it under CI, otherwise
/// prints `skipping: <reason>` so the caller can return.
pub fn skip_or_fail(reason: &str) {
    assert!(!in_ci(), "{reason}");
    eprintln!("skipping: {reason}");
}

/// True when `tool` is an executable file on `PATH`. When it is not: fails under CI, naming
/// the Debian `package` (CI installs `TEST_PACKAGES` from `xtask/src/deps.rs`), and otherwise
/// skips with a note.
pub fn have_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(tool))));
    if !found {
        skip_or_fail(&format!(
            "{tool} is not installed (Debian package {package}, in TEST_PACKAGES of xtask/src/deps.rs)"
        ));
    }
    found
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the tests run as root, without reporting anything.
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// True when the tests run as root (network namespaces need it). When they do not: fails
/// under CI, otherwise skips with a note.
pub fn is_root() -> bool {
    let root = running_as_root();
    if !root {
        skip_or_fail("this test needs root (network namespaces)");
    }
    root
}

/// One `listening on <addr> <label>` log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The bound address.
    pub addr: SocketAddr,
    /// The rest of the line after the address, such as `(https)` or `(dhcp, broadcast)`.
    pub label: String,
}

impl Listening {
    /// The listener a log line announces, if it is a `listening on` line.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.split("listening on ").nth(1)?;
        let (addr, label) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        Some(Self {
            addr: addr.parse().ok()?,
            label: label.trim().to_owned(),
        })
    }
}

/// Removes ANSI escape sequences (colours) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip up to and including the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running binary whose stderr lines arrive on [`Service::log`]; killed on drop.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Service {
    /// Spawns `command` with `NO_COLOR=1`, stdin and stdout closed and stderr read into
    /// [`Service::log`]. Panics when it cannot be started.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        Self::spawn_with(name, command, false)
    }

    /// Like [`Service::spawn`], and also copies every log line to the test's stderr prefixed
    /// with `name`, where `cargo test` shows it for a failed test.
    pub fn spawn_echoing(name: &str, command: &mut Command) -> Self {
        Self::spawn_with(name, command, true)
    }

    fn spawn_with(name: &str, command: &mut Command, echo: bool) -> Self {
        let mut child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, log) = mpsc::channel();
        let prefix = name.to_owned();
        std::thread::spawn(move || {
            // Keep reading after the test stops listening: a closed pipe would fail the
            // service's later log writes.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if echo {
                    eprintln!("{prefix}: {line}");
                }
                let _ = sender.send(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Log lines not yet consumed, as they arrive.
    pub fn log(&self) -> &mpsc::Receiver<String> {
        &self.log
    }

    /// The log lines not consumed yet, up to a moment of quiet: the services write their log
    /// from a background thread, so the line about a request just answered may still be on its
    /// way when the answer arrives. Reads until no line came for [`LOG_QUIET`], for at most
    /// [`LOG_SETTLE_MAX`].
    pub fn drain_log(&self) -> Vec<String> {
        let deadline = Instant::now() + LOG_SETTLE_MAX;
        let mut lines = Vec::new();
        loop {
            let wait = LOG_QUIET.min(deadline.saturating_duration_since(Instant::now()));
            match self.log.recv_timeout(wait) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return lines,
            }
        }
    }

    /// Reads log lines until `enough` says the listeners seen so far suffice, for at most
    /// `within`. On a timeout, or when the process closes stderr (it exited), returns the log
    /// lines read so far as the error.
    pub fn wait_for_listening(
        &self,
        within: Duration,
        mut enough: impl FnMut(&[Listening]) -> bool,
    ) -> Result<Vec<Listening>, String> {
        let deadline = Instant::now() + within;
        let mut found = Vec::new();
        let mut seen = Vec::new();
        while !enough(&found) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(remaining) {
                Ok(line) => {
                    found.extend(Listening::parse(&line));
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err(seen.join("\n"));
                }
            }
        }
        Ok(found)
    }

    /// The first `count` listeners the process logs; panics with its log when they do not
    /// all appear within `within`.
    pub fn listening(&self, count: usize, within: Duration) -> Vec<Listening> {
        self.wait_for_listening(within, |found| found.len() >= count)
            .unwrap_or_else(|log| {
                panic!(
                    "{} did not log {count} `listening on` lines within {within:?}; its log:\n{log}",
                    self.name
                )
            })
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("polling the child process")
            .is_none()
    }

    /// The exit status, once the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("polling the child process")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit; panics when it does not.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        terminate(&mut self.child, &self.name, within)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child` (through `kill`, as an init system would) and waits up to
/// `within` for it to exit; panics naming `name` when it does not.
pub fn terminate(child: &mut Child, name: &str, within: Duration) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -TERM {name} failed");
    let deadline = Instant::now() + within;
    loop {
        if let Some(exit) = child.try_wait().expect("polling the child process") {
            return exit;
        }
        assert!(Instant::now() < deadline, "{name} did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_give_address_and_label() {
        let line = "2026-01-01T00:00:00Z  INFO pxe_https: listening on 127.0.0.1:4433 (https)";
        assert_eq!(
            Listening::parse(line),
            Some(Listening {
                addr: "127.0.0.1:4433".parse().unwrap(),
                label: "(https)".into()
            })
        );
        let bare = Listening::parse("listening on [::1]:69").unwrap();
        assert_eq!(
            (bare.addr, bare.label.as_str()),
            ("[::1]:69".parse().unwrap(), "")
        );
        assert_eq!(Listening::parse("INFO started"), None);
    }

    #[test]
    fn colour_codes_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[32m INFO\u{1b}[0m listening on 127.0.0.1:1"),
            " INFO listening on 127.0.0.1:1"
        );
    }

    #[test]
    fn a_spawned_process_is_read_and_terminated() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo 'listening on 127.0.0.1:9 (test)' >&2; exec sleep 60"]);
        let mut service = Service::spawn("sh", &mut command);
        let found = service.listening(1, Duration::from_secs(30));
        assert_eq!(found[0].addr, "127.0.0.1:9".parse().unwrap());
        assert!(service.is_running());
        let exit = service.terminate(Duration::from_secs(30));
        assert!(!exit.success(), "sleep ends by the signal: {exit}");
    }

    #[test]
    fn a_process_that_exits_early_returns_its_log() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo 'bad config' >&2; exit 1"]);
        let service = Service::spawn("sh", &mut command);
        let log = service
            .wait_for_listening(Duration::from_secs(30), |found| !found.is_empty())
            .unwrap_err();
        assert_eq!(log, "bad config");
    }
}
