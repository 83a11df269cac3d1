//! [MS-NLMP] 4.2.4 (NTLMv2 authentication) test vectors, and parser properties.

use proptest::prelude::*;

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn spec_credentials() -> Credentials {
    Credentials {
        user: "User".into(),
        domain: "Domain".into(),
        password: "Password".into(),
    }
}

const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];

/// 4.2.4: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", MsvAvEOL.
fn spec_target_info() -> Vec<u8> {
    hex("02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00")
}

#[test]
fn ntowf_v2_matches_4_2_4_1_1() {
    assert_eq!(
        ntowf_v2(&spec_credentials()).to_vec(),
        hex("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")
    );
}

#[test]
fn responses_match_4_2_4_2() {
    let responses = ntlmv2_responses(
        &spec_credentials(),
        &SERVER_CHALLENGE,
        &spec_target_info(),
        0,
        CLIENT_CHALLENGE,
    );
    // 4.2.4.2.1 LMv2 response.
    assert_eq!(
        responses.lm,
        hex("86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa aa aa aa aa")
    );
    // 4.2.4.2.2 NTProofStr, followed by 4.2.4.1.3 temp.
    assert_eq!(
        responses.nt[..16],
        hex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
    );
    assert_eq!(
        responses.nt[16..],
        hex(
            "01 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00
             02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00
             00 00 00 00 00 00 00 00"
        )
    );
    // 4.2.4.1.2 session base key.
    assert_eq!(
        responses.session_base_key.to_vec(),
        hex("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")
    );
}

#[test]
fn the_spec_challenge_parses_and_is_answered() {
    // 4.2.4.3 CHALLENGE_MESSAGE.
    let message = hex(
        "4e 54 4c 4d 53 53 50 00 02 00 00 00 0c 00 0c 00 38 00 00 00 33 82 8a e2 01 23 45 67 89 ab cd ef
         00 00 00 00 00 00 00 00 24 00 24 00 44 00 00 00 06 00 70 17 00 00 00 0f 53 00 65 00 72 00 76 00
         65 00 72 00 02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00
         65 00 72 00 00 00 00 00",
    );
    let challenge = Challenge::parse(&message).unwrap();
    assert_eq!(challenge.server_challenge, SERVER_CHALLENGE);
    assert_eq!(challenge.target_info, spec_target_info());
    assert_eq!(challenge.timestamp(), None);
    let answer =
        authenticate_message(&challenge, &spec_credentials(), "COMPUTER", 0, CLIENT_CHALLENGE).unwrap();
    let parsed = Authenticate::parse(&answer).unwrap();
    assert_eq!(parsed.user, "User");
    assert_eq!(parsed.domain, "Domain");
    assert_eq!(
        parsed.nt[..16],
        hex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
    );
    assert!(parsed.proves("Password", &SERVER_CHALLENGE));
    assert!(!parsed.proves("password", &SERVER_CHALLENGE));
    assert!(!parsed.proves("Password", &[0; 8]));
}

#[test]
fn a_server_timestamp_is_used_and_the_lm_response_left_empty() {
    let mut target_info = hex("07 00 08 00 11 22 33 44 55 66 77 88");
    target_info.extend_from_slice(&spec_target_info());
    let challenge = Challenge {
        flags: 0xe28a_8233,
        server_challenge: SERVER_CHALLENGE,
        target_info,
    };
    assert_eq!(challenge.timestamp(), Some(0x8877_6655_4433_2211));
    let answer = authenticate_message(&challenge, &spec_credentials(), "", 5, CLIENT_CHALLENGE).unwrap();
    let parsed = Authenticate::parse(&answer).unwrap();
    assert_eq!(parsed.lm, vec![0; 24]);
    assert_eq!(parsed.nt[24..32], 0x8877_6655_4433_2211u64.to_le_bytes());
}

#[test]
fn broken_messages_are_refused() {
    let good = Challenge {
        flags: CLIENT_FLAGS,
        server_challenge: SERVER_CHALLENGE,
        target_info: spec_target_info(),
    }
    .encode();
    assert!(Challenge::parse(&good).is_ok());
    for cut in [0, 8, 47, good.len() - 1] {
        assert!(Challenge::parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut wrong_type = good.clone();
    wrong_type[8] = 3;
    assert!(Challenge::parse(&wrong_type).is_err());
    let mut far_offset = good.clone();
    far_offset[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Challenge::parse(&far_offset).is_err());
    let not_unicode = Challenge {
        flags: 0x0000_0202,
        ..Challenge::parse(&good).unwrap()
    };
    assert_eq!(
        authenticate_message(&not_unicode, &spec_credentials(), "", 0, CLIENT_CHALLENGE),
        Err(NtlmError::NotUnicode)
    );
    assert!(format!("{:?}", spec_credentials()).contains("<redacted>"));
}

#[test]
fn the_negotiate_message_is_32_bytes_of_type_1() {
    let message = negotiate_message();
    assert_eq!(message.len(), 32);
    assert_eq!(&message[..12], b"NTLMSSP\0\x01\0\0\0");
}

/// Replays the committed fuzz corpus.
#[test]
fn fuzz_corpus_is_parsed_safely() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ntlm/corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        fuzzing::parse_untrusted(&std::fs::read(entry.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

proptest! {
    #[test]
    fn challenges_round_trip(
        flags in any::<u32>(),
        server_challenge in any::<[u8; 8]>(),
        pairs in proptest::collection::vec((1u16..10, proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
    ) {
        let mut target_info = Vec::new();
        for (id, value) in &pairs {
            target_info.extend_from_slice(&id.to_le_bytes());
            target_info.extend_from_slice(&(value.len() as u16).to_le_bytes());
            target_info.extend_from_slice(value);
        }
        target_info.extend_from_slice(&[0; 4]);
        let challenge = Challenge { flags, server_challenge, target_info };
        prop_assert_eq!(Challenge::parse(&challenge.encode()), Ok(challenge));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::parse_untrusted(&bytes);
        let mut framed = b"NTLMSSP\0\x02\0\0\0".to_vec();
        framed.extend_from_slice(&bytes);
        fuzzing::parse_untrusted(&framed);
    }
}
