//! The two discovery messages: `Probe` and `ProbeMatches`, read from any well-formed SOAP
//! envelope and written in the form iPXE's string search accepts.

use std::fmt::Write as _;

use super::xml::{self, escape, Element};
use super::{
    ns, DiscoveryError, ACTION_PROBE, ACTION_PROBE_MATCHES, MAX_MESSAGE_LEN, MAX_SCOPES, TYPE_V1, TYPE_V2,
};

/// Which discovery version a probe or match is (its `wsd:Types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeVersion {
    /// `PeerDist:PeerDistData`: hexadecimal segment identifiers, block counts.
    V1,
    /// `PeerDist:PeerDistDataV2`: base64 binary scopes, segment ages.
    V2,
}

impl ProbeVersion {
    fn type_name(self) -> &'static str {
        match self {
            Self::V1 => TYPE_V1,
            Self::V2 => TYPE_V2,
        }
    }

    fn of_types(types: &[(String, String)]) -> Option<Self> {
        [Self::V1, Self::V2]
            .into_iter()
            .find(|v| types.iter().any(|(n, l)| n == ns::PEERDIST && l == v.type_name()))
    }
}

/// A WS-Discovery probe.
///
/// ```
/// use netboot_pccr::discovery::{Probe, ProbeVersion};
/// let probe = Probe::v1("urn:uuid:0f4e6c5e-4f4a-4e2f-9d2e-5d1c2b3a4f5e", "ABCD".repeat(16));
/// let parsed = Probe::parse(probe.to_xml().as_bytes()).unwrap();
/// assert_eq!(parsed, probe);
/// assert_eq!(parsed.version(), Some(ProbeVersion::V1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `wsa:MessageID`, e.g. `urn:uuid:...`.
    pub message_id: String,
    /// `wsa:To`, when present.
    pub to: Option<String>,
    /// `wsd:Types`: `(namespace, local name)` pairs.
    pub types: Vec<(String, String)>,
    /// `wsd:Scopes`: the segment identifiers (version 1.0: hexadecimal text), as written.
    pub scopes: Vec<String>,
    /// The `MatchBy` rule of the scopes, when given.
    pub match_by: Option<String>,
}

