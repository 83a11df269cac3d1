//! The tokio side of the netboot suite: logging set-up, resolver deadlines and shutdown.
//!
//! Protocol crates stay sans-IO; this crate and the binaries are the only places that own
//! sockets, timers and the async runtime.

pub mod private_file;
pub mod token_key;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use netboot_config::{LogConfig, LogFormat};
use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError};

/// Keeps the background log writer alive; dropping it flushes what is still queued. Hold it
/// in `main` for the life of the process.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, overrides `[log] level`.
/// Logs go to stderr so stdout stays free for command output.
///
/// Lines are handed to a writer thread, so a request handler never waits for the terminal
/// or the journal: with a synchronous stderr writer the per-boot access log alone cost a
/// quarter of the HTTPS decision rate. The queue is not lossy; if it ever fills, logging
/// threads wait rather than drop lines.
pub fn init_logging(config: &LogConfig) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = quiet_ip_sni_warnings(filter);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    // Without log_internal_errors(false) a failed write (stderr a pipe whose reader went
    // away) makes tracing-subscriber report it with eprintln!, which panics on the same
    // broken stderr and takes the whole service down.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .log_internal_errors(false);
    // A second call (tests that run several services in one process) keeps the first
    // subscriber, and its writer; this call's writer is then unused.
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// iPXE sends the server's IP address as TLS SNI for `https://<address>/` URLs, which RFC 6066
/// does not allow; rustls ignores it and warns, once per connection, from
/// `rustls::msgs::handshake`. That module then logs errors only, unless the filter names it
/// (or a parent, `rustls`) itself.
fn quiet_ip_sni_warnings(filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    if filter.to_string().contains("rustls") {
        return filter;
    }
    match "rustls::msgs::handshake=error".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
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
///
/// `configmgr` and `webhook` resolvers sit behind the `[resolver.cache]` cache and connect
/// lazily: the server starts while the database or service is down, and lookups recover by
/// themselves when it returns. Connection strings and tokens named by `*_env` keys are read
/// from the environment here; their values are never logged.
pub fn build_resolver(config: &netboot_config::Config) -> anyhow::Result<Arc<dyn BootResolver>> {
    use anyhow::{bail, Context};
    use netboot_config::{ConfigMgrBackend, MenuOrderConfig, NothingDeployedConfig, ResolverKind, Secret};

    /// The secret from the file, or from the environment variable the file names.
    fn secret(inline: &Option<Secret>, env: &Option<String>, key: &str) -> anyhow::Result<Option<String>> {
        match (inline, env) {
            (Some(value), _) => Ok(Some(value.expose().to_string())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .with_context(|| format!("{key}_env: environment variable {var} is not set")),
            (None, None) => Ok(None),
        }
    }

    let section = &config.resolver;
    let mut cache_key: Option<netboot_resolver::KeyFn> = None;
    let resolver: Arc<dyn BootResolver> = match section.kind {
        ResolverKind::Static => {
            let resolver = netboot_core::StaticResolver::new(section.static_rules.clone())
                .map_err(|e| anyhow::anyhow!("resolver.static.{e}"))?;
            return Ok(Arc::new(resolver));
        }
        ResolverKind::Configmgr => {
            let cm = &section.configmgr;
            let db: Arc<dyn netboot_configmgr::SiteDatabase> = match cm.backend {
                ConfigMgrBackend::SqlServer => {
                    let key = "resolver.configmgr.connection_string";
                    let Some(ado) = secret(&cm.connection_string, &cm.connection_string_env, key)? else {
                        bail!("{key}_env: not set");
                    };
                    let options = netboot_configmgr::TdsOptions {
                        max_connections: cm.pool_size,
                        connect_timeout: Duration::from_millis(cm.connect_timeout_ms),
                        query_timeout: Duration::from_millis(cm.query_timeout_ms),
                    };
                    let site = netboot_configmgr::TdsSite::from_ado_string(&ado, options).context(key)?;
                    tracing::info!(
                        server = site.server(),
                        "configmgr resolver: SQL Server site database"
                    );
                    Arc::new(site)
                }
                ConfigMgrBackend::Sqlite => {
                    let sqlite = cm
                        .sqlite
                        .as_deref()
                        .context("resolver.configmgr.sqlite: not set")?;
                    // ":memory:" is a database of its own, not a file beside the config.
                    let memory = sqlite.as_os_str() == ":memory:";
                    let path = if memory {
                        sqlite.to_path_buf()
                    } else {
                        config.resolve_path(sqlite)
                    };
                    let migrations = cm.sqlite_migrations.as_deref().map(|m| config.resolve_path(m));
                    if migrations.is_none() && !memory && !path.is_file() {
                        bail!("resolver.configmgr.sqlite: {} does not exist", path.display());
                    }
                    let location = path
                        .to_str()
                        .context("resolver.configmgr.sqlite: path is not UTF-8")?;
                    tracing::info!(database = location, "configmgr resolver: SQLite fixture");
                    Arc::new(netboot_configmgr::LazySqliteSite::new(location, migrations))
                }
            };
            let local_offset = match &cm.utc_offset {
                Some(text) => Some(
                    netboot_config::parse_utc_offset(text)
                        .and_then(chrono::FixedOffset::east_opt)
                        .with_context(|| format!("resolver.configmgr.utc_offset: {text:?}"))?,
                ),
                None => None,
            };
            let settings = netboot_configmgr::ResolverSettings {
                policy: netboot_configmgr::Policy {
                    unknown_computers: cm.unknown_computers,
                    site_code: cm.site_code.clone(),
                    order: match cm.order {
                        MenuOrderConfig::Newest => netboot_configmgr::MenuOrder::Newest,
                        MenuOrderConfig::Oldest => netboot_configmgr::MenuOrder::Oldest,
                        MenuOrderConfig::Name => netboot_configmgr::MenuOrder::Name,
                    },
                    nothing_deployed: match cm.nothing_deployed {
                        NothingDeployedConfig::Exit => netboot_configmgr::NothingDeployed::Exit,
                        NothingDeployedConfig::Ignore => netboot_configmgr::NothingDeployed::Ignore,
                    },
                    menu_title: cm.menu_title.clone(),
                    menu_timeout_secs: cm.menu_timeout_secs,
                    wimboot_args: cm.wimboot_args.clone(),
                    handoff: netboot_configmgr::Handoff {
                        enabled: cm.handoff.enabled,
                        files: cm.handoff.files.clone(),
                        boot_images: cm
                            .handoff
                            .boot_images
                            .iter()
                            .map(|(id, image)| (id.clone(), image.files.clone()))
                            .collect(),
                        computer_name: cm.handoff.computer_name,
                        preferred_deployment: cm.handoff.preferred_deployment,
                        variables: cm.handoff.variables.clone(),
                    },
                },
                duplicates: netboot_configmgr::DuplicateIdentifiers {
                    macs: cm.duplicate_macs.iter().copied().collect(),
                    uuids: cm.duplicate_uuids.iter().copied().collect(),
                },
                excluded_macs: cm.excluded_macs.iter().copied().collect(),
                bios_assume_x64: cm.bios_assume_x64,
                images: netboot_configmgr::ImageStore {
                    dir: config.resolve_path(&cm.boot_image_dir),
                    url_prefix: cm.boot_image_url.clone(),
                    fetch_missing: cm.distribution_point.is_some(),
                },
                local_offset,
            };
            let resolver = netboot_configmgr::ConfigMgrResolver::new(db, settings);
            let keyed = resolver.clone();
            cache_key = Some(Arc::new(move |request: &BootRequest| keyed.cache_key(request)));
            Arc::new(resolver)
        }
        ResolverKind::Webhook => {
            let hook = &section.webhook;
            let key = "resolver.webhook.bearer_token";
            let options = netboot_resolver::WebhookOptions {
                url: hook.url.clone(),
                timeout: Duration::from_millis(hook.timeout_ms),
                retries: hook.retries,
                retry_backoff: Duration::from_millis(hook.retry_backoff_ms),
                bearer_token: secret(&hook.bearer_token, &hook.bearer_token_env, key)?,
                ca_file: hook.ca_file.as_deref().map(|p| config.resolve_path(p)),
            };
            tracing::info!(url = %hook.url, "webhook resolver");
            Arc::new(netboot_resolver::WebhookResolver::new(options).context("resolver.webhook")?)
        }
        other => bail!("resolver.kind: {other:?} is not supported by this build"),
    };
    let cache = &section.cache;
    if !cache.enabled {
        return Ok(resolver);
    }
    let options = netboot_resolver::CacheOptions {
        ttl: Duration::from_secs(cache.ttl_secs),
        negative_ttl: Duration::from_secs(cache.negative_ttl_secs),
        stale_if_error: Duration::from_secs(cache.stale_if_error_secs),
        max_entries: cache.max_entries,
    };
    Ok(match cache_key {
        Some(key) => Arc::new(netboot_resolver::Cached::with_key(resolver, options, key)),
        None => Arc::new(netboot_resolver::Cached::new(resolver, options)),
    })
}

#[cfg(test)]
mod tests {
    use super::quiet_ip_sni_warnings;
    use tracing_subscriber::EnvFilter;

    #[test]
    fn rustls_sni_warnings_are_quiet_unless_asked_for() {
        let quiet = quiet_ip_sni_warnings(EnvFilter::new("info,pxe_https=debug")).to_string();
        assert!(quiet.contains("rustls::msgs::handshake=error"), "{quiet}");
        assert!(quiet.contains("pxe_https=debug"), "{quiet}");
        let asked = quiet_ip_sni_warnings(EnvFilter::new("info,rustls=trace")).to_string();
        assert!(!asked.contains("handshake=error"), "{asked}");
    }
}
