//! Boot images straight from a ConfigMgr distribution point.
//!
//! Instead of copying `SMSImages\<PackageID>` by hand, [`DpSource`] fetches
//! `boot.<PackageID>.wim` from a distribution point over HTTPS (anonymous, basic or NTLM
//! authentication; the DP's CA configurable) into the boot image directory the ConfigMgr
//! resolver and the HTTPS file route already use:
//!
//! * the download goes to a hidden `.boot.<PackageID>.wim.part` (the file route never serves
//!   hidden names), is checked against its `Content-Length` and, when configured, a pinned
//!   SHA-256, then renamed to `boot.<PackageID>.wim` with its SHA-256 beside it in a hidden
//!   `.boot.<PackageID>.wim.sha256`;
//! * before a fetched image is first served by this process its length and hash are checked
//!   again against that file, so a truncated or altered copy is fetched anew;
//! * fetched images together stay below a size limit: the least recently used ones are
//!   removed to make room (images copied by hand are never touched);
//! * [`DpSource::availability`] never waits: it starts a download in the background and
//!   reports progress, so the HTTPS service can tell the client on its console and ask again.

#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub mod client;
pub mod ntlm;

pub use client::{Auth, Endpoint, FetchError, HttpsUrl, Progress};

/// How long a failed download is reported before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Settings of a distribution point source.
#[derive(Debug, Clone)]
pub struct DpSettings {
    /// `https://dp/.../{package_id}/boot.{package_id}.wim`: where a boot image is fetched.
    pub url_template: String,
    /// The boot image directory (one folder per PackageID).
    pub dir: PathBuf,
    /// Fetched images together stay below this many bytes.
    pub max_cache_bytes: u64,
    /// Pinned SHA-256 per PackageID (lower-case hex); a download that differs is discarded.
    pub sha256: BTreeMap<String, String>,
}

/// Where a boot image stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// On disk and checked.
    Ready,
    /// A fetched copy is on disk and its hash is being checked.
    Checking,
    /// Being fetched: bytes so far and the announced total (0 when unknown).
    Fetching {
        /// Bytes written.
        done: u64,
        /// Announced length.
        total: u64,
    },
    /// The last attempt failed (the reason is safe to show); tried again after
    /// [`RETRY_AFTER`].
    Failed(String),
}

#[derive(Debug)]
enum State {
    Checking,
    Fetching(Arc<Progress>),
    Failed(String, Instant),
    /// Checked against its hash file by this process.
    Verified,
}

/// Fetches boot images from one distribution point into a boot image directory.
#[derive(Debug)]
pub struct DpSource {
    endpoint: Endpoint,
    settings: DpSettings,
    states: Mutex<HashMap<String, State>>,
}

