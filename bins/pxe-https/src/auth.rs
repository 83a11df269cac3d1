//! Authentication at the boot console (`[auth]`).
//!
//! When a decision needs a login ([`AuthGate::requires`]: `require = "all"`, an action marked
//! `auth = true`, or an unknown machine with `unknown_machines`), `/boot.ipxe/decide` answers
//! iPXE's `login` form instead of the menu, and only over HTTPS: over plain HTTP the console
//! says the login needs HTTPS and the machine moves on to its next boot device. The form POSTs
//! the user name, the password and the machine's identity to [`LOGIN_PATH`]; the answer is
//! the menu with a per-boot `auth` token (bound to the MAC, the client address and an expiry)
//! on every URL under the file root, or the form again with the reason, up to
//! `max_attempts` times per console, then `exit 1`.
//!
//! The files of an action that needed the login are refused (403) without a token that
//! verifies for the requesting MAC and address ([`AuthGate::check_file`]). Failures are
//! counted per user name and per machine; past `max_failures_per_*` within `lockout_secs`,
//! logins are refused until the window passes. Passwords are never logged, recorded or
//! echoed; the user name is recorded with every outcome on the machine's timeline.
//!
//! Accounts are local (`backend = "local"`, [`crate::auth_users`]) or in a directory
//! (`backend = "ldap"`, [`crate::auth_ldap`]). When the directory cannot be reached, the
//! login is not checked: the console says so and the machine moves on to its next boot
//! device, and nobody's failure counter grows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use netboot_config::{AuthBackend, AuthConfig, AuthRequire, Config, ResolverKind};
use netboot_core::{BootDecision, BootTarget, Deployment, MacAddr};
use netboot_ipxe::{exit_script, login_script, Script, Url};
use netboot_token::{Claims, Presented, Scope, TokenError, TokenKey};

use crate::auth_ldap::{self, Directory};
use crate::auth_users::{self, UserName};
use crate::files::path::relative_path;

/// The token context of a menu that needed no login but offers protected files.
pub const OPEN_CONTEXT: &str = "no-login";
pub use netboot_auth::form::{LoginForm, MAX_FIELD};

/// Where the login form POSTs.
pub const LOGIN_PATH: &str = "/boot.ipxe/login";
/// Token scope of logins.
pub const SCOPE: &str = "auth";
/// Protected file paths remembered at most: they come from the resolver's catalogue, not
/// from clients, so this is only a guard against a runaway resolver.
pub const MAX_PROTECTED: usize = 65_536;
/// User names and machines with recent failures remembered at most.
pub const MAX_TRACKED: usize = 16_384;

/// What the console is told when a login arrives over plain HTTP.
pub(crate) const NEEDS_HTTPS: &str =
    "This machine needs a login, which is only possible over HTTPS, trying the next boot device";
/// What the console is told when the directory cannot check a login.
const DIRECTORY_DOWN: &str =
    "The directory cannot be reached to check the login, trying the next boot device";

/// The `[auth]` policy, the failure counters and the set of protected files.
#[derive(Debug)]
pub struct AuthGate {
    config: AuthConfig,
    users_file: PathBuf,
    /// The directory, with `backend = "ldap"`.
    directory: Option<Directory>,
    key: Option<TokenKey>,
    scope: Scope,
    login_url: Url,
    /// Whether the resolver tells known machines from unknown ones (ConfigMgr does, through
    /// the ResourceID of the menu); only then does `unknown_machines` apply.
    knows_machines: bool,
    files_base: Url,
    protected: Mutex<HashSet<String>>,
    failures: Mutex<Failures>,
}

/// What the gate makes of a decision before it is rendered.
#[derive(Debug)]
pub enum Step {
    /// No login needed: render as usual.
    Open,
    /// Logged in: render with this token on the file URLs.
    Granted(String),
    /// Answer this script instead of the menu.
    Answer(Script),
}

/// Why a protected file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRefusal {
    /// No `auth` or `mac` in the query.
    NoToken,
    /// The token does not verify (forged, expired, another machine or address).
    Token(TokenError),
    /// No key to verify with.
    NoKey,
}

