//! One write transfer (upload): creates the file below the upload directory and drives the
//! sans-IO receiving machine over a [`Link`].
//!
//! Files are written under a temporary name in their final directory and moved into place only
//! once the last block has arrived (before the client gets the final ACK), so an aborted,
//! refused or oversized upload leaves nothing behind and readers never see half a file.
//! Every file operation goes through the opened parent directory (`/proc/self/fd/N/name`), after
//! checking where that directory really is, so swapping a directory for a symlink cannot
//! redirect a write outside the upload directory.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netboot_tftp::path::SafePath;
use netboot_tftp::request::WriteRequest;
use netboot_tftp::{write_error, BlockSink, ErrorCode, TftpLimits, WriteOutcome, WriteTransfer};

use netboot_service::Shutdown;

use crate::link::Link;
use crate::server::{forget_peer, Shared};

/// Write buffer per upload: few system calls without holding much memory per transfer.
const WRITE_BUFFER: usize = 256 << 10;

/// Where uploads go and what is accepted (`[tftp]` `upload_dir`, `max_upload_bytes`,
/// `upload_overwrite`).
#[derive(Debug)]
pub(crate) struct UploadDir {
    /// Canonical path of the upload directory.
    dir: PathBuf,
    max_bytes: u64,
    overwrite: bool,
}

/// Why an upload is refused before any data: the TFTP error to send and a reason for the log.
#[derive(Debug)]
pub(crate) struct Refused {
    code: ErrorCode,
    message: &'static str,
    reason: String,
}

impl Refused {
    fn new(code: ErrorCode, message: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            message,
            reason: reason.into(),
        }
    }
}

impl UploadDir {
    /// Accepts uploads into `dir`, which must be an existing directory.
    pub(crate) fn new(dir: &Path, max_bytes: u64, overwrite: bool) -> io::Result<Self> {
        let dir = dir.canonicalize()?;
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Self {
            dir,
            max_bytes,
            overwrite,
        })
    }

    /// The canonical upload directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Opens a temporary file next to where `path` will go, after checking the directory is
    /// inside the upload directory and the name is free (or may be replaced).
    fn create(&self, path: &SafePath) -> Result<UploadFile, Refused> {
        let (name, parents) = path
            .components()
            .split_last()
            .expect("a SafePath has at least one component");
        let parent_path = parents.iter().fold(self.dir.clone(), |dir, c| dir.join(c));
        let parent = File::open(&parent_path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Refused::new(
                ErrorCode::FileNotFound,
                "Directory not found",
                format!("no directory {}", parent_path.display()),
            ),
            _ => Refused::new(
                ErrorCode::AccessViolation,
                "Access violation",
                format!("opening {}: {e}", parent_path.display()),
            ),
        })?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd_of(&parent))).map_err(|e| {
            Refused::new(
                ErrorCode::NotDefined,
                "Write error",
                format!("locating directory: {e}"),
            )
        })?;
        if !real.starts_with(&self.dir) || !parent.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Refused::new(
                ErrorCode::AccessViolation,
                "Access violation",
                format!(
                    "{} leads to {}, outside the upload directory",
                    parent_path.display(),
                    real.display()
                ),
            ));
        }
        let via_parent = PathBuf::from(format!("/proc/self/fd/{}", fd_of(&parent)));
        match std::fs::symlink_metadata(via_parent.join(name)) {
            Ok(existing) if !existing.is_file() => {
                return Err(Refused::new(
                    ErrorCode::AccessViolation,
                    "Access violation",
                    "the name is taken by a directory, symlink or special file",
                ))
            }
            Ok(_) if !self.overwrite => {
                return Err(Refused::new(
                    ErrorCode::FileExists,
                    "File already exists",
                    "the file exists and tftp.upload_overwrite is false",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Refused::new(
                    ErrorCode::AccessViolation,
                    "Access violation",
                    format!("checking the name: {e}"),
                ))
            }
        }
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let temp_name = format!(
            ".tftp-upload-{}-{}.part",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        // `create_new` is O_EXCL: it never follows a symlink or reuses an existing file.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(via_parent.join(&temp_name))
            .map_err(|e| {
                let (code, message) = match e.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        (ErrorCode::AccessViolation, "Access violation")
                    }
                    io::ErrorKind::StorageFull => (ErrorCode::DiskFull, "Disk full or allocation exceeded"),
                    _ => (ErrorCode::NotDefined, "Write error"),
                };
                Refused::new(code, message, format!("creating the temporary file: {e}"))
            })?;
        Ok(UploadFile {
            parent,
            via_parent,
            temp_name,
            final_name: name.clone(),
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            overwrite: self.overwrite,
            committed: false,
        })
    }
}

