//! Helpers shared by the integration tests of this crate.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write;

use netboot_dhcp::wire::{DhcpMessage, DhcpOption};

/// A stable, human-readable rendering of a message for golden files.
pub fn render(message: &DhcpMessage) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  op={} htype={} hlen={} hops={} xid={:#010x} secs={} flags={:#06x}",
        message.op, message.htype, message.hlen, message.hops, message.xid, message.secs, message.flags
    );
    let _ = writeln!(
        out,
        "  ciaddr={} yiaddr={} siaddr={} giaddr={} chaddr={}",
        message.ciaddr,
        message.yiaddr,
        message.siaddr,
        message.giaddr,
        hex(&message.chaddr[..usize::from(message.hlen.min(16))])
    );
    let _ = writeln!(
        out,
        "  sname={:?} file={:?}",
        text(trim_nul(&message.sname)),
        text(trim_nul(&message.file))
    );
    let mut pads = 0;
    for option in &message.options {
        if let DhcpOption::Pad = option {
            pads += 1;
            continue;
        }
        let rendered = match option {
            DhcpOption::HostName(b)
            | DhcpOption::VendorClass(b)
            | DhcpOption::TftpServerName(b)
            | DhcpOption::BootfileName(b) => format!("{:?}", text(b)),
            DhcpOption::VendorSpecific(b)
            | DhcpOption::ParameterRequestList(b)
            | DhcpOption::ClientId(b)
            | DhcpOption::UserClass(b)
            | DhcpOption::RelayAgentInfo(b)
            | DhcpOption::IpxeEncapsulated(b) => hex(b),
            DhcpOption::ClientMachineId { kind, id } => format!("type {kind} {}", hex(id)),
            DhcpOption::Unknown { data, .. } => hex(data),
            other => format!("{other:?}"),
        };
        let _ = writeln!(out, "  opt {:3} {rendered}", option.code());
    }
    let _ = writeln!(out, "  pad={pads} trailer={} bytes", message.trailer.len());
    out
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lower-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
