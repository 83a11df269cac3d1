//! What every binary's `main` does: the command line, the checks, logging, the runtime, and
//! serving under signals.

use std::fmt::Debug;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory as _, FromArgMatches as _};
use netboot_config::Config;
use netboot_records::Telemetry;
use tokio::time::Instant;

use crate::checks;
use crate::logging::Logging;
use crate::metrics::MetricsListener;
use crate::reload::{changed_keys, is_reloadable};
use crate::signals::{Request, Signals};
use crate::source::ConfigSource;
use crate::{
    Bound, Context, LocalAddr, Reload, RuntimeFlavor, Section, Service, Shutdown, EXIT_CONFIG_ERROR,
    EXIT_RUNTIME_ERROR,
};

/// How long services get to return after the drain time is over and they were told to stop
/// now, before the process exits regardless.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Operator commands of a binary (`pxe-server clear-required <MAC>`), beside serving.
///
/// A command runs after the configuration parsed and validated (the service's own checks of
/// what serving needs, such as boot programs, are left out: a command may be how they are
/// made), inside the runtime, with logging set up; its error ends the process with status 1
/// (2 when it is a [`netboot_config::ConfigError`]). Adding one is an enum variant and a match arm:
///
/// ```no_run
/// use netboot_service::{CommandContext, Commands};
///
/// /// Operator commands of this binary.
/// #[derive(Debug, clap::Subcommand)]
/// enum Command {
///     /// Prints the host id this host's records carry.
///     HostId,
/// }
///
/// impl Commands for Command {
///     async fn run(self, context: CommandContext) -> anyhow::Result<()> {
///         match self {
///             Self::HostId => println!("{}", context.config.log.effective_host_id()),
///         }
///         Ok(())
///     }
/// }
/// # struct Tftp;
/// # impl netboot_service::Service for Tftp {
/// #     const NAME: &'static str = "example";
/// #     const ABOUT: &'static str = "example";
/// #     const SECTIONS: &'static [netboot_service::Section] = &[];
/// #     type Args = netboot_service::NoArgs;
/// #     type Bound = Never;
/// #     async fn bind(_: std::sync::Arc<netboot_config::Config>, _: netboot_service::Context) -> anyhow::Result<Never> { unreachable!() }
/// # }
/// # enum Never {}
/// # impl netboot_service::Bound for Never {
/// #     fn local_addrs(&self) -> Vec<netboot_service::LocalAddr> { match *self {} }
/// #     async fn serve(self, _: netboot_service::Shutdown) -> anyhow::Result<()> { match self {} }
/// # }
/// fn main() -> std::process::ExitCode {
///     netboot_service::main_with_commands::<Tftp, Command>()
/// }
/// ```
pub trait Commands: clap::Subcommand + Debug + Send + 'static {
    /// Runs the command.
    fn run(self, context: CommandContext) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A binary without operator commands.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum NoCommands {}

impl Commands for NoCommands {
    async fn run(self, _context: CommandContext) -> anyhow::Result<()> {
        match self {}
    }
}

/// What a command gets: the checked configuration and where it came from.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The configuration, after the binary's flags and every check.
    pub config: Arc<Config>,
    /// Where it was read from.
    pub source: ConfigSource,
}

/// The flags every binary has.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// Configuration file (TOML) [default: /etc/netboot/netboot.toml when it exists, else the
    /// embedded defaults]
    #[arg(long, value_name = "FILE", env = "NETBOOT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Run every check that needs no socket and exit: 0 valid, 2 configuration error,
    /// 1 other failure
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, clap::Parser)]
struct Cli<A: clap::Args, C: clap::Subcommand> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    service: A,
    #[command(subcommand)]
    command: Option<C>,
}

/// Runs the binary of service `S`: parses the command line, checks the configuration, sets
/// up logging and the runtime, binds, and serves until stopped (see the crate docs for the
/// contract). Returns the process's exit status.
pub fn main<S: Service>() -> ExitCode {
    main_with_commands::<S, NoCommands>()
}

/// [`main`] for a binary that also has operator commands `C`.
pub fn main_with_commands<S: Service, C: Commands>() -> ExitCode {
    ExitCode::from(run::<S, C>(std::env::args_os()))
}

