//! Events built from what each service's driver knows at the moment a step ends, so the
//! services hand over their facts and never assemble records themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, ClientArch};
use netboot_dhcp::proxy::ListenPort;
use netboot_dhcp::pxe::{ClientClass, ClientKind, IpxeFeatures};
use netboot_dhcp::v6::class::ClientClass6;

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
        let server_port = match port {
            ListenPort::Dhcp => 67,
            ListenPort::PxeBootServer => 4011,
        };
        let mut offer = Self::of(class.kind, class.arch, class.ndi, boot_file, server_port);
        offer.relay = class.relay.map(IpAddr::V4);
        offer.ipxe_features = ipxe_features;
        offer
    }

    /// The DHCPv6 answer the proxy sent to `class` on `port` (547 or 4011), through the relay
    /// agent `relay` when relayed.
    #[must_use]
    pub fn answered6(
        class: &ClientClass6,
        port: ListenPort,
        boot_file: Option<&str>,
        relay: Option<Ipv6Addr>,
    ) -> Self {
        let server_port = match port {
            ListenPort::Dhcp => 547,
            ListenPort::PxeBootServer => 4011,
        };
        let mut offer = Self::of(class.kind, class.arch, class.ndi, boot_file, server_port);
        offer.relay = relay.map(IpAddr::V6);
        offer
    }

    /// What DHCPv4 and DHCPv6 answers have in common.
    fn of(
        kind: ClientKind,
        arch: ClientArch,
        ndi: Option<(u8, u8, u8)>,
        boot_file: Option<&str>,
        server_port: u16,
    ) -> Self {
        let firmware = match kind {
            ClientKind::PxeFirmware if arch.is_uefi() => "uefi-pxe",
            ClientKind::PxeFirmware => "bios-pxe",
            ClientKind::HttpBoot => "uefi-http",
            ClientKind::Ipxe => "ipxe",
            _ => "other",
        };
        Self {
            arch,
            stage: kind.stage(),
            firmware: firmware.into(),
            relay: None,
            nic: ndi.map(|(kind, major, minor)| {
                format!("{} {major}.{minor}", if kind == 1 { "UNDI" } else { "NDI" })
            }),
            boot_file: boot_file
                .filter(|_| kind != ClientKind::HttpBoot)
                .map(str::to_string),
            server_port,
            ipxe_features: Vec::new(),
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

    /// This DHCPv6 answer as an event of the machine `class` describes, at `address` (the
    /// machine's own, or the link address a relay agent reported).
    #[must_use]
    pub fn into_event6(self, class: &ClientClass6, address: Ipv6Addr) -> Event {
        Event::now(class.mac, EventDetail::ProxyOffer(self))
            .with_uuid(class.uuid)
            .with_ip(Some(IpAddr::V6(address)))
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
