//! The embedded default resolver: rules from the configuration file.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{
    BootAction, BootDecision, BootMenu, BootRequest, BootResolver, BootTarget, ClientArch, Deployment,
    MacAddr, ResolveFuture, SmbiosUuid,
};

/// The `[resolver.static]` configuration: a catalogue of actions and rules that map machines
/// to them. The first matching rule wins; a machine that matches none gets `unmatched`, which
/// is `ignore` unless the configuration says otherwise, so a server started with no rules
/// answers no one.
///
/// ```toml
/// [[actions]]
/// id = "winpe"
/// title = "Windows PE x64"
/// target = { kind = "wimboot", boot_wim = "winpe/boot.wim" }
///
/// [[machines]]
/// mac = "52:54:00:12:34:56"
/// required = ["winpe"]
/// ```
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticRules {
    /// Bootable actions, referenced by `id` from the rules.
    pub actions: Vec<ActionSpec>,
    /// Machine rules, tried in order.
    pub machines: Vec<MachineRule>,
    /// What machines that match no rule get. The default answers none of them, so a first
    /// start never takes over a network; `exit` answers every PXE client.
    pub unmatched: Unmatched,
    /// Seconds the menus of these rules wait before booting their Required entry, or exiting
    /// when nothing is required. Unset: `https.menu_timeout_secs`.
    pub menu_timeout_secs: Option<u32>,
}

/// One entry of the action catalogue.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// The name the machine rules use in `required` and `available`; unique in the catalogue.
    pub id: String,
    /// The entry's title in the boot menu.
    pub title: String,
    /// What the action boots: an inline table whose `kind` says which form it takes.
    pub target: BootTarget,
    /// Someone must log in at the boot console before this action is offered (when `[auth]`
    /// is enabled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
}

/// What to do with machines no rule matches.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmatched {
    /// Chainload iPXE, whose script exits to the next boot device.
    Exit,
    /// Stay silent (the default).
    #[default]
    Ignore,
}

/// Matches machines by MAC, UUID and/or architecture (all given criteria must hold; a rule
/// with none matches every machine).
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachineRule {
    /// Free-text label for logs.
    pub name: Option<String>,
    /// Matches the MAC address of the NIC the machine boots from.
    pub mac: Option<MacAddr>,
    /// Matches the machine's SMBIOS UUID.
    pub uuid: Option<SmbiosUuid>,
    /// Architecture; HTTP Boot codes match their PXE twin (`x64-uefi` matches 7, 9 and 16).
    pub arch: Option<ClientArch>,
    /// Ids of the actions that boot by themselves (Required): a single one after a countdown,
    /// several as a menu with the first one preselected.
    pub required: Vec<String>,
    /// Ids of the actions offered in the menu for someone at the console to pick (Available).
    pub available: Vec<String>,
    /// Stay silent for this machine.
    pub ignore: bool,
    /// Someone must log in at the boot console before any action is offered to this machine
    /// (when `[auth]` is enabled), whatever the actions say.
    pub auth: bool,
}

impl StaticRules {
    /// The first rule that matches `request`, if any.
    #[must_use]
    pub fn rule_for(&self, request: &BootRequest) -> Option<&MachineRule> {
        self.machines.iter().find(|rule| rule.matches(request))
    }
}

impl MachineRule {
    fn matches(&self, request: &BootRequest) -> bool {
        self.mac.is_none_or(|mac| mac == request.mac)
            && self.uuid.is_none_or(|uuid| Some(uuid) == request.uuid)
            && self
                .arch
                .is_none_or(|arch| arch.boot_program_arch() == request.arch.boot_program_arch())
    }
}

/// A rule references an action id that the catalogue does not define, or defines twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaticRulesError {
    /// `machines[i].required/available` names an unknown action.
    #[error("machines[{rule}].{field}: unknown action {id:?}")]
    UnknownAction {
        /// Index of the rule.
        rule: usize,
        /// `required` or `available`.
        field: &'static str,
        /// The missing id.
        id: String,
    },
    /// Two catalogue entries share an id.
    #[error("actions[{index}].id: duplicate action {id:?}")]
    DuplicateAction {
        /// Index of the second entry.
        index: usize,
        /// The id.
        id: String,
    },
}

/// Resolves from [`StaticRules`]; pure and instant.
#[derive(Debug, Clone)]
pub struct StaticResolver {
    rules: StaticRules,
    actions: HashMap<String, ActionSpec>,
}

impl StaticResolver {
    /// Checks that every referenced action exists.
    pub fn new(rules: StaticRules) -> Result<Self, StaticRulesError> {
        let mut actions = HashMap::new();
        for (index, action) in rules.actions.iter().enumerate() {
            if actions.insert(action.id.clone(), action.clone()).is_some() {
                return Err(StaticRulesError::DuplicateAction {
                    index,
                    id: action.id.clone(),
                });
            }
        }
        for (rule_index, rule) in rules.machines.iter().enumerate() {
            for (field, ids) in [("required", &rule.required), ("available", &rule.available)] {
                if let Some(id) = ids.iter().find(|id| !actions.contains_key(*id)) {
                    return Err(StaticRulesError::UnknownAction {
                        rule: rule_index,
                        field,
                        id: id.clone(),
                    });
                }
            }
        }
        Ok(Self { rules, actions })
    }

