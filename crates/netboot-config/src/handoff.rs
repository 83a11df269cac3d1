//! `[resolver.configmgr.handoff]`: what a ConfigMgr boot image is handed besides itself.

use std::collections::BTreeMap;

use netboot_core::WimbootFile;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigMgrHandoffConfig {
    /// Off by default: entries carry only the boot image.
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\n[resolver.configmgr.handoff]\n")
            .expect("README has a hand-off example")
            + 8;
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let text = format!(
            "[resolver]\nkind = \"configmgr\"\n[resolver.configmgr]\nbackend = \"sqlite\"\nsqlite = \"site.db\"\n{example}"
        );
        let config = Config::from_toml_str(&text).unwrap();
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
