//! The tokio side of the netboot suite: logging set-up, resolver deadlines and shutdown.
//!
//! Protocol crates stay sans-IO; this crate and the binaries are the only places that own
//! sockets, timers and the async runtime.

pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use netboot_config::{LogConfig, LogFormat};
use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError};

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, overrides `[log] level`.
/// Logs go to stderr so stdout stays free for command output.
pub fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second call (tests that run several services in one process) keeps the first subscriber.
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Asks the resolver, giving up after `deadline` so a slow backend never holds a client.
pub async fn resolve_with_deadline(
    resolver: &Arc<dyn BootResolver>,
    request: &BootRequest,
    deadline: Duration,
) -> Result<BootDecision, ResolveError> {
    match tokio::time::timeout(deadline, resolver.resolve(request)).await {
        Ok(result) => result,
        Err(_) => Err(ResolveError::Timeout(deadline)),
    }
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Builds the resolver `[resolver]` asks for. Every binary gets its resolver here, so adding
/// a resolver kind is one change in one place.
pub fn build_resolver(config: &netboot_config::Config) -> anyhow::Result<Arc<dyn BootResolver>> {
    let rules = config.resolver.static_rules.clone();
    let resolver = netboot_core::StaticResolver::new(rules)
        .map_err(|e| anyhow::anyhow!("resolver.static.{e}"))?;
    Ok(Arc::new(resolver))
}
