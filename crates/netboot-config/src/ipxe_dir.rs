//! Where the iPXE boot programs come from: the site's own build (made with
//! `contrib/ipxe/build-ipxe.sh` or `cargo xtask ipxe` into `<state_dir>/ipxe`), and Debian's
//! `ipxe` package only as a fallback, since Debian 12's iPXE (a 2019 snapshot) is built
//! without TLS: it cannot fetch `https://` scripts at all, nor trust the site CA.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Config;

/// Debian's `ipxe` package.
pub const DEBIAN_IPXE_DIR: &str = "/usr/lib/ipxe";
/// The site's build, below the state directory.
pub const SITE_IPXE_SUBDIR: &str = "ipxe";
/// The manifest the build writes next to the boot programs; its presence marks a site build.
pub const BUILD_MANIFEST: &str = "ipxe-build.toml";

/// The directory iPXE boot programs are served from, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpxeDir {
    /// `https.ipxe_dir` names it.
    Configured(PathBuf),
    /// The site's own build, found in `<state_dir>/ipxe`.
    SiteBuild(PathBuf),
    /// Debian's packaged iPXE: no site build in `looked_in`.
    Debian {
        /// `/usr/lib/ipxe`.
        path: PathBuf,
        /// Where a site build was looked for.
        looked_in: PathBuf,
    },
    /// `https.ipxe_dir = ""`: no second root.
    Disabled,
}

impl IpxeDir {
    /// The directory, unless disabled.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Configured(path) | Self::SiteBuild(path) | Self::Debian { path, .. } => Some(path),
            Self::Disabled => None,
        }
    }

    /// What a service says at start about the iPXE it serves, and whether that is a warning
    /// (Debian's fallback, or a manifest that cannot be read). `None` when disabled.
    pub fn start_message(&self) -> Option<(bool, String)> {
        let described = |path: &Path, what: &str| match self.manifest() {
            Some(Ok(build)) => (
                false,
                format!(
                    "serving {what} from {} ({}, commit {}, trusting {})",
                    path.display(),
                    build.source,
                    build.source_commit.as_deref().unwrap_or("unknown"),
                    build.trust_sha256.join(", ")
                ),
            ),
            Some(Err(e)) => (true, format!("serving iPXE from {}, but {e}", path.display())),
            None => (
                false,
                format!("serving iPXE boot programs from {}", path.display()),
            ),
        };
        Some(match self {
            Self::SiteBuild(path) => described(path, "the site's own iPXE build"),
            Self::Configured(path) => described(path, "iPXE (https.ipxe_dir)"),
            Self::Debian { path, looked_in } => (
                true,
                format!(
                    "no site iPXE build in {}: falling back to Debian's packaged iPXE in {}, which cannot \
                     fetch https:// scripts from this server; build the site's own with \
                     contrib/ipxe/build-ipxe.sh --trust <the site CA> --out {}",
                    looked_in.display(),
                    path.display(),
                    looked_in.display()
                ),
            ),
            Self::Disabled => return None,
        })
    }

    /// The build manifest of the directory, when it has one: `None` without a manifest,
    /// `Some(Err)` when it cannot be read.
    pub fn manifest(&self) -> Option<Result<IpxeBuildManifest, String>> {
        IpxeBuildManifest::read(self.path()?)
    }
}

/// What `ipxe-build.toml` records about a build. Unknown keys are ignored, so newer builds
/// stay readable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct IpxeBuildManifest {
    /// Source file name.
    pub source: String,
    /// SHA-256 of the source tarball (absent for a tree).
    pub source_sha256: Option<String>,
    /// Upstream commit, when known.
    pub source_commit: Option<String>,
    /// SHA-256 fingerprints (`aa:bb:...`) of the certificates the build trusts.
    pub trust_sha256: Vec<String>,
    /// Architectures built.
    pub arches: Vec<String>,
    /// Boot programs built.
    pub files: Vec<String>,
}

impl IpxeBuildManifest {
    /// Reads `dir/ipxe-build.toml`; `None` when there is none.
    pub fn read(dir: &Path) -> Option<Result<Self, String>> {
        let path = dir.join(BUILD_MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("reading {}: {e}", path.display()))),
        };
        Some(toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display())))
    }

    /// Whether the build trusts the certificate with this fingerprint (case-insensitive).
    pub fn trusts(&self, fingerprint: &str) -> bool {
        self.trust_sha256
            .iter()
            .any(|f| f.eq_ignore_ascii_case(fingerprint))
    }
}

impl Config {
    /// Where the site CA, the issued server certificate and the site's iPXE build live:
    /// `https.state_dir` (default `/var/lib/netboot`), resolved against the configuration
    /// file's directory.
    pub fn state_dir(&self) -> PathBuf {
        self.resolve_path(&self.https.state_dir)
    }

