//! `cargo xtask bench dhcp`: pxe-proxy against dnsmasq in proxy mode, same run, same load.
//!
//! Both servers run in turn in a server network namespace; the load generator runs in a
//! client namespace on the other end of a veth link and sends firmware-shaped packets (the
//! option layout OVMF uses): broadcast DISCOVERs to port 67 and unicast boot-server
//! REQUESTs to 4011. For each server and port it measures a closed loop (N requests in
//! flight) for replies/s and server CPU per reply (utime+stime from /proc), and an open loop
//! at fixed rates for latency percentiles.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use netboot_core::ClientArch;
use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};

use super::{enter_netns, percentile, process_cpu, CpuTime, NamespacePair};
use netboot_testkit::netns::SERVER_DEV;

/// `cargo xtask bench dhcp [OPTIONS]`
#[derive(Debug, Parser)]
#[command(name = "dhcp")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Requests in flight in the closed loop.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// Runs of every measurement per server; the median is reported. Servers take turns
    /// run by run, so background load on the machine hits both alike.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Open-loop request rates (requests/s), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u32>,
}

const SUBNET: [u8; 3] = [10, 198, 0];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 198, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 198, 0, 2);
/// A request unanswered for this long counts as lost and is replaced.
const LOST_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    PxeProxy,
    Dnsmasq,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::PxeProxy => "pxe-proxy",
            Self::Dnsmasq => "dnsmasq",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discover67,
    Request4011,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Discover67 => "67 DISCOVER",
            Self::Request4011 => "4011 REQUEST",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Measurement {
    replies: usize,
    lost: usize,
    elapsed: Duration,
    server_cpu: CpuTime,
    latencies: Vec<Duration>,
    /// The median p99 over repeated runs, when this is a summary.
    p99_override: Option<f64>,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64()
    }
    fn cpu_per_reply_us(&self) -> f64 {
        if self.replies == 0 {
            return f64::NAN;
        }
        self.server_cpu.total().as_secs_f64() * 1e6 / self.replies as f64
    }
    fn system_share(&self) -> f64 {
        self.server_cpu.system.as_secs_f64() / self.server_cpu.total().as_secs_f64().max(f64::MIN_POSITIVE)
    }
    fn p(&self, p: f64) -> f64 {
        if let (99.0, Some(p99)) = (p, self.p99_override) {
            return p99;
        }
        percentile(&self.latencies, p).as_secs_f64() * 1e3
    }
}

