//! The resolver `[resolver]` asks for, built in one place for every binary, and the checks
//! of what building it will need (environment variables, files), which `--check-config` runs
//! without connecting anywhere.
//!
//! `configmgr` and `webhook` resolvers sit behind the `[resolver.cache]` cache and connect
//! lazily: a server starts while the database or service is down, and lookups recover by
//! themselves when it returns. Connection strings and tokens named by `*_env` keys are read
//! from the environment here; their values are never logged.

use std::sync::Arc;
use std::time::Duration;

use netboot_config::{
    Config, ConfigMgrBackend, DistributionPointConfig, DpAuth, MenuOrderConfig, NothingDeployedConfig,
    Problems, ResolverKind, Secret,
};
use netboot_core::{BootRequest, BootResolver};

use crate::{CacheOptions, Cached, KeyFn, WebhookOptions, WebhookResolver};

/// A resolver that cannot be built from the configuration; the message starts with the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct BuildError {
    /// The dotted key path at fault, e.g. `resolver.configmgr.connection_string_env`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn fault(key: impl Into<String>, message: impl ToString) -> BuildError {
    BuildError {
        key: key.into(),
        message: message.to_string(),
    }
}

/// The secret from the file, or from the environment variable the file names.
fn secret(inline: Option<&Secret>, env: Option<&String>, key: &str) -> Result<Option<String>, BuildError> {
    match (inline, env) {
        (Some(value), _) => Ok(Some(value.expose().to_string())),
        (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
            fault(
                format!("{key}_env"),
                format!("environment variable {var} is not set"),
            )
        }),
        (None, None) => Ok(None),
    }
}

/// Checks what [`build`] will read besides the file (environment variables, the SQLite
/// fixture, the webhook's CA file), adding each problem under its key.
pub fn check(config: &Config, problems: &mut Problems) {
    let section = &config.resolver;
    match section.kind {
        ResolverKind::Configmgr => {
            let cm = &section.configmgr;
            match cm.backend {
                ConfigMgrBackend::SqlServer => {
                    let key = "resolver.configmgr.connection_string";
                    if let Err(e) = secret(
                        cm.connection_string.as_ref(),
                        cm.connection_string_env.as_ref(),
                        key,
                    ) {
                        problems.push(e.key, e.message);
                    }
                }
                ConfigMgrBackend::Sqlite => {
                    if let Err(e) = sqlite_location(config) {
                        problems.push(e.key, e.message);
                    }
                }
            }
            if let Some(dp) = &cm.distribution_point {
                check_distribution_point(config, dp, problems);
            }
        }
        ResolverKind::Webhook => {
            let hook = &section.webhook;
            let key = "resolver.webhook.bearer_token";
            if let Err(e) = secret(hook.bearer_token.as_ref(), hook.bearer_token_env.as_ref(), key) {
                problems.push(e.key, e.message);
            }
            if let Some(ca) = &hook.ca_file {
                if let Err(e) = crate::webhook::check_trust(Some(&config.resolve_path(ca))) {
                    problems.push("resolver.webhook.ca_file", e.to_string());
                }
            }
        }
        _ => {}
    }
}

/// What fetching boot images from a distribution point needs: its password in the
/// environment (basic and NTLM), and its CA file.
fn check_distribution_point(config: &Config, dp: &DistributionPointConfig, problems: &mut Problems) {
    const KEY: &str = "resolver.configmgr.distribution_point";
    if dp.auth != DpAuth::None && std::env::var_os(&dp.password_env).is_none() {
        problems.push(
            format!("{KEY}.password_env"),
            format!("environment variable {} is not set", dp.password_env),
        );
    }
    if let Some(ca) = &dp.ca_file {
        if let Err((path, detail)) = crate::tls_client_config(Some(&config.resolve_path(ca))) {
            problems.push(format!("{KEY}.ca_file"), format!("{}: {detail}", path.display()));
        }
    }
}

/// The SQLite fixture's location and its migrations, checked to exist.
fn sqlite_location(config: &Config) -> Result<(String, Option<std::path::PathBuf>), BuildError> {
    let cm = &config.resolver.configmgr;
    let sqlite = cm
        .sqlite
        .as_deref()
        .ok_or_else(|| fault("resolver.configmgr.sqlite", "not set"))?;
    // ":memory:" is a database of its own, not a file beside the config.
    let memory = sqlite.as_os_str() == ":memory:";
    let path = if memory {
        sqlite.to_path_buf()
    } else {
        config.resolve_path(sqlite)
    };
    let migrations = cm.sqlite_migrations.as_deref().map(|m| config.resolve_path(m));
    if let Some(dir) = migrations.as_deref().filter(|dir| !dir.is_dir()) {
        return Err(fault(
            "resolver.configmgr.sqlite_migrations",
            format!("{} is not a directory", dir.display()),
        ));
    }
    if migrations.is_none() && !memory && !path.is_file() {
        return Err(fault(
            "resolver.configmgr.sqlite",
            format!("{} does not exist", path.display()),
        ));
    }
    let location = path
        .to_str()
        .ok_or_else(|| fault("resolver.configmgr.sqlite", "path is not UTF-8"))?
        .to_string();
    Ok((location, migrations))
}

