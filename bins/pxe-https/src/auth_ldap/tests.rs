use proptest::prelude::*;

use super::*;

/// Whether `escaped` has one of `special` outside a `\XX` escape.
fn has_bare(escaped: &str, special: &[char]) -> bool {
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // A two-hex-digit escape: skip it.
            let pair: String = chars.by_ref().take(2).collect();
            if pair.len() != 2 || !pair.chars().all(|h| h.is_ascii_hexdigit()) {
                return true;
            }
        } else if special.contains(&c) {
            return true;
        }
    }
    false
}

#[test]
fn filter_metacharacters_are_hex_escaped() {
    assert_eq!(filter_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    assert_eq!(filter_escape("a\\b\0"), "a\\5cb\\00");
    assert_eq!(filter_escape("jörg o'neil"), "jörg o'neil");
    assert_eq!(
        format!("(uid={})", filter_escape("x)(|(uid=*")),
        "(uid=x\\29\\28|\\28uid=\\2a)"
    );
}

#[test]
fn dn_specials_are_escaped() {
    assert_eq!(dn_value_escape("a,ou=admins"), "a\\,ou\\=admins");
    assert_eq!(dn_value_escape(" #lead trail "), "\\ #lead trail\\ ");
    assert_eq!(dn_value_escape("#x"), "\\#x");
    assert_eq!(dn_value_escape("a+b\"c;<d>\\"), "a\\+b\\\"c\\;\\<d\\>\\\\");
    assert_eq!(dn_value_escape("nul\0"), "nul\\00");
    assert_eq!(dn_value_escape("alice"), "alice");
}

#[test]
fn upn_names_keep_a_typed_domain() {
    assert_eq!(upn_bind_name("alice", "example.org"), "alice@example.org");
    assert_eq!(upn_bind_name("alice@other.org", "example.org"), "alice@other.org");
    assert_eq!(upn_bind_name("EXAMPLE\\alice", "example.org"), "EXAMPLE\\alice");
}

#[test]
fn nested_groups_are_searched_in_the_groups_domain() {
    assert_eq!(
        naming_context("cn=admins,ou=groups,dc=example,dc=org"),
        "dc=example,dc=org"
    );
    assert_eq!(
        naming_context("CN=a\\,b, DC=corp,DC=example"),
        "DC=corp,DC=example"
    );
    assert_eq!(naming_context("cn=admins,o=example"), "o=example");
    assert_eq!(naming_context("o=example"), "o=example");
}

#[test]
fn the_any_of_filter_escapes_every_dn() {
    assert_eq!(
        any_of("member", &["cn=a(1),dc=x".into(), "cn=b*".into()]),
        "(|(member=cn=a\\281\\29,dc=x)(member=cn=b\\2a))"
    );
}

proptest! {
    #[test]
    fn filter_escaping_lets_no_metacharacter_through(value in any::<String>()) {
        let escaped = filter_escape(&value);
        prop_assert!(!has_bare(&escaped, &['*', '(', ')', '\0']), "{escaped:?}");
        prop_assert!(!escaped.chars().any(|c| c.is_ascii_control()));
        prop_assert_eq!(filter_unescape(&escaped), Some(value));
    }

    #[test]
    fn filter_escaping_of_metacharacter_soup(value in "[*()\\\\\0a-z=|&!]{0,40}") {
        let escaped = filter_escape(&value);
        prop_assert!(!has_bare(&escaped, &['*', '(', ')', '\0']), "{escaped:?}");
        // Inside a filter, the value never ends the assertion early.
        let filter = format!("(uid={escaped})");
        prop_assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
        prop_assert_eq!(filter_unescape(&escaped), Some(value));
    }

    #[test]
    fn dn_escaping_round_trips_and_adds_no_separator(value in any::<String>()) {
        let escaped = dn_value_escape(&value);
        prop_assert_eq!(dn_value_unescape(&escaped), Some(value.clone()));
        // Every separator and special of the value is behind a backslash.
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
            } else {
                prop_assert!(!matches!(c, ',' | '+' | '=' | ';' | '"' | '<' | '>' | '\0'), "{escaped:?}");
            }
        }
        prop_assert!(!escaped.starts_with(' ') && !escaped.starts_with('#'));
        prop_assert!(!escaped.ends_with(' ') || escaped.ends_with("\\ "));
    }
}
