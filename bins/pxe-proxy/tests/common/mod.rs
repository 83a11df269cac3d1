//! Starting the real `pxe-proxy` binary and building client packets.
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use netboot_core::ClientArch;
use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};
use netboot_testkit::netns;
use netboot_testkit::process::{Listening, Service};

/// Upper bound on waiting for a reply or a log line, so a broken server fails the test
/// instead of hanging it. Not a performance expectation.
pub const LIVENESS: Duration = Duration::from_secs(20);

/// A running `pxe-proxy` process, killed on drop.
pub struct Proxy {
    service: Service,
    pub dhcp_port: u16,
    pub pxe_port: u16,
    /// The DHCPv6 port, unless DHCPv6 is off.
    pub dhcpv6_port: Option<u16>,
    /// The IPv6 boot-server port, unless DHCPv6 is off.
    pub pxe6_port: Option<u16>,
    /// How the DHCP listener describes itself (`(dhcp on eth0, packet socket ...)`).
    pub dhcp_label: String,
    _dir: tempfile::TempDir,
}

/// Which socket a `listening on` line announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    Dhcp,
    Pxe,
    Dhcp6,
    Pxe6,
}

fn socket_of(listening: &Listening) -> Option<Socket> {
    let label = listening.label.as_str();
    if label.starts_with("(dhcpv6") {
        Some(Socket::Dhcp6)
    } else if label.starts_with("(dhcp") {
        Some(Socket::Dhcp)
    } else if label.starts_with("(pxe boot server, IPv6") {
        Some(Socket::Pxe6)
    } else if label.starts_with("(pxe boot server") {
        Some(Socket::Pxe)
    } else {
        None
    }
}

impl Proxy {
    /// Starts the binary with `config` (TOML) and waits for both "listening on" lines.
    pub fn start(config: &str) -> Self {
        Self::start_with(config, None)
    }

    /// Same, run inside network namespace `netns` through `ip netns exec`.
    pub fn start_with(config: &str, netns: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netboot.toml");
        std::fs::write(&path, config).unwrap();
        let binary = env!("CARGO_BIN_EXE_pxe-proxy");
        let mut command = match netns {
            Some(ns) => netns::command(ns, binary),
            None => Command::new(binary),
        };
        command.arg("--config").arg(&path).env("RUST_LOG", "debug");
        let service = Service::spawn_echoing("pxe-proxy", &mut command);
        // The IPv6 sockets are announced first, so the IPv4 boot-server line comes last.
        let listeners = service
            .wait_for_listening(LIVENESS, |found| {
                let has = |kind| found.iter().any(|l| socket_of(l) == Some(kind));
                has(Socket::Dhcp) && has(Socket::Pxe)
            })
            .unwrap_or_else(|log| panic!("pxe-proxy did not log its listening addresses:\n{log}"));
        let port_of = |kind| {
            listeners
                .iter()
                .find(|l| socket_of(l) == Some(kind))
                .map(|l| l.addr.port())
        };
        Self {
            dhcp_port: port_of(Socket::Dhcp).unwrap(),
            dhcp_label: listeners
                .iter()
                .find(|l| socket_of(l) == Some(Socket::Dhcp))
                .map(|l| l.label.clone())
                .unwrap(),
            pxe_port: port_of(Socket::Pxe).unwrap(),
            dhcpv6_port: port_of(Socket::Dhcp6),
            pxe6_port: port_of(Socket::Pxe6),
            service,
            _dir: dir,
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.service.is_running()
    }

    /// The process, for its id and its log lines.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The configuration file it was started with.
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("netboot.toml")
    }
}

/// Waits for a log line of `service` containing `needle`; panics with what was seen when
/// none comes within [`LIVENESS`].
pub fn wait_for_line(service: &Service, needle: &str) -> String {
    let deadline = std::time::Instant::now() + LIVENESS;
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match service.log().recv_timeout(remaining) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no log line with {needle:?}; seen:\n{}", seen.join("\n")),
        }
    }
}

/// A UDP socket with the liveness timeout set.
pub fn client_socket(addr: &str) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap();
    socket.set_read_timeout(Some(LIVENESS)).unwrap();
    socket
}

