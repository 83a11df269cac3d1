//! Boot consoles waiting for an operator's approval (`[auth] method = "approval"`): the
//! "Pending approvals" card of the index page, its Approve and Deny buttons, and
//! `/api/v1/approvals`.
//!
//! The consoles wait in the HTTPS service, which hands its table over as an
//! [`ApprovalDesk`]; this crate only lists and decides.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use netboot_core::MacAddr;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiError;
use crate::auth::Operator;
use crate::html::url_encode;
use crate::openapi::DecisionErrors;
use crate::pages::{machine_href, text, PageError};
use crate::AdminState;

/// A boot console waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PendingApproval {
    /// The code the console shows.
    pub code: String,
    /// The MAC the machine boots from.
    pub mac: MacAddr,
    /// The address it asked from.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// What the machine reported about itself (manufacturer, product, serial), if anything.
    pub machine: Option<String>,
    /// When the console first showed the code.
    pub requested: DateTime<Utc>,
    /// When the code stops being accepted.
    pub expires: DateTime<Utc>,
}

/// An operator's answer to a waiting console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Let it boot.
    Approve,
    /// Send it to its next boot device.
    Deny,
}

impl ApprovalDecision {
    /// `approve` or `deny`, as in the URLs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }

    /// `approved` or `denied`.
    #[must_use]
    pub fn past_tense(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Deny => "denied",
        }
    }
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// No console waits with this code (never shown, expired, or already picked up).
    #[error("no console is waiting with code {0:?}")]
    Unknown(String),
    /// Someone decided already.
    #[error("code {0} was already {1}")]
    AlreadyDecided(String, &'static str),
}

/// The consoles waiting for approval, as the HTTPS service keeps them.
pub trait ApprovalDesk: Send + Sync + std::fmt::Debug {
    /// The consoles still waiting for a decision, oldest first.
    fn pending(&self) -> Vec<PendingApproval>;

    /// Approves or denies the console showing `code` (any letter case), recording
    /// `operator` with the decision on the machine's timeline.
    fn decide(
        &self,
        code: &str,
        decision: ApprovalDecision,
        operator: &str,
    ) -> Result<PendingApproval, ApprovalError>;
}

/// The handle [`AdminState::with_approvals`] takes.
pub type SharedApprovalDesk = Arc<dyn ApprovalDesk>;

impl AdminState {
    pub(crate) fn approvals(&self) -> Result<&SharedApprovalDesk, ApiError> {
        self.approvals.as_ref().ok_or(ApiError::NoApprovals)
    }
}

fn operator_name(operator: Option<Extension<Operator>>) -> String {
    operator.map_or_else(|| "unknown".to_owned(), |Extension(Operator(name))| name)
}

/// The consoles waiting.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Approvals {
    /// Oldest first.
    approvals: Vec<PendingApproval>,
}

/// Boot consoles waiting for an operator's approval, oldest first.
#[utoipa::path(get, path = "/api/v1/approvals", responses(
    (status = 200, body = Approvals),
    (status = 503, description = "Boot consoles are not approved here (`[auth] method = \"approval\"` is off)",
        body = crate::api::ErrorBody),
))]
pub(crate) async fn list(State(state): State<AdminState>) -> Result<Json<Approvals>, ApiError> {
    let approvals = state.approvals()?.pending();
    Ok(Json(Approvals { approvals }))
}

/// `{code}` in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct CodePath {
    /// The code the boot console shows (any letter case).
    code: String,
}

/// A decision taken.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Decided {
    /// The console, as it waited.
    approval: PendingApproval,
    /// `approved` or `denied`.
    #[schema(example = "approved")]
    decision: &'static str,
    /// The basic-auth user, or `api-token`.
    operator: String,
}

async fn decide_api(
    state: &AdminState,
    code: &str,
    decision: ApprovalDecision,
    headers: &HeaderMap,
    uri: &Uri,
    operator: Option<Extension<Operator>>,
) -> Result<Json<Decided>, ApiError> {
    if crate::forms::cross_site(headers, uri) {
        return Err(ApiError::Forbidden("cross-site request refused"));
    }
    let operator = operator_name(operator);
    let approval = state.approvals()?.decide(code, decision, &operator)?;
    Ok(Json(Decided {
        approval,
        decision: decision.past_tense(),
        operator,
    }))
}

/// Let the boot console showing this code boot.
///
/// Its next poll gets the menu with a login token; recorded with the operator on the
/// machine's timeline.
#[utoipa::path(post, path = "/api/v1/approvals/{code}/approve", params(CodePath),
    responses((status = 200, body = Decided), DecisionErrors))]
