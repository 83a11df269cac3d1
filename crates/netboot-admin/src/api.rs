//! The JSON API (`/api/v1/...`). Each handler's `#[utoipa::path]` and the types it returns
//! are its part of the OpenAPI document ([`crate::openapi`]).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use netboot_core::MacAddr;
use netboot_records::{
    BootJourney, Count, DayCount, ExportFormat, Machine, MachineQuery, Outcome, RequiredRun, RequiredRuns,
    StatsSnapshot, Store, StoreError, StoredEvent,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::openapi::{RecordsErrors, RequiredRunsErrors};
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
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// What a failed request answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Why, in words.
    pub(crate) error: String,
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

/// `{mac}` in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct MacPath {
    /// MAC address, `52:54:00:12:34:56` or `52-54-00-12-34-56`.
    mac: String,
}

/// `?q=&arch=&outcome=&limit=&offset=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MachinesParams {
    /// Search: MAC (any notation), UUID, or part of serial, asset tag, manufacturer, product.
    pub(crate) q: Option<String>,
    /// Only machines that reported this architecture (`x64-uefi`, `bios`, ...).
    pub(crate) arch: Option<String>,
    /// Only machines whose latest boot ended so.
    #[param(value_type = Option<Outcome>)]
    pub(crate) outcome: Option<String>,
    /// At most this many (default 100, max 1000).
    pub(crate) limit: Option<u32>,
    /// Skip this many.
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

/// The machines found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MachineList {
    machines: Vec<Machine>,
}

/// List machines, most recently seen first.
#[utoipa::path(get, path = "/api/v1/machines", params(MachinesParams),
    responses((status = 200, body = MachineList), RecordsErrors))]
pub(crate) async fn machines(
    State(state): State<AdminState>,
    Query(params): Query<MachinesParams>,
) -> Result<Json<MachineList>, ApiError> {
    let machines = state.store()?.machines(&params.query()?).await?;
    Ok(Json(MachineList { machines }))
}

/// One machine's record.
#[utoipa::path(get, path = "/api/v1/machines/{mac}", params(MacPath),
    responses((status = 200, body = Machine), RecordsErrors,
        (status = 404, description = "No boot records of this machine", body = ErrorBody)))]
pub(crate) async fn machine(
    State(state): State<AdminState>,
    Path(MacPath { mac }): Path<MacPath>,
) -> Result<Json<Machine>, ApiError> {
    let mac = parse_mac(&mac)?;
    let record = state
        .store()?
        .machine(mac)
        .await?
        .ok_or(ApiError::NotFound(mac))?;
    Ok(Json(record))
}

/// `?boots=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimelineParams {
    /// How many boots (default 5, at most 100).
    boots: Option<usize>,
}

/// A machine's latest boots.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Timeline {
    mac: MacAddr,
    /// Newest first, each with its events oldest first.
    boots: Vec<BootJourney>,
}

/// A machine's latest boots, newest first, each with its events oldest first.
#[utoipa::path(get, path = "/api/v1/machines/{mac}/timeline", params(MacPath, TimelineParams),
    responses((status = 200, body = Timeline), RecordsErrors,
        (status = 404, description = "No boot records of this machine", body = ErrorBody)))]
pub(crate) async fn timeline(
    State(state): State<AdminState>,
    Path(MacPath { mac }): Path<MacPath>,
    Query(params): Query<TimelineParams>,
) -> Result<Json<Timeline>, ApiError> {
    let mac = parse_mac(&mac)?;
    let boots = state
        .store()?
        .timeline(mac, params.boots.unwrap_or(5).min(100))
        .await?;
    if boots.is_empty() {
        return Err(ApiError::NotFound(mac));
    }
    Ok(Json(Timeline { mac, boots }))
}

/// The Required deployments a machine ran.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MachineRuns {
    mac: MacAddr,
    runs: Vec<RequiredRun>,
}

/// The Required deployments a machine ran.
///
/// Under its MAC or its UUID; each is offered as Available until cleared.
#[utoipa::path(get, path = "/api/v1/machines/{mac}/required-runs", params(MacPath),
    responses((status = 200, body = MachineRuns), RequiredRunsErrors))]
pub(crate) async fn required_runs(
    State(state): State<AdminState>,
    Path(MacPath { mac }): Path<MacPath>,
) -> Result<Json<MachineRuns>, ApiError> {
    let mac = parse_mac(&mac)?;
    let ledger = state.required_runs()?;
    let runs = ledger.runs_of(mac, state.known_uuid(mac).await?).await?;
    Ok(Json(MachineRuns { mac, runs }))
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

/// The Required runs a clear removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClearedRuns {
    mac: MacAddr,
    /// Possibly none, for a machine the boot records know.
    cleared: Vec<RequiredRun>,
}

