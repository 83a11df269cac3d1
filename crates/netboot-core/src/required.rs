//! Required deployments that run once.
//!
//! A Required entry boots by itself after a countdown. For an operating-system deployment
//! that must happen once: a machine that finished its task sequence and reboots with the
//! network first in its boot order would otherwise be wiped and reinstalled on every boot.
//! ConfigMgr's own PXE point therefore records each Required deployment a machine ran and
//! from then on offers it as Available (a menu entry someone has to pick) until an
//! administrator clears the record.
//!
//! This module is the vocabulary of that rule, shared by every resolver:
//!
//! * [`RunLedger`]: where "this machine ran that Required deployment" is kept (the boot
//!   records database, or a small file of its own);
//! * [`BootAction::runs_once`]: which entries the rule applies to (Required Windows PE boots);
//! * [`offer_as_available`]: the pure demotion of a decision's entries.
//!
//! ```
//! use netboot_core::*;
//! let winpe = BootAction {
//!     auth: false,
//!     id: "PS120002".into(),
//!     title: "Windows 11".into(),
//!     deployment: Deployment::Required,
//!     target: BootTarget::Wimboot {
//!         boot_wim: "configmgr/PS100004/boot.wim".into(),
//!         bcd: None,
//!         boot_sdi: None,
//!         files: vec![],
//!         wimboot_args: None,
//!         variables: Default::default(),
//!     },
//! };
//! let mut decision = BootDecision::Boot(BootMenu { entries: vec![winpe], ..BootMenu::default() });
//! let demoted = offer_as_available(&mut decision, |action| action.id == "PS120002");
//! assert_eq!(demoted, ["PS120002"]);
//! let BootDecision::Boot(menu) = &decision else { unreachable!() };
//! assert_eq!(menu.entries[0].deployment, Deployment::Available);
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::{BootAction, BootDecision, BootTarget, Deployment, MacAddr, SmbiosUuid};

/// A Required deployment a machine is recorded to have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRun {
    /// The action (deployment) id, as the resolver named it.
    pub deployment: String,
    /// When the machine finished downloading its boot image.
    pub at: SystemTime,
}

/// Why a [`RunLedger`] could not answer.
pub type LedgerError = Box<dyn std::error::Error + Send + Sync>;

/// The future [`RunLedger::runs_of`] returns.
pub type LedgerFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<RecordedRun>, LedgerError>> + Send + 'a>>;

/// Where the Required deployments machines ran are kept.
pub trait RunLedger: Send + Sync + Debug + 'static {
    /// The runs recorded for this machine: those recorded under its MAC address and, when
    /// it has one, those recorded under its SMBIOS UUID (the same machine booting from
    /// another network card).
    fn runs_of<'a>(&'a self, mac: MacAddr, uuid: Option<SmbiosUuid>) -> LedgerFuture<'a>;
}

impl<L: RunLedger + ?Sized> RunLedger for std::sync::Arc<L> {
    fn runs_of<'a>(&'a self, mac: MacAddr, uuid: Option<SmbiosUuid>) -> LedgerFuture<'a> {
        (**self).runs_of(mac, uuid)
    }
}

impl BootAction {
    /// Whether the run-once rule applies: a Required Windows PE (wimboot) entry, the shape of
    /// an operating-system deployment. Linux kernels and chained scripts are left alone:
    /// diskless and rescue systems are meant to boot every time.
    pub fn runs_once(&self) -> bool {
        self.deployment == Deployment::Required && matches!(self.target, BootTarget::Wimboot { .. })
    }
}

/// Offers every entry of `decision` that [`BootAction::runs_once`] and that `ran` selects as
/// Available, keeping its place in the menu. Returns the ids of the entries changed.
pub fn offer_as_available(
    decision: &mut BootDecision,
    mut ran: impl FnMut(&BootAction) -> bool,
) -> Vec<String> {
    let BootDecision::Boot(menu) = decision else {
        return Vec::new();
    };
    let mut demoted = Vec::new();
    for entry in &mut menu.entries {
        if entry.runs_once() && ran(entry) {
            entry.deployment = Deployment::Available;
            demoted.push(entry.id.clone());
        }
    }
    demoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BootMenu;

    fn action(id: &str, deployment: Deployment, target: BootTarget) -> BootAction {
        BootAction {
            auth: false,
            id: id.into(),
            title: id.into(),
            deployment,
            target,
        }
    }

    fn wim() -> BootTarget {
        BootTarget::Wimboot {
            boot_wim: "boot.wim".into(),
            bcd: None,
            boot_sdi: None,
            files: vec![],
            wimboot_args: None,
            variables: Default::default(),
        }
    }

    #[test]
    fn only_required_wimboot_entries_that_ran_change() {
        let linux = BootTarget::Linux {
            kernel: "k".into(),
            initrds: vec![],
            cmdline: None,
        };
        let mut decision = BootDecision::Boot(BootMenu {
            entries: vec![
                action("ran", Deployment::Required, wim()),
                action("other", Deployment::Required, wim()),
                action("diskless", Deployment::Required, linux),
                action("ran-too", Deployment::Available, wim()),
            ],
            ..BootMenu::default()
        });
        let demoted = offer_as_available(&mut decision, |a| a.id != "other");
        assert_eq!(demoted, ["ran"]);
        let expected: Vec<(String, char)> =
            [("ran", 'A'), ("other", 'R'), ("diskless", 'R'), ("ran-too", 'A')]
                .iter()
                .map(|(id, m)| (id.to_string(), *m))
                .collect();
        assert_eq!(decision.entry_markers(), expected);
    }

    #[test]
    fn exits_and_ignores_are_untouched() {
        for mut decision in [BootDecision::EXIT, BootDecision::Ignore] {
            let before = decision.clone();
            assert!(offer_as_available(&mut decision, |_| true).is_empty());
            assert_eq!(decision, before);
        }
    }
}
