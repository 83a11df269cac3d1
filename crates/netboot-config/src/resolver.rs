//! `[resolver]`, `[resolver.cache]`, `[resolver.configmgr]`, `[resolver.webhook]`.

use std::fmt;
use std::path::PathBuf;

use netboot_core::{MacAddr, SmbiosUuid, StaticResolver, StaticRules};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Problems;

/// Where boot decisions come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    /// Which resolver answers.
    pub kind: ResolverKind,
    /// Milliseconds a protocol server waits for a decision (10..=60000) before it counts the
    /// resolver as failed and uses its fallback (for `pxe-https`, `https.on_resolver_error`).
    pub deadline_ms: u64,
    /// A Required Windows PE (wimboot) entry boots by itself once: when the machine has
    /// downloaded that entry's boot image from `pxe-https` to the end, the run is recorded
    /// (in the `[records]` database, else in `https.state_dir`) and the entry is offered as
    /// Available from then on, until an administrator clears it. Applies to every resolver
    /// kind; `false` turns recording and the demotion off (for a webhook that tracks runs
    /// itself).
    pub required_once: bool,
    /// `[resolver.static]`: rules for the static resolver.
    #[serde(rename = "static")]
    pub static_rules: StaticRules,
    /// `[resolver.cache]`: the cache in front of the resolver.
    pub cache: CacheConfig,
    /// `[resolver.configmgr]`: the ConfigMgr site database.
    pub configmgr: ConfigMgrConfig,
    /// `[resolver.webhook]`: the HTTP decision service.
    pub webhook: WebhookConfig,
}

/// The resolver implementations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResolverKind {
    /// Rules from this file.
    #[default]
    Static,
    /// Task-sequence deployments from the ConfigMgr site database.
    Configmgr,
    /// An HTTP service of the site's own.
    Webhook,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            kind: ResolverKind::Static,
            deadline_ms: 2000,
            required_once: true,
            static_rules: StaticRules::default(),
            cache: CacheConfig::default(),
            configmgr: ConfigMgrConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// A secret from the file: never shown by `Debug` and written back as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

// Read as a plain string; only its display is hidden.
netboot_core::string_schema!(Secret, "Secret");

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// `[resolver.cache]`.
///
/// Every boot asks the resolver several times (proxyDHCP, PXE 4011, the iPXE script), and a
/// lab powering on asks for many machines at once; the cache answers repeats and lets
/// identical concurrent lookups share one backend query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Put the cache in front of the resolver (not used for `static`, which is in memory).
    pub enabled: bool,
    /// Seconds a machine's menu is reused before the resolver is asked again (at most 86400).
    pub ttl_secs: u64,
    /// Seconds an "exit"/"ignore" answer is reused (short, so new deployments show soon).
    pub negative_ttl_secs: u64,
    /// Seconds past expiry an answer may still be served while the backend is failing.
    pub stale_if_error_secs: u64,
    /// Machines remembered at most; beyond it the oldest answers are dropped.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_secs: 60,
            negative_ttl_secs: 10,
            stale_if_error_secs: 600,
            max_entries: 10_000,
        }
    }
}

/// Which database holds the ConfigMgr data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigMgrBackend {
    /// The site database on SQL Server (`CM_<site code>`), through TDS.
    #[default]
    SqlServer,
    /// A SQLite file shaped like the site database (fixture and demo).
    Sqlite,
}

/// Order of entries after "required first, exact architecture first".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MenuOrderConfig {
    /// Newest deployment ID first (ConfigMgr's choice).
    #[default]
    Newest,
    /// Oldest deployment ID first.
    Oldest,
    /// Task sequence name.
    Name,
}

/// What a machine with nothing deployed gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NothingDeployedConfig {
    /// Exit to the next boot device at once.
    #[default]
    Exit,
    /// No answer, like ConfigMgr's "Not serviced".
    Ignore,
}

