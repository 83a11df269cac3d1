//! Directory accounts (`[auth] backend = "ldap"`): a login checked against an LDAP server or
//! Active Directory, as `[auth.ldap]` describes.
//!
//! One login is one connection: connect (TLS from the start or StartTLS, the certificate
//! checked against the system's trust store and `ca_file`), bind as the service account when
//! there is one, find the user's DN (a search that must find exactly one entry, or a template,
//! or the UPN), bind as the user with the typed password, check the group, unbind. The whole
//! check runs within `timeout_secs`.
//!
//! Outcomes keep the user's failures apart from the directory's: a wrong password or a user
//! outside the group is [`Outcome::Refused`] (counted toward the lockouts), while a server that
//! is down, a TLS failure or a timeout is [`Outcome::Unavailable`] (nobody's fault at the
//! console; the machine moves on to its next boot device).
//!
//! Every typed value reaches the directory escaped: [`filter_escape`] (RFC 4515) in filters,
//! [`dn_value_escape`] (RFC 4514) in DNs, so a name such as `*)(uid=*` matches nothing rather
//! than everything. The passwords (the user's and the service account's) are never logged
//! nor put into an error.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ldap3::asn1::StructureTag;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchResult};
use netboot_config::{Config, LdapConfig, LdapUserMode, USER_PLACEHOLDER};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

pub use netboot_auth::ldap_escape::{dn_value_escape, dn_value_unescape, filter_escape, filter_unescape};

/// Group nesting followed at most (generic LDAP; Active Directory resolves it itself).
pub const MAX_NESTING: usize = 8;
/// Groups visited at most while following nested groups: a bound on the searches one login
/// can cause.
pub const MAX_GROUPS: usize = 256;
/// The longest user name sent to the directory, in bytes.
pub const MAX_USER_BYTES: usize = 256;

/// The matching rule with which Active Directory follows group nesting on the server
/// (LDAP_MATCHING_RULE_IN_CHAIN).
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// Result codes of a bind that mean "not this user, not with this password": invalid
/// credentials, inappropriate authentication, insufficient access, unwilling to perform
/// (disabled accounts), no such object, invalid DN syntax. Any other code is the server's
/// problem.
const BIND_REFUSALS: [u32; 6] = [49, 48, 50, 53, 32, 34];
/// An attribute list that asks for no attributes (RFC 4511 section 4.5.1.8).
const NO_ATTRIBUTES: [&str; 1] = ["1.1"];

/// What the directory made of a login.
#[derive(Debug)]
pub enum Outcome {
    /// The password is right and the user is in the required group.
    Accepted,
    /// The user's failure: counted toward the lockouts.
    Refused(Refusal),
    /// The directory could not answer: the login was not checked.
    Unavailable(Unavailable),
}

/// Why a login was refused, for the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No password typed (never sent: an empty password is an anonymous bind to many
    /// servers, which succeeds).
    EmptyPassword,
    /// No name typed, too long, or with control characters.
    BadName,
    /// The search found no user.
    NoSuchUser,
    /// The search found more than one user: the filter is too loose for this name.
    AmbiguousUser,
    /// The user exists but the password does not match (search mode).
    WrongPassword,
    /// The bind failed (template and UPN modes cannot tell a wrong name from a wrong
    /// password).
    WrongNameOrPassword,
    /// The user is not a member of `required_group`.
    NotInGroup,
    /// `required_group` is not in the directory.
    NoSuchGroup,
}

impl Refusal {
    /// The reason as the login record states it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::EmptyPassword => "empty password",
            Self::BadName => "unusable user name",
            Self::NoSuchUser => "no such user",
            Self::AmbiguousUser => "the user filter matches more than one entry",
            Self::WrongPassword => "wrong password",
            Self::WrongNameOrPassword => "wrong user name or password",
            Self::NotInGroup => "not in group",
            Self::NoSuchGroup => "the required group does not exist",
        }
    }
}

