//! What happened during a boot: one [`Event`] per step, keyed by MAC (and UUID when known).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use netboot_core::{BootDecision, BootStage, ClientArch, HardwareInfo, MacAddr, SmbiosUuid};
use serde::{Deserialize, Serialize};

/// One step of one machine's boot.
///
/// ```
/// use netboot_records::{Event, EventDetail, TftpTransfer};
/// let mac = "52:54:00:12:34:56".parse().unwrap();
/// let event = Event::now(mac, EventDetail::TftpTransfer(TftpTransfer {
///     file: "ipxe.efi".into(), bytes: 1_048_576, duration_ms: 180, ..TftpTransfer::default()
/// }));
/// assert!(event.detail.is_ok());
/// assert_eq!(event.detail.stage().as_str(), "tftp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (UTC, millisecond precision once stored).
    pub at: DateTime<Utc>,
    /// The machine's MAC address.
    pub mac: MacAddr,
    /// The machine's SMBIOS UUID, when the protocol carried it.
    pub uuid: Option<SmbiosUuid>,
    /// The client's IP address, when it had one. Services that only see an address (TFTP)
    /// are matched to a MAC through it.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// What happened.
    pub detail: EventDetail,
}

impl Event {
    /// An event stamped with the current time.
    #[must_use]
    pub fn now(mac: MacAddr, detail: EventDetail) -> Self {
        Self {
            at: Utc::now(),
            mac,
            uuid: None,
            ip: None,
            detail,
        }
    }

    /// Adds the client's address (ignored when unspecified, as in a DHCPDISCOVER).
    #[must_use]
    pub fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip.filter(|ip| !ip.is_unspecified());
        self
    }

    /// Adds the machine's UUID.
    #[must_use]
    pub fn with_uuid(mut self, uuid: Option<SmbiosUuid>) -> Self {
        self.uuid = uuid.filter(|u| !u.is_placeholder());
        self
    }
}

/// The service that saw an event, which is also its place in the boot journey
/// (DHCP → TFTP → HTTPS → image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// proxyDHCP offer or PXE boot-server reply.
    Dhcp,
    /// TFTP download of a boot program.
    Tftp,
    /// iPXE script entry and decision over HTTP(S).
    Https,
    /// Boot image download (wimboot, BCD, WIM, kernel, initrd).
    Image,
}

impl Stage {
    /// Every stage in journey order.
    pub const ALL: [Self; 4] = [Self::Dhcp, Self::Tftp, Self::Https, Self::Image];

    /// The lowercase name used in the database and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dhcp => "dhcp",
            Self::Tftp => "tftp",
            Self::Https => "https",
            Self::Image => "image",
        }
    }

    /// Parses [`Stage::as_str`] output.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The kinds of event and their facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventDetail {
    /// The proxyDHCP service answered a PXE client.
    ProxyOffer(ProxyOffer),
    /// A TFTP read transfer ended (completed or not).
    TftpTransfer(TftpTransfer),
    /// iPXE called the entry script and reported its identity.
    HttpsEntry(HttpsEntry),
    /// A boot decision was made and sent.
    Decision(DecisionRecord),
    /// A boot file was downloaded over HTTP(S).
    ImageDownload(ImageDownload),
    /// A step failed; the cause says why.
    Error(ErrorRecord),
    /// A Required deployment ran, was offered as Available because it ran, or was cleared.
    RequiredRun(RequiredRunRecord),
    /// Someone logged in at the machine's boot console, or failed to.
    Login(LoginRecord),
    /// An operator approved or denied the machine's boot console, or its code expired.
    Approval(ApprovalRecord),
}

