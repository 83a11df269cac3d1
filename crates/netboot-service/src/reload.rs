//! Which configuration keys a reload (SIGHUP) applies while serving, and which changed.

use netboot_config::Config;

/// Keys (and whole tables, by prefix) a reload applies to the running services. Any other
/// changed key needs a restart, and the reload says so in the log.
///
/// * `[log] level`: the log filter.
/// * `[runtime] drain_secs`: the next stop's drain time.
/// * `[resolver]` (all but `deadline_ms`): rules, machines, actions, the cache, the ConfigMgr
///   and webhook settings; the resolver is rebuilt and swapped in, lookups in flight finish
///   on the old one.
/// * `[proxy]` answers: boot-file names, script and HTTP Boot URLs, server and TFTP
///   addresses, chainloading.
/// * `[https]` TLS: the certificate and key (also re-read when unchanged, so a renewed
///   certificate is picked up), for the main and the compatibility listener.
pub const RELOADABLE_KEYS: &[&str] = &[
    "log.level",
    "runtime.drain_secs",
    "resolver.kind",
    "resolver.static",
    "resolver.cache",
    "resolver.configmgr",
    "resolver.webhook",
    "proxy.boot_files",
    "proxy.server_address",
    "proxy.tftp_server",
    "proxy.ipxe_script_url",
    "proxy.ipxe_script_url_without_https",
    "proxy.http_boot_url",
    "proxy.client_port",
    "proxy.chainload_ipxe_roms",
    "proxy.allowed_relays",
    "proxy.server_address6",
    "proxy.tftp_server6",
    "https.cert",
    "https.key",
    "https.compat_tls_cert",
    "https.compat_tls_key",
];

/// Whether a reload applies `key` while serving.
///
/// ```
/// assert!(netboot_service::is_reloadable("resolver.static.machines"));
/// assert!(!netboot_service::is_reloadable("resolver.deadline_ms"));
/// assert!(!netboot_service::is_reloadable("tftp.listen"));
/// ```
#[must_use]
pub fn is_reloadable(key: &str) -> bool {
    RELOADABLE_KEYS.iter().any(|reloadable| {
        key == *reloadable
            || key
                .strip_prefix(reloadable)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// The dotted keys whose values differ between two configurations (a changed array of
/// tables, such as `resolver.static.machines`, is one key).
///
/// ```
/// let old = netboot_config::Config::default();
/// let new = netboot_config::Config::from_toml_str("[tftp]\nmax_window = 8\n[log]\nlevel = \"debug\"\n").unwrap();
/// assert_eq!(netboot_service::changed_keys(&old, &new), ["log.level", "tftp.max_window"]);
/// ```
#[must_use]
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(old), Ok(new)) = (toml::Value::try_from(old), toml::Value::try_from(new)) else {
        // Every section serialises; should one ever not, treat the whole file as changed.
        return vec!["(the whole configuration)".into()];
    };
    let mut changed = Vec::new();
    diff("", Some(&old), Some(&new), &mut changed);
    changed.sort();
    changed
}

fn diff(key: &str, old: Option<&toml::Value>, new: Option<&toml::Value>, changed: &mut Vec<String>) {
    match (old, new) {
        (Some(toml::Value::Table(old)), Some(toml::Value::Table(new))) => {
            let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in keys {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                diff(&path, old.get(name), new.get(name), changed);
            }
        }
        (old, new) if old != new => changed.push(key.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_tls_and_boot_files_reload_but_listeners_do_not() {
        let old = Config::default();
        let new = Config::from_toml_str(
            "[proxy]\ndhcp_port = 1067\n[proxy.boot_files]\nbios = \"ipxe.pxe\"\n\
             [https]\ncert = \"a.pem\"\nkey = \"a.key\"\nlisten = \"0.0.0.0:8443\"\n\
             [[resolver.static.machines]]\nmac = \"52:54:00:12:34:56\"\n",
        )
        .unwrap();
        let changed = changed_keys(&old, &new);
        assert_eq!(
            changed,
            [
                "https.cert",
                "https.key",
                "https.listen",
                "proxy.boot_files.bios",
                "proxy.dhcp_port",
                "resolver.static.machines"
            ]
        );
        let restart: Vec<&String> = changed.iter().filter(|k| !is_reloadable(k)).collect();
        assert_eq!(restart, ["https.listen", "proxy.dhcp_port"]);
        assert!(
            !is_reloadable("https.certificate_names"),
            "prefixes stop at a dot"
        );
    }
}
