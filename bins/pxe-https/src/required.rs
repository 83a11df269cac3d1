//! Required once: a Required Windows PE entry boots by itself until the machine has
//! downloaded that entry's boot image to the end; from then on it is offered as Available.
//!
//! Decisions pass through [`netboot_resolver::RequiredOnce`] (outside the resolver's cache),
//! which reads the runs recorded in [`netboot_records::RequiredRuns`]. This module is the
//! other half: telling, among all the downloads of a boot image, the one that means "this
//! machine ran this Required deployment", and recording it.
//!
//! # Which download counts
//!
//! Every Required entry the rule applies to gets its own *mark* when its script is rendered:
//! a random 128-bit token appended to that entry's `boot.wim` URL
//! (`/configmgr/PS100004/boot.wim?required_run=<token>`). The server keeps, per token, the
//! machine (MAC, UUID, ResourceID), the deployment id, the client address the decision was
//! made for and the file the mark belongs to. A download counts only when
//!
//! * it carries a token this server issued in the last [`MARK_LIFETIME`],
//! * it comes from the address the decision was sent to,
//! * it is a GET of exactly the marked file (a `boot.sdi`, `BCD` or wimboot download with
//!   the token does not count), answered `200` or `206` without a content encoding, and
//! * the whole file has been streamed: every byte of one full answer, or every byte of a set
//!   of range answers that together cover the file (resumed downloads), of the same file
//!   version (`ETag`). The body counts once its last byte has been handed to the client's
//!   connection; a download that is aborted or fails before that never counts. (A server
//!   cannot see beyond its socket buffers: a client that disconnects within the last few
//!   megabytes may still be counted, which leaves the deployment Available, the safe side.)
//!
//! Why a per-entry mark rather than remembering "this address was given a Required entry":
//! several deployments usually share one boot image. Someone who cancels the countdown and
//! picks an Available entry (or another Required one) downloads the same `boot.wim`, but
//! through an unmarked URL or another entry's mark, so only the entry actually booted is
//! recorded. Why not a mark derived from the machine (MAC, deployment) that anyone could
//! compute: the token is random and only ever sent in the script for that machine, so a
//! stranger cannot suppress another machine's installation by fetching a URL. To obtain a
//! token they must ask for the decision with that machine's MAC and UUID (which iPXE reports
//! unauthenticated, as any PXE client does to any PXE server), then download the whole boot
//! image from the same address — the cost of booting as that machine.
//!
//! A request with a mark is served without PeerDist (BranchCache) content information even
//! when the client offers it: a machine that assembled its boot image from peers would never
//! show this server a complete download. Required boot images therefore always come whole
//! from this server.
//!
//! Limits: the host that rendered the script must serve the boot image (tokens live in this
//! process's memory, at most [`MAX_MARKS`], [`MAX_MARKS_PER_CLIENT`] per address); a
//! restart between the decision and the end of the download loses that boot's record, so
//! the deployment stays Required for the next boot. Boot images given as absolute URLs of
//! another server are never marked and so never recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, Response, StatusCode};
use futures::{Stream, StreamExt};
use netboot_core::{BootAction, BootDecision, BootRequest, BootResolver, BootTarget, ResolveError};
use netboot_ipxe::{ImageMark, Url};
use netboot_records::{Event, Recorder, RequiredRun, RequiredRuns};
use netboot_resolver::{Demotion, Explained, RequiredOnce};

use crate::files::path::relative_path;

/// Query parameter of the mark.
pub const MARK_KEY: &str = "required_run";
/// How long after the decision a marked download may start.
pub const MARK_LIFETIME: Duration = Duration::from_secs(6 * 3600);
/// Marks held at once; the oldest go first.
pub const MAX_MARKS: usize = 16_384;
/// Marks held for one client address; its oldest go first, so one address cannot crowd out
/// the others.
pub const MAX_MARKS_PER_CLIENT: usize = 8;
/// Disjoint byte ranges tracked per mark; a download scattered wider is not counted.
const MAX_RANGES: usize = 64;
/// Attempts to write a run to an unreachable database, doubling the pause from one second.
const RECORD_ATTEMPTS: u32 = 9;

/// Decisions through the Required-once layer, and the marks of their Required entries.
#[derive(Debug)]
pub struct RequiredOnceService {
    layer: RequiredOnce<Arc<dyn BootResolver>>,
    runs: RequiredRuns,
    marks: Mutex<Marks>,
    recorder: Recorder,
}