impl std::fmt::Display for FileRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoToken => f.write_str("no login token"),
            Self::Token(e) => write!(f, "login token: {e}"),
            Self::NoKey => f.write_str("no boot token key"),
        }
    }
}

/// The outcome of checking a login, for the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the token to hand out.
    Accepted(String),
    /// Wrong name or password, or not allowed: why, for the records.
    Refused(&'static str),
    /// Locked for this many seconds more.
    Locked(u64),
    /// Not checked: the directory could not answer (why, for the records). Not the user's
    /// failure.
    Unavailable(String),
}

impl AuthGate {
    /// The gate `config` describes, or `None` when `[auth]` is off. `key` is the site's boot
    /// token key; `files_base` and `login_url` are where the file root and [`LOGIN_PATH`] are
    /// reached.
    pub fn from_config(config: &Config, key: Option<TokenKey>, files_base: &Url) -> Option<Self> {
        if !config.auth.enabled {
            return None;
        }
        let gate = Self {
            config: config.auth.clone(),
            users_file: config.resolve_path(&config.auth.users_file),
            directory: (config.auth.backend == AuthBackend::Ldap).then(|| Directory::from_config(config)),
            key,
            scope: Scope::new(SCOPE).expect("valid scope"),
            login_url: Url::join(files_base, LOGIN_PATH),
            knows_machines: config.resolver.kind == ResolverKind::Configmgr,
            files_base: files_base.clone(),
            protected: Mutex::new(HashSet::new()),
            failures: Mutex::new(Failures::default()),
        };
        // The static catalogue is known now: its protected files are refused from the start,
        // before any machine asked for a decision.
        if config.resolver.kind == ResolverKind::Static {
            let rules = &config.resolver.static_rules;
            let whole_menus = gate.config.require == AuthRequire::All;
            for spec in &rules.actions {
                let offered_with_login = rules.machines.iter().any(|rule| {
                    [
                        (Deployment::Required, &rule.required),
                        (Deployment::Available, &rule.available),
                    ]
                    .into_iter()
                    .any(|(deployment, ids)| {
                        ids.contains(&spec.id)
                            && gate.needs_login(spec.auth || rule.auth, deployment, whole_menus)
                    })
                });
                if spec.auth || whole_menus || offered_with_login {
                    gate.protect(&spec.target);
                }
            }
        }
        if gate.key.is_none() {
            tracing::warn!("no boot token key: machines that must log in cannot boot");
        }
        Some(gate)
    }

    /// Where the users file is.
    pub fn users_file(&self) -> &std::path::Path {
        &self.users_file
    }

    /// Whether `decision` needs a login first, and which of its actions' files are
    /// protected from now on.
    pub fn requires(&self, decision: &BootDecision) -> bool {
        let BootDecision::Boot(menu) = decision else {
            return false;
        };
        let whole_menu = self.config.require == AuthRequire::All
            || (self.config.unknown_machines && self.knows_machines && menu.resource_id.is_none());
        let mut required = false;
        for action in menu
            .entries
            .iter()
            .filter(|a| self.needs_login(a.auth, a.deployment, whole_menu))
        {
            self.protect(&action.target);
            required = true;
        }
        required
    }

    /// Whether an action offered as `deployment` needs a login: marked `auth` (by itself or
    /// its machine rule), in a menu that needs one as a whole, or Available under
    /// `require = "available"`. The one statement of the policy, for decisions and for the
    /// static catalogue protected at start.
    fn needs_login(&self, auth: bool, deployment: Deployment, whole_menu: bool) -> bool {
        whole_menu
            || auth
            || (self.config.require == AuthRequire::Available && deployment == Deployment::Available)
    }

