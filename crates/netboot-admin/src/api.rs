//! The JSON API (`/api/v1/...`), documented by [`crate::openapi`].

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use netboot_core::MacAddr;
use netboot_records::{ExportFormat, MachineQuery, Outcome, RequiredRun, RequiredRuns, Store, StoreError};
use serde::Deserialize;
use serde_json::json;

use crate::AdminState;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Recording is off or the database could not be opened.
    #[error("boot records are not available: {0}")]
    NoStore(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such machine.
    #[error("no records for {0}")]
    NotFound(MacAddr),
    /// A state-changing request from another site, or without its form token.
    #[error("{0}")]
    Forbidden(&'static str),
    /// `[resolver] required_once` is off.
    #[error("Required runs are not kept ([resolver] required_once = false)")]
    NoRequiredRuns,
    /// `[auth] method = "approval"` is not in use.
    #[error("boot consoles are not approved here ([auth] method = \"approval\" is off)")]
    NoApprovals,
    /// An approval could not be decided.
    #[error(transparent)]
    Approval(#[from] crate::approvals::ApprovalError),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NoStore(_) | Self::NoRequiredRuns | Self::NoApprovals => StatusCode::SERVICE_UNAVAILABLE,
            Self::Approval(crate::approvals::ApprovalError::Unknown(_)) => StatusCode::NOT_FOUND,
            Self::Approval(crate::approvals::ApprovalError::AlreadyDecided(..)) => StatusCode::CONFLICT,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "admin API request failed");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl AdminState {
    pub(crate) fn store(&self) -> Result<&Store, ApiError> {
        self.store
            .as_ref()
            .ok_or_else(|| ApiError::NoStore(self.store_problem.clone()))
    }
}

impl AdminState {
    pub(crate) fn required_runs(&self) -> Result<&RequiredRuns, ApiError> {
        self.required_runs.as_ref().ok_or(ApiError::NoRequiredRuns)
    }

    /// The UUID the boot records know for a machine (its runs may be recorded under it).
    async fn known_uuid(&self, mac: MacAddr) -> Result<Option<netboot_core::SmbiosUuid>, ApiError> {
        match &self.store {
            Some(store) => Ok(store.machine(mac).await?.and_then(|m| m.uuid)),
            None => Ok(None),
        }
    }
}

pub(crate) fn parse_mac(text: &str) -> Result<MacAddr, ApiError> {
    text.replace('-', ":")
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{text:?} is not a MAC address")))
}

/// `?q=&arch=&outcome=&limit=&offset=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MachinesParams {
    pub(crate) q: Option<String>,
    pub(crate) arch: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) limit: Option<u32>,
    pub(crate) offset: Option<u32>,
}

impl MachinesParams {
    pub(crate) fn query(&self) -> Result<MachineQuery, ApiError> {
        let outcome = match self.outcome.as_deref().filter(|o| !o.is_empty()) {
            Some(name) => Some(
                Outcome::from_name(name)
                    .ok_or_else(|| ApiError::BadRequest(format!("unknown outcome {name:?}")))?,
            ),
            None => None,
        };
        Ok(MachineQuery {
            search: self.q.clone().filter(|q| !q.trim().is_empty()),
            arch: self.arch.clone().filter(|a| !a.is_empty()),
            outcome,
            limit: self.limit.unwrap_or(100),
            offset: self.offset.unwrap_or(0),
        })
    }
}

pub(crate) async fn machines(
    State(state): State<AdminState>,
    Query(params): Query<MachinesParams>,
) -> Result<Response, ApiError> {
    let found = state.store()?.machines(&params.query()?).await?;
    Ok(Json(json!({ "machines": found })).into_response())
}

pub(crate) async fn machine(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let mac = parse_mac(&mac)?;
    let record = state
        .store()?
        .machine(mac)
        .await?
        .ok_or(ApiError::NotFound(mac))?;
    Ok(Json(record).into_response())
}

/// `?boots=`.
#[derive(Debug, Deserialize)]
pub(crate) struct TimelineParams {
    boots: Option<usize>,
}

pub(crate) async fn timeline(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
    Query(params): Query<TimelineParams>,
) -> Result<Response, ApiError> {
    let mac = parse_mac(&mac)?;
    let boots = state
        .store()?
        .timeline(mac, params.boots.unwrap_or(5).min(100))
        .await?;
    if boots.is_empty() {
        return Err(ApiError::NotFound(mac));
    }
    Ok(Json(json!({ "mac": mac, "boots": boots })).into_response())
}

pub(crate) async fn required_runs(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let mac = parse_mac(&mac)?;
    let runs = state.required_runs()?;
    let found = runs.runs_of(mac, state.known_uuid(mac).await?).await?;
    Ok(Json(json!({ "mac": mac, "runs": found })).into_response())
}

