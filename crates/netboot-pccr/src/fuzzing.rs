//! Entry points shared by the cargo-fuzz targets and the corpus tests.

use crate::discovery::{answer_probe, HeldSegment, Probe, ProbeMatches, ResponderIdentity};
use crate::retrieval::{plan, Request, Response};

/// Arbitrary bytes as a discovery datagram: whatever parses as a probe or a match must write
/// out and read back to the same value, and answering a probe (holding every segment) must
/// give a reply that reads back.
pub fn discovery_round_trip(data: &[u8]) {
    if let Ok(probe) = Probe::parse(data) {
        let reparsed = Probe::parse(probe.to_xml().as_bytes()).expect("a written probe parses");
        assert_eq!(reparsed.message_id, probe.message_id);
        assert_eq!(reparsed.scopes, probe.scopes);
        assert_eq!(reparsed.match_by, probe.match_by);
        let identity = ResponderIdentity {
            endpoint: "urn:uuid:00000000-0000-4000-8000-000000000000".into(),
            instance_id: 1,
        };
        let xaddrs = ["192.0.2.1:80".to_string()];
        if let Some(reply) = answer_probe(&probe, &identity, 1, [0; 16], &xaddrs, |_| {
            Some(HeldSegment { block_count: 1 })
        }) {
            let text = reply.to_xml();
            assert!(text.len() < 64 * 1024, "replies stay small");
            assert_eq!(
                ProbeMatches::parse(text.as_bytes()).expect("a written reply parses"),
                reply
            );
        }
    }
    if let Ok(reply) = ProbeMatches::parse(data) {
        let text = reply.to_xml();
        let reparsed = ProbeMatches::parse(text.as_bytes()).expect("a written reply parses");
        assert_eq!(reparsed.to_xml(), text, "write(parse(write(m))) == write(m)");
    }
}

/// Arbitrary bytes as a retrieval request and as a response: whatever parses must write out
/// to bytes that parse to the same value, and planning a request must not panic.
pub fn retrieval_round_trip(data: &[u8]) {
    if let Ok(request) = Request::parse(data) {
        assert_eq!(
            Request::parse(&request.to_bytes()).expect("a written request parses"),
            request
        );
        let _ = plan(&request);
    }
    if let Ok(response) = Response::parse(data) {
        assert_eq!(
            Response::parse(&response.to_bytes()).expect("a written response parses"),
            response
        );
    }
}
