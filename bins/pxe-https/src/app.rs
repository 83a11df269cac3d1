//! The HTTP routes: entry script, boot decision, health check and static files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::get;
use axum::{Extension, Router};
use netboot_core::BootResolver;
use netboot_ipxe::{
    decision_script_with_handoff, fallback_script, ClientIdentity, Fallback, RenderOptions, Script,
};

use crate::files::{self, Roots};
use crate::handoff::{HandoffState, HANDOFF_PATH};
use crate::peerdist::PeerDist;

/// Path of the entry script the proxyDHCP hands to iPXE.
pub const ENTRY_PATH: &str = "/boot.ipxe";
/// Path of the decision endpoint the entry script calls.
pub const DECIDE_PATH: &str = "/boot.ipxe/decide";
/// Largest accepted `params` form body. Each value is capped far below this anyway.
const MAX_FORM_BODY: usize = 16 * 1024;

/// The address of the client on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Whether the connection is TLS (for the boot records: which clients can do HTTPS).
#[derive(Debug, Clone, Copy)]
pub struct OverTls(pub bool);

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Who decides.
    pub resolver: Arc<dyn BootResolver>,
    /// How long the resolver may take.
    pub deadline: Duration,
    /// How decisions become scripts.
    pub render: RenderOptions,
    /// What clients do when no decision is possible.
    pub fallback: Fallback,
    /// The rendered entry script (static).
    pub entry: Bytes,
    /// Where files are served from.
    pub roots: Roots,
    /// Per-boot URLs of the Windows PE hand-off.
    pub handoff: HandoffState,
    /// Boot images fetched from a distribution point on demand.
    pub dp: Option<crate::dp_gate::DpGate>,
    /// BranchCache Content Information, when `[peerdist]` is enabled.
    pub peerdist: Option<Arc<PeerDist>>,
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(ENTRY_PATH, get(entry))
        .route(DECIDE_PATH, get(decide_query).post(decide_form))
        .route(&format!("{HANDOFF_PATH}/{{token}}/{{name}}"), get(handoff_file))
        .fallback(static_file)
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn entry(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
) -> Response<Body> {
    netboot_records::telemetry().metrics.https.requests.inc("entry");
    let tls = tls.is_some_and(|Extension(OverTls(over_tls))| over_tls);
    tracing::info!(remote = %peer.0.ip(), tls, "entry script");
    script_response(state.entry.clone())
}

async fn decide_query(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let identity = ClientIdentity::parse_form(query.as_deref().unwrap_or("").as_bytes());
    decide_measured(&state, identity, peer, tls).await
}

async fn decide_form(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    // Refuse a declared-too-large body before touching it: the body is then never polled, so
    // no `100 Continue` goes out and the client reliably reads the 413 instead of having its
    // upload reset when the connection closes with unread data.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_FORM_BODY as u64) {
        return payload_too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BODY).await else {
        return payload_too_large();
    };
    decide_measured(&state, ClientIdentity::parse_form(&body), peer, tls).await
}

fn payload_too_large() -> Response<Body> {
    let mut response = Response::new(Body::from("form body too large\n"));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}

/// [`decide`] with its latency measured and the identity and decision recorded.
async fn decide_measured(
    state: &AppState,
    identity: ClientIdentity,
    peer: Peer,
    tls: Option<Extension<OverTls>>,
) -> Response<Body> {
    let telemetry = netboot_records::telemetry();
    telemetry.metrics.https.requests.inc("decide");
    let started = Instant::now();
    let over_tls = tls.is_some_and(|Extension(OverTls(tls))| tls);
    let response = decide(state, identity, peer, over_tls).await;
    telemetry
        .metrics
        .https
        .decision_seconds
        .observe(started.elapsed());
    telemetry.metrics.https.request_seconds.observe(started.elapsed());
    response
}

/// Records iPXE's identity and the decision served on the machine's boot timeline.
fn record_decision(
    state: &AppState,
    request: &netboot_core::BootRequest,
    decision: Result<&netboot_core::BootDecision, &str>,
    elapsed: Duration,
    over_tls: bool,
) {
    let telemetry = netboot_records::telemetry();
    let kind = match decision {
        Ok(decision) => decision.kind(),
        Err(_) => "fallback",
    };
    telemetry.metrics.https.decisions.inc(kind);
    let ip = request.remote;
    if let Some(ip) = ip {
        telemetry.identities.remember(ip, request.mac, request.uuid);
    }
    if !telemetry.recorder.is_enabled() {
        return;
    }
    use netboot_records::{DecisionKind, DecisionRecord, Event, EventDetail, HttpsEntry};
    let entry = HttpsEntry {
        arch: Some(request.arch),
        hardware: request.hardware.clone(),
        ipxe_version: None,
        features: Vec::new(),
        tls: over_tls,
    };
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let record = match decision {
        Ok(decision) => DecisionRecord::from_decision(state.resolver.name(), decision, elapsed_ms),
        Err(cause) => DecisionRecord {
            resolver: state.resolver.name().to_string(),
            kind: DecisionKind::Fallback,
            entries: Vec::new(),
            choice: Some(cause.to_string()),
            duration_ms: elapsed_ms,
        },
    };
    let event = |detail| {
        Event::now(request.mac, detail)
            .with_uuid(request.uuid)
            .with_ip(ip)
    };
    telemetry.recorder.record(event(EventDetail::HttpsEntry(entry)));
    telemetry.recorder.record(event(EventDetail::Decision(record)));
}