impl Probe {
    /// The probe iPXE sends for one segment identifier (upper-case hexadecimal).
    pub fn v1(message_id: impl Into<String>, segment_id_hex: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            to: Some(super::TO_DISCOVERY.to_string()),
            types: vec![(ns::PEERDIST.to_string(), TYPE_V1.to_string())],
            scopes: vec![segment_id_hex.into()],
            match_by: Some(super::MATCH_BY_STRCMP0.to_string()),
        }
    }

    /// Reads a probe: a SOAP 1.2 envelope whose `wsa:Action` is the probe action and whose body
    /// holds `wsd:Probe`. At most [`MAX_SCOPES`] scopes are kept.
    pub fn parse(bytes: &[u8]) -> Result<Self, DiscoveryError> {
        let not = |reason| DiscoveryError::NotDiscovery {
            expected: "probe",
            reason,
        };
        let envelope = envelope(bytes, ACTION_PROBE).map_err(|r| r.into_error("probe"))?;
        let header = envelope
            .child(ns::SOAP, "Header")
            .ok_or_else(|| not("no header"))?;
        let message_id = text_of(header, ns::WSA, "MessageID").ok_or_else(|| not("no message id"))?;
        let body = envelope.child(ns::SOAP, "Body").ok_or_else(|| not("no body"))?;
        let probe = body.child(ns::WSD, "Probe").ok_or_else(|| not("no wsd:Probe"))?;
        let types = match probe.child(ns::WSD, "Types") {
            Some(types) => types
                .text
                .split_whitespace()
                .take(MAX_SCOPES)
                .map(|qname| {
                    types
                        .resolve_qname(qname)
                        .ok_or_else(|| not("a type with an undeclared prefix"))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let scopes_element = probe.child(ns::WSD, "Scopes");
        Ok(Self {
            message_id,
            to: text_of(header, ns::WSA, "To"),
            types,
            scopes: scopes_element
                .map(|s| {
                    s.text
                        .split_whitespace()
                        .take(MAX_SCOPES)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            match_by: scopes_element.and_then(|s| s.attr("MatchBy")).map(str::to_string),
        })
    }

    /// The discovery version its types name, if any.
    pub fn version(&self) -> Option<ProbeVersion> {
        ProbeVersion::of_types(&self.types)
    }

    /// The probe as iPXE writes it (one line, fixed prefixes). Types outside the PeerDist
    /// namespace are left out.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str(PROLOGUE);
        out.push_str("<soap:Header>");
        if let Some(to) = &self.to {
            element(&mut out, "wsa:To", to);
        }
        element(&mut out, "wsa:Action", ACTION_PROBE);
        element(&mut out, "wsa:MessageID", &self.message_id);
        out.push_str("</soap:Header><soap:Body><wsd:Probe>");
        element(&mut out, "wsd:Types", &peerdist_types(&self.types));
        match &self.match_by {
            Some(rule) => {
                let _ = write!(out, "<wsd:Scopes MatchBy=\"{}\">", escape(rule));
            }
            None => out.push_str("<wsd:Scopes>"),
        }
        out.push_str(&escape(&self.scopes.join(" ")));
        out.push_str("</wsd:Scopes></wsd:Probe></soap:Body></soap:Envelope>");
        out
    }
}

/// A `wsd:ProbeMatches` reply.
///
/// ```
/// use netboot_pccr::discovery::{Match, ProbeMatches};
/// let reply = ProbeMatches {
///     message_id: "urn:uuid:7f4b09a3-96c9-4170-9eb3-1c805a52f444".into(),
///     relates_to: Some("urn:uuid:91528b47-b96d-4e30-981f-308c0586926f".into()),
///     app_sequence: Some((1_218_765_447, 4)),
///     matches: vec![Match::v1("urn:uuid:87a89944-0230-43a5-ac4e-fab1386c8e2c", vec![("AB".repeat(32), 42)], vec!["10.0.0.5:80".into()])],
/// };
/// let xml = reply.to_xml();
/// assert!(xml.contains("<wsd:Scopes>ABAB") && xml.contains("<PeerDist:BlockCount>0000002A<"));
/// assert_eq!(ProbeMatches::parse(xml.as_bytes()).unwrap(), reply);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMatches {
    /// `wsa:MessageID` of the reply.
    pub message_id: String,
    /// `wsa:RelatesTo`: the probe's message id.
    pub relates_to: Option<String>,
    /// `wsd:AppSequence`: `(InstanceId, MessageNumber)`.
    pub app_sequence: Option<(u32, u32)>,
    /// The matches, normally one.
    pub matches: Vec<Match>,
}

/// One `wsd:ProbeMatch`: a peer, what it holds and where it serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `wsa:EndpointReference/wsa:Address`: the peer's stable `urn:uuid:` name.
    pub endpoint: String,
    /// The discovery version of the match.
    pub version: ProbeVersion,
    /// The matched scopes (segment identifiers), as the probe wrote them.
    pub scopes: Vec<String>,
    /// `host:port` addresses of the peer's retrieval service.
    pub xaddrs: Vec<String>,
    /// `wsd:MetadataVersion`.
    pub metadata_version: u32,
    /// Version 1.0: blocks held of each scope, in scope order. Version 2.0: empty.
    pub block_counts: Vec<u32>,
    /// Version 2.0: the base64 `PeerDist:SegmentAges`, kept as written.
    pub segment_ages: Option<String>,
}

impl Match {
    /// A version 1.0 match: `(segment identifier text, blocks held)` pairs.
    pub fn v1(endpoint: impl Into<String>, held: Vec<(String, u32)>, xaddrs: Vec<String>) -> Self {
        let (scopes, block_counts) = held.into_iter().unzip();
        Self {
            endpoint: endpoint.into(),
            version: ProbeVersion::V1,
            scopes,
            xaddrs,
            metadata_version: 1,
            block_counts,
            segment_ages: None,
        }
    }
}

impl ProbeMatches {
    /// Reads a reply. Version 1.0 block counts must be whole groups of eight hexadecimal
    /// digits.
    pub fn parse(bytes: &[u8]) -> Result<Self, DiscoveryError> {
        let not = |reason| DiscoveryError::NotDiscovery {
            expected: "probe match",
            reason,
        };
        let envelope = envelope(bytes, ACTION_PROBE_MATCHES).map_err(|r| r.into_error("probe match"))?;
        let header = envelope
            .child(ns::SOAP, "Header")
            .ok_or_else(|| not("no header"))?;
        let message_id = text_of(header, ns::WSA, "MessageID").ok_or_else(|| not("no message id"))?;
        let app_sequence = match header.child(ns::WSD, "AppSequence") {
            Some(sequence) => {
                let number = |name| sequence.attr(name).and_then(|v| v.trim().parse::<u32>().ok());
                Some(
                    number("InstanceId")
                        .zip(number("MessageNumber"))
                        .ok_or_else(|| not("a malformed wsd:AppSequence"))?,
                )
            }
            None => None,
        };
        let matches = envelope
            .path(&[(ns::SOAP, "Body"), (ns::WSD, "ProbeMatches")])
            .ok_or_else(|| not("no wsd:ProbeMatches"))?
            .children_named(ns::WSD, "ProbeMatch")
            .map(|m| parse_match(m).map_err(not))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            message_id,
            relates_to: text_of(header, ns::WSA, "RelatesTo"),
            app_sequence,
            matches,
        })
    }

    /// The reply in the form iPXE reads: one line, prefixes `soap`, `wsa`, `wsd` and
    /// `PeerDist`, no attributes on the elements iPXE searches for.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str(PROLOGUE);
        out.push_str("<soap:Header>");
        element(&mut out, "wsa:To", super::TO_ANONYMOUS);
        element(&mut out, "wsa:Action", ACTION_PROBE_MATCHES);
        element(&mut out, "wsa:MessageID", &self.message_id);
        if let Some(relates_to) = &self.relates_to {
            element(&mut out, "wsa:RelatesTo", relates_to);
        }
        if let Some((instance, number)) = self.app_sequence {
            let _ = write!(
                out,
                "<wsd:AppSequence InstanceId=\"{instance}\" MessageNumber=\"{number}\"/>"
            );
        }
        out.push_str("</soap:Header><soap:Body><wsd:ProbeMatches>");
        for m in &self.matches {
            out.push_str("<wsd:ProbeMatch><wsa:EndpointReference>");
            element(&mut out, "wsa:Address", &m.endpoint);
            out.push_str("</wsa:EndpointReference>");
            element(
                &mut out,
                "wsd:Types",
                &format!("PeerDist:{}", m.version.type_name()),
            );
            element(&mut out, "wsd:Scopes", &m.scopes.join(" "));
            element(&mut out, "wsd:XAddrs", &m.xaddrs.join(" "));
            element(&mut out, "wsd:MetadataVersion", &m.metadata_version.to_string());
            out.push_str("<PeerDist:PeerDistData>");
            match (&m.segment_ages, m.version) {
                (Some(ages), ProbeVersion::V2) => element(&mut out, "PeerDist:SegmentAges", ages),
                _ => {
                    let counts: String = m.block_counts.iter().map(|c| format!("{c:08X}")).collect();
                    element(&mut out, "PeerDist:BlockCount", &counts);
                }
            }
            out.push_str("</PeerDist:PeerDistData></wsd:ProbeMatch>");
        }
        out.push_str("</wsd:ProbeMatches></soap:Body></soap:Envelope>");
        out
    }
}

