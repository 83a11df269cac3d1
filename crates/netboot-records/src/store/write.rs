//! Writing events and keeping the machine records and retention limits up to date.

use chrono::{DateTime, Utc};

use super::{on_pool, Store, StoreError};
use crate::event::{Event, EventDetail};

/// Rows per multi-row insert: 12 parameters each stays far below SQLite's and PostgreSQL's
/// parameter limits.
const EVENTS_PER_INSERT: usize = 256;
const EVENT_COLUMNS: usize = 12;

fn insert_events_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (at_ms, mac, uuid, client_ip, stage, kind, ok, boot_start, arch, duration_ms, detail, host) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..EVENT_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * EVENT_COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql
}

// Every capability column keeps its old value unless the event brings a new one; what a
// client claims about the hardware (manufacturer, product, serial, asset tag) keeps the first
// value, as any client can claim anything for any MAC (every claim is kept in
// `machine_claims`); the architecture list grows; the outcome follows the newest event even when batches from
// several services arrive out of order. Written in the SQL SQLite and PostgreSQL share.
const UPSERT_MACHINE: &str = "INSERT INTO machines \
    (mac, uuid, firmware, arches, nic, ipxe_platform, ipxe_features, tls, manufacturer, product, \
     serial, asset, first_seen_ms, last_seen_ms, boot_count, last_outcome) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
    ON CONFLICT (mac) DO UPDATE SET \
    uuid = COALESCE(excluded.uuid, machines.uuid), \
    firmware = COALESCE(excluded.firmware, machines.firmware), \
    arches = CASE \
        WHEN excluded.arches = '' OR (',' || machines.arches || ',') LIKE ('%,' || excluded.arches || ',%') \
            THEN machines.arches \
        WHEN machines.arches = '' THEN excluded.arches \
        ELSE machines.arches || ',' || excluded.arches END, \
    nic = COALESCE(excluded.nic, machines.nic), \
    ipxe_platform = COALESCE(excluded.ipxe_platform, machines.ipxe_platform), \
    ipxe_features = COALESCE(excluded.ipxe_features, machines.ipxe_features), \
    tls = COALESCE(excluded.tls, machines.tls), \
    manufacturer = COALESCE(machines.manufacturer, excluded.manufacturer), \
    product = COALESCE(machines.product, excluded.product), \
    serial = COALESCE(machines.serial, excluded.serial), \
    asset = COALESCE(machines.asset, excluded.asset), \
    first_seen_ms = CASE WHEN excluded.first_seen_ms < machines.first_seen_ms \
        THEN excluded.first_seen_ms ELSE machines.first_seen_ms END, \
    last_seen_ms = CASE WHEN excluded.last_seen_ms > machines.last_seen_ms \
        THEN excluded.last_seen_ms ELSE machines.last_seen_ms END, \
    boot_count = machines.boot_count + excluded.boot_count, \
    last_outcome = CASE WHEN excluded.last_seen_ms >= machines.last_seen_ms \
        THEN excluded.last_outcome ELSE machines.last_outcome END";

/// Distinct claims kept per machine; beyond them new claims are not stored (repeats of kept
/// ones still count), so a client cycling through made-up serial numbers cannot grow the table.
pub const MAX_CLAIMS_PER_MACHINE: i64 = 32;

const UPSERT_CLAIM: &str = "INSERT INTO machine_claims \
    (mac, field, value, source, first_seen_ms, last_seen_ms, times) \
    SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), \
        CAST($5 AS BIGINT), CAST($5 AS BIGINT), 1 \
    WHERE (SELECT COUNT(*) FROM machine_claims WHERE mac = $1) < $6 \
        OR EXISTS (SELECT 1 FROM machine_claims WHERE mac = $1 AND field = $2 AND value = $3 AND source = $4) \
    ON CONFLICT (mac, field, value, source) DO UPDATE SET \
    first_seen_ms = CASE WHEN excluded.first_seen_ms < machine_claims.first_seen_ms \
        THEN excluded.first_seen_ms ELSE machine_claims.first_seen_ms END, \
    last_seen_ms = CASE WHEN excluded.last_seen_ms > machine_claims.last_seen_ms \
        THEN excluded.last_seen_ms ELSE machine_claims.last_seen_ms END, \
    times = machine_claims.times + 1";

/// One claim of one event.
struct ClaimRow {
    mac: String,
    field: &'static str,
    value: String,
    source: String,
    at_ms: i64,
}