impl EventDetail {
    /// The stored name of the kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ProxyOffer(_) => "proxy_offer",
            Self::TftpTransfer(_) => "tftp_transfer",
            Self::HttpsEntry(_) => "https_entry",
            Self::Decision(_) => "decision",
            Self::ImageDownload(_) => "image_download",
            Self::Error(_) => "error",
            Self::RequiredRun(_) => "required_run",
            Self::Login(_) => "login",
            Self::Approval(_) => "approval",
        }
    }

    /// The journey stage this event belongs to.
    #[must_use]
    pub fn stage(&self) -> Stage {
        match self {
            Self::ProxyOffer(_) => Stage::Dhcp,
            Self::TftpTransfer(_) => Stage::Tftp,
            Self::HttpsEntry(_) | Self::Decision(_) => Stage::Https,
            Self::ImageDownload(_) => Stage::Image,
            Self::Error(e) => e.stage,
            Self::RequiredRun(r) if r.change == RequiredChange::Ran => Stage::Image,
            Self::RequiredRun(_) | Self::Login(_) | Self::Approval(_) => Stage::Https,
        }
    }

    /// Whether the step succeeded.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        match self {
            Self::TftpTransfer(t) => t.error.is_none(),
            Self::ImageDownload(d) => d.error.is_none() && d.status < 400,
            Self::Error(_) => false,
            Self::Login(l) => l.outcome == LoginOutcome::Accepted,
            Self::Approval(a) => a.outcome == ApprovalOutcome::Approved,
            Self::ProxyOffer(_) | Self::HttpsEntry(_) | Self::Decision(_) | Self::RequiredRun(_) => true,
        }
    }

    /// Whether this event begins a new boot: the firmware's first proxyDHCP answer. The
    /// answers to iPXE's own DHCP and to the port 4011 request belong to the same boot.
    #[must_use]
    pub fn starts_boot(&self) -> bool {
        matches!(self, Self::ProxyOffer(o) if o.stage == BootStage::PxeFirmware && o.server_port != 4011)
            || matches!(self, Self::ProxyOffer(o) if o.stage == BootStage::UefiHttp)
    }

    /// How long the step took, when it has a duration.
    #[must_use]
    pub fn duration_ms(&self) -> Option<u64> {
        match self {
            Self::TftpTransfer(t) => Some(t.duration_ms),
            Self::ImageDownload(d) => Some(d.duration_ms),
            Self::Decision(d) => Some(d.duration_ms),
            Self::ProxyOffer(_)
            | Self::HttpsEntry(_)
            | Self::Error(_)
            | Self::RequiredRun(_)
            | Self::Login(_)
            | Self::Approval(_) => None,
        }
    }

    /// Whether the event is a step of the machine's boot. An administrator clearing its
    /// Required runs is not: it leaves the machine's record (last seen, last outcome) alone.
    #[must_use]
    pub fn is_boot_step(&self) -> bool {
        !matches!(self, Self::RequiredRun(r) if r.change == RequiredChange::Cleared)
    }

    /// The client architecture the event reports, if any.
    #[must_use]
    pub fn arch(&self) -> Option<ClientArch> {
        match self {
            Self::ProxyOffer(o) => Some(o.arch),
            Self::HttpsEntry(e) => e.arch,
            _ => None,
        }
    }

    /// Where the machine stands after this event, for its record's "last outcome".
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        if !self.is_ok() {
            return Outcome::Failed;
        }
        match self {
            Self::ProxyOffer(_) => Outcome::Offered,
            Self::TftpTransfer(_) => Outcome::BootProgramLoaded,
            Self::HttpsEntry(_) => Outcome::IpxeStarted,
            Self::Decision(d) if d.kind == DecisionKind::Boot => Outcome::Decided,
            Self::Decision(_) => Outcome::Exited,
            Self::ImageDownload(_) => Outcome::ImageLoaded,
            Self::Error(_) => Outcome::Failed,
            Self::RequiredRun(r) if r.change == RequiredChange::Ran => Outcome::ImageLoaded,
            Self::RequiredRun(_) => Outcome::Decided,
            // A login is a step between the decision to ask and the menu it unlocks.
            Self::Login(_) | Self::Approval(_) => Outcome::IpxeStarted,
        }
    }
}

/// How far a machine's latest boot got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It received a proxyDHCP offer.
    Offered,
    /// It downloaded its boot program over TFTP.
    BootProgramLoaded,
    /// iPXE runs and fetched its entry script.
    IpxeStarted,
    /// It was told what to boot.
    Decided,
    /// It was told to leave network boot (boot from disk, or ignored).
    Exited,
    /// It downloaded a boot image.
    ImageLoaded,
    /// A step failed.
    Failed,
}