fn parse_match(m: &Element) -> Result<Match, &'static str> {
    let types_element = m.child(ns::WSD, "Types").ok_or("a match without types")?;
    let types: Vec<(String, String)> = types_element
        .text
        .split_whitespace()
        .take(MAX_SCOPES)
        .filter_map(|q| types_element.resolve_qname(q))
        .collect();
    let version = ProbeVersion::of_types(&types).ok_or("a match of no PeerDist type")?;
    let words = |name| {
        m.child(ns::WSD, name)
            .map(|e| {
                e.text
                    .split_whitespace()
                    .take(MAX_SCOPES)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let data = m.child(ns::PEERDIST, "PeerDistData");
    let block_counts = match (version, data.and_then(|d| d.child(ns::PEERDIST, "BlockCount"))) {
        (ProbeVersion::V1, Some(counts)) => {
            parse_block_counts(&counts.text).ok_or("malformed block counts")?
        }
        (ProbeVersion::V1, None) => return Err("a version 1.0 match without block counts"),
        (ProbeVersion::V2, _) => Vec::new(),
    };
    let segment_ages = match version {
        ProbeVersion::V2 => data
            .and_then(|d| d.child(ns::PEERDIST, "SegmentAges"))
            .map(|a| a.text.trim().to_string()),
        ProbeVersion::V1 => None,
    };
    Ok(Match {
        endpoint: m
            .path(&[(ns::WSA, "EndpointReference"), (ns::WSA, "Address")])
            .map(|a| a.text.trim().to_string())
            .ok_or("a match without an endpoint address")?,
        version,
        scopes: words("Scopes"),
        xaddrs: words("XAddrs"),
        metadata_version: m
            .child(ns::WSD, "MetadataVersion")
            .map_or(Some(0), |v| v.text.trim().parse().ok())
            .ok_or("a malformed metadata version")?,
        block_counts,
        segment_ages,
    })
}

/// Eight hexadecimal digits per count, whitespace ignored.
fn parse_block_counts(text: &str) -> Option<Vec<u32>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 8 != 0 || digits.len() / 8 > MAX_SCOPES {
        return None;
    }
    digits
        .chunks(8)
        .map(|group| {
            let group = std::str::from_utf8(group).ok()?;
            group
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(group, 16).ok())?
        })
        .collect()
}

