//! The background computation of Content Information: one thread at reduced priority (nice
//! 10), so hashing a 5 GiB image never takes more than one core and yields to serving. Files
//! are read in 1 MiB pieces and never held, and each piece of Content Information is written
//! to the store as soon as it is known, so memory stays the same for any file size. Requests
//! for a file already queued, or whose computation failed for the same file version, add
//! nothing.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use netboot_peerdist::{ContentInfoEncoder, ServerPassphrase, Version};

use super::store::{FileKey, Store};

/// Files waiting for their Content Information at most.
const QUEUE: usize = 256;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 1024 * 1024;
/// Files remembered as queued or failed at most; beyond it failures are forgotten (and
/// retried on a later request).
const MAX_TRACKED: usize = 4096;
/// Nice value of the hashing thread.
const NICE: i32 = 10;

#[derive(Debug)]
struct Job {
    real: PathBuf,
    key: FileKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    Queued(FileKey),
    Failed(FileKey),
}

/// Handle of the hashing thread; dropping it stops the thread after the piece it is reading.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: SyncSender<Job>,
    tracked: Arc<Mutex<HashMap<PathBuf, Tracked>>>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    pub(crate) fn spawn(passphrase: ServerPassphrase, store: Store) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        let tracked = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_tracked, thread_stop) = (tracked.clone(), stop.clone());
        std::thread::Builder::new()
            .name("peerdist-hash".into())
            .spawn(move || {
                lower_priority();
                let removed = store.sweep();
                if removed > 0 {
                    tracing::info!(removed, "removed stored PeerDist Content Information of files that are gone");
                }
                let mut buffer = vec![0; READ_CHUNK];
                while let Ok(job) = queue.recv() {
                    if thread_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let outcome = compute(&job, &passphrase, &store, &mut buffer, &thread_stop);
                    let mut tracked = thread_tracked.lock().expect("tracked files");
                    match outcome {
                        Ok(()) => {
                            tracked.remove(&job.real);
                        }
                        Err(error) => {
                            if !thread_stop.load(Ordering::Relaxed) {
                                tracing::warn!(path = %job.real.display(), %error, "PeerDist Content Information not computed");
                            }
                            tracked.insert(job.real, Tracked::Failed(job.key));
                        }
                    }
                }
            })?;
        Ok(Self { jobs, tracked, stop })
    }

    /// Asks for the Content Information of the file at `real` as `key` describes it.
    pub(crate) fn request(&self, real: PathBuf, key: FileKey) {
        let mut tracked = self.tracked.lock().expect("tracked files");
        if matches!(tracked.get(&real), Some(Tracked::Queued(k) | Tracked::Failed(k)) if *k == key) {
            return;
        }
        if tracked.len() >= MAX_TRACKED {
            tracked.retain(|_, t| matches!(t, Tracked::Queued(_)));
        }
        match self.jobs.try_send(Job {
            real: real.clone(),
            key,
        }) {
            Ok(()) => {
                tracing::info!(path = %real.display(), bytes = key.len, "computing PeerDist Content Information");
                tracked.insert(real, Tracked::Queued(key));
            }
            Err(TrySendError::Full(_)) => {
                tracing::debug!(path = %real.display(), "PeerDist queue full; asked again on a later request");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("the PeerDist hashing thread has stopped");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
enum ComputeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the file changed while it was read; the next request starts again")]
    Changed,
    #[error("stopped")]
    Stopped,
}

fn compute(
    job: &Job,
    passphrase: &ServerPassphrase,
    store: &Store,
    buffer: &mut [u8],
    stop: &AtomicBool,
) -> Result<(), ComputeError> {
    let started = Instant::now();
    let mut file = std::fs::File::open(&job.real)?;
    if FileKey::of(&file.metadata()?) != job.key {
        return Err(ComputeError::Changed);
    }
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
    let mut encoder = ContentInfoEncoder::new(passphrase, job.key.len);
    let (v1_len, v2_len) = (encoder.encoded_len(Version::V1), encoder.encoded_len(Version::V2));
    let entry = store.create(&job.real, &job.key, v1_len, v2_len)?;
    // The first failed write; later pieces are not written.
    let failed = std::cell::Cell::new(None);
    let mut write = |version, offset, bytes: &[u8]| {
        let error = match failed.take() {
            None => entry.write(version, offset, bytes).err(),
            earlier => earlier,
        };
        failed.set(error);
    };
    loop {
        let read = match file.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        encoder
            .update(&buffer[..read], &mut write)
            .map_err(|_| ComputeError::Changed)?;
        if let Some(error) = failed.take() {
            return Err(error.into());
        }
        if stop.load(Ordering::Relaxed) {
            return Err(ComputeError::Stopped);
        }
    }
    encoder.finish(&mut write).map_err(|_| ComputeError::Changed)?;
    if let Some(error) = failed.take() {
        return Err(error.into());
    }
    if FileKey::of(&file.metadata()?) != job.key {
        return Err(ComputeError::Changed);
    }
    entry.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        path = %job.real.display(),
        bytes = job.key.len,
        v1_bytes = v1_len,
        v2_bytes = v2_len,
        seconds = (seconds * 1000.0).round() / 1000.0,
        mb_per_s = (job.key.len as f64 / 1e6 / seconds.max(1e-9)).round(),
        "PeerDist Content Information ready"
    );
    Ok(())
}

/// Lowers this thread's scheduling priority (Linux nice values are per thread).
fn lower_priority() {
    let thread = Some(rustix::thread::gettid());
    let current = rustix::process::getpriority_process(thread).unwrap_or(0);
    if let Err(error) = rustix::process::setpriority_process(thread, current.max(NICE)) {
        tracing::debug!(%error, "could not lower the PeerDist hashing thread's priority");
    }
}