impl Outcome {
    /// Every outcome, in journey order.
    pub const ALL: [Self; 7] = [
        Self::Offered,
        Self::BootProgramLoaded,
        Self::IpxeStarted,
        Self::Decided,
        Self::Exited,
        Self::ImageLoaded,
        Self::Failed,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::BootProgramLoaded => "boot_program_loaded",
            Self::IpxeStarted => "ipxe_started",
            Self::Decided => "decided",
            Self::Exited => "exited",
            Self::ImageLoaded => "image_loaded",
            Self::Failed => "failed",
        }
    }

    /// Parses [`Outcome::as_str`] output.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// A proxyDHCP (port 67) or PXE boot-server (port 4011) answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProxyOffer {
    /// Client architecture (DHCP option 93).
    pub arch: ClientArch,
    /// Which program asked: firmware PXE, UEFI HTTP Boot or iPXE.
    pub stage: BootStage,
    /// Firmware kind as classified by the proxy (`bios`, `uefi`, `ipxe`, ...).
    pub firmware: String,
    /// Relay agent address (giaddr) when the request was relayed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub relay: Option<IpAddr>,
    /// Network interface identifier (option 94, e.g. `UNDI 2.1`).
    pub nic: Option<String>,
    /// The boot file offered.
    pub boot_file: Option<String>,
    /// The port the request came in on (67 or 4011).
    pub server_port: u16,
    /// iPXE features from DHCP option 175 (`HTTPS`, `EFI`, or the code in hex), when iPXE
    /// sent them.
    #[serde(default)]
    pub ipxe_features: Vec<String>,
}

/// A finished TFTP read transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TftpTransfer {
    /// Requested file name.
    pub file: String,
    /// Negotiated block size, when the option was acknowledged.
    pub blksize: Option<u16>,
    /// Negotiated RFC 7440 window size.
    pub windowsize: Option<u16>,
    /// Transfer size reported to the client.
    pub tsize: Option<u64>,
    /// Bytes of file data sent.
    pub bytes: u64,
    /// From request to last acknowledgement.
    pub duration_ms: u64,
    /// Packets sent again after a timeout or a duplicate acknowledgement.
    pub retransmits: u32,
    /// Why the transfer ended early; `None` when it completed.
    pub error: Option<String>,
}

/// iPXE's call to the entry or decision endpoint, with what it says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HttpsEntry {
    /// Client architecture as iPXE reported it.
    pub arch: Option<ClientArch>,
    /// SMBIOS facts and iPXE platform/build architecture.
    pub hardware: HardwareInfo,
    /// iPXE version string, when sent.
    pub ipxe_version: Option<String>,
    /// iPXE features (DHCP option 175 / `${features}`), e.g. `HTTPS`, `EFI`, `Menu`.
    pub features: Vec<String>,
    /// Whether the request came over TLS.
    pub tls: bool,
}

/// The shape of a boot decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Something to boot (a menu or a single action).
    Boot,
    /// Leave network boot.
    Exit,
    /// Stay silent.
    Ignore,
    /// The resolver failed and the configured fallback was served.
    Fallback,
}

/// A boot decision as it was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    /// Which resolver answered (`static`, `configmgr`, ...).
    pub resolver: String,
    /// What kind of answer it was (stored as `decision`: `kind` names the event kind).
    #[serde(rename = "decision")]
    pub kind: DecisionKind,
    /// Titles of the menu entries offered.
    pub entries: Vec<String>,
    /// The entry chosen or booted automatically, when known.
    pub choice: Option<String>,
    /// Time the resolver took.
    pub duration_ms: u64,
}

impl DecisionRecord {
    /// Summarises a resolver's answer.
    #[must_use]
    pub fn from_decision(resolver: &str, decision: &BootDecision, duration_ms: u64) -> Self {
        let (kind, entries, choice) = match decision {
            BootDecision::Boot(menu) if !menu.entries.is_empty() => {
                let entries: Vec<String> = menu.entries.iter().map(|a| a.title.clone()).collect();
                let choice = menu.first_required().map(|a| a.title.clone());
                (DecisionKind::Boot, entries, choice)
            }
            BootDecision::Ignore => (DecisionKind::Ignore, Vec::new(), None),
            // Exit, an empty menu, and any kind added to the core later all leave network boot.
            _ => (DecisionKind::Exit, Vec::new(), None),
        };
        Self {
            resolver: resolver.to_string(),
            kind,
            entries,
            choice,
            duration_ms,
        }
    }
}

