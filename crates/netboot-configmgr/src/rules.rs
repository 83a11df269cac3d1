//! The eligibility rules: a pure function from database rows to a [`BootDecision`].
//!
//! Nothing here touches the database, the file system or the clock, so every rule is a unit
//! test with hand-written rows. The order of the checks mirrors what ConfigMgr's PXE point
//! does (`NBS_GetPXEBootAction` plus the documented boot-image selection):
//!
//! 1. the device: rows matching GUID *and* MAC beat GUID-only, which beat MAC-only; obsolete
//!    and decommissioned records are ignored; ties go to the highest ResourceID;
//! 2. no device record: the unknown-computer object of the client's architecture stands in
//!    (when enabled), preferring the configured site's object;
//! 3. each deployment must be enabled for media and PXE, inside its start/expiry window,
//!    have a boot image that fits the client's architecture (UEFI: exactly) and that is
//!    present on this server; hidden deployments only count when required;
//! 4. a required deployment already recorded in `LastPXEAdvertisement` is offered as
//!    available instead, until "Clear Required PXE Deployments" removes the record;
//! 5. order: required first, exact architecture before compatible, then the configured
//!    order (newest deployment ID first by default, as ConfigMgr does).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use netboot_core::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, WimbootFile};

use crate::flags;
use crate::identity::{ImageArch, Platform};
use crate::rows::{DeploymentRow, DeviceRow, LastPxeRow, SiteRows, UnknownRow};

/// How entries of the same kind are ordered after "required first, exact architecture first".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MenuOrder {
    /// Highest deployment ID first (string comparison), as ConfigMgr picks its winner.
    #[default]
    Newest,
    /// Lowest deployment ID first.
    Oldest,
    /// Task sequence name, case-insensitive.
    Name,
}

/// What a machine gets when nothing is deployed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NothingDeployed {
    /// iPXE exits to the next boot device at once.
    #[default]
    Exit,
    /// No answer at all, as ConfigMgr's "Not serviced".
    Ignore,
}

/// Settings the rules need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Let the unknown-computer objects stand in for machines without a record.
    pub unknown_computers: bool,
    /// Prefer this site's unknown-computer objects when several sites have them.
    pub site_code: Option<String>,
    /// Order within required and available entries.
    pub order: MenuOrder,
    /// Decision when no deployment applies.
    pub nothing_deployed: NothingDeployed,
    /// Menu title.
    pub menu_title: Option<String>,
    /// Menu timeout (countdown of a required entry).
    pub menu_timeout_secs: Option<u32>,
    /// Extra wimboot arguments for every entry.
    pub wimboot_args: Option<String>,
    /// What Windows PE is handed besides the boot image.
    pub handoff: Handoff,
}

/// The Windows PE hand-off: files wimboot injects into `X:\Windows\System32` of a boot
/// image, and task sequence variables for the machine (see `docs/configmgr-winpe-handoff.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handoff {
    /// Off: entries carry only the boot image, as before.
    pub enabled: bool,
    /// Files for every boot image.
    pub files: Vec<WimbootFile>,
    /// Files per boot image PackageID; one named like a common file replaces it.
    pub boot_images: BTreeMap<String, Vec<WimbootFile>>,
    /// `OSDComputerName` = the machine's ConfigMgr name, for machines the site knows.
    pub computer_name: bool,
    /// `SMSTSPreferredAdvertID` = the entry's deployment, so the task sequence wizard runs
    /// the deployment chosen in the menu.
    pub preferred_deployment: bool,
    /// Fixed variables for every machine (the two above win over these).
    pub variables: BTreeMap<String, String>,
}

