use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_800_000_000;

fn key() -> TokenKey {
    TokenKey::from_bytes(*b"0123456789abcdef0123456789abcdef")
}

fn scope(name: &str) -> Scope {
    Scope::new(name).unwrap()
}

fn mac(text: &str) -> MacAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn issued() -> (Claims, Token) {
    let claims = Claims::new(
        scope("handoff"),
        mac("52:54:00:12:34:56"),
        ip("10.0.0.20"),
        NOW + 600,
        "PS120002",
    )
    .unwrap();
    let token = key().issue(&claims);
    (claims, token)
}

fn presented<'a>(scope: &'a Scope) -> Presented<'a> {
    Presented {
        scope,
        mac: mac("52:54:00:12:34:56"),
        ip: ip("10.0.0.20"),
        now: NOW,
    }
}

#[test]
fn an_issued_token_verifies_for_its_machine_until_it_expires() {
    let (claims, token) = issued();
    let handoff = scope("handoff");
    assert_eq!(key().verify(token.as_str(), &presented(&handoff)), Ok(claims));
    let last_second = Presented {
        now: NOW + 599,
        ..presented(&handoff)
    };
    assert!(key().verify(token.as_str(), &last_second).is_ok());
    for now in [NOW + 600, NOW + 601, u64::MAX] {
        let late = Presented {
            now,
            ..presented(&handoff)
        };
        assert_eq!(key().verify(token.as_str(), &late), Err(TokenError::Expired));
    }
}

#[test]
fn replay_from_another_machine_or_address_is_refused() {
    let (_, token) = issued();
    let handoff = scope("handoff");
    let other_mac = Presented {
        mac: mac("52:54:00:12:34:57"),
        ..presented(&handoff)
    };
    assert_eq!(
        key().verify(token.as_str(), &other_mac),
        Err(TokenError::WrongMachine)
    );
    let other_ip = Presented {
        ip: ip("10.0.0.21"),
        ..presented(&handoff)
    };
    assert_eq!(
        key().verify(token.as_str(), &other_ip),
        Err(TokenError::WrongAddress)
    );
    let v6 = Presented {
        ip: ip("fe80::5054:ff:fe12:3456"),
        ..presented(&handoff)
    };
    assert_eq!(key().verify(token.as_str(), &v6), Err(TokenError::WrongAddress));
}

#[test]
fn ipv4_mapped_peers_match_their_ipv4_address() {
    let (_, token) = issued();
    let handoff = scope("handoff");
    let mapped = Presented {
        ip: ip("::ffff:10.0.0.20"),
        ..presented(&handoff)
    };
    assert!(key().verify(token.as_str(), &mapped).is_ok());
}

#[test]
fn a_token_of_another_scope_is_refused() {
    let (_, token) = issued();
    let auth = scope("auth");
    assert_eq!(
        key().verify(token.as_str(), &presented(&auth)),
        Err(TokenError::WrongScope)
    );
}

#[test]
fn another_key_or_any_altered_byte_is_refused() {
    let (_, token) = issued();
    let handoff = scope("handoff");
    let other = TokenKey::from_bytes([1; KEY_LEN]);
    assert_eq!(
        other.verify(token.as_str(), &presented(&handoff)),
        Err(TokenError::BadSignature)
    );
    let text = token.as_str();
    for at in 0..text.len() {
        let original = text.as_bytes()[at];
        for replacement in [b'A', b'_', b'z', b'.'] {
            if replacement == original {
                continue;
            }
            let mut tampered = text.as_bytes().to_vec();
            tampered[at] = replacement;
            let tampered = String::from_utf8(tampered).unwrap();
            let outcome = key().verify(&tampered, &presented(&handoff));
            assert!(
                matches!(outcome, Err(TokenError::BadSignature | TokenError::Malformed)),
                "{tampered} gave {outcome:?}"
            );
        }
    }
}

#[test]
fn claims_altered_and_resigned_by_someone_without_the_key_do_not_verify() {
    // Someone who changes the expiry and signs with a key of their own.
    let (mut claims, _) = issued();
    claims.expires_at = u64::MAX;
    let forged = TokenKey::from_bytes([9; KEY_LEN]).issue(&claims);
    let handoff = scope("handoff");
    assert_eq!(
        key().verify(forged.as_str(), &presented(&handoff)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn garbage_is_malformed() {
    let handoff = scope("handoff");
    for text in ["", ".", "abc", "a.b", "!!!.???", &"A".repeat(MAX_TOKEN_LEN + 1)] {
        assert!(
            matches!(
                key().verify(text, &presented(&handoff)),
                Err(TokenError::Malformed | TokenError::BadSignature)
            ),
            "{text:?}"
        );
    }
}

#[test]
fn scopes_and_contexts_are_checked() {
    assert!(Scope::new("handoff").is_some());
    assert!(Scope::new("auth-2").is_some());
    for bad in ["", "Handoff", "a b", "a.b", &"a".repeat(MAX_SCOPE_LEN + 1)] {
        assert!(Scope::new(bad).is_none(), "{bad:?}");
    }
    let claims = |context: &str| {
        Claims::new(
            scope("handoff"),
            mac("52:54:00:12:34:56"),
            ip("10.0.0.20"),
            NOW,
            context,
        )
    };
    assert!(claims("").is_ok());
    assert!(claims("PS1-2_3.x").is_ok());
    for bad in ["a/b", "a b", "${x}", "é", &"a".repeat(MAX_CONTEXT_LEN + 1)] {
        assert_eq!(claims(bad), Err(ContextError), "{bad:?}");
    }
}

#[test]
fn key_files_round_trip_and_bad_ones_are_refused() {
    let key = key();
    let text = key.to_hex();
    assert_eq!(text.len(), 65);
    let again = TokenKey::from_hex(&text).unwrap();
    let (claims, token) = issued();
    assert_eq!(again.issue(&claims), token);
    for bad in ["", "00", &"g".repeat(64), &"0".repeat(63), &"é".repeat(32)] {
        assert!(TokenKey::from_hex(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
}

#[test]
fn tokens_are_url_safe() {
    let (_, token) = issued();
    assert!(token
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    assert!(token.as_str().len() < MAX_TOKEN_LEN);
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

proptest! {
    #[test]
    fn every_issued_token_round_trips(
        mac_bytes in any::<[u8; 6]>(),
        ip in any_ip(),
        expires_at in 1u64..,
        context in "[A-Za-z0-9._-]{0,64}",
        scope_name in "[a-z0-9-]{1,32}",
        key_bytes in any::<[u8; 32]>(),
    ) {
        let key = TokenKey::from_bytes(key_bytes);
        let scope = Scope::new(&scope_name).unwrap();
        let claims = Claims::new(scope.clone(), MacAddr(mac_bytes), ip, expires_at, &context).unwrap();
        let token = key.issue(&claims);
        let presented = Presented { scope: &scope, mac: MacAddr(mac_bytes), ip, now: expires_at - 1 };
        prop_assert_eq!(key.verify(token.as_str(), &presented), Ok(claims));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,500}") {
        crate::fuzzing::verify_untrusted(text.as_bytes());
    }
}

/// Replays the committed fuzz corpus.
#[test]
fn fuzz_corpus_is_refused_safely() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/token/corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        crate::fuzzing::verify_untrusted(&std::fs::read(entry.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}
