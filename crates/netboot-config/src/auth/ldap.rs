//! `[auth.ldap]`: boot-console logins checked against an LDAP directory or Active Directory.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// The user filter when none is given: an OpenLDAP-style person by `uid`.
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=person)(uid={user}))";
/// Where the typed user name goes in `user_filter` and `user_dn_template`.
pub const USER_PLACEHOLDER: &str = "{user}";

/// How a login is checked against a directory (`[auth] backend = "ldap"`).
///
/// A login connects (TLS from the start with `ldaps://`, or StartTLS), finds the user's entry
/// (a search with `user_filter` under `user_search_base`, as the service account when
/// `bind_dn` is set), or builds its name (`user_dn_template`, or `user@upn_suffix` for Active
/// Directory), binds as that user with the typed password and, with `required_group`, checks
/// the membership. An empty password is refused before any bind: many servers treat a bind
/// with an empty password as an anonymous bind that succeeds.
///
/// Exactly one of `user_search_base`, `user_dn_template` and `upn_suffix` says how users are
/// found.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(r#"
/// [auth]
/// enabled = true
/// backend = "ldap"
/// [auth.ldap]
/// url = "ldaps://ldap.example.org"
/// user_search_base = "ou=people,dc=example,dc=org"
/// "#).unwrap();
/// assert_eq!(config.auth.ldap.timeout_secs, 5);
/// // Plain LDAP without StartTLS would send the passwords in the clear.
/// let plain = "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldap://dc1\"\nupn_suffix = \"example.org\"\n";
/// assert!(netboot_config::Config::from_toml_str(plain).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LdapConfig {
    /// The directory server: `ldaps://host[:636]` (TLS from the start) or `ldap://host[:389]`
    /// (with `starttls`). The host name is what the server's certificate is checked against.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything else is sent.
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS: passwords cross the network in the clear. Only for
    /// tests and labs; a warning is logged at every start.
    pub allow_plain: bool,
    /// A PEM file of CA certificates trusted for the server's certificate, in addition to
    /// the system's trust store (relative to the configuration file).
    pub ca_file: Option<PathBuf>,
    /// The service account that searches for users (and reads groups): its DN. Without it,
    /// searches are anonymous (and group checks run as the user who logs in).
    pub bind_dn: Option<String>,
    /// The file holding the service account's password (first line, relative to the
    /// configuration file); read at every login, so it can be rotated without a restart.
    pub bind_password_file: Option<PathBuf>,
    /// Search mode: where users are searched (whole subtree), e.g. `ou=people,dc=example,dc=org`.
    pub user_search_base: Option<String>,
    /// Search mode: the filter that finds exactly one user; `{user}` is replaced with the typed
    /// name, escaped (RFC 4515). For Active Directory: `(sAMAccountName={user})`.
    pub user_filter: String,
    /// Template mode: the user's DN, `{user}` replaced with the typed name, escaped
    /// (RFC 4514), e.g. `uid={user},ou=people,dc=example,dc=org`.
    pub user_dn_template: Option<String>,
    /// Active Directory UPN mode: bind as `user@upn_suffix`. A name typed with an `@` or as
    /// `DOMAIN\user` is bound as typed.
    pub upn_suffix: Option<String>,
    /// The DN of the group whose members may log in; without it, any user who binds may.
    pub required_group: Option<String>,
    /// The attribute of a group that lists its members' DNs: `member` (groupOfNames, Active
    /// Directory) or `uniqueMember` (groupOfUniqueNames).
    pub group_member_attribute: String,
    /// Members of groups that are members of `required_group` count too (at most 8 levels,
    /// 256 groups).
    pub nested_groups: bool,
    /// Where groups are searched when following nested groups; by default the `dc=` part of
    /// `required_group` (the naming context it is in).
    pub group_search_base: Option<String>,
    /// The server is Active Directory: nested groups are resolved by the server in one
    /// search (the LDAP_MATCHING_RULE_IN_CHAIN rule, 1.2.840.113556.1.4.1941).
    pub active_directory: bool,
    /// The longest one login check may take with the directory (connecting, TLS, binds and
    /// searches), in seconds (1..=60); past it the directory counts as unreachable.
    pub timeout_secs: u64,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            starttls: false,
            allow_plain: false,
            ca_file: None,
            bind_dn: None,
            bind_password_file: None,
            user_search_base: None,
            user_filter: DEFAULT_USER_FILTER.to_owned(),
            user_dn_template: None,
            upn_suffix: None,
            required_group: None,
            group_member_attribute: "member".to_owned(),
            nested_groups: false,
            group_search_base: None,
            active_directory: false,
            timeout_secs: 5,
        }
    }
}

