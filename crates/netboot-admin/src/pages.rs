//! The server-rendered pages.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use netboot_core::{MacAddr, SmbiosUuid};
use netboot_records::{Claim, Machine, Outcome, StoredEvent};
use serde::Deserialize;

use crate::api::{clear_machine, parse_mac, ApiError, MachinesParams};
use crate::html::{page, url_encode};
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
        let body = html! {
            h1 { (status) }
            p.fail { (self.0) }
        };
        (status, page("error", "", html! {}, body)).into_response()
    }
}

fn status_line(state: &AdminState) -> Markup {
    let stats = state.recorder.stats();
    let backend = state
        .store
        .as_ref()
        .map_or("records unavailable", |s| s.backend_name());
    html! {
        (backend) " · written " (stats.written) " · queued " (stats.queue_depth)
        @if stats.dropped() > 0 {
            " · " span.warn { "dropped " (stats.dropped()) }
        }
    }
}

pub(crate) fn badge(outcome: Outcome) -> Markup {
    html! {
        span class={ "badge outcome-" (outcome.as_str()) } style={ "background:" (outcome_colour(outcome.as_str())) } {
            (outcome.as_str().replace('_', " "))
        }
    }
}

/// A value, or a muted dash when there is none.
pub(crate) fn text(value: Option<&str>) -> Markup {
    html! {
        @match value {
            Some(value) => (value),
            None => span.muted { "–" },
        }
    }
}

/// `2024-05-01 12:34:56`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The link to a machine's page.
pub(crate) fn machine_href(base: &str, mac: MacAddr) -> String {
    format!("{base}/machines/{}", url_encode(&mac.to_string()))
}

pub(crate) async fn redirect_to_index(State(state): State<AdminState>) -> Redirect {
    Redirect::to(&format!("{}/", state.base))
}

const ARCH_PALETTE: [&str; 6] = ["#3f7fe0", "#7e57c2", "#00897b", "#f9a825", "#8d6e63", "#546e7a"];

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
    let base = &*state.base;
    let arch_colour = |key: &str| {
        let index = arches.iter().position(|c| c.key == key).unwrap_or(0);
        ARCH_PALETTE[index % ARCH_PALETTE.len()].to_string()
    };

    let body = html! {
        (crate::approvals::card(&state, now))
        h1 { "Machines" }
        section.cards {
            div.card { h2 { "Boots per day (14 days)" } (svg::boots_per_day(&days)) }
            div.card {
                h2 { "Outcome of latest boot (30 days)" }
                (svg::shares("outcomes", "Outcome shares", &outcomes, |k| outcome_colour(k).to_string()))
            }
            div.card {
                h2 { "Boots per architecture (30 days)" }
                (svg::shares("architectures", "Architectures", &arches, arch_colour))
            }
        }
        form.search method="get" action={ (base) "/" } {
            input type="search" name="q" value=(params.q.as_deref().unwrap_or_default())
                placeholder="MAC, UUID, serial, asset tag, model";
            select name="outcome" {
                option value="" { "any outcome" }
                @for outcome in Outcome::ALL {
                    option value=(outcome.as_str()) selected[params.outcome.as_deref() == Some(outcome.as_str())] {
                        (outcome.as_str().replace('_', " "))
                    }
                }
            }
            button type="submit" { "Search" }
        }
        table #machines {
            thead { tr {
                th { "MAC" } th { "UUID" } th { "Model" } th { "Serial" } th { "Arch" }
                th { "Firmware" } th { "Boots" } th { "Last seen (UTC)" } th { "Last outcome" }
            } }
            tbody {
                @for machine in &machines { (machine_row(base, machine)) }
                @if machines.is_empty() {
                    tr { td colspan="9" .muted { "No machines match." } }
                }
            }
        }
        h2 { "Recent failures (7 days)" }
        table #failures {
            thead { tr { th { "When (UTC)" } th { "MAC" } th { "Stage" } th { "What" } } }
            tbody {
                @for failure in &failures {
                    tr {
                        td { (timestamp(failure.at)) }
                        td { a.mono href=(machine_href(base, failure.mac)) { (failure.mac) } }
                        td { (failure.stage.as_str().to_uppercase()) }
                        td.fail { (event_label(&failure.detail)) }
                    }
                }
                @if failures.is_empty() {
                    tr { td colspan="4" .muted { "No failures." } }
                }
            }
        }
        p.muted {
            "Export: " a href={ (base) "/api/v1/export?format=csv" } { "CSV" }
            " · " a href={ (base) "/api/v1/export?format=json" } { "JSON" }
            " · API: " a href={ (base) "/api/openapi.json" } { "OpenAPI" }
            " · " a href={ (base) "/metrics" } { "metrics" }
        }
    };
    Ok(page("Machines", base, status_line(&state), body).into_response())
}

fn machine_row(base: &str, machine: &Machine) -> Markup {
    html! {
        tr {
            td { a.mono.machine href=(machine_href(base, machine.mac)) { (machine.mac) } }
            td.mono { (text(machine.uuid.map(|u| u.to_string()).as_deref())) }
            td {
                @match (&machine.manufacturer, &machine.product) {
                    (Some(m), Some(p)) => { (m) " " (p) },
                    (m, p) => (text(m.as_deref().or(p.as_deref()))),
                }
            }
            td { (text(machine.serial.as_deref())) }
            td { (machine.arches.join(", ")) }
            td { (text(machine.firmware.as_deref())) }
            td.num { (machine.boot_count) }
            td { (timestamp(machine.last_seen)) }
            td { (badge(machine.last_outcome)) }
        }
    }
}