/// Only plain PackageIDs are ever fetched or named in a path.
pub fn is_package_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl DpSource {
    /// A source fetching with `endpoint`.
    pub fn new(endpoint: Endpoint, settings: DpSettings) -> Arc<Self> {
        Arc::new(Self {
            endpoint,
            settings,
            states: Mutex::new(HashMap::new()),
        })
    }

    /// The DP's host name, for messages.
    pub fn host(&self) -> String {
        HttpsUrl::parse(&self.settings.url_template)
            .map(|u| u.host)
            .unwrap_or_default()
    }

    /// The file name a fetched boot image gets.
    pub fn file_name(id: &str) -> String {
        format!("boot.{id}.wim")
    }

    fn paths(&self, id: &str) -> (PathBuf, PathBuf, PathBuf) {
        let folder = self.settings.dir.join(id);
        let name = Self::file_name(id);
        (
            folder.join(&name),
            folder.join(format!(".{name}.sha256")),
            folder.join(format!(".{name}.part")),
        )
    }

    /// Where boot image `id` stands; starts fetching it (in the background, on the current
    /// tokio runtime) when it is neither on disk nor being fetched.
    pub fn availability(self: &Arc<Self>, id: &str) -> Availability {
        if !is_package_id(id) {
            return Availability::Failed("not a boot image PackageID".into());
        }
        let mut states = self.states.lock().expect("DP state poisoned");
        match states.get(id) {
            Some(State::Verified) => return Availability::Ready,
            Some(State::Checking) => return Availability::Checking,
            Some(State::Fetching(progress)) => {
                return Availability::Fetching {
                    done: progress.done.load(Ordering::Relaxed),
                    total: progress.total.load(Ordering::Relaxed),
                }
            }
            Some(State::Failed(reason, at)) if at.elapsed() < RETRY_AFTER => {
                return Availability::Failed(reason.clone())
            }
            _ => {}
        }
        let (wim, sidecar, _) = self.paths(id);
        if wim.is_file() && !sidecar.is_file() {
            // Copied by hand: not ours to check or remove.
            states.insert(id.to_owned(), State::Verified);
            return Availability::Ready;
        }
        let fetched_copy = wim.is_file();
        let progress = Progress::new();
        let (state, answer) = if fetched_copy {
            (State::Checking, Availability::Checking)
        } else {
            (
                State::Fetching(progress.clone()),
                Availability::Fetching { done: 0, total: 0 },
            )
        };
        states.insert(id.to_owned(), state);
        drop(states);
        let source = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let outcome = source.check_or_fetch(&id, fetched_copy, &progress).await;
            let mut states = source.states.lock().expect("DP state poisoned");
            match outcome {
                Ok(()) => {
                    states.insert(id, State::Verified);
                }
                Err(e) => {
                    tracing::warn!(package = %id, error = %e, "fetching the boot image from the distribution point failed");
                    states.insert(id, State::Failed(e.to_string(), Instant::now()));
                }
            }
        });
        answer
    }

    /// Checks a fetched copy against its hash file (off the async threads: a boot image
    /// is hundreds of MiB), fetching it anew when it does not match.
    async fn check_or_fetch(
        self: &Arc<Self>,
        id: &str,
        fetched_copy: bool,
        progress: &Arc<Progress>,
    ) -> Result<(), FetchError> {
        if fetched_copy {
            let (wim, sidecar, _) = self.paths(id);
            let good = tokio::task::spawn_blocking(move || verify_against_sidecar(&wim, &sidecar))
                .await
                .unwrap_or(false);
            if good {
                touch(&self.paths(id).1);
                return Ok(());
            }
            tracing::warn!(package = %id, "fetched boot image does not match its recorded SHA-256; fetching it again");
            self.states
                .lock()
                .expect("DP state poisoned")
                .insert(id.to_owned(), State::Fetching(progress.clone()));
        }
        self.fetch(id, progress).await?;
        tracing::info!(package = %id, bytes = progress.done.load(Ordering::Relaxed), "boot image fetched from the distribution point");
        Ok(())
    }

    async fn fetch(&self, id: &str, progress: &Progress) -> Result<(), FetchError> {
        let (wim, sidecar, part) = self.paths(id);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| FetchError::Io { path, source }
        };
        let url = HttpsUrl::parse(&self.settings.url_template.replace("{package_id}", id))?;
        let folder = wim.parent().expect("a folder");
        tokio::fs::create_dir_all(folder).await.map_err(io(folder))?;
        let _ = tokio::fs::remove_file(&wim).await;
        let _ = tokio::fs::remove_file(&sidecar).await;
        let result = self
            .endpoint
            .fetch(
                &url.path,
                &part,
                self.settings.max_cache_bytes,
                progress,
                |needed| {
                    self.make_room(id, needed);
                },
            )
            .await;
        let (length, hash) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let hash = hex(&hash);
        if let Some(pinned) = self.settings.sha256.get(id) {
            if !pinned.eq_ignore_ascii_case(&hash) {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(FetchError::Body(format!(
                    "the boot image's SHA-256 {hash} is not the configured {pinned}"
                )));
            }
        }
        tokio::fs::write(&sidecar, format!("{hash} {length}\n"))
            .await
            .map_err(io(&sidecar))?;
        tokio::fs::rename(&part, &wim).await.map_err(io(&wim))?;
        // Without a Content-Length the room could only be made now.
        self.make_room(id, 0);
        Ok(())
    }

    /// Removes the least recently used fetched images other than `keep` until the fetched
    /// ones and `needed` more bytes fit the limit.
    fn make_room(&self, keep: &str, needed: u64) {
        let mut fetched = fetched_images(&self.settings.dir);
        let mut used: u64 = fetched.iter().map(|f| f.bytes).sum();
        fetched.sort_by_key(|f| f.last_used);
        for image in fetched.into_iter().filter(|f| f.id != keep) {
            if used.saturating_add(needed) <= self.settings.max_cache_bytes {
                break;
            }
            tracing::info!(package = %image.id, bytes = image.bytes, "removing a fetched boot image to stay under the cache limit");
            let (wim, sidecar, _) = self.paths(&image.id);
            let _ = std::fs::remove_file(&wim);
            let _ = std::fs::remove_file(&sidecar);
            self.states.lock().expect("DP state poisoned").remove(&image.id);
            used = used.saturating_sub(image.bytes);
        }
    }
}

struct Fetched {
    id: String,
    bytes: u64,
    last_used: SystemTime,
}

/// Images with a hash file (fetched ones), their size and when they were last served.
fn fetched_images(dir: &Path) -> Vec<Fetched> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let id = entry.file_name().to_str()?.to_owned();
            if !is_package_id(&id) {
                return None;
            }
            let name = DpSource::file_name(&id);
            let sidecar = std::fs::metadata(entry.path().join(format!(".{name}.sha256"))).ok()?;
            let wim = std::fs::metadata(entry.path().join(&name)).ok()?;
            Some(Fetched {
                id,
                bytes: wim.len(),
                last_used: sidecar.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect()
}

/// Whether `wim` has the length and SHA-256 its hash file records.
fn verify_against_sidecar(wim: &Path, sidecar: &Path) -> bool {
    use sha2::{Digest as _, Sha256};
    use std::io::Read as _;
    let Ok(text) = std::fs::read_to_string(sidecar) else {
        return false;
    };
    let mut fields = text.split_whitespace();
    let (Some(hash), Some(length)) = (fields.next(), fields.next().and_then(|l| l.parse::<u64>().ok()))
    else {
        return false;
    };
    let Ok(mut file) = std::fs::File::open(wim) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(length) {
        return false;
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(_) => return false,
        }
    }
    hex(&hasher.finalize()) == hash
}

/// Marks an image as just used (its hash file's modification time orders eviction).
fn touch(sidecar: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(sidecar) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