    /// The decision for a request, synchronously.
    pub fn decide(&self, request: &BootRequest) -> BootDecision {
        let Some(rule) = self.rules.rule_for(request) else {
            return match self.rules.unmatched {
                Unmatched::Exit => BootDecision::EXIT,
                Unmatched::Ignore => BootDecision::Ignore,
            };
        };
        if rule.ignore {
            return BootDecision::Ignore;
        }
        let entries: Vec<BootAction> = [
            (Deployment::Required, &rule.required),
            (Deployment::Available, &rule.available),
        ]
        .into_iter()
        .flat_map(|(deployment, ids)| {
            ids.iter().map(move |id| {
                let spec = &self.actions[id];
                BootAction {
                    id: spec.id.clone(),
                    title: spec.title.clone(),
                    deployment,
                    target: spec.target.clone(),
                    auth: spec.auth || rule.auth,
                }
            })
        })
        .collect();
        if entries.is_empty() {
            return BootDecision::EXIT;
        }
        BootDecision::Boot(BootMenu {
            title: None,
            entries,
            timeout_secs: self.rules.menu_timeout_secs,
            resource_id: None,
        })
    }
}

impl BootResolver for StaticResolver {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        let decision = self.decide(request);
        Box::pin(async move { Ok(decision) })
    }

    fn name(&self) -> &'static str {
        "static"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BootStage;

    const RULES: &str = r#"
        unmatched = "exit"
        [[actions]]
        id = "winpe"
        title = "Windows PE"
        target = { kind = "wimboot", boot_wim = "winpe/boot.wim" }
        [[actions]]
        id = "debian"
        title = "Debian installer"
        target = { kind = "linux", kernel = "debian/linux", initrds = ["debian/initrd.gz"], cmdline = "quiet" }
        [[machines]]
        mac = "52:54:00:00:00:01"
        required = ["winpe"]
        available = ["debian"]
        [[machines]]
        arch = "arm64-uefi"
        available = ["debian"]
        [[machines]]
        uuid = "00112233-4455-6677-8899-aabbccddeeff"
        ignore = true
    "#;

    fn request(mac: &str, arch: ClientArch) -> BootRequest {
        BootRequest::new(mac.parse().unwrap(), arch, BootStage::Ipxe)
    }

    #[test]
    fn rules_match_in_order() {
        let resolver = StaticResolver::new(toml::from_str(RULES).unwrap()).unwrap();
        let BootDecision::Boot(menu) = resolver.decide(&request("52:54:00:00:00:01", ClientArch::X86Bios))
        else {
            panic!("expected a menu")
        };
        assert_eq!(menu.entries.len(), 2);
        assert_eq!(menu.first_required().unwrap().id, "winpe");
        assert_eq!(menu.entries[1].deployment, Deployment::Available);

        let arm = resolver.decide(&request("52:54:00:00:00:02", ClientArch::EfiArm64Http));
        assert_eq!(arm.kind(), "boot");
        assert_eq!(
            resolver.decide(&request("52:54:00:00:00:02", ClientArch::EfiX64)),
            BootDecision::EXIT
        );

        let ignored = request("52:54:00:00:00:03", ClientArch::EfiX64)
            .with_uuid(Some("00112233-4455-6677-8899-aabbccddeeff".parse().unwrap()));
        assert_eq!(resolver.decide(&ignored), BootDecision::Ignore);
    }

    #[test]
    fn machines_without_a_rule_are_ignored_by_default() {
        let resolver = StaticResolver::new(StaticRules::default()).unwrap();
        let request = request("52:54:00:00:00:01", ClientArch::EfiX64);
        assert_eq!(resolver.decide(&request), BootDecision::Ignore);
        assert!(StaticRules::default().rule_for(&request).is_none());
    }

    #[test]
    fn unknown_action_is_named() {
        let mut rules: StaticRules = toml::from_str(RULES).unwrap();
        rules.machines[1].available.push("nope".into());
        assert_eq!(
            StaticResolver::new(rules).unwrap_err().to_string(),
            "machines[1].available: unknown action \"nope\""
        );
    }

    #[test]
    fn decision_json_round_trip() {
        let resolver = StaticResolver::new(toml::from_str(RULES).unwrap()).unwrap();
        let decision = resolver.decide(&request("52:54:00:00:00:01", ClientArch::X86Bios));
        let json = serde_json::to_string(&decision).unwrap();
        assert_eq!(serde_json::from_str::<BootDecision>(&json).unwrap(), decision);
    }
}
