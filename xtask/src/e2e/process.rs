//! Processes the harness starts inside its namespaces, and only those.
//!
//! Every process is held as a [`std::process::Child`] until it has been reaped, so its pid can
//! never be recycled while the harness still means to signal it. Children run in their own
//! process group: a Ctrl-C on the terminal reaches only the harness, which then stops them in
//! order and removes the namespaces.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long a process gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A process started by the harness inside a network namespace; stopped when dropped.
pub(crate) struct Spawned {
    name: String,
    child: Child,
    log: PathBuf,
    reaped: bool,
}

impl Spawned {
    /// Starts `program args...` in `netns` with stdout and stderr going to `log`.
    pub(crate) fn start(name: &str, netns: &str, log: &Path, program: &str, args: &[String]) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        // `ip netns exec` execs the program, so the child's pid is the program's pid.
        let child = Command::new("ip")
            .args(["netns", "exec", netns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} ({program}) in netns {netns}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
            reaped: false,
        })
    }

    /// The name given at start, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where its output goes.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it is still running (an exited child is reaped here).
    pub(crate) fn is_running(&mut self) -> bool {
        if self.reaped {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                self.reaped = true;
                false
            }
        }
    }

    /// Sends SIGTERM, waits a little, then SIGKILL; always reaps.
    pub(crate) fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a short command to completion, failing with its stderr.
pub(crate) fn run_checked(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command inside `netns`.
pub(crate) fn in_netns(netns: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["netns", "exec", netns];
    full.extend_from_slice(args);
    run_checked("ip", &full)
}
