//! The lab network: namespaces, a bridge, veth links and tap devices.
//!
//! ```text
//!  <run>-net : bridge br0 (no address) + tap0..tapN-1 (QEMU clients attach here)
//!                 |  veth                 |  veth
//!  <run>-dhcp: eth0 10.77.0.2/24          <run>-pxe (or -proxy, -tftp, -https): eth0 10.77.0.x/24
//!  site DHCP (addresses only) + IPv6 RA   the project's services
//! ```
//!
//! An IPv6-only lab ([`Stack::Ipv6Only`]) has the same shape without IPv4 anywhere: the
//! hosts are `fd77:0:0:77::x/64`, and the site namespace sends router advertisements with the
//! managed flag and hands out addresses over DHCPv6.
//!
//! Every name starts with a per-run prefix that contains the harness's pid, so two runs never
//! collide, and a later run can tell the leftovers of a run whose harness died (its pid is
//! gone) and remove them. Nothing is created in the host's own namespace.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Result};

use super::process::{in_netns, run_checked};

/// Prefix shared by every namespace the harness creates.
const NETNS_PREFIX: &str = "nbe2e-";

/// The lab's IPv4 network (a /24).
pub(crate) const LAB_NET: [u8; 3] = [10, 77, 0];
/// The site DHCP server's address.
pub(crate) const SITE_DHCP_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// IPv6 prefix (a /64) the site DHCP namespace announces, so iPXE's autoconfiguration ends at once.
pub(crate) const IPV6_PREFIX: &str = "fd77:0:0:77";
/// Interface name of the veth end inside each server namespace.
pub(crate) const SERVER_IF: &str = "eth0";

/// Which IP versions the lab network carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    /// IPv4 addresses from the site's DHCP server; the site also sends IPv6 router
    /// advertisements (no DHCPv6), so iPXE's IPv6 autoconfiguration ends at once.
    Ipv4,
    /// IPv6 only: router advertisements and DHCPv6 addresses from the site, no IPv4 address
    /// on any host or client.
    Ipv6Only,
}

/// How a client's requests show up in the services' logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientAddr {
    /// The IPv4 address the site reserved for it.
    V4(Ipv4Addr),
    /// Its addresses in the lab's IPv6 prefix: the site's DHCPv6 server hands one to each
    /// DHCPv6 client of a boot (the firmware's stack, then iPXE). The harness learns them from
    /// the firmware's console and from the services' lines naming the client's MAC.
    V6(Vec<Ipv6Addr>),
}

impl ClientAddr {
    /// How pxe-tftp and the TLS handshake lines name the client (`peer=`, the address, then
    /// the port).
    pub(crate) fn peers(&self) -> Vec<String> {
        match self {
            Self::V4(ip) => vec![format!("peer={ip}:")],
            Self::V6(addresses) => addresses.iter().map(|a| format!("peer=[{a}]:")).collect(),
        }
    }

    /// How pxe-https's request lines name the client (`remote=` and the address).
    pub(crate) fn remotes(&self) -> Vec<String> {
        match self {
            Self::V4(ip) => vec![format!("remote={ip} ")],
            Self::V6(addresses) => addresses.iter().map(|a| format!("remote={a} ")).collect(),
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(ip) => write!(f, "{ip}"),
            Self::V6(addresses) if addresses.is_empty() => f.write_str("(no IPv6 address seen)"),
            Self::V6(addresses) => {
                let list: Vec<String> = addresses.iter().map(Ipv6Addr::to_string).collect();
                f.write_str(&list.join(" or "))
            }
        }
    }
}

/// Where the project's services run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// All services in one namespace, as on a single PXE host.
    Together,
    /// Each service in its own namespace, as on three hosts sharing one configuration file.
    Split,
    /// The all-in-one `pxe-server` binary: one process, all three roles.
    AllInOne,
}

impl Layout {
    /// Name for logs and reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Together => "together",
            Self::Split => "split",
            Self::AllInOne => "all-in-one",
        }
    }
}

/// A namespace standing in for one server host.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// What runs there: `pxe`, `proxy`, `tftp` or `https`.
    pub(crate) role: &'static str,
    /// Its namespace.
    pub(crate) netns: String,
    /// Its IPv4 address on the lab network (not configured in an IPv6-only lab).
    pub(crate) ip: Ipv4Addr,
    /// Its IPv6 address on the lab network (configured in an IPv6-only lab).
    pub(crate) ip6: Ipv6Addr,
}

impl Host {
    /// The host part of URLs pointing at this host: `10.77.0.4` or `[fd77:0:0:77::4]`.
    pub(crate) fn url_host(&self, stack: Stack) -> String {
        match stack {
            Stack::Ipv4 => self.ip.to_string(),
            Stack::Ipv6Only => format!("[{}]", self.ip6),
        }
    }
}

/// The lab's IPv6 address ending in `last` (in [`IPV6_PREFIX`]).
pub(crate) fn lab_ip6(last: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, 0, 0, 0x77, 0, 0, 0, u16::from(last))
}

/// A created lab; dropping it deletes every namespace it made (stop processes first).
pub(crate) struct Lab {
    /// The clients' namespace, with the bridge and the taps.
    pub(crate) clients_netns: String,
    /// The site DHCP server's namespace.
    pub(crate) dhcp_netns: String,
    /// Server hosts, one per role of the layout.
    pub(crate) hosts: Vec<Host>,
    /// Number of tap devices (`tap0`..).
    pub(crate) taps: usize,
    /// IPv4, or IPv6 only.
    pub(crate) stack: Stack,
    created: Vec<String>,
}

