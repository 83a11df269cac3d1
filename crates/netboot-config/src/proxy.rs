//! `[proxy]`: the proxyDHCP service (`pxe-proxy`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use netboot_core::ClientArch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// Settings of the proxyDHCP service.
///
/// With no `[proxy]` section it listens on 0.0.0.0 ports 67 and 4011 on every interface and
/// answers as the address of the interface each request arrived on.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(
///     "[proxy]\ndhcp_port = 1067\ninterfaces = [\"eth1\"]\n[proxy.boot_files]\nx64-uefi = \"ipxe.efi\"\n",
/// )
/// .unwrap();
/// assert_eq!(config.proxy.dhcp_port, 1067);
/// let files = config.proxy.effective_boot_files();
/// assert_eq!(files[&netboot_core::ClientArch::EfiX64], "ipxe.efi");
/// assert_eq!(files[&netboot_core::ClientArch::X86Bios], "undionly.kpxe");
/// assert!(netboot_config::Config::from_toml_str("[proxy.boot_files]\nvax = \"x\"\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address both sockets bind to. Keep 0.0.0.0 to receive broadcast DISCOVERs.
    pub listen: Ipv4Addr,
    /// DHCP port (67). 0 picks a free port (tests).
    pub dhcp_port: u16,
    /// PXE boot-server port (4011). 0 picks a free port (tests).
    pub pxe_port: u16,
    /// Interfaces to serve (SO_BINDTODEVICE, needs root or CAP_NET_RAW); empty serves all.
    pub interfaces: Vec<String>,
    /// The address to answer as (option 54, `siaddr`, `{server}` in URLs). Unset: the
    /// address of the interface each request arrived on.
    pub server_address: Option<Ipv4Addr>,
    /// The TFTP server handed to firmware as next-server. Unset: the server address.
    pub tftp_server: Option<Ipv4Addr>,
    /// Boot programs per architecture (`bios`, `x64-uefi`, `arm64-uefi`, ... or a number).
    /// Entries here replace the built-in ones for that architecture; an empty name stops
    /// answering that architecture.
    pub boot_files: BTreeMap<String, String>,
    /// Script URL handed to clients already running iPXE, so they never chainload again.
    /// `{server}` is replaced by the server address.
    pub ipxe_script_url: String,
    /// Script URL for iPXE builds that report no HTTPS support (QEMU's ROMs, Debian 12's
    /// iPXE). Empty: they get `ipxe_script_url` too.
    pub ipxe_script_url_without_https: String,
    /// Base URL for UEFI HTTP Boot clients; the boot file name is appended.
    pub http_boot_url: String,
    /// Destination port of port-67 replies. Only labs and tests change it.
    pub client_port: u16,
    /// Chainload the site's iPXE (the boot file over TFTP) into machines whose NIC ROM is
    /// already iPXE, instead of handing the ROM's often old iPXE the script URL. The
    /// chainloaded iPXE gets the script URL: it is recognised by its vendor class and by the
    /// proxy remembering, per MAC, that it just handed that machine a boot file.
    pub chainload_ipxe_roms: bool,
    /// Relay agents (`giaddr`) whose relayed requests are answered: addresses or prefixes
    /// such as `"10.1.0.1"` or `"10.0.0.0/8"`. The default answers every relay; an empty list
    /// answers none. A reply goes to the relay named in the request, so without this list a
    /// forged `giaddr` points replies at any host.
    pub allowed_relays: Vec<Ipv4Prefix>,
    /// Unicast replies per second to one address (a relay agent or a client), with bursts of
    /// as many. Broadcast replies on the local link are not limited. Keeps the proxy from
    /// serving as a reflector for forged requests.
    pub max_replies_per_destination: u32,
    /// Answer DHCPv6 too: UDP `dhcpv6_port` joined to ff02::1:2 on every interface with IPv6
    /// (or those in `interfaces`), and the PXE boot-server exchange on `[::]:pxe_port`. Boot
    /// options only, never addresses.
    pub dhcpv6: bool,
    /// DHCPv6 server port (547). 0 picks a free port (tests).
    pub dhcpv6_port: u16,
    /// The IPv6 address put in DHCPv6 boot URLs (`{server}`). Unset: a routable (not
    /// link-local) address of the interface each request arrived on.
    pub server_address6: Option<Ipv6Addr>,
    /// The TFTP server in `tftp://` URLs handed to UEFI PXE over IPv6. Unset: the IPv6 server
    /// address.
    pub tftp_server6: Option<Ipv6Addr>,
}

