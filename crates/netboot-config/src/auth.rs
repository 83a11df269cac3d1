//! `[auth]`: authentication at the boot console before a machine may boot.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

mod ldap;

pub use ldap::{LdapConfig, LdapUserMode, DEFAULT_USER_FILTER, USER_PLACEHOLDER};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Ask for a login where `require`, `unknown_machines` or an action's `auth` says so. Off: no machine is ever asked, whatever else is set.
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
    /// Which menus need a login whatever their actions say.
    pub require: AuthRequire,
    /// Machines the resolver has no record of (ConfigMgr unknown computers) must log in.
    pub unknown_machines: bool,
    /// How a machine that must authenticate does so.
    pub method: AuthMethod,
    /// How long a console's approval code waits for an operator, in minutes (1..=120).
    pub approval_minutes: u32,
    /// How often a waiting console asks whether it was approved, in seconds (2..=60).
    pub approval_poll_secs: u32,
    /// `[auth.ldap]`: the directory logins are checked against when `backend = "ldap"`.
    pub ldap: LdapConfig,
}

/// How a machine that must authenticate does so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// iPXE's `login` form: a user name and password checked against `backend`.
    #[default]
    Password,
    /// Nothing is typed: the console shows a code and waits until an operator approves or
    /// denies it on the admin page.
    Approval,
}

/// Where accounts are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthBackend {
    /// Argon2id hashes in `auth.users_file`.
    #[default]
    Local,
    /// An LDAP directory or Active Directory, as `[auth.ldap]` describes.
    Ldap,
}

/// Which menus need a login regardless of their actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthRequire {
    /// Only what actions and `unknown_machines` ask for.
    #[default]
    None,
    /// Every menu.
    All,
    /// Every Available action (ConfigMgr Available deployments, the static rules'
    /// `available` lists): choosing from the menu needs a login, Required ones boot as
    /// before.
    Available,
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
            ldap: LdapConfig::default(),
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
        if self.backend == AuthBackend::Ldap {
            self.ldap.validate(problems);
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
        assert!(invalid_keys("[auth]\nbackend = \"nis\"\n").contains("backend"));
        assert!(invalid_keys("[auth]\nrequire = \"some\"\n").contains("require"));
        assert!(invalid_keys("[auth]\nmethod = \"sms\"\n").contains("method"));
        assert!(invalid_keys("[auth]\npasword = \"x\"\n").contains("pasword"));
    }

    const LDAP: &str = "[auth]\nenabled = true\nbackend = \"ldap\"\n[auth.ldap]\n";

    #[test]
    fn ldap_needs_a_protected_url_and_one_way_to_find_users() {
        let ok = |rest: &str| Config::from_toml_str(&format!("{LDAP}{rest}")).unwrap();
        let config = ok("url = \"ldaps://dc1.example.org:636\"\nupn_suffix = \"example.org\"\n");
        assert_eq!(config.auth.ldap.user_mode(), Some(super::LdapUserMode::Upn));
        assert_eq!(config.auth.ldap.group_member_attribute, "member");
        assert_eq!(config.auth.ldap.user_filter, super::DEFAULT_USER_FILTER);
        ok("url = \"ldap://ldap\"\nstarttls = true\nuser_search_base = \"dc=example,dc=org\"\n");
        ok("url = \"ldap://127.0.0.1:3890/\"\nallow_plain = true\nuser_dn_template = \"uid={user},dc=x\"\n");
        for (rest, key) in [
            ("url = \"ldap://ldap\"\nupn_suffix = \"x.org\"\n", "auth.ldap.url"),
            ("url = \"http://ldap\"\nupn_suffix = \"x.org\"\n", "auth.ldap.url"),
            ("url = \"ldaps://\"\nupn_suffix = \"x.org\"\n", "auth.ldap.url"),
            (
                "url = \"ldaps://h/dc=x??sub\"\nupn_suffix = \"x.org\"\n",
                "auth.ldap.url",
            ),
            ("upn_suffix = \"x.org\"\n", "auth.ldap.url"),
            (
                "url = \"ldaps://h\"\nstarttls = true\nupn_suffix = \"x.org\"\n",
                "auth.ldap.starttls",
            ),
            ("url = \"ldaps://h\"\n", "auth.ldap.user_search_base"),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\nuser_dn_template = \"uid={user},dc=x\"\n",
                "auth.ldap.user_search_base",
            ),
            (
                "url = \"ldaps://h\"\nuser_search_base = \"dc=x\"\nuser_filter = \"(uid=alice)\"\n",
                "auth.ldap.user_filter",
            ),
            (
                "url = \"ldaps://h\"\nuser_search_base = \"dc=x\"\nuser_filter = \"(uid={user}))(\"\n",
                "auth.ldap.user_filter",
            ),
            (
                "url = \"ldaps://h\"\nuser_dn_template = \"uid=alice,dc=x\"\n",
                "auth.ldap.user_dn_template",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"@x.org\"\n",
                "auth.ldap.upn_suffix",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\nbind_dn = \"cn=svc,dc=x\"\n",
                "auth.ldap.bind_password_file",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\nbind_password_file = \"pw\"\n",
                "auth.ldap.bind_dn",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\nrequired_group = \"admins\"\n",
                "auth.ldap.required_group",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\ngroup_member_attribute = \"member)(x\"\n",
                "auth.ldap.group_member_attribute",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\ntimeout_secs = 0\n",
                "auth.ldap.timeout_secs",
            ),
            (
                "url = \"ldaps://h\"\nupn_suffix = \"x.org\"\nbind_pasword = \"x\"\n",
                "bind_pasword",
            ),
        ] {
            let error = invalid_keys(&format!("{LDAP}{rest}"));
            assert!(error.contains(key), "{rest}: {error}");
        }
    }

    #[test]
    fn the_ldap_table_is_only_checked_for_the_ldap_backend() {
        let config = Config::from_toml_str("[auth]\nenabled = true\n[auth.ldap]\nstarttls = true\n").unwrap();
        assert_eq!(config.auth.backend, super::AuthBackend::Local);
    }
}