/// Builds the resolver `[resolver]` asks for. Every binary gets its resolver here, so adding
/// a resolver kind is one change in one place.
pub fn build(config: &Config) -> Result<Arc<dyn BootResolver>, BuildError> {
    let section = &config.resolver;
    let mut cache_key: Option<KeyFn> = None;
    let resolver: Arc<dyn BootResolver> = match section.kind {
        ResolverKind::Static => {
            let resolver = netboot_core::StaticResolver::new(section.static_rules.clone())
                .map_err(|e| fault("resolver.static", e))?;
            return Ok(Arc::new(resolver));
        }
        ResolverKind::Configmgr => {
            let (resolver, key) = configmgr(config)?;
            cache_key = Some(key);
            resolver
        }
        ResolverKind::Webhook => {
            let hook = &section.webhook;
            let key = "resolver.webhook.bearer_token";
            let options = WebhookOptions {
                url: hook.url.clone(),
                timeout: Duration::from_millis(hook.timeout_ms),
                retries: hook.retries,
                retry_backoff: Duration::from_millis(hook.retry_backoff_ms),
                bearer_token: secret(hook.bearer_token.as_ref(), hook.bearer_token_env.as_ref(), key)?,
                ca_file: hook.ca_file.as_deref().map(|p| config.resolve_path(p)),
                proxy_from_environment: hook.proxy_from_environment,
            };
            tracing::info!(url = %hook.url, "webhook resolver");
            Arc::new(WebhookResolver::new(options).map_err(|e| fault("resolver.webhook", e))?)
        }
        other => {
            return Err(fault(
                "resolver.kind",
                format!("{other:?} is not supported by this build"),
            ))
        }
    };
    let cache = &section.cache;
    if !cache.enabled {
        return Ok(resolver);
    }
    let options = CacheOptions {
        ttl: Duration::from_secs(cache.ttl_secs),
        negative_ttl: Duration::from_secs(cache.negative_ttl_secs),
        stale_if_error: Duration::from_secs(cache.stale_if_error_secs),
        max_entries: cache.max_entries,
    };
    Ok(match cache_key {
        Some(key) => Arc::new(Cached::with_key(resolver, options, key)),
        None => Arc::new(Cached::new(resolver, options)),
    })
}

/// The ConfigMgr resolver and the cache key it wants (machines of one identity share answers).
fn configmgr(config: &Config) -> Result<(Arc<dyn BootResolver>, KeyFn), BuildError> {
    let cm = &config.resolver.configmgr;
    let db: Arc<dyn netboot_configmgr::SiteDatabase> = match cm.backend {
        ConfigMgrBackend::SqlServer => {
            let key = "resolver.configmgr.connection_string";
            let Some(ado) = secret(
                cm.connection_string.as_ref(),
                cm.connection_string_env.as_ref(),
                key,
            )?
            else {
                return Err(fault(format!("{key}_env"), "not set"));
            };
            let options = netboot_configmgr::TdsOptions {
                max_connections: cm.pool_size,
                connect_timeout: Duration::from_millis(cm.connect_timeout_ms),
                query_timeout: Duration::from_millis(cm.query_timeout_ms),
            };
            let site =
                netboot_configmgr::TdsSite::from_ado_string(&ado, options).map_err(|e| fault(key, e))?;
            tracing::info!(
                server = site.server(),
                "configmgr resolver: SQL Server site database"
            );
            Arc::new(site)
        }
        ConfigMgrBackend::Sqlite => {
            let (location, migrations) = sqlite_location(config)?;
            tracing::info!(database = location, "configmgr resolver: SQLite fixture");
            Arc::new(netboot_configmgr::LazySqliteSite::new(&location, migrations))
        }
    };
    let local_offset = match &cm.utc_offset {
        Some(text) => Some(
            netboot_config::parse_utc_offset(text)
                .and_then(chrono::FixedOffset::east_opt)
                .ok_or_else(|| fault("resolver.configmgr.utc_offset", format!("{text:?}")))?,
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
    let key: KeyFn = Arc::new(move |request: &BootRequest| keyed.cache_key(request));
    Ok((Arc::new(resolver), key))
}