pub(crate) async fn approve(
    State(state): State<AdminState>,
    Path(CodePath { code }): Path<CodePath>,
    headers: HeaderMap,
    uri: Uri,
    operator: Option<Extension<Operator>>,
) -> Result<Json<Decided>, ApiError> {
    decide_api(&state, &code, ApprovalDecision::Approve, &headers, &uri, operator).await
}

/// Send the boot console showing this code to its next boot device.
///
/// Recorded with the operator on the machine's timeline.
#[utoipa::path(post, path = "/api/v1/approvals/{code}/deny", params(CodePath),
    responses((status = 200, body = Decided), DecisionErrors))]
pub(crate) async fn deny(
    State(state): State<AdminState>,
    Path(CodePath { code }): Path<CodePath>,
    headers: HeaderMap,
    uri: Uri,
    operator: Option<Extension<Operator>>,
) -> Result<Json<Decided>, ApiError> {
    decide_api(&state, &code, ApprovalDecision::Deny, &headers, &uri, operator).await
}

/// The card of the index page; empty when approvals are not in use.
pub(crate) fn card(state: &AdminState, now: DateTime<Utc>) -> Markup {
    let Some(desk) = &state.approvals else {
        return html! {};
    };
    let pending = desk.pending();
    html! {
        h2 { "Pending approvals" }
        div.card #approvals {
            @if pending.is_empty() {
                p.muted { "No boot console is waiting for approval." }
            } @else {
                table.events {
                    thead { tr {
                        th { "Code" } th { "MAC" } th { "Address" } th { "Machine" }
                        th { "Waiting" } th { "Expires (UTC)" } th {}
                    } }
                    tbody {
                        @for approval in &pending {
                            tr {
                                td.mono { (approval.code) }
                                td { a.mono href=(machine_href(&state.base, approval.mac)) { (approval.mac) } }
                                td.mono { (approval.ip) }
                                td { (text(approval.machine.as_deref())) }
                                td { (span(now - approval.requested)) }
                                td { (approval.expires.format("%H:%M:%S")) " (in " (span(approval.expires - now)) ")" }
                                td {
                                    @for decision in [ApprovalDecision::Approve, ApprovalDecision::Deny] {
                                        (decision_button(state, &approval.code, decision))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An Approve or Deny button, with the form token of its decision on this code.
fn decision_button(state: &AdminState, code: &str, decision: ApprovalDecision) -> Markup {
    let label = match decision {
        ApprovalDecision::Approve => "Approve",
        ApprovalDecision::Deny => "Deny",
    };
    html! {
        form.inline method="post"
            action={ (state.base) "/approvals/" (url_encode(code)) "/" (decision.as_str()) } {
            input type="hidden" name="csrf" value=(state.form_key.token(decision.as_str(), code));
            button type="submit" { (label) }
        }
    }
}

/// `42 s`, `3 min`.
fn span(duration: chrono::Duration) -> String {
    let secs = duration.num_seconds().max(0);
    if secs < 120 {
        format!("{secs} s")
    } else {
        format!("{} min", secs / 60)
    }
}

/// The buttons' form.
#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    csrf: String,
}

async fn decide_page(
    state: &AdminState,
    code: &str,
    decision: ApprovalDecision,
    headers: &HeaderMap,
    uri: &Uri,
    form: Result<Form<DecisionForm>, FormRejection>,
    operator: Option<Extension<Operator>>,
) -> Result<Response, PageError> {
    let token_ok = form.is_ok_and(|Form(form)| state.form_key.verify(decision.as_str(), code, &form.csrf));
    if crate::forms::cross_site(headers, uri) || !token_ok {
        return Err(ApiError::Forbidden("refused: this form must be sent from the admin page").into());
    }
    state
        .approvals()?
        .decide(code, decision, &operator_name(operator))
        .map_err(ApiError::from)?;
    Ok(Redirect::to(&format!("{}/", state.base)).into_response())
}

/// `POST {base}/approvals/{code}/approve` from the index page's button.
pub(crate) async fn approve_page(
    State(state): State<AdminState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    operator: Option<Extension<Operator>>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, PageError> {
    decide_page(
        &state,
        &code,
        ApprovalDecision::Approve,
        &headers,
        &uri,
        form,
        operator,
    )
    .await
}

/// `POST {base}/approvals/{code}/deny` from the index page's button.
pub(crate) async fn deny_page(
    State(state): State<AdminState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    operator: Option<Extension<Operator>>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, PageError> {
    decide_page(
        &state,
        &code,
        ApprovalDecision::Deny,
        &headers,
        &uri,
        form,
        operator,
    )
    .await
}
