//! The iPXE boot programs the proxy hands out must exist where TFTP serves them; otherwise
//! every client fails minutes later with a TFTP "file not found". Checked at start. They are
//! the site's own build when `<state_dir>/ipxe` holds one, else Debian's package.

use std::path::PathBuf;

use netboot_config::Config;
use netboot_core::ClientArch;

/// Architectures whose boot program Debian's `ipxe` package ships, so a missing one means the
/// package (or the configured directory) is missing.
const SHIPPED_ARCHES: &[ClientArch] = &[ClientArch::X86Bios, ClientArch::EfiX64];

/// A configured boot program is not in the TFTP root.
#[derive(Debug, thiserror::Error)]
#[error(
    "iPXE boot program {file} for {arch} clients is not in {dir} (tftp.root): build the site's own iPXE into \
     the state directory's ipxe/ (contrib/ipxe/build-ipxe.sh, see the README), or install Debian's `ipxe` \
     package (apt-get install ipxe) as a fallback, or set tftp.root (or --ipxe-dir) to a directory holding it"
)]
pub struct MissingBootProgram {
    /// The file name the proxy would hand out.
    pub file: String,
    /// Architecture name (`bios`, `x64-uefi`).
    pub arch: String,
    /// The TFTP root searched.
    pub dir: PathBuf,
}

/// Checks that the boot programs for BIOS and x64 UEFI clients are in the TFTP root.
/// Other architectures are only warned about, since Debian ships no iPXE for them.
pub fn check_boot_programs(config: &Config) -> Result<(), MissingBootProgram> {
    let dir = config.tftp_root();
    for (arch, file) in config.proxy.effective_boot_files() {
        if dir.join(&file).is_file() {
            continue;
        }
        if SHIPPED_ARCHES.contains(&arch) {
            return Err(MissingBootProgram {
                file,
                arch: arch.name().into_owned(),
                dir,
            });
        }
        tracing::debug!(
            "no {file} in {} for {} clients; they will not be answered usefully",
            dir.display(),
            arch.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_root(root: &std::path::Path) -> Config {
        Config::from_toml_str(&format!("[tftp]\nroot = \"{}\"\n", root.display())).unwrap()
    }

    #[test]
    fn missing_programs_name_the_debian_package() {
        let empty = tempfile::tempdir().unwrap();
        let error = check_boot_programs(&config_with_root(empty.path())).unwrap_err();
        assert_eq!(error.file, "undionly.kpxe");
        assert_eq!(error.arch, "bios");
        let message = error.to_string();
        assert!(message.contains("`ipxe` package"), "{message}");
        assert!(message.contains(&empty.path().display().to_string()), "{message}");
    }

    #[test]
    fn present_programs_pass() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["undionly.kpxe", "snponly.efi"] {
            std::fs::write(dir.path().join(file), b"nbp").unwrap();
        }
        check_boot_programs(&config_with_root(dir.path())).unwrap();
    }

    #[test]
    fn the_uefi_program_is_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("undionly.kpxe"), b"nbp").unwrap();
        let error = check_boot_programs(&config_with_root(dir.path())).unwrap_err();
        assert_eq!(
            (error.file.as_str(), error.arch.as_str()),
            ("snponly.efi", "x64-uefi")
        );
    }
}