pub(crate) fn run(raw_args: &[String]) -> Result<()> {
    let args = Args::try_parse_from(std::iter::once("dhcp".to_string()).chain(raw_args.iter().cloned()))?;
    if super::reexec_as_release("dhcp", raw_args)? {
        return Ok(());
    }
    crate::deps::install_packages(&[
        ("dnsmasq-base", "peer proxyDHCP server"),
        ("iproute2", "namespaces"),
    ])?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    crate::ci::run_step(
        "cargo build --release -p pxe-proxy",
        Command::new("cargo")
            .current_dir(&root)
            .args(["build", "--release", "-p", "pxe-proxy"]),
    )?;
    let work = std::env::temp_dir().join(format!("netboot-bench-dhcp-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let namespaces = super::namespaces("nbb", SUBNET)?;

    warn_if_busy();
    let mut loads = Vec::new();
    for phase in [Phase::Discover67, Phase::Request4011] {
        loads.push((phase, None));
        loads.extend(args.rates.iter().map(|&rate| (phase, Some(rate))));
    }
    let mut runs: Vec<(Server, String, Measurement)> = Vec::new();
    for &(phase, rate) in &loads {
        let label = match rate {
            None => format!("{} closed {} in flight", phase.name(), args.inflight),
            Some(rate) => format!("{} open {rate}/s", phase.name()),
        };
        for _ in 0..args.repeats.max(1) {
            for server in [Server::PxeProxy, Server::Dnsmasq] {
                let mut child = start_server(server, &root, &work, &namespaces)?;
                let outcome = measure(server, child.id(), &namespaces, phase, rate, &args);
                let _ = child.kill();
                let _ = child.wait();
                runs.push((server, label.clone(), outcome?));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    report(&args, &median_per_load(runs));
    Ok(())
}

/// Background load skews every figure; say so when the machine is busy.
fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one_minute: f64 = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if one_minute > cores * 0.5 {
        eprintln!("warning: load average {one_minute:.1} on {cores} cores; figures will be noisy");
    }
}

/// Per server and load, the median of each figure over the repeated runs.
fn median_per_load(runs: Vec<(Server, String, Measurement)>) -> Vec<(Server, String, Measurement)> {
    let mut keys: Vec<(Server, String)> = Vec::new();
    for (server, label, _) in &runs {
        if !keys.iter().any(|(s, l)| s == server && l == label) {
            keys.push((*server, label.clone()));
        }
    }
    keys.into_iter()
        .map(|(server, label)| {
            let mut group: Vec<&Measurement> = runs
                .iter()
                .filter(|(s, l, _)| *s == server && *l == label)
                .map(|(_, _, m)| m)
                .collect();
            // The run with the median rate carries the reply count and latencies; CPU per
            // reply is the median of its own.
            group.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            let mut median = group[group.len() / 2].clone();
            let mut cpu: Vec<&Measurement> = group.clone();
            cpu.sort_by(|a, b| a.cpu_per_reply_us().total_cmp(&b.cpu_per_reply_us()));
            let by_cpu = cpu[cpu.len() / 2];
            median.server_cpu = CpuTime {
                user: by_cpu
                    .server_cpu
                    .user
                    .mul_f64(median.replies as f64 / by_cpu.replies.max(1) as f64),
                system: by_cpu
                    .server_cpu
                    .system
                    .mul_f64(median.replies as f64 / by_cpu.replies.max(1) as f64),
            };
            let mut p99: Vec<&Measurement> = group.clone();
            p99.sort_by(|a, b| a.p(99.0).total_cmp(&b.p(99.0)));
            median.p99_override = Some(p99[p99.len() / 2].p(99.0));
            median.lost = group.iter().map(|m| m.lost).sum();
            (server, label, median)
        })
        .collect()
}

fn start_server(server: Server, root: &Path, work: &Path, namespaces: &NamespacePair) -> Result<Child> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &namespaces.server]);
    match server {
        Server::PxeProxy => {
            let config = work.join("netboot.toml");
            std::fs::write(
                &config,
                // Every simulated client is answered, as dnsmasq answers them. They all send
                // from one address, which the per-destination reply limit would throttle.
                format!(
                    "[log]\nlevel = \"warn\"\n[proxy]\ninterfaces = [\"{SERVER_DEV}\"]\n\
                     max_replies_per_destination = 100000\n\
                     [resolver.static]\nunmatched = \"exit\"\n"
                ),
            )?;
            command
                .arg(root.join("target/release/pxe-proxy"))
                .arg("--config")
                .arg(config);
        }
        Server::Dnsmasq => {
            command.args([
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                &format!("--interface={SERVER_DEV}"),
                "--no-ping",
                // Like pxe-proxy at log level warn: no log line per reply.
                "--quiet-dhcp",
                "--log-facility=/dev/null",
                &format!("--dhcp-range={SERVER_IP},proxy"),
                "--pxe-service=x86-64_EFI,Network Boot,snponly.efi",
                "--pxe-service=x86PC,Network Boot,undionly",
            ]);
            command.arg(format!("--dhcp-leasefile={}", work.join("leases").display()));
            command.arg(format!("--pid-file={}", work.join("dnsmasq.pid").display()));
        }
    }
    command.stdout(Stdio::null()).stderr(Stdio::inherit());
    command
        .spawn()
        .with_context(|| format!("starting {}", server.name()))
}

/// Runs every measurement against one running server from inside the client namespace.
/// One measurement against a running server, from inside the client namespace.
fn measure(
    server: Server,
    pid: u32,
    namespaces: &NamespacePair,
    phase: Phase,
    rate: Option<u32>,
    args: &Args,
) -> Result<Measurement> {
    let client_ns = namespaces.client.clone();
    let seconds = Duration::from_secs(args.seconds);
    let inflight = args.inflight;
    std::thread::spawn(move || -> Result<Measurement> {
        enter_netns(&client_ns)?;
        let load = Load::new(phase)?;
        load.wait_until_answered(server)?;
        let before = process_cpu(pid)?;
        let mut m = match rate {
            None => load.closed_loop(inflight, seconds)?,
            Some(rate) => load.open_loop(rate, seconds)?,
        };
        m.server_cpu = process_cpu(pid)? - before;
        Ok(m)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("load generator panicked"))?
}

/// A socket and packet template for one kind of request.
struct Load {
    socket: UdpSocket,
    dest: SocketAddrV4,
    template: Vec<u8>,
}

impl Load {
    fn new(phase: Phase) -> Result<Self> {
        let (bind, dest, message) = match phase {
            Phase::Discover67 => (
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
                SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
                firmware_packet(MessageType::Discover, Ipv4Addr::UNSPECIFIED),
            ),
            // OVMF sends the boot-server request from port 4011.
            Phase::Request4011 => (
                SocketAddrV4::new(CLIENT_IP, 4011),
                SocketAddrV4::new(SERVER_IP, 4011),
                firmware_packet(MessageType::Request, CLIENT_IP),
            ),
        };
        let socket = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
        socket.set_broadcast(true)?;
        // Replies must not be lost on the generator's side while it waits for the CPU.
        let buffer: usize = 8 << 20;
        if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &buffer).is_err() {
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBuf, &buffer)?;
        }
        Ok(Self {
            socket,
            dest,
            template: message.to_bytes(),
        })
    }

    fn packet(&self, xid: u32) -> Vec<u8> {
        let mut packet = self.template.clone();
        packet[4..8].copy_from_slice(&xid.to_be_bytes());
        // A different MAC per request, like many machines booting at once.
        packet[31..34].copy_from_slice(&xid.to_be_bytes()[1..]);
        packet
    }

    /// Sends until the server answers (it may still be starting).
    fn wait_until_answered(&self, server: Server) -> Result<()> {
        self.socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut buf = [0u8; 1500];
        for attempt in 0..100u32 {
            self.socket
                .send_to(&self.packet(0x7000_0000 + attempt), self.dest)?;
            while let Ok(len) = self.socket.recv(&mut buf) {
                if let Ok(reply) = DhcpMessage::parse(&buf[..len]) {
                    if reply.op == 2 && reply.xid == 0x7000_0000 + attempt {
                        return Ok(());
                    }
                }
            }
        }
        bail!("{} never answered {:?}", server.name(), self.dest)
    }

    fn closed_loop(&self, inflight: usize, duration: Duration) -> Result<Measurement> {
        self.socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut outstanding: HashMap<u32, Instant> = HashMap::with_capacity(inflight * 2);
        let mut next_xid = 1u32;
        let mut m = Measurement::default();
        let start = Instant::now();
        for _ in 0..inflight {
            self.socket.send_to(&self.packet(next_xid), self.dest)?;
            outstanding.insert(next_xid, Instant::now());
            next_xid += 1;
        }
        let mut buf = [0u8; 1500];
        let mut last_expiry = Instant::now();
        while start.elapsed() < duration {
            if let Ok(len) = self.socket.recv(&mut buf) {
                let Some(xid) = reply_xid(&buf[..len]) else {
                    continue;
                };
                let Some(sent) = outstanding.remove(&xid) else {
                    continue;
                };
                m.latencies.push(sent.elapsed());
                self.socket.send_to(&self.packet(next_xid), self.dest)?;
                outstanding.insert(next_xid, Instant::now());
                next_xid += 1;
            }
            if last_expiry.elapsed() > Duration::from_millis(50) {
                last_expiry = Instant::now();
                let expired: Vec<u32> = outstanding
                    .iter()
                    .filter(|(_, sent)| sent.elapsed() > LOST_AFTER)
                    .map(|(x, _)| *x)
                    .collect();
                for xid in expired {
                    outstanding.remove(&xid);
                    m.lost += 1;
                    self.socket.send_to(&self.packet(next_xid), self.dest)?;
                    outstanding.insert(next_xid, Instant::now());
                    next_xid += 1;
                }
            }
        }
        m.elapsed = start.elapsed();
        self.drain();
        m.replies = m.latencies.len();
        m.latencies.sort();
        Ok(m)
    }

    fn open_loop(&self, rate: u32, duration: Duration) -> Result<Measurement> {
        let total = (u64::from(rate) * duration.as_secs()) as usize;
        let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
        let base_xid = 0x1000_0000u32;
        let start = Instant::now();
        let sender = {
            let socket = self.socket.try_clone()?;
            let sent_at = sent_at.clone();
            let packets: Vec<Vec<u8>> = (0..total).map(|i| self.packet(base_xid + i as u32)).collect();
            let dest = self.dest;
            std::thread::spawn(move || -> std::io::Result<()> {
                let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
                for (i, packet) in packets.iter().enumerate() {
                    let due = interval * i as u32;
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    sent_at[i].store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    socket.send_to(packet, dest)?;
                }
                Ok(())
            })
        };
        self.socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut m = Measurement::default();
        let mut seen = vec![false; total];
        let mut buf = [0u8; 1500];
        let deadline = duration + LOST_AFTER;
        while start.elapsed() < deadline && m.latencies.len() < total {
            let Ok(len) = self.socket.recv(&mut buf) else {
                continue;
            };
            let now = start.elapsed().as_nanos() as u64;
            let Some(index) = reply_xid(&buf[..len])
                .and_then(|x| x.checked_sub(base_xid))
                .map(|i| i as usize)
            else {
                continue;
            };
            if index < total && !seen[index] {
                seen[index] = true;
                let sent = sent_at[index].load(Ordering::Relaxed);
                m.latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
            }
        }
        sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
        m.elapsed = duration;
        m.replies = m.latencies.len();
        m.lost = total - m.replies;
        m.latencies.sort();
        Ok(m)
    }

    fn drain(&self) {
        let mut buf = [0u8; 1500];
        let _ = self.socket.set_read_timeout(Some(Duration::from_millis(100)));
        while self.socket.recv(&mut buf).is_ok() {}
    }
}