/// Everything `main` does, with the command line given; returns the exit status.
fn run<S: Service, C: Commands>(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    let command = Cli::<S::Args, C>::command()
        .name(S::NAME)
        .bin_name(S::NAME)
        .about(S::ABOUT)
        .version(env!("CARGO_PKG_VERSION"));
    let matches = command.get_matches_from(args);
    let cli = Cli::<S::Args, C>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let source = ConfigSource::find(cli.common.config);
    let config = match checks::load::<S>(&source, &cli.service, cli.command.is_none()) {
        Ok(config) => config,
        Err(error) => return fail(EXIT_CONFIG_ERROR, &error.to_string()),
    };
    if cli.common.check_config {
        println!("configuration OK ({source})");
        return 0;
    }
    let logging = Logging::init(&config.log);
    crate::limits::raise_open_files_limit();
    let runtime = match build_runtime(S::RUNTIME) {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(
                EXIT_RUNTIME_ERROR,
                &format!("starting the async runtime: {error}"),
            )
        }
    };
    let config = Arc::new(config);
    let result = match cli.command {
        Some(command) => runtime
            .block_on(command.run(CommandContext { config, source }))
            .map_err(Failure::classify),
        None => runtime.block_on(serve::<S>(config, source, &cli.service, &logging)),
    };
    // Connections cut at the end of the drain may still have tasks; they are dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => 0,
        Err(failure) => fail(failure.code, &format!("{:#}", failure.error)),
    }
}

/// Prints `Error: <message>` (ignoring a closed stderr) and returns `code`.
fn fail(code: u8, message: &str) -> u8 {
    let _ = writeln!(std::io::stderr(), "Error: {message}");
    code
}

fn build_runtime(flavor: RuntimeFlavor) -> std::io::Result<tokio::runtime::Runtime> {
    match flavor {
        RuntimeFlavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        RuntimeFlavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    }
    .max_blocking_threads(crate::limits::MAX_BLOCKING_THREADS)
    .enable_all()
    .build()
}

/// An error and the exit status it ends the process with.
#[derive(Debug)]
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn runtime(error: anyhow::Error) -> Self {
        Self {
            code: EXIT_RUNTIME_ERROR,
            error,
        }
    }

    /// Status 2 for configuration errors, 1 for anything else.
    fn classify(error: anyhow::Error) -> Self {
        let code = if error.is::<netboot_config::ConfigError>() {
            EXIT_CONFIG_ERROR
        } else {
            EXIT_RUNTIME_ERROR
        };
        Self { code, error }
    }
}