/// `[resolver.configmgr]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigMgrConfig {
    /// Which database holds the ConfigMgr data.
    pub backend: ConfigMgrBackend,
    /// ADO.NET connection string (`server=tcp:cm01,1433;database=CM_PS1;user=..;password=..;
    /// encrypt=true`). Prefer `connection_string_env`.
    pub connection_string: Option<Secret>,
    /// Name of the environment variable holding the connection string.
    pub connection_string_env: Option<String>,
    /// SQLite file for the `sqlite` backend.
    pub sqlite: Option<PathBuf>,
    /// Migration directory applied to the SQLite file at start (creates the demo fixture).
    pub sqlite_migrations: Option<PathBuf>,
    /// Primary site code; its unknown-computer objects are preferred.
    pub site_code: Option<String>,
    /// Offer the deployments of the "Unknown Computer" objects to machines not in the database.
    pub unknown_computers: bool,
    /// Order of the menu entries within the Required and within the Available ones
    /// (Required come first, exact architecture matches before compatible ones).
    pub order: MenuOrderConfig,
    /// What a machine gets when no deployment applies to it.
    pub nothing_deployed: NothingDeployedConfig,
    /// Directory with one folder per boot image PackageID holding `boot.wim`
    /// (or `boot.<PackageID>.wim`), `BCD` and `boot.sdi`. A boot image whose folder is
    /// missing is "not on this server".
    pub boot_image_dir: PathBuf,
    /// The same directory as a path under the HTTPS file root.
    pub boot_image_url: String,
    /// Title of the ConfigMgr menu. Unset: the HTTPS service's default title.
    pub menu_title: Option<String>,
    /// Seconds the ConfigMgr menu waits before booting its Required entry, or exiting when
    /// nothing is required. Unset: `https.menu_timeout_secs`.
    pub menu_timeout_secs: Option<u32>,
    /// Extra arguments for wimboot on every ConfigMgr entry (e.g. `gui`, `pause`).
    pub wimboot_args: Option<String>,
    /// BIOS firmware does not say whether its CPU is 64-bit: true gives BIOS clients x64 boot
    /// images, false gives them x86 ones unless iPXE reports an `x86_64` build.
    pub bios_assume_x64: bool,
    /// MACs never used to find a device (shared USB NICs, docks).
    pub duplicate_macs: Vec<MacAddr>,
    /// SMBIOS UUIDs never used to find a device.
    pub duplicate_uuids: Vec<SmbiosUuid>,
    /// MACs never answered at all.
    pub excluded_macs: Vec<MacAddr>,
    /// UTC offset (`+01:00`) for ConfigMgr's non-UTC start/expiry times; this host's zone when
    /// absent.
    pub utc_offset: Option<String>,
    /// Open connections to the site database at most (1..=64).
    pub pool_size: usize,
    /// Milliseconds for connecting and logging in to the site database.
    pub connect_timeout_ms: u64,
    /// Milliseconds for one lookup; keep it below `resolver.deadline_ms`.
    pub query_timeout_ms: u64,
    /// `[resolver.configmgr.handoff]`: files and variables handed to Windows PE.
    pub handoff: crate::handoff::ConfigMgrHandoffConfig,
    /// `[resolver.configmgr.distribution_point]`: fetch missing boot images from a DP.
    pub distribution_point: Option<crate::handoff::DistributionPointConfig>,
}

impl Default for ConfigMgrConfig {
    fn default() -> Self {
        Self {
            backend: ConfigMgrBackend::SqlServer,
            connection_string: None,
            connection_string_env: None,
            sqlite: None,
            sqlite_migrations: None,
            site_code: None,
            unknown_computers: true,
            order: MenuOrderConfig::Newest,
            nothing_deployed: NothingDeployedConfig::Exit,
            boot_image_dir: PathBuf::from("/srv/netboot/configmgr"),
            boot_image_url: "configmgr".into(),
            menu_title: None,
            menu_timeout_secs: None,
            wimboot_args: None,
            bios_assume_x64: true,
            duplicate_macs: Vec::new(),
            duplicate_uuids: Vec::new(),
            excluded_macs: Vec::new(),
            utc_offset: None,
            pool_size: 4,
            connect_timeout_ms: 1500,
            query_timeout_ms: 1500,
            handoff: crate::handoff::ConfigMgrHandoffConfig::default(),
            distribution_point: None,
        }
    }
}

