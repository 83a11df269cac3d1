//! The operational contract every binary shares, from the outside: `--check-config` and its
//! exit statuses, the `[metrics]` listener, and the signals an operator sends.
//!
//! ```no_run
//! use std::path::Path;
//! let dir = Path::new("/tmp/example");
//! netboot_testkit::ops::assert_config_error(
//!     "target/debug/pxe-tftp",
//!     dir,
//!     "[log]\nlevel = \"info,pxe_tftp=loud\"\n",
//!     &[],
//!     "log.level",
//! );
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Exit status of a configuration error.
pub const EXIT_CONFIG_ERROR: i32 = 2;

/// Writes `toml` to `dir/check.toml` and runs `binary --check-config --config` on it with the
/// environment variables `env` set and `RUST_LOG` removed.
pub fn check_config(binary: &str, dir: &Path, toml: &str, env: &[(&str, &str)]) -> Output {
    let path = dir.join("check.toml");
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    Command::new(binary)
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("NETBOOT_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {binary}: {e}"))
}

/// Asserts that `--check-config` on `toml` exits 0 and prints `configuration OK`.
pub fn assert_config_ok(binary: &str, dir: &Path, toml: &str, env: &[(&str, &str)]) {
    let output = check_config(binary, dir, toml, env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("configuration OK"),
        "{binary} --check-config on\n{toml}\nexited {}: {}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts that `--check-config` on `toml` exits 2 with an error naming `key`.
pub fn assert_config_error(binary: &str, dir: &Path, toml: &str, env: &[(&str, &str)], key: &str) {
    let output = check_config(binary, dir, toml, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(EXIT_CONFIG_ERROR),
        "{binary} --check-config on\n{toml}\nmust exit {EXIT_CONFIG_ERROR}; stderr: {stderr}"
    );
    assert!(
        stderr.starts_with("Error: ") && stderr.contains(key),
        "{binary} --check-config on\n{toml}\nmust name {key}; stderr: {stderr}"
    );
}

/// `(status, body)` of `GET path` on a plain-HTTP listener such as `[metrics] listen`.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("setting a read timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("sending the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|e| panic!("reading the answer to GET {path}: {e}"));
    parse_response(&response)
}

/// `(status, body)` of a whole HTTP/1 response as read from its connection (status 0 when
/// there is no status line).
pub fn parse_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value of one sample (`name` or `name{labels}` exactly as exposed) in Prometheus text,
/// 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Waits until `path` holds at least `bytes` (a download is under way), for at most
/// `within`; panics when `client` exits first or time runs out.
pub fn wait_until_in_flight(path: &Path, bytes: u64, client: &mut std::process::Child, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while std::fs::metadata(path).map_or(0, |m| m.len()) < bytes {
        let ended = client.try_wait().expect("polling the client");
        assert!(
            ended.is_none(),
            "the client ended before {} reached {bytes} bytes: {ended:?}",
            path.display()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not reach {bytes} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` (`HUP`, `TERM`, `INT`) to process `pid` with `kill`, as an operator or
/// supervisor would.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_by_their_exact_series() {
        let text = "# TYPE a counter\na{x=\"1\"} 3\na 7\nab 9\n";
        assert_eq!(sample(text, "a{x=\"1\"}"), 3.0);
        assert_eq!(sample(text, "a"), 7.0);
        assert_eq!(sample(text, "b"), 0.0);
    }
}