const PROLOGUE: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" ",
    "xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" ",
    "xmlns:wsd=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\" ",
    "xmlns:PeerDist=\"http://schemas.microsoft.com/p2p/2007/09/PeerDistributionDiscovery\">",
);

fn element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(text));
}

fn peerdist_types(types: &[(String, String)]) -> String {
    types
        .iter()
        .filter(|(n, _)| n == ns::PEERDIST)
        .map(|(_, local)| format!("PeerDist:{local}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a child, trimmed.
fn text_of(parent: &Element, ns: &str, local: &str) -> Option<String> {
    parent.child(ns, local).map(|e| e.text.trim().to_string())
}

/// Why a document is not the expected envelope.
enum EnvelopeError {
    Parse(DiscoveryError),
    Not(&'static str),
}

impl EnvelopeError {
    fn into_error(self, expected: &'static str) -> DiscoveryError {
        match self {
            Self::Parse(error) => error,
            Self::Not(reason) => DiscoveryError::NotDiscovery { expected, reason },
        }
    }
}

/// Parses a bounded SOAP 1.2 envelope whose `wsa:Action` is `action`.
fn envelope(bytes: &[u8], action: &str) -> Result<Element, EnvelopeError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(EnvelopeError::Parse(DiscoveryError::TooLong(bytes.len())));
    }
    let root = xml::parse(bytes).map_err(EnvelopeError::Parse)?;
    if !root.is(ns::SOAP, "Envelope") {
        return Err(EnvelopeError::Not("the root is not a SOAP 1.2 envelope"));
    }
    let found = root
        .path(&[(ns::SOAP, "Header"), (ns::WSA, "Action")])
        .map(|a| a.text.trim().to_string());
    match found {
        Some(found) if found == action => Ok(root),
        Some(_) => Err(EnvelopeError::Not("another action")),
        None => Err(EnvelopeError::Not("no wsa:Action")),
    }
}