impl Handoff {
    /// The files injected into boot image `boot_image_id`: the common ones, with those of the
    /// boot image replacing a common file of the same name (case-insensitive, as Windows
    /// names are) and added after them.
    pub fn files_for(&self, boot_image_id: &str) -> Vec<WimbootFile> {
        let own = self
            .boot_images
            .get(boot_image_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let replaced = |file: &WimbootFile| own.iter().any(|o| o.name.eq_ignore_ascii_case(&file.name));
        let mut files: Vec<WimbootFile> = self.files.iter().filter(|f| !replaced(f)).cloned().collect();
        files.extend(own.iter().cloned());
        files
    }

    /// The variables for one entry.
    fn variables_for(&self, deployment_id: &str, target: &Target) -> BTreeMap<String, String> {
        let mut variables = self.variables.clone();
        if self.computer_name {
            if let Target::Known(DeviceRow { name: Some(name), .. }) = target {
                let name = name.trim();
                if netboot_core::handoff::check_variable("OSDComputerName", name).is_ok() && !name.is_empty()
                {
                    variables.insert("OSDComputerName".into(), name.to_owned());
                }
            }
        }
        if self.preferred_deployment {
            variables.insert("SMSTSPreferredAdvertID".into(), deployment_id.to_owned());
        }
        variables
    }
}

/// The current time and how to read ConfigMgr's local (non-GMT) times.
///
/// ConfigMgr evaluates non-GMT times in the *client's* local time zone. A PXE server has no
/// client clock, so they are read in the server's zone, given here as a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now.
    pub now: DateTime<Utc>,
    /// Offset of local time from UTC for non-GMT times.
    pub local_offset: FixedOffset,
}

/// Where a boot image's files are, as paths relative to the HTTPS file root. A boot image
/// missing from the map is not present on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImageFiles {
    /// The WIM.
    pub boot_wim: String,
    /// `BCD`, when shipped next to it.
    pub bcd: Option<String>,
    /// `boot.sdi`, when shipped next to it.
    pub boot_sdi: Option<String>,
}

/// Which resource the deployments were looked up for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A known system record.
    Known(DeviceRow),
    /// An unknown-computer object standing in for the machine.
    Unknown(UnknownRow),
    /// No record and no (usable) unknown-computer object.
    Nobody(NoTarget),
}

impl Target {
    /// The ResourceID, when there is a target.
    pub fn resource_id(&self) -> Option<i64> {
        match self {
            Self::Known(d) => Some(d.resource_id),
            Self::Unknown(u) => Some(u.resource_id),
            Self::Nobody(_) => None,
        }
    }
}

/// Why no resource stands for the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTarget {
    /// Not in the database and unknown-computer support is off.
    UnknownComputersDisabled,
    /// Not in the database and no unknown-computer object exists for its architecture.
    NoUnknownObject,
    /// Windows PE does not run on the client's architecture.
    UnsupportedArchitecture,
}

/// Why a deployment was left out of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not made available to "media and PXE".
    NotForPxe,
    /// Its task sequence has no boot image.
    NoBootImage,
    /// Start time in the future.
    NotStarted,
    /// Expiry time passed.
    Expired,
    /// "Only media and PXE (hidden)" and available: reachable only by preferred ID.
    Hidden,
    /// Boot image architecture does not fit the client.
    WrongArchitecture {
        /// The image's stored architecture.
        image: String,
    },
    /// Boot image files are not on this server.
    ImageNotOnServer {
        /// The boot image PackageID.
        boot_image_id: String,
    },
    /// Same deployment seen twice (several collections); the first is kept.
    Duplicate,
    /// The deployment id or the boot image PackageID is not a plain ConfigMgr id (letters
    /// and digits): it could carry path or script characters, so it never reaches a file
    /// name, a URL or a script.
    UnsafeId,
}

/// Longest id accepted from the site database (ConfigMgr ids are eight characters).
const MAX_ID_LEN: usize = 16;

/// True for a plain ConfigMgr id: 1 to 16 ASCII letters and digits (`PS120002`, `PS100004`).
/// Anything else is never used as a file name, a URL part or a script word.
///
/// ```
/// use netboot_configmgr::rules::is_plain_id;
/// assert!(is_plain_id("PS100004"));
/// assert!(!is_plain_id("../PS1"));
/// assert!(!is_plain_id("PS1${x}"));
/// assert!(!is_plain_id(""));
/// ```
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The decision with the reasoning behind it, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the machine boots.
    pub decision: BootDecision,
    /// The resource whose deployments were used.
    pub target: Target,
    /// Deployments left out, with the reason.
    pub rejected: Vec<(String, Rejection)>,
}

/// Picks the device record: GUID and MAC > GUID only > MAC only; then the highest
/// ResourceID. Obsolete and decommissioned records never win.
pub fn pick_device(devices: &[DeviceRow]) -> Option<&DeviceRow> {
    devices
        .iter()
        .filter(|d| !d.obsolete && !d.decommissioned && (d.guid_match || d.mac_match))
        .max_by_key(|d| (d.guid_match && d.mac_match, d.guid_match, d.resource_id))
}

