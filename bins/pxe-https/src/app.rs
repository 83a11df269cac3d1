//! The HTTP routes: entry script, boot decision, health check and static files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::get;
use axum::{Extension, Router};
use netboot_core::BootResolver;
use netboot_ipxe::{decision_script, fallback_script, ClientIdentity, Fallback, RenderOptions, Script};

use crate::files::{self, Roots};

/// Path of the entry script the proxyDHCP hands to iPXE.
pub const ENTRY_PATH: &str = "/boot.ipxe";
/// Path of the decision endpoint the entry script calls.
pub const DECIDE_PATH: &str = "/boot.ipxe/decide";
/// Largest accepted `params` form body. Each value is capped far below this anyway.
const MAX_FORM_BODY: usize = 16 * 1024;

/// The address of the client on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

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
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(ENTRY_PATH, get(entry))
        .route(DECIDE_PATH, get(decide_query).post(decide_form))
        .fallback(static_file)
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn entry(State(state): State<Arc<AppState>>, Extension(peer): Extension<Peer>) -> Response<Body> {
    tracing::info!(remote = %peer.0.ip(), "entry script");
    script_response(state.entry.clone())
}

async fn decide_query(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let identity = ClientIdentity::parse_form(query.as_deref().unwrap_or("").as_bytes());
    decide(&state, identity, peer).await
}

async fn decide_form(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    body: Bytes,
) -> Response<Body> {
    decide(&state, ClientIdentity::parse_form(&body), peer).await
}

/// Asks the resolver within the deadline and renders its answer, or the fallback.
async fn decide(state: &AppState, identity: ClientIdentity, peer: Peer) -> Response<Body> {
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
    let rendered = match outcome {
        Ok(decision) => match decision_script(&decision, &request.mac, &state.render) {
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
    let response = files::serve(&state.roots, &method, uri.path(), &headers).await;
    tracing::info!(
        remote = %peer.0.ip(), method = %method, path = uri.path(), status = response.status().as_u16(),
        range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or(""), "file"
    );
    response
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
