//! Peer discovery ([MS-PCCRD]): WS-Discovery probes for segment identifiers, multicast on
//! UDP 3702, and the probe matches of peers holding them.
//!
//! A client that needs a segment sends a `Probe` whose `<wsd:Scopes>` lists segment
//! identifiers (HoHoDk) as hexadecimal; a peer that holds blocks of one of them answers with a
//! unicast `ProbeMatches` naming the identifiers it holds, a block count for each, and the
//! address (`<wsd:XAddrs>`, `host:port`) where it serves them over [MS-PCCRR].
//!
//! What iPXE sends and accepts decides the exact form of what this module writes:
//! - iPXE's probe is the version 1.0 form with one identifier in upper-case hexadecimal and
//!   `MatchBy=".../strcmp0"` (a case-sensitive comparison); [`Probe::parse`] reads any
//!   prefixes and layout, and identifiers of either case, and answers echo the identifier
//!   exactly as the client wrote it.
//! - iPXE finds the values of a match by searching for the literal tags `<wsd:Scopes>`,
//!   `<wsd:XAddrs>` and `<PeerDist:BlockCount>` (prefixes included, no attributes), and reads
//!   the block count as eight hexadecimal digits per identifier, in the order of the scopes.
//!   [`ProbeMatches::to_xml`] writes exactly that, with the namespace declarations a full
//!   WS-Discovery parser needs.
//!
//! Version 2.0 probes (`PeerDist:PeerDistDataV2`, Windows 8 and later with Content
//! Information 2.0) carry base64 binary scopes; they are recognised ([`ProbeVersion::V2`])
//! but not answered.

mod messages;
mod responder;
pub(crate) mod xml;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use messages::{Match, Probe, ProbeMatches, ProbeVersion};
pub use responder::{answer_probe, format_uuid, HeldSegment, ResponderIdentity};

/// UDP port of discovery messages.
pub const PORT: u16 = 3702;
/// IPv4 multicast group of discovery probes.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// IPv6 (link-local scope) multicast group of discovery probes.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xc);
/// Largest message read or written: one UDP datagram without fragmentation trouble is far
/// smaller, and nothing legitimate comes close.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Most segment identifiers taken from one probe.
pub const MAX_SCOPES: usize = 128;

/// XML namespaces of the messages.
pub mod ns {
    /// SOAP 1.2 envelope.
    pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
    /// WS-Addressing (2004/08).
    pub const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
    /// WS-Discovery (2005/04).
    pub const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
    /// PeerDist discovery.
    pub const PEERDIST: &str = "http://schemas.microsoft.com/p2p/2007/09/PeerDistributionDiscovery";
}

/// `wsa:Action` of a probe.
pub const ACTION_PROBE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
/// `wsa:Action` of a probe match.
pub const ACTION_PROBE_MATCHES: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches";
/// `wsa:To` of a multicast probe.
pub const TO_DISCOVERY: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";
/// `wsa:To` of a unicast reply.
pub const TO_ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
/// The exact-match rule PeerDist probes name.
pub const MATCH_BY_STRCMP0: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0";
/// `wsd:Types` local name of version 1.0 discovery.
pub const TYPE_V1: &str = "PeerDistData";
/// `wsd:Types` local name of version 2.0 discovery.
pub const TYPE_V2: &str = "PeerDistDataV2";

/// A datagram that is not a discovery message this module reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("message of {0} bytes is longer than {max}", max = MAX_MESSAGE_LEN)]
    TooLong(usize),
    /// Not UTF-8 text.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// Not well-formed XML, or XML this parser refuses (a document type declaration).
    #[error("not acceptable XML: {0}")]
    Xml(String),
    /// Over a structural limit.
    #[error("too many {0}")]
    TooLarge(&'static str),
    /// Well-formed, but not the expected SOAP message.
    #[error("not a discovery {expected}: {reason}")]
    NotDiscovery {
        /// The message expected.
        expected: &'static str,
        /// What is missing or wrong.
        reason: &'static str,
    },
}
