//! Events built from what each service's driver knows at the moment a step ends, so the
//! services hand over their facts and never assemble records themselves.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest};
use netboot_dhcp::proxy::ListenPort;
use netboot_dhcp::pxe::{ClientClass, ClientKind, IpxeFeatures};

use crate::event::{
    DecisionKind, DecisionRecord, Event, EventDetail, HttpsEntry, ImageDownload, ProxyOffer, TftpTransfer,
};

/// Milliseconds of `elapsed`, saturating.
fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl ProxyOffer {
    /// The answer the proxy sent to `class` on `port`; `boot_file` is the program it handed
    /// over, when it handed one over TFTP.
    #[must_use]
    pub fn answered(class: &ClientClass, port: ListenPort, boot_file: Option<&str>) -> Self {
        let firmware = match class.kind {
            ClientKind::PxeFirmware if class.arch.is_uefi() => "uefi-pxe",
            ClientKind::PxeFirmware => "bios-pxe",
            ClientKind::HttpBoot => "uefi-http",
            ClientKind::Ipxe => "ipxe",
            _ => "other",
        };
        let ipxe_features = class.ipxe_features.as_ref().map_or_else(Vec::new, |features| {
            features
                .codes
                .iter()
                .map(|code| match *code {
                    IpxeFeatures::HTTPS => "HTTPS".to_string(),
                    IpxeFeatures::EFI => "EFI".to_string(),
                    other => format!("0x{other:02x}"),
                })
                .collect()
        });
        Self {
            arch: class.arch,
            stage: class.kind.stage(),
            firmware: firmware.into(),
            relay: class.relay.map(IpAddr::V4),
            nic: class.ndi.map(|(kind, major, minor)| {
                format!("{} {major}.{minor}", if kind == 1 { "UNDI" } else { "NDI" })
            }),
            boot_file: boot_file
                .filter(|_| class.kind != ClientKind::HttpBoot)
                .map(str::to_string),
            server_port: match port {
                ListenPort::Dhcp => 67,
                ListenPort::PxeBootServer => 4011,
            },
            ipxe_features,
        }
    }

    /// This answer as an event of the machine `class` describes, which sent from `source`
    /// (a relayed request's source is the relay agent, not the machine, and is left out).
    #[must_use]
    pub fn into_event(self, class: &ClientClass, source: Ipv4Addr) -> Event {
        Event::now(class.mac, EventDetail::ProxyOffer(self))
            .with_uuid(class.uuid)
            .with_ip(class.relay.is_none().then_some(IpAddr::V4(source)))
    }
}

/// What was agreed for a TFTP read transfer: block size, window size and the size reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TftpNegotiated {
    /// Block size in bytes.
    pub blksize: u16,
    /// RFC 7440 window size in blocks.
    pub windowsize: u16,
    /// The file size told to the client.
    pub tsize: u64,
}

impl TftpTransfer {
    /// A read transfer of `file` that ended after `elapsed`; `error` says why when it did not
    /// complete, `negotiated` is absent when it never started (file not served).
    #[must_use]
    pub fn ended(
        file: &str,
        negotiated: Option<TftpNegotiated>,
        bytes: u64,
        elapsed: Duration,
        retransmits: u32,
        error: Option<String>,
    ) -> Self {
        Self {
            file: file.to_string(),
            blksize: negotiated.map(|n| n.blksize),
            windowsize: negotiated.map(|n| n.windowsize),
            tsize: negotiated.map(|n| n.tsize),
            bytes,
            duration_ms: millis(elapsed),
            retransmits,
            error,
        }
    }
}

impl HttpsEntry {
    /// iPXE's decision request, with the identity it reported and whether it came over TLS.
    #[must_use]
    pub fn from_request(request: &BootRequest, over_tls: bool) -> Self {
        Self {
            arch: Some(request.arch),
            hardware: request.hardware.clone(),
            ipxe_version: None,
            features: Vec::new(),
            tls: over_tls,
        }
    }
}

impl DecisionRecord {
    /// The answer `resolver` gave after `elapsed`, or, when it failed with `cause`, the
    /// configured fallback.
    #[must_use]
    pub fn served(resolver: &str, decision: Result<&BootDecision, &str>, elapsed: Duration) -> Self {
        match decision {
            Ok(decision) => Self::from_decision(resolver, decision, millis(elapsed)),
            Err(cause) => Self {
                resolver: resolver.to_string(),
                kind: DecisionKind::Fallback,
                entries: Vec::new(),
                choice: Some(cause.to_string()),
                duration_ms: millis(elapsed),
            },
        }
    }
}

impl ImageDownload {
    /// A file response with `status` and `bytes` of body for `path` (the leading `/` is
    /// dropped), asked with the `Range` header `range`, whose headers went out after
    /// `elapsed`. Client and server errors carry the status's reason as their error; how a
    /// BranchCache client was served is for the caller to add.
    #[must_use]
    pub fn served(
        path: &str,
        status: u16,
        reason: Option<&str>,
        bytes: u64,
        range: Option<&str>,
        elapsed: Duration,
    ) -> Self {
        Self {
            path: path.trim_start_matches('/').to_string(),
            bytes,
            range: range.map(str::to_string),
            duration_ms: millis(elapsed),
            status,
            error: (status >= 400).then(|| reason.unwrap_or("error").to_string()),
            peerdist: None,
        }
    }
}