fn fd_of(file: &File) -> i32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd()
}

/// An upload in progress: a temporary file that becomes the real one in [`BlockSink::finish`],
/// and is removed if the upload never gets there.
struct UploadFile {
    /// The directory, kept open so every name below resolves through it.
    parent: File,
    /// `/proc/self/fd/N` of `parent`.
    via_parent: PathBuf,
    temp_name: String,
    final_name: String,
    file: Option<BufWriter<File>>,
    overwrite: bool,
    committed: bool,
}

impl BlockSink for UploadFile {
    fn store(&mut self, data: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.write_all(data),
            None => Err(io::Error::other("upload already finished")),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("upload already finished"))?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        // On disk before it has its name, so a crash never leaves a truncated file there.
        file.sync_all()?;
        drop(file);
        let temp = self.via_parent.join(&self.temp_name);
        let target = self.via_parent.join(&self.final_name);
        if self.overwrite {
            std::fs::rename(&temp, &target)?;
        } else {
            // link() fails if the name exists, so a file that appeared during the upload is
            // never replaced.
            match std::fs::hard_link(&temp, &target) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
                // Filesystems without hard links (FAT, some network mounts): check, then
                // rename, which leaves a short window for a file appearing in between.
                Err(_) if std::fs::symlink_metadata(&target).is_ok() => {
                    return Err(io::ErrorKind::AlreadyExists.into())
                }
                Err(_) => std::fs::rename(&temp, &target)?,
            }
        }
        self.committed = true;
        // Make the new name itself durable.
        let _ = self.parent.sync_all();
        Ok(())
    }
}

impl Drop for UploadFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            let _ = std::fs::remove_file(self.via_parent.join(&self.temp_name));
        }
    }
}

