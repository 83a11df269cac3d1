//! `[resolver.configmgr.handoff]`: what a ConfigMgr boot image is handed besides itself.

use std::collections::BTreeMap;

use netboot_core::WimbootFile;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// Files wimboot injects into `X:\Windows\System32` of every ConfigMgr boot image (and per
/// boot image), and task sequence variables per machine. See
/// `docs/configmgr-winpe-handoff.md`.
///
/// ```toml
/// [resolver.configmgr.handoff]
/// enabled = true
/// files = [
///   { name = "winpeshl.ini", path = "configmgr-handoff/winpeshl-x64.ini" },
///   { name = "netboot-handoff.cmd", path = "configmgr-handoff/netboot-handoff.cmd" },
///   { name = "netboot-prestart.vbs", path = "configmgr-handoff/netboot-prestart.vbs" },
/// ]
/// [resolver.configmgr.handoff.boot_images.PS100004]
/// files = [
///   { name = "TSMBootstrap.ini", path = "PS100004/TSMBootstrap.ini", secret = true },
///   { name = "variables.dat", path = "PS100004/variables.dat", secret = true },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigMgrHandoffConfig {
    /// Hand the files and variables below to the ConfigMgr boot images. Off: entries carry
    /// only the boot image.
    pub enabled: bool,
    /// Files for every boot image. `path` is under `https.root`, or, with `secret = true`,
    /// under `https.private_dir`.
    pub files: Vec<WimbootFile>,
    /// Files per boot image PackageID; a file named like a common one replaces it.
    pub boot_images: BTreeMap<String, BootImageHandoff>,
    /// Hand over `OSDComputerName` = the machine's ConfigMgr name (machines the site knows).
    pub computer_name: bool,
    /// Hand over `SMSTSPreferredAdvertID` = the deployment chosen in the menu.
    pub preferred_deployment: bool,
    /// Fixed task sequence variables for every machine. Never secrets: use the site's media
    /// variables file (a `secret` file) for those.
    pub variables: BTreeMap<String, String>,
}

impl Default for ConfigMgrHandoffConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            files: Vec::new(),
            boot_images: BTreeMap::new(),
            computer_name: true,
            preferred_deployment: true,
            variables: BTreeMap::new(),
        }
    }
}

/// `[resolver.configmgr.handoff.boot_images.<PackageID>]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BootImageHandoff {
    /// Files injected into this boot image.
    pub files: Vec<WimbootFile>,
}

impl ConfigMgrHandoffConfig {
    pub(crate) fn validate(&self, key: &str, problems: &mut Problems) {
        check_files(&format!("{key}.files"), &self.files, problems);
        for (id, image) in &self.boot_images {
            let image_key = format!("{key}.boot_images.{id}");
            if id.is_empty() || id.len() > 16 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(
                    image_key.clone(),
                    "is not a boot image PackageID (letters and digits)",
                );
            }
            check_files(&format!("{image_key}.files"), &image.files, problems);
        }
        if let Err(e) = netboot_core::handoff::check_variables(&self.variables) {
            problems.push(format!("{key}.variables"), e.to_string());
        }
        if self.enabled && self.files.is_empty() && self.boot_images.is_empty() {
            problems.push(
                format!("{key}.files"),
                "the hand-off needs files to inject (see docs/configmgr-winpe-handoff.md)",
            );
        }
    }
}

