//! The `wimboot` scenario's files: wimboot built from the pinned source (with `DEBUG=1`, so it
//! prints every file it is handed), a small boot WIM made with Debian's `wimlib-imagex`, and
//! the ConfigMgr hand-off files from `contrib/configmgr-handoff/`, and a stand-in for the
//! boot media's `TSMBootstrap.ini` as a secret file (served only over HTTPS, from
//! `https.private_dir`, through a per-boot URL).
//!
//! The WIM holds no Windows binaries, so wimboot stops with "FATAL: no bootmgr.exe" once it
//! has taken every file in; what it printed by then is the proof.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

/// Where the WIM is under the file root.
const WIM_PATH: &str = "e2e-wimboot/boot.wim";

/// The injected files of the decision: (name in `X:\Windows\System32`, path under the root).
pub(crate) const INJECTED: &[(&str, &str)] = &[
    ("winpeshl.ini", "configmgr-handoff/winpeshl-x64.ini"),
    ("netboot-handoff.cmd", "configmgr-handoff/netboot-handoff.cmd"),
    ("netboot-prestart.vbs", "configmgr-handoff/netboot-prestart.vbs"),
];

/// The secret file of the decision: (name in `X:\Windows\System32`, path under
/// `https.private_dir`). Its content is a test stand-in; a site exports the real one from its
/// boot media.
pub(crate) const SECRET: (&str, &str) = ("TSMBootstrap.ini", "e2e/TSMBootstrap.ini");

/// Every file name wimboot must report: the injected files, the secret file, the generated
/// per-machine variables file, and the WIM.
pub(crate) const CONSOLE_NAMES: &[&str] = &[
    "winpeshl.ini",
    "netboot-handoff.cmd",
    "netboot-prestart.vbs",
    SECRET.0,
    "netboot-variables.txt",
    "boot.wim",
];

/// The task sequence variables the decision hands over.
const VARIABLES: &[(&str, &str)] = &[
    ("OSDComputerName", "E2E-WIMBOOT"),
    ("SMSTSPreferredAdvertID", "E2E00001"),
];

/// Puts wimboot, the WIM and the hand-off files under `files` (the HTTPS root), and the
/// secret file under `private` (`https.private_dir`).
pub(crate) fn prepare(files: &Path, private: &Path) -> Result<()> {
    let workspace = super::workspace_root();
    let wimboot = crate::pinned::wimboot(&workspace, true)?;
    std::fs::copy(&wimboot, files.join("wimboot")).context("copying wimboot")?;
    let handoff = files.join("configmgr-handoff");
    std::fs::create_dir_all(&handoff)?;
    for (_, path) in INJECTED {
        let name = Path::new(path).file_name().expect("a file name");
        std::fs::copy(workspace.join("contrib").join(path), handoff.join(name))
            .with_context(|| format!("copying contrib/{path}"))?;
    }
    let secret = private.join(SECRET.1);
    std::fs::create_dir_all(secret.parent().expect("a parent"))?;
    std::fs::write(
        &secret,
        "; netboot e2e stand-in for the boot media's TSMBootstrap.ini\r\n[MediaInfo]\r\nMediaType=BootMedia\r\n",
    )
    .context("writing the secret hand-off file")?;
    make_wim(&files.join(WIM_PATH))
}

