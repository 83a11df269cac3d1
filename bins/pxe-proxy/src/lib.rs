//! The `pxe-proxy` service: proxyDHCP on the DHCP port (67) and the PXE boot-server
//! exchange on 4011, answering only PXE, UEFI HTTP Boot and iPXE clients and never handing
//! out addresses, so it runs next to the site's DHCP server.
//!
//! The protocol logic is the sans-IO [`netboot_dhcp::proxy`]; this crate owns the sockets,
//! the resolver calls and their deadline. [`bind`] then [`BoundProxy::serve`] lets an
//! embedding program (or a test) learn the bound ports; [`run`] does both.

mod serve;

use std::future::Future;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;

use netboot_config::Config;
use netboot_core::BootResolver;
use netboot_dhcp::proxy::{ListenPort, ProxySettings};
use netboot_runtime::udp::{PktInfoSocket, UdpOptions};

/// Command line of `pxe-proxy`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "proxyDHCP for PXE, UEFI HTTP Boot and iPXE clients (ports 67 and 4011)"
)]
pub struct Args {
    /// TOML configuration; pxe-proxy reads [proxy], [resolver] and [log]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// DHCP port [default: 67]; 0 picks a free one
    #[arg(long, value_name = "N")]
    pub dhcp_port: Option<u16>,
    /// PXE boot-server port [default: 4011]; 0 picks a free one
    #[arg(long, value_name = "N")]
    pub pxe_port: Option<u16>,
    /// Validate the configuration and exit
    #[arg(long)]
    pub check_config: bool,
}

impl Args {
    /// Loads the configuration file (or the embedded defaults) and applies the overrides.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(port) = self.dhcp_port {
            config.proxy.dhcp_port = port;
        }
        if let Some(port) = self.pxe_port {
            config.proxy.pxe_port = port;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Socket receive buffer: a few thousand queued requests, so a burst of booting machines
/// is not dropped while the process waits for the CPU.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// The proxy with its sockets bound, not yet serving.
#[derive(Debug)]
pub struct BoundProxy {
    sockets: Vec<BoundSocket>,
    settings: ProxySettings,
    config: Arc<Config>,
}

#[derive(Debug)]
struct BoundSocket {
    socket: PktInfoSocket,
    port: ListenPort,
    interface: Option<String>,
}

/// Binds the DHCP and PXE sockets `[proxy]` asks for (one per interface when
/// `interfaces` is set). Errors name the address and the likely cause.
pub fn bind(config: Arc<Config>) -> anyhow::Result<BoundProxy> {
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
            let socket =
                PktInfoSocket::bind(addr, &options).map_err(|e| bind_error(e, addr, interface.as_deref()))?;
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
    let settings = ProxySettings {
        boot_files: proxy.effective_boot_files(),
        tftp_server: proxy.tftp_server,
        ipxe_script_url: proxy.ipxe_script_url.clone(),
        ipxe_script_url_without_https: Some(proxy.ipxe_script_url_without_https.clone())
            .filter(|u| !u.is_empty()),
        http_boot_url: proxy.http_boot_url.clone(),
        client_port: proxy.client_port,
        // Relay agents listen on the DHCP server port; using ours keeps labs on high ports working.
        relay_port: dhcp_port,
        chainload_ipxe_roms: proxy.chainload_ipxe_roms,
    };
    Ok(BoundProxy {
        sockets,
        settings,
        config,
    })
}

fn bind_error(error: std::io::Error, addr: SocketAddrV4, interface: Option<&str>) -> anyhow::Error {
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
    pub fn local_addrs(&self) -> Vec<(ListenPort, SocketAddrV4)> {
        self.sockets
            .iter()
            .filter_map(|s| Some((s.port, s.socket.local_addr().ok()?)))
            .collect()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        resolver: Arc<dyn BootResolver>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        for bound in &self.sockets {
            let what = match bound.port {
                ListenPort::Dhcp => "dhcp",
                ListenPort::PxeBootServer => "pxe boot server",
            };
            let on = bound
                .interface
                .as_deref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default();
            tracing::info!("listening on {} ({what}{on})", bound.socket.local_addr()?);
        }
        // Boot records and metrics of this process ([records]); flushed after the last answer.
        let records = netboot_records::start(&self.config);
        let result = serve::serve(self, resolver, shutdown).await;
        records.finish().await;
        result
    }
}

/// Binds and serves until `shutdown` completes.
pub async fn run(
    config: Arc<Config>,
    resolver: Arc<dyn BootResolver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(config)?.serve(resolver, shutdown).await
}
