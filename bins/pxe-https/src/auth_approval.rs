//! Approval of boot consoles by an operator (`[auth] method = "approval"`).
//!
//! Nothing is typed at the console: where a decision needs authentication (the same cases as
//! a login, see [`crate::auth`]), `/boot.ipxe/decide` answers a script that shows a short code
//! (six characters of [`CODE_ALPHABET`], from the system's CSPRNG), waits `approval_poll_secs`
//! and POSTs the code with the machine's identity to [`APPROVAL_PATH`]. An operator approves
//! or denies the code on the admin page (the admin crate reaches the table as an
//! [`netboot_admin::ApprovalDesk`]). While the code waits, the endpoint answers the waiting
//! script again; once approved, the menu with a login token, exactly as after a good
//! password; denied, expired, unknown or shown to another machine or address: the way to the
//! next boot device. `approval_minutes` bounds the wait, so no console polls forever.
//!
//! A code is bound to the MAC and client address that asked; the same machine asking again
//! while its code waits gets the same code. At most [`MAX_PENDING`] codes wait at once; past
//! that, new consoles are told to try later. Approvals and denials are on the machine's
//! timeline with the operator's name, and so is a code its console found expired (one whose
//! console stopped asking is only purged).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use netboot_admin::{ApprovalDecision, ApprovalDesk, ApprovalError, PendingApproval};
use netboot_config::{AuthMethod, Config};
use netboot_core::{BootDecision, BootRequest, MacAddr, SmbiosUuid};
use netboot_ipxe::{approval_wait_script, exit_script, Identifier, Url};
use netboot_records::{ApprovalOutcome, ApprovalRecord, Event, EventDetail, Recorder};

use crate::auth::{AuthGate, Step, NEEDS_HTTPS};

/// Where the waiting script POSTs its code.
pub const APPROVAL_PATH: &str = "/boot.ipxe/approval";
/// The characters of a code: digits and capitals without the ones read as others (0/O, 1/I/L,
/// U/V).
pub const CODE_ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code: 30^6 (about 7 * 10^8) codes, against at most [`MAX_PENDING`] waiting.
pub const CODE_LEN: usize = 6;
/// Codes waiting at most.
pub const MAX_PENDING: usize = 1024;
/// The longest machine description kept (what the machine reported about itself).
const MAX_MACHINE_CHARS: usize = 120;
/// The token context of an approved boot (the operator's name is on the timeline instead).
const TOKEN_CONTEXT: &str = "approval";

/// The code a console POSTs with its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPoll {
    /// Upper-cased; empty when missing or not a code.
    pub code: String,
}

impl ApprovalPoll {
    /// Reads `code` from an `application/x-www-form-urlencoded` body; other keys (the
    /// machine's identity) are left to [`netboot_ipxe::ClientIdentity::parse_form`]. Never
    /// fails: anything but a well-formed code reads as an empty one, which no console has.
    pub fn parse(body: &[u8]) -> Self {
        let code = body
            .split(|&b| b == b'&')
            .find_map(|pair| pair.strip_prefix(b"code="))
            .map(normalise_code)
            .unwrap_or_default();
        Self { code }
    }
}

/// `code` upper-cased, or empty when it is not [`CODE_LEN`] characters of [`CODE_ALPHABET`].
fn normalise_code(code: &[u8]) -> String {
    let upper = code.to_ascii_uppercase();
    if upper.len() == CODE_LEN && upper.iter().all(|b| CODE_ALPHABET.contains(b)) {
        String::from_utf8(upper).unwrap_or_default()
    } else {
        String::new()
    }
}

/// Where a console's code stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Waiting,
    Approved(String),
    Denied(String),
}

/// A console's code and what it is bound to. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    code: String,
    mac: MacAddr,
    ip: IpAddr,
    uuid: Option<SmbiosUuid>,
    machine: Option<String>,
    requested: u64,
    expires: u64,
    state: State,
}

/// What a console asking to wait gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opened {
    /// Its code, new or the one it already waits with.
    Waiting(Entry),
    /// [`Table::max`] codes wait already.
    Full,
    /// The system has no randomness to make a code from.
    NoRandomness,
}

/// What a console's poll finds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Polled {
    Waiting(Entry),
    Approved(Entry, String),
    Denied(Entry, String),
    /// Nobody decided in time; the code is gone.
    Expired(Entry),
    /// No such code (never made, already picked up, or purged).
    Unknown,
    /// The code waits for another MAC or address.
    OtherMachine,
}

