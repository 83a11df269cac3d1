//! The site's ordinary DHCP server: Debian's dnsmasq handing out addresses and nothing else (no
//! boot file, no next-server, no option 60/43/66/67), so the PXE side must work as a proxyDHCP
//! next to it. It also sends IPv6 router advertisements: without a router on the link, iPXE's
//! "Configuring" waits about 15 s per DHCP round for IPv6 autoconfiguration.
//!
//! In an IPv6-only lab it is a stateful DHCPv6 server instead (router advertisements with the
//! managed flag, addresses from a range) that also hands clients whose user class is `iPXE`
//! the script URL (option 59): iPXE's stateful DHCPv6 takes its options only from the server
//! that assigns its address (`dhcpv6_rx` in iPXE's `src/net/udp/dhcpv6.c` needs an IAADDR in
//! the Advertise and then talks to that server alone), so on such a site the address server
//! names the script. The firmware's boot file still comes from the project's proxy.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};

use super::client::{ClientSpec, Firmware};
use super::lab::{lab_ip6, Lab, Stack, IPV6_PREFIX, LAB_NET, SERVER_IF, SITE_DHCP_IP};
use super::process::{in_netns, Spawned};

/// Starts dnsmasq in the lab's DHCP namespace, with a reserved address for each client.
///
/// Reservations matter when clients boot at once: dnsmasq may offer the same free address
/// to two of them, NAKs the second REQUEST, and OVMF's HTTP Boot gives up after a NAK
/// instead of starting over.
/// An IPv6-only site hands iPXE the script URL itself: by the HTTPS host's address to
/// `uefi-pxe6` clients (our iPXE's TLS server name for an IPv6 literal), by name to the rest.
pub(crate) fn start(lab: &Lab, dir: &Path, clients: &[ClientSpec]) -> Result<Spawned> {
    let ns = &lab.dhcp_netns;
    in_netns(
        ns,
        &[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{SERVER_IF}.disable_ipv6=0"),
        ],
    )?;
    in_netns(
        ns,
        &[
            "ip",
            "-6",
            "addr",
            "replace",
            &format!("{IPV6_PREFIX}::2/64"),
            "dev",
            SERVER_IF,
            "nodad",
        ],
    )?;
    let [a, b, c] = LAB_NET;
    let leases = dir.join("site-dhcp.leases");
    std::fs::write(&leases, "")?;
    let mut args = vec![
        "--no-daemon".to_owned(),
        "--conf-file=/dev/null".to_owned(),
        "--user=root".to_owned(),
        "--group=root".to_owned(),
        format!("--interface={SERVER_IF}"),
        "--bind-interfaces".to_owned(),
        // DNS off: this is only the address-giving DHCP server.
        "--port=0".to_owned(),
        "--dhcp-authoritative".to_owned(),
        format!("--dhcp-leasefile={}", leases.display()),
        "--enable-ra".to_owned(),
        "--log-dhcp".to_owned(),
        "--log-facility=-".to_owned(),
    ];
    match lab.stack {
        Stack::Ipv4 => {
            args.extend([
                format!("--dhcp-range={a}.{b}.{c}.100,{a}.{b}.{c}.199,255.255.255.0,10m"),
                // Empty router and DNS options: nothing on this link routes anywhere.
                "--dhcp-option=option:router".to_owned(),
                "--dhcp-option=option:dns-server".to_owned(),
                // The ICMP conflict check delays every first offer by 3 s.
                "--no-ping".to_owned(),
                format!("--dhcp-range={IPV6_PREFIX}::,ra-only,64"),
            ]);
            for (index, client) in clients.iter().enumerate() {
                args.push(format!("--dhcp-host={},{}", client.mac, reserved_address(index)?));
            }
        }
        Stack::Ipv6Only => args.extend([
            // Stateful DHCPv6: the router advertisements carry the managed flag.
            format!("--dhcp-range={IPV6_PREFIX}::100,{IPV6_PREFIX}::1ff,64,10m"),
            // The site's DNS server ([`start_dns`]) for iPXE only: OVMF's PXEv6 (Debian's
            // 2022.11) failed with "PXE-E16: No valid offer received" when the address
            // server's Advertise carried it.
            format!(
                "--dhcp-option=tag:ipxe,option6:dns-server,[{}]",
                lab_ip6(SITE_DHCP_IP.octets()[3])
            ),
            "--dhcp-userclass=set:ipxe,iPXE".to_owned(),
            format!(
                "--dhcp-option=tag:ipxe,tag:!by-address,option6:bootfile-url,{}",
                super::project_config::ipxe_script_url(lab)
            ),
            format!(
                "--dhcp-option=tag:ipxe,tag:by-address,option6:bootfile-url,{}",
                super::project_config::ipxe_script_url_by_address6(lab)
            ),
        ]),
    }
    if lab.stack == Stack::Ipv6Only {
        // dnsmasq knows a DHCPv6 client's MAC from its EUI-64 link-local source address.
        for client in clients.iter().filter(|c| c.firmware == Firmware::UefiPxe6) {
            args.push(format!("--dhcp-host={},set:by-address", client.mac));
        }
    }
    Spawned::start("site-dhcp", ns, &dir.join("site-dhcp.log"), "dnsmasq", &args)
}

/// The IPv6-only site's DNS server, in the DHCP namespace beside the DHCP server: a second
/// dnsmasq without DHCP that knows the HTTPS host's name (an AAAA record), for iPXE's script
/// URL. `None` in an IPv4 lab.
pub(crate) fn start_dns(lab: &Lab, dir: &Path) -> Result<Option<Spawned>> {
    if lab.stack != Stack::Ipv6Only {
        return Ok(None);
    }
    let args = [
        "--no-daemon".to_owned(),
        "--conf-file=/dev/null".to_owned(),
        "--user=root".to_owned(),
        "--group=root".to_owned(),
        "--pid-file=".to_owned(),
        format!("--interface={SERVER_IF}"),
        "--bind-interfaces".to_owned(),
        "--no-resolv".to_owned(),
        "--no-hosts".to_owned(),
        format!(
            "--host-record={},{}",
            super::project_config::IPV6_HTTPS_NAME,
            lab.host("https").ip6
        ),
        "--log-queries".to_owned(),
        "--log-facility=-".to_owned(),
    ];
    Spawned::start(
        "site-dns",
        &lab.dhcp_netns,
        &dir.join("site-dns.log"),
        "dnsmasq",
        &args,
    )
    .map(Some)
}

/// The address reserved for the `index`th client of a pass.
pub(crate) fn reserved_address(index: usize) -> Result<Ipv4Addr> {
    let [a, b, c] = LAB_NET;
    let host = u8::try_from(index)
        .ok()
        .and_then(|i| i.checked_add(100))
        .context("more than 100 lab clients")?;
    Ok(Ipv4Addr::new(a, b, c, host))
}
