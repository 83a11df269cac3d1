//! Keeping secrets from the configuration out of error messages.
//!
//! A configuration error is printed to a terminal, a journal and sometimes a ticket. The TOML
//! parser's message shows the offending line and often the value itself, and a database URL
//! carries its password, so both are cut before they reach a message.

use std::ops::Range;

/// Words in a key's name that mark its value as possibly secret. `key` and `database` are
/// broad on purpose: a file path shown as `(not shown)` costs less than a leaked password.
const SECRET_KEY_WORDS: [&str; 7] = [
    "password",
    "passphrase",
    "secret",
    "token",
    "connection_string",
    "database",
    "key",
];

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; anything else unchanged.
#[must_use]
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The userinfo ends at the last `@` before the path: passwords may contain `@`.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The parser's message for `error` in `text`, unless the line it points at may hold a secret:
/// then only the line, the key and what was expected.
pub(crate) fn parse_error_message(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.to_string();
    };
    let (line_number, column, line) = line_at(text, &span);
    let key = line.split('=').next().unwrap_or_default().trim();
    let message = error.message();
    let secret_line = SECRET_KEY_WORDS
        .iter()
        .any(|word| key.to_ascii_lowercase().contains(word))
        || (line.contains("://") && line.contains('@'));
    // An unknown key's message lists key names only, never the value.
    if !secret_line || message.starts_with("unknown field") {
        return error.to_string();
    }
    let expected = message
        .split_once(", expected")
        .map(|(_, expected)| format!(": expected{expected}"))
        .unwrap_or_default();
    format!(
        "TOML parse error at line {line_number}, column {column}: invalid value for `{key}` (not shown, it may hold a secret){expected}"
    )
}

/// The 1-based line number and column of `span`, and the text of that line.
fn line_at<'a>(text: &'a str, span: &Range<usize>) -> (usize, usize, &'a str) {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_number = text[..line_start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    (line_number, column, &text[line_start..line_end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgres://u:p@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(
            redact_url_password("postgres://u:p@ss@h/d?x=@"),
            "postgres://u:***@h/d?x=@"
        );
        assert_eq!(redact_url_password("postgres://h/d"), "postgres://h/d");
        assert_eq!(redact_url_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn a_typo_in_the_database_url_does_not_echo_its_password() {
        let err = Config::from_toml_str("[records]\ndatabase = \"postgress://netboot:hunter2@db/netboot\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("records.database"), "{err}");
        assert!(err.contains("postgress://netboot:***@db/netboot"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_malformed_secret_line_is_located_but_not_shown() {
        for text in [
            "[records]\ndatabase = \"postgres://netboot:hunter2@db/netboot\n",
            "[admin]\nenabled = true\nusername = \"ops\"\npassword = 'hunter2'x\n",
            "[admin]\npassword = 1234hunter2\n",
        ] {
            let err = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
        let err = Config::from_toml_str("[admin]\npassword = 123456789012\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("123456789012"), "{err}");
        assert!(err.contains("`password`") && err.contains("expected"), "{err}");
    }

    #[test]
    fn other_parse_errors_keep_the_parser_message() {
        let err = Config::from_toml_str("[tftp]\nmax_blksize = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"big\""), "{err}");
        let err = Config::from_toml_str("[admin]\npasswordd = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `passwordd`"), "{err}");
    }
}
