//! URLs placed in scripts, and iPXE setting references.

use std::fmt;

use crate::error::{excerpt, ScriptError};

/// A reference to an iPXE setting, rendered `${name}` or `${name:type}`.
///
/// The only way a `${` reaches a rendered script: names and types are fixed by the server.
///
/// ```
/// use netboot_ipxe::Setting;
/// assert_eq!(Setting::typed("netX/mac", "hexhyp").to_string(), "${netX/mac:hexhyp}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting {
    name: &'static str,
    kind: Option<&'static str>,
}

impl Setting {
    /// `${name}`.
    ///
    /// # Panics
    /// When `name` contains characters outside `[A-Za-z0-9/._-]` (a programming error).
    pub fn new(name: &'static str) -> Self {
        assert!(is_setting_name(name), "invalid setting name {name:?}");
        Self { name, kind: None }
    }

    /// `${name:kind}`, e.g. `hex`, `hexhyp`, `uristring`.
    ///
    /// # Panics
    /// When `name` or `kind` are not valid (a programming error).
    pub fn typed(name: &'static str, kind: &'static str) -> Self {
        assert!(
            is_setting_name(name) && is_setting_name(kind),
            "invalid setting {name:?}:{kind:?}"
        );
        Self {
            name,
            kind: Some(kind),
        }
    }

    /// The setting's name, without type.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "${{{}:{kind}}}", self.name),
            None => write!(f, "${{{}}}", self.name),
        }
    }
}

/// True for a syntactically valid setting name or type (`net0/mac`, `netX.dhcp/ip`, `hexhyp`).
pub(crate) fn is_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

/// A URL ready to be one script token: no whitespace, no control characters, and no `$`, `{`
/// or `}` except inside [`Setting`] references the server appended itself.
///
/// ```
/// use netboot_ipxe::{Setting, Url};
/// let url = Url::path("/boot.ipxe/decide").query("mac", Setting::typed("netX/mac", "hexhyp"));
/// assert_eq!(url.as_str(), "/boot.ipxe/decide?mac=${netX/mac:hexhyp}");
/// assert_eq!(Url::path("/win pe/boot.wim").as_str(), "/win%20pe/boot.wim");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url(String);

/// A query value: literal text (percent-encoded) or a setting iPXE expands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue<'a> {
    /// Text known to the server.
    Literal(&'a str),
    /// A setting expanded by iPXE when it runs the command.
    Setting(Setting),
}

impl From<Setting> for QueryValue<'_> {
    fn from(setting: Setting) -> Self {
        Self::Setting(setting)
    }
}

impl<'a> From<&'a str> for QueryValue<'a> {
    fn from(text: &'a str) -> Self {
        Self::Literal(text)
    }
}

