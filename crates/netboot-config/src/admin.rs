//! `[admin]`: the reports page, JSON API and Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::listen::SocketAddress;
use crate::Problems;

/// The administration interface: a web page of machines and boot timelines, a JSON API
/// (with an OpenAPI document) and Prometheus `/metrics`.
///
/// It is mounted under `path` on the `pxe-https` listeners, and optionally served on its own
/// `listen` address. Every request needs the bearer `token` or the basic-auth
/// `username`/`password`; `/metrics` can be opened with `metrics_public`.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(
///     "[admin]\nenabled = true\ntoken = \"s3cret-token-for-prometheus\"\n",
/// ).unwrap();
/// assert_eq!(config.admin.path, "/admin");
/// // Enabled without any credential is refused.
/// assert!(netboot_config::Config::from_toml_str("[admin]\nenabled = true\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the administration interface.
    pub enabled: bool,
    /// URL prefix on the `pxe-https` listeners (`/admin` serves `/admin/`, `/admin/api/v1/...`
    /// and `/admin/metrics`).
    pub path: String,
    /// An extra plain-HTTP listener for the same interface (for a management network or a
    /// Prometheus scraper on loopback). Unset: only under `path` on the `pxe-https` listeners.
    #[schemars(with = "Option<SocketAddress>")]
    pub listen: Option<SocketAddr>,
    /// Bearer token accepted in `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// File holding the bearer token (first line), instead of `token`.
    pub token_file: Option<PathBuf>,
    /// Basic-auth user name (with `password` or `password_file`).
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// File holding the basic-auth password (first line), instead of `password`.
    pub password_file: Option<PathBuf>,
    /// Serve `/metrics` without credentials (for scrapers on a trusted network).
    pub metrics_public: bool,
    /// Allow `listen` on an address other than loopback. That listener is plain HTTP, so
    /// credentials cross the network in clear text; without this it is refused.
    pub allow_plain_http: bool,
}

/// The shortest basic-auth password accepted: the login is reachable over the network.
pub const MIN_PASSWORD_CHARS: usize = 12;

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: "/admin".into(),
            listen: None,
            token: None,
            token_file: None,
            username: None,
            password: None,
            password_file: None,
            metrics_public: false,
            allow_plain_http: false,
        }
    }
}

impl AdminConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        let path_ok = self.path.starts_with('/')
            && !self.path.ends_with('/')
            && self.path.len() > 1
            && self
                .path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            && !self
                .path
                .split('/')
                .any(|segment| segment == "." || segment == "..");
        if !path_ok {
            problems.push(
                "admin.path",
                format!("{:?} must look like /admin (no trailing slash)", self.path),
            );
        }
        if self.token.is_some() && self.token_file.is_some() {
            problems.push("admin.token_file", "set token or token_file, not both");
        }
        if self.token.as_ref().is_some_and(|t| t.trim().len() < 16) {
            problems.push("admin.token", "must be at least 16 characters");
        }
        if self.password.is_some() && self.password_file.is_some() {
            problems.push("admin.password_file", "set password or password_file, not both");
        }
        if self
            .password
            .as_ref()
            .is_some_and(|p| p.chars().count() < MIN_PASSWORD_CHARS)
        {
            problems.push(
                "admin.password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            );
        }
        if let Some(listen) = self.listen {
            if self.enabled && !listen.ip().is_loopback() && !self.allow_plain_http {
                problems.push(
                    "admin.listen",
                    format!(
                        "{listen} is not a loopback address and this listener is plain HTTP, so \
                         credentials would cross the network in clear text; use the admin pages \
                         on the HTTPS listener, a loopback address, or set admin.allow_plain_http = true"
                    ),
                );
            }
        }
        let has_password = self.password.is_some() || self.password_file.is_some();
        if self.username.is_some() != has_password {
            problems.push(
                "admin.username",
                "basic auth needs both username and password (or password_file)",
            );
        }
        if self
            .username
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.contains(':'))
        {
            problems.push("admin.username", "must be non-empty and contain no ':'");
        }
        let has_credential = self.token.is_some() || self.token_file.is_some() || self.username.is_some();
        if self.enabled && !has_credential {
            problems.push(
                "admin.enabled",
                "needs token, token_file or username/password: the interface is never served open",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn credentials_are_checked() {
        let err = Config::from_toml_str(
            "[admin]\nenabled = true\nusername = \"a\"\npath = \"admin/\"\ntoken = \"short\"\n",
        )
        .unwrap_err()
        .to_string();
        for key in ["admin.username", "admin.path", "admin.token"] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        Config::from_toml_str("[admin]\nenabled = true\nusername = \"ops\"\npassword = \"twelve chars\"\n")
            .unwrap();
    }

    #[test]
    fn short_passwords_are_refused_naming_the_key() {
        let err = Config::from_toml_str(
            "[admin]\nenabled = true\nusername = \"ops\"\npassword = \"eleven char\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("admin.password"), "{err}");
        assert!(
            !err.contains("eleven char"),
            "the password is not repeated: {err}"
        );
    }

    #[test]
    fn a_plain_http_listener_off_loopback_needs_consent() {
        let text = "[admin]\nenabled = true\ntoken = \"0123456789abcdef\"\nlisten = \"0.0.0.0:9180\"\n";
        let err = Config::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains("admin.listen"), "{err}");
        assert!(err.contains("admin.allow_plain_http"), "{err}");
        Config::from_toml_str(&format!("{text}allow_plain_http = true\n")).unwrap();
        Config::from_toml_str(
            "[admin]\nenabled = true\ntoken = \"0123456789abcdef\"\nlisten = \"127.0.0.1:9180\"\n",
        )
        .unwrap();
        Config::from_toml_str(
            "[admin]\nenabled = true\ntoken = \"0123456789abcdef\"\nlisten = \"[::1]:9180\"\n",
        )
        .unwrap();
    }
}