/// Parses `+HH:MM` / `-HH:MM` / `Z` into seconds east of UTC.
pub fn parse_utc_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text == "+00:00" || text == "-00:00" {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = text[1..].split_once(':')?;
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 14 || minutes > 59 || hours < 0 || minutes < 0 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// `[resolver.webhook]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the request is POSTed to.
    pub url: String,
    /// Milliseconds one attempt may take; keep it below `resolver.deadline_ms`.
    pub timeout_ms: u64,
    /// Retries after connection failures, timeouts, 429 and 5xx (at most 5).
    pub retries: u32,
    /// Milliseconds before the first retry (doubling).
    pub retry_backoff_ms: u64,
    /// Bearer token. Prefer `bearer_token_env`.
    pub bearer_token: Option<Secret>,
    /// Name of the environment variable holding the bearer token.
    pub bearer_token_env: Option<String>,
    /// PEM CAs trusted for `https://` (default: the system bundle).
    pub ca_file: Option<PathBuf>,
    /// Reach the service through the proxy the environment names (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, minus the hosts in `NO_PROXY`). Off by default: the service
    /// is asked directly, so a proxy set for other programs does not carry boot decisions.
    pub proxy_from_environment: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout_ms: 1000,
            retries: 1,
            retry_backoff_ms: 100,
            bearer_token: None,
            bearer_token_env: None,
            ca_file: None,
            proxy_from_environment: false,
        }
    }
}

impl ResolverConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        if !(10..=60_000).contains(&self.deadline_ms) {
            problems.push(
                "resolver.deadline_ms",
                format!("{} is outside 10..=60000", self.deadline_ms),
            );
        }
        if let Err(e) = StaticResolver::new(self.static_rules.clone()) {
            problems.push("resolver.static", e.to_string());
        }
        self.cache.validate(problems);
        match self.kind {
            ResolverKind::Static => {}
            ResolverKind::Configmgr => self.configmgr.validate(self.deadline_ms, problems),
            ResolverKind::Webhook => self.webhook.validate(self.deadline_ms, problems),
        }
    }
}

impl CacheConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.ttl_secs > 86_400 {
            problems.push(
                "resolver.cache.ttl_secs",
                format!("{} is over a day", self.ttl_secs),
            );
        }
        if self.negative_ttl_secs > self.ttl_secs {
            problems.push("resolver.cache.negative_ttl_secs", "must not exceed ttl_secs");
        }
        if self.max_entries == 0 {
            problems.push("resolver.cache.max_entries", "must be at least 1");
        }
    }
}

impl ConfigMgrConfig {
    fn validate(&self, deadline_ms: u64, problems: &mut Problems) {
        const KEY: &str = "resolver.configmgr";
        match self.backend {
            ConfigMgrBackend::SqlServer => match (&self.connection_string, &self.connection_string_env) {
                (None, None) => problems.push(
                    format!("{KEY}.connection_string_env"),
                    "sql-server needs connection_string_env (or connection_string)",
                ),
                (Some(_), Some(_)) => problems.push(
                    format!("{KEY}.connection_string"),
                    "give connection_string or connection_string_env, not both",
                ),
                (None, Some(var)) if var.is_empty() || var.contains('=') => problems.push(
                    format!("{KEY}.connection_string_env"),
                    "not a valid environment variable name",
                ),
                _ => {}
            },
            ConfigMgrBackend::Sqlite if self.sqlite.is_none() => problems.push(
                format!("{KEY}.sqlite"),
                "the sqlite backend needs the database file",
            ),
            ConfigMgrBackend::Sqlite => {}
        }
        self.handoff.validate(&format!("{KEY}.handoff"), problems);
        if let Some(dp) = &self.distribution_point {
            dp.validate(&format!("{KEY}.distribution_point"), problems);
        }
        if self.boot_image_dir.as_os_str().is_empty() {
            problems.push(format!("{KEY}.boot_image_dir"), "must not be empty");
        }
        if self.boot_image_url.contains("..") || self.boot_image_url.contains("://") {
            problems.push(
                format!("{KEY}.boot_image_url"),
                "must be a plain path under the HTTPS root",
            );
        }
        if let Some(offset) = &self.utc_offset {
            if parse_utc_offset(offset).is_none() {
                problems.push(
                    format!("{KEY}.utc_offset"),
                    format!("{offset:?} is not +HH:MM or -HH:MM"),
                );
            }
        }
        if !(1..=64).contains(&self.pool_size) {
            problems.push(
                format!("{KEY}.pool_size"),
                format!("{} is outside 1..=64", self.pool_size),
            );
        }
        if self.query_timeout_ms == 0 || self.query_timeout_ms >= deadline_ms {
            problems.push(
                format!("{KEY}.query_timeout_ms"),
                format!(
                    "{} must be above 0 and below resolver.deadline_ms ({deadline_ms})",
                    self.query_timeout_ms
                ),
            );
        }
        if self.connect_timeout_ms == 0 {
            problems.push(format!("{KEY}.connect_timeout_ms"), "must be above 0");
        }
        if let Some(site) = &self.site_code {
            if site.len() != 3 || !site.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(
                    format!("{KEY}.site_code"),
                    format!("{site:?} is not a three-character site code"),
                );
            }
        }
    }
}

