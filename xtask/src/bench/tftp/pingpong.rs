//! The bare UDP limit a windowed TFTP transfer is held against: a sender in the server
//! namespace sends `window` datagrams of 4 + 1468 bytes, then waits for a 4-byte
//! acknowledgement from a receiver in the client namespace, and so on for the whole file. No
//! file reads, no option negotiation, no bookkeeping: whatever a server reaches is measured
//! as a share of this.
//!
//! Two senders are measured: one `send` per datagram (what a plain server does) and UDP GSO
//! (one `sendmsg` per up to 44 datagrams, what a server can do at best; where the kernel
//! refuses GSO it falls back to the plain sends). The receiver takes one datagram per `recv`,
//! as the atftp client does. The goal is stated against the first (the bare ping-pong); the
//! second is shown next to it as the stricter reference.
//!
//! The sender's own CPU time is measured too: at window 1 it is what the kernel alone charges
//! a lock-step transfer per GiB (one blocking `recv` and one `send` per block, nothing else),
//! against which lock-step CPU figures are read.
//!
//! Loss is handled TFTP-style, so a dropped datagram costs a timeout rather than a hang: the
//! receiver acknowledges the last block it has in order, the sender resends from there.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{interrupted, CLIENT_IP, SERVER_IP};
use crate::bench::enter_netns;

/// TFTP payload per datagram (the largest that fits a 1500-byte Ethernet frame).
pub(super) const PAYLOAD: usize = 1468;
const HEADER: usize = 4;
/// How long either side waits before it resends.
const RESEND_AFTER: Duration = Duration::from_millis(50);

/// One ping-pong run.
#[derive(Debug, Clone, Copy)]
pub(super) struct PingPong {
    /// Payload MB/s.
    pub(super) mbps: f64,
    /// CPU seconds (user and system) the sender thread spent per GiB of payload.
    pub(super) cpu_per_gib: f64,
}

/// CPU time of the calling thread.
fn thread_cpu() -> Result<Duration> {
    let spent = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::from(spent))
}

/// Moves `bytes` in windows of `window` datagrams, sent with GSO when `gso`.
pub(super) fn measure(
    server_ns: &str,
    client_ns: &str,
    bytes: u64,
    window: u32,
    gso: bool,
) -> Result<PingPong> {
    let blocks = bytes.div_ceil(PAYLOAD as u64) as u32;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::scope(|scope| {
        let receiver = scope.spawn(move || -> Result<()> {
            enter_netns(client_ns)?;
            let socket = UdpSocket::bind((CLIENT_IP, 0)).context("binding the receiver")?;
            socket.set_read_timeout(Some(RESEND_AFTER))?;
            ready_tx.send(socket.local_addr()?)?;
            receive(&socket, blocks, window)
        });
        let sender = scope.spawn(move || -> Result<PingPong> {
            enter_netns(server_ns)?;
            let peer = ready_rx
                .recv_timeout(Duration::from_secs(5))
                .context("receiver did not start")?;
            let socket = UdpSocket::bind((SERVER_IP, 0)).context("binding the sender")?;
            socket.connect(peer)?;
            socket.set_read_timeout(Some(RESEND_AFTER))?;
            let started = Instant::now();
            let cpu_before = thread_cpu()?;
            send(&socket, blocks, window, gso)?;
            let cpu = (thread_cpu()? - cpu_before).as_secs_f64();
            Ok(PingPong {
                mbps: bytes as f64 / started.elapsed().as_secs_f64() / 1e6,
                cpu_per_gib: cpu / (bytes as f64 / f64::from(1u32 << 30)),
            })
        });
        let rate = sender
            .join()
            .map_err(|_| anyhow::anyhow!("ping-pong sender panicked"))?;
        receiver
            .join()
            .map_err(|_| anyhow::anyhow!("ping-pong receiver panicked"))??;
        rate
    })
}

