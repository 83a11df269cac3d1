//! The `pxe-proxy` service: proxyDHCP on the DHCP port (67) and the PXE boot-server
//! exchange on 4011, answering only PXE, UEFI HTTP Boot and iPXE clients and never handing
//! out addresses, so it runs next to the site's DHCP server.
//!
//! The protocol logic is the sans-IO [`netboot_dhcp::proxy`]; this crate owns the sockets,
//! the resolver calls and their deadline. [`Proxy`] is its [`netboot_service::Service`]:
//! `Proxy::bind` then [`BoundProxy::serve`], so an embedding program (or a test) learns the
//! bound ports first.

mod dhcpv6;
mod first_run;
mod reflection;
mod serve;
mod socket;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, RwLock};

use netboot_config::Config;
use netboot_dhcp::proxy::{ListenPort, ProxySettings};
use netboot_dhcp::v6::proxy::Dhcp6Settings;
use netboot_dhcp::v6::wire::Duid;
use netboot_runtime::packet::PacketSocket;
use netboot_runtime::udp::{PktInfoSocket, UdpOptions};
use netboot_service::{Bound, Context, LocalAddr, Reload, RuntimeFlavor, Section, Service, Shutdown};
use socket::DhcpSocket;

/// The proxyDHCP service.
#[derive(Debug)]
pub struct Proxy;

/// Command-line flags of `pxe-proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// DHCP port [default: 67]; 0 picks a free one
    #[arg(long, value_name = "N")]
    pub dhcp_port: Option<u16>,
    /// PXE boot-server port [default: 4011]; 0 picks a free one
    #[arg(long, value_name = "N")]
    pub pxe_port: Option<u16>,
}

/// Socket receive buffer: a few thousand queued requests, so a burst of booting machines
/// is not dropped while the process waits for the CPU.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

impl Service for Proxy {
    const NAME: &'static str = "pxe-proxy";
    const ABOUT: &'static str = "proxyDHCP for PXE, UEFI HTTP Boot and iPXE clients (ports 67 and 4011)";
    const SECTIONS: &'static [Section] = &[Section::Proxy, Section::Resolver];
    // One thread: a reply costs microseconds and one thread avoids cross-thread wake-ups;
    // slow resolver lookups are awaited in their own tasks, never blocking the loop.
    const RUNTIME: RuntimeFlavor = RuntimeFlavor::CurrentThread;
    type Args = Args;
    type Bound = BoundProxy;

    fn apply_args(args: &Args, config: &mut Config) {
        if let Some(port) = args.dhcp_port {
            config.proxy.dhcp_port = port;
        }
        if let Some(port) = args.pxe_port {
            config.proxy.pxe_port = port;
        }
    }

    /// Binds the DHCP and PXE sockets `[proxy]` asks for (one per interface when
    /// `interfaces` is set). Errors name the address and the likely cause.
    async fn bind(config: Arc<Config>, context: Context) -> anyhow::Result<BoundProxy> {
        let resolver = context.resolver(&config)?;
        let proxy = &config.proxy;
        let interfaces: Vec<Option<String>> = if proxy.interfaces.is_empty() {
            vec![None]
        } else {
            proxy.interfaces.iter().cloned().map(Some).collect()
        };
        let mut sockets = Vec::new();
        let mut dhcp_port = proxy.dhcp_port;
        for (port_kind, configured) in [
            (ListenPort::Dhcp, proxy.dhcp_port),
            (ListenPort::PxeBootServer, proxy.pxe_port),
        ] {
            let mut port = configured;
            for interface in &interfaces {
                let addr = SocketAddrV4::new(proxy.listen, port);
                let options = UdpOptions {
                    broadcast: true,
                    device: interface.clone(),
                    reuse_address: false,
                    receive_buffer: Some(RECEIVE_BUFFER_BYTES),
                };
                let socket = bind_dhcp_socket(port_kind, addr, &options)?;
                // Port 0: every interface's socket shares the port the first one got.
                port = socket.local_addr()?.port();
                sockets.push(BoundSocket {
                    socket,
                    port: port_kind,
                    interface: interface.clone(),
                });
            }
            if port_kind == ListenPort::Dhcp {
                dhcp_port = port;
            }
        }
        let dhcpv6 = dhcpv6::bind(&config, RECEIVE_BUFFER_BYTES)?;
        let server_duid = dhcpv6::server_duid();
        let answers = Arc::new(Answers {
            current: RwLock::new(Arc::new(Answering::from_config(&config, dhcp_port, &server_duid))),
            relay_port: dhcp_port,
            server_duid,
        });
        Ok(BoundProxy {
            sockets,
            dhcpv6,
            answers,
            shared: serve::Shared::new(&config, resolver, context.telemetry),
        })
    }
}