fn claim_rows(events: &[Event]) -> Vec<ClaimRow> {
    let mut claims = Vec::new();
    for event in events {
        let EventDetail::HttpsEntry(entry) = &event.detail else {
            continue;
        };
        let hardware = &entry.hardware;
        let fields = [
            ("manufacturer", &hardware.manufacturer),
            ("product", &hardware.product),
            ("serial", &hardware.serial),
            ("asset", &hardware.asset),
        ];
        for (field, value) in fields {
            if let Some(value) = clip(value) {
                claims.push(ClaimRow {
                    mac: event.mac.to_string(),
                    field,
                    value,
                    source: event.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    at_ms: millis(event.at),
                });
            }
        }
    }
    claims
}

/// The columns of one event row.
struct EventRow {
    at_ms: i64,
    mac: String,
    uuid: Option<String>,
    client_ip: Option<String>,
    stage: &'static str,
    kind: &'static str,
    ok: i64,
    boot_start: i64,
    arch: Option<String>,
    duration_ms: Option<i64>,
    detail: String,
}

/// What one event teaches about its machine.
#[derive(Default)]
struct MachineUpdate {
    firmware: Option<String>,
    arch: String,
    nic: Option<String>,
    ipxe_platform: Option<String>,
    ipxe_features: Option<String>,
    tls: Option<i64>,
    manufacturer: Option<String>,
    product: Option<String>,
    serial: Option<String>,
    asset: Option<String>,
}

/// Everything a batch teaches about one machine, merged in time order.
struct MergedMachine {
    mac: String,
    uuid: Option<String>,
    update: MachineUpdate,
    /// Architectures seen in the batch; at least one entry (possibly empty text).
    arches: Vec<String>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    boots: i64,
    last_outcome: &'static str,
}

fn merge_machine_updates(events: &[Event]) -> Vec<MergedMachine> {
    let mut ordered: Vec<&Event> = events.iter().collect();
    // Stable: events of the same millisecond keep their queue order.
    ordered.sort_by_key(|e| e.at);
    let mut merged: Vec<MergedMachine> = Vec::new();
    let mut index: std::collections::HashMap<netboot_core::MacAddr, usize> = std::collections::HashMap::new();
    for event in ordered.into_iter().filter(|e| e.detail.is_boot_step()) {
        let update = machine_update(&event.detail);
        let at = millis(event.at);
        let position = *index.entry(event.mac).or_insert_with(|| {
            merged.push(MergedMachine {
                mac: event.mac.to_string(),
                uuid: None,
                update: MachineUpdate::default(),
                arches: Vec::new(),
                first_seen_ms: at,
                last_seen_ms: at,
                boots: 0,
                last_outcome: event.detail.outcome().as_str(),
            });
            merged.len() - 1
        });
        let machine = &mut merged[position];
        let newer = |old: &mut Option<String>, new: Option<String>| {
            if new.is_some() {
                *old = new;
            }
        };
        let first = |old: &mut Option<String>, new: Option<String>| {
            if old.is_none() {
                *old = new;
            }
        };
        newer(&mut machine.uuid, event.uuid.map(|u| u.to_string()));
        let target = &mut machine.update;
        newer(&mut target.firmware, update.firmware);
        newer(&mut target.nic, update.nic);
        newer(&mut target.ipxe_platform, update.ipxe_platform);
        newer(&mut target.ipxe_features, update.ipxe_features);
        first(&mut target.manufacturer, update.manufacturer);
        first(&mut target.product, update.product);
        first(&mut target.serial, update.serial);
        first(&mut target.asset, update.asset);
        target.tls = update.tls.or(target.tls);
        if !update.arch.is_empty() && !machine.arches.contains(&update.arch) {
            machine.arches.push(update.arch);
        }
        machine.first_seen_ms = machine.first_seen_ms.min(at);
        machine.last_seen_ms = machine.last_seen_ms.max(at);
        machine.boots += i64::from(event.detail.starts_boot());
        machine.last_outcome = event.detail.outcome().as_str();
    }
    for machine in &mut merged {
        if machine.arches.is_empty() {
            machine.arches.push(String::new());
        }
    }
    merged
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn event_row(event: &Event) -> EventRow {
    let detail = &event.detail;
    EventRow {
        at_ms: millis(event.at),
        mac: event.mac.to_string(),
        uuid: event.uuid.map(|u| u.to_string()),
        client_ip: event.ip.map(|ip| ip.to_string()),
        stage: detail.stage().as_str(),
        kind: detail.kind(),
        ok: i64::from(detail.is_ok()),
        boot_start: i64::from(detail.starts_boot()),
        arch: detail.arch().map(|a| a.name().into_owned()),
        duration_ms: detail.duration_ms().map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
        // Serialising our own plain data types cannot fail.
        detail: serde_json::to_string(detail).unwrap_or_default(),
    }
}

/// Free text from clients is cut to a sane length before it reaches an index.
fn clip(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.chars().take(128).collect())
}

