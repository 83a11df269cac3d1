//! BranchCache (PeerDist) on the file-serving path.
//!
//! A GET carrying `Accept-Encoding: peerdist` and `X-P2P-PeerDist` (as iPXE built with
//! PeerDist and Windows BranchCache clients send it) for a file of at least
//! `[peerdist] min_file_bytes` is answered with the file's Content Information
//! (`Content-Encoding: peerdist`, version 2.0 when the client accepts it, else 1.0) once that
//! has been computed; until then, and for every other request, the file is served as usual.
//! Ranges flagged `MissingDataRequest=true` (blocks no peer had) are ordinary range requests.
//! Each answer is marked on the response with a [`PeerDistDelivery`] for the boot records.

mod secret;
mod store;
mod worker;

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use netboot_config::Config;
use netboot_peerdist::http::{self as pd, PeerDistRequest};
use netboot_peerdist::Version;
use netboot_records::PeerDistDelivery;

use self::store::{FileKey, Store};
use self::worker::Worker;
use crate::files::{self, path, Roots};

/// Bytes per piece of a Content Information body.
const BODY_CHUNK: usize = 64 * 1024;

/// The PeerDist service of one `pxe-https`.
#[derive(Debug)]
pub struct PeerDist {
    store: Store,
    worker: Worker,
    min_file_bytes: u64,
}

impl PeerDist {
    /// Starts PeerDist as `[peerdist]` says: `None` when it is disabled, or when the default
    /// passphrase file or the store under `https.state_dir` cannot be created (a warning
    /// says why). An explicitly configured `secret_file` that cannot be read is an error.
    ///
    /// A passphrase file under one of the served `roots` is an error: anyone could download it
    /// and compute every segment secret.
    pub fn start(config: &Config, roots: &Roots) -> Result<Option<Arc<Self>>> {
        let settings = &config.peerdist;
        if !settings.enabled {
            return Ok(None);
        }
        let state_dir = config.resolve_path(&config.https.state_dir);
        let explicit = settings.secret_file.as_deref().map(|p| config.resolve_path(p));
        let secret_path = explicit
            .clone()
            .unwrap_or_else(|| state_dir.join("peerdist.secret"));
        let passphrase = match secret::load_or_create(&secret_path, explicit.is_none()) {
            Ok(passphrase) => passphrase,
            Err(e) if explicit.is_some() => return Err(e).context("peerdist.secret_file"),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "PeerDist is off: set https.state_dir to a writable directory or peerdist.secret_file"
                );
                return Ok(None);
            }
        };
        let real_secret = std::fs::canonicalize(&secret_path).unwrap_or_else(|_| secret_path.clone());
        if let Some(root) = roots.dirs().iter().find(|root| real_secret.starts_with(root)) {
            bail!(
                "the PeerDist server passphrase {} lies under the served directory {}, where anyone \
                 could download it: move https.state_dir or peerdist.secret_file out of it",
                secret_path.display(),
                root.display()
            );
        }
        let fingerprint = passphrase.fingerprint();
        let store_dir = state_dir.join("peerdist");
        let store = match Store::open(store_dir.clone(), fingerprint_bytes(&fingerprint)) {
            Ok(store) => store,
            Err(error) => {
                tracing::warn!(dir = %store_dir.display(), %error, "PeerDist is off: cannot create its store");
                return Ok(None);
            }
        };
        let worker =
            Worker::spawn(passphrase, store.clone()).context("starting the PeerDist hashing thread")?;
        tracing::info!(
            secret = %secret_path.display(), fingerprint, store = %store_dir.display(),
            min_file_bytes = settings.min_file_bytes, "PeerDist enabled"
        );
        Ok(Some(Arc::new(Self {
            store,
            worker,
            min_file_bytes: settings.min_file_bytes,
        })))
    }

    /// Answers with Content Information when the request asks for it and it is ready, or
    /// awaits `plain` (the ordinary file answer), marking PeerDist requests for the records.
    pub async fn respond(
        this: Option<&Self>,
        roots: &Roots,
        method: &Method,
        url_path: &str,
        headers: &HeaderMap,
        remote: std::net::IpAddr,
        plain: impl Future<Output = Response<Body>>,
    ) -> Response<Body> {
        let Some(this) = this else {
            return plain.await;
        };
        let request = classify(headers);
        let delivery = match request {
            PeerDistRequest::None => return plain.await,
            PeerDistRequest::MissingData => {
                tracing::info!(
                    %remote,
                    path = url_path,
                    range = header_text(headers, header::RANGE),
                    "PeerDist missing-data range"
                );
                PeerDistDelivery::MissingData
            }
            PeerDistRequest::ContentInformation { .. } if !wants_whole_file(method, headers) => {
                return plain.await;
            }
            PeerDistRequest::ContentInformation { encoding, .. } => {
                match this.content_information(roots, url_path, &request).await {
                    Lookup::Ready {
                        body,
                        version,
                        content_len,
                        info_len,
                        content_type,
                    } => {
                        tracing::info!(%remote, path = url_path, %version, content_bytes = content_len, info_bytes = info_len, "PeerDist answer");
                        return answer(body, encoding, version, content_len, info_len, content_type);
                    }
                    Lookup::Computing => PeerDistDelivery::NotReady,
                    Lookup::NotApplicable => return plain.await,
                }
            }
        };
        let mut response = plain.await;
        response.extensions_mut().insert(delivery);
        response
    }

    async fn content_information(&self, roots: &Roots, url_path: &str, request: &PeerDistRequest) -> Lookup {
        let Some(version) = request.choose(&Version::ALL) else {
            return Lookup::NotApplicable;
        };
        let Ok(relative) = path::relative_path(url_path) else {
            return Lookup::NotApplicable;
        };
        let Some((real, meta)) = roots.find(&relative).await else {
            return Lookup::NotApplicable;
        };
        if meta.len() < self.min_file_bytes.max(1) {
            return Lookup::NotApplicable;
        }
        let key = FileKey::of(&meta);
        match self.store.open_current(&real, &key, version).await {
            Ok(Some((file, info_len))) => Lookup::Ready {
                body: body(file, info_len),
                version,
                content_len: meta.len(),
                info_len,
                content_type: files::content_type(&relative),
            },
            Ok(None) => {
                self.worker.request(real, key);
                Lookup::Computing
            }
            Err(error) => {
                tracing::warn!(path = %real.display(), %error, "reading stored PeerDist Content Information failed");
                self.worker.request(real, key);
                Lookup::Computing
            }
        }
    }
}