/// Binds, serves, and answers signals until the service has stopped; flushes the records.
async fn serve<S: Service>(
    config: Arc<Config>,
    source: ConfigSource,
    args: &S::Args,
    logging: &Logging,
) -> Result<(), Failure> {
    let mut signals = Signals::install()
        .map_err(|e| Failure::runtime(anyhow::Error::new(e).context("installing signal handlers")))?;
    match &source {
        ConfigSource::Embedded => tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            "{} starting on {source}",
            S::NAME
        ),
        _ => tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            "{} starting with configuration {source}",
            S::NAME
        ),
    }
    let (telemetry, records) = Telemetry::start(&config);
    let context = Context::new(telemetry.clone());
    let prepared = async {
        let bound = S::bind(Arc::clone(&config), context.clone()).await?;
        let metrics = MetricsListener::bind(config.metrics.listen).await?;
        anyhow::Ok((bound, metrics))
    }
    .await;
    let (bound, metrics) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            records.finish().await;
            return Err(Failure::runtime(error));
        }
    };
    for LocalAddr { addr, role } in bound.local_addrs() {
        tracing::info!("listening on {addr} ({role})");
    }
    let reloaders = bound.reloaders();
    let (trigger, shutdown) = Shutdown::new();
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = match metrics {
        Some(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("listening on {addr} (metrics)");
            }
            Some(tokio::spawn(listener.serve(
                telemetry,
                shutdown.clone(),
                async move {
                    let _ = metrics_stopped.await;
                },
            )))
        }
        None => None,
    };
    let mut serving = tokio::spawn(bound.serve(shutdown));
    let mut reloading = Reloading::<S> {
        source: &source,
        args,
        context: &context,
        reloaders: &reloaders,
        logging,
        started: Arc::clone(&config),
        applied: config,
    };
    // When the drain ends, and when the services must have returned after it.
    let mut drain_ends: Option<Instant> = None;
    let mut stopped_at: Option<Instant> = None;
    let served: anyhow::Result<()> = loop {
        let wake = drain_ends.map(|at| stopped_at.map_or(at, |stopped| stopped + STOP_GRACE));
        tokio::select! {
            joined = &mut serving => {
                break joined.unwrap_or_else(|e| Err(anyhow::anyhow!("the service task failed: {e}")));
            }
            request = signals.next() => match request {
                Request::Reload if drain_ends.is_none() => reloading.reload(),
                Request::Reload => tracing::info!("SIGHUP while stopping: not reloading"),
                Request::Stop(name) if drain_ends.is_none() => {
                    let drain = Duration::from_secs(reloading.applied.runtime.drain_secs);
                    tracing::info!("{name}: stopping; in-flight transfers and downloads get up to {drain:?}");
                    trigger.drain();
                    drain_ends = Some(Instant::now() + drain);
                }
                Request::Stop(name) => {
                    tracing::warn!("{name} again: exiting at once");
                    let _ = writeln!(std::io::stderr(), "{name} again: exiting without draining");
                    std::process::exit(i32::from(EXIT_RUNTIME_ERROR));
                }
            },
            () = sleep_until(wake) => {
                if stopped_at.is_none() {
                    tracing::info!("drain time over: ending what is still in flight");
                    trigger.stop();
                    stopped_at = Some(Instant::now());
                } else {
                    break Err(anyhow::anyhow!("the services did not stop within {STOP_GRACE:?} after the drain time"));
                }
            }
        }
    };
    trigger.stop();
    let _ = stop_metrics.send(());
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    records.finish().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(())
        }
        Err(error) => Err(Failure::runtime(error)),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Applies SIGHUP reloads.
struct Reloading<'a, S: Service> {
    source: &'a ConfigSource,
    args: &'a S::Args,
    context: &'a Context,
    reloaders: &'a [Arc<dyn Reload>],
    logging: &'a Logging,
    /// What the sockets were bound with: keys that need a restart are compared with it, so
    /// every reload repeats which changes are still waiting for one.
    started: Arc<Config>,
    /// What the last accepted reload applied.
    applied: Arc<Config>,
}