impl Url {
    /// A path on the server the script came from (iPXE resolves it against the script's own
    /// URL). Each path segment is percent-encoded; repeated slashes collapse and a leading
    /// slash is added.
    pub fn path(path: &str) -> Self {
        let mut out = String::with_capacity(path.len() + 1);
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            percent_encode_into(segment, &mut out);
        }
        if out.is_empty() || path.ends_with('/') {
            out.push('/');
        }
        Self(out)
    }

    /// `base` (an absolute `http(s)://` URL or a path) joined with a relative `path`.
    pub fn join(base: &Self, path: &str) -> Self {
        let mut joined = base.0.trim_end_matches('/').to_owned();
        let tail = Self::path(path);
        joined.push_str(&tail.0);
        Self(joined)
    }

    /// An absolute `http://` or `https://` URL from configuration or a resolver. Characters
    /// iPXE would interpret (`$`, `{`, `}`, space, non-ASCII, ...) are percent-encoded;
    /// control characters are refused.
    pub fn absolute(url: &str) -> Result<Self, ScriptError> {
        let refuse = |reason| {
            Err(ScriptError::InvalidUrl {
                url: excerpt(url),
                reason,
            })
        };
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return refuse("must start with http:// or https://");
        }
        if url.chars().any(char::is_control) {
            return refuse("contains a control character");
        }
        let mut out = String::with_capacity(url.len());
        for c in url.chars() {
            if c.is_ascii_alphanumeric() || "-._~:/?#[]@!&'()*+,;=%".contains(c) {
                out.push(c);
            } else {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    push_percent(byte, &mut out);
                }
            }
        }
        Ok(Self(out))
    }

    /// Whether `reference` is an absolute `http://` or `https://` URL, which
    /// [`Self::resolve`] uses as it is instead of placing it under the file root.
    pub fn is_absolute_reference(reference: &str) -> bool {
        let lower = reference.get(..8).unwrap_or(reference).to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    }

    /// A boot-file reference: absolute URLs are used as they are, anything else is a path
    /// under `files_base` (refused when it has control characters or a `..` segment).
    pub fn resolve(files_base: &Self, reference: &str) -> Result<Self, ScriptError> {
        if Self::is_absolute_reference(reference) {
            Self::absolute(reference)
        } else {
            if reference.chars().any(char::is_control) {
                return Err(ScriptError::InvalidUrl {
                    url: excerpt(reference),
                    reason: "contains a control character",
                });
            }
            // A boot file is below the file root; `..` could only point elsewhere.
            if reference.split(['/', '\\']).any(|segment| segment == "..") {
                return Err(ScriptError::InvalidUrl {
                    url: excerpt(reference),
                    reason: "contains a '..' segment",
                });
            }
            Ok(Self::join(files_base, reference))
        }
    }

    /// Appends `key=value` to the query string (the key must be a plain word).
    ///
    /// # Panics
    /// When `key` is not `[A-Za-z0-9_.-]+` (a programming error).
    pub fn query<'a>(mut self, key: &'static str, value: impl Into<QueryValue<'a>>) -> Self {
        assert!(
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "invalid query key {key:?}"
        );
        self.0.push(if self.0.contains('?') { '&' } else { '?' });
        self.0.push_str(key);
        self.0.push('=');
        match value.into() {
            QueryValue::Literal(text) => percent_encode_into(text, &mut self.0),
            QueryValue::Setting(setting) => self.0.push_str(&setting.to_string()),
        }
        self
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Percent-encodes everything outside the RFC 3986 unreserved set.
pub(crate) fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            push_percent(byte, out);
        }
    }
}

fn push_percent(byte: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xf)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_lose_expansion_characters() {
        let url = Url::absolute("https://dp.example/${password} x/é").unwrap();
        assert_eq!(url.as_str(), "https://dp.example/%24%7Bpassword%7D%20x/%C3%A9");
        assert!(Url::absolute("ftp://x").is_err());
        assert!(Url::absolute("http://x/\n").is_err());
    }

    #[test]
    fn relative_references_join_the_file_base() {
        let base = Url::path("/");
        assert_eq!(
            Url::resolve(&base, "winpe/boot.wim").unwrap().as_str(),
            "/winpe/boot.wim"
        );
        let base = Url::absolute("https://pxe.example:8443/files/").unwrap();
        assert_eq!(
            Url::resolve(&base, "/a b").unwrap().as_str(),
            "https://pxe.example:8443/files/a%20b"
        );
        assert_eq!(
            Url::resolve(&base, "http://other/x").unwrap().as_str(),
            "http://other/x"
        );
    }

    #[test]
    fn relative_references_never_leave_the_file_root_or_carry_script_characters() {
        let base = Url::path("/");
        for hostile in [
            "configmgr/../../etc/shadow",
            "..",
            "a/..\\b",
            "x\\..\\y",
            "a/b/..",
        ] {
            let error = Url::resolve(&base, hostile).unwrap_err().to_string();
            assert!(error.contains("'..'"), "{hostile:?}: {error}");
        }
        assert_eq!(
            Url::resolve(&base, "configmgr/PS1${x} || shell;/boot.wim")
                .unwrap()
                .as_str(),
            "/configmgr/PS1%24%7Bx%7D%20%7C%7C%20shell%3B/boot.wim"
        );
        assert_eq!(Url::resolve(&base, "a/..b/c.").unwrap().as_str(), "/a/..b/c.");
    }
}
