//! Pure normalisation of requested filenames into paths that cannot leave the served root.
//!
//! The rules, in order:
//! - the name must be UTF-8, at most [`MAX_PATH_LEN`] bytes, without control characters;
//! - `\` is a separator, as Windows Boot Manager asks for `\Boot\x64\wdsmgfw.efi`;
//! - one leading separator means "the top of the served tree" (like `tftpd -s`), so
//!   `/pxelinux.0` and `\Boot\BCD` are served from the root; `/etc/passwd` means
//!   `<root>/etc/passwd`, never the host's file;
//! - UNC names (`\\server\share`, `//x`) and drive letters (`C:`) are refused as absolute;
//! - `..` anywhere is refused (not resolved), and so are `%XX` escapes, which only an attacker
//!   or a confused URL tool sends to a TFTP server;
//! - empty components and `.` are dropped;
//! - a component starting with `.` (a hidden file or directory: `.git`, `.ssh`, editor swap
//!   files) is refused, as the HTTPS side refuses it: such names are never boot files.
//!
//! Symlinks are a property of the filesystem, not of the name, so the file provider checks
//! them again when it opens the file.

use std::fmt;
use std::path::PathBuf;

/// Longest accepted request name, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest accepted path component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A relative path below the served root, with only plain components.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafePath {
    components: Vec<String>,
}

impl SafePath {
    /// The components, top first. Never empty, never `.`, `..` or containing a separator.
    #[must_use]
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The path relative to the root.
    #[must_use]
    pub fn to_relative_path(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

/// Why a requested name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Nothing left after removing separators and `.`.
    #[error("empty file name")]
    Empty,
    /// Longer than [`MAX_PATH_LEN`] or a component longer than [`MAX_COMPONENT_LEN`].
    #[error("file name too long ({0} bytes)")]
    TooLong(usize),
    /// Not valid UTF-8.
    #[error("file name is not UTF-8")]
    NotUtf8,
    /// Contains a NUL or another control character.
    #[error("file name contains control character {0:#04x}")]
    ControlCharacter(u8),
    /// A `..` component.
    #[error("file name contains a `..` component")]
    ParentComponent,
    /// A UNC name or a drive letter.
    #[error("absolute file name")]
    Absolute,
    /// A `%XX` escape.
    #[error("file name contains a percent escape")]
    PercentEscape,
    /// A component starting with `.`: a hidden file or directory.
    #[error("hidden file name")]
    Hidden,
}

/// Turns a requested filename into a [`SafePath`] or refuses it.
///
/// ```
/// use netboot_tftp::path::{normalize, PathError};
/// assert_eq!(normalize(br"\Boot\x64\wdsmgfw.efi").unwrap().to_string(), "Boot/x64/wdsmgfw.efi");
/// assert_eq!(normalize(b"ipxe/./snponly.efi").unwrap().to_string(), "ipxe/snponly.efi");
/// assert_eq!(normalize(b"../etc/passwd"), Err(PathError::ParentComponent));
/// assert_eq!(normalize(br"..\..\x"), Err(PathError::ParentComponent));
/// assert_eq!(normalize(b"%2e%2e/x"), Err(PathError::PercentEscape));
/// assert_eq!(normalize(br"C:\Windows\win.ini"), Err(PathError::Absolute));
/// assert_eq!(normalize(b"boot/.git/config"), Err(PathError::Hidden));
/// ```
pub fn normalize(requested: &[u8]) -> Result<SafePath, PathError> {
    if requested.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong(requested.len()));
    }
    if let Some(&c) = requested.iter().find(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter(c));
    }
    let text = std::str::from_utf8(requested).map_err(|_| PathError::NotUtf8)?;
    if has_percent_escape(text.as_bytes()) {
        return Err(PathError::PercentEscape);
    }
    let is_separator = |c: char| c == '/' || c == '\\';
    let mut chars = text.chars();
    if chars.next().is_some_and(is_separator) && chars.next().is_some_and(is_separator) {
        return Err(PathError::Absolute);
    }
    let mut components = Vec::new();
    for component in text.split(is_separator) {
        match component {
            "" | "." => {}
            ".." => return Err(PathError::ParentComponent),
            _ if component.starts_with('.') => return Err(PathError::Hidden),
            _ if component.len() > MAX_COMPONENT_LEN => return Err(PathError::TooLong(component.len())),
            _ => components.push(component.to_owned()),
        }
    }
    if let Some(first) = components.first() {
        let bytes = first.as_bytes();
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            return Err(PathError::Absolute);
        }
    }
    if components.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(SafePath { components })
}

fn has_percent_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_traversal_spelling() {
        for attack in [
            &b"../secret"[..],
            b"..",
            b"a/../../secret",
            br"..\secret",
            br"a\..\..\secret",
            b"/../secret",
            b"./../secret",
            b"a/..",
        ] {
            assert_eq!(
                normalize(attack),
                Err(PathError::ParentComponent),
                "{}",
                String::from_utf8_lossy(attack)
            );
        }
        for attack in [
            &b"%2e%2e/secret"[..],
            b"%2E%2E%2Fsecret",
            b"..%2fsecret",
            b"a%5c..%5csecret",
            b"%00",
        ] {
            assert_eq!(normalize(attack), Err(PathError::PercentEscape));
        }
        for attack in [
            &br"\\server\share\x"[..],
            b"//etc/passwd",
            br"C:\boot.ini",
            b"c:x",
        ] {
            assert_eq!(normalize(attack), Err(PathError::Absolute));
        }
        assert_eq!(normalize(b"a\0b"), Err(PathError::ControlCharacter(0)));
        assert_eq!(normalize(b"a\nb"), Err(PathError::ControlCharacter(b'\n')));
        assert_eq!(normalize(b"\xff"), Err(PathError::NotUtf8));
        assert_eq!(normalize(b"/./"), Err(PathError::Empty));
        assert!(matches!(normalize(&[b'a'; 300]), Err(PathError::TooLong(300))));
    }

    #[test]
    fn keeps_ordinary_names() {
        assert_eq!(
            normalize(b"/etc/passwd").unwrap().to_relative_path(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            normalize(b"pxelinux.cfg/01-aa-bb").unwrap().components(),
            ["pxelinux.cfg", "01-aa-bb"]
        );
        assert_eq!(normalize(b"100%.txt").unwrap().to_string(), "100%.txt");
        assert_eq!(normalize(b"a..b/c..").unwrap().to_string(), "a..b/c..");
        assert_eq!(normalize(b"./a/./b.").unwrap().to_string(), "a/b.");
    }

    #[test]
    fn refuses_hidden_components_anywhere() {
        for hidden in [
            &b".hidden"[..],
            b"/.ssh/id_rsa",
            br"\boot\.git\config",
            b"a/..c",
            b"a/.b/c",
            b"...",
        ] {
            assert_eq!(
                normalize(hidden),
                Err(PathError::Hidden),
                "{}",
                String::from_utf8_lossy(hidden)
            );
        }
    }
}