/// Asks the resolver within the deadline and renders its answer, or the fallback.
async fn decide(state: &AppState, identity: ClientIdentity, peer: Peer, over_tls: bool) -> Response<Body> {
    let started = Instant::now();
    let mut request = match identity.to_request() {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(remote = %peer.0.ip(), error = %e, "unusable identity");
            // Retrying would send the same identity again, so this always exits.
            return script(&fallback_script(&e.to_string(), &Fallback::Exit));
        }
    };
    request.remote = Some(peer.0.ip());
    let uuid = request.uuid.map(|u| u.to_string()).unwrap_or_default();
    let outcome = netboot_runtime::resolve_with_deadline(&state.resolver, &request, state.deadline).await;
    let elapsed_us = started.elapsed().as_micros();
    match &outcome {
        Ok(decision) => record_decision(state, &request, Ok(decision), started.elapsed(), over_tls),
        Err(e) => record_decision(state, &request, Err(&e.to_string()), started.elapsed(), over_tls),
    }
    let rendered = match outcome {
        Ok(decision) => match decision_script_with_handoff(
            &decision,
            &request.mac,
            &state.render,
            per_boot(state, &decision, &request, peer, over_tls).as_ref(),
        ) {
            Ok(rendered) => {
                tracing::info!(
                    mac = %request.mac, uuid = %uuid, arch = %request.arch, remote = %peer.0.ip(),
                    decision = decision.kind(), resolver = state.resolver.name(), elapsed_us, "boot decision"
                );
                rendered
            }
            Err(e) => {
                tracing::error!(mac = %request.mac, uuid = %uuid, error = %e, "decision cannot be rendered safely");
                fallback_script(
                    "the boot entry for this machine is misconfigured",
                    &state.fallback,
                )
            }
        },
        Err(e) => {
            tracing::warn!(
                mac = %request.mac, uuid = %uuid, arch = %request.arch, remote = %peer.0.ip(),
                resolver = state.resolver.name(), error = %e, elapsed_us, "resolver failed, serving fallback"
            );
            fallback_script(&e.to_string(), &state.fallback)
        }
    };
    script(&rendered)
}

/// Per-boot URLs and boot images still being fetched, for one decision.
fn per_boot(
    state: &AppState,
    decision: &netboot_core::BootDecision,
    request: &netboot_core::BootRequest,
    peer: Peer,
    over_tls: bool,
) -> Option<netboot_ipxe::Handoff> {
    let handoff = state.handoff.prepare(
        decision,
        request.mac,
        peer.0.ip(),
        over_tls,
        std::time::SystemTime::now(),
    );
    let waiting = state
        .dp
        .as_ref()
        .map(|dp| dp.waiting(decision))
        .unwrap_or_default();
    if waiting.is_empty() {
        return handoff;
    }
    let mut handoff = handoff.unwrap_or_else(|| state.handoff.empty(over_tls));
    handoff.waiting = waiting;
    Some(handoff)
}

async fn handoff_file(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    Path((token, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let started = Instant::now();
    let over_tls = tls.is_some_and(|Extension(OverTls(tls))| tls);
    let response = state
        .handoff
        .serve(
            &token,
            &name,
            query.as_deref(),
            peer.0.ip(),
            over_tls,
            &method,
            &headers,
            std::time::SystemTime::now(),
        )
        .await;
    // Recorded without the token: it is a per-boot credential.
    let path = format!("{HANDOFF_PATH}/{name}");
    record_download(&peer, &method, &path, &headers, &response, started.elapsed());
    response
}

async fn static_file(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = files::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let started = Instant::now();
    let plain = files::serve(&state.roots, &method, uri.path(), &headers);
    let response = PeerDist::respond(
        state.peerdist.as_deref(),
        &state.roots,
        &method,
        uri.path(),
        &headers,
        plain,
    )
    .await;
    record_download(&peer, &method, uri.path(), &headers, &response, started.elapsed());
    tracing::info!(
        remote = %peer.0.ip(), method = %method, path = uri.path(), status = response.status().as_u16(),
        range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or(""),
        // iPXE built with PeerDist (BranchCache) asks for Content Information with this header.
        peerdist = headers.contains_key("x-p2p-peerdist"), "file"
    );
    response
}

/// Counts a file request and records a GET on the boot timeline of the machine that last
/// asked for a decision from this address. The duration is the time to the response headers;
/// the body streams afterwards.
fn record_download(
    peer: &Peer,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    response: &Response<Body>,
    elapsed: Duration,
) {
    let telemetry = netboot_records::telemetry();
    telemetry.metrics.https.requests.inc("file");
    telemetry.metrics.https.request_seconds.observe(elapsed);
    if method != Method::GET || !telemetry.recorder.is_enabled() {
        return;
    }
    let status = response.status();
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let download = netboot_records::ImageDownload {
        path: path.trim_start_matches('/').to_string(),
        bytes,
        range: headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        status: status.as_u16(),
        error: (status.is_client_error() || status.is_server_error())
            .then(|| status.canonical_reason().unwrap_or("error").to_string()),
        peerdist: response.extensions().get().cloned(),
    };
    let detail = netboot_records::EventDetail::ImageDownload(download);
    match telemetry.identities.lookup(peer.0.ip()) {
        Some((mac, uuid)) => telemetry.recorder.record(
            netboot_records::Event::now(mac, detail)
                .with_uuid(uuid)
                .with_ip(Some(peer.0.ip())),
        ),
        None => telemetry.recorder.record_for_address(peer.0.ip(), detail),
    }
}

fn script(script: &Script) -> Response<Body> {
    script_response(Bytes::from(script.render()))
}

fn script_response(body: Bytes) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("valid response")
}