/// The codes waiting, approved or denied but not yet picked up by their console.
#[derive(Debug)]
struct Table {
    entries: HashMap<String, Entry>,
    /// How long a code waits for an operator.
    wait_secs: u64,
    /// How long a decided code stays for its console to pick it up, however little of its
    /// wait was left when the operator decided.
    pickup_secs: u64,
    max: usize,
}

impl Table {
    fn new(wait_secs: u64, pickup_secs: u64, max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            wait_secs,
            pickup_secs,
            max,
        }
    }

    fn purge(&mut self, now: u64) {
        self.entries.retain(|_, entry| entry.expires > now);
    }

    /// The code of the console at `mac` and `ip`: the one it waits with, or a new one.
    fn open(
        &mut self,
        request: &BootRequest,
        ip: IpAddr,
        now: u64,
        random: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Opened {
        self.purge(now);
        if let Some(waiting) = self
            .entries
            .values()
            .find(|e| e.mac == request.mac && e.ip == ip && e.state == State::Waiting)
        {
            return Opened::Waiting(waiting.clone());
        }
        // A decided code of this console that it never picked up gives way to the new one.
        self.entries.retain(|_, e| !(e.mac == request.mac && e.ip == ip));
        if self.entries.len() >= self.max {
            return Opened::Full;
        }
        // With at most `max` of 30^6 codes taken, a repeat is rare; many in a row mean the
        // randomness is broken.
        let Some(code) = (0..32)
            .filter_map(|_| new_code(random))
            .find(|code| !self.entries.contains_key(code))
        else {
            return Opened::NoRandomness;
        };
        let entry = Entry {
            code: code.clone(),
            mac: request.mac,
            ip,
            uuid: request.uuid,
            machine: describe(request),
            requested: now,
            expires: now.saturating_add(self.wait_secs),
            state: State::Waiting,
        };
        self.entries.insert(code, entry.clone());
        Opened::Waiting(entry)
    }

    /// What the console at `mac` and `ip` polling with `code` gets; a decision or expiry is
    /// handed out once and the code is forgotten.
    fn poll(&mut self, code: &str, mac: MacAddr, ip: IpAddr, now: u64) -> Polled {
        let Some(entry) = self.entries.get(code) else {
            return Polled::Unknown;
        };
        if entry.mac != mac || entry.ip != ip {
            return Polled::OtherMachine;
        }
        if entry.expires <= now {
            let entry = self.entries.remove(code).expect("just found");
            return Polled::Expired(entry);
        }
        match entry.state.clone() {
            State::Waiting => Polled::Waiting(entry.clone()),
            State::Approved(by) => Polled::Approved(self.entries.remove(code).expect("just found"), by),
            State::Denied(by) => Polled::Denied(self.entries.remove(code).expect("just found"), by),
        }
    }

    /// An operator's decision on a waiting `code`.
    fn decide(
        &mut self,
        code: &str,
        decision: ApprovalDecision,
        operator: &str,
        now: u64,
    ) -> Result<Entry, ApprovalError> {
        let code = code.to_ascii_uppercase();
        let entry = self
            .entries
            .get_mut(&code)
            .filter(|entry| entry.expires > now)
            .ok_or_else(|| ApprovalError::Unknown(code.clone()))?;
        match &entry.state {
            State::Waiting => {}
            State::Approved(_) => return Err(ApprovalError::AlreadyDecided(code, "approved")),
            State::Denied(_) => return Err(ApprovalError::AlreadyDecided(code, "denied")),
        }
        entry.state = match decision {
            ApprovalDecision::Approve => State::Approved(operator.to_owned()),
            ApprovalDecision::Deny => State::Denied(operator.to_owned()),
        };
        entry.expires = entry.expires.max(now.saturating_add(self.pickup_secs));
        Ok(entry.clone())
    }

    /// The codes still waiting for a decision, oldest first.
    fn waiting(&self, now: u64) -> Vec<Entry> {
        let mut waiting: Vec<Entry> = self
            .entries
            .values()
            .filter(|e| e.state == State::Waiting && e.expires > now)
            .cloned()
            .collect();
        waiting.sort_by(|a, b| (a.requested, &a.code).cmp(&(b.requested, &b.code)));
        waiting
    }
}