    /// What to answer for a decision that needs a login: the form (`login` is `None`: a
    /// plain decision request), or the verdict on a submitted form.
    pub async fn step(
        &self,
        decision: &BootDecision,
        mac: MacAddr,
        peer: IpAddr,
        over_tls: bool,
        login: Option<&LoginForm>,
        now: SystemTime,
    ) -> (Step, Option<(String, Verdict)>) {
        if !self.requires(decision) {
            return (self.open_step(decision, mac, peer, now), None);
        }
        if !over_tls {
            tracing::warn!(%mac, remote = %peer, "login needed but asked over plain HTTP, sending the machine on");
            return (Step::Answer(exit_script(Some(NEEDS_HTTPS))), None);
        }
        let Some(login) = login else {
            tracing::info!(%mac, remote = %peer, "login asked before the menu");
            return (Step::Answer(login_script(&self.login_url, &[], 1)), None);
        };
        let verdict = self.verify(login, mac, peer, now).await;
        let step = match &verdict {
            Verdict::Accepted(token) => Step::Granted(token.clone()),
            Verdict::Locked(secs) => Step::Answer(exit_script(Some(&locked_message(*secs)))),
            Verdict::Unavailable(_) => Step::Answer(exit_script(Some(DIRECTORY_DOWN))),
            Verdict::Refused(_) if login.attempt >= self.config.max_attempts => Step::Answer(exit_script(
                Some("Wrong user name or password, too many attempts, trying the next boot device"),
            )),
            Verdict::Refused(_) => {
                let left = self.config.max_attempts - login.attempt;
                let notice = format!(
                    "Wrong user name or password ({left} attempt{} left)",
                    if left == 1 { "" } else { "s" }
                );
                Step::Answer(login_script(&self.login_url, &[notice], login.attempt + 1))
            }
        };
        (step, Some((login.username.clone(), verdict)))
    }

    /// Checks a submitted login against the lockouts, then the users file or the directory.
    async fn verify(&self, login: &LoginForm, mac: MacAddr, peer: IpAddr, now: SystemTime) -> Verdict {
        let now_secs = unix_seconds(now);
        let user_key = login.username.to_ascii_lowercase();
        let locked = {
            let failures = self.failures.lock().expect("failure counters poisoned");
            let window = self.config.lockout_secs;
            let user = failures
                .by_user
                .get(&user_key)
                .and_then(|f| locked_for(f, self.config.max_failures_per_user, window, now_secs));
            let machine = failures
                .by_machine
                .get(&mac)
                .and_then(|f| locked_for(f, self.config.max_failures_per_machine, window, now_secs));
            user.max(machine)
        };
        if let Some(secs) = locked {
            tracing::warn!(user = %display_user(&login.username), %mac, remote = %peer, "login refused: locked");
            return Verdict::Locked(secs);
        }
        let checked = match &self.directory {
            Some(directory) => match directory.verify(&login.username, &login.password).await {
                auth_ldap::Outcome::Accepted => Ok(()),
                auth_ldap::Outcome::Refused(refusal) => Err(refusal.reason()),
                auth_ldap::Outcome::Unavailable(error) => {
                    // Not the user's failure: no counter grows, and the console is told.
                    tracing::error!(user = %display_user(&login.username), %mac, remote = %peer, %error, "login not checked: the directory cannot be reached");
                    return Verdict::Unavailable(error.to_string());
                }
            },
            None => self.verify_local(login).await,
        };
        let token = match checked {
            Ok(()) => self.issue(mac, peer, &token_context(&login.username), now_secs),
            Err(_) => None,
        };
        match token {
            Some(token) => {
                tracing::info!(user = %display_user(&login.username), %mac, remote = %peer, "login accepted");
                Verdict::Accepted(token)
            }
            None => {
                let reason = match checked {
                    Ok(()) => {
                        tracing::error!(%mac, "login accepted but no token can be issued (no boot token key)");
                        "no boot token key"
                    }
                    Err(reason) => reason,
                };
                self.failed(&user_key, mac, now_secs);
                tracing::warn!(user = %display_user(&login.username), %mac, remote = %peer, attempt = login.attempt, reason, "login refused");
                Verdict::Refused(reason)
            }
        }
    }