    /// The directory the site's own iPXE build is looked for in: `<state_dir>/ipxe`.
    pub fn site_ipxe_dir(&self) -> PathBuf {
        self.state_dir().join(SITE_IPXE_SUBDIR)
    }

    /// The iPXE boot programs' directory: `https.ipxe_dir` when set, else the site's build
    /// when `<state_dir>/ipxe` holds one (its `ipxe-build.toml`), else Debian's package.
    pub fn ipxe_dir(&self) -> IpxeDir {
        match &self.https.ipxe_dir {
            Some(dir) if dir.as_os_str().is_empty() => IpxeDir::Disabled,
            Some(dir) => IpxeDir::Configured(self.resolve_path(dir)),
            None => {
                let site = self.site_ipxe_dir();
                if site.join(BUILD_MANIFEST).is_file() {
                    IpxeDir::SiteBuild(site)
                } else {
                    IpxeDir::Debian {
                        path: PathBuf::from(DEBIAN_IPXE_DIR),
                        looked_in: site,
                    }
                }
            }
        }
    }

    /// The directory TFTP serves: `tftp.root` when set, else `/srv/tftp` if it exists, else
    /// the iPXE boot programs' directory ([`Config::ipxe_dir`]).
    pub fn tftp_root(&self) -> PathBuf {
        match &self.tftp.root {
            Some(root) => self.resolve_path(root),
            None if Path::new(crate::TftpConfig::DEFAULT_ROOT).is_dir() => {
                PathBuf::from(crate::TftpConfig::DEFAULT_ROOT)
            }
            None => self
                .ipxe_dir()
                .path()
                .map_or_else(|| PathBuf::from(DEBIAN_IPXE_DIR), Path::to_path_buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path, toml: &str) -> Config {
        let path = dir.join("netboot.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path)).unwrap()
    }

    #[test]
    fn the_state_dir_is_var_lib_or_relative_to_the_file() {
        let dir = std::env::temp_dir();
        assert_eq!(Config::default().state_dir(), Path::new("/var/lib/netboot"));
        let mut config = Config {
            base_dir: Some(dir.clone()),
            ..Config::default()
        };
        assert_eq!(config.state_dir(), Path::new("/var/lib/netboot"));
        config.https.state_dir = "state".into();
        assert_eq!(config.state_dir(), dir.join("state"));
        assert_eq!(config.site_ipxe_dir(), dir.join("state/ipxe"));
    }

    #[test]
    fn a_site_build_wins_over_debian_and_is_served_by_tftp_too() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let config = config_in(&dir, "[https]\nstate_dir = \"state\"\n");
        let site = dir.join("state/ipxe");
        assert_eq!(
            config.ipxe_dir(),
            IpxeDir::Debian {
                path: DEBIAN_IPXE_DIR.into(),
                looked_in: site.clone()
            }
        );
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("undionly.kpxe"), b"nbp").unwrap();
        assert!(
            matches!(config.ipxe_dir(), IpxeDir::Debian { .. }),
            "boot programs without a manifest are not a site build"
        );
        std::fs::write(
            site.join(BUILD_MANIFEST),
            "source = \"ipxe-2.0.0.tar.gz\"\ntrust_sha256 = [\"AA:bb\"]\nfuture_key = 1\n",
        )
        .unwrap();
        assert_eq!(config.ipxe_dir(), IpxeDir::SiteBuild(site.clone()));
        let manifest = config.ipxe_dir().manifest().unwrap().unwrap();
        assert!(manifest.trusts("aa:BB"));
        assert!(!manifest.trusts("cc"));
        if !Path::new(crate::TftpConfig::DEFAULT_ROOT).is_dir() {
            assert_eq!(config.tftp_root(), site);
        }

        let explicit = config_in(&dir, "[https]\nipxe_dir = \"mine\"\n[tftp]\nroot = \"t\"\n");
        assert_eq!(explicit.ipxe_dir(), IpxeDir::Configured(dir.join("mine")));
        assert_eq!(explicit.tftp_root(), dir.join("t"));
        let off = config_in(&dir, "[https]\nipxe_dir = \"\"\n");
        assert_eq!(off.ipxe_dir(), IpxeDir::Disabled);
    }

    #[test]
    fn a_broken_manifest_is_an_error_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(IpxeBuildManifest::read(dir.path()).is_none());
        std::fs::write(dir.path().join(BUILD_MANIFEST), "trust_sha256 = 5\n").unwrap();
        let error = IpxeBuildManifest::read(dir.path()).unwrap().unwrap_err();
        assert!(error.contains(BUILD_MANIFEST), "{error}");
    }
}