/// Clears a machine's Required runs (what the API and the page's button do); 404 when
/// neither the runs nor the boot records know the machine.
pub(crate) async fn clear_machine(
    state: &AdminState,
    mac: MacAddr,
    by: &str,
) -> Result<Vec<RequiredRun>, ApiError> {
    let runs = state.required_runs()?;
    let cleared = runs.clear_machine(mac, state.store.as_ref(), by).await?;
    if cleared.is_empty() {
        let known = match &state.store {
            Some(store) => store.machine(mac).await?.is_some(),
            None => false,
        };
        if !known {
            return Err(ApiError::NotFound(mac));
        }
    }
    Ok(cleared)
}

pub(crate) async fn clear_required(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if crate::forms::cross_site(&headers, &uri) {
        return Err(ApiError::Forbidden("cross-site request refused"));
    }
    let mac = parse_mac(&mac)?;
    let cleared = clear_machine(&state, mac, "the admin API").await?;
    Ok(Json(json!({ "mac": mac, "cleared": cleared })).into_response())
}

/// `?hours=&limit=`.
#[derive(Debug, Deserialize)]
pub(crate) struct FailuresParams {
    hours: Option<u32>,
    limit: Option<u32>,
}

pub(crate) async fn failures(
    State(state): State<AdminState>,
    Query(params): Query<FailuresParams>,
) -> Result<Response, ApiError> {
    let since = Utc::now() - Duration::hours(i64::from(params.hours.unwrap_or(24 * 7)));
    let found = state
        .store()?
        .failures(since, params.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "failures": found })).into_response())
}

/// `?days=`.
#[derive(Debug, Deserialize)]
pub(crate) struct DaysParams {
    days: Option<u32>,
}

impl DaysParams {
    fn days(&self) -> u32 {
        self.days.unwrap_or(30).clamp(1, 3660)
    }
}

pub(crate) async fn boots_per_day(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Response, ApiError> {
    let days = state.store()?.boots_per_day(Utc::now(), params.days()).await?;
    Ok(Json(json!({ "days": days })).into_response())
}

pub(crate) async fn architectures(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Response, ApiError> {
    let since = Utc::now() - Duration::days(i64::from(params.days()));
    let counts = state.store()?.boots_per_arch(since).await?;
    Ok(Json(json!({ "architectures": counts })).into_response())
}

pub(crate) async fn outcomes(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Response, ApiError> {
    let since = Utc::now() - Duration::days(i64::from(params.days()));
    let counts = state.store()?.outcomes(since).await?;
    Ok(Json(json!({ "outcomes": counts })).into_response())
}

pub(crate) async fn status(State(state): State<AdminState>) -> Response {
    let backend = state.store.as_ref().map(Store::backend_name);
    Json(json!({
        "records": {
            "enabled": state.recorder.is_enabled(),
            "backend": backend,
            "problem": state.store.is_none().then_some(&state.store_problem),
            "queue": state.recorder.stats(),
        }
    }))
    .into_response()
}

/// `?format=csv|json`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
}

/// Streams every stored event page by page; memory stays bounded however large the table.
pub(crate) async fn export(
    State(state): State<AdminState>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let format = match params.format.as_deref().unwrap_or("json") {
        "csv" => ExportFormat::Csv,
        "json" => ExportFormat::Json,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown export format {other:?} (csv or json)"
            )))
        }
    };
    let store = state.store()?.clone();
    let pages = futures::stream::unfold(Some((0_i64, true, false)), move |cursor| {
        let store = store.clone();
        async move {
            let (after, first, ended) = cursor?;
            if ended {
                return None;
            }
            let mut chunk = if first {
                format.begin().to_string()
            } else {
                String::new()
            };
            match store.events_after(after, 1000).await {
                Ok(page) if page.is_empty() => {
                    chunk.push_str(format.end());
                    Some((Ok::<_, std::io::Error>(chunk), Some((after, false, true))))
                }
                Ok(page) => {
                    let last = page.last().map_or(after, |e| e.id);
                    for (i, event) in page.iter().enumerate() {
                        chunk.push_str(&format.row(event, first && i == 0));
                    }
                    Some((Ok(chunk), Some((last, false, false))))
                }
                // The status line is already sent; ending the body early marks the export
                // incomplete (the JSON will not parse, the CSV lacks its tail).
                Err(error) => Some((Err(std::io::Error::other(error)), None)),
            }
        }
    });
    let extension = if format == ExportFormat::Csv {
        "csv"
    } else {
        "json"
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"boot-events.{extension}\""),
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}