/// A one-image WIM with a `Windows\System32` tree, marked bootable.
fn make_wim(wim: &Path) -> Result<()> {
    let tree = wim.with_extension("tree");
    let _ = std::fs::remove_dir_all(&tree);
    let system32 = tree.join("Windows/System32");
    std::fs::create_dir_all(&system32)?;
    // The image's own winpeshl.ini, which the injected one shadows.
    std::fs::write(system32.join("winpeshl.ini"), "[LaunchApps]\r\nnotepad.exe\r\n")?;
    std::fs::write(
        tree.join("README.txt"),
        "netboot e2e boot image without Windows binaries\r\n",
    )?;
    let _ = std::fs::remove_file(wim);
    let output = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(wim)
        .args(["netboot-e2e", "--boot", "--compress=none", "--quiet"])
        .output()
        .context("running wimlib-imagex (Debian package wimtools)")?;
    if !output.status.success() {
        anyhow::bail!(
            "wimlib-imagex capture failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_dir_all(&tree)?;
    Ok(())
}

/// The TOML of the boot action for `name`.
pub(crate) fn action_toml(name: &str) -> String {
    let mut files = String::new();
    for (file, path) in INJECTED {
        let _ = write!(files, "{{ name = \"{file}\", path = \"{path}\" }}, ");
    }
    let (secret, secret_path) = SECRET;
    let _ = write!(
        files,
        "{{ name = \"{secret}\", path = \"{secret_path}\", secret = true }}, "
    );
    let variables: Vec<String> = VARIABLES
        .iter()
        .map(|(key, value)| format!("{key} = \"{value}\""))
        .collect();
    format!(
        "[[resolver.static.actions]]\nid = \"{name}\"\ntitle = \"e2e {name}\"\n\
         target = {{ kind = \"wimboot\", boot_wim = \"{WIM_PATH}\", files = [{files}], variables = {{ {} }} }}\n",
        variables.join(", ")
    )
}

/// What the services must have logged for a wimboot client at `ip`: each static file sent
/// with status 200, the per-machine variables file and the secret file handed over, and (the
/// entry being Required) the complete download of its boot image recorded as the run. `None`
/// when all are there.
pub(crate) fn missing_downloads(text: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    let remote = format!("remote={ip} ");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&remote)).collect();
    let mut paths: Vec<String> = vec!["/wimboot".into(), format!("/{WIM_PATH}")];
    paths.extend(INJECTED.iter().map(|(_, path)| format!("/{path}")));
    let missing: Vec<String> = paths
        .into_iter()
        .filter(|path| {
            // As `tracing` writes a string field: `path="/wimboot"`.
            let field = format!("path=\"{path}\"");
            !lines
                .iter()
                .any(|l| l.contains(&field) && l.contains("status=200") && l.contains(" file "))
        })
        .collect();
    let handed = lines
        .iter()
        .any(|l| l.contains("hand-off") && !l.contains("refused") && l.contains("netboot-variables.txt"));
    let secret_handed = lines.iter().any(|l| {
        l.contains("hand-off") && !l.contains("refused") && l.contains(SECRET.0) && l.contains("status=200")
    });
    let ran = lines.iter().any(|l| l.contains("Required deployment ran"));
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("serving {}", missing.join(", ")));
    }
    if !handed {
        problems.push("the hand-off of netboot-variables.txt".to_string());
    }
    if !secret_handed {
        problems.push(format!("the hand-off of the secret {}", SECRET.0));
    }
    if !ran {
        problems.push("the Required run (boot image downloaded completely)".to_string());
    }
    (!problems.is_empty()).then(|| format!("pxe-https did not log {} to {ip}", problems.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 107);

    #[test]
    fn every_download_must_be_logged() {
        let mut log = String::new();
        let mut paths: Vec<String> = vec!["/wimboot".into(), format!("/{WIM_PATH}")];
        paths.extend(INJECTED.iter().map(|(_, p)| format!("/{p}")));
        for path in &paths {
            let _ = writeln!(
                log,
                "2026-01-01T00:00:00Z  INFO pxe_https::app: file remote={IP} method=GET path=\"{path}\" status=200 range=\"\""
            );
        }
        let handoff = format!(
            "2026-01-01T00:00:00Z  INFO pxe_https::handoff: hand-off mac=52:54:00:e2:07:00 remote={IP} file=\"netboot-variables.txt\"\n\
             2026-01-01T00:00:01Z  INFO pxe_https::handoff: hand-off mac=52:54:00:e2:07:00 remote={IP} file=\"{}\" status=200\n",
            SECRET.0
        );
        let ran = format!(
            "2026-01-01T00:00:00Z  INFO pxe_https::required: Required deployment ran: boot image downloaded completely, offered as Available from now on remote={IP} mac=52:54:00:e2:07:00 deployment=wimboot boot_image=\"{WIM_PATH}\"\n"
        );
        assert!(missing_downloads(&format!("{log}{handoff}"), IP)
            .unwrap()
            .contains("Required run"));
        let handoff = format!("{handoff}{ran}");
        assert_eq!(missing_downloads(&format!("{log}{handoff}"), IP), None);
        assert!(missing_downloads(&log, IP)
            .unwrap()
            .contains("netboot-variables.txt"));
        let without_wim: String = log
            .lines()
            .filter(|l| !l.contains("boot.wim"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(missing_downloads(&format!("{without_wim}{handoff}"), IP)
            .unwrap()
            .contains("boot.wim"));
        let other = std::net::Ipv4Addr::new(10, 77, 0, 108);
        assert!(missing_downloads(&format!("{log}{handoff}"), other).is_some());
    }

    #[test]
    fn the_action_is_valid_configuration() {
        let text = format!(
            "[resolver.static]\nunmatched = \"exit\"\n{}\n[[resolver.static.machines]]\nmac = \"52:54:00:e2:07:00\"\nrequired = [\"wimboot\"]\n",
            action_toml("wimboot")
        );
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        let target = &parsed["resolver"]["static"]["actions"][0]["target"];
        let files = target["files"].as_array().unwrap();
        assert_eq!(files.len(), INJECTED.len() + 1);
        assert_eq!(files.last().unwrap()["secret"].as_bool(), Some(true));
        assert_eq!(
            target["variables"]["OSDComputerName"].as_str(),
            Some("E2E-WIMBOOT")
        );
    }
}
