//! Static boot files: HEAD, conditional requests, single and multipart ranges, streamed from
//! disk in large chunks without holding the file in memory.

pub mod path;
pub mod range;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Response, StatusCode};
use bytes::Bytes;

use self::range::RangeAnswer;

/// Bytes read from disk per chunk. A download holds at most one chunk being read and one
/// queued in the connection (whose buffer is as large): a client that stops reading costs
/// this much, not megabytes, until the write timeout closes its connection. Large enough
/// that a 300 MiB `boot.wim` still streams at disk or network speed.
const CHUNK: usize = 64 * 1024;

/// The directories files are served from, searched in order.
#[derive(Debug, Clone)]
pub struct Roots(Vec<PathBuf>);

impl Roots {
    /// Keeps the directories that exist (canonicalised, so a symlink cannot lead outside).
    /// Returns the roots and the ones skipped.
    pub fn new(candidates: &[PathBuf]) -> (Self, Vec<PathBuf>) {
        let mut roots = Vec::new();
        let mut skipped = Vec::new();
        for dir in candidates.iter().filter(|d| !d.as_os_str().is_empty()) {
            match std::fs::canonicalize(dir) {
                Ok(canonical) if canonical.is_dir() => roots.push(canonical),
                _ => skipped.push(dir.clone()),
            }
        }
        (Self(roots), skipped)
    }

    /// The served directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.0
    }

    /// Finds `relative` under the first root that has it as a regular file, refusing
    /// anything whose real path leaves that root.
    pub(crate) async fn find(&self, relative: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        for root in &self.0 {
            let Ok(real) = tokio::fs::canonicalize(root.join(relative)).await else {
                continue;
            };
            if !real.starts_with(root) {
                tracing::warn!(path = %relative.display(), "refused: resolves outside {}", root.display());
                continue;
            }
            if let Ok(meta) = tokio::fs::metadata(&real).await {
                if meta.is_file() {
                    return Some((real, meta));
                }
            }
        }
        None
    }
}

/// Answers a GET or HEAD for `url_path` (still percent-encoded).
pub async fn serve(roots: &Roots, method: &Method, url_path: &str, headers: &HeaderMap) -> Response<Body> {
    let relative = match path::relative_path(url_path) {
        Ok(relative) => relative,
        Err(reason) => {
            tracing::info!(path = url_path, %reason, "refused file request");
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
    };
    let Some((real, meta)) = roots.find(&relative).await else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let len = meta.len();
    let modified = meta.modified().ok();
    let etag = entity_tag(len, modified);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, content_type(&relative));
    if let Some(modified) = modified {
        response = response.header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
    }
    if not_modified(headers, &etag, modified) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response");
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let answer = match range_header {
        Some(value) if if_range_allows(headers, &etag, modified) => range::plan(value, len),
        _ => RangeAnswer::Full,
    };
    let head = method == Method::HEAD;
    let (status, segments, content_length) = match answer {
        RangeAnswer::Full => (StatusCode::OK, vec![Segment::File(0..len)], len),
        RangeAnswer::Unsatisfiable => {
            return response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .expect("valid response");
        }
        RangeAnswer::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0].clone();
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{len}", r.start, r.end - 1),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                vec![Segment::File(r.clone())],
                r.end - r.start,
            )
        }
        RangeAnswer::Partial(ranges) => {
            let (boundary, segments) = multipart(&ranges, len, content_type(&relative), &etag);
            response = response.header(
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            );
            let total = segments.iter().map(Segment::len).sum();
            (StatusCode::PARTIAL_CONTENT, segments, total)
        }
    };
    let response = response
        .status(status)
        .header(header::CONTENT_LENGTH, content_length);
    if head {
        return response.body(Body::empty()).expect("valid response");
    }
    let opened = {
        let real = real.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(real)).await
    };
    match opened.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(file) => response
            .body(stream_segments(file, segments))
            .expect("valid response"),
        Err(e) => {
            tracing::warn!(path = %real.display(), error = %e, "opening a served file failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n")
        }
    }
}

/// A plain-text response.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .expect("valid response")
}

/// A strong validator from size and modification time.
fn entity_tag(len: u64, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(candidates) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return candidates
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => whole_seconds(modified) <= whole_seconds(since),
        _ => false,
    }
}

/// `If-Range`: a range applies only if the representation is still the one the client has.
fn if_range_allows(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if value.starts_with('"') {
        return value == etag;
    }
    match (httpdate::parse_http_date(value), modified) {
        (Ok(date), Some(modified)) => whole_seconds(modified) == whole_seconds(date),
        _ => false,
    }
}

fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `Content-Type` of a served file, from its extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ipxe" | "txt" | "cfg" | "ini" | "cmd") => "text/plain; charset=utf-8",
        Some("efi") => "application/efi",
        Some("iso") => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

/// Part of a response body: fixed bytes or a byte range of the file.
#[derive(Debug, Clone)]
enum Segment {
    Bytes(Bytes),
    File(std::ops::Range<u64>),
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File(r) => r.end - r.start,
        }
    }
}

fn multipart(
    ranges: &[std::ops::Range<u64>],
    len: u64,
    part_type: &str,
    etag: &str,
) -> (String, Vec<Segment>) {
    let boundary = format!("netboot-{}", etag.trim_matches('"'));
    let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
    for range in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            range.start,
            range.end - 1
        );
        segments.push(Segment::Bytes(Bytes::from(head)));
        segments.push(Segment::File(range.clone()));
    }
    segments.push(Segment::Bytes(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    (boundary, segments)
}

/// Streams the segments, reading file ranges in [`CHUNK`]-sized pieces at their offsets on
/// the blocking pool. Nothing is read ahead: the next chunk is read when the connection asks
/// for it, and no buffer is kept between chunks.
fn stream_segments(file: std::fs::File, segments: Vec<Segment>) -> Body {
    struct State {
        file: Arc<std::fs::File>,
        pending: VecDeque<Segment>,
        /// The rest of the file range being sent.
        range: std::ops::Range<u64>,
    }
    let state = State {
        file: Arc::new(file),
        pending: segments.into(),
        range: 0..0,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if !state.range.is_empty() {
                let want = (state.range.end - state.range.start).min(CHUNK as u64) as usize;
                let offset = state.range.start;
                let file = Arc::clone(&state.file);
                let result = tokio::task::spawn_blocking(move || read_chunk(&file, offset, want))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                return match result {
                    Ok(chunk) if chunk.is_empty() => {
                        // The file shrank while being sent; end the body with an error.
                        state.range = 0..0;
                        state.pending.clear();
                        Some((
                            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                            state,
                        ))
                    }
                    Ok(chunk) => {
                        state.range.start += chunk.len() as u64;
                        Some((Ok(chunk), state))
                    }
                    Err(e) => {
                        state.range = 0..0;
                        state.pending.clear();
                        Some((Err(e), state))
                    }
                };
            }
            match state.pending.pop_front()? {
                Segment::Bytes(bytes) => return Some((Ok(bytes), state)),
                Segment::File(range) => state.range = range,
            }
        }
    });
    Body::from_stream(stream)
}

/// Reads up to `want` bytes at `offset`; fewer only at the end of the file (empty there).
fn read_chunk(file: &std::fs::File, offset: u64, want: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt as _;
    let mut buffer = vec![0; want];
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buffer.truncate(filled);
    Ok(Bytes::from(buffer))
}
