//! The administration interface of the boot records: a web page, a JSON API and Prometheus
//! metrics, as one axum [`Router`].
//!
//! * `{base}/`: machines (search, filters), charts of boots per day and outcome shares,
//!   recent failures. Server-rendered HTML with inline SVG: no script, no CDN, works offline.
//! * `{base}/machines/{mac}`: one machine's capabilities and boot timelines
//!   (DHCP → TFTP → HTTPS → image, with durations and where it stopped).
//! * `{base}/api/v1/...`: the JSON API, described by `{base}/api/openapi.json`.
//! * `{base}/api/v1/machines/{mac}/clear-required` (POST) and the button on the machine page:
//!   clear the Required deployments a machine ran, so they boot by themselves again.
//! * `{base}/api/v1/approvals` and the index page's "Pending approvals" card: boot consoles
//!   waiting for an operator (`[auth] method = "approval"`), approved or denied by POST.
//! * `{base}/metrics`: Prometheus text exposition of every service's counters and the
//!   records queue.
//!
//! The pages and their SVG charts are [`maud`] templates: checked when the crate compiles,
//! every inserted value escaped, nothing to ship beside the binary. Kept by hand: the
//! percent-encoding of the MAC addresses and approval codes in links (maud escapes HTML,
//! not URL components).
//!
//! Every route needs the configured bearer token or basic-auth user (`/metrics` can be made
//! public). Failed logins are logged and, after a few, the client address is answered `429`
//! for a while (see [`FREE_FAILURES`]); the router finds the address in the request's
//! [`axum::extract::ConnectInfo`]. Mount it on a TLS listener (`pxe-https` does) or on
//! loopback.
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<netboot_config::Config>) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let metrics = Arc::new(netboot_records::Metrics::default());
//! let (recorder, _writer) = netboot_records::Recorder::from_config(&config);
//! let state = netboot_admin::AdminState::open(&config, recorder, metrics).await?;
//! let app: axum::Router = netboot_admin::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9180").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod api;
mod approvals;
mod auth;
mod forms;
mod html;
mod openapi;
mod pages;
mod peerdist;
mod svg;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use netboot_config::Config;
use netboot_records::{Metrics, Recorder, RequiredRuns, Store};

pub use approvals::{ApprovalDecision, ApprovalDesk, ApprovalError, PendingApproval, SharedApprovalDesk};
pub use auth::{Credentials, CredentialsError, FIRST_LOCKOUT, FREE_FAILURES, MAX_LOCKOUT};
pub use openapi::openapi_document;

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    store: Option<Store>,
    store_problem: String,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    credentials: Arc<Credentials>,
    form_key: forms::FormKey,
    base: Arc<str>,
    /// The Required runs, when `[resolver] required_once` is on.
    required_runs: Option<RequiredRuns>,
    /// The boot consoles waiting for approval, when `[auth] method = "approval"`.
    approvals: Option<SharedApprovalDesk>,
}

impl AdminState {
    /// State over an open store (or none, when recording is off), served under `base`
    /// (`/admin`, or `""` for the root).
    #[must_use]
    pub fn new(
        store: Option<Store>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        credentials: Credentials,
        base: &str,
    ) -> Self {
        Self {
            store_problem: if store.is_some() {
                String::new()
            } else {
                "records are disabled ([records] enabled = false)".into()
            },
            store,
            recorder,
            metrics,
            form_key: credentials.form_key(),
            credentials: Arc::new(credentials),
            base: base.trim_end_matches('/').into(),
            required_runs: None,
            approvals: None,
        }
    }

    /// Adds the Required runs: the machine page lists them with a button to clear them, and
    /// the API gains `/machines/{mac}/required-runs` and `/machines/{mac}/clear-required`.
    #[must_use]
    pub fn with_required_runs(mut self, runs: Option<RequiredRuns>) -> Self {
        self.required_runs = runs;
        self
    }

