//! Queries behind the reports page and the JSON API.

use std::net::IpAddr;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use netboot_core::MacAddr;
use serde::Serialize;
use sqlx::Row;

use super::rows::{self, Claim, Count, DayCount, Machine, StoredEvent};
use super::{on_pool, Store, StoreError};
use crate::event::{Outcome, Stage};

const MACHINE_COLUMNS: &str = "mac, uuid, firmware, arches, nic, ipxe_platform, ipxe_features, tls, \
    manufacturer, product, serial, asset, first_seen_ms, last_seen_ms, boot_count, last_outcome";
const EVENT_COLUMNS: &str = "id, at_ms, mac, uuid, stage, ok, boot_start, duration_ms, detail, host";

/// Which machines to list.
///
/// `search` matches a MAC (any common notation), a UUID, or part of a serial number, asset
/// tag, manufacturer or product name, case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineQuery {
    /// Free-text search.
    pub search: Option<String>,
    /// Only machines that reported this architecture (`x64-uefi`, `bios`, ...).
    pub arch: Option<String>,
    /// Only machines whose latest boot ended like this.
    pub outcome: Option<Outcome>,
    /// At most this many (capped at 1000).
    pub limit: u32,
    /// Skip this many (for paging).
    pub offset: u32,
}

/// One boot of one machine: its events from the firmware's first request on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BootJourney {
    /// First event of the boot.
    pub started: DateTime<Utc>,
    /// Last event of the boot.
    pub ended: DateTime<Utc>,
    /// The stage of the last event: where the boot is, or where it stopped.
    pub reached: Stage,
    /// How far it got.
    pub outcome: Outcome,
    /// The events, oldest first.
    pub events: Vec<StoredEvent>,
}

/// Escapes `%`, `_` and `\` so user text is matched literally by `LIKE ... ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A complete MAC in colon or dash notation; anything else (a UUID fragment that happens to
/// have twelve hex digits, a partial MAC) is searched as text.
fn parse_full_mac(text: &str) -> Option<MacAddr> {
    let groups: Vec<&str> = text.split([':', '-']).collect();
    let well_formed = groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    well_formed.then(|| text.replace('-', ":").parse().ok()).flatten()
}

/// Groups events (oldest first) into boots, each starting at a boot-start event.
#[must_use]
pub fn split_into_boots(events: Vec<StoredEvent>) -> Vec<BootJourney> {
    let mut boots: Vec<Vec<StoredEvent>> = Vec::new();
    for event in events {
        match boots.last_mut() {
            Some(current) if !event.boot_start => current.push(event),
            _ => boots.push(vec![event]),
        }
    }
    boots
        .into_iter()
        .filter_map(|events| {
            let first = events.first()?;
            let last = events.last()?;
            let outcome = if events.iter().any(|e| !e.ok) {
                Outcome::Failed
            } else {
                last.detail.outcome()
            };
            Some(BootJourney {
                started: first.at,
                ended: last.at,
                reached: last.stage,
                outcome,
                events,
            })
        })
        .collect()
}

