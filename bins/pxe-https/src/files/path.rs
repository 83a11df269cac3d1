//! Mapping a request path to a file under a served root, refusing everything else. Pure.

use std::path::PathBuf;

/// Why a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `..` segment.
    #[error("parent directory segment")]
    ParentSegment,
    /// A segment starting with `.` (hidden files are never served).
    #[error("hidden file")]
    Hidden,
    /// A NUL byte, a backslash or a control character.
    #[error("forbidden character")]
    ForbiddenCharacter,
    /// Percent-decoding gave bytes that are not UTF-8.
    #[error("path is not UTF-8")]
    NotUtf8,
    /// Longer than [`MAX_PATH_LEN`] or deeper than [`MAX_DEPTH`].
    #[error("path too long")]
    TooLong,
    /// The path names the root itself.
    #[error("empty path")]
    Empty,
}

/// Longest accepted request path, in bytes after decoding.
pub const MAX_PATH_LEN: usize = 1024;
/// Most path segments accepted.
pub const MAX_DEPTH: usize = 32;

/// Turns the path part of a URL (still percent-encoded) into a relative path with only
/// normal segments. `.` and empty segments are dropped; `..`, hidden names, NUL, `\` and
/// control characters are refused, also when percent-encoded.
///
/// ```
/// # use pxe_https::files::path::{relative_path, PathError};
/// assert_eq!(relative_path("/winpe/boot.wim").unwrap().to_str(), Some("winpe/boot.wim"));
/// assert_eq!(relative_path("/a/%2e%2e/etc/passwd"), Err(PathError::ParentSegment));
/// ```
pub fn relative_path(url_path: &str) -> Result<PathBuf, PathError> {
    let decoded = percent_decode(url_path)?;
    if decoded.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    let mut path = PathBuf::new();
    let mut depth = 0;
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(PathError::ParentSegment),
            s if s.starts_with('.') => return Err(PathError::Hidden),
            s if s.chars().any(|c| c.is_control() || c == '\\') => return Err(PathError::ForbiddenCharacter),
            s => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(PathError::TooLong);
                }
                path.push(s);
            }
        }
    }
    if depth == 0 {
        return Err(PathError::Empty);
    }
    Ok(path)
}

fn percent_decode(text: &str) -> Result<String, PathError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traversal_attempts_are_refused() {
        for (path, error) in [
            ("/../etc/passwd", PathError::ParentSegment),
            ("/a/../../x", PathError::ParentSegment),
            ("/%2e%2e/%2e%2e/etc/passwd", PathError::ParentSegment),
            ("/%2E%2E%2Fetc", PathError::ParentSegment),
            ("/..%5c..%5cwindows", PathError::Hidden),
            ("/a%5c..%5cb", PathError::ForbiddenCharacter),
            ("/a%00b", PathError::ForbiddenCharacter),
            ("/.ssh/id_rsa", PathError::Hidden),
            ("/%ff", PathError::NotUtf8),
            ("/", PathError::Empty),
        ] {
            assert_eq!(relative_path(path), Err(error), "{path}");
        }
        assert_eq!(relative_path("//a/./b%20c/").unwrap(), PathBuf::from("a/b c"));
    }

    proptest! {
        #[test]
        fn accepted_paths_stay_below_the_root(input in "(/|%2[eEfF]|\\.|\\.\\.|[a-z]|%5[cC]|%00){0,24}") {
            if let Ok(path) = relative_path(&input) {
                prop_assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{:?}", path);
            }
        }

        #[test]
        fn arbitrary_paths_never_panic(input in any::<String>()) {
            let _ = relative_path(&input);
        }
    }
}