    /// Adds the boot consoles waiting for approval: the index page lists them with Approve
    /// and Deny buttons, and the API gains `/approvals`.
    #[must_use]
    pub fn with_approvals(mut self, approvals: Option<SharedApprovalDesk>) -> Self {
        self.approvals = approvals;
        self
    }

    /// State from `[admin]` and `[records]`. An unreachable records database does not fail
    /// this (the page says so, metrics still work); missing credentials do.
    pub async fn open(
        config: &Config,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CredentialsError> {
        let credentials = Credentials::from_config(config)?;
        let mut state = Self::new(None, recorder, metrics, credentials, &config.admin.path);
        if config.records.enabled {
            match Store::open_config(config).await {
                Ok(store) => state.store = Some(store),
                Err(error) => {
                    tracing::warn!(%error, "admin: boot records database unavailable");
                    state.store_problem = error.to_string();
                }
            }
        }
        Ok(state)
    }

    /// The URL prefix.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The admin routes under `state.base()`, with authentication and security headers.
pub fn router(state: AdminState) -> Router {
    let base = state.base.to_string();
    let at = |path: &str| format!("{base}{path}");
    let protected = Router::new()
        .route(&at("/"), get(pages::index))
        .route(&at("/machines/{mac}"), get(pages::machine))
        .route(&at("/machines/{mac}/clear-required"), post(pages::clear_required))
        .route(&at("/approvals/{code}/approve"), post(approvals::approve_page))
        .route(&at("/approvals/{code}/deny"), post(approvals::deny_page))
        .route(&at("/api/v1/approvals"), get(approvals::list))
        .route(&at("/api/v1/approvals/{code}/approve"), post(approvals::approve))
        .route(&at("/api/v1/approvals/{code}/deny"), post(approvals::deny))
        .route(&at("/api/v1/machines"), get(api::machines))
        .route(&at("/api/v1/machines/{mac}"), get(api::machine))
        .route(&at("/api/v1/machines/{mac}/timeline"), get(api::timeline))
        .route(
            &at("/api/v1/machines/{mac}/required-runs"),
            get(api::required_runs),
        )
        .route(
            &at("/api/v1/machines/{mac}/clear-required"),
            post(api::clear_required),
        )
        .route(&at("/api/v1/failures"), get(api::failures))
        .route(&at("/api/v1/stats/boots-per-day"), get(api::boots_per_day))
        .route(&at("/api/v1/stats/architectures"), get(api::architectures))
        .route(&at("/api/v1/stats/outcomes"), get(api::outcomes))
        .route(&at("/api/v1/status"), get(api::status))
        .route(&at("/api/v1/export"), get(api::export))
        .route(&at("/api/openapi.json"), get(openapi::serve));
    let protected = if base.is_empty() {
        protected
    } else {
        protected.route(&base, get(pages::redirect_to_index))
    };
    let metrics = Router::new().route(&at("/metrics"), get(metrics));
    let credentials = Arc::clone(&state.credentials);
    let guard = axum::middleware::from_fn_with_state(Arc::clone(&credentials), auth::require);
    let protected = if credentials.metrics_public {
        protected
    } else {
        protected.merge(metrics.clone())
    };
    let mut app = protected.route_layer(guard);
    if credentials.metrics_public {
        app = app.merge(metrics);
    }
    app.layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn metrics(axum::extract::State(state): axum::extract::State<AdminState>) -> Response {
    let records = state.recorder.is_enabled().then(|| state.recorder.stats());
    let text = state.metrics.render(records.as_ref());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The pages hold client-supplied text (SMBIOS strings): forbid scripts and framing outright.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Serves the admin router on `listener` until `shutdown` resolves, passing each
/// connection's address to the router (failed logins are counted per client address).
///
/// This has no connection limits or timeouts of its own: `pxe-https` serves its admin
/// listener with the ones of its other listeners instead.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
