//! Boot images fetched from a distribution point on demand (`[resolver.configmgr.
//! distribution_point]`, [`netboot_dp`]): a decision whose entry needs a boot image that is
//! not on disk yet starts the copy and tells the client on its console how far it got, then
//! lets it ask again, instead of leaving it waiting on a download that has not started.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use netboot_config::{Config, DpAuth, ResolverKind};
use netboot_core::{BootDecision, BootTarget};
use netboot_dp::{Auth, Availability, DpSettings, DpSource, Endpoint, HttpsUrl};

/// The distribution point source and where its images appear under the file root.
#[derive(Debug)]
pub struct DpGate {
    source: Arc<DpSource>,
    /// `boot_image_url`, without trailing `/`.
    prefix: String,
    host: String,
}

impl DpGate {
    /// The gate of a ConfigMgr configuration with a distribution point, else `None`.
    pub fn from_config(config: &Config) -> Result<Option<Self>> {
        let cm = &config.resolver.configmgr;
        let (ResolverKind::Configmgr, Some(dp)) = (config.resolver.kind, &cm.distribution_point) else {
            return Ok(None);
        };
        const KEY: &str = "resolver.configmgr.distribution_point";
        let password = || {
            std::env::var(&dp.password_env).with_context(|| {
                format!(
                    "{KEY}.password_env: environment variable {} is not set",
                    dp.password_env
                )
            })
        };
        let auth = match dp.auth {
            DpAuth::None => Auth::None,
            DpAuth::Basic => Auth::Basic {
                user: dp.user.clone(),
                password: password()?,
            },
            DpAuth::Ntlm => Auth::Ntlm(netboot_dp::ntlm::Credentials {
                user: dp.user.clone(),
                domain: dp.domain.clone(),
                password: password()?,
            }),
        };
        let url = HttpsUrl::parse(&dp.url.replace("{package_id}", "PS100001")).context(KEY)?;
        let ca = dp.ca_file.as_ref().map(|path| config.resolve_path(path));
        let endpoint = Endpoint::new(&url.host, url.port, ca.as_deref(), auth).context(KEY)?;
        let source = DpSource::new(
            endpoint,
            DpSettings {
                url_template: dp.url.clone(),
                dir: config.resolve_path(&cm.boot_image_dir),
                max_cache_bytes: dp.max_cache_bytes,
                sha256: dp.sha256.clone(),
            },
        );
        Ok(Some(Self {
            source,
            prefix: cm.boot_image_url.trim_end_matches('/').to_owned(),
            host: url.host,
        }))
    }

    /// For each entry of `decision` whose boot image is not ready: what to tell the client.
    /// Asking starts the copy.
    pub fn waiting(&self, decision: &BootDecision) -> BTreeMap<String, Vec<String>> {
        let BootDecision::Boot(menu) = decision else {
            return BTreeMap::new();
        };
        let mut waiting = BTreeMap::new();
        for action in &menu.entries {
            let BootTarget::Wimboot { boot_wim, .. } = &action.target else {
                continue;
            };
            let Some(id) = self.package_of(boot_wim) else {
                continue;
            };
            let lines = match self.source.availability(id) {
                Availability::Ready => continue,
                Availability::Checking => vec![format!(
                    "Checking boot image {id} copied from distribution point {}",
                    self.host
                )],
                Availability::Fetching { done, total } => vec![format!(
                    "Boot image {id} is being copied from distribution point {}: {}",
                    self.host,
                    progress(done, total)
                )],
                Availability::Failed(reason) => vec![
                    format!(
                        "Boot image {id} could not be copied from distribution point {}:",
                        self.host
                    ),
                    reason,
                ],
            };
            waiting.insert(action.id.clone(), lines);
        }
        waiting
    }

    /// The PackageID of a boot image path the ConfigMgr resolver made for a fetched image
    /// (`<prefix>/<id>/boot.<id>.wim`).
    fn package_of<'a>(&self, boot_wim: &'a str) -> Option<&'a str> {
        let rest = if self.prefix.is_empty() {
            boot_wim
        } else {
            boot_wim.strip_prefix(&self.prefix)?.strip_prefix('/')?
        };
        let (id, file) = rest.split_once('/')?;
        (netboot_dp::is_package_id(id) && file == DpSource::file_name(id)).then_some(id)
    }
}

fn progress(done: u64, total: u64) -> String {
    const MIB: u64 = 1 << 20;
    if total > 0 {
        format!("{} of {} MiB", done / MIB, total.div_ceil(MIB))
    } else {
        format!("{} MiB so far", done / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_in_mib() {
        assert_eq!(progress(120 << 20, 512 << 20), "120 of 512 MiB");
        assert_eq!(progress(3 << 20, 0), "3 MiB so far");
    }
}
