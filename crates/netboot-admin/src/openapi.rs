//! The OpenAPI 3.0 description of the JSON API.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::AdminState;

fn get(summary: &str, parameters: Value, schema: Value) -> Value {
    json!({ "get": {
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": schema } } },
            "401": { "description": "Missing or wrong credentials" },
            "503": { "description": "Boot records are disabled or the database is unavailable",
                     "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    }})
}

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": kind } })
}

fn list_of(key: &str, item: &str) -> Value {
    json!({ "type": "object", "properties": { key: { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } } } })
}

/// The document, with server URLs under `base`.
#[must_use]
pub fn openapi_document(base: &str) -> Value {
    let mac = json!({ "name": "mac", "in": "path", "required": true, "schema": { "type": "string" },
                      "description": "MAC address, `52:54:00:12:34:56` or `52-54-00-12-34-56`" });
    let days = query("days", "integer", "Days back from today (default 30)");
    let outcomes: Vec<&str> = netboot_records::Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let mut paths = serde_json::Map::new();
    paths.insert("/api/v1/machines".into(), get(
        "List machines, most recently seen first",
        json!([
            query("q", "string", "Search: MAC (any notation), UUID, or part of serial, asset tag, manufacturer, product"),
            query("arch", "string", "Only machines that reported this architecture (`x64-uefi`, `bios`, ...)"),
            { "name": "outcome", "in": "query", "schema": { "type": "string", "enum": outcomes } },
            query("limit", "integer", "At most this many (default 100, max 1000)"),
            query("offset", "integer", "Skip this many"),
        ]),
        list_of("machines", "Machine"),
    ));
    paths.insert(
        "/api/v1/machines/{mac}".into(),
        get(
            "One machine's record",
            json!([mac]),
            json!({ "$ref": "#/components/schemas/Machine" }),
        ),
    );
    paths.insert(
        "/api/v1/machines/{mac}/timeline".into(),
        get(
            "A machine's latest boots, newest first, each with its events oldest first",
            json!([mac, query("boots", "integer", "How many boots (default 5)")]),
            json!({ "type": "object", "properties": { "mac": { "type": "string" },
            "boots": { "type": "array", "items": { "$ref": "#/components/schemas/Boot" } } } }),
        ),
    );
    let runs_unavailable = json!({ "description": "Required runs are not kept (`[resolver] required_once = false`) or the database is unavailable",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let error = |description: &str| {
        json!({ "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    paths.insert(
        "/api/v1/machines/{mac}/required-runs".into(),
        get(
            "The Required deployments a machine ran (under its MAC or its UUID); each is offered as Available until cleared",
            json!([mac]),
            json!({ "type": "object", "properties": { "mac": { "type": "string" },
            "runs": { "type": "array", "items": { "$ref": "#/components/schemas/RequiredRun" } } } }),
        ),
    );
    paths.insert("/api/v1/machines/{mac}/clear-required".into(), json!({ "post": {
        "summary": "Clear the Required deployments a machine ran, so they boot by themselves again (as ConfigMgr's Clear Required PXE Deployments); the clear appears on its timeline",
        "parameters": [mac],
        "responses": {
            "200": { "description": "The runs cleared (possibly none, for a machine the boot records know)", "content": { "application/json": { "schema":
                { "type": "object", "properties": { "mac": { "type": "string" },
                  "cleared": { "type": "array", "items": { "$ref": "#/components/schemas/RequiredRun" } } } } } } },
            "400": error("Not a MAC address"),
            "401": { "description": "Missing or wrong credentials" },
            "403": error("Sent by a page of another site (Origin or Sec-Fetch-Site)"),
            "404": error("Neither runs nor boot records of this machine"),
            "503": runs_unavailable
        }
    }}));
    let approvals_unavailable =
        error("Boot consoles are not approved here (`[auth] method = \"approval\"` is off)");
    paths.insert("/api/v1/approvals".into(), json!({ "get": {
        "summary": "Boot consoles waiting for an operator's approval, oldest first",
        "parameters": [],
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": list_of("approvals", "Approval") } } },
            "401": { "description": "Missing or wrong credentials" },
            "503": approvals_unavailable
        }
    }}));
    let code = json!({ "name": "code", "in": "path", "required": true, "schema": { "type": "string" },
                       "description": "The code the boot console shows (any letter case)" });
    for (action, summary) in [
        ("approve", "Let the boot console showing this code boot: its next poll gets the menu with a login token; recorded with the operator on the machine's timeline"),
        ("deny", "Send the boot console showing this code to its next boot device; recorded with the operator on the machine's timeline"),
    ] {
        paths.insert(format!("/api/v1/approvals/{{code}}/{action}"), json!({ "post": {
            "summary": summary,
            "parameters": [code],
            "responses": {
                "200": { "description": "Decided", "content": { "application/json": { "schema":
                    { "type": "object", "properties": { "approval": { "$ref": "#/components/schemas/Approval" },
                      "decision": { "type": "string", "enum": ["approved", "denied"] },
                      "operator": { "type": "string", "description": "The basic-auth user, or `api-token`" } } } } } },
                "401": { "description": "Missing or wrong credentials" },
                "403": error("Sent by a page of another site (Origin or Sec-Fetch-Site)"),
                "404": error("No console is waiting with this code (never shown, expired or already picked up)"),
                "409": error("Already approved or denied"),
                "503": approvals_unavailable
            }
        }}));
    }
    paths.insert(
        "/api/v1/failures".into(),
        get(
            "Failed steps, newest first",
            json!([
                query("hours", "integer", "Hours back (default 168)"),
                query("limit", "integer", "At most this many (default 100)")
            ]),
            list_of("failures", "Event"),
        ),
    );
    paths.insert("/api/v1/stats/boots-per-day".into(), get(
        "Boots begun per UTC day, zero days included",
        json!([days.clone()]),
        json!({ "type": "object", "properties": { "days": { "type": "array", "items": { "type": "object",
            "properties": { "day": { "type": "string", "format": "date" }, "boots": { "type": "integer" } } } } } }),
    ));
    paths.insert(
        "/api/v1/stats/architectures".into(),
        get(
            "Boots begun per client architecture",
            json!([days.clone()]),
            list_of("architectures", "Count"),
        ),
    );
    paths.insert(
        "/api/v1/stats/outcomes".into(),
        get(
            "Machines seen, by outcome of their latest boot",
            json!([days]),
            list_of("outcomes", "Count"),
        ),
    );
    paths.insert(
        "/api/v1/status".into(),
        get(
            "Recording pipeline: backend, queue depth, written and dropped events",
            json!([]),
            json!({ "type": "object" }),
        ),
    );
    paths.insert("/api/v1/export".into(), json!({ "get": {
        "summary": "Every stored event, streamed",
        "parameters": [{ "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "csv"] } }],
        "responses": { "200": { "description": "Events", "content": {
            "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } } },
            "text/csv": { "schema": { "type": "string" } } } } }
    }}));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "netboot boot records",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Machines, boot timelines, failures and boot statistics recorded by the proxyDHCP, TFTP and HTTPS services."
        },
        "servers": [{ "url": base }],
        "security": [{ "bearer": [] }, { "basic": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "basic": { "type": "http", "scheme": "basic" }
            },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "string" } } },
                "Count": { "type": "object", "properties": { "key": { "type": "string" }, "count": { "type": "integer" } } },
                "Machine": { "type": "object", "properties": {
                    "mac": { "type": "string" }, "uuid": { "type": "string", "nullable": true },
                    "firmware": { "type": "string", "nullable": true },
                    "arches": { "type": "array", "items": { "type": "string" } },
                    "nic": { "type": "string", "nullable": true }, "ipxe_platform": { "type": "string", "nullable": true },
                    "ipxe_features": { "type": "array", "items": { "type": "string" } },
                    "tls": { "type": "boolean", "nullable": true },
                    "manufacturer": { "type": "string", "nullable": true }, "product": { "type": "string", "nullable": true },
                    "serial": { "type": "string", "nullable": true }, "asset": { "type": "string", "nullable": true },
                    "first_seen": { "type": "string", "format": "date-time" }, "last_seen": { "type": "string", "format": "date-time" },
                    "boot_count": { "type": "integer" }, "last_outcome": { "type": "string", "enum": outcomes }
                } },
                "Event": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" },
                    "mac": { "type": "string" }, "uuid": { "type": "string", "nullable": true },
                    "stage": { "type": "string", "enum": ["dhcp", "tftp", "https", "image"] },
                    "ok": { "type": "boolean" }, "boot_start": { "type": "boolean" },
                    "duration_ms": { "type": "integer", "nullable": true },
                    "detail": { "type": "object", "description": "Facts of the step; `kind` is one of proxy_offer, tftp_transfer, https_entry, decision, image_download, error, required_run, login, approval",
                        "properties": { "kind": { "type": "string" } } }
                } },
                "Approval": { "type": "object", "properties": {
                    "code": { "type": "string" }, "mac": { "type": "string" }, "ip": { "type": "string" },
                    "machine": { "type": "string", "nullable": true, "description": "Manufacturer, product and serial as the machine reported them" },
                    "requested": { "type": "string", "format": "date-time" },
                    "expires": { "type": "string", "format": "date-time" }
                } },
                "RequiredRun": { "type": "object", "properties": {
                    "mac": { "type": "string" }, "uuid": { "type": "string", "nullable": true },
                    "resource_id": { "type": "integer", "nullable": true, "description": "ConfigMgr ResourceID, when the machine has a record" },
                    "deployment": { "type": "string" },
                    "boot_image": { "type": "string", "nullable": true, "description": "The boot image whose complete download counted as the run" },
                    "client_ip": { "type": "string", "nullable": true },
                    "at": { "type": "string", "format": "date-time" }
                } },
                "Boot": { "type": "object", "properties": {
                    "started": { "type": "string", "format": "date-time" }, "ended": { "type": "string", "format": "date-time" },
                    "reached": { "type": "string", "enum": ["dhcp", "tftp", "https", "image"] },
                    "outcome": { "type": "string", "enum": outcomes },
                    "events": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } }
                } }
            }
        }
    })
}

pub(crate) async fn serve(State(state): State<AdminState>) -> Response {
    Json(openapi_document(&state.base)).into_response()
}