/// The xid of a BOOTREPLY, checked just enough to ignore stray traffic.
fn reply_xid(bytes: &[u8]) -> Option<u32> {
    (bytes.len() >= 240 && bytes[0] == 2).then(|| u32::from_be_bytes(bytes[4..8].try_into().unwrap()))
}

/// A request with the option layout of OVMF's (EDK2) PXE client.
fn firmware_packet(kind: MessageType, ciaddr: Ipv4Addr) -> DhcpMessage {
    let mut message = DhcpMessage::new_request(0, [0x52, 0x54, 0x00, 0x00, 0x00, 0x00]);
    message.ciaddr = ciaddr;
    message.flags = if ciaddr.is_unspecified() { 0x8000 } else { 0 };
    let mut uuid = vec![0u8; 16];
    uuid[..6].copy_from_slice(&[0x00, 0x6f, 0x7e, 0x8d, 0xaa, 0x77]);
    message.options = vec![
        DhcpOption::MessageType(kind),
        DhcpOption::MaxMessageSize(1472),
        DhcpOption::ParameterRequestList(vec![
            1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67,
            97, 128, 129, 130, 131, 132, 133, 134, 135,
        ]),
        DhcpOption::ClientMachineId { kind: 0, id: uuid },
        DhcpOption::ClientNdi {
            kind: 1,
            major: 3,
            minor: 0,
        },
        DhcpOption::ClientArch(vec![ClientArch::EfiX64]),
        DhcpOption::VendorClass(b"PXEClient:Arch:00007:UNDI:003000".to_vec()),
    ];
    message
}

