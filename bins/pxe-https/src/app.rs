//! The HTTP routes: entry script, boot decision, health check and static files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Extension, Router};
use netboot_core::{BootRequest, BootResolver, ResolveError};
use netboot_ipxe::{
    decision_script_with_handoff, fallback_script, ClientIdentity, Fallback, RenderOptions, Script,
};
use netboot_records::{
    DecisionRecord, Event, EventDetail, HttpsEntry, ImageDownload, LoginOutcome, LoginRecord, Telemetry,
};
use netboot_resolver::Explained;

use crate::auth::{self, AuthGate, LoginForm, Step, Verdict};
use crate::auth_approval::{self, ApprovalPoll, Approvals};
use crate::files::{self, Roots};
use crate::handoff::{HandoffState, HANDOFF_PATH};
use crate::peerdist::PeerDist;
use crate::required::{self, RequiredOnceService};

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
    /// Required entries boot by themselves once (`[resolver] required_once`).
    pub required: Option<Arc<RequiredOnceService>>,
    /// Where requests are counted and boots recorded.
    pub telemetry: Telemetry,
    /// Logins at the boot console, when `[auth]` is enabled.
    pub auth: Option<Arc<AuthGate>>,
    /// Consoles waiting for an operator, when `[auth] method = "approval"`.
    pub approvals: Option<Arc<Approvals>>,
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(ENTRY_PATH, get(entry))
        .route(DECIDE_PATH, get(decide_query).post(decide_form))
        .route(auth::LOGIN_PATH, post(login_form))
        .route(auth_approval::APPROVAL_PATH, post(approval_form))
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
    state.telemetry.metrics.https.requests.inc("entry");
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
    decide_measured(&state, identity, peer, tls, None, None).await
}

async fn decide_form(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    match read_form(&headers, body).await {
        Ok(body) => decide_measured(&state, ClientIdentity::parse_form(&body), peer, tls, None, None).await,
        Err(response) => response,
    }
}

/// `POST /boot.ipxe/login`: the login form's user name, password and attempt with the
/// machine's identity (see [`crate::auth`]). The body is never logged.
async fn login_form(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    state.telemetry.metrics.https.requests.inc("login");
    let body = match read_form(&headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let login = LoginForm::parse(&body);
    decide_measured(
        &state,
        ClientIdentity::parse_form(&body),
        peer,
        tls,
        Some(login),
        None,
    )
    .await
}

/// `POST /boot.ipxe/approval`: a console waiting for approval, with its code and identity
/// (see [`crate::auth_approval`]).
async fn approval_form(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    state.telemetry.metrics.https.requests.inc("approval");
    let body = match read_form(&headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let poll = ApprovalPoll::parse(&body);
    decide_measured(
        &state,
        ClientIdentity::parse_form(&body),
        peer,
        tls,
        None,
        Some(poll),
    )
    .await
}

/// The body of a `params` form, or the answer refusing it.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<Bytes, Response<Body>> {
    // Refuse a declared-too-large body before touching it: the body is then never polled, so
    // no `100 Continue` goes out and the client reliably reads the 413 instead of having its
    // upload reset when the connection closes with unread data.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_FORM_BODY as u64) {
        return Err(payload_too_large());
    }
    axum::body::to_bytes(body, MAX_FORM_BODY)
        .await
        .map_err(|_| payload_too_large())
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
    login: Option<LoginForm>,
    poll: Option<ApprovalPoll>,
) -> Response<Body> {
    let telemetry = &state.telemetry;
    telemetry.metrics.https.requests.inc("decide");
    let started = Instant::now();
    let over_tls = tls.is_some_and(|Extension(OverTls(tls))| tls);
    let response = decide(state, identity, peer, over_tls, login.as_ref(), poll.as_ref()).await;
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
    let telemetry = &state.telemetry;
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
    let record = DecisionRecord::served(state.resolver.name(), decision, elapsed);
    let event = |detail| {
        Event::now(request.mac, detail)
            .with_uuid(request.uuid)
            .with_ip(ip)
    };
    let entry = HttpsEntry::from_request(request, over_tls);
    telemetry.recorder.record(event(EventDetail::HttpsEntry(entry)));
    telemetry.recorder.record(event(EventDetail::Decision(record)));
}