/// Datagrams per GSO send: 44 x 1472 bytes stays under the 65 507-byte UDP limit.
const GSO_SEGMENTS: u32 = 44;

fn send(socket: &UdpSocket, blocks: u32, window: u32, mut gso: bool) -> Result<()> {
    let segment = HEADER + PAYLOAD;
    let mut batch = vec![0u8; segment * GSO_SEGMENTS as usize];
    let mut acked = 0u32;
    let mut ack = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(600);
    while acked < blocks {
        if interrupted() || Instant::now() > deadline {
            bail!("ping-pong interrupted or past its deadline");
        }
        let last = (acked + window).min(blocks);
        let mut first = acked + 1;
        while first <= last {
            let count = (last - first + 1).min(GSO_SEGMENTS);
            for (n, datagram) in batch.chunks_mut(segment).take(count as usize).enumerate() {
                // The block number stands in the first four bytes (where TFTP has opcode and
                // block) so a long run does not wrap; this is a measurement, not TFTP.
                datagram[..4].copy_from_slice(&(first + n as u32).to_be_bytes());
            }
            send_batch(socket, &batch[..segment * count as usize], segment, &mut gso)?;
            first += count;
        }
        // Wait for the acknowledgement of this window; on silence, resend from `acked`.
        loop {
            match socket.recv(&mut ack) {
                Ok(4) => {
                    let block = u32::from_be_bytes(ack[..4].try_into()?);
                    if block > acked {
                        acked = block;
                    }
                    if acked >= last {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    // The receiver stops once it has every block; a lost final ACK is resent by it.
    Ok(())
}

/// Sends datagrams of `segment` bytes packed in `batch`: one GSO `sendmsg`, or one `send` each
/// once the kernel has refused GSO.
fn send_batch(socket: &UdpSocket, batch: &[u8], segment: usize, gso: &mut bool) -> Result<()> {
    use std::os::fd::AsRawFd;
    if *gso && batch.len() > segment {
        let size = u16::try_from(segment)?;
        let iov = [std::io::IoSlice::new(batch)];
        let control = [nix::sys::socket::ControlMessage::UdpGsoSegments(&size)];
        let sent = nix::sys::socket::sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &control,
            nix::sys::socket::MsgFlags::empty(),
            None,
        );
        match sent {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EIO | nix::errno::Errno::EINVAL | nix::errno::Errno::ENOPROTOOPT) => {
                eprintln!("  ping-pong: no UDP GSO here; sending datagrams one by one");
                *gso = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
    for datagram in batch.chunks(segment) {
        socket.send(datagram)?;
    }
    Ok(())
}

fn receive(socket: &UdpSocket, blocks: u32, window: u32) -> Result<()> {
    let mut datagram = vec![0u8; HEADER + PAYLOAD + 16];
    let mut have = 0u32;
    let mut peer = None;
    let mut since_ack = 0u32;
    let deadline = Instant::now() + Duration::from_secs(600);
    while have < blocks {
        if interrupted() || Instant::now() > deadline {
            bail!("ping-pong interrupted or past its deadline");
        }
        match socket.recv_from(&mut datagram) {
            Ok((len, from)) if len >= HEADER => {
                peer = Some(from);
                let block = u32::from_be_bytes(datagram[..4].try_into()?);
                if block == have + 1 {
                    have = block;
                    since_ack += 1;
                    if since_ack == window || have == blocks {
                        socket.send_to(&have.to_be_bytes(), from)?;
                        since_ack = 0;
                    }
                }
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                if let Some(peer) = peer {
                    socket.send_to(&have.to_be_bytes(), peer)?;
                    since_ack = 0;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Answer a resent final window whose ACK was lost, until the sender goes quiet.
    let quiet_until = Instant::now() + RESEND_AFTER * 4;
    while Instant::now() < quiet_until {
        if let Ok((_, from)) = socket.recv_from(&mut datagram) {
            socket.send_to(&have.to_be_bytes(), from)?;
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