/// Checks injected files: names wimboot can inject, relative paths without `..`, no name
/// twice.
pub(crate) fn check_files(key: &str, files: &[WimbootFile], problems: &mut Problems) {
    for (index, file) in files.iter().enumerate() {
        let name_ok = !file.name.is_empty()
            && file.name.len() <= 64
            && !file.name.starts_with(['-', '.'])
            && file
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            problems.push(
                format!("{key}[{index}].name"),
                format!(
                    "{:?} is not a file name (A-Z, a-z, 0-9, '.', '_', '-', at most 64)",
                    file.name
                ),
            );
        }
        let path_ok = !file.path.is_empty()
            && !file.path.contains("://")
            && !file.path.starts_with('/')
            && !file.path.contains('\\')
            && !file.path.split('/').any(|part| part == "..")
            && !file.path.chars().any(char::is_control);
        let absolute_url = file.path.starts_with("http://") || file.path.starts_with("https://");
        if !(path_ok || absolute_url && !file.secret) {
            problems.push(
                format!("{key}[{index}].path"),
                "must be a relative path without `..` (secret files: below https.private_dir)",
            );
        }
        if files[..index]
            .iter()
            .any(|other| other.name.eq_ignore_ascii_case(&file.name))
        {
            problems.push(
                format!("{key}[{index}].name"),
                format!("{} is listed twice", file.name),
            );
        }
        if file
            .name
            .eq_ignore_ascii_case(netboot_core::handoff::VARIABLES_FILE)
        {
            problems.push(
                format!("{key}[{index}].name"),
                format!("{} is generated by the server", file.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn handoff_is_off_by_default_and_read_per_boot_image() {
        let config = Config::default();
        assert!(!config.resolver.configmgr.handoff.enabled);
        let text = r#"
[resolver]
kind = "configmgr"
[resolver.configmgr]
backend = "sqlite"
sqlite = "site.db"
[resolver.configmgr.handoff]
enabled = true
files = [{ name = "winpeshl.ini", path = "handoff/winpeshl.ini" }]
variables = { SMSTSLanguagePackID = "1031" }
[resolver.configmgr.handoff.boot_images.PS100004]
files = [{ name = "variables.dat", path = "PS100004/variables.dat", secret = true }]
"#;
        let config = Config::from_toml_str(text).unwrap();
        let handoff = &config.resolver.configmgr.handoff;
        assert!(handoff.enabled && handoff.computer_name && handoff.preferred_deployment);
        assert!(handoff.boot_images["PS100004"].files[0].secret);
    }

    #[test]
    fn the_readme_example_is_valid() {
        let example = crate::readme::example_starting_with("[resolver.configmgr.handoff]\n");
        let config = Config::from_toml_str(&example.file).unwrap();
        assert_eq!(config.resolver.configmgr.handoff.files.len(), 3);
    }

    #[test]
    fn bad_files_and_variables_name_their_key() {
        let text = r#"
[resolver]
kind = "configmgr"
[resolver.configmgr]
backend = "sqlite"
sqlite = "site.db"
[resolver.configmgr.handoff]
enabled = true
files = [
  { name = "win peshl.ini", path = "../etc/passwd" },
  { name = "a.ini", path = "a" },
  { name = "A.INI", path = "b" },
  { name = "netboot-variables.txt", path = "c" },
  { name = "s.dat", path = "https://x/s.dat", secret = true },
]
variables = { "_SMSTSMP" = "x" }
[resolver.configmgr.handoff.boot_images."../x"]
files = []
"#;
        let err = Config::from_toml_str(text).unwrap_err().to_string();
        for key in [
            "resolver.configmgr.handoff.files[0].name",
            "resolver.configmgr.handoff.files[0].path",
            "resolver.configmgr.handoff.files[2].name",
            "resolver.configmgr.handoff.files[3].name",
            "resolver.configmgr.handoff.files[4].path",
            "resolver.configmgr.handoff.variables",
            "resolver.configmgr.handoff.boot_images.../x",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }
}

/// `[resolver.configmgr.distribution_point]`: fetch boot images that are not on this server
/// from a distribution point over HTTPS into `boot_image_dir`.
///
/// ```toml
/// [resolver.configmgr.distribution_point]
/// url = "https://dp01.corp.example/SMS_DP_SMSPKG$/{package_id}/boot.{package_id}.wim"
/// auth = "ntlm"
/// user = "pxe-reader"
/// domain = "CORP"
/// password_env = "NETBOOT_DP_PASSWORD"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DistributionPointConfig {
    /// Where a boot image is fetched; `{package_id}` is replaced. `https://` only.
    pub url: String,
    /// `none`, `basic` or `ntlm`.
    pub auth: DpAuth,
    /// User name (for `basic`, as the DP expects it, e.g. `CORP\pxe-reader`).
    pub user: String,
    /// NetBIOS domain for `ntlm`.
    pub domain: String,
    /// Environment variable holding the password.
    pub password_env: String,
    /// PEM file of the CA(s) the DP's certificate chains to; the system bundle when absent.
    /// Relative paths are taken from the configuration file's directory.
    pub ca_file: Option<std::path::PathBuf>,
    /// Fetched boot images together stay below this many bytes.
    pub max_cache_bytes: u64,
    /// Pinned SHA-256 (hex) per PackageID; a download that differs is discarded.
    pub sha256: BTreeMap<String, String>,
}

/// How the DP authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DpAuth {
    /// Anonymous access.
    None,
    /// HTTP basic authentication.
    Basic,
    /// NTLMv2 (IIS Windows authentication).
    #[default]
    Ntlm,
}

impl Default for DistributionPointConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: DpAuth::Ntlm,
            user: String::new(),
            domain: String::new(),
            password_env: String::new(),
            ca_file: None,
            max_cache_bytes: 10 << 30,
            sha256: BTreeMap::new(),
        }
    }
}

