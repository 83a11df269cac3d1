//! Escaping what a user types before it goes into an LDAP search filter (RFC 4515) or a
//! distinguished name (RFC 4514), so a typed name can never widen a search or add an RDN.

use std::fmt::Write as _;

/// Escapes an assertion value for a search filter (RFC 4515 section 3): `*`, `(`, `)`, `\`,
/// NUL, and every other control character, as `\XX`. The result can never close the
/// filter's parenthesis or become a wildcard.
pub fn filter_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '(' | ')' | '\\') || c.is_ascii_control() {
            let _ = write!(out, "\\{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`filter_escape`] (any `\XX` becomes its byte); `None` for a bad escape
/// or bytes that are not UTF-8.
pub fn filter_unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes an attribute value for a DN (RFC 4514 section 2.4): `"`, `+`, `,`, `;`, `<`, `=`,
/// `>` and `\` with a backslash, a leading space or `#` and a trailing space likewise, and
/// NUL and other control characters as `\XX`. The value cannot add an RDN or end its own.
pub fn dn_value_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '=' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if c.is_ascii_control() {
            let _ = write!(out, "\\{:02x}", c as u32);
        } else if special {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`dn_value_escape`]: `\c` is `c`, `\XX` a byte; `None` for a bad escape.
pub fn dn_value_unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let next = *bytes.get(i + 1)?;
        if next.is_ascii_hexdigit() {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(next);
            i += 2;
        }
    }
    String::from_utf8(out).ok()
}