impl Lab {
    /// Creates the namespaces and links for `layout` with `taps` client ports.
    pub(crate) fn create(run_id: &str, layout: Layout, taps: usize, stack: Stack) -> Result<Self> {
        let prefix = format!("{NETNS_PREFIX}{run_id}");
        let host = |role: &'static str, last: u8| Host {
            role,
            netns: format!("{prefix}-{role}"),
            ip: Ipv4Addr::new(LAB_NET[0], LAB_NET[1], LAB_NET[2], last),
            ip6: lab_ip6(last),
        };
        let hosts = match layout {
            Layout::Together | Layout::AllInOne => vec![host("pxe", 1)],
            Layout::Split => vec![host("proxy", 1), host("tftp", 3), host("https", 4)],
        };
        let mut lab = Self {
            clients_netns: format!("{prefix}-net"),
            dhcp_netns: format!("{prefix}-dhcp"),
            hosts,
            taps,
            stack,
            created: Vec::new(),
        };
        // On error the partly built lab is dropped, which removes what was made.
        lab.build()?;
        Ok(lab)
    }

    fn add_netns(&mut self, name: &str) -> Result<()> {
        run_checked("ip", &["netns", "add", name])?;
        self.created.push(name.to_owned());
        in_netns(name, &["ip", "link", "set", "lo", "up"])?;
        // No IPv6 chatter from the Linux side; the site DHCP namespace turns it on for its RA.
        in_netns(
            name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )
    }

    fn build(&mut self) -> Result<()> {
        let net = self.clients_netns.clone();
        self.add_netns(&net)?;
        in_netns(
            &net,
            &[
                "ip",
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        in_netns(&net, &["ip", "link", "set", "br0", "up"])?;

        let mut servers = vec![("dhcp".to_owned(), self.dhcp_netns.clone(), SITE_DHCP_IP)];
        servers.extend(
            self.hosts
                .iter()
                .map(|h| (h.role.to_owned(), h.netns.clone(), h.ip)),
        );
        for (role, ns, ip) in servers {
            self.add_netns(&ns)?;
            let bridge_end = format!("v{role}");
            in_netns(
                &net,
                &[
                    "ip",
                    "link",
                    "add",
                    &bridge_end,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    SERVER_IF,
                    "netns",
                    &ns,
                ],
            )?;
            in_netns(&net, &["ip", "link", "set", &bridge_end, "master", "br0", "up"])?;
            match self.stack {
                Stack::Ipv4 => {
                    in_netns(&ns, &["ip", "addr", "add", &format!("{ip}/24"), "dev", SERVER_IF])?;
                    in_netns(&ns, &["ip", "link", "set", SERVER_IF, "up"])?;
                    // Like any real server, a default route: sending to 255.255.255.255 needs
                    // one unless the service pins its socket to the interface. The link only
                    // reaches the lab's bridge, so nothing can leave the namespaces.
                    in_netns(&ns, &["ip", "route", "add", "default", "dev", SERVER_IF])?;
                }
                Stack::Ipv6Only => {
                    // IPv6 on the lab link only, with a static address (no autoconfiguration
                    // from the site's router advertisements, no duplicate address detection
                    // to wait for).
                    let conf = format!("net.ipv6.conf.{SERVER_IF}");
                    in_netns(
                        &ns,
                        &[
                            "sysctl",
                            "-qw",
                            &format!("{conf}.disable_ipv6=0"),
                            &format!("{conf}.accept_ra=0"),
                            &format!("{conf}.accept_dad=0"),
                        ],
                    )?;
                    let ip6 = lab_ip6(ip.octets()[3]);
                    in_netns(
                        &ns,
                        &[
                            "ip",
                            "-6",
                            "addr",
                            "add",
                            &format!("{ip6}/64"),
                            "dev",
                            SERVER_IF,
                            "nodad",
                        ],
                    )?;
                    in_netns(&ns, &["ip", "link", "set", SERVER_IF, "up"])?;
                }
            }
        }
        for index in 0..self.taps {
            let tap = tap_name(index);
            in_netns(&net, &["ip", "tuntap", "add", "dev", &tap, "mode", "tap"])?;
            in_netns(&net, &["ip", "link", "set", &tap, "master", "br0", "up"])?;
        }
        Ok(())
    }

    /// The host running `role` (in the together layout, the single `pxe` host runs everything).
    pub(crate) fn host(&self, role: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.role == role)
            .unwrap_or(&self.hosts[0])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            if let Err(e) = run_checked("ip", &["netns", "delete", name]) {
                eprintln!("e2e: could not delete netns {name}: {e:#}");
            }
        }
    }
}

/// The tap device of client slot `index`.
pub(crate) fn tap_name(index: usize) -> String {
    format!("tap{index}")
}

/// Deletes namespaces left behind by harness runs whose process no longer exists
/// (a harness killed with SIGKILL cannot clean up after itself).
pub(crate) fn remove_stale_namespaces() -> Result<()> {
    let output = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()?;
    if !output.status.success() {
        bail!(
            "ip netns list failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split(['-', '.']).next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("e2e: removing netns {name} left by an earlier run (pid {pid} is gone)");
            run_checked("ip", &["netns", "delete", name])?;
        }
    }
    Ok(())
}
