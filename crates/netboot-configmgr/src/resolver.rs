//! [`ConfigMgrResolver`]: the [`BootResolver`] that reads the site database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{FixedOffset, Local, Offset, Utc};
use netboot_core::{BootDecision, BootRequest, BootResolver, MacAddr, ResolveError, ResolveFuture};

use crate::identity::{DuplicateIdentifiers, Identity, Platform};
use crate::rules::{self, BootImageFiles, Clock, Policy, Target};
use crate::source::{LookupKeys, SiteDatabase};

/// Where boot images live on this server.
///
/// A boot image is "present" when `<dir>/<PackageID>/boot.wim` exists (or ConfigMgr's own
/// name `boot.<PackageID>.wim`, as in `RemoteInstall\SMSImages`). The menu refers to it as
/// `<url_prefix>/<PackageID>/<file>`, relative to the HTTPS file root. `BCD` and `boot.sdi`
/// next to the WIM are used when present; wimboot generates them otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStore {
    /// Directory holding one sub-directory per boot image PackageID.
    pub dir: PathBuf,
    /// The same directory as a path under the HTTPS root (e.g. `configmgr`).
    pub url_prefix: String,
    /// A distribution point fills missing boot images on demand
    /// (`[resolver.configmgr.distribution_point]`): every boot image counts as present, as
    /// `boot.<PackageID>.wim`, and the HTTPS service fetches it when a client picks it.
    pub fetch_missing: bool,
}

impl ImageStore {
    /// Files of the boot image `id`, or `None` when it is not on this server. IDs that are not
    /// plain PackageIDs (letters and digits) are never looked up, so a database value can
    /// not name a path outside `dir`.
    pub fn files(&self, id: &str) -> Option<BootImageFiles> {
        if !rules::is_plain_id(id) {
            return None;
        }
        let folder = self.dir.join(id);
        let prefix = self.url_prefix.trim_end_matches('/');
        let url = |name: &str| {
            if prefix.is_empty() {
                format!("{id}/{name}")
            } else {
                format!("{prefix}/{id}/{name}")
            }
        };
        let configmgr_name = format!("boot.{id}.wim");
        let wim = ["boot.wim", configmgr_name.as_str()]
            .into_iter()
            .find(|name| folder.join(name).is_file())
            .or(self.fetch_missing.then_some(configmgr_name.as_str()))?;
        let optional = |name: &str| folder.join(name).is_file().then(|| url(name));
        Some(BootImageFiles {
            boot_wim: url(wim),
            bcd: optional("BCD"),
            boot_sdi: optional("boot.sdi"),
        })
    }
}

/// Everything the resolver needs besides the database.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// The rules' settings.
    pub policy: Policy,
    /// Identifiers not used for device lookup.
    pub duplicates: DuplicateIdentifiers,
    /// Machines never answered (ConfigMgr's `MACIgnoreListFile`).
    pub excluded_macs: HashSet<MacAddr>,
    /// Treat BIOS clients as x64-capable unless iPXE reports otherwise.
    pub bios_assume_x64: bool,
    /// Boot image files on this server.
    pub images: ImageStore,
    /// Offset for ConfigMgr's local times; `None` uses this host's current offset.
    pub local_offset: Option<FixedOffset>,
}

/// Decides from the ConfigMgr site database.
#[derive(Debug, Clone)]
pub struct ConfigMgrResolver {
    db: Arc<dyn SiteDatabase>,
    settings: Arc<ResolverSettings>,
}

impl ConfigMgrResolver {
    /// A resolver over `db`.
    pub fn new(db: Arc<dyn SiteDatabase>, settings: ResolverSettings) -> Self {
        Self {
            db,
            settings: Arc::new(settings),
        }
    }

    /// The lookup keys for a request (empty keys match nothing).
    pub fn keys(&self, request: &BootRequest) -> LookupKeys {
        let identity = Identity::from_request(request, &self.settings.duplicates);
        let platform = Platform::from_request(request, self.settings.bios_assume_x64);
        let cpu_type = match platform {
            Some(p) if self.settings.policy.unknown_computers => p.unknown_cpu_type().to_string(),
            _ => String::new(),
        };
        LookupKeys {
            guid: identity.guid.unwrap_or_default(),
            mac: identity.mac.unwrap_or_default(),
            cpu_type,
        }
    }

    /// A cache key covering everything the decision depends on (MAC, usable GUID, platform),
    /// and nothing else: the protocol stage, SMBIOS strings and the relay address do not
    /// change what ConfigMgr offers, so one boot's requests share one lookup.
    pub fn cache_key(&self, request: &BootRequest) -> String {
        let identity = Identity::from_request(request, &self.settings.duplicates);
        let platform = Platform::from_request(request, self.settings.bios_assume_x64);
        format!(
            "{}|{}|{:?}",
            request.mac,
            identity.guid.unwrap_or_default(),
            platform
        )
    }

    async fn decide(&self, request: &BootRequest) -> Result<BootDecision, ResolveError> {
        let settings = &*self.settings;
        if settings.excluded_macs.contains(&request.mac) {
            tracing::debug!(mac = %request.mac, "on the exclusion list, not answered");
            return Ok(BootDecision::Ignore);
        }
        let platform = Platform::from_request(request, settings.bios_assume_x64);
        let keys = self.keys(request);
        let rows = if keys.guid.is_empty() && keys.mac.is_empty() && keys.cpu_type.is_empty() {
            Default::default()
        } else {
            self.db.lookup(&keys).await.map_err(|e| {
                tracing::warn!(backend = self.db.backend(), error = %e, mac = %request.mac, "site database lookup failed");
                ResolveError::Unavailable { backend: self.db.backend(), source: Box::new(e) }
            })?
        };
        let image_ids: HashSet<&str> = rows
            .deployments
            .iter()
            .filter_map(|d| d.boot_image_id.as_deref())
            .collect();
        let images: HashMap<String, BootImageFiles> = image_ids
            .into_iter()
            .filter_map(|id| Some((id.to_string(), settings.images.files(id)?)))
            .collect();
        let clock = Clock {
            now: Utc::now(),
            local_offset: settings
                .local_offset
                .unwrap_or_else(|| Local::now().offset().fix()),
        };
        let outcome = rules::decide(&rows, platform, &settings.policy, &clock, &images);
        let target = match &outcome.target {
            Target::Known(d) => format!("device {} ({})", d.resource_id, d.name.as_deref().unwrap_or("?")),
            Target::Unknown(u) => format!("unknown computer {} ({})", u.resource_id, u.cpu_type),
            Target::Nobody(why) => format!("nobody: {why:?}"),
        };
        for (id, why) in &outcome.rejected {
            // Debug form: a database value with line breaks cannot forge log lines.
            tracing::debug!(mac = %request.mac, deployment = ?id, reason = ?why, "deployment not offered");
        }
        tracing::debug!(mac = %request.mac, %target, decision = outcome.decision.kind(), "configmgr decision");
        Ok(outcome.decision)
    }
}

impl BootResolver for ConfigMgrResolver {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(self.decide(request))
    }

    fn name(&self) -> &'static str {
        "configmgr"
    }
}