impl Store {
    /// Machines matching `query`, most recently seen first.
    pub async fn machines(&self, query: &MachineQuery) -> Result<Vec<Machine>, StoreError> {
        let (exact_mac, pattern) = match query.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => match parse_full_mac(text) {
                Some(mac) => (Some(mac.to_string()), None),
                None => (None, Some(like_pattern(text))),
            },
            None => (None, None),
        };
        let arch = query
            .arch
            .as_ref()
            .map(|a| format!("%,{},%", a.replace(['%', '_', ','], "")));
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM machines WHERE \
             (CAST($1 AS TEXT) IS NULL OR mac = $1) AND \
             (CAST($2 AS TEXT) IS NULL OR LOWER(mac) LIKE $2 ESCAPE '\\' OR LOWER(uuid) LIKE $2 ESCAPE '\\' \
                OR LOWER(serial) LIKE $2 ESCAPE '\\' OR LOWER(asset) LIKE $2 ESCAPE '\\' \
                OR LOWER(manufacturer) LIKE $2 ESCAPE '\\' OR LOWER(product) LIKE $2 ESCAPE '\\') AND \
             (CAST($3 AS TEXT) IS NULL OR (',' || arches || ',') LIKE $3) AND \
             (CAST($4 AS TEXT) IS NULL OR last_outcome = $4) \
             ORDER BY last_seen_ms DESC, mac LIMIT $5 OFFSET $6"
        );
        let limit = i64::from(query.limit.clamp(1, 1000));
        let outcome = query.outcome.map(Outcome::as_str);
        on_pool!(self, pool => {
            let found = sqlx::query(&sql)
                .bind(exact_mac)
                .bind(pattern)
                .bind(arch)
                .bind(outcome)
                .bind(limit)
                .bind(i64::from(query.offset))
                .fetch_all(pool)
                .await?;
            Ok(found.iter().map(rows::machine).collect::<Result<_, _>>()?)
        })
    }

    /// One machine's record.
    pub async fn machine(&self, mac: MacAddr) -> Result<Option<Machine>, StoreError> {
        let sql = format!("SELECT {MACHINE_COLUMNS} FROM machines WHERE mac = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(mac.to_string()).fetch_optional(pool).await?;
            Ok(row.as_ref().map(rows::machine).transpose()?)
        })
    }

    /// Everything clients claimed about the machine, by field and first claim.
    pub async fn claims_of(&self, mac: MacAddr) -> Result<Vec<Claim>, StoreError> {
        let sql = "SELECT field, value, source, first_seen_ms, last_seen_ms, times FROM machine_claims \
                   WHERE mac = $1 ORDER BY field, first_seen_ms, value, source";
        on_pool!(self, pool => {
            let found = sqlx::query(sql).bind(mac.to_string()).fetch_all(pool).await?;
            Ok(found.iter().map(rows::claim).collect::<Result<_, _>>()?)
        })
    }

    /// The machine's latest `limit` events, oldest first.
    pub async fn events_of(&self, mac: MacAddr, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE mac = $1 ORDER BY at_ms DESC, id DESC LIMIT $2"
        );
        let mut events: Vec<StoredEvent> = on_pool!(self, pool => {
            let found = sqlx::query(&sql).bind(mac.to_string()).bind(i64::from(limit.clamp(1, 10_000))).fetch_all(pool).await?;
            found.iter().map(rows::event).collect::<Result<_, _>>()?
        });
        events.reverse();
        Ok(events)
    }

    /// The machine's latest `boots` boots, newest first.
    pub async fn timeline(&self, mac: MacAddr, boots: usize) -> Result<Vec<BootJourney>, StoreError> {
        let mut journeys = split_into_boots(self.events_of(mac, 2000).await?);
        journeys.reverse();
        journeys.truncate(boots.max(1));
        Ok(journeys)
    }

    /// Failed steps since `since`, newest first.
    pub async fn failures(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE ok = 0 AND at_ms >= $1 ORDER BY at_ms DESC, id DESC LIMIT $2"
        );
        on_pool!(self, pool => {
            let found = sqlx::query(&sql)
                .bind(since.timestamp_millis())
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(pool)
                .await?;
            Ok(found.iter().map(rows::event).collect::<Result<_, _>>()?)
        })
    }

    /// Boots begun per UTC day over the last `days` days (today included), with zero days
    /// filled in so charts have no gaps.
    pub async fn boots_per_day(&self, now: DateTime<Utc>, days: u32) -> Result<Vec<DayCount>, StoreError> {
        let days = days.clamp(1, 3660);
        let today = now.date_naive();
        let first = today - ChronoDuration::days(i64::from(days) - 1);
        let since = first
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis();
        let sql = "SELECT at_ms / 86400000 AS day, COUNT(*) AS n FROM events \
                   WHERE boot_start = 1 AND at_ms >= $1 GROUP BY at_ms / 86400000";
        let counted: Vec<(i64, i64)> = on_pool!(self, pool => {
            let found = sqlx::query(sql).bind(since).fetch_all(pool).await?;
            found.iter().map(|r| Ok((r.try_get::<i64, _>("day")?, r.try_get::<i64, _>("n")?))).collect::<Result<_, sqlx::Error>>()?
        });
        let epoch = NaiveDate::default();
        Ok(first
            .iter_days()
            .take_while(|day| *day <= today)
            .map(|day| {
                let index = (day - epoch).num_days();
                let boots = counted.iter().find(|(d, _)| *d == index).map_or(0, |(_, n)| *n);
                DayCount {
                    day,
                    boots: u64::try_from(boots).unwrap_or(0),
                }
            })
            .collect())
    }

    /// Boots begun since `since`, per client architecture.
    pub async fn boots_per_arch(&self, since: DateTime<Utc>) -> Result<Vec<Count>, StoreError> {
        self.counts(
            "SELECT COALESCE(arch, 'unknown') AS k, COUNT(*) AS n FROM events \
             WHERE boot_start = 1 AND at_ms >= $1 GROUP BY COALESCE(arch, 'unknown') ORDER BY n DESC, k",
            since,
        )
        .await
    }

    /// Machines seen since `since`, per outcome of their latest boot.
    pub async fn outcomes(&self, since: DateTime<Utc>) -> Result<Vec<Count>, StoreError> {
        self.counts(
            "SELECT last_outcome AS k, COUNT(*) AS n FROM machines WHERE last_seen_ms >= $1 \
             GROUP BY last_outcome ORDER BY n DESC, k",
            since,
        )
        .await
    }

    async fn counts(&self, sql: &str, since: DateTime<Utc>) -> Result<Vec<Count>, StoreError> {
        on_pool!(self, pool => {
            let found = sqlx::query(sql).bind(since.timestamp_millis()).fetch_all(pool).await?;
            Ok(found
                .iter()
                .map(|r| Ok(Count { key: r.try_get("k")?, count: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0) }))
                .collect::<Result<_, sqlx::Error>>()?)
        })
    }

    /// Events with an id above `after_id`, oldest first, at most `limit`: the pages of an
    /// export, so an export of millions of rows never sits in memory at once.
    pub async fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2");
        on_pool!(self, pool => {
            let found = sqlx::query(&sql).bind(after_id).bind(i64::from(limit.clamp(1, 10_000))).fetch_all(pool).await?;
            Ok(found.iter().map(rows::event).collect::<Result<_, _>>()?)
        })
    }

    /// The machine that most recently used `ip`, up to 30 minutes before `at`: how events
    /// seen only by address (TFTP) find their machine across processes and hosts.
    pub async fn mac_for_ip(&self, ip: IpAddr, at: DateTime<Utc>) -> Result<Option<MacAddr>, StoreError> {
        let sql = "SELECT mac FROM events WHERE client_ip = $1 AND at_ms >= $2 AND at_ms <= $3 \
                   ORDER BY at_ms DESC, id DESC LIMIT 1";
        let at = at.timestamp_millis();
        let found: Option<String> = on_pool!(self, pool => {
            let row = sqlx::query(sql).bind(ip.to_string()).bind(at - 1_800_000).bind(at + 60_000).fetch_optional(pool).await?;
            row.map(|r| r.try_get::<String, _>("mac")).transpose()?
        });
        Ok(found.and_then(|mac| mac.parse().ok()))
    }

    /// Number of stored events.
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(pool).await?.try_get("n")?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn only_complete_macs_are_exact_searches() {
        assert!(super::parse_full_mac("52-54-00-AA-00-01").is_some());
        assert!(super::parse_full_mac("8C4D7A2E-1F3B").is_none());
        assert!(super::parse_full_mac("52:54:00").is_none());
    }

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_pattern("A_b%"), "%a\\_b\\%%");
    }
}