/// How the user's entry is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapUserMode {
    /// Searched with `user_filter` under `user_search_base`.
    Search,
    /// Built from `user_dn_template`.
    Template,
    /// `user@upn_suffix`.
    Upn,
}

impl LdapConfig {
    /// How users are found, when exactly one mode is configured.
    pub fn user_mode(&self) -> Option<LdapUserMode> {
        match (&self.user_search_base, &self.user_dn_template, &self.upn_suffix) {
            (Some(_), None, None) => Some(LdapUserMode::Search),
            (None, Some(_), None) => Some(LdapUserMode::Template),
            (None, None, Some(_)) => Some(LdapUserMode::Upn),
            _ => None,
        }
    }

    /// Whether the URL is `ldaps://`.
    pub fn is_ldaps(&self) -> bool {
        self.url.to_ascii_lowercase().starts_with("ldaps://")
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let lower = self.url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("ldaps://")
            .or_else(|| lower.strip_prefix("ldap://"));
        match rest {
            None => problems.push(
                "auth.ldap.url",
                format!("{:?} is not an ldaps:// or ldap:// URL", self.url),
            ),
            Some(rest) if rest.trim_end_matches('/').is_empty() || rest.contains(['?', '#', ' ']) => problems
                .push(
                    "auth.ldap.url",
                    "must be scheme://host[:port] with nothing after it",
                ),
            Some(rest) if rest.trim_end_matches('/').contains('/') => problems.push(
                "auth.ldap.url",
                "must be scheme://host[:port] with nothing after it",
            ),
            Some(_) if self.is_ldaps() && self.starttls => problems.push(
                "auth.ldap.starttls",
                "StartTLS is for ldap:// URLs; ldaps:// is TLS from the start",
            ),
            Some(_) if !self.is_ldaps() && !self.starttls && !self.allow_plain => problems.push(
                "auth.ldap.url",
                "ldap:// without starttls would send passwords in the clear: use ldaps://, set \
                 starttls = true, or (tests and labs only) allow_plain = true",
            ),
            Some(_) => {}
        }
        if self.user_mode().is_none() {
            problems.push(
                "auth.ldap.user_search_base",
                "set exactly one of user_search_base, user_dn_template and upn_suffix",
            );
        }
        if self.user_search_base.is_some() {
            let filter = &self.user_filter;
            if !filter.contains(USER_PLACEHOLDER) || !filter.starts_with('(') || !balanced(filter) {
                problems.push(
                    "auth.ldap.user_filter",
                    "must be a parenthesised LDAP filter containing {user}",
                );
            }
        }
        if let Some(template) = &self.user_dn_template {
            if !template.contains(USER_PLACEHOLDER) || !template.contains('=') {
                problems.push("auth.ldap.user_dn_template", "must be a DN containing {user}");
            }
        }
        if let Some(suffix) = &self.upn_suffix {
            if suffix.is_empty() || suffix.contains(['@', '\\', ' ']) {
                problems.push("auth.ldap.upn_suffix", "must be a domain such as example.org");
            }
        }
        match (&self.bind_dn, &self.bind_password_file) {
            (Some(_), None) => {
                problems.push("auth.ldap.bind_password_file", "bind_dn needs bind_password_file")
            }
            (None, Some(_)) => problems.push("auth.ldap.bind_dn", "bind_password_file needs bind_dn"),
            _ => {}
        }
        for (key, dn) in [
            ("auth.ldap.bind_dn", &self.bind_dn),
            ("auth.ldap.user_search_base", &self.user_search_base),
            ("auth.ldap.required_group", &self.required_group),
            ("auth.ldap.group_search_base", &self.group_search_base),
        ] {
            if dn.as_ref().is_some_and(|dn| !dn.contains('=')) {
                problems.push(key, "must be a DN such as cn=name,dc=example,dc=org");
            }
        }
        let attribute = &self.group_member_attribute;
        if attribute.is_empty()
            || !attribute
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            problems.push(
                "auth.ldap.group_member_attribute",
                "must be an attribute name such as member or uniqueMember",
            );
        }
        if !(1..=60).contains(&self.timeout_secs) {
            problems.push(
                "auth.ldap.timeout_secs",
                format!("{} is not in 1..=60", self.timeout_secs),
            );
        }
    }
}

/// Whether the parentheses of a filter balance (never closing more than opened).
fn balanced(filter: &str) -> bool {
    let mut depth = 0usize;
    for c in filter.chars() {
        match c {
            '(' => depth += 1,
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}