/// An IPv4 address prefix, written `a.b.c.d/len` or as a plain address (`/32`).
///
/// ```
/// use netboot_config::Ipv4Prefix;
/// let lan: Ipv4Prefix = "10.0.0.0/8".parse().unwrap();
/// assert!(lan.contains("10.20.30.40".parse().unwrap()));
/// assert!(!lan.contains("192.0.2.1".parse().unwrap()));
/// assert!("10.0.0.1/33".parse::<Ipv4Prefix>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Prefix {
    network: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// Every IPv4 address.
    pub const ANY: Self = Self {
        network: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    /// Whether `addr` lies inside the prefix.
    #[must_use]
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(addr) & mask == u32::from(self.network) & mask
    }
}

// Written as a string (`serde(try_from = "String")`), which the derive would not describe.
netboot_core::string_schema!(Ipv4Prefix, "Ipv4Prefix", "ipv4-prefix");

impl std::str::FromStr for Ipv4Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
        let network = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let len = len
            .parse()
            .ok()
            .filter(|len| *len <= 32)
            .ok_or_else(|| format!("{len:?} is not a prefix length 0..=32"))?;
        Ok(Self { network, len })
    }
}

impl TryFrom<String> for Ipv4Prefix {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Ipv4Prefix> for String {
    fn from(prefix: Ipv4Prefix) -> Self {
        prefix.to_string()
    }
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: Ipv4Addr::UNSPECIFIED,
            dhcp_port: 67,
            pxe_port: 4011,
            interfaces: Vec::new(),
            server_address: None,
            tftp_server: None,
            boot_files: BTreeMap::new(),
            ipxe_script_url: "https://{server}/boot.ipxe".into(),
            ipxe_script_url_without_https: "http://{server}/boot.ipxe".into(),
            http_boot_url: "http://{server}/".into(),
            client_port: 68,
            chainload_ipxe_roms: true,
            allowed_relays: vec![Ipv4Prefix::ANY],
            max_replies_per_destination: 100,
            dhcpv6: true,
            dhcpv6_port: 547,
            server_address6: None,
            tftp_server6: None,
        }
    }
}

/// Boot programs used when `[proxy.boot_files]` does not name one: iPXE builds, loaded by
/// the firmware over TFTP. `snponly.efi` drives the NIC through the firmware's own network
/// stack, so it works on any NIC the firmware supports.
pub(crate) const DEFAULT_BOOT_FILES: &[(ClientArch, &str)] = &[
    (ClientArch::X86Bios, "undionly.kpxe"),
    (ClientArch::EfiIa32, "snponly-i386.efi"),
    (ClientArch::EfiX64, "snponly.efi"),
    (ClientArch::EfiArm32, "snponly-arm32.efi"),
    (ClientArch::EfiArm64, "snponly-arm64.efi"),
];