/// Runs one upload to its end: refuses it, or receives the file and moves it into place.
pub(crate) async fn run_upload(
    mut link: Link,
    peer: SocketAddr,
    write: WriteRequest<'_>,
    shared: &Shared,
    limits: &TftpLimits,
    shutdown: &Shutdown,
) {
    let Some(uploads) = shared.uploads.as_ref() else {
        // `admit` refuses writes when uploads are off; nothing to do if one slips through.
        forget_peer(shared, peer);
        return;
    };
    let started = Instant::now();
    let mut transfer = WriteTransfer::new(&write.request, write.mode, limits, uploads.max_bytes);
    let metrics = &shared.telemetry.metrics.tftp;
    // A `tsize` over the limit is refused before any file is created.
    let mut sink = if transfer.outcome().is_some() {
        None
    } else {
        match uploads.create(&write.path) {
            Ok(file) => Some(file),
            Err(refused) => {
                tracing::info!(%peer, path = %write.path, "upload refused: {}", refused.reason);
                metrics.transfers.inc("upload_refused");
                let mut packet = [0u8; 128];
                let len = write_error(&mut packet, refused.code, refused.message);
                // The client may ask again from the same port as soon as it has the error.
                forget_peer(shared, peer);
                let _ = link.send(&packet[..len], peer).await;
                return;
            }
        }
    };
    metrics.active.inc();
    tracing::debug!(%peer, path = %write.path, announced = ?transfer.announced_size(), blksize = transfer.blksize(), window = transfer.window(), "upload started");
    let mut out = vec![0u8; transfer.max_packet_len()];
    // One byte more than the largest valid DATA, so an oversized block is seen as such.
    let mut incoming = vec![0u8; transfer.max_datagram_len() + 1];
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let stop_now = shutdown.stop_now();
    tokio::pin!(stop_now);
    let mut reported = false;
    loop {
        let now = Instant::now();
        while let Some(len) = transfer.poll_transmit(now, &mut out) {
            if transfer.is_finished() {
                // A final ERROR: remove the partial file and forget the client first, as it
                // may look, or ask again from the same port, as soon as it has the error.
                sink = None;
                forget_peer(shared, peer);
            }
            if let Err(e) = link.send(&out[..len], peer).await {
                // The timer recovers from a lost reply, or the retry limit ends the transfer.
                tracing::debug!(%peer, "send: {e}");
            }
        }
        if !reported {
            if let Some(outcome) = transfer.outcome() {
                // Report as soon as the outcome is known; the transfer may still dally.
                reported = true;
                report(shared, peer, &write.path, outcome, &transfer, started.elapsed());
            }
        }
        if transfer.is_finished() {
            break;
        }
        let deadline = transfer.poll_timeout().unwrap_or(now + Duration::from_secs(60));
        timer.as_mut().reset(tokio::time::Instant::from_std(deadline));
        tokio::select! {
            received = link.recv_from_client(&mut incoming, peer) => match received {
                Ok(Some((len, received))) => match sink.as_mut() {
                    Some(file) => transfer.handle_datagram(received, &incoming[..len], file),
                    None => transfer.handle_datagram(received, &incoming[..len], &mut Vec::new()),
                },
                Ok(None) => {}
                Err(_) => break,
            },
            () = &mut timer => transfer.handle_timeout(Instant::now()),
            () = &mut stop_now, if !reported => {
                crate::read::send_shutting_down(&mut link, peer).await;
                reported = true;
                tracing::warn!(%peer, path = %write.path, bytes = transfer.bytes_written(), "upload ended by the server stopping");
                metrics.transfers.inc("upload_shutdown");
                break;
            }
        }
    }
    // Removes the temporary file unless the upload completed.
    drop(sink);
    forget_peer(shared, peer);
    metrics.active.dec();
    metrics.retransmits.add(transfer.duplicate_blocks());
    if !reported {
        report(
            shared,
            peer,
            &write.path,
            &WriteOutcome::TimedOut,
            &transfer,
            started.elapsed(),
        );
    }
}

/// Logs and counts a finished upload.
fn report(
    shared: &Shared,
    peer: SocketAddr,
    path: &SafePath,
    outcome: &WriteOutcome,
    transfer: &WriteTransfer,
    elapsed: Duration,
) {
    let bytes = transfer.bytes_written();
    match outcome {
        WriteOutcome::Complete { bytes } => {
            tracing::info!(%peer, %path, size = bytes, ?elapsed, resent = transfer.duplicate_blocks(), "received");
        }
        WriteOutcome::TooLarge { limit } => {
            tracing::warn!(%peer, %path, limit, announced = ?transfer.announced_size(), "upload refused: larger than tftp.max_upload_bytes");
        }
        WriteOutcome::TimedOut => {
            tracing::warn!(%peer, %path, bytes, "upload abandoned: the client stopped sending");
        }
        WriteOutcome::ClientError { code, message } => {
            tracing::info!(%peer, %path, bytes, ?code, message, "upload cancelled by the client");
        }
        other => {
            tracing::warn!(%peer, %path, bytes, ?other, "upload failed");
        }
    }
    shared
        .telemetry
        .metrics
        .tftp
        .transfers
        .inc(outcome.metric_label());
}