fn report(args: &Args, results: &[(Server, String, Measurement)]) {
    println!();
    println!(
        "dhcp benchmark: median of {} runs of {} s each; server and load generator in separate network namespaces",
        args.repeats.max(1),
        args.seconds
    );
    println!(
        "{:<10} {:<32} {:>10} {:>6} {:>13} {:>9} {:>8} {:>8} {:>8}",
        "server", "load", "replies/s", "lost", "CPU us/reply", "kernel %", "p50 ms", "p99 ms", "max ms"
    );
    for (server, label, m) in results {
        println!(
            "{:<10} {:<32} {:>10.0} {:>6} {:>13.2} {:>9.0} {:>8.3} {:>8.3} {:>8.3}",
            server.name(),
            label,
            m.rate(),
            m.lost,
            m.cpu_per_reply_us(),
            m.system_share() * 100.0,
            m.p(50.0),
            m.p(99.0),
            m.p(100.0)
        );
    }
    println!();
    println!("ratios, pxe-proxy / dnsmasq (rate: higher is better; CPU and p99: lower is better)");
    let find = |server: Server, label: &str| {
        results
            .iter()
            .find(|(s, l, _)| *s == server && l == label)
            .map(|(_, _, m)| m)
    };
    for (_, label, ours) in results.iter().filter(|(s, _, _)| *s == Server::PxeProxy) {
        let Some(theirs) = find(Server::Dnsmasq, label) else {
            continue;
        };
        if label.contains("closed") {
            println!(
                "  {label:<32} rate x{:.2}   CPU/reply x{:.3}",
                ours.rate() / theirs.rate(),
                ours.cpu_per_reply_us() / theirs.cpu_per_reply_us()
            );
        } else {
            println!(
                "  {label:<32} p99 x{:.2}   CPU/reply x{:.3}",
                ours.p(99.0) / theirs.p(99.0),
                ours.cpu_per_reply_us() / theirs.cpu_per_reply_us()
            );
        }
    }
}