impl ProxyConfig {
    /// The built-in boot files with `boot_files` applied; keys are PXE (non-HTTP) architectures.
    pub fn effective_boot_files(&self) -> BTreeMap<ClientArch, String> {
        let mut files: BTreeMap<ClientArch, String> = DEFAULT_BOOT_FILES
            .iter()
            .map(|(arch, name)| (*arch, name.to_string()))
            .collect();
        for (key, name) in &self.boot_files {
            let Some(arch) = ClientArch::from_name(key) else {
                continue;
            };
            let arch = arch.boot_program_arch();
            if name.is_empty() {
                files.remove(&arch);
            } else {
                files.insert(arch, name.clone());
            }
        }
        files
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        for (key, name) in &self.boot_files {
            if ClientArch::from_name(key).is_none() {
                problems.push(
                    format!("proxy.boot_files.{key}"),
                    "unknown architecture (use bios, x64-uefi, arm64-uefi, ... or a number)",
                );
            }
            if name.len() > 255 || name.chars().any(|c| c.is_control()) {
                problems.push(
                    format!("proxy.boot_files.{key}"),
                    "must be at most 255 characters without control characters",
                );
            }
        }
        let urls = [
            ("proxy.ipxe_script_url", &self.ipxe_script_url, false),
            (
                "proxy.ipxe_script_url_without_https",
                &self.ipxe_script_url_without_https,
                true,
            ),
            ("proxy.http_boot_url", &self.http_boot_url, false),
        ];
        for (key, url, may_be_empty) in urls {
            if url.is_empty() && may_be_empty {
                continue;
            }
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || url.len() > 255 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(
                    key,
                    "must be an http:// or https:// URL of at most 255 characters without spaces",
                );
            }
        }
        for (index, name) in self.interfaces.iter().enumerate() {
            if name.is_empty() || name.len() > 15 || name.contains('/') {
                problems.push(
                    format!("proxy.interfaces[{index}]"),
                    format!("{name:?} is not an interface name"),
                );
            }
        }
        if self.dhcp_port == self.pxe_port && self.dhcp_port != 0 {
            problems.push("proxy.pxe_port", "must differ from proxy.dhcp_port");
        }
        if self.client_port == 0 {
            problems.push("proxy.client_port", "must not be 0");
        }
        if !(1..=100_000).contains(&self.max_replies_per_destination) {
            problems.push(
                "proxy.max_replies_per_destination",
                format!("{} is outside 1..=100000", self.max_replies_per_destination),
            );
        }
        if self.dhcpv6 && self.dhcpv6_port == self.pxe_port && self.pxe_port != 0 {
            problems.push("proxy.dhcpv6_port", "must differ from proxy.pxe_port");
        }
        for (key, address) in [
            ("proxy.server_address6", self.server_address6),
            ("proxy.tftp_server6", self.tftp_server6),
        ] {
            if address
                .is_some_and(|a| a.is_unspecified() || a.is_multicast() || a.segments()[0] & 0xffc0 == 0xfe80)
            {
                problems.push(
                    key,
                    "must be a routable unicast address (clients cannot use a link-local one in a URL)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProxyConfig;
    use crate::Config;

    #[test]
    fn defaults() {
        let proxy = Config::load(None).unwrap().proxy;
        assert_eq!(
            (proxy.dhcp_port, proxy.pxe_port, proxy.client_port),
            (67, 4011, 68)
        );
        assert_eq!(proxy.effective_boot_files().len(), 5);
        assert!(proxy.chainload_ipxe_roms);
        assert!(proxy.dhcpv6);
        assert_eq!(proxy.dhcpv6_port, 547);
        let off = Config::from_toml_str("[proxy]\nchainload_ipxe_roms = false\n").unwrap();
        assert!(!off.proxy.chainload_ipxe_roms);
    }

    #[test]
    fn relays_are_prefixes() {
        let proxy = Config::load(None).unwrap().proxy;
        assert_eq!(proxy.allowed_relays, [super::Ipv4Prefix::ANY]);
        let set =
            Config::from_toml_str("[proxy]\nallowed_relays = [\"10.1.0.1\", \"172.16.0.0/12\"]\n").unwrap();
        let relays = &set.proxy.allowed_relays;
        assert!(
            relays[0].contains("10.1.0.1".parse().unwrap())
                && !relays[0].contains("10.1.0.2".parse().unwrap())
        );
        assert!(
            relays[1].contains("172.31.255.1".parse().unwrap())
                && !relays[1].contains("172.32.0.1".parse().unwrap())
        );
        let err = Config::from_toml_str("[proxy]\nallowed_relays = [\"10.0.0.0/40\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("allowed_relays") && err.contains("prefix length"),
            "{err}"
        );
        let err = Config::from_toml_str("[proxy]\nmax_replies_per_destination = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("proxy.max_replies_per_destination"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_toml_str(
            "[proxy]\npxe_port = 67\nipxe_script_url = \"ftp://x\"\ninterfaces = [\"\"]\nserver_address6 = \"fe80::1\"\n[proxy.boot_files]\nbios = \"\"\nnope = \"a\"\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "proxy.pxe_port",
            "proxy.ipxe_script_url",
            "proxy.interfaces[0]",
            "proxy.server_address6",
            "proxy.boot_files.nope",
        ] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        assert!(!err.contains("proxy.boot_files.bios"), "{err}");
    }

    #[test]
    fn readme_reference_parses_and_matches_the_defaults() {
        let example = crate::readme::example_starting_with("[proxy]\n");
        let config = Config::from_toml_str(&example.file).unwrap();
        let defaults = Config::default().proxy;
        assert_eq!(
            config.proxy.effective_boot_files(),
            defaults.effective_boot_files()
        );
        assert_eq!(
            ProxyConfig {
                boot_files: Default::default(),
                ..config.proxy
            },
            defaults
        );
    }

    #[test]
    fn empty_name_disables_an_architecture() {
        let config =
            Config::from_toml_str("[proxy.boot_files]\nbios = \"\"\nx64-uefi-http = \"ipxe.efi\"\n").unwrap();
        let files = config.proxy.effective_boot_files();
        assert!(!files.contains_key(&netboot_core::ClientArch::X86Bios));
        assert_eq!(files[&netboot_core::ClientArch::EfiX64], "ipxe.efi");
    }
}