/// The decision, through the Required-once layer when it is on.
async fn resolve(state: &AppState, request: &BootRequest) -> Result<Explained, ResolveError> {
    match &state.required {
        Some(required) => required.resolve(request).await,
        None => Ok(Explained {
            decision: state.resolver.resolve(request).await?,
            demotions: Vec::new(),
        }),
    }
}

/// What the login gate makes of a decision: render it (with the login token, when there is
/// one), or answer the login form, a refusal or the way to the next boot device instead.
async fn login_step(
    state: &AppState,
    decision: &netboot_core::BootDecision,
    request: &BootRequest,
    peer: Peer,
    over_tls: bool,
    login: Option<&LoginForm>,
    poll: Option<&ApprovalPoll>,
) -> Result<Option<String>, Script> {
    let Some(gate) = &state.auth else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now();
    if let Some(approvals) = &state.approvals {
        // Consoles are approved, not logged in: a login form POSTed anyway is not checked.
        return match approvals.step(gate, decision, request, over_tls, poll, now) {
            Step::Open => Ok(None),
            Step::Granted(token) => Ok(Some(token)),
            Step::Answer(script) => Err(script),
        };
    }
    let (step, verdict) = gate
        .step(decision, request.mac, peer.0.ip(), over_tls, login, now)
        .await;
    if let Some((user, verdict)) = verdict {
        let (outcome, reason) = match verdict {
            Verdict::Accepted(_) => (LoginOutcome::Accepted, None),
            Verdict::Refused(reason) => (LoginOutcome::Refused, Some(reason.to_string())),
            Verdict::Unavailable(error) => (LoginOutcome::Unavailable, Some(error)),
            Verdict::Locked(secs) => (
                LoginOutcome::Locked,
                Some(format!("too many failures, locked for {secs} more seconds")),
            ),
        };
        let record = LoginRecord {
            user: auth::display_user(&user),
            outcome,
            reason,
        };
        state.telemetry.recorder.record(
            Event::now(request.mac, EventDetail::Login(record))
                .with_uuid(request.uuid)
                .with_ip(Some(peer.0.ip())),
        );
    }
    match step {
        Step::Open => Ok(None),
        Step::Granted(token) => Ok(Some(token)),
        Step::Answer(script) => Err(script),
    }
}

/// Asks the resolver within the deadline and renders its answer, or the fallback; through
/// the login gate when `[auth]` is on (`login` holds a submitted login form).
async fn decide(
    state: &AppState,
    identity: ClientIdentity,
    peer: Peer,
    over_tls: bool,
    login: Option<&LoginForm>,
    poll: Option<&ApprovalPoll>,
) -> Response<Body> {
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
    let outcome = tokio::time::timeout(state.deadline, resolve(state, &request))
        .await
        .unwrap_or(Err(ResolveError::Timeout(state.deadline)));
    let elapsed_us = started.elapsed().as_micros();
    // Names this failure in the log and the records, so what the console shows can be traced.
    let incident = incident_id();
    match &outcome {
        Ok(explained) => {
            record_decision(
                state,
                &request,
                Ok(&explained.decision),
                started.elapsed(),
                over_tls,
            );
            for demotion in &explained.demotions {
                let reason = match demotion {
                    netboot_resolver::Demotion::Ran { .. } => "the machine ran it",
                    netboot_resolver::Demotion::LedgerUnavailable { .. } => "its runs could not be read",
                };
                tracing::info!(mac = %request.mac, deployment = demotion.deployment(), reason, "Required entry offered as Available");
            }
            required::demotion_events(&request, &explained.demotions)
                .into_iter()
                .for_each(|event| state.telemetry.recorder.record(event));
        }
        Err(e) => record_decision(
            state,
            &request,
            Err(&format!("{e} (incident {incident})")),
            started.elapsed(),
            over_tls,
        ),
    }
    let rendered = match outcome {
        Ok(Explained { decision, .. }) => {
            let token = match login_step(state, &decision, &request, peer, over_tls, login, poll).await {
                Ok(token) => token,
                Err(answer) => return script(&answer),
            };
            let per_boot = per_boot(state, &decision, &request, peer, over_tls, token);
            match decision_script_with_handoff(&decision, &request.mac, &state.render, per_boot.as_ref()) {
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
            }
        }
        Err(e) => {
            tracing::warn!(
                mac = %request.mac, uuid = %uuid, arch = %request.arch, remote = %peer.0.ip(),
                resolver = state.resolver.name(), error = %e, incident, elapsed_us, "resolver failed, serving fallback"
            );
            fallback_script(
                &format!("{} (incident {incident})", e.client_summary()),
                &state.fallback,
            )
        }
    };
    script(&rendered)
}