impl<S: Service> Reloading<'_, S> {
    fn reload(&mut self) {
        tracing::info!("SIGHUP: reloading {}", self.source);
        let new = match checks::load::<S>(self.source, self.args, true) {
            Ok(config) => Arc::new(config),
            Err(error) => {
                tracing::error!("reload rejected, the running configuration stays: {error}");
                return;
            }
        };
        let read_here =
            |key: &String| Section::of_key(key).is_none_or(|section| S::SECTIONS.contains(&section));
        let applied: Vec<String> = changed_keys(&self.applied, &new)
            .into_iter()
            .filter(|key| read_here(key) && is_reloadable(key))
            .collect();
        let waiting: Vec<String> = changed_keys(&self.started, &new)
            .into_iter()
            .filter(|key| read_here(key) && !is_reloadable(key))
            .collect();
        if let Err(error) = self.context.reload_resolver(&self.applied, &new) {
            tracing::error!("reload rejected, the running configuration stays: {error}");
            return;
        }
        if applied.iter().any(|key| key == "log.level") {
            if let Err(error) = self.logging.reload(&new.log) {
                tracing::error!("log.level not reloaded: {error}");
            }
        }
        for reloader in self.reloaders {
            if let Err(error) = reloader.reload(&new) {
                tracing::error!("reload: {error:#}");
            }
        }
        if applied.is_empty() {
            tracing::info!("configuration reloaded; nothing that applies while serving changed");
        } else {
            tracing::info!("configuration reloaded; applied {}", applied.join(", "));
        }
        if !waiting.is_empty() {
            tracing::warn!(
                "changed keys that need a restart to take effect: {}",
                waiting.join(", ")
            );
        }
        self.applied = new;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{Bound, LocalAddr, NoArgs, Section, Shutdown};

    /// A service that never binds: the tests stop before serving.
    struct Idle;

    enum Never {}

    impl Bound for Never {
        fn local_addrs(&self) -> Vec<LocalAddr> {
            match *self {}
        }

        async fn serve(self, _shutdown: Shutdown) -> anyhow::Result<()> {
            match self {}
        }
    }

    impl Service for Idle {
        const NAME: &'static str = "idle";
        const ABOUT: &'static str = "test service";
        const SECTIONS: &'static [Section] = &[];
        type Args = NoArgs;
        type Bound = Never;

        async fn bind(_config: Arc<Config>, _context: Context) -> anyhow::Result<Never> {
            anyhow::bail!("not bound in tests")
        }
    }

    static RAN_WITH_HOST: AtomicBool = AtomicBool::new(false);

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        /// Checks it got the configuration.
        ExpectHost {
            /// The host id the configuration must name.
            host: String,
        },
        /// Fails as a configuration error.
        Misconfigured,
    }

    impl Commands for Command {
        async fn run(self, context: CommandContext) -> anyhow::Result<()> {
            match self {
                Self::ExpectHost { host } => {
                    assert_eq!(context.config.log.host_id.as_deref(), Some(host.as_str()));
                    RAN_WITH_HOST.store(true, Ordering::SeqCst);
                    Ok(())
                }
                Self::Misconfigured => Err(netboot_config::ConfigError::Invalid(Vec::new()).into()),
            }
        }
    }

    fn run_with(args: &[&str]) -> u8 {
        run::<Idle, Command>(
            std::iter::once("idle")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    #[test]
    fn a_subcommand_runs_with_the_checked_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("netboot.toml");
        std::fs::write(&file, "[log]\nhost_id = \"pxe01\"\n").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(run_with(&["--config", file, "expect-host", "pxe01"]), 0);
        assert!(RAN_WITH_HOST.load(Ordering::SeqCst));
        // `--config` also after the command's name; a configuration error is status 2.
        assert_eq!(run_with(&["misconfigured", "--config", file]), EXIT_CONFIG_ERROR);
    }

    /// A service whose serving checks always find a problem.
    struct Fussy;

    impl Service for Fussy {
        const NAME: &'static str = "fussy";
        const ABOUT: &'static str = "test service";
        const SECTIONS: &'static [Section] = &[];
        type Args = NoArgs;
        type Bound = Never;

        fn check(_config: &Config, problems: &mut netboot_config::Problems) {
            problems.push("tftp.root", "no boot programs yet");
        }

        async fn bind(_config: Arc<Config>, _context: Context) -> anyhow::Result<Never> {
            anyhow::bail!("not bound in tests")
        }
    }

    #[test]
    fn a_subcommand_runs_before_what_serving_needs_is_there() {
        let run_fussy = |rest: &[&str]| {
            let args: Vec<std::ffi::OsString> = std::iter::once("fussy")
                .chain(rest.iter().copied())
                .map(Into::into)
                .collect();
            run::<Fussy, Command>(args)
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("netboot.toml");
        std::fs::write(&file, "[log]\nhost_id = \"pxe01\"\n").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(run_fussy(&["--config", file, "expect-host", "pxe01"]), 0);
        assert_eq!(
            run_fussy(&["--config", file, "--check-config"]),
            EXIT_CONFIG_ERROR
        );
        assert_eq!(
            run_fussy(&["--config", file]),
            EXIT_CONFIG_ERROR,
            "serving checks"
        );
    }

    #[test]
    fn check_config_and_bind_failures_have_their_exit_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[runtime]\ndrain_secs = 3\n").unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[runtime]\ndrain_seconds = 3\n").unwrap();
        let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());
        assert_eq!(run_with(&["--check-config", "--config", good]), 0);
        assert_eq!(run_with(&["--check-config", "--config", bad]), EXIT_CONFIG_ERROR);
        assert_eq!(
            run_with(&["--config", bad]),
            EXIT_CONFIG_ERROR,
            "a start checks too"
        );
        assert_eq!(
            run_with(&["--config", good]),
            EXIT_RUNTIME_ERROR,
            "binding failed"
        );
    }
}