impl RequiredOnceService {
    /// Decisions from `resolver`, runs kept in `runs` and put on the timelines of `recorder`.
    pub fn new(resolver: Arc<dyn BootResolver>, runs: RequiredRuns, recorder: Recorder) -> Self {
        let ledger: Arc<dyn netboot_core::RunLedger> = Arc::new(runs.clone());
        Self {
            layer: RequiredOnce::new(resolver, ledger),
            runs,
            marks: Mutex::new(Marks::default()),
            recorder,
        }
    }

    /// Where the runs are kept.
    pub fn runs(&self) -> &RequiredRuns {
        &self.runs
    }

    /// Decides through the layer.
    pub async fn resolve(&self, request: &BootRequest) -> Result<Explained, ResolveError> {
        self.layer.resolve_explained(request).await
    }

    /// The marks of the entries of `decision` the rule applies to, by action id, for the
    /// machine of `request` asking from `client`. `files_base` is the base URL of relative
    /// boot-file references; entries in `waiting` (boot image not on this server yet) get none.
    pub fn mark<W>(
        &self,
        decision: &BootDecision,
        request: &BootRequest,
        client: IpAddr,
        files_base: &Url,
        waiting: &BTreeMap<String, W>,
    ) -> BTreeMap<String, ImageMark> {
        let BootDecision::Boot(menu) = decision else {
            return BTreeMap::new();
        };
        let now = Instant::now();
        let mut marks = self.marks.lock().expect("marks lock");
        menu.entries
            .iter()
            .filter(|action| !waiting.contains_key(&action.id))
            .filter_map(|action| {
                let (boot_image, path) = marked_file(action, files_base)?;
                let run = RequiredRun {
                    mac: request.mac,
                    uuid: request.uuid,
                    resource_id: menu.resource_id,
                    deployment: action.id.clone(),
                    boot_image: Some(boot_image),
                    client_ip: Some(client),
                    at: chrono::Utc::now(),
                };
                let token = marks.issue(client, path, run, now);
                Some((
                    action.id.clone(),
                    ImageMark {
                        key: MARK_KEY,
                        value: token,
                    },
                ))
            })
            .collect()
    }

    /// Watches a file answer: when it is a marked download of its marked file, its body is
    /// followed to the end and a complete download is recorded as a run.
    pub fn watch(
        self: &Arc<Self>,
        query: Option<&str>,
        client: IpAddr,
        url_path: &str,
        response: Response<Body>,
    ) -> Response<Body> {
        let Some(token) = query.and_then(mark_in_query) else {
            return response;
        };
        let Some(part) = Part::of(&response) else {
            return response;
        };
        let Ok(path) = relative_path(url_path) else {
            return response;
        };
        if !self
            .marks
            .lock()
            .expect("marks lock")
            .matches(&token, client, &path, Instant::now())
        {
            tracing::info!(remote = %client, path = url_path, "download with an unknown, expired or foreign mark");
            return response;
        }
        let service = Arc::clone(self);
        let (parts, body) = response.into_parts();
        let expected = part.range.end - part.range.start;
        let on_complete = Box::new(move || service.streamed(&token, &part));
        let body = Body::from_stream(Completion {
            inner: body.into_data_stream(),
            remaining: expected,
            on_complete: Some(on_complete),
        });
        Response::from_parts(parts, body)
    }

    /// A marked body streamed to its end: adds its bytes and records the run once the file
    /// is covered.
    fn streamed(&self, token: &str, part: &Part) {
        let Some(run) = self.marks.lock().expect("marks lock").cover(token, part) else {
            return;
        };
        let remote = run.client_ip.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::info!(
            %remote, mac = %run.mac, deployment = %run.deployment, boot_image = run.boot_image.as_deref().unwrap_or(""),
            "Required deployment ran: boot image downloaded completely, offered as Available from now on"
        );
        let runs = self.runs.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move { record_run(&runs, &recorder, run).await });
    }
}

/// Whether a request carries a mark: its answer must be the file itself, never PeerDist
/// (BranchCache) Content Information, so the client fetches the file from this server, where
/// its complete download can be seen, instead of assembling it from peers.
pub fn is_marked(query: Option<&str>) -> bool {
    query.and_then(mark_in_query).is_some()
}

