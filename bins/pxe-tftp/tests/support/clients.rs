//! Third-party client command lines, each bounded by `timeout` and optionally run inside a
//! network namespace.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use netboot_testkit::netns;

/// `timeout <secs> <tool>`, inside `namespace` when given; client arguments follow.
pub fn bounded(namespace: Option<&str>, secs: u32, tool: &str) -> Command {
    let mut command = match namespace {
        Some(namespace) => netns::command(namespace, "timeout"),
        None => Command::new("timeout"),
    };
    command.arg(secs.to_string()).arg(tool);
    command
}

/// tftp-hpa fetching `name` into `out` (binary mode, no options, so blksize 512 lock-step).
/// `command` comes from [`bounded`] with tool `tftp`.
pub fn tftp_hpa(mut command: Command, server: SocketAddr, name: &str, out: &Path) -> Command {
    command
        .args(["-m", "binary"])
        .args([server.ip().to_string(), server.port().to_string()])
        .args(["-c", "get", name])
        .arg(out);
    command
}

/// atftp option making the server retransmit less often than atftp's 1 s timer fires (see
/// [`atftp`]); without it two lost ACKs in a row stall the transfer until the server gives up.
pub const ATFTP_OUTLASTING_TIMEOUT: &str = "timeout 2";

/// atftp fetching `name` into `out`, asking for `options` (e.g. `"windowsize 16"`).
/// `command` comes from [`bounded`] with tool `atftp`.
///
/// The client's own retransmission timer is set to 1 s (default 5 s). atftp 0.8 answers the
/// first repeat of a block it already holds with one extra ACK, ignores further repeats and
/// restarts that timer on every packet: when an ACK and its extra ACK are both lost, only the
/// timer repairs the transfer, and only if the server stays silent longer than it. On a lossy
/// link ask for the `timeout` option ([`ATFTP_OUTLASTING_TIMEOUT`]).
pub fn atftp(mut command: Command, server: SocketAddr, name: &str, out: &Path, options: &[&str]) -> Command {
    command
        .args([
            "--tftp-timeout",
            "1",
            "--get",
            "--remote-file",
            name,
            "--local-file",
        ])
        .arg(out);
    for option in options {
        command.args(["--option", option]);
    }
    command.args([server.ip().to_string(), server.port().to_string()]);
    command
}

/// atftp sending `local` as `remote`, asking for `options`. `command` is `atftp` itself or
/// comes from [`bounded`] with tool `atftp`.
pub fn atftp_put(
    mut command: Command,
    server: SocketAddr,
    local: &Path,
    remote: &str,
    options: &[&str],
) -> Command {
    command
        .args(["--put", "--local-file"])
        .arg(local)
        .args(["--remote-file", remote]);
    for option in options {
        command.args(["--option", option]);
    }
    command.args([server.ip().to_string(), server.port().to_string()]);
    command
}

/// curl fetching `name` into `out`; `extra` goes before the URL (e.g. `--tftp-no-options`).
/// `command` comes from [`bounded`] with tool `curl`.
pub fn curl(mut command: Command, server: SocketAddr, name: &str, out: &Path, extra: &[&str]) -> Command {
    command
        .args(["--silent", "--show-error", "--fail"])
        .args(extra)
        .arg("--output")
        .arg(out)
        .arg(format!("tftp://{server}/{name}"));
    command
}