/// Why the directory could not check a login. Never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// A file of the configuration cannot be read.
    #[error("{key} {path}: {message}")]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS client cannot be set up.
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// Connecting, TLS or StartTLS failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The server.
        url: String,
        /// What failed (boxed: it is large, and errors are the rare path).
        source: Box<LdapError>,
    },
    /// An operation failed on the connection.
    #[error("{operation}: {source}")]
    Operation {
        /// Which step.
        operation: &'static str,
        /// What failed (boxed: it is large, and errors are the rare path).
        source: Box<LdapError>,
    },
    /// The server answered an operation with an error code.
    #[error("{operation}: the server answered {rc} {text}")]
    Result {
        /// Which step.
        operation: &'static str,
        /// The LDAP result code.
        rc: u32,
        /// The server's diagnostic message.
        text: String,
    },
    /// The service account's bind was refused: the configuration is wrong, not the user.
    #[error("the service account {bind_dn} was refused (result {rc})")]
    ServiceBind {
        /// The service account.
        bind_dn: String,
        /// The LDAP result code.
        rc: u32,
    },
    /// The check did not finish within `timeout_secs`.
    #[error("no answer within {0} s")]
    Timeout(u64),
}

/// The directory of `[auth.ldap]`, with its files resolved.
#[derive(Debug, Clone)]
pub struct Directory {
    config: LdapConfig,
    ca_file: Option<PathBuf>,
    bind_password_file: Option<PathBuf>,
}

impl Directory {
    /// The directory `config.auth.ldap` describes (already validated).
    pub fn from_config(config: &Config) -> Self {
        let ldap = config.auth.ldap.clone();
        if !ldap.is_ldaps() && !ldap.starttls {
            tracing::warn!(url = %ldap.url, "auth.ldap.allow_plain: boot-console passwords cross the network to the directory unencrypted");
        }
        Self {
            ca_file: ldap.ca_file.as_deref().map(|p| config.resolve_path(p)),
            bind_password_file: ldap.bind_password_file.as_deref().map(|p| config.resolve_path(p)),
            config: ldap,
        }
    }

