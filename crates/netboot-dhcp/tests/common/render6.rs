//! A stable, human-readable rendering of DHCPv6 messages for golden files.

use std::fmt::Write;

use netboot_dhcp::v6::wire::{Dhcp6Message, Dhcp6Option, Header};

use super::hex;

/// Renders a message, nested options indented under their parent.
pub fn render6(message: &Dhcp6Message) -> String {
    let mut out = String::new();
    render_message(message, 1, &mut out);
    out
}

fn render_message(message: &Dhcp6Message, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match message.header {
        Header::Transaction(id) => {
            let _ = writeln!(out, "{pad}{:?} xid={}", message.msg_type, hex(&id));
        }
        Header::Relay {
            hop_count,
            link_address,
            peer_address,
        } => {
            let _ = writeln!(
                out,
                "{pad}{:?} hops={hop_count} link={link_address} peer={peer_address}",
                message.msg_type
            );
        }
    }
    render_options(&message.options, depth, out);
}

fn render_options(options: &[Dhcp6Option], depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    for option in options {
        let code = option.code();
        let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
        let line = match option {
            Dhcp6Option::ClientId(duid) | Dhcp6Option::ServerId(duid) => format!("{duid}"),
            Dhcp6Option::IaNa(ia) | Dhcp6Option::IaPd(ia) => {
                format!("iaid={:#010x} t1={} t2={}", ia.iaid, ia.t1, ia.t2)
            }
            Dhcp6Option::IaTa(ia) => format!("iaid={:#010x}", ia.iaid),
            Dhcp6Option::IaAddr(addr) => format!(
                "{} preferred={} valid={}",
                addr.address, addr.preferred_lifetime, addr.valid_lifetime
            ),
            Dhcp6Option::IaPrefix(prefix) => format!(
                "{}/{} preferred={} valid={}",
                prefix.prefix, prefix.prefix_len, prefix.preferred_lifetime, prefix.valid_lifetime
            ),
            Dhcp6Option::StatusCode(status) => format!("{} {}", status.code, text(&status.message)),
            Dhcp6Option::UserClass(items) | Dhcp6Option::BootfileParam(items) => {
                items.iter().map(|i| text(i)).collect::<Vec<_>>().join(",")
            }
            Dhcp6Option::VendorClass(vendor) => format!(
                "enterprise={} {}",
                vendor.enterprise,
                vendor
                    .classes
                    .iter()
                    .map(|i| text(i))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Dhcp6Option::BootfileUrl(url) => text(url),
            Dhcp6Option::InterfaceId(b) | Dhcp6Option::DomainList(b) => hex(b),
            Dhcp6Option::VendorOpts { enterprise, data } => format!("enterprise={enterprise} {}", hex(data)),
            Dhcp6Option::ClientLinkLayerAddr {
                hardware_type,
                address,
            } => format!("htype={hardware_type} {}", hex(address)),
            Dhcp6Option::Unknown { data, .. } => hex(data),
            Dhcp6Option::RelayMessage(_) => String::new(),
            other => format!("{other:?}"),
        };
        let _ = writeln!(out, "{pad}opt {code:3} {line}");
        match option {
            Dhcp6Option::IaNa(ia) | Dhcp6Option::IaPd(ia) => render_options(&ia.options, depth + 1, out),
            Dhcp6Option::IaTa(ia) => render_options(&ia.options, depth + 1, out),
            Dhcp6Option::IaAddr(addr) => render_options(&addr.options, depth + 1, out),
            Dhcp6Option::IaPrefix(prefix) => render_options(&prefix.options, depth + 1, out),
            Dhcp6Option::RelayMessage(inner) => render_message(inner, depth + 1, out),
            _ => {}
        }
    }
}
