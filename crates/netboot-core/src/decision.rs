//! What a resolver answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The answer to "what should this machine boot?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BootDecision {
    /// Not our client: stay silent, as if this server did not exist.
    Ignore,
    /// Nothing to do: iPXE `exit`s so the firmware moves on to its next boot device.
    Exit {
        /// Shown on the client's console before exiting (sanitised by the script builder).
        #[serde(default)]
        message: Option<String>,
    },
    /// Boot one of these actions.
    Boot(BootMenu),
}

impl BootDecision {
    /// An exit without a message.
    pub const EXIT: Self = Self::Exit { message: None };

    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ignore => "ignore",
            Self::Exit { .. } => "exit",
            Self::Boot(menu) if menu.entries.is_empty() => "exit",
            Self::Boot(_) => "boot",
        }
    }

    /// `(id, 'R' or 'A')` of each entry in menu order, for logs and tests; empty for anything
    /// but a menu.
    pub fn entry_markers(&self) -> Vec<(String, char)> {
        match self {
            Self::Boot(menu) => menu
                .entries
                .iter()
                .map(|e| (e.id.clone(), e.deployment.marker()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One or more boot actions offered to a machine.
///
/// The HTTPS service boots a single Required entry after a cancellable countdown, and shows a
/// menu for anything else, with the first Required entry preselected.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootMenu {
    /// Menu title; the service's default when absent.
    #[serde(default)]
    pub title: Option<String>,
    /// Entries in display order (resolvers put Required first).
    pub entries: Vec<BootAction>,
    /// Seconds before the default entry is taken (a Required one), or before exiting when
    /// nothing is required; the service's default when absent.
    #[serde(default)]
    pub timeout_secs: Option<u32>,
    /// The deciding system's own id of the machine record the decision was made for (a
    /// ConfigMgr ResourceID); `None` for machines it does not know, such as those an unknown
    /// computer object stands in for. Kept with the record of a Required run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<i64>,
}

impl BootMenu {
    /// The first Required entry, which is the menu's default.
    pub fn first_required(&self) -> Option<&BootAction> {
        self.entries.iter().find(|a| a.deployment == Deployment::Required)
    }
}

/// Whether an action runs by itself or waits for someone at the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deployment {
    /// Offered in a menu; someone must pick it ("A").
    #[default]
    Available,
    /// Boots by itself after a countdown ("R").
    Required,
}

impl Deployment {
    /// The single-letter marker used in menus: `R` or `A`.
    pub fn marker(&self) -> char {
        match self {
            Self::Available => 'A',
            Self::Required => 'R',
        }
    }
}

/// One bootable thing, as offered to a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootAction {
    /// Stable identifier (a ConfigMgr deployment/advertisement ID, a config key); validated
    /// by the script builder, never shown raw.
    pub id: String,
    /// Human title (untrusted text, sanitised before it reaches a script).
    pub title: String,
    /// Available or Required.
    #[serde(default)]
    pub deployment: Deployment,
    /// What to load.
    pub target: BootTarget,
    /// Someone must log in at the boot console before this action is offered, and its files
    /// are only served with the token that login gives (see `[auth]` of `pxe-https`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
}

/// What an action loads. Relative paths are resolved against the HTTPS service's boot-file
/// root URL; absolute `http://` / `https://` URLs are used as they are.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BootTarget {
    /// Windows PE through wimboot.
    Wimboot {
        /// The boot image (`boot.wim`).
        boot_wim: String,
        /// The BCD store; wimboot can generate one when absent.
        #[serde(default)]
        bcd: Option<String>,
        /// `boot.sdi`; wimboot can generate one when absent.
        #[serde(default)]
        boot_sdi: Option<String>,
        /// Further files injected into the image (`name=` in the initrd line).
        #[serde(default)]
        files: Vec<WimbootFile>,
        /// Extra arguments for wimboot itself (e.g. `gui`, `pause`).
        #[serde(default)]
        wimboot_args: Option<String>,
        /// Task sequence variables for this machine (e.g. `OSDComputerName`), handed to WinPE
        /// in a generated file only this machine can fetch, over HTTPS at a per-boot URL.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        variables: BTreeMap<String, String>,
    },
    /// A Linux kernel with initrds.
    Linux {
        /// The kernel image.
        kernel: String,
        /// Initial ramdisks in load order.
        #[serde(default)]
        initrds: Vec<String>,
        /// The kernel command line.
        #[serde(default)]
        cmdline: Option<String>,
    },
    /// Chain to another script or image.
    Chain {
        /// The script or image to chain to: a path under the boot-file root or an absolute URL.
        url: String,
    },
}

/// A file wimboot injects into the virtual `\Windows\System32` of WinPE.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WimbootFile {
    /// Name inside the image (e.g. `winpeshl.ini`).
    pub name: String,
    /// Where it is fetched from: a path under the boot-file root (with `secret`, under the
    /// private directory) or an absolute URL.
    pub path: String,
    /// The file carries a secret (a ConfigMgr media variables file holds the media
    /// certificate): the HTTPS service reads it from its private directory, never from the
    /// public file roots, and hands it only to the machine the decision was made for, over
    /// HTTPS, at a per-boot URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}