/// Picks the unknown-computer object for `cpu_type`: the configured site's, else the one
/// with the lowest ResourceID (duplicates are a site fault ConfigMgr also trips over).
pub fn pick_unknown<'a>(
    unknown: &'a [UnknownRow],
    cpu_type: &str,
    site_code: Option<&str>,
) -> Option<&'a UnknownRow> {
    let matching = || {
        unknown
            .iter()
            .filter(move |u| u.cpu_type.eq_ignore_ascii_case(cpu_type))
    };
    site_code
        .and_then(|site| {
            matching().find(|u| {
                u.site_code
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(site))
            })
        })
        .or_else(|| matching().min_by_key(|u| u.resource_id))
}

/// Chooses the resource standing for the machine.
pub fn choose_target(rows: &SiteRows, platform: Option<Platform>, policy: &Policy) -> Target {
    if let Some(device) = pick_device(&rows.devices) {
        return Target::Known(device.clone());
    }
    let Some(platform) = platform else {
        return Target::Nobody(NoTarget::UnsupportedArchitecture);
    };
    if !policy.unknown_computers {
        return Target::Nobody(NoTarget::UnknownComputersDisabled);
    }
    match pick_unknown(
        &rows.unknown,
        platform.unknown_cpu_type(),
        policy.site_code.as_deref(),
    ) {
        Some(unknown) => Target::Unknown(unknown.clone()),
        None => Target::Nobody(NoTarget::NoUnknownObject),
    }
}

fn to_utc(time: NaiveDateTime, is_gmt: bool, local: FixedOffset) -> DateTime<Utc> {
    if is_gmt {
        Utc.from_utc_datetime(&time)
    } else {
        // A fixed offset maps every local time to exactly one instant.
        local
            .from_local_datetime(&time)
            .single()
            .map_or_else(|| Utc.from_utc_datetime(&time), |t| t.with_timezone(&Utc))
    }
}

/// True when the deployment is required: `OfferType` 0, or, where the view lacks it, a
/// mandatory flag or assigned schedule.
pub fn is_required(row: &DeploymentRow) -> bool {
    match row.offer_type {
        Some(offer_type) => offer_type == 0,
        None => row.assigned_schedule_enabled || row.advert_flags & flags::MANDATORY_MASK != 0,
    }
}

struct Accepted<'a> {
    row: &'a DeploymentRow,
    required: bool,
    exact: bool,
    files: &'a BootImageFiles,
}

fn check<'a>(
    row: &'a DeploymentRow,
    platform: Platform,
    clock: &Clock,
    images: &'a HashMap<String, BootImageFiles>,
) -> Result<Accepted<'a>, Rejection> {
    if !is_plain_id(&row.advertisement_id) {
        return Err(Rejection::UnsafeId);
    }
    if row.advert_flags & flags::PXE_MASK == 0 {
        return Err(Rejection::NotForPxe);
    }
    let boot_image_id = row
        .boot_image_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let Some(boot_image_id) = boot_image_id else {
        return Err(Rejection::NoBootImage);
    };
    if !is_plain_id(boot_image_id) {
        return Err(Rejection::UnsafeId);
    }
    if row.present_time_enabled {
        if let Some(start) = row.present_time {
            if to_utc(start, row.present_time_is_gmt, clock.local_offset) > clock.now {
                return Err(Rejection::NotStarted);
            }
        }
    }
    if row.expiration_time_enabled {
        if let Some(end) = row.expiration_time {
            if to_utc(end, row.expiration_time_is_gmt, clock.local_offset) <= clock.now {
                return Err(Rejection::Expired);
            }
        }
    }
    let required = is_required(row);
    if row.advert_flags & flags::HIDDEN_IN_WINPE != 0 && !required {
        return Err(Rejection::Hidden);
    }
    let stored_arch = row.boot_image_architecture.clone().unwrap_or_default();
    let exact = ImageArch::from_configmgr(&stored_arch)
        .and_then(|image| platform.image_fit(image))
        .ok_or(Rejection::WrongArchitecture { image: stored_arch })?;
    let files = images
        .get(boot_image_id)
        .ok_or_else(|| Rejection::ImageNotOnServer {
            boot_image_id: boot_image_id.to_string(),
        })?;
    Ok(Accepted {
        row,
        required,
        exact,
        files,
    })
}