impl WebhookConfig {
    fn validate(&self, deadline_ms: u64, problems: &mut Problems) {
        const KEY: &str = "resolver.webhook";
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push(format!("{KEY}.url"), "must be an http:// or https:// URL");
        }
        if self.timeout_ms == 0 || self.timeout_ms >= deadline_ms {
            problems.push(
                format!("{KEY}.timeout_ms"),
                format!(
                    "{} must be above 0 and below resolver.deadline_ms ({deadline_ms})",
                    self.timeout_ms
                ),
            );
        }
        if self.retries > 5 {
            problems.push(format!("{KEY}.retries"), format!("{} is over 5", self.retries));
        }
        if self.bearer_token.is_some() && self.bearer_token_env.is_some() {
            problems.push(
                format!("{KEY}.bearer_token"),
                "give bearer_token or bearer_token_env, not both",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError};

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml_str(text) {
            Err(ConfigError::Invalid(list)) => list.into_iter().map(|p| p.key).collect(),
            Err(other) => panic!("{other}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn configmgr_needs_a_connection_and_sane_timeouts() {
        assert_eq!(
            problems("[resolver]\nkind = \"configmgr\"\n"),
            ["resolver.configmgr.connection_string_env"]
        );
        let text = "[resolver]\nkind = \"configmgr\"\ndeadline_ms = 1000\n[resolver.configmgr]\n\
                    connection_string_env = \"CM_SQL\"\nquery_timeout_ms = 1000\nsite_code = \"PS12\"\nutc_offset = \"1h\"\n";
        assert_eq!(
            problems(text),
            [
                "resolver.configmgr.utc_offset",
                "resolver.configmgr.query_timeout_ms",
                "resolver.configmgr.site_code"
            ]
        );
        let ok = "[resolver]\nkind = \"configmgr\"\n[resolver.configmgr]\nbackend = \"sqlite\"\nsqlite = \"cm.sqlite\"\n\
                  duplicate_macs = [\"00:15:5d:00:00:99\"]\nutc_offset = \"+01:00\"\norder = \"name\"\n";
        assert!(problems(ok).is_empty());
    }

    #[test]
    fn webhook_needs_a_url() {
        assert_eq!(
            problems("[resolver]\nkind = \"webhook\"\n"),
            ["resolver.webhook.url"]
        );
        assert!(
            problems("[resolver]\nkind = \"webhook\"\n[resolver.webhook]\nurl = \"https://cmdb/pxe\"\n")
                .is_empty()
        );
    }

    #[test]
    fn secrets_are_not_shown() {
        let text = "[resolver]\nkind = \"configmgr\"\n[resolver.configmgr]\nconnection_string = \"server=x;password=hunter2\"\n";
        let config = Config::from_toml_str(text).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!toml::to_string(&config).unwrap().contains("hunter2"));
        assert_eq!(
            config.resolver.configmgr.connection_string.unwrap().expose(),
            "server=x;password=hunter2"
        );
    }

    /// The `[resolver.configmgr]` and `[resolver.webhook]` examples of the README say what
    /// they mean.
    #[test]
    fn readme_resolver_examples_configure_their_resolver() {
        let file = |head: &str| crate::readme::example_starting_with(head).file;
        let configmgr = Config::from_toml_str(&file("[resolver]\nkind = \"configmgr\"")).unwrap();
        assert_eq!(
            configmgr.resolver.configmgr.connection_string_env.as_deref(),
            Some("NETBOOT_CM_SQL")
        );
        let webhook = Config::from_toml_str(&file("[resolver]\nkind = \"webhook\"")).unwrap();
        assert_eq!(webhook.resolver.kind, super::ResolverKind::Webhook);
        assert_eq!(webhook.resolver.webhook.retries, 1);
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(super::parse_utc_offset("+01:00"), Some(3600));
        assert_eq!(super::parse_utc_offset("-05:30"), Some(-19800));
        assert_eq!(super::parse_utc_offset("Z"), Some(0));
        assert_eq!(super::parse_utc_offset("01:00"), None);
    }
}