/// Clear the Required deployments a machine ran, so they boot by themselves again.
///
/// As ConfigMgr's Clear Required PXE Deployments; the clear appears on its timeline.
#[utoipa::path(post, path = "/api/v1/machines/{mac}/clear-required", params(MacPath),
    responses(
        (status = 200, body = ClearedRuns),
        RequiredRunsErrors,
        (status = 403, description = "Sent by a page of another site (Origin or Sec-Fetch-Site)", body = ErrorBody),
        (status = 404, description = "Neither runs nor boot records of this machine", body = ErrorBody),
    ))]
pub(crate) async fn clear_required(
    State(state): State<AdminState>,
    Path(MacPath { mac }): Path<MacPath>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ClearedRuns>, ApiError> {
    if crate::forms::cross_site(&headers, &uri) {
        return Err(ApiError::Forbidden("cross-site request refused"));
    }
    let mac = parse_mac(&mac)?;
    let cleared = clear_machine(&state, mac, "the admin API").await?;
    Ok(Json(ClearedRuns { mac, cleared }))
}

/// `?hours=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FailuresParams {
    /// Hours back (default 168).
    hours: Option<u32>,
    /// At most this many (default 100).
    limit: Option<u32>,
}

/// Failed steps, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Failures {
    failures: Vec<StoredEvent>,
}

/// Failed steps, newest first.
#[utoipa::path(get, path = "/api/v1/failures", params(FailuresParams),
    responses((status = 200, body = Failures), RecordsErrors))]
pub(crate) async fn failures(
    State(state): State<AdminState>,
    Query(params): Query<FailuresParams>,
) -> Result<Json<Failures>, ApiError> {
    let since = Utc::now() - Duration::hours(i64::from(params.hours.unwrap_or(24 * 7)));
    let failures = state
        .store()?
        .failures(since, params.limit.unwrap_or(100))
        .await?;
    Ok(Json(Failures { failures }))
}

/// `?days=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DaysParams {
    /// Days back from today (default 30).
    days: Option<u32>,
}

impl DaysParams {
    fn days(&self) -> u32 {
        self.days.unwrap_or(30).clamp(1, 3660)
    }
}

/// Boots begun per UTC day.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BootsPerDay {
    /// Oldest first, zero days included.
    days: Vec<DayCount>,
}

/// Boots begun per UTC day, zero days included.
#[utoipa::path(get, path = "/api/v1/stats/boots-per-day", params(DaysParams),
    responses((status = 200, body = BootsPerDay), RecordsErrors))]
pub(crate) async fn boots_per_day(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Json<BootsPerDay>, ApiError> {
    let days = state.store()?.boots_per_day(Utc::now(), params.days()).await?;
    Ok(Json(BootsPerDay { days }))
}

/// Boots begun per client architecture.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Architectures {
    architectures: Vec<Count>,
}

/// Boots begun per client architecture.
#[utoipa::path(get, path = "/api/v1/stats/architectures", params(DaysParams),
    responses((status = 200, body = Architectures), RecordsErrors))]
pub(crate) async fn architectures(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Json<Architectures>, ApiError> {
    let since = Utc::now() - Duration::days(i64::from(params.days()));
    let architectures = state.store()?.boots_per_arch(since).await?;
    Ok(Json(Architectures { architectures }))
}

/// Machines seen, by outcome of their latest boot.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Outcomes {
    outcomes: Vec<Count>,
}

/// Machines seen, by outcome of their latest boot.
#[utoipa::path(get, path = "/api/v1/stats/outcomes", params(DaysParams),
    responses((status = 200, body = Outcomes), RecordsErrors))]
pub(crate) async fn outcomes(
    State(state): State<AdminState>,
    Query(params): Query<DaysParams>,
) -> Result<Json<Outcomes>, ApiError> {
    let since = Utc::now() - Duration::days(i64::from(params.days()));
    let outcomes = state.store()?.outcomes(since).await?;
    Ok(Json(Outcomes { outcomes }))
}

/// The recording pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    records: RecordsStatus,
}

/// Where the boot records go and how the queue in front of them fares.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordsStatus {
    /// Whether events are recorded.
    enabled: bool,
    /// `sqlite` or `postgres`; none when the database is not open.
    backend: Option<String>,
    /// Why the database is not open.
    problem: Option<String>,
    queue: StatsSnapshot,
}

/// Recording pipeline: backend, queue depth, written and dropped events.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, body = Status)))]
pub(crate) async fn status(State(state): State<AdminState>) -> Json<Status> {
    Json(Status {
        records: RecordsStatus {
            enabled: state.recorder.is_enabled(),
            backend: state.store.as_ref().map(|s| s.backend_name().to_owned()),
            problem: state.store.is_none().then(|| state.store_problem.clone()),
            queue: state.recorder.stats(),
        },
    })
}

/// `?format=csv|json`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

/// Every stored event, streamed.
///
/// Page by page: memory stays bounded however large the table.
#[utoipa::path(get, path = "/api/v1/export", params(ExportParams), responses(
    (status = 200, description = "Every stored event, oldest first", content(
        (Vec<StoredEvent> = "application/json"),
        (String = "text/csv"),
    )),
    RecordsErrors,
))]
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
