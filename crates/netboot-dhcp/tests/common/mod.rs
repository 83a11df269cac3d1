//! Helpers shared by the integration tests of this crate.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write;

mod render6;
#[allow(unused_imports)] // not every test file renders DHCPv6
pub use render6::render6;

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

/// The heading of one captured datagram in a golden file.
pub fn frame_heading(
    frame: usize,
    src: impl std::fmt::Display,
    dst: impl std::fmt::Display,
    len: usize,
) -> String {
    format!("frame {frame} {src} -> {dst} ({len} bytes)\n")
}

/// Stores client datagrams of the captures as fuzzing seeds in `testdata/<area>/corpus` when
/// golden files are being rewritten.
pub fn write_corpus(area: &str, corpus: Vec<(String, Vec<u8>)>) {
    if !netboot_testkit::golden::updating() {
        return;
    }
    let dir = netboot_testkit::testdata().join(area).join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in corpus {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
}

/// Runs every seed of `testdata/<area>/corpus` through a fuzzing entry point, with every
/// `prefix_step`th prefix and bytes from `flip_from` on inverted one at a time, every
/// `flip_step`th: none of it may panic.
pub fn replay_corpus(area: &str, prefix_step: usize, flip_from: usize, flip_step: usize, entry: fn(&[u8])) {
    let dir = netboot_testkit::testdata().join(area).join("corpus");
    let mut count = 0;
    for seed in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(seed.unwrap().path()).unwrap();
        entry(&bytes);
        for len in (0..bytes.len()).step_by(prefix_step) {
            entry(&bytes[..len]);
        }
        let mut flipped = bytes.clone();
        for i in (flip_from..flipped.len()).step_by(flip_step) {
            flipped[i] ^= 0xff;
            entry(&flipped);
        }
        count += 1;
    }
    assert!(count > 0, "empty corpus in {}", dir.display());
}
