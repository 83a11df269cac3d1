//! The atftp client runs: single transfers, the option probe and the storm.
//!
//! Clients are spawned from a thread that has entered the client namespace (a child inherits
//! the namespace of the thread that forks it), so no `ip netns exec` start-up sits inside the
//! timed interval and 200 clients start within a few milliseconds of each other.
//!
//! Client timeouts are counted from atftp itself: on every expiry of its retransmission timer
//! (5 s by default) it prints `timeout: retrying ...` on stderr and resends its last RRQ or
//! ACK. That is the client's own view, so it counts the same for every server, including
//! timeouts caused by a server that drops a request or a block under load.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::servers::Server;
use super::{interrupted, SERVER_IP};

/// atftp's retransmission timeout (its default; the benchmark does not change it).
pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The line atftp prints each time its retransmission timer expires.
const TIMEOUT_LINE: &str = "timeout: retrying";

/// What one atftp fetch asks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fetch<'a> {
    pub(super) server: Server,
    pub(super) file: &'a str,
    pub(super) blksize: u32,
    pub(super) window: u32,
}

/// How one client ended.
#[derive(Debug)]
pub(super) struct Outcome {
    /// From spawn to exit (or to the deadline).
    pub(super) elapsed: Duration,
    /// Exited 0 before the deadline.
    pub(super) ok: bool,
    /// `timeout: retrying` lines it printed.
    pub(super) timeouts: u64,
    /// Everything it printed (trace output for probes, the error otherwise).
    pub(super) output: String,
}

fn command(fetch: &Fetch<'_>, trace: bool, log: &Path) -> Result<Command> {
    let mut command = Command::new("atftp");
    command.args(["--get", "--remote-file", fetch.file, "--local-file", "/dev/null"]);
    command.args(["--option", &format!("blksize {}", fetch.blksize)]);
    if fetch.window > 1 {
        command.args(["--option", &format!("windowsize {}", fetch.window)]);
    }
    if trace {
        command.arg("--trace");
    }
    command.args([SERVER_IP, &fetch.server.port().to_string()]);
    let log = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // A Ctrl-C reaches only the benchmark, which kills its clients itself.
        .process_group(0);
    Ok(command)
}

/// Spawns `commands` from a thread inside namespace `netns`.
fn spawn_in(netns: &str, commands: Vec<Command>) -> Result<Vec<Child>> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> Result<Vec<Child>> {
                crate::bench::enter_netns(netns)?;
                let mut children = Vec::with_capacity(commands.len());
                for mut command in commands {
                    match command.spawn() {
                        Ok(child) => children.push(child),
                        Err(e) => {
                            kill_all(&mut children);
                            return Err(e).context("starting atftp");
                        }
                    }
                }
                Ok(children)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("client spawner panicked"))?
    })
}

fn kill_all(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `fetches` at once from namespace `netns`; each must end within `deadline`. Logs go
/// to `logs/<n>.log`. Fails only on interruption or when a client cannot be started.
pub(super) fn run_clients(
    netns: &str,
    fetches: &[Fetch<'_>],
    trace: bool,
    deadline: Duration,
    logs: &Path,
) -> Result<Vec<Outcome>> {
    std::fs::create_dir_all(logs)?;
    let paths: Vec<PathBuf> = (0..fetches.len())
        .map(|n| logs.join(format!("{n}.log")))
        .collect();
    let commands = fetches
        .iter()
        .zip(&paths)
        .map(|(fetch, log)| command(fetch, trace, log))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let mut children = spawn_in(netns, commands)?;
    let mut ended: Vec<Option<(Duration, bool)>> = vec![None; children.len()];
    // Short polls for one client keep its timing exact; a storm needs less.
    let poll = if children.len() == 1 {
        Duration::from_micros(500)
    } else {
        Duration::from_millis(5)
    };
    let mut open = children.len();
    while open > 0 {
        if interrupted() {
            kill_all(&mut children);
            bail!("interrupted");
        }
        let elapsed = started.elapsed();
        for (child, end) in children.iter_mut().zip(ended.iter_mut()) {
            if end.is_some() {
                continue;
            }
            if let Some(status) = child.try_wait()? {
                *end = Some((elapsed, status.success()));
                open -= 1;
            } else if elapsed > deadline {
                let _ = child.kill();
                let _ = child.wait();
                *end = Some((elapsed, false));
                open -= 1;
            }
        }
        std::thread::sleep(poll);
    }
    let mut outcomes = Vec::with_capacity(ended.len());
    for (end, path) in ended.into_iter().zip(&paths) {
        let (elapsed, ok) = end.context("client without an end")?;
        let output = std::fs::read_to_string(path).unwrap_or_default();
        let _ = std::fs::remove_file(path);
        outcomes.push(Outcome {
            elapsed,
            ok,
            timeouts: output.matches(TIMEOUT_LINE).count() as u64,
            output,
        });
    }
    Ok(outcomes)
}

/// The last lines a client printed (its trace, if any, ends with what went wrong).
pub(super) fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "no output".to_owned();
    }
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// What a server granted for a requested blksize and windowsize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant {
    pub(super) blksize: u32,
    pub(super) window: u32,
}

/// The options in atftp's trace line `received OACK <blksize: 1468, windowsize: 16, >`; a
/// server that sent no OACK ignored every option (RFC 2347: 512-byte blocks, lock-step).
pub(super) fn parse_grant(trace: &str) -> Grant {
    let mut grant = Grant {
        blksize: 512,
        window: 1,
    };
    let Some(line) = trace.lines().find(|l| l.contains("received OACK")) else {
        return grant;
    };
    let options = line
        .split_once('<')
        .map(|(_, rest)| rest.trim_end().trim_end_matches('>'))
        .unwrap_or_default();
    for option in options.split(',') {
        let Some((name, value)) = option.split_once(':') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u32>() else {
            continue;
        };
        match name.trim() {
            "blksize" => grant.blksize = value,
            "windowsize" => grant.window = value,
            _ => {}
        }
    }
    grant
}

/// Asks `server` for `blksize`/`window` on a small file and reads the OACK.
pub(super) fn probe(netns: &str, fetch: Fetch<'_>, logs: &Path) -> Result<Grant> {
    let outcome = run_clients(netns, &[fetch], true, Duration::from_secs(30), logs)?
        .pop()
        .context("no probe outcome")?;
    if !outcome.ok {
        bail!("probe fetch failed: {}", tail(&outcome.output));
    }
    Ok(parse_grant(&outcome.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_from_oack_trace() {
        let trace = "Trace mode on.\nsent RRQ <file: f, mode: octet <blksize: 8192, windowsize: 64>>\n\
                     received OACK <windowsize: 64, blksize: 8192, >\nsent ACK <block: 0>\n";
        assert_eq!(
            parse_grant(trace),
            Grant {
                blksize: 8192,
                window: 64
            }
        );
        let capped = "received OACK <blksize: 1468, >\n";
        assert_eq!(
            parse_grant(capped),
            Grant {
                blksize: 1468,
                window: 1
            }
        );
    }

    #[test]
    fn no_oack_means_defaults() {
        let trace =
            "sent RRQ <file: f, mode: octet <blksize: 1468>>\nreceived 1. DATA <block: 1, size 512>\n";
        assert_eq!(
            parse_grant(trace),
            Grant {
                blksize: 512,
                window: 1
            }
        );
    }
}
