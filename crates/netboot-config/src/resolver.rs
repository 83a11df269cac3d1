//! `[resolver]`.

use netboot_core::{StaticResolver, StaticRules};
use serde::{Deserialize, Serialize};

use crate::Problems;

/// Where boot decisions come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    /// Which resolver answers.
    pub kind: ResolverKind,
    /// How long a protocol server waits for a decision before using its fallback.
    pub deadline_ms: u64,
    /// `[resolver.static]`: rules for the static resolver.
    #[serde(rename = "static")]
    pub static_rules: StaticRules,
}

/// The resolver implementations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResolverKind {
    /// Rules from this file.
    #[default]
    Static,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self { kind: ResolverKind::Static, deadline_ms: 2000, static_rules: StaticRules::default() }
    }
}

impl ResolverConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        if !(10..=60_000).contains(&self.deadline_ms) {
            problems.push("resolver.deadline_ms", format!("{} is outside 10..=60000", self.deadline_ms));
        }
        if let Err(e) = StaticResolver::new(self.static_rules.clone()) {
            problems.push("resolver.static", e.to_string());
        }
    }
}
