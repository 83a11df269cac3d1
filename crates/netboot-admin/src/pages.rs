//! The server-rendered pages.

use std::fmt::Write as _;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use netboot_core::{MacAddr, SmbiosUuid};
use netboot_records::{Claim, Machine, Outcome, StoredEvent};
use serde::Deserialize;

use crate::api::{clear_machine, parse_mac, ApiError, MachinesParams};
use crate::html::{escape, page, url_encode};
use crate::svg::{self, event_label, outcome_colour};
use crate::AdminState;

/// An error shown as a page instead of JSON.
pub(crate) struct PageError(pub(crate) ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<netboot_records::StoreError> for PageError {
    fn from(error: netboot_records::StoreError) -> Self {
        Self(ApiError::Store(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "admin page failed");
        }
        let body = format!(
            "<h1>{}</h1><p class=\"fail\">{}</p>",
            status,
            escape(&self.0.to_string())
        );
        (status, Html(page("error", "", "", &body))).into_response()
    }
}

fn status_line(state: &AdminState) -> String {
    let stats = state.recorder.stats();
    let backend = state
        .store
        .as_ref()
        .map_or("records unavailable", |s| s.backend_name());
    let mut line = format!(
        "{backend} · written {} · queued {}",
        stats.written, stats.queue_depth
    );
    if stats.dropped() > 0 {
        let _ = write!(line, " · <span class=\"warn\">dropped {}</span>", stats.dropped());
    }
    line
}

fn badge(outcome: Outcome) -> String {
    format!(
        "<span class=\"badge outcome-{0}\" style=\"background:{1}\">{2}</span>",
        outcome.as_str(),
        outcome_colour(outcome.as_str()),
        outcome.as_str().replace('_', " ")
    )
}

fn text(value: Option<&String>) -> String {
    value.map_or_else(|| "<span class=\"muted\">–</span>".into(), |v| escape(v))
}

pub(crate) async fn redirect_to_index(State(state): State<AdminState>) -> Redirect {
    Redirect::to(&format!("{}/", state.base))
}

pub(crate) async fn index(
    State(state): State<AdminState>,
    Query(params): Query<MachinesParams>,
) -> Result<Response, PageError> {
    let store = state.store()?;
    let machines = store.machines(&params.query()?).await?;
    let now = Utc::now();
    let days = store.boots_per_day(now, 14).await?;
    let outcomes = store.outcomes(now - Duration::days(30)).await?;
    let arches = store.boots_per_arch(now - Duration::days(30)).await?;
    let failures = store.failures(now - Duration::days(7), 15).await?;
    let base = escape(&state.base);

    let mut body = crate::approvals::card(&state, now);
    body.push_str("<h1>Machines</h1><section class=\"cards\">");
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Boots per day (14 days)</h2>{}</div>",
        svg::boots_per_day(&days)
    );
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Outcome of latest boot (30 days)</h2>{}</div>",
        svg::shares("outcomes", "Outcome shares", &outcomes, |k| outcome_colour(k)
            .to_string())
    );
    let palette = ["#3f7fe0", "#7e57c2", "#00897b", "#f9a825", "#8d6e63", "#546e7a"];
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Boots per architecture (30 days)</h2>{}</div></section>",
        svg::shares("architectures", "Architectures", &arches, |k| {
            let index = arches.iter().position(|c| c.key == k).unwrap_or(0);
            palette[index % palette.len()].to_string()
        })
    );

    let query = escape(params.q.as_deref().unwrap_or_default());
    let mut options = String::from("<option value=\"\">any outcome</option>");
    for outcome in Outcome::ALL {
        let selected = if params.outcome.as_deref() == Some(outcome.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{0}\"{selected}>{1}</option>",
            outcome.as_str(),
            outcome.as_str().replace('_', " ")
        );
    }
    let _ = write!(
        body,
        "<form class=\"search\" method=\"get\" action=\"{base}/\"><input type=\"search\" name=\"q\" value=\"{query}\" \
         placeholder=\"MAC, UUID, serial, asset tag, model\"><select name=\"outcome\">{options}</select>\
         <button type=\"submit\">Search</button></form>"
    );
    body.push_str(
        "<table id=\"machines\"><thead><tr><th>MAC</th><th>UUID</th><th>Model</th><th>Serial</th><th>Arch</th>\
         <th>Firmware</th><th>Boots</th><th>Last seen (UTC)</th><th>Last outcome</th></tr></thead><tbody>",
    );
    for machine in &machines {
        body.push_str(&machine_row(&state.base, machine));
    }
    if machines.is_empty() {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">No machines match.</td></tr>");
    }
    body.push_str("</tbody></table>");

    body.push_str("<h2>Recent failures (7 days)</h2><table id=\"failures\"><thead><tr><th>When (UTC)</th><th>MAC</th><th>Stage</th><th>What</th></tr></thead><tbody>");
    for failure in &failures {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><a class=\"mono\" href=\"{base}/machines/{}\">{}</a></td><td>{}</td><td class=\"fail\">{}</td></tr>",
            failure.at.format("%Y-%m-%d %H:%M:%S"),
            url_encode(&failure.mac.to_string()),
            failure.mac,
            failure.stage.as_str().to_uppercase(),
            escape(&event_label(&failure.detail))
        );
    }
    if failures.is_empty() {
        body.push_str("<tr><td colspan=\"4\" class=\"muted\">No failures.</td></tr>");
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<p class=\"muted\">Export: <a href=\"{base}/api/v1/export?format=csv\">CSV</a> · \
         <a href=\"{base}/api/v1/export?format=json\">JSON</a> · API: <a href=\"{base}/api/openapi.json\">OpenAPI</a> · \
         <a href=\"{base}/metrics\">metrics</a></p>"
    );
    Ok(Html(page("Machines", &state.base, &status_line(&state), &body)).into_response())
}