/// Writes the run, retrying for a few minutes while the database is unreachable, then puts it
/// on the machine's timeline.
async fn record_run(runs: &RequiredRuns, recorder: &Recorder, run: RequiredRun) {
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=RECORD_ATTEMPTS {
        match runs.record(&run).await {
            Ok(()) => {
                recorder.record(Event::required_ran(&run));
                return;
            }
            Err(error) if attempt < RECORD_ATTEMPTS => {
                tracing::warn!(mac = %run.mac, deployment = %run.deployment, %error, attempt, "recording a Required run failed, retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(error) => {
                tracing::error!(
                    mac = %run.mac, deployment = %run.deployment, %error, location = %runs.location(),
                    "recording a Required run failed: the deployment stays Required for this machine"
                );
            }
        }
    }
}

/// The timeline events of the entries a decision offered as Available instead of Required.
pub fn demotion_events(request: &BootRequest, demotions: &[Demotion]) -> Vec<Event> {
    demotions
        .iter()
        .map(|demotion| match demotion {
            Demotion::Ran { deployment, at } => {
                Event::required_offered_as_available(request.mac, request.uuid, deployment, (*at).into())
            }
            Demotion::LedgerUnavailable { deployment, error } => {
                Event::required_unverified(request.mac, request.uuid, deployment, error)
            }
        })
        .map(|event| event.with_ip(request.remote))
        .collect()
}

/// The boot image reference and its path below the roots, for an entry that gets a mark:
/// one the rule applies to, with a boot image this server serves.
fn marked_file(action: &BootAction, files_base: &Url) -> Option<(String, PathBuf)> {
    if !action.runs_once() {
        return None;
    }
    let BootTarget::Wimboot { boot_wim, .. } = &action.target else {
        return None;
    };
    let lower = boot_wim.get(..8).unwrap_or(boot_wim).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        tracing::info!(deployment = %action.id, "boot image of a Required entry is on another server: its run cannot be recorded");
        return None;
    }
    let url = Url::resolve(files_base, boot_wim).ok()?;
    let path = relative_path(url_path(url.as_str())).ok()?;
    Some((boot_wim.clone(), path))
}

/// The path part of a URL (`https://host:8443/a/b` → `/a/b`; a path stays as it is).
fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => url,
    }
}

/// The mark in a query string, when it has one of the right shape.
fn mark_in_query(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == MARK_KEY)
        .map(|(_, value)| value)
        .filter(|value| value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

/// The bytes of the file one answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    range: Range<u64>,
    total: u64,
    version: String,
}

impl Part {
    /// The part a `200` or single-range `206` answer carries; `None` for anything else
    /// (errors, `304`, multipart ranges, encoded bodies such as PeerDist content information).
    fn of(response: &Response<Body>) -> Option<Self> {
        let headers = response.headers();
        if headers.contains_key(header::CONTENT_ENCODING) {
            return None;
        }
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let length: u64 = text(header::CONTENT_LENGTH)?.parse().ok()?;
        let version = text(header::ETAG).unwrap_or_default().to_string();
        match response.status() {
            StatusCode::OK => Some(Self {
                range: 0..length,
                total: length,
                version,
            }),
            StatusCode::PARTIAL_CONTENT => {
                let (range, total) = parse_content_range(text(header::CONTENT_RANGE)?)?;
                (range.end - range.start == length).then_some(Self {
                    range,
                    total,
                    version,
                })
            }
            _ => None,
        }
    }
}

/// `bytes 0-99/1000` → `(0..100, 1000)`.
fn parse_content_range(value: &str) -> Option<(Range<u64>, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, total): (u64, u64, u64) =
        (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
    (first <= last && last < total).then_some((first..last + 1, total))
}

/// One issued mark.
#[derive(Debug)]
struct Mark {
    client: IpAddr,
    path: PathBuf,
    run: RequiredRun,
    issued: Instant,
    covered: Coverage,
}

/// The marks this process issued, bounded in number overall and per client address.
#[derive(Debug, Default)]
struct Marks {
    by_token: HashMap<String, Mark>,
    /// Tokens in issue order (refreshed ones are issued again).
    order: VecDeque<String>,
    per_client: HashMap<IpAddr, VecDeque<String>>,
}