impl DistributionPointConfig {
    pub(crate) fn validate(&self, key: &str, problems: &mut Problems) {
        let url_ok = self.url.starts_with("https://")
            && self.url.contains("{package_id}")
            && !self.url.chars().any(|c| c.is_whitespace() || c.is_control())
            && !self.url["https://".len().min(self.url.len())..]
                .split('/')
                .next()
                .unwrap_or("")
                .contains('@');
        if !url_ok {
            problems.push(
                format!("{key}.url"),
                "must be an https:// URL without credentials, containing {package_id}",
            );
        }
        if self.auth != DpAuth::None {
            if self.user.is_empty() {
                problems.push(format!("{key}.user"), "basic and ntlm need a user");
            }
            if self.password_env.is_empty() || self.password_env.contains('=') {
                problems.push(
                    format!("{key}.password_env"),
                    "basic and ntlm need the name of the environment variable holding the password",
                );
            }
        }
        if self.max_cache_bytes < 1 << 20 {
            problems.push(format!("{key}.max_cache_bytes"), "must be at least 1 MiB");
        }
        for (id, hash) in &self.sha256 {
            let id_ok = !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !id_ok || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(
                    format!("{key}.sha256.{id}"),
                    "must map a PackageID to 64 hexadecimal digits",
                );
            }
        }
    }
}

#[cfg(test)]
mod dp_tests {
    use crate::Config;

    const BASE: &str = "[resolver]\nkind = \"configmgr\"\n[resolver.configmgr]\nbackend = \"sqlite\"\nsqlite = \"site.db\"\n";

    #[test]
    fn a_distribution_point_is_optional_and_checked() {
        assert!(Config::from_toml_str(BASE)
            .unwrap()
            .resolver
            .configmgr
            .distribution_point
            .is_none());
        let good = format!(
            "{BASE}[resolver.configmgr.distribution_point]\nurl = \"https://dp01/SMS_DP_SMSPKG$/{{package_id}}/boot.{{package_id}}.wim\"\nuser = \"pxe\"\ndomain = \"CORP\"\npassword_env = \"DP_PW\"\n"
        );
        let dp = Config::from_toml_str(&good)
            .unwrap()
            .resolver
            .configmgr
            .distribution_point
            .unwrap();
        assert_eq!(dp.auth, super::DpAuth::Ntlm);
        let bad = format!(
            "{BASE}[resolver.configmgr.distribution_point]\nurl = \"http://u:p@dp01/x\"\nauth = \"basic\"\nmax_cache_bytes = 5\nsha256 = {{ PS1 = \"xyz\" }}\n"
        );
        let err = Config::from_toml_str(&bad).unwrap_err().to_string();
        for key in ["url", "user", "password_env", "max_cache_bytes", "sha256.PS1"] {
            assert!(
                err.contains(&format!("resolver.configmgr.distribution_point.{key}")),
                "{key}: {err}"
            );
        }
    }
}