fn machine_row(base: &str, machine: &Machine) -> String {
    let model = match (&machine.manufacturer, &machine.product) {
        (Some(m), Some(p)) => format!("{} {}", escape(m), escape(p)),
        (m, p) => text(m.as_ref().or(p.as_ref())),
    };
    format!(
        "<tr><td><a class=\"mono machine\" href=\"{}/machines/{}\">{}</a></td><td class=\"mono\">{}</td><td>{model}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
        escape(base),
        url_encode(&machine.mac.to_string()),
        machine.mac,
        machine.uuid.map_or_else(|| "<span class=\"muted\">–</span>".into(), |u| u.to_string()),
        text(machine.serial.as_ref()),
        escape(&machine.arches.join(", ")),
        text(machine.firmware.as_ref()),
        machine.boot_count,
        machine.last_seen.format("%Y-%m-%d %H:%M:%S"),
        badge(machine.last_outcome)
    )
}

pub(crate) async fn machine(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
) -> Result<Response, PageError> {
    let mac = parse_mac(&mac)?;
    let store = state.store()?;
    let record = store.machine(mac).await?.ok_or(ApiError::NotFound(mac))?;
    let boots = store.timeline(mac, 5).await?;

    let mut body = format!(
        "<h1>Machine <span class=\"mono\">{mac}</span> {}</h1>",
        badge(record.last_outcome)
    );
    let tls = record
        .tls
        .map(|t| if t { "yes".to_string() } else { "no".to_string() });
    let facts: [(&str, Option<String>); 13] = [
        ("UUID", record.uuid.map(|u| u.to_string())),
        ("Manufacturer", record.manufacturer.clone()),
        ("Product", record.product.clone()),
        ("Serial", record.serial.clone()),
        ("Asset tag", record.asset.clone()),
        ("Firmware", record.firmware.clone()),
        (
            "Architectures",
            Some(record.arches.join(", ")).filter(|a| !a.is_empty()),
        ),
        ("NIC", record.nic.clone()),
        ("iPXE platform", record.ipxe_platform.clone()),
        (
            "iPXE features",
            Some(record.ipxe_features.join(", ")).filter(|f| !f.is_empty()),
        ),
        ("TLS", tls),
        ("Boots", Some(record.boot_count.to_string())),
        (
            "Seen",
            Some(format!(
                "{} – {} UTC",
                record.first_seen.format("%Y-%m-%d %H:%M:%S"),
                record.last_seen.format("%Y-%m-%d %H:%M:%S")
            )),
        ),
    ];
    body.push_str("<div class=\"card\"><dl class=\"facts\">");
    for (name, value) in facts {
        let _ = write!(body, "<dt>{name}</dt><dd>{}</dd>", text(value.as_ref()));
    }
    body.push_str("</dl></div>");
    body.push_str(&claims_card(&store.claims_of(mac).await?));
    body.push_str(&required_runs_card(&state, mac, record.uuid).await);

    for (i, boot) in boots.iter().enumerate() {
        let _ = write!(
            body,
            "<h2>{} boot, {} UTC {}</h2><div class=\"card\">{}</div>",
            if i == 0 { "Latest" } else { "Earlier" },
            boot.started.format("%Y-%m-%d %H:%M:%S"),
            badge(boot.outcome),
            svg::timeline(boot)
        );
        body.push_str(&crate::peerdist::table(&boot.events));
        body.push_str(&events_table(&boot.events));
    }
    Ok(Html(page(
        &format!("Machine {mac}"),
        &state.base,
        &status_line(&state),
        &body,
    ))
    .into_response())
}