    /// Checks `user` and `password` against the directory within `timeout_secs`.
    pub async fn verify(&self, user: &str, password: &str) -> Outcome {
        // Before anything reaches the server: an empty password would be an unauthenticated
        // bind, which many servers accept as anonymous.
        if password.is_empty() {
            return Outcome::Refused(Refusal::EmptyPassword);
        }
        if user.is_empty() || user.len() > MAX_USER_BYTES || user.chars().any(char::is_control) {
            return Outcome::Refused(Refusal::BadName);
        }
        let seconds = self.config.timeout_secs;
        match tokio::time::timeout(Duration::from_secs(seconds), self.check(user, password)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(unavailable)) => Outcome::Unavailable(unavailable),
            Err(_) => Outcome::Unavailable(Unavailable::Timeout(seconds)),
        }
    }

    async fn check(&self, user: &str, password: &str) -> Result<Outcome, Unavailable> {
        // Read at every login, like the local users file: rotating it needs no restart.
        let service_password = match &self.bind_password_file {
            Some(path) => Some(read_password_file(path)?),
            None => None,
        };
        let mut ldap = self.connect().await?;
        let outcome = self
            .check_on(&mut ldap, user, password, service_password.as_deref())
            .await;
        // A courtesy to the server; the connection is dropped either way.
        let _ = ldap.unbind().await;
        outcome
    }

    async fn connect(&self) -> Result<Ldap, Unavailable> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(self.config.timeout_secs))
            .set_starttls(self.config.starttls);
        if self.config.is_ldaps() || self.config.starttls {
            settings = settings.set_config(self.tls_config()?);
        }
        let (connection, ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|source| Unavailable::Connect {
                url: self.config.url.clone(),
                source: Box::new(source),
            })?;
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(%error, "directory connection ended");
            }
        });
        Ok(ldap)
    }

    /// The system's trust store plus `ca_file`. Built at every login so that a renewed
    /// `ca_file` counts at once; a login is rare enough for that.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, Unavailable> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is no reason to refuse the others.
            let _ = roots.add(cert);
        }
        if let Some(path) = &self.ca_file {
            let added = load_ca_file(path, &mut roots)?;
            if added == 0 {
                return Err(Unavailable::File {
                    key: "auth.ldap.ca_file",
                    path: path.clone(),
                    message: "no certificate in it".into(),
                });
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Unavailable::TlsSetup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    async fn check_on(
        &self,
        ldap: &mut Ldap,
        user: &str,
        password: &str,
        service_password: Option<&str>,
    ) -> Result<Outcome, Unavailable> {
        let config = &self.config;
        let service = config.bind_dn.as_deref().zip(service_password);
        if let Some((bind_dn, service_password)) = service {
            self.service_bind(ldap, bind_dn, service_password).await?;
        }
        let mode = config.user_mode().unwrap_or(LdapUserMode::Search);
        let user_dn = match mode {
            LdapUserMode::Search => match self.find_user(ldap, user).await? {
                Ok(dn) => dn,
                Err(refusal) => return Ok(Outcome::Refused(refusal)),
            },
            LdapUserMode::Template => {
                let template = config.user_dn_template.as_deref().unwrap_or_default();
                template.replace(USER_PLACEHOLDER, &dn_value_escape(user))
            }
            LdapUserMode::Upn => upn_bind_name(user, config.upn_suffix.as_deref().unwrap_or_default()),
        };
        let bound = ldap
            .simple_bind(&user_dn, password)
            .await
            .map_err(operation("user bind"))?;
        match bound.rc {
            0 => {}
            rc if BIND_REFUSALS.contains(&rc) => {
                return Ok(Outcome::Refused(match mode {
                    LdapUserMode::Search => Refusal::WrongPassword,
                    _ => Refusal::WrongNameOrPassword,
                }));
            }
            rc => {
                return Err(Unavailable::Result {
                    operation: "user bind",
                    rc,
                    text: bound.text,
                })
            }
        }
        let Some(group) = config.required_group.as_deref() else {
            return Ok(Outcome::Accepted);
        };
        // Groups are read as the service account when there is one: its rights are the
        // administrator's choice, a user's may not include reading groups.
        if let Some((bind_dn, service_password)) = service {
            self.service_bind(ldap, bind_dn, service_password).await?;
        }
        Ok(match self.is_member(ldap, group, &user_dn).await? {
            Membership::Member => Outcome::Accepted,
            Membership::NotMember => Outcome::Refused(Refusal::NotInGroup),
            Membership::NoGroup => {
                tracing::error!(
                    group,
                    "auth.ldap.required_group is not in the directory: nobody can log in"
                );
                Outcome::Refused(Refusal::NoSuchGroup)
            }
        })
    }

    async fn service_bind(&self, ldap: &mut Ldap, bind_dn: &str, password: &str) -> Result<(), Unavailable> {
        let result = ldap
            .simple_bind(bind_dn, password)
            .await
            .map_err(operation("service account bind"))?;
        match result.rc {
            0 => Ok(()),
            rc => Err(Unavailable::ServiceBind {
                bind_dn: bind_dn.to_owned(),
                rc,
            }),
        }
    }

    /// The DN of the one entry `user_filter` finds for `user`, or why there is none.
    async fn find_user(&self, ldap: &mut Ldap, user: &str) -> Result<Result<String, Refusal>, Unavailable> {
        let base = self.config.user_search_base.as_deref().unwrap_or_default();
        let filter = self
            .config
            .user_filter
            .replace(USER_PLACEHOLDER, &filter_escape(user));
        let found = search(ldap, "user search", base, Scope::Subtree, &filter).await?;
        Ok(match found.as_deref() {
            Some([dn]) => Ok(dn.clone()),
            Some([]) | None => Err(Refusal::NoSuchUser),
            Some(_) => Err(Refusal::AmbiguousUser),
        })
    }

    /// Whether `user_dn` is in `group`: directly, or through nested groups when
    /// `nested_groups` is on.
    async fn is_member(
        &self,
        ldap: &mut Ldap,
        group: &str,
        user_dn: &str,
    ) -> Result<Membership, Unavailable> {
        let config = &self.config;
        let attribute = &config.group_member_attribute;
        if config.nested_groups && config.active_directory {
            let filter = format!("({attribute}:{IN_CHAIN}:={})", filter_escape(user_dn));
            return Ok(
                match search(ldap, "group check", group, Scope::Base, &filter).await? {
                    None => Membership::NoGroup,
                    Some(found) if found.is_empty() => Membership::NotMember,
                    Some(_) => Membership::Member,
                },
            );
        }
        // Breadth first, upwards from the user: at each level, is one of the DNs a direct
        // member of the group (the server compares the DNs, which knows their matching
        // rules)? If not, the groups they are members of are the next level.
        let groups_base = config
            .group_search_base
            .clone()
            .unwrap_or_else(|| naming_context(group).to_owned());
        let mut frontier = vec![user_dn.to_owned()];
        let mut visited = HashSet::new();
        for level in 0..=MAX_NESTING {
            let any = any_of(attribute, &frontier);
            match search(ldap, "group check", group, Scope::Base, &any).await? {
                None => return Ok(Membership::NoGroup),
                Some(found) if !found.is_empty() => return Ok(Membership::Member),
                Some(_) => {}
            }
            if !config.nested_groups || level == MAX_NESTING {
                break;
            }
            let parents = search(ldap, "nested group search", &groups_base, Scope::Subtree, &any)
                .await?
                .unwrap_or_default();
            frontier = parents
                .into_iter()
                .filter(|dn| visited.insert(dn.to_lowercase()))
                .collect();
            if visited.len() > MAX_GROUPS {
                tracing::warn!(
                    user = user_dn,
                    limit = MAX_GROUPS,
                    "more nested groups than followed: not a member"
                );
                break;
            }
            if frontier.is_empty() {
                break;
            }
        }
        Ok(Membership::NotMember)
    }
}

enum Membership {
    Member,
    NotMember,
    NoGroup,
}

/// The DNs of the entries a search finds, or `None` when `base` does not exist.
async fn search(
    ldap: &mut Ldap,
    operation_name: &'static str,
    base: &str,
    scope: Scope,
    filter: &str,
) -> Result<Option<Vec<String>>, Unavailable> {
    let SearchResult(entries, result) = ldap
        .search(base, scope, filter, NO_ATTRIBUTES)
        .await
        .map_err(operation(operation_name))?;
    match result.rc {
        // 4: size limit exceeded; the entries returned still count.
        0 | 4 => Ok(Some(entries.into_iter().filter_map(|e| entry_dn(e.0)).collect())),
        32 => Ok(None),
        rc => Err(Unavailable::Result {
            operation: operation_name,
            rc,
            text: result.text,
        }),
    }
}

fn operation(operation: &'static str) -> impl Fn(LdapError) -> Unavailable {
    move |source| Unavailable::Operation {
        operation,
        source: Box::new(source),
    }
}

/// The DN of a SearchResultEntry, without panicking on a malformed one
/// (`SearchEntry::construct` would).
fn entry_dn(tag: StructureTag) -> Option<String> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    String::from_utf8(parts.next()?.expect_primitive()?).ok()
}

