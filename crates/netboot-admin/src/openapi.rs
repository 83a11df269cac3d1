//! The OpenAPI document of the JSON API, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they take and return. [`routes`] adds each handler to the router
//! and its operation to the document in one `routes!` call, so the two cannot disagree.

use axum::extract::State;
use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder, Server};
use utoipa::{IntoResponses, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{self, ErrorBody};
use crate::{approvals, AdminState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "netboot boot records",
        description = "Machines, boot timelines, failures and boot statistics recorded by the proxyDHCP, TFTP and HTTPS services."
    ),
    security(("bearer" = []), ("basic" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The JSON API: every route with its operation.
fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::machines))
        .routes(routes!(api::machine))
        .routes(routes!(api::timeline))
        .routes(routes!(api::required_runs))
        .routes(routes!(api::clear_required))
        .routes(routes!(api::failures))
        .routes(routes!(api::boots_per_day))
        .routes(routes!(api::architectures))
        .routes(routes!(api::outcomes))
        .routes(routes!(api::status))
        .routes(routes!(api::export))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
}

/// The JSON API's router (paths relative to the base) and its document, with the server
/// URL `base`.
pub(crate) fn api(base: &str) -> (axum::Router<AdminState>, Document) {
    let (router, mut document) = routes().split_for_parts();
    let server = if base.is_empty() { "/" } else { base };
    document.servers = Some(vec![Server::new(server)]);
    describe_guard(&mut document);
    (router, document)
}

/// The document, with the server URL `base`.
#[must_use]
pub fn openapi_document(base: &str) -> serde_json::Value {
    serde_json::to_value(api(base).1).expect("an OpenAPI document serialises to JSON")
}

/// The authentication guard stands before every route: its schemes, and what it answers
/// instead of the handler, on every operation.
fn describe_guard(document: &mut Document) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    let answers = [
        ("401", "Missing or wrong credentials"),
        (
            "429",
            "Too many failed logins from this address; `Retry-After` says when to try again",
        ),
    ];
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            for (status, description) in answers {
                let response = ResponseBuilder::new().description(description).build();
                operation
                    .responses
                    .responses
                    .insert(status.into(), RefOr::T(response));
            }
        }
    }
}

/// `GET {base}/api/openapi.json`.
pub(crate) async fn serve(
    State(document): State<std::sync::Arc<serde_json::Value>>,
) -> Json<serde_json::Value> {
    Json(document.as_ref().clone())
}

// The error answers of the handlers, by what they need. Never built: they describe the
// statuses `ApiError` turns into.

/// Errors of the handlers that read the boot records.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum RecordsErrors {
    #[response(
        status = 400,
        description = "A malformed parameter (MAC address, outcome, format)"
    )]
    BadRequest(ErrorBody),
    #[response(status = 500, description = "The boot records database failed")]
    Failed(ErrorBody),
    #[response(
        status = 503,
        description = "Boot records are disabled or the database is unavailable"
    )]
    Unavailable(ErrorBody),
}

/// Errors of reading a machine's Required runs.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum RequiredRunsErrors {
    #[response(status = 400, description = "Not a MAC address")]
    BadRequest(ErrorBody),
    #[response(status = 500, description = "The database failed")]
    Failed(ErrorBody),
    #[response(
        status = 503,
        description = "Required runs are not kept (`[resolver] required_once = false`) or the database is unavailable"
    )]
    Unavailable(ErrorBody),
}

/// Errors of deciding a waiting boot console.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum DecisionErrors {
    #[response(
        status = 403,
        description = "Sent by a page of another site (Origin or Sec-Fetch-Site)"
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 404,
        description = "No console is waiting with this code (never shown, expired or already picked up)"
    )]
    NotFound(ErrorBody),
    #[response(status = 409, description = "Already approved or denied")]
    Conflict(ErrorBody),
    #[response(
        status = 503,
        description = "Boot consoles are not approved here (`[auth] method = \"approval\"` is off)"
    )]
    Unavailable(ErrorBody),
}