/// A short random name for one failed decision, shown on the console and logged with the
/// detail the console does not get.
fn incident_id() -> String {
    let mut bytes = [0u8; 4];
    // Without randomness the id only has to be unlikely to repeat soon: the clock will do.
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
            .to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Per-boot URLs, boot images still being fetched and the marks of Required boot images (see
/// [`crate::required`]), for one decision.
fn per_boot(
    state: &AppState,
    decision: &netboot_core::BootDecision,
    request: &netboot_core::BootRequest,
    peer: Peer,
    over_tls: bool,
    auth_token: Option<String>,
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
    let marks = match &state.required {
        Some(required) => required.mark(decision, request, peer.0.ip(), &state.render.files_base, &waiting),
        None => Default::default(),
    };
    if waiting.is_empty() && marks.is_empty() && auth_token.is_none() {
        return handoff;
    }
    let mut handoff = handoff.unwrap_or_else(|| state.handoff.empty(over_tls));
    handoff.waiting = waiting;
    handoff.marks = marks;
    handoff.auth = auth_token;
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
    record_download(
        &state.telemetry,
        &peer,
        &method,
        &path,
        &headers,
        &response,
        started.elapsed(),
    );
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
    if let Some(gate) = state.auth.as_ref().filter(|gate| gate.is_protected(uri.path())) {
        if let Err(refusal) = gate.check_file(uri.query(), peer.0.ip(), std::time::SystemTime::now()) {
            // The query is not logged: it holds the token.
            tracing::warn!(remote = %peer.0.ip(), path = uri.path(), reason = %refusal, "protected file refused");
            let response = files::plain(
                StatusCode::FORBIDDEN,
                "this file needs a login at the boot console\n",
            );
            record_download(
                &state.telemetry,
                &peer,
                &method,
                uri.path(),
                &headers,
                &response,
                started.elapsed(),
            );
            return response;
        }
    }
    // A Required entry's marked boot image is always sent whole, never as PeerDist Content
    // Information: its complete download must be seen here (see `crate::required`).
    let peerdist = state
        .peerdist
        .as_deref()
        .filter(|_| !(state.required.is_some() && required::is_marked(uri.query())));
    let plain = files::serve(&state.roots, &method, uri.path(), &headers);
    let response = PeerDist::respond(
        peerdist,
        &state.roots,
        &method,
        uri.path(),
        &headers,
        peer.0.ip(),
        plain,
    )
    .await;
    record_download(
        &state.telemetry,
        &peer,
        &method,
        uri.path(),
        &headers,
        &response,
        started.elapsed(),
    );
    let response = match &state.required {
        Some(required) if method == Method::GET => {
            required.watch(uri.query(), peer.0.ip(), uri.path(), response)
        }
        _ => response,
    };
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
    telemetry: &Telemetry,
    peer: &Peer,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    response: &Response<Body>,
    elapsed: Duration,
) {
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
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let mut download = ImageDownload::served(
        path,
        status.as_u16(),
        status.canonical_reason(),
        bytes,
        range,
        elapsed,
    );
    download.peerdist = response.extensions().get().cloned();
    let detail = EventDetail::ImageDownload(download);
    match telemetry.identities.lookup(peer.0.ip()) {
        Some((mac, uuid)) => telemetry
            .recorder
            .record(Event::now(mac, detail).with_uuid(uuid).with_ip(Some(peer.0.ip()))),
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