/// A fresh code from `random` (rejection sampling, so every character is equally likely), or
/// `None` without randomness.
fn new_code(random: &mut dyn FnMut(&mut [u8]) -> bool) -> Option<String> {
    // The largest multiple of the alphabet's size that fits a byte.
    let limit = (256 / CODE_ALPHABET.len() * CODE_ALPHABET.len()) as u8;
    let mut code = String::with_capacity(CODE_LEN);
    // Over 93% of bytes are kept: a handful of rounds at most, in practice one.
    for _ in 0..64 {
        let mut bytes = [0u8; 16];
        if !random(&mut bytes) {
            return None;
        }
        for byte in bytes.into_iter().filter(|&b| b < limit) {
            code.push(char::from(CODE_ALPHABET[usize::from(byte) % CODE_ALPHABET.len()]));
            if code.len() == CODE_LEN {
                return Some(code);
            }
        }
    }
    None
}

/// What the machine reported about itself, for the operator: `manufacturer product (serial
/// S)`.
fn describe(request: &BootRequest) -> Option<String> {
    let hardware = &request.hardware;
    let mut text = [&hardware.manufacturer, &hardware.product]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(serial) = hardware
        .serial
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("(serial {serial})"));
    }
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_MACHINE_CHARS)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// The consoles waiting for approval, with the way to answer them.
#[derive(Debug)]
pub struct Approvals {
    table: Mutex<Table>,
    poll_secs: u32,
    approval_url: Url,
    recorder: Recorder,
}

impl Approvals {
    /// The table `[auth]` describes, or `None` unless `enabled` with `method = "approval"`.
    /// `files_base` is where [`APPROVAL_PATH`] is reached; decisions and expiries are
    /// recorded through `recorder`.
    pub fn from_config(config: &Config, files_base: &Url, recorder: Recorder) -> Option<Self> {
        let auth = &config.auth;
        if !auth.enabled || auth.method != AuthMethod::Approval {
            return None;
        }
        let poll_secs = auth.approval_poll_secs;
        Some(Self {
            table: Mutex::new(Table::new(
                u64::from(auth.approval_minutes) * 60,
                // Two polls and some: a console sleeping when the decision came still finds it.
                u64::from(poll_secs) * 2 + 30,
                MAX_PENDING,
            )),
            poll_secs,
            approval_url: Url::join(files_base, APPROVAL_PATH),
            recorder,
        })
    }

    /// What to answer for a decision when consoles are approved: the menu as usual when it
    /// needs no authentication, else the waiting script, the menu with a token once approved,
    /// or the way to the next boot device. `request.remote` is the console's address; `poll`
    /// is the code of a console that waits.
    pub fn step(
        &self,
        gate: &AuthGate,
        decision: &BootDecision,
        request: &BootRequest,
        over_tls: bool,
        poll: Option<&ApprovalPoll>,
        now: SystemTime,
    ) -> Step {
        let mac = request.mac;
        if !gate.requires(decision) {
            return match request.remote {
                Some(peer) => gate.open_step(decision, mac, peer, now),
                None => Step::Open,
            };
        }
        let Some(peer) = request.remote else {
            tracing::error!(%mac, "approval needed but the console's address is unknown");
            return Step::Answer(exit_script(Some(
                "No approval is possible for this machine, trying the next boot device",
            )));
        };
        if !over_tls {
            tracing::warn!(%mac, remote = %peer, "approval needed but asked over plain HTTP, sending the machine on");
            return Step::Answer(exit_script(Some(NEEDS_HTTPS)));
        }
        let now_secs = unix_seconds(now);
        let mut table = self.table.lock().expect("approval table poisoned");
        let Some(poll) = poll else {
            return match table.open(request, peer, now_secs, &mut |buf| {
                getrandom::getrandom(buf).is_ok()
            }) {
                Opened::Waiting(entry) => {
                    tracing::info!(%mac, remote = %peer, code = %entry.code, "waiting for an operator's approval");
                    self.wait(&entry, now_secs)
                }
                Opened::Full => {
                    tracing::warn!(%mac, remote = %peer, limit = MAX_PENDING, "too many consoles waiting for approval");
                    Step::Answer(exit_script(Some(
                        "Too many machines are waiting for approval, try again later; trying the next boot device",
                    )))
                }
                Opened::NoRandomness => {
                    tracing::error!("no randomness for an approval code");
                    Step::Answer(exit_script(Some(
                        "No approval code can be made now, trying the next boot device",
                    )))
                }
            };
        };
        match table.poll(&poll.code, mac, peer, now_secs) {
            Polled::Waiting(entry) => self.wait(&entry, now_secs),
            Polled::Approved(entry, by) => {
                drop(table);
                match gate.issue(mac, peer, TOKEN_CONTEXT, now_secs) {
                    Some(token) => {
                        tracing::info!(%mac, remote = %peer, code = %entry.code, operator = %by, "approved console gets its menu");
                        Step::Granted(token)
                    }
                    None => {
                        tracing::error!(%mac, "console approved but no token can be issued (no boot token key)");
                        Step::Answer(exit_script(Some(
                            "Approved, but this server cannot issue a login token; trying the next boot device",
                        )))
                    }
                }
            }
            Polled::Denied(entry, by) => {
                tracing::info!(%mac, remote = %peer, code = %entry.code, operator = %by, "denied console sent on");
                Step::Answer(exit_script(Some(
                    "An operator denied this machine, trying the next boot device",
                )))
            }
            Polled::Expired(entry) => {
                drop(table);
                tracing::info!(%mac, remote = %peer, code = %entry.code, "approval code expired unanswered");
                self.record(&entry, None, ApprovalOutcome::Expired);
                Step::Answer(exit_script(Some(
                    "Nobody approved this machine in time, trying the next boot device",
                )))
            }
            Polled::Unknown => {
                tracing::warn!(%mac, remote = %peer, "poll with an unknown approval code");
                Step::Answer(exit_script(Some(
                    "Unknown approval code, trying the next boot device",
                )))
            }
            Polled::OtherMachine => {
                tracing::warn!(%mac, remote = %peer, "poll with another machine's approval code");
                Step::Answer(exit_script(Some(
                    "This approval code is not this machine's, trying the next boot device",
                )))
            }
        }
    }