pub(crate) async fn machine(
    State(state): State<AdminState>,
    Path(mac): Path<String>,
) -> Result<Response, PageError> {
    let mac = parse_mac(&mac)?;
    let store = state.store()?;
    let record = store.machine(mac).await?.ok_or(ApiError::NotFound(mac))?;
    let boots = store.timeline(mac, 5).await?;
    let claims = store.claims_of(mac).await?;
    let required_runs = required_runs_card(&state, mac, record.uuid).await;

    let body = html! {
        h1 { "Machine " span.mono { (mac) } " " (badge(record.last_outcome)) }
        div.card { dl.facts {
            @for (name, value) in facts(&record) {
                dt { (name) } dd { (text(value.as_deref())) }
            }
        } }
        (claims_card(&claims))
        (required_runs)
        @for (i, boot) in boots.iter().enumerate() {
            h2 {
                (if i == 0 { "Latest" } else { "Earlier" }) " boot, " (timestamp(boot.started)) " UTC "
                (badge(boot.outcome))
            }
            div.card { (svg::timeline(boot)) }
            (crate::peerdist::table(&boot.events))
            (events_table(&boot.events))
        }
    };
    Ok(page(&format!("Machine {mac}"), &state.base, status_line(&state), body).into_response())
}

/// The machine's facts as the records keep them (the first claim of each).
fn facts(record: &Machine) -> [(&'static str, Option<String>); 13] {
    let tls = record.tls.map(|t| if t { "yes" } else { "no" }.to_string());
    [
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
                timestamp(record.first_seen),
                timestamp(record.last_seen)
            )),
        ),
    ]
}

/// The fields clients disagree about.
fn disputed_fields(claims: &[Claim]) -> Vec<&str> {
    let mut fields: Vec<&str> = claims.iter().map(|c| c.field.as_str()).collect();
    fields.dedup();
    fields
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
        .collect()
}

/// What clients claimed about the machine's hardware, from which address: any client can
/// claim to be any MAC, so the facts above keep the first claim and every other one is listed
/// here, with a warning when they disagree.
fn claims_card(claims: &[Claim]) -> Markup {
    if claims.is_empty() {
        return html! {};
    }
    let disputed = disputed_fields(claims);
    html! {
        h2 { "Hardware claims" }
        div.card #claims {
            @if disputed.is_empty() {
                p.muted { "Every client claims the same." }
            } @else {
                p.fail { "Clients disagree about: " (disputed.join(", ")) ". The facts above show the first claim." }
            }
            table.events {
                thead { tr {
                    th { "Field" } th { "Value" } th { "From" }
                    th { "First (UTC)" } th { "Latest (UTC)" } th { "Times" }
                } }
                tbody {
                    @for claim in claims {
                        tr {
                            td { (claim.field) }
                            td { (claim.value) }
                            td.mono { (claim.source) }
                            td { (timestamp(claim.first_seen)) }
                            td { (timestamp(claim.last_seen)) }
                            td.num { (claim.times) }
                        }
                    }
                }
            }
        }
    }
}

fn events_table(events: &[StoredEvent]) -> Markup {
    html! {
        table.events {
            thead { tr { th { "Time (UTC)" } th { "Stage" } th { "Step" } th { "Duration" } } }
            tbody {
                @for event in events {
                    tr {
                        td.mono { (event.at.format("%H:%M:%S%.3f")) }
                        td { (event.stage.as_str().to_uppercase()) }
                        td class=[(!event.ok).then_some("fail")] { (event_label(&event.detail)) }
                        td.num { (event.duration_ms.map(crate::html::duration).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// The action of the clear button's form token.
const CLEAR_REQUIRED: &str = "clear-required";

/// The machine's Required runs with the button that clears them; empty when runs are not
/// kept.
async fn required_runs_card(state: &AdminState, mac: MacAddr, uuid: Option<SmbiosUuid>) -> Markup {
    let Some(runs) = &state.required_runs else {
        return html! {};
    };
    let found = runs.runs_of(mac, uuid).await;
    if let Err(error) = &found {
        tracing::warn!(%mac, %error, "reading Required runs for the machine page failed");
    }
    html! {
        h2 { "Required deployments run" }
        div.card #required-runs {
            @match &found {
                Ok(found) if found.is_empty() => {
                    p.muted { "None recorded: its Required deployments boot by themselves." }
                }
                Ok(found) => {
                    p { "Offered as Available (no countdown) until cleared:" }
                    table.events {
                        thead { tr {
                            th { "Deployment" } th { "Booted (UTC)" } th { "Boot image" }
                            th { "Resource ID" } th { "Recorded for" }
                        } }
                        tbody {
                            @for run in found {
                                tr {
                                    td.mono { (run.deployment) }
                                    td { (timestamp(run.at)) }
                                    td.mono { (text(run.boot_image.as_deref())) }
                                    td { @if let Some(id) = run.resource_id { (id) } }
                                    td.mono { (run.mac) }
                                }
                            }
                        }
                    }
                    form method="post" action={ (machine_href(&state.base, mac)) "/clear-required" } {
                        input type="hidden" name="csrf" value=(state.form_key.token(CLEAR_REQUIRED, &mac.to_string()));
                        button type="submit" { "Clear Required deployments" }
                    }
                }
                Err(error) => p.fail { (error) },
            }
        }
    }
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
    Ok(Redirect::to(&machine_href(&state.base, mac)).into_response())
}