/// What clients claimed about the machine's hardware, from which address: any client can
/// claim to be any MAC, so the facts above keep the first claim and every other one is listed
/// here, with a warning when they disagree.
fn claims_card(claims: &[Claim]) -> String {
    if claims.is_empty() {
        return String::new();
    }
    let mut fields: Vec<&str> = claims.iter().map(|c| c.field.as_str()).collect();
    fields.dedup();
    let disputed: Vec<&str> = fields
        .into_iter()
        .filter(|field| {
            let mut values: Vec<&str> = claims
                .iter()
                .filter(|c| c.field == *field)
                .map(|c| c.value.as_str())
                .collect();
            values.sort_unstable();
            values.dedup();
            values.len() > 1
        })
        .collect();
    let mut card = String::from("<h2>Hardware claims</h2><div class=\"card\" id=\"claims\">");
    if disputed.is_empty() {
        card.push_str("<p class=\"muted\">Every client claims the same.</p>");
    } else {
        let _ = write!(
            card,
            "<p class=\"fail\">Clients disagree about: {}. The facts above show the first claim.</p>",
            escape(&disputed.join(", "))
        );
    }
    card.push_str(
        "<table class=\"events\"><thead><tr><th>Field</th><th>Value</th><th>From</th>\
         <th>First (UTC)</th><th>Latest (UTC)</th><th>Times</th></tr></thead><tbody>",
    );
    for claim in claims {
        let _ = write!(
            card,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&claim.field),
            escape(&claim.value),
            escape(&claim.source),
            claim.first_seen.format("%Y-%m-%d %H:%M:%S"),
            claim.last_seen.format("%Y-%m-%d %H:%M:%S"),
            claim.times
        );
    }
    card.push_str("</tbody></table></div>");
    card
}

fn events_table(events: &[StoredEvent]) -> String {
    let mut table = String::from(
        "<table class=\"events\"><thead><tr><th>Time (UTC)</th><th>Stage</th><th>Step</th><th>Duration</th></tr></thead><tbody>",
    );
    for event in events {
        let _ = write!(
            table,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td{}>{}</td><td class=\"num\">{}</td></tr>",
            event.at.format("%H:%M:%S%.3f"),
            event.stage.as_str().to_uppercase(),
            if event.ok { "" } else { " class=\"fail\"" },
            escape(&event_label(&event.detail)),
            event.duration_ms.map(crate::html::duration).unwrap_or_default()
        );
    }
    table.push_str("</tbody></table>");
    table
}

/// The action of the clear button's form token.
const CLEAR_REQUIRED: &str = "clear-required";

/// The machine's Required runs with the button that clears them; empty when runs are not
/// kept.
async fn required_runs_card(state: &AdminState, mac: MacAddr, uuid: Option<SmbiosUuid>) -> String {
    let Some(runs) = &state.required_runs else {
        return String::new();
    };
    let mut card = String::from("<h2>Required deployments run</h2><div class=\"card\" id=\"required-runs\">");
    match runs.runs_of(mac, uuid).await {
        Ok(found) if found.is_empty() => card
            .push_str("<p class=\"muted\">None recorded: its Required deployments boot by themselves.</p>"),
        Ok(found) => {
            card.push_str(
                "<p>Offered as Available (no countdown) until cleared:</p><table class=\"events\"><thead><tr>\
                 <th>Deployment</th><th>Booted (UTC)</th><th>Boot image</th><th>Resource ID</th><th>Recorded for</th>\
                 </tr></thead><tbody>",
            );
            for run in &found {
                let _ = write!(
                    card,
                    "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                    escape(&run.deployment),
                    run.at.format("%Y-%m-%d %H:%M:%S"),
                    text(run.boot_image.as_ref()),
                    run.resource_id.map(|id| id.to_string()).unwrap_or_default(),
                    run.mac
                );
            }
            let _ = write!(
                card,
                "</tbody></table><form method=\"post\" action=\"{}/machines/{}/clear-required\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\">Clear Required deployments</button></form>",
                escape(&state.base),
                url_encode(&mac.to_string()),
                state.form_key.token(CLEAR_REQUIRED, &mac.to_string())
            );
        }
        Err(error) => {
            tracing::warn!(%mac, %error, "reading Required runs for the machine page failed");
            let _ = write!(card, "<p class=\"fail\">{}</p>", escape(&error.to_string()));
        }
    }
    card.push_str("</div>");
    card
}

/// The clear button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct ClearForm {
    csrf: String,
}

/// `POST {base}/machines/{mac}/clear-required` from the machine page: clears, then shows the
/// page again.
pub(crate) async fn clear_required(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<ClearForm>, FormRejection>,
) -> Result<Response, PageError> {
    let mac = parse_mac(&mac)?;
    let token_ok = form.is_ok_and(|Form(form)| {
        state
            .form_key
            .verify(CLEAR_REQUIRED, &mac.to_string(), &form.csrf)
    });
    if crate::forms::cross_site(&headers, &uri) || !token_ok {
        return Err(ApiError::Forbidden("refused: this form must be sent from the machine's page").into());
    }
    clear_machine(&state, mac, "the admin page").await?;
    Ok(Redirect::to(&format!(
        "{}/machines/{}",
        state.base,
        url_encode(&mac.to_string())
    ))
    .into_response())
}
