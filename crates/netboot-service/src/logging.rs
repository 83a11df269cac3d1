//! The process's log subscriber, with a filter that a reload can replace.

use netboot_config::{LogConfig, LogFormat};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The environment variable that overrides `[log] level`.
pub const LOG_ENV: &str = "RUST_LOG";

/// Parses a log filter the way the services use it, so `--check-config` refuses exactly
/// what logging would refuse.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(filter)
        .map(quiet_ip_sni_warnings)
        .map_err(|e| format!("{filter:?} is not a valid log filter: {e}"))
}

/// iPXE sends the server's IP address as TLS SNI for `https://<address>/` URLs, which RFC 6066
/// does not allow; rustls ignores it and warns, once per connection, from
/// `rustls::msgs::handshake`. That module then logs errors only, unless the filter names it
/// (or a parent, `rustls`) itself.
fn quiet_ip_sni_warnings(filter: EnvFilter) -> EnvFilter {
    if filter.to_string().contains("rustls") {
        return filter;
    }
    match "rustls::msgs::handshake=error".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// The `RUST_LOG` filter, when it is set.
pub(crate) fn env_filter_text() -> Option<String> {
    std::env::var(LOG_ENV).ok().filter(|v| !v.trim().is_empty())
}

/// Keeps the background log writer alive and lets the filter change; dropping it flushes
/// what is still queued.
#[must_use = "dropping the logging handle stops the log writer"]
pub struct Logging {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
    filter: Option<reload::Handle<EnvFilter, Registry>>,
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging").finish_non_exhaustive()
    }
}

impl Logging {
    /// Installs the global subscriber: `RUST_LOG` when set, else `[log] level` (both were
    /// checked to parse), lines to stderr so stdout stays free for command output.
    ///
    /// Lines are handed to a writer thread, so a request handler never waits for the
    /// terminal or the journal: with a synchronous stderr writer the per-boot access log alone
    /// cost a quarter of the HTTPS decision rate. The queue is not lossy; if it ever fills,
    /// logging threads wait rather than drop lines.
    pub fn init(config: &LogConfig) -> Self {
        let text = env_filter_text().unwrap_or_else(|| config.level.clone());
        let filter = parse_filter(&text).unwrap_or_else(|_| EnvFilter::new("info"));
        let (filter, handle) = reload::Layer::new(filter);
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("log-writer")
            .finish(std::io::stderr());
        // Without log_internal_errors(false) a failed write (stderr a pipe whose reader went
        // away) makes tracing-subscriber report it with eprintln!, which panics on the same
        // broken stderr and takes the whole service down.
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .log_internal_errors(false);
        let registry = tracing_subscriber::registry().with(filter);
        // A second call (tests that run several services in one process) keeps the first
        // subscriber, and its writer; this call's writer is then unused.
        let installed = match config.format {
            LogFormat::Text => registry.with(lines).try_init(),
            LogFormat::Json => registry.with(lines.json()).try_init(),
        };
        let installed = installed.is_ok();
        Self {
            _writer: installed.then_some(guard),
            filter: installed.then_some(handle),
        }
    }

    /// Applies a reloaded `[log] level`. `RUST_LOG`, when set, keeps overriding it.
    pub(crate) fn reload(&self, config: &LogConfig) -> Result<(), String> {
        let Some(handle) = &self.filter else {
            return Ok(());
        };
        if env_filter_text().is_some() {
            tracing::warn!("log.level changed, but {LOG_ENV} is set and overrides it");
            return Ok(());
        }
        let filter = parse_filter(&config.level)?;
        handle.reload(filter).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rustls_sni_warnings_are_quiet_unless_asked_for() {
        let quiet = super::parse_filter("info,pxe_https=debug").unwrap().to_string();
        assert!(quiet.contains("rustls::msgs::handshake=error"), "{quiet}");
        assert!(quiet.contains("pxe_https=debug"), "{quiet}");
        let asked = super::parse_filter("info,rustls=trace").unwrap().to_string();
        assert!(!asked.contains("handshake=error"), "{asked}");
    }
}