impl Marks {
    /// The mark of this machine's entry from this address: the one issued before for the
    /// same machine, deployment and file (a second decision of the same boot), else a new one.
    fn issue(&mut self, client: IpAddr, path: PathBuf, run: RequiredRun, now: Instant) -> String {
        self.expire(now);
        let existing = self.per_client.get(&client).and_then(|tokens| {
            tokens.iter().find(|token| {
                self.by_token.get(*token).is_some_and(|mark| {
                    mark.path == path && mark.run.mac == run.mac && mark.run.deployment == run.deployment
                })
            })
        });
        if let Some(token) = existing.cloned() {
            if let Some(mark) = self.by_token.get_mut(&token) {
                mark.issued = now;
                mark.run = run;
            }
            // Keep `order` sorted by issue time for `expire`.
            self.order.retain(|t| *t != token);
            self.order.push_back(token.clone());
            return token;
        }
        while let Some(tokens) = self
            .per_client
            .get_mut(&client)
            .filter(|t| t.len() >= MAX_MARKS_PER_CLIENT)
        {
            let Some(oldest) = tokens.pop_front() else {
                break;
            };
            self.remove(&oldest);
        }
        while self.by_token.len() >= MAX_MARKS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.remove(&oldest);
        }
        let token = new_token();
        self.by_token.insert(
            token.clone(),
            Mark {
                client,
                path,
                run,
                issued: now,
                covered: Coverage::default(),
            },
        );
        self.order.push_back(token.clone());
        self.per_client
            .entry(client)
            .or_default()
            .push_back(token.clone());
        token
    }

    /// Whether `token` is a live mark of `path` issued to `client`.
    fn matches(&mut self, token: &str, client: IpAddr, path: &std::path::Path, now: Instant) -> bool {
        self.expire(now);
        self.by_token
            .get(token)
            .is_some_and(|mark| mark.client == client && mark.path == path)
    }

    /// Adds a streamed part; the run (and the mark removed) once the file is covered.
    fn cover(&mut self, token: &str, part: &Part) -> Option<RequiredRun> {
        let mark = self.by_token.get_mut(token)?;
        if !mark.covered.add(part) {
            return None;
        }
        let mut run = self.remove(token)?.run;
        run.at = chrono::Utc::now();
        Some(run)
    }

    /// Drops marks older than [`MARK_LIFETIME`] (`order` is oldest first).
    fn expire(&mut self, now: Instant) {
        while let Some(token) = self.order.front().cloned() {
            match self.by_token.get(&token) {
                Some(mark) if now.duration_since(mark.issued) <= MARK_LIFETIME => break,
                Some(_) => {
                    self.remove(&token);
                }
                None => {
                    self.order.pop_front();
                }
            }
        }
    }

    fn remove(&mut self, token: &str) -> Option<Mark> {
        let mark = self.by_token.remove(token)?;
        self.order.retain(|t| t != token);
        if let Some(tokens) = self.per_client.get_mut(&mark.client) {
            tokens.retain(|t| t != token);
            if tokens.is_empty() {
                self.per_client.remove(&mark.client);
            }
        }
        Some(mark)
    }
}

/// A random 128-bit token in hex.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The byte ranges of one file version streamed so far, merged.
#[derive(Debug, Default)]
struct Coverage {
    version: Option<(String, u64)>,
    ranges: Vec<Range<u64>>,
}

impl Coverage {
    /// Adds a part; true once the parts cover the whole file. A part of another file
    /// version starts over.
    fn add(&mut self, part: &Part) -> bool {
        let version = (part.version.clone(), part.total);
        if self.version.as_ref() != Some(&version) {
            self.version = Some(version);
            self.ranges.clear();
        }
        self.ranges.push(part.range.clone());
        self.ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(self.ranges.len());
        for range in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        if merged.len() > MAX_RANGES {
            merged.truncate(MAX_RANGES);
        }
        self.ranges = merged;
        matches!(&self.ranges[..], [only] if only.start == 0 && only.end == part.total)
    }
}

type OnComplete = Box<dyn FnOnce() + Send>;

/// A body that calls `on_complete` when its last byte has been taken by the connection, and
/// never when it ends early or fails.
struct Completion<S> {
    inner: S,
    remaining: u64,
    on_complete: Option<OnComplete>,
}

impl<S> Stream for Completion<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.inner.poll_next_unpin(cx));
        match &item {
            Some(Ok(chunk)) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                if self.remaining == 0 {
                    if let Some(done) = self.on_complete.take() {
                        done();
                    }
                }
            }
            Some(Err(_)) => self.on_complete = None,
            None => {}
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
#[path = "required_tests.rs"]
mod tests;