enum Lookup {
    Ready {
        body: Body,
        version: Version,
        content_len: u64,
        info_len: u64,
        content_type: &'static str,
    },
    Computing,
    NotApplicable,
}

fn classify(headers: &HeaderMap) -> PeerDistRequest {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    pd::classify_request(
        value(header::ACCEPT_ENCODING.as_str()),
        value(pd::X_P2P_PEERDIST),
        value(pd::X_P2P_PEERDIST_EX),
    )
}

/// Content Information describes the whole file: ranges and conditional requests get the
/// ordinary answer, which handles them.
fn wants_whole_file(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && [
            header::RANGE,
            header::IF_RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
        ]
        .iter()
        .all(|name| !headers.contains_key(name))
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn body(file: tokio::fs::File, len: u64) -> Body {
    use tokio::io::AsyncReadExt as _;
    Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        BODY_CHUNK,
    ))
}

fn answer(
    body: Body,
    encoding: pd::VersionNumber,
    version: Version,
    content_len: u64,
    info_len: u64,
    content_type: &'static str,
) -> Response<Body> {
    let vary = "Accept-Encoding, X-P2P-PeerDist, X-P2P-PeerDistEx";
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_ENCODING, pd::CONTENT_ENCODING)
        .header(
            pd::X_P2P_PEERDIST,
            pd::response_peerdist_header(encoding, content_len),
        )
        .header(header::CONTENT_LENGTH, info_len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::VARY, HeaderValue::from_static(vary))
        .body(body)
        .expect("valid response");
    response
        .extensions_mut()
        .insert(PeerDistDelivery::ContentInformation {
            version: version.to_string(),
            content_bytes: content_len,
        });
    response
}

/// The store keys entries by the passphrase's public fingerprint.
fn fingerprint_bytes(fingerprint: &str) -> [u8; 8] {
    let mut bytes = [0; 8];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&fingerprint[2 * i..2 * i + 2], 16).expect("hex fingerprint");
    }
    bytes
}