/// The proxy with its sockets bound, not yet serving.
#[derive(Debug)]
pub struct BoundProxy {
    sockets: Vec<BoundSocket>,
    answers: Arc<Answers>,
    shared: serve::Shared,
    /// The DHCPv6 side, unless `[proxy] dhcpv6 = false` or the host has no IPv6.
    dhcpv6: Option<dhcpv6::BoundDhcp6>,
}

#[derive(Debug)]
struct BoundSocket {
    socket: DhcpSocket,
    port: ListenPort,
    interface: Option<String>,
}

/// What the answers contain, from `[proxy]`; a reload replaces it.
#[derive(Debug)]
pub(crate) struct Answering {
    pub(crate) settings: ProxySettings,
    /// The address to answer as, instead of the receiving interface's.
    pub(crate) server_address: Option<Ipv4Addr>,
    /// The static rules, when they leave machines no rule names unanswered (the default):
    /// such machines are reported once with the line that would answer them.
    pub(crate) silent_rules: Option<netboot_core::StaticRules>,
    /// Relay agents whose relayed requests are answered (`proxy.allowed_relays`).
    pub(crate) allowed_relays: Vec<netboot_config::Ipv4Prefix>,
    /// What DHCPv6 answers contain beyond `settings`.
    pub(crate) settings6: Dhcp6Settings,
    /// The IPv6 address to put in URLs, instead of one of the receiving interface's.
    pub(crate) server_address6: Option<Ipv6Addr>,
}

impl Answering {
    fn from_config(config: &Config, relay_port: u16, server_duid: &Duid) -> Self {
        let proxy = &config.proxy;
        Self {
            settings: ProxySettings {
                boot_files: proxy.effective_boot_files(),
                tftp_server: proxy.tftp_server,
                ipxe_script_url: proxy.ipxe_script_url.clone(),
                ipxe_script_url_without_https: Some(proxy.ipxe_script_url_without_https.clone())
                    .filter(|u| !u.is_empty()),
                http_boot_url: proxy.http_boot_url.clone(),
                client_port: proxy.client_port,
                // Relay agents listen on the DHCP server port; using ours keeps labs on high
                // ports working.
                relay_port,
                chainload_ipxe_roms: proxy.chainload_ipxe_roms,
            },
            server_address: proxy.server_address,
            silent_rules: first_run::silent_rules(config),
            allowed_relays: proxy.allowed_relays.clone(),
            settings6: Dhcp6Settings {
                server_duid: server_duid.clone(),
                tftp_server: proxy.tftp_server6,
            },
            server_address6: proxy.server_address6,
        }
    }
}

/// The current [`Answering`], shared by the receive loops and the reloader.
#[derive(Debug)]
pub(crate) struct Answers {
    current: RwLock<Arc<Answering>>,
    relay_port: u16,
    /// This server's DHCPv6 identifier, the same for the life of the process.
    server_duid: Duid,
}