/// `(|(attribute=dn1)(attribute=dn2)…)` with every DN escaped.
fn any_of(attribute: &str, dns: &[String]) -> String {
    let mut filter = String::from("(|");
    for dn in dns {
        let _ = write!(filter, "({attribute}={})", filter_escape(dn));
    }
    filter.push(')');
    filter
}

/// The name to bind as in UPN mode: as typed when it already names its domain
/// (`user@domain` or `DOMAIN\user`, which Active Directory accepts as bind names), else
/// `user@suffix`.
pub fn upn_bind_name(user: &str, suffix: &str) -> String {
    if user.contains(['@', '\\']) {
        user.to_owned()
    } else {
        format!("{user}@{suffix}")
    }
}

/// Where nested groups are searched by default: the trailing `dc=` components of the group's
/// DN (its domain's naming context), or its parent when it has none.
pub fn naming_context(group_dn: &str) -> &str {
    let commas = unescaped_commas(group_dn);
    commas
        .iter()
        .map(|&i| &group_dn[i + 1..])
        .find(|rest| {
            rest.trim_start()
                .get(..3)
                .is_some_and(|p| p.eq_ignore_ascii_case("dc="))
        })
        .or_else(|| commas.first().map(|&i| &group_dn[i + 1..]))
        .map_or(group_dn, str::trim_start)
}

fn unescaped_commas(dn: &str) -> Vec<usize> {
    let mut commas = Vec::new();
    let mut escaped = false;
    for (i, b) in dn.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b',' => commas.push(i),
            _ => {}
        }
    }
    commas
}

/// The first line of the service account's password file.
fn read_password_file(path: &Path) -> Result<String, Unavailable> {
    let unreadable = |message: String| Unavailable::File {
        key: "auth.ldap.bind_password_file",
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(unreadable("the file is empty".into()));
    }
    Ok(password.to_owned())
}

/// Adds the certificates of a PEM file to `roots`; how many were added.
pub fn load_ca_file(path: &Path, roots: &mut rustls::RootCertStore) -> Result<usize, Unavailable> {
    let unreadable = |message: String| Unavailable::File {
        key: "auth.ldap.ca_file",
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| unreadable(e.to_string()))?;
        roots.add(cert).map_err(|e| unreadable(e.to_string()))?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests;
