//! Where the configuration comes from.

use std::fmt;
use std::path::{Path, PathBuf};

/// The configuration file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/netboot/netboot.toml";

/// Where a binary's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config FILE` (or `NETBOOT_CONFIG`).
    Given(PathBuf),
    /// [`DEFAULT_CONFIG_PATH`], which exists.
    Default(PathBuf),
    /// No file: the embedded defaults.
    Embedded,
}

impl ConfigSource {
    /// `given`, else [`DEFAULT_CONFIG_PATH`] when it exists, else the embedded defaults.
    #[must_use]
    pub fn find(given: Option<PathBuf>) -> Self {
        match given {
            Some(path) => Self::Given(path),
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => Self::Default(DEFAULT_CONFIG_PATH.into()),
            None => Self::Embedded,
        }
    }

    /// The file to read, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Given(path) | Self::Default(path) => Some(path),
            Self::Embedded => None,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given(path) | Self::Default(path) => write!(f, "{}", path.display()),
            Self::Embedded => write!(f, "the embedded defaults (no --config, no {DEFAULT_CONFIG_PATH})"),
        }
    }
}