impl Answers {
    pub(crate) fn current(&self) -> Arc<Answering> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Reload for Answers {
    /// Boot-file names, URLs, server and TFTP addresses, chainloading and the allowed relays
    /// take effect with the next request.
    fn reload(&self, config: &Arc<Config>) -> anyhow::Result<()> {
        let answering = Arc::new(Answering::from_config(config, self.relay_port, &self.server_duid));
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answering;
        Ok(())
    }
}

/// Binds `addr` for `port`. When the DHCP port is held by another program on this host (its
/// DHCP server), requests are captured beside it instead, which needs CAP_NET_RAW; the log
/// says which mode the proxy runs in.
fn bind_dhcp_socket(
    port: ListenPort,
    addr: SocketAddrV4,
    options: &UdpOptions,
) -> anyhow::Result<DhcpSocket> {
    let interface = options.device.as_deref();
    let error = match PktInfoSocket::bind(addr, options) {
        Ok(socket) => return Ok(DhcpSocket::Udp(socket)),
        Err(error) => error,
    };
    if port != ListenPort::Dhcp || error.kind() != std::io::ErrorKind::AddrInUse || addr.port() == 0 {
        return Err(bind_error(error, &addr.to_string(), interface));
    }
    match PacketSocket::bind(addr.port(), interface, options.receive_buffer) {
        Ok(socket) => {
            tracing::warn!(
                "UDP {addr} is held by another program (the DHCP server of this host?): \
                 receiving DHCP requests through a packet socket{} beside it; replies still \
                 leave from port {}",
                interface.map(|i| format!(" on {i}")).unwrap_or_default(),
                addr.port(),
            );
            Ok(DhcpSocket::Packet(socket))
        }
        Err(capture_error) => Err(bind_error(error, &addr.to_string(), interface).context(format!(
            "capturing DHCP beside the program that holds the port failed too ({capture_error}; it needs CAP_NET_RAW)"
        ))),
    }
}

fn bind_error(error: std::io::Error, addr: &str, interface: Option<&str>) -> anyhow::Error {
    let on = interface
        .map(|i| format!(" on interface {i}"))
        .unwrap_or_default();
    let hint = match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 and binding to an interface need root or CAP_NET_BIND_SERVICE/CAP_NET_RAW)"
        }
        std::io::ErrorKind::AddrInUse => {
            " (port busy: is another DHCP or proxyDHCP server running on this host?)"
        }
        _ if error.raw_os_error() == Some(19) => " (no such interface)",
        _ => "",
    };
    anyhow::Error::new(error).context(format!("binding UDP {addr}{on}{hint}"))
}

impl BoundProxy {
    /// The bound addresses, with which port each serves.
    pub fn ports(&self) -> Vec<(ListenPort, SocketAddrV4)> {
        self.sockets
            .iter()
            .filter_map(|s| Some((s.port, s.socket.local_addr().ok()?)))
            .collect()
    }

    /// The bound DHCPv6 and IPv6 boot-server addresses; empty when DHCPv6 is off.
    pub fn ports6(&self) -> Vec<(ListenPort, SocketAddrV6)> {
        self.dhcpv6
            .as_ref()
            .map(dhcpv6::BoundDhcp6::local_addrs)
            .unwrap_or_default()
    }
}

impl Bound for BoundProxy {
    /// The IPv6 sockets first: the IPv4 boot server's line comes last, as before.
    fn local_addrs(&self) -> Vec<LocalAddr> {
        let ipv6 = self.dhcpv6.iter().flat_map(dhcpv6::BoundDhcp6::described_addrs);
        let ipv4 = self.sockets.iter().filter_map(|bound| {
            let addr = bound.socket.local_addr().ok()?;
            let on = bound
                .interface
                .as_deref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default();
            Some(LocalAddr::new(
                addr.into(),
                format!("{}{on}{}", bound.port.description(), bound.socket.mode()),
            ))
        });
        ipv6.chain(ipv4).collect()
    }

    fn reloaders(&self) -> Vec<Arc<dyn Reload>> {
        vec![Arc::clone(&self.answers) as Arc<dyn Reload>]
    }

    /// Answers until `shutdown` says to stop accepting; lookups already waiting for the
    /// resolver finish in their own tasks.
    async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        serve::serve(self, shutdown).await
    }
}
