//! One read transfer: opens the file and drives the sans-IO machine over a [`Link`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netboot_records::{TftpNegotiated, TftpTransfer};
use netboot_service::Shutdown;
use netboot_tftp::request::ReadRequest;
use netboot_tftp::{negotiate, write_error, OpenError, Outcome, ReadTransfer, TftpLimits};

use crate::link::{Link, GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use crate::server::{forget_peer, Shared, SHUTTING_DOWN};

/// Metrics label of a request for an absent [optional probe](is_optional_probe).
const PROBE_ABSENT: &str = "probe_absent";

/// Whether `path` (normalised, without a leading slash) is a file iPXE asks for only to see
/// whether it exists: UEFI builds started by the firmware's PXE look for `autoexec.ipxe` (as
/// `autoexec.ipxe` and `/autoexec.ipxe`) before running their boot script. Its absence is
/// answered "not found" at once like any other, but is not a failed step of the boot.
pub(crate) fn is_optional_probe(path: &str) -> bool {
    path.eq_ignore_ascii_case("autoexec.ipxe")
}

/// Opens the file and runs one read transfer to its end, or until `shutdown` says to stop
/// now, when the client gets an ERROR.
pub(crate) async fn run_transfer(
    mut link: Link,
    peer: SocketAddr,
    read: ReadRequest<'_>,
    shared: &Shared,
    limits: &TftpLimits,
    shutdown: &Shutdown,
) {
    let started = Instant::now();
    let mut source = match shared.files.open_mode(&read.path, read.mode) {
        Ok(source) => source,
        Err(e) => {
            let path = read.path.to_string();
            let label = if matches!(e, OpenError::NotFound) && is_optional_probe(&path) {
                tracing::debug!(%peer, %path, "not present: a file iPXE only looks for");
                PROBE_ABSENT
            } else {
                tracing::info!(%peer, %path, "not served: {e}");
                "not_served"
            };
            record_transfer(
                shared,
                peer,
                TftpTransfer::ended(&path, None, 0, started.elapsed(), 0, Some(e.to_string())),
                label,
            );
            let (code, message) = e.to_tftp();
            let mut packet = [0u8; 128];
            let len = write_error(&mut packet, code, message);
            // Forget the client first: it may ask again from the same port as soon as it has
            // this error, and that request must not look like a repeat of this one.
            forget_peer(shared, peer);
            let _ = link.send(&packet[..len], peer).await;
            return;
        }
    };
    let size = netboot_tftp::BlockSource::len(&source);
    let agreed = negotiate(&read.request, Some(size), limits);
    let mut transfer = ReadTransfer::new(&agreed, size, limits);
    if link.needs_proof_of_receipt() {
        transfer = transfer.with_proof_of_receipt();
    }
    let metrics = &shared.telemetry.metrics.tftp;
    metrics.active.inc();
    tracing::debug!(%peer, path = %read.path, size, blksize = transfer.blksize(), window = transfer.window(), "transfer started");
    // The only buffers of the transfer, allocated once: blocks are read in place into `out`,
    // a window's worth at a time when windows are negotiated.
    let segment = netboot_tftp::wire::DATA_HEADER_LEN + transfer.blksize();
    // With `msftwindow` the client may widen the window later, so room is made for the largest.
    let widest_window = if transfer.variable_window() {
        u64::from(limits.window_cap(agreed.blksize))
    } else {
        transfer.window()
    };
    let batch_capacity = if widest_window > 1 {
        segment
            * (widest_window as usize)
                .min(GSO_MAX_SEGMENTS)
                .min(GSO_MAX_BYTES / segment)
                .max(1)
    } else {
        segment
    };
    let packet_room = transfer.max_packet_len();
    let mut out = vec![0u8; batch_capacity + packet_room];
    let mut gso = true;
    let mut incoming = vec![0u8; 1024];
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let stop_now = shutdown.stop_now();
    tokio::pin!(stop_now);
    let mut stopped = false;
    loop {
        let now = Instant::now();
        let mut used = 0;
        loop {
            let sent = transfer.poll_transmit(now, &mut source, &mut out[used..used + packet_room]);
            if let Some(len) = sent {
                used += len;
                // Full-size DATA packets accumulate; anything shorter ends a GSO batch.
                if len == segment && used + segment <= batch_capacity {
                    continue;
                }
            }
            if used > 0 {
                if let Err(e) = link.send_batch(&out[..used], segment, peer, &mut gso).await {
                    // ICMP unreachable from an earlier packet, or a full buffer: the
                    // retransmit timer recovers, or the retry limit ends the transfer.
                    tracing::debug!(%peer, "send: {e}");
                }
                used = 0;
            }
            if sent.is_none() {
                break;
            }
        }
        if transfer.outcome().is_some() {
            break;
        }
        let deadline = transfer.poll_timeout().unwrap_or(now + Duration::from_secs(60));
        timer.as_mut().reset(tokio::time::Instant::from_std(deadline));
        tokio::select! {
            received = link.recv_from_client(&mut incoming, peer) => match received {
                // The arrival instant, not now: a single-port datagram may have waited in the
                // transfer's inbox, and the proof of receipt compares arrival with sending.
                Ok(Some((len, received))) => transfer.handle_datagram(received, &incoming[..len]),
                Ok(None) => {}
                Err(_) => break,
            },
            () = &mut timer => transfer.handle_timeout(Instant::now()),
            () = &mut stop_now => {
                send_shutting_down(&mut link, peer).await;
                stopped = true;
                break;
            }
        }
    }
    forget_peer(shared, peer);
    let outcome = transfer.outcome().cloned().unwrap_or(Outcome::TimedOut);
    let elapsed = started.elapsed();
    let resent = u32::try_from(transfer.retransmitted_blocks()).unwrap_or(u32::MAX);
    metrics.active.dec();
    let (label, error) = if stopped {
        ("shutdown", Some("server shutting down".to_string()))
    } else {
        let error = match &outcome {
            Outcome::Complete => None,
            Outcome::OptionsDeclined { .. } => Some("client declined the options".to_string()),
            Outcome::ClientError { message, .. } => Some(format!("client error: {message}")),
            other => Some(format!("{other:?}")),
        };
        (outcome.metric_label(), error)
    };
    let negotiated = TftpNegotiated {
        blksize: u16::try_from(transfer.blksize()).unwrap_or(u16::MAX),
        windowsize: u16::try_from(transfer.window()).unwrap_or(u16::MAX),
        tsize: size,
    };
    let bytes = transfer.bytes_acked();
    let record = TftpTransfer::ended(
        &read.path.to_string(),
        Some(negotiated),
        bytes,
        elapsed,
        resent,
        error,
    );
    record_transfer(shared, peer, record, label);
    if stopped {
        tracing::warn!(%peer, path = %read.path, acked = bytes, "transfer ended by the server stopping");
        return;
    }
    match outcome {
        Outcome::Complete => tracing::info!(%peer, path = %read.path, size, ?elapsed, resent, "sent"),
        Outcome::OptionsDeclined { code } => {
            tracing::debug!(%peer, path = %read.path, ?code, "client declined the options")
        }
        Outcome::BlindAck => tracing::info!(
            %peer,
            path = %read.path,
            "transfer given up: its only acknowledgements came before what they acknowledge was sent (spoofed request?)"
        ),
        other => {
            tracing::warn!(%peer, path = %read.path, acked = transfer.bytes_acked(), ?other, "transfer ended early")
        }
    }
}

/// How long a transfer ended by a stop keeps its socket after the ERROR, for the
/// acknowledgements the client sent before it read the ERROR.
const LINGER_AFTER_ERROR: Duration = Duration::from_millis(250);

/// Tells the client its transfer ends because the server stops, then keeps receiving (and
/// discarding) until the client has been quiet for [`LINGER_AFTER_ERROR`]. Closing the socket
/// at once would answer an acknowledgement still on its way with ICMP port-unreachable, and
/// Linux reports that error to the client's next receive before the ERROR packet queued ahead
/// of it (atftp then aborts with "unknown error" instead of the server's message).
pub(crate) async fn send_shutting_down(link: &mut Link, peer: SocketAddr) {
    let mut packet = [0u8; 64];
    let (code, message) = SHUTTING_DOWN;
    let len = write_error(&mut packet, code, message);
    let _ = link.send(&packet[..len], peer).await;
    let mut discard = [0u8; 64];
    // Bounded: a client that keeps sending is given up after a few lingers.
    for _ in 0..4 {
        match tokio::time::timeout(LINGER_AFTER_ERROR, link.recv(&mut discard)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// Counts a finished transfer under `label` and records it on the client's boot timeline.
/// TFTP only knows the client's address; the records find the machine behind it.
pub(crate) fn record_transfer(
    shared: &Shared,
    peer: SocketAddr,
    transfer: TftpTransfer,
    label: &'static str,
) {
    let telemetry = &shared.telemetry;
    let metrics = &telemetry.metrics.tftp;
    metrics.transfers.inc(label);
    metrics.bytes_sent.add(transfer.bytes);
    metrics.retransmits.add(u64::from(transfer.retransmits));
    // Declined options are part of a normal boot (the firmware asks again without them), and
    // so is a missing file iPXE only looks for.
    // A blind ACK means the request was most likely spoofed: the address is not a client's.
    if !telemetry.recorder.is_enabled() || matches!(label, "options_declined" | "blind_ack" | PROBE_ABSENT) {
        return;
    }
    telemetry
        .recorder
        .record_for_address(peer.ip(), netboot_records::EventDetail::TftpTransfer(transfer));
}

#[cfg(test)]
mod tests {
    use super::is_optional_probe;

    #[test]
    fn only_ipxes_autoexec_probe_is_optional() {
        let normalised = |name: &str| {
            netboot_tftp::path::normalize(name.as_bytes())
                .unwrap()
                .to_string()
        };
        assert!(is_optional_probe(&normalised("autoexec.ipxe")));
        assert!(is_optional_probe(&normalised("/autoexec.ipxe")));
        assert!(!is_optional_probe(&normalised("snponly.efi")));
        assert!(!is_optional_probe(&normalised("boot/autoexec.ipxe")));
    }
}