    /// The waiting script for `entry`.
    fn wait(&self, entry: &Entry, now: u64) -> Step {
        let minutes = entry.expires.saturating_sub(now).div_ceil(60).max(1);
        let lines = [
            format!(
                "Approval code: {} - ask an operator to approve this machine (MAC {})",
                entry.code, entry.mac
            ),
            format!(
                "The code expires in {minutes} minute{}",
                if minutes == 1 { "" } else { "s" }
            ),
        ];
        let code = Identifier::new("approval code", &entry.code).expect("codes are identifiers");
        Step::Answer(approval_wait_script(
            &self.approval_url,
            &code,
            &lines,
            self.poll_secs,
        ))
    }

    fn record(&self, entry: &Entry, operator: Option<&str>, outcome: ApprovalOutcome) {
        let record = ApprovalRecord {
            code: entry.code.clone(),
            operator: operator.map(str::to_owned),
            outcome,
        };
        self.recorder.record(
            Event::now(entry.mac, EventDetail::Approval(record))
                .with_uuid(entry.uuid)
                .with_ip(Some(entry.ip)),
        );
    }
}

impl ApprovalDesk for Approvals {
    fn pending(&self) -> Vec<PendingApproval> {
        let now = unix_seconds(SystemTime::now());
        let table = self.table.lock().expect("approval table poisoned");
        table.waiting(now).iter().map(pending).collect()
    }

    fn decide(
        &self,
        code: &str,
        decision: ApprovalDecision,
        operator: &str,
    ) -> Result<PendingApproval, ApprovalError> {
        let now = unix_seconds(SystemTime::now());
        let entry = self
            .table
            .lock()
            .expect("approval table poisoned")
            .decide(code, decision, operator, now)?;
        let outcome = match decision {
            ApprovalDecision::Approve => ApprovalOutcome::Approved,
            ApprovalDecision::Deny => ApprovalOutcome::Denied,
        };
        tracing::info!(mac = %entry.mac, remote = %entry.ip, code = %entry.code, operator, decision = decision.past_tense(), "boot console decided");
        self.record(&entry, Some(operator), outcome);
        Ok(pending(&entry))
    }
}

fn pending(entry: &Entry) -> PendingApproval {
    PendingApproval {
        code: entry.code.clone(),
        mac: entry.mac,
        ip: entry.ip,
        machine: entry.machine.clone(),
        requested: utc(entry.requested),
        expires: utc(entry.expires),
    }
}

fn utc(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
