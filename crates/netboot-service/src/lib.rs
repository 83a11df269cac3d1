//! The one shape of every netboot service and the start-up they share.
//!
//! A service library implements [`Service`] (bind its sockets from the configuration) and
//! [`Bound`] (say where it listens, take reloads, serve until told to stop). Its binary's
//! `main.rs` is one line, [`main`], which owns everything operators rely on being the same
//! for every binary:
//!
//! * the configuration: `--config FILE`, else `/etc/netboot/netboot.toml` when it exists,
//!   else the embedded defaults (the log says which);
//! * `--check-config`: every check that needs no socket (keys and values, the files the
//!   configuration names exist and parse, `*_env` variables are set, the log filter parses),
//!   exiting 0 when it passes, 2 on a configuration error, 1 on any other failure; a start
//!   runs the same checks and uses the same exit codes;
//! * logging (`[log]`, `RUST_LOG`), the tokio runtime (at most [`MAX_BLOCKING_THREADS`]
//!   threads for blocking work), `--version`;
//! * the open-files soft limit raised to the hard limit (logged), so listeners are not
//!   refused new sockets at 1,024 when the system allows more;
//! * `[metrics] listen`: `/metrics` and `/healthz` from any binary;
//! * SIGHUP: reload the configuration (rejected, with the error logged, when it fails the
//!   checks; keys that need a restart are named in the log);
//! * SIGTERM/SIGINT: stop accepting, let in-flight work finish for `[runtime] drain_secs`,
//!   then end it, flush the boot records and exit 0; a second signal exits at once.
//!
//! ```text
//! // bins/pxe-tftp/src/main.rs
//! fn main() -> std::process::ExitCode {
//!     netboot_service::main::<pxe_tftp::Tftp>()
//! }
//! ```
//!
//! A binary adds operator commands (`pxe-server clear-required <MAC>`) with a
//! `clap::Subcommand` enum implementing [`Commands`] and [`main_with_commands`]; see
//! [`Commands`] for the few lines it takes.

#![deny(missing_docs)]

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use netboot_config::{Config, Problems};

mod checks;
mod context;
mod limits;
mod logging;
mod metrics;
mod program;
mod reload;
mod shutdown;
mod signals;
mod source;

pub use checks::{check_dir_exists, check_file_exists};
pub use context::Context;
pub use limits::MAX_BLOCKING_THREADS;
pub use logging::{parse_filter, Logging, LOG_ENV};
pub use netboot_records::Telemetry;
pub use program::{main, main_with_commands, CommandContext, Commands, NoCommands};
pub use reload::{changed_keys, is_reloadable, RELOADABLE_KEYS};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use source::{ConfigSource, DEFAULT_CONFIG_PATH};

/// Exit status of a configuration error (start or `--check-config`).
pub const EXIT_CONFIG_ERROR: u8 = 2;
/// Exit status of any other failure (a port in use, a database that refuses the schema).
pub const EXIT_RUNTIME_ERROR: u8 = 1;

/// The parts of the configuration file a binary reads. `--check-config` and reloads look at
/// these only, so one file can be deployed to every host of a split installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[proxy]`.
    Proxy,
    /// `[tftp]`.
    Tftp,
    /// `[https]`, `[peerdist]` (BranchCache) and `[auth]` (boot-console logins), all served by the
    /// HTTPS service.
    Https,
    /// `[resolver]`: the binary asks for boot decisions.
    Resolver,
    /// `[admin]`.
    Admin,
}

impl Section {
    /// The section a dotted key belongs to, `None` for the ones every binary reads
    /// (`[log]`, `[records]`, `[runtime]`, `[metrics]`).
    #[must_use]
    pub fn of_key(key: &str) -> Option<Self> {
        match key.split('.').next()? {
            "proxy" => Some(Self::Proxy),
            "tftp" => Some(Self::Tftp),
            "https" | "peerdist" | "auth" => Some(Self::Https),
            "resolver" => Some(Self::Resolver),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Which tokio runtime a binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFlavor {
    /// One thread: the proxy answers in microseconds, and one thread avoids cross-thread
    /// wake-ups; TFTP runs its transfers on worker threads of its own.
    CurrentThread,
    /// A worker per core (HTTPS, the all-in-one server).
    MultiThread,
}

/// A network service: what it reads, how it is checked and how it binds.
pub trait Service: 'static {
    /// The binary's name (`pxe-tftp`), for `--help` and the logs.
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The configuration sections it reads besides `[log]`, `[records]`, `[runtime]` and
    /// `[metrics]`.
    const SECTIONS: &'static [Section];
    /// The runtime it runs on.
    const RUNTIME: RuntimeFlavor = RuntimeFlavor::MultiThread;
    /// Its own command-line flags (`--root`, `--listen`, ...).
    type Args: clap::Args + Debug + Send + Sync + 'static;
    /// The service with its sockets bound.
    type Bound: Bound;

    /// Writes the flags into the configuration; they win over the file, also after a reload.
    fn apply_args(_args: &Self::Args, _config: &mut Config) {}

    /// Checks beyond [`Config::validate`] that need no socket: files the service will open,
    /// certificates it will load. Each problem is named by its key.
    fn check(_config: &Config, _problems: &mut Problems) {}

    /// Binds every socket (a busy port fails here, before anything serves) and prepares to
    /// serve. Counters and records go to `context.telemetry`; decisions come from
    /// `context.resolver(&config)`.
    fn bind(
        config: Arc<Config>,
        context: Context,
    ) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send;
}

/// A service with its sockets bound, ready to serve.
pub trait Bound: Send + 'static {
    /// Every address it listens on, with what each is for.
    fn local_addrs(&self) -> Vec<LocalAddr>;

    /// What applies a reloaded configuration to the running service. The start-up calls each
    /// on every accepted reload (SIGHUP), also when no key changed, so files named by
    /// unchanged keys (a renewed certificate) are read again.
    fn reloaders(&self) -> Vec<Arc<dyn Reload>> {
        Vec::new()
    }

    /// Serves until `shutdown` says to stop accepting, then lets what is in flight finish
    /// until it says to stop now, and returns once nothing of its own is left running.
    fn serve(self, shutdown: Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Applies a reloaded configuration to a running service.
pub trait Reload: Send + Sync + Debug {
    /// Called with a configuration that passed every check. Applies what can change while
    /// serving (see [`RELOADABLE_KEYS`]); an error is logged and leaves the service running
    /// as it was.
    fn reload(&self, config: &Arc<Config>) -> anyhow::Result<()>;
}

/// For a binary without flags of its own.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct NoArgs {}

/// A bound address and what it serves, as the `listening on <addr> (<role>)` line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    /// The bound address (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// `dhcp`, `tftp`, `https`, ...
    pub role: String,
}

impl LocalAddr {
    /// `addr` serving `role`.
    #[must_use]
    pub fn new(addr: SocketAddr, role: impl Into<String>) -> Self {
        Self {
            addr,
            role: role.into(),
        }
    }
}