/// Receives one datagram and parses it as DHCP.
pub fn receive(socket: &UdpSocket) -> (DhcpMessage, SocketAddr, Vec<u8>) {
    let mut buf = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buf).expect("no reply from pxe-proxy");
    let message = DhcpMessage::parse(&buf[..len]).expect("reply parses");
    (message, from, buf[..len].to_vec())
}

/// The wire form of a UUID used by the test clients (option 97 type 0 + 16 bytes).
pub const UUID_WIRE: [u8; 16] = [
    0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// A firmware-shaped client message, as EDK2 or a PXE ROM sends it.
pub fn firmware_message(
    kind: MessageType,
    xid: u32,
    mac: [u8; 6],
    arch: ClientArch,
    vendor_prefix: &str,
) -> DhcpMessage {
    let mut message = DhcpMessage::new_request(xid, mac);
    message.flags = 0x8000;
    let code = u16::from(arch);
    let undi = if arch == ClientArch::X86Bios {
        "002001"
    } else {
        "003016"
    };
    message.options = vec![
        DhcpOption::MessageType(kind),
        DhcpOption::MaxMessageSize(1472),
        DhcpOption::ParameterRequestList(vec![1, 3, 6, 43, 60, 66, 67, 97]),
        DhcpOption::ClientMachineId {
            kind: 0,
            id: UUID_WIRE.to_vec(),
        },
        DhcpOption::ClientNdi {
            kind: 1,
            major: 3,
            minor: 16,
        },
        DhcpOption::ClientArch(vec![arch]),
        DhcpOption::VendorClass(format!("{vendor_prefix}:Arch:{code:05}:UNDI:{undi}").into_bytes()),
    ];
    message
}

/// iPXE's DISCOVER: raw user class `iPXE` and option 175 with the given feature codes.
pub fn ipxe_discover(xid: u32, mac: [u8; 6], arch: ClientArch, features: &[u8]) -> DhcpMessage {
    let mut message = firmware_message(MessageType::Discover, xid, mac, arch, "PXEClient");
    message.options.push(DhcpOption::UserClass(b"iPXE".to_vec()));
    let mut encapsulated = Vec::new();
    for feature in features {
        encapsulated.extend_from_slice(&[*feature, 1, 1]);
    }
    message.options.push(DhcpOption::IpxeEncapsulated(encapsulated));
    message
}

/// The value of the first option `code` in a reply, encoded.
pub fn option_bytes(message: &DhcpMessage, code: u8) -> Option<Vec<u8>> {
    message.options.iter().find(|o| o.code() == code).map(|o| {
        let mut value = Vec::new();
        o.encode_value(&mut value);
        value
    })
}

/// `file` up to the first NUL, as text.
pub fn file_field(message: &DhcpMessage) -> String {
    let end = message.file.iter().position(|&b| b == 0).unwrap_or(128);
    String::from_utf8_lossy(&message.file[..end]).into_owned()
}

/// Checks the fields every proxy reply must have.
pub fn assert_proxy_reply(reply: &DhcpMessage, request: &DhcpMessage, kind: MessageType, server: Ipv4Addr) {
    assert_eq!(reply.op, 2, "BOOTREPLY");
    assert_eq!(reply.xid, request.xid);
    assert_eq!(reply.chaddr, request.chaddr);
    assert_eq!(reply.htype, 1);
    assert_eq!(reply.hlen, 6);
    assert_eq!(reply.flags, request.flags);
    assert_eq!(reply.giaddr, request.giaddr);
    assert_eq!(
        reply.yiaddr,
        Ipv4Addr::UNSPECIFIED,
        "a proxy never offers an address"
    );
    assert_eq!(reply.message_type(), Some(kind));
    assert_eq!(reply.server_id(), Some(server));
    assert_eq!(
        reply.client_machine_id(),
        request.client_machine_id(),
        "option 97 echoed"
    );
    assert!(reply.to_bytes().len() >= 300, "padded to the BOOTP minimum");
}

/// A default route through the client namespace's only link, so a client without an address
/// can send its broadcasts, as firmware does.
pub fn route_broadcasts_through_the_link(client_namespace: &str) {
    netns::ip(&[
        "-n",
        client_namespace,
        "route",
        "add",
        "default",
        "dev",
        netns::CLIENT_DEV,
    ]);
}
