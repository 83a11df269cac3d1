//! A first run never takes over a network silently. With the static resolver's default
//! `unmatched = "ignore"`, machines no rule names get no answer; the proxy says so once per
//! machine, with the configuration line that would answer it, so an administrator trying the
//! server out sees what to write instead of wondering why nothing boots.

use std::collections::HashSet;
use std::sync::Mutex;

use netboot_config::{Config, ResolverKind};
use netboot_core::{BootRequest, MacAddr, StaticRules, Unmatched};

/// Machines remembered as already reported; beyond it the set starts over (a machine is at
/// worst reported again).
const MAX_REPORTED: usize = 65_536;

/// The static rules when they leave unmatched machines unanswered, else `None`.
pub(crate) fn silent_rules(config: &Config) -> Option<StaticRules> {
    let rules = &config.resolver.static_rules;
    (config.resolver.kind == ResolverKind::Static && rules.unmatched == Unmatched::Ignore)
        .then(|| rules.clone())
}

/// Which unanswered machines were reported.
#[derive(Debug, Default)]
pub(crate) struct Unanswered {
    reported: Mutex<HashSet<MacAddr>>,
}

impl Unanswered {
    /// When `request` (which sent `vendor_class`, over DHCPv4 or DHCPv6) is unanswered only
    /// because no rule of `rules` matches it, reports it (once per machine) and returns true.
    pub(crate) fn report(
        &self,
        rules: &StaticRules,
        request: &BootRequest,
        vendor_class: Option<&str>,
    ) -> bool {
        if rules.rule_for(request).is_some() {
            return false;
        }
        let first = {
            let mut reported = self
                .reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if reported.len() >= MAX_REPORTED {
                reported.clear();
            }
            reported.insert(request.mac)
        };
        let vendor_class = vendor_class.unwrap_or("");
        if first {
            tracing::info!(
                mac = %request.mac,
                arch = %request.arch,
                vendor_class,
                "not answering PXE client {} (arch {}, vendor class {vendor_class:?}): no \
                 [[resolver.static.machines]] rule matches it; to answer it add \
                 [[resolver.static.machines]] mac = \"{}\", or unmatched = \"exit\" under \
                 [resolver.static] to answer every PXE client",
                request.mac,
                request.arch,
                request.mac,
            );
        } else {
            tracing::debug!(mac = %request.mac, arch = %request.arch, "not answering: no rule matches");
        }
        true
    }
}