/// A boot file served over HTTP(S).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageDownload {
    /// Path requested.
    pub path: String,
    /// Bytes sent.
    pub bytes: u64,
    /// The `Range` header, when the client asked for part of the file.
    pub range: Option<String>,
    /// From request to last byte written.
    pub duration_ms: u64,
    /// HTTP status sent.
    pub status: u16,
    /// Why the download did not complete, when it did not.
    pub error: Option<String>,
    /// What a BranchCache (PeerDist) client asked for and got, when it asked with PeerDist
    /// headers: the file's Content Information, or a range no peer had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peerdist: Option<PeerDistDelivery>,
}

/// How a BranchCache (PeerDist) client was served. A client that received Content
/// Information for `content_bytes` took from the server only what its missing-data ranges
/// add up to; the rest came from peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PeerDistDelivery {
    /// Content Information was sent instead of the file's bytes.
    ContentInformation {
        /// Content Information version, `1.0` or `2.0`.
        version: String,
        /// Length of the file it describes.
        content_bytes: u64,
    },
    /// A range the client could get from no peer (`MissingDataRequest`), sent as bytes.
    MissingData,
    /// The client asked for Content Information before it was computed and got the bytes.
    NotReady,
}

/// A failure with its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorRecord {
    /// Where it failed.
    pub stage: Stage,
    /// Why, in words an administrator can act on.
    pub cause: String,
}

/// What happened to a Required deployment of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequiredChange {
    /// The machine downloaded its boot image to the end: it ran, and is offered as Available
    /// from now on.
    Ran,
    /// A decision offered it as Available because the machine ran it.
    OfferedAsAvailable,
    /// A decision offered it as Available because the run records could not be read.
    Unverified,
    /// An administrator cleared the run: it is Required again.
    Cleared,
}

/// A login at a boot console: who, and whether it let the machine boot. Never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRecord {
    /// The user name given (as typed, up to the length the form accepts).
    pub user: String,
    /// What came of it.
    pub outcome: LoginOutcome,
    /// Why it was refused, for an administrator; `None` when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What came of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// The password matched: the machine got its menu.
    Accepted,
    /// Wrong user name or password.
    Refused,
    /// The user or the machine was locked after too many failures.
    Locked,
    /// Not checked: the directory (`[auth] backend = "ldap"`) could not be reached. The
    /// machine was sent on to its next boot device; not counted as the user's failure.
    Unavailable,
}

impl LoginRecord {
    /// One line for the timeline, e.g. `login by alice accepted`.
    #[must_use]
    pub fn summary(&self) -> String {
        let outcome = match self.outcome {
            LoginOutcome::Accepted => "accepted",
            LoginOutcome::Refused => "refused",
            LoginOutcome::Locked => "refused, locked",
            LoginOutcome::Unavailable => "not checked, directory unavailable",
        };
        match &self.reason {
            Some(reason) => format!("login by {} {outcome}: {reason}", self.user),
            None => format!("login by {} {outcome}", self.user),
        }
    }
}

/// An operator's decision on a boot console waiting for approval (`[auth] method =
/// "approval"`), or the end of its wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRecord {
    /// The code the console showed.
    pub code: String,
    /// The admin user who decided; `None` when nobody did (expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// What came of it.
    pub outcome: ApprovalOutcome,
}

/// What came of a console waiting for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    /// An operator let the machine boot.
    Approved,
    /// An operator refused it.
    Denied,
    /// Nobody decided before the code expired.
    Expired,
}

impl ApprovalRecord {
    /// One line for the timeline, e.g. `boot approved by ops (code K7QX2M)`.
    #[must_use]
    pub fn summary(&self) -> String {
        let operator = self.operator.as_deref().unwrap_or("nobody");
        match self.outcome {
            ApprovalOutcome::Approved => format!("boot approved by {operator} (code {})", self.code),
            ApprovalOutcome::Denied => format!("boot denied by {operator} (code {})", self.code),
            ApprovalOutcome::Expired => format!("approval code {} expired unanswered", self.code),
        }
    }
}

