//! Answering probes: which scopes a peer holds, and the reply naming them.

use super::{Match, Probe, ProbeMatches, ProbeVersion, MATCH_BY_STRCMP0};

/// Who answers: the stable endpoint name of this peer and the instance number of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderIdentity {
    /// `urn:uuid:...`, the same for every reply of this peer (see [`format_uuid`]).
    pub endpoint: String,
    /// WS-Discovery `InstanceId`: increases each time the peer starts (seconds since the
    /// epoch at start are what WS-Discovery suggests).
    pub instance_id: u32,
}

/// What a peer holds of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSegment {
    /// Blocks of the segment held and verified, at least 1.
    pub block_count: u32,
}

/// The reply to `probe`, or `None` when the peer holds none of its segments (a peer stays
/// silent then, as the specification requires) or the probe is not one this peer answers: a
/// version 2.0 probe, or scopes matched by another rule than `strcmp0`.
///
/// `held` is asked about each scope that is hexadecimal text of a plausible digest length
/// (32, 48 or 64 bytes), with the decoded identifier. The reply echoes each matched scope as
/// the probe wrote it, so a client comparing strings case-sensitively finds it, and the
/// block count of each in the same order. `message_uuid` (16 random bytes) names the reply;
/// `message_number` is this peer's count of discovery messages sent.
///
/// ```
/// use netboot_pccr::discovery::{answer_probe, HeldSegment, Probe, ResponderIdentity};
/// let id = [0xab; 32];
/// let probe = Probe::v1("urn:uuid:1", "AB".repeat(32));
/// let me = ResponderIdentity { endpoint: "urn:uuid:2".into(), instance_id: 7 };
/// let reply = answer_probe(&probe, &me, 1, [0; 16], &["10.0.0.5:80".to_string()], |seg| {
///     (seg == id).then_some(HeldSegment { block_count: 1 })
/// })
/// .unwrap();
/// assert_eq!(reply.relates_to.as_deref(), Some("urn:uuid:1"));
/// assert_eq!(reply.matches[0].block_counts, [1]);
/// assert!(answer_probe(&probe, &me, 2, [0; 16], &[], |_| None).is_none());
/// ```
pub fn answer_probe(
    probe: &Probe,
    identity: &ResponderIdentity,
    message_number: u32,
    message_uuid: [u8; 16],
    xaddrs: &[String],
    mut held: impl FnMut(&[u8]) -> Option<HeldSegment>,
) -> Option<ProbeMatches> {
    if probe.version() != Some(ProbeVersion::V1) {
        return None;
    }
    if probe
        .match_by
        .as_deref()
        .is_some_and(|rule| rule != MATCH_BY_STRCMP0)
    {
        return None;
    }
    let matched: Vec<(String, u32)> = probe
        .scopes
        .iter()
        .filter_map(|scope| {
            let id = decode_segment_id(scope)?;
            let segment = held(&id)?;
            (segment.block_count > 0).then(|| (scope.clone(), segment.block_count))
        })
        .collect();
    if matched.is_empty() {
        return None;
    }
    Some(ProbeMatches {
        message_id: format!("urn:uuid:{}", format_uuid(message_uuid)),
        relates_to: Some(probe.message_id.clone()),
        app_sequence: Some((identity.instance_id, message_number)),
        matches: vec![Match::v1(identity.endpoint.clone(), matched, xaddrs.to_vec())],
    })
}

/// A version 1.0 scope as a segment identifier: hexadecimal of either case, of a SHA-256,
/// SHA-384 or SHA-512 digest's length.
fn decode_segment_id(scope: &str) -> Option<Vec<u8>> {
    if ![64, 96, 128].contains(&scope.len()) {
        return None;
    }
    scope
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            pair.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(pair, 16).ok())?
        })
        .collect()
}

/// Formats 16 random bytes as a version 4 UUID (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
///
/// ```
/// assert_eq!(
///     netboot_pccr::discovery::format_uuid([0; 16]),
///     "00000000-0000-4000-8000-000000000000"
/// );
/// ```
pub fn format_uuid(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::ns;

    fn me() -> ResponderIdentity {
        ResponderIdentity {
            endpoint: "urn:uuid:87a89944-0230-43a5-ac4e-fab1386c8e2c".into(),
            instance_id: 3,
        }
    }

    #[test]
    fn only_held_scopes_are_named_in_probe_order_with_their_case() {
        let held_a = [0x0a; 32];
        let held_b = [0xb0; 48];
        let mut probe = Probe::v1("urn:uuid:p", "0a".repeat(32));
        probe.scopes.push("CD".repeat(32));
        probe.scopes.push("B0".repeat(48));
        probe.scopes.push("not hex".into());
        let reply = answer_probe(
            &probe,
            &me(),
            9,
            [1; 16],
            &["10.1.0.5:80".into()],
            |id| match id {
                id if id == held_a => Some(HeldSegment { block_count: 2 }),
                id if id == held_b => Some(HeldSegment { block_count: 512 }),
                _ => None,
            },
        )
        .unwrap();
        let m = &reply.matches[0];
        assert_eq!(m.scopes, ["0a".repeat(32), "B0".repeat(48)]);
        assert_eq!(m.block_counts, [2, 512]);
        assert_eq!(reply.app_sequence, Some((3, 9)));
        assert!(reply
            .to_xml()
            .contains("<PeerDist:BlockCount>0000000200000200</PeerDist:BlockCount>"));
    }

    #[test]
    fn other_rules_versions_and_empty_holdings_get_no_answer() {
        let all = |_: &[u8]| Some(HeldSegment { block_count: 1 });
        let mut probe = Probe::v1("urn:uuid:p", "00".repeat(32));
        probe.match_by = Some("http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986".into());
        assert!(answer_probe(&probe, &me(), 1, [0; 16], &[], all).is_none());
        let mut v2 = Probe::v1("urn:uuid:p", "AAAAAA==");
        v2.types = vec![(ns::PEERDIST.into(), "PeerDistDataV2".into())];
        assert!(answer_probe(&v2, &me(), 1, [0; 16], &[], all).is_none());
        let probe = Probe::v1("urn:uuid:p", "00".repeat(32));
        assert!(
            answer_probe(&probe, &me(), 1, [0; 16], &[], |_| Some(HeldSegment {
                block_count: 0
            }))
            .is_none()
        );
        let mut absent_rule = probe.clone();
        absent_rule.match_by = None;
        assert!(answer_probe(&absent_rule, &me(), 1, [0; 16], &[], all).is_some());
    }
}
