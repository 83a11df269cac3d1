//! `[auth]`: authentication at the boot console before a machine may boot.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Problems;

/// Who must log in at the boot console, against which accounts (or approved by an operator),
/// and how guessing is bounded.
///
/// A machine that must authenticate gets an iPXE `login` form instead of its menu; the user
/// name and password are POSTed over HTTPS (never over plain HTTP, never in a URL) and, once
/// verified, the menu comes back with a per-boot `auth` token in every URL pointing at this
/// server. Files of the actions that needed the login are refused without that token.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(
///     "[auth]\nenabled = true\nusers_file = \"users\"\nrequire = \"all\"\n",
/// ).unwrap();
/// assert_eq!(config.auth.token_minutes, 10);
/// assert!(netboot_config::Config::from_toml_str("[auth]\ntoken_minutes = 0\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Ask for a login where [`Self::require`], `unknown_machines` or an action's `auth`
    /// says so. Off: no machine is ever asked, whatever else is set.
    pub enabled: bool,
    /// Where accounts are checked.
    pub backend: AuthBackend,
    /// The local accounts (`backend = "local"`): one `name:$argon2id$...` line each, written
    /// by `pxe-https auth-user add NAME`. Relative to the configuration file.
    pub users_file: PathBuf,
    /// How long a login is good for, in minutes (1..=1440): the lifetime of the token the
    /// menu's URLs carry.
    pub token_minutes: u32,
    /// Wrong passwords accepted at one boot console before it gives up and exits (1..=20).
    pub max_attempts: u32,
    /// Failed logins for one user name within `lockout_secs` after which that name is locked
    /// until the window passes (1..=1000).
    pub max_failures_per_user: u32,
    /// Failed logins from one machine (MAC) within `lockout_secs` after which it is locked
    /// (1..=1000).
    pub max_failures_per_machine: u32,
    /// The failure counting window and lockout time, in seconds (1..=86400).
    pub lockout_secs: u64,
    /// `none`: only actions marked `auth = true` (and unknown machines when
    /// `unknown_machines`) ask for a login; `all`: every menu does.
    pub require: AuthRequire,
    /// Machines the resolver has no record of (ConfigMgr unknown computers) must log in.
    pub unknown_machines: bool,
    /// How a machine authenticates: a `password` typed at its console, or the `approval` of
    /// an operator on the admin page, for a short code the console shows.
    pub method: AuthMethod,
    /// How long a console's approval code waits for an operator, in minutes (1..=120).
    pub approval_minutes: u32,
    /// How often a waiting console asks whether it was approved, in seconds (2..=60).
    pub approval_poll_secs: u32,
}

/// How a machine that must authenticate does so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// iPXE's `login` form: a user name and password checked against [`AuthConfig::backend`].
    #[default]
    Password,
    /// Nothing is typed: the console shows a code and waits until an operator approves or
    /// denies it on the admin page.
    Approval,
}

/// Where accounts are checked. Only local accounts so far; a directory backend is a further
/// variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthBackend {
    /// Argon2id hashes in `auth.users_file`.
    #[default]
    Local,
}

/// Which menus need a login regardless of their actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthRequire {
    /// Only what actions and `unknown_machines` ask for.
    #[default]
    None,
    /// Every menu.
    All,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            backend: AuthBackend::Local,
            users_file: PathBuf::from("boot-users"),
            token_minutes: 10,
            max_attempts: 3,
            max_failures_per_user: 5,
            max_failures_per_machine: 5,
            lockout_secs: 300,
            require: AuthRequire::None,
            unknown_machines: false,
            method: AuthMethod::Password,
            approval_minutes: 15,
            approval_poll_secs: 5,
        }
    }
}

impl AuthConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        let mut range = |key: &str, value: u64, low: u64, high: u64| {
            if !(low..=high).contains(&value) {
                problems.push(format!("auth.{key}"), format!("{value} is not in {low}..={high}"));
            }
        };
        range("token_minutes", self.token_minutes.into(), 1, 1440);
        range("max_attempts", self.max_attempts.into(), 1, 20);
        range(
            "max_failures_per_user",
            self.max_failures_per_user.into(),
            1,
            1000,
        );
        range(
            "max_failures_per_machine",
            self.max_failures_per_machine.into(),
            1,
            1000,
        );
        range("lockout_secs", self.lockout_secs, 1, 86_400);
        range("approval_minutes", self.approval_minutes.into(), 1, 120);
        range("approval_poll_secs", self.approval_poll_secs.into(), 2, 60);
        if self.users_file.as_os_str().is_empty() {
            problems.push("auth.users_file", "must name a file");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn invalid_keys(toml: &str) -> String {
        Config::from_toml_str(toml).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let config = Config::from_toml_str("").unwrap();
        assert!(!config.auth.enabled);
        assert_eq!(config.auth.max_attempts, 3);
        assert_eq!(config.auth.lockout_secs, 300);
        assert_eq!(config.auth.require, super::AuthRequire::None);
        assert_eq!(config.auth.method, super::AuthMethod::Password);
        assert_eq!(config.auth.approval_minutes, 15);
        assert_eq!(config.auth.approval_poll_secs, 5);
    }

    #[test]
    fn approval_is_a_method() {
        let config = Config::from_toml_str(
            "[auth]\nenabled = true\nmethod = \"approval\"\napproval_minutes = 120\napproval_poll_secs = 2\n",
        )
        .unwrap();
        assert_eq!(config.auth.method, super::AuthMethod::Approval);
        assert_eq!(config.auth.approval_minutes, 120);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        for (line, key) in [
            ("token_minutes = 1441", "auth.token_minutes"),
            ("token_minutes = 0", "auth.token_minutes"),
            ("max_attempts = 0", "auth.max_attempts"),
            ("max_failures_per_user = 0", "auth.max_failures_per_user"),
            ("max_failures_per_machine = 0", "auth.max_failures_per_machine"),
            ("lockout_secs = 0", "auth.lockout_secs"),
            ("users_file = \"\"", "auth.users_file"),
            ("approval_minutes = 0", "auth.approval_minutes"),
            ("approval_minutes = 121", "auth.approval_minutes"),
            ("approval_poll_secs = 1", "auth.approval_poll_secs"),
            ("approval_poll_secs = 61", "auth.approval_poll_secs"),
        ] {
            let error = invalid_keys(&format!("[auth]\n{line}\n"));
            assert!(error.contains(key), "{line}: {error}");
        }
    }

    #[test]
    fn unknown_backends_and_keys_are_refused() {
        assert!(invalid_keys("[auth]\nbackend = \"ldap\"\n").contains("backend"));
        assert!(invalid_keys("[auth]\nrequire = \"some\"\n").contains("require"));
        assert!(invalid_keys("[auth]\nmethod = \"sms\"\n").contains("method"));
        assert!(invalid_keys("[auth]\npasword = \"x\"\n").contains("pasword"));
    }
}