/// Applies every rule and builds the decision.
///
/// `images` maps boot image PackageIDs present on this server to their files.
pub fn decide(
    rows: &SiteRows,
    platform: Option<Platform>,
    policy: &Policy,
    clock: &Clock,
    images: &HashMap<String, BootImageFiles>,
) -> Outcome {
    let target = choose_target(rows, platform, policy);
    let (Some(resource_id), Some(platform)) = (target.resource_id(), platform) else {
        return Outcome {
            decision: nothing(policy),
            target,
            rejected: Vec::new(),
        };
    };
    let mut rejected = Vec::new();
    let mut accepted: Vec<Accepted<'_>> = Vec::new();
    for row in rows.deployments.iter().filter(|r| r.resource_id == resource_id) {
        if accepted
            .iter()
            .any(|a| a.row.advertisement_id == row.advertisement_id)
        {
            rejected.push((row.advertisement_id.clone(), Rejection::Duplicate));
            continue;
        }
        match check(row, platform, clock, images) {
            Ok(ok) => accepted.push(ok),
            Err(why) => rejected.push((row.advertisement_id.clone(), why)),
        }
    }
    // A required deployment that already ran stays bootable, but only on request.
    let already_ran = |row: &DeploymentRow| {
        matches!(target, Target::Known(_))
            && rows
                .last_pxe
                .iter()
                .any(|l: &LastPxeRow| l.advertisement_id == row.advertisement_id)
    };
    for entry in &mut accepted {
        if entry.required && already_ran(entry.row) {
            entry.required = false;
        }
    }
    accepted.sort_by(|a, b| {
        let kind = b.required.cmp(&a.required).then(b.exact.cmp(&a.exact));
        let within = match policy.order {
            MenuOrder::Newest => b.row.advertisement_id.cmp(&a.row.advertisement_id),
            MenuOrder::Oldest => a.row.advertisement_id.cmp(&b.row.advertisement_id),
            MenuOrder::Name => title(a.row).to_lowercase().cmp(&title(b.row).to_lowercase()),
        };
        kind.then(within)
    });
    if accepted.is_empty() {
        return Outcome {
            decision: nothing(policy),
            target,
            rejected,
        };
    }
    let entries = accepted.iter().map(|a| action(a, &target, policy)).collect();
    let menu = BootMenu {
        title: policy.menu_title.clone(),
        entries,
        timeout_secs: policy.menu_timeout_secs,
        // Unknown computer objects stand in for many machines: they are no machine's id.
        resource_id: match &target {
            Target::Known(device) => Some(device.resource_id),
            _ => None,
        },
    };
    Outcome {
        decision: BootDecision::Boot(menu),
        target,
        rejected,
    }
}

fn title(row: &DeploymentRow) -> &str {
    row.task_sequence_name
        .as_deref()
        .or(row.advertisement_name.as_deref())
        .unwrap_or(&row.advertisement_id)
}

fn action(accepted: &Accepted<'_>, target: &Target, policy: &Policy) -> BootAction {
    let handoff = &policy.handoff;
    let (files, variables) = if handoff.enabled {
        let boot_image_id = accepted.row.boot_image_id.as_deref().unwrap_or_default().trim();
        (
            handoff.files_for(boot_image_id),
            handoff.variables_for(&accepted.row.advertisement_id, target),
        )
    } else {
        Default::default()
    };
    BootAction {
        auth: false,
        id: accepted.row.advertisement_id.clone(),
        title: title(accepted.row).to_string(),
        deployment: if accepted.required {
            Deployment::Required
        } else {
            Deployment::Available
        },
        target: BootTarget::Wimboot {
            boot_wim: accepted.files.boot_wim.clone(),
            bcd: accepted.files.bcd.clone(),
            boot_sdi: accepted.files.boot_sdi.clone(),
            files,
            wimboot_args: policy.wimboot_args.clone(),
            variables,
        },
    }
}

fn nothing(policy: &Policy) -> BootDecision {
    match policy.nothing_deployed {
        NothingDeployed::Exit => BootDecision::Exit {
            message: Some("No ConfigMgr task sequence is deployed to this computer.".into()),
        },
        NothingDeployed::Ignore => BootDecision::Ignore,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