/// A Required deployment's run, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequiredRunRecord {
    /// The deployment (action) id, e.g. `PS120002`.
    pub deployment: String,
    /// What happened.
    pub change: RequiredChange,
    /// When the machine ran it, when known.
    #[serde(default)]
    pub ran_at: Option<DateTime<Utc>>,
    /// The deciding system's id of the machine (a ConfigMgr ResourceID), when known.
    #[serde(default)]
    pub resource_id: Option<i64>,
    /// The boot image whose download counted as the run.
    #[serde(default)]
    pub boot_image: Option<String>,
    /// Who cleared it, or why the run records could not be read.
    #[serde(default)]
    pub note: Option<String>,
}

impl RequiredRunRecord {
    fn new(deployment: &str, change: RequiredChange) -> Self {
        Self {
            deployment: deployment.to_string(),
            change,
            ran_at: None,
            resource_id: None,
            boot_image: None,
            note: None,
        }
    }

    /// One line for the timeline, e.g. `Required PS120002 booted at 2026-06-01 10:00:00 UTC;
    /// now offered as Available`.
    #[must_use]
    pub fn summary(&self) -> String {
        let ran = self.ran_at.map_or_else(
            || "an unknown time".to_string(),
            |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        );
        let note = self.note.as_deref().unwrap_or("unknown cause");
        let id = &self.deployment;
        match self.change {
            RequiredChange::Ran => format!(
                "Required {id} booted: {} downloaded completely; from now on offered as Available",
                self.boot_image.as_deref().unwrap_or("its boot image")
            ),
            RequiredChange::OfferedAsAvailable => {
                format!("Required {id} booted at {ran}; now offered as Available")
            }
            RequiredChange::Unverified => {
                format!("Required {id} offered as Available: run records unavailable ({note})")
            }
            RequiredChange::Cleared => {
                format!("Required {id} (booted at {ran}) cleared by {note}; Required again")
            }
        }
    }
}

impl Event {
    /// The machine downloaded `run`'s boot image to the end: the deployment ran.
    #[must_use]
    pub fn required_ran(run: &crate::RequiredRun) -> Self {
        let record = RequiredRunRecord {
            ran_at: Some(run.at),
            resource_id: run.resource_id,
            boot_image: run.boot_image.clone(),
            ..RequiredRunRecord::new(&run.deployment, RequiredChange::Ran)
        };
        Self::at_run(run.at, run, record)
    }

    /// A decision offered `deployment` as Available because the machine ran it at `ran_at`.
    #[must_use]
    pub fn required_offered_as_available(
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
        deployment: &str,
        ran_at: DateTime<Utc>,
    ) -> Self {
        let record = RequiredRunRecord {
            ran_at: Some(ran_at),
            ..RequiredRunRecord::new(deployment, RequiredChange::OfferedAsAvailable)
        };
        Self::now(mac, EventDetail::RequiredRun(record)).with_uuid(uuid)
    }

    /// A decision offered `deployment` as Available because the run records failed (`error`).
    #[must_use]
    pub fn required_unverified(
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
        deployment: &str,
        error: &str,
    ) -> Self {
        let record = RequiredRunRecord {
            note: Some(error.to_string()),
            ..RequiredRunRecord::new(deployment, RequiredChange::Unverified)
        };
        Self::now(mac, EventDetail::RequiredRun(record)).with_uuid(uuid)
    }

    /// An administrator (`by`: `admin API`, `command line`, ...) cleared `run`.
    #[must_use]
    pub fn required_cleared(run: &crate::RequiredRun, by: &str) -> Self {
        let record = RequiredRunRecord {
            ran_at: Some(run.at),
            resource_id: run.resource_id,
            boot_image: run.boot_image.clone(),
            note: Some(by.to_string()),
            ..RequiredRunRecord::new(&run.deployment, RequiredChange::Cleared)
        };
        Self::at_run(Utc::now(), run, record)
    }

    fn at_run(at: DateTime<Utc>, run: &crate::RequiredRun, record: RequiredRunRecord) -> Self {
        Self {
            at,
            mac: run.mac,
            uuid: None,
            ip: None,
            detail: EventDetail::RequiredRun(record),
        }
        .with_uuid(run.uuid)
        .with_ip(run.client_ip)
    }
}