fn machine_update(detail: &EventDetail) -> MachineUpdate {
    let mut update = MachineUpdate {
        arch: detail.arch().map(|a| a.name().into_owned()).unwrap_or_default(),
        ..MachineUpdate::default()
    };
    match detail {
        EventDetail::ProxyOffer(offer) => {
            update.firmware = clip(&Some(offer.firmware.clone()));
            update.nic = clip(&offer.nic);
            update.ipxe_features = (!offer.ipxe_features.is_empty()).then(|| offer.ipxe_features.join(","));
        }
        EventDetail::HttpsEntry(entry) => {
            update.ipxe_platform = clip(&entry.hardware.platform);
            update.ipxe_features = (!entry.features.is_empty()).then(|| entry.features.join(","));
            update.tls = Some(i64::from(entry.tls));
            update.manufacturer = clip(&entry.hardware.manufacturer);
            update.product = clip(&entry.hardware.product);
            update.serial = clip(&entry.hardware.serial);
            update.asset = clip(&entry.hardware.asset);
        }
        _ => {}
    }
    update
}

impl Store {
    /// Writes events and updates their machines' records, in one transaction: the events in
    /// multi-row inserts, and one upsert per machine (and extra architecture) of the batch.
    pub async fn insert(&self, events: &[Event]) -> Result<(), StoreError> {
        let rows: Vec<EventRow> = events.iter().map(event_row).collect();
        let machines = merge_machine_updates(events);
        let claims = claim_rows(events);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(EVENTS_PER_INSERT) {
                let sql = insert_events_sql(chunk.len());
                let mut query = sqlx::query(&sql);
                for row in chunk {
                    query = query
                        .bind(row.at_ms)
                        .bind(&row.mac)
                        .bind(&row.uuid)
                        .bind(&row.client_ip)
                        .bind(row.stage)
                        .bind(row.kind)
                        .bind(row.ok)
                        .bind(row.boot_start)
                        .bind(&row.arch)
                        .bind(row.duration_ms)
                        .bind(&row.detail)
                        .bind(self.host.as_deref());
                }
                query.execute(&mut *tx).await?;
            }
            for machine in &machines {
                for (index, arch) in machine.arches.iter().enumerate() {
                    // Extra architectures repeat the timestamps and outcome but count no boot.
                    let update = &machine.update;
                    sqlx::query(UPSERT_MACHINE)
                        .bind(&machine.mac)
                        .bind(&machine.uuid)
                        .bind(&update.firmware)
                        .bind(arch)
                        .bind(&update.nic)
                        .bind(&update.ipxe_platform)
                        .bind(&update.ipxe_features)
                        .bind(update.tls)
                        .bind(&update.manufacturer)
                        .bind(&update.product)
                        .bind(&update.serial)
                        .bind(&update.asset)
                        .bind(machine.first_seen_ms)
                        .bind(machine.last_seen_ms)
                        .bind(if index == 0 { machine.boots } else { 0 })
                        .bind(machine.last_outcome)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for claim in &claims {
                sqlx::query(UPSERT_CLAIM)
                    .bind(&claim.mac)
                    .bind(claim.field)
                    .bind(&claim.value)
                    .bind(&claim.source)
                    .bind(claim.at_ms)
                    .bind(MAX_CLAIMS_PER_MACHINE)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes events (and machines not seen since) older than `older_than`, then the oldest
    /// events beyond `max_events` (0 = no row limit). Returns the events deleted.
    pub async fn apply_retention(
        &self,
        older_than: Option<DateTime<Utc>>,
        max_events: u64,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        if let Some(cutoff) = older_than {
            let cutoff = millis(cutoff);
            on_pool!(self, pool => {
                deleted += sqlx::query("DELETE FROM events WHERE at_ms < $1").bind(cutoff).execute(pool).await?.rows_affected();
                sqlx::query("DELETE FROM machines WHERE last_seen_ms < $1").bind(cutoff).execute(pool).await?;
                sqlx::query("DELETE FROM machine_claims WHERE last_seen_ms < $1").bind(cutoff).execute(pool).await?;
            });
        }
        if max_events > 0 {
            let keep = i64::try_from(max_events).unwrap_or(i64::MAX);
            on_pool!(self, pool => {
                deleted += sqlx::query(
                    "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1)",
                )
                .bind(keep)
                .execute(pool)
                .await?
                .rows_affected();
            });
        }
        Ok(deleted)
    }
}