    /// Checks a login against the local users file (read again for every login).
    async fn verify_local(&self, login: &LoginForm) -> Result<(), &'static str> {
        let users_file = self.users_file.clone();
        let (username, password) = (login.username.clone(), login.password.clone());
        let accepted = tokio::task::spawn_blocking(move || match auth_users::load(&users_file) {
            Ok(users) => Ok(auth_users::verify(&users, &username, &password)),
            Err(e) => Err(format!("{e:#}")),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match accepted {
            Ok(true) if UserName::new(&login.username).is_some() => Ok(()),
            Ok(_) => Err("wrong user name or password"),
            Err(error) => {
                tracing::error!(%error, "the auth users file cannot be read, refusing every login");
                Err("the users file cannot be read")
            }
        }
    }

    /// A login token for `mac` at `peer`, from `now` (Unix seconds); `None` without a key.
    pub(crate) fn issue(&self, mac: MacAddr, peer: IpAddr, user: &str, now: u64) -> Option<String> {
        let key = self.key.as_ref()?;
        let expires_at = now.saturating_add(u64::from(self.config.token_minutes) * 60);
        let claims = Claims::new(self.scope.clone(), mac, peer, expires_at, user).ok()?;
        Some(key.issue(&claims).as_str().to_owned())
    }

    fn failed(&self, user: &str, mac: MacAddr, now: u64) {
        let mut failures = self.failures.lock().expect("failure counters poisoned");
        let window = self.config.lockout_secs;
        failures.forget_before(now.saturating_sub(window));
        let Failures { by_user, by_machine } = &mut *failures;
        record_failure(by_user, user.to_owned(), now);
        record_failure(by_machine, mac, now);
    }

    /// The step of a decision that needs no login. Files one machine may only have after a
    /// login can be another's without one (an action Available with a login here, Required
    /// there): the open menu still needs a token on them, issued without a login to this
    /// machine and address.
    pub(crate) fn open_step(
        &self,
        decision: &BootDecision,
        mac: MacAddr,
        peer: IpAddr,
        now: SystemTime,
    ) -> Step {
        if self.offers_protected(decision) {
            if let Some(token) = self.issue(mac, peer, OPEN_CONTEXT, unix_seconds(now)) {
                return Step::Granted(token);
            }
        }
        Step::Open
    }

    /// Whether a menu offers a file that is protected.
    fn offers_protected(&self, decision: &BootDecision) -> bool {
        let BootDecision::Boot(menu) = decision else {
            return false;
        };
        let protected = self.protected.lock().expect("protected files poisoned");
        menu.entries
            .iter()
            .flat_map(|a| references(&a.target))
            .any(|reference| {
                !Url::is_absolute_reference(reference)
                    && Url::resolve(&self.files_base, reference)
                        .ok()
                        .and_then(|url| path_key(url_path_of(url.as_str())))
                        .is_some_and(|key| protected.contains(&key))
            })
    }

    /// Whether `url_path` is a file of an action that needed a login.
    pub fn is_protected(&self, url_path: &str) -> bool {
        let Some(key) = path_key(url_path) else {
            return false;
        };
        self.protected
            .lock()
            .expect("protected files poisoned")
            .contains(&key)
    }

    /// Checks the `auth` token and `mac` in `query` for a request from `peer`.
    pub fn check_file(&self, query: Option<&str>, peer: IpAddr, now: SystemTime) -> Result<(), FileRefusal> {
        let (mut token, mut mac) = (None, None);
        for pair in query.unwrap_or("").split('&') {
            if let Some(value) = pair.strip_prefix("auth=") {
                token = token.or(Some(value));
            } else if let Some(value) = pair.strip_prefix("mac=") {
                mac = mac.or_else(|| value.replace('-', ":").parse::<MacAddr>().ok());
            }
        }
        let (Some(token), Some(mac)) = (token, mac) else {
            return Err(FileRefusal::NoToken);
        };
        let key = self.key.as_ref().ok_or(FileRefusal::NoKey)?;
        let presented = Presented {
            scope: &self.scope,
            mac,
            ip: peer,
            now: unix_seconds(now),
        };
        key.verify(token, &presented)
            .map(drop)
            .map_err(FileRefusal::Token)
    }

    fn protect(&self, target: &BootTarget) {
        let mut protected = self.protected.lock().expect("protected files poisoned");
        for reference in references(target) {
            if Url::is_absolute_reference(reference) {
                continue;
            }
            let Ok(url) = Url::resolve(&self.files_base, reference) else {
                continue;
            };
            let Some(key) = path_key(url_path_of(url.as_str())) else {
                continue;
            };
            if protected.len() >= MAX_PROTECTED && !protected.contains(&key) {
                tracing::warn!(
                    limit = MAX_PROTECTED,
                    "too many protected files, not protecting more"
                );
                return;
            }
            protected.insert(key);
        }
    }
}

/// A typed user name as it may appear in logs and records: control characters replaced, at
/// most [`crate::auth_users::MAX_NAME_LEN`] characters.
pub fn display_user(user: &str) -> String {
    user.chars()
        .take(auth_users::MAX_NAME_LEN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The token context naming who logged in: the user name with what a token context cannot
/// hold (anything but `A-Z a-z 0-9 . _ -`, such as the `@` of a UPN or the `\` of
/// `DOMAIN\user`) as `_`, cut to the longest context.
fn token_context(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(netboot_token::MAX_CONTEXT_LEN)
        .collect()
}

/// The console's words for a lockout.
fn locked_message(secs: u64) -> String {
    let minutes = secs.div_ceil(60).max(1);
    format!(
        "Too many failed logins: locked for {minutes} minute{}, trying the next boot device",
        if minutes == 1 { "" } else { "s" }
    )
}

/// The files an action loads by reference (not the wimboot program, which every Windows PE
/// entry shares, nor secret files, which have their own per-boot URLs).
fn references(target: &BootTarget) -> Vec<&str> {
    match target {
        BootTarget::Wimboot {
            boot_wim,
            bcd,
            boot_sdi,
            files,
            ..
        } => std::iter::once(boot_wim.as_str())
            .chain(bcd.as_deref())
            .chain(boot_sdi.as_deref())
            .chain(files.iter().filter(|f| !f.secret).map(|f| f.path.as_str()))
            .collect(),
        BootTarget::Linux { kernel, initrds, .. } => std::iter::once(kernel.as_str())
            .chain(initrds.iter().map(String::as_str))
            .collect(),
        BootTarget::Chain { url } => vec![url.as_str()],
        _ => Vec::new(),
    }
}

/// The path of a URL this server renders (`/a/b` or `https://host/a/b`), without its query.
fn url_path_of(url: &str) -> &str {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| {
        rest.find('/').map_or("/", |slash| &rest[slash..])
    });
    without_scheme.split(['?', '#']).next().unwrap_or("")
}

/// The key a path is protected under: decoded and normalised as the file server reads it,
/// and lower-cased, since the file roots may match names without regard to case.
fn path_key(url_path: &str) -> Option<String> {
    let path = relative_path(url_path).ok()?;
    Some(path.to_string_lossy().to_lowercase())
}

/// Seconds left on a lockout, when `failures` (oldest first) reach `max` within `window`.
fn locked_for(failures: &VecDeque<u64>, max: u32, window: u64, now: u64) -> Option<u64> {
    let recent: Vec<u64> = failures.iter().copied().filter(|&t| t + window > now).collect();
    if recent.len() < max as usize {
        return None;
    }
    // Locked until the failure that made the count reach `max` leaves the window.
    let deciding = recent[recent.len() - max as usize];
    Some((deciding + window).saturating_sub(now).max(1))
}

#[derive(Debug, Default)]
struct Failures {
    by_user: HashMap<String, VecDeque<u64>>,
    by_machine: HashMap<MacAddr, VecDeque<u64>>,
}

impl Failures {
    fn forget_before(&mut self, cutoff: u64) {
        for times in self.by_user.values_mut() {
            times.retain(|&t| t >= cutoff);
        }
        for times in self.by_machine.values_mut() {
            times.retain(|&t| t >= cutoff);
        }
        self.by_user.retain(|_, times| !times.is_empty());
        self.by_machine.retain(|_, times| !times.is_empty());
    }
}

fn record_failure<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, VecDeque<u64>>, key: K, now: u64) {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        // Full of recent failures: a flood of made-up names. Forget one of them rather than
        // grow; the per-machine counter still locks the console that sends them.
        if let Some(victim) = map.keys().next().cloned() {
            map.remove(&victim);
        }
    }
    let times = map.entry(key).or_default();
    times.push_back(now);
    // Only the last few matter for any lockout threshold.
    while times.len() > 1000 {
        times.pop_front();
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
