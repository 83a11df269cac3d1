//! Inline SVG charts: boots per day, outcome shares, and a boot's timeline.
//!
//! Drawn with the same templates as the pages, so labels (file names, error causes, client
//! architectures) are escaped like any other text. Every element is written with an explicit
//! end tag (`{}`), never maud's void form: inside `<svg>` the HTML parser only closes
//! elements that end in `/>` or have an end tag, so a bare `<line>` would swallow the
//! elements after it.

use maud::{html, Markup};
use netboot_records::{BootJourney, Count, DayCount, EventDetail, Outcome, PeerDistDelivery, Stage};

use crate::html::{bytes, duration};

const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// A fixed colour per outcome, used by badges and charts alike.
pub(crate) fn outcome_colour(outcome: &str) -> &'static str {
    match Outcome::from_name(outcome) {
        Some(Outcome::Offered) => "#7b8ca3",
        Some(Outcome::BootProgramLoaded) => "#3f7fe0",
        Some(Outcome::IpxeStarted) => "#7e57c2",
        Some(Outcome::Decided) => "#00897b",
        Some(Outcome::Exited) => "#8d9ba8",
        Some(Outcome::ImageLoaded) => "#2e7d32",
        Some(Outcome::Failed) => "#c62828",
        None => "#555",
    }
}

fn stage_colour(stage: Stage) -> &'static str {
    match stage {
        Stage::Dhcp => "#5c6bc0",
        Stage::Tftp => "#3f7fe0",
        Stage::Https => "#00897b",
        Stage::Image => "#2e7d32",
    }
}

/// A coordinate with one decimal, as the charts' attributes hold them.
fn at(value: f64) -> String {
    format!("{value:.1}")
}

/// Bars of boots per day, with a label every few days.
pub(crate) fn boots_per_day(days: &[DayCount]) -> Markup {
    let (width, height, left, bottom) = (560.0, 170.0, 34.0, 22.0);
    let max = days.iter().map(|d| d.boots).max().unwrap_or(0).max(1);
    let slot = (width - left) / days.len().max(1) as f64;
    let plot = height - bottom - 8.0;
    let label_every = (days.len() / 7).max(1);
    html! {
        svg class="chart boots-per-day" role="img" aria-label="Boots per day" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } xmlns=(SVG_NAMESPACE) {
            @for fraction in [0.0, 0.5, 1.0] {
                @let y = 8.0 + plot * (1.0 - fraction);
                line x1=(left) x2=(width) y1=(at(y)) y2=(at(y)) stroke="#e3e8ee" {}
                text x=(at(left - 4.0)) y=(at(y + 3.0)) font-size="10" text-anchor="end" fill="#6b7785" {
                    ((max as f64 * fraction).round())
                }
            }
            @for (i, day) in days.iter().enumerate() {
                @let h = plot * day.boots as f64 / max as f64;
                @let x = left + slot * i as f64 + slot * 0.15;
                rect x=(at(x)) y=(at(8.0 + plot - h)) width=(at(slot * 0.7)) height=(at(h)) fill="#3f7fe0" {
                    title { (day.day) ": " (day.boots) " boots" }
                }
                @if i % label_every == 0 || i + 1 == days.len() {
                    text x=(at(x + slot * 0.35)) y=(at(height - 6.0)) font-size="10" text-anchor="middle" fill="#6b7785" {
                        (day.day.format("%m-%d"))
                    }
                }
            }
        }
    }
}

/// One horizontal bar split by share, with a legend.
pub(crate) fn shares(class: &str, label: &str, counts: &[Count], colour: impl Fn(&str) -> String) -> Markup {
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let (width, bar) = (380.0, 22.0);
    let rows = counts.len().max(1);
    let height = bar + 14.0 + 18.0 * rows as f64;
    let mut x = 0.0;
    let segments: Vec<(f64, f64, String, String)> = counts
        .iter()
        .map(|count| {
            let w = width * count.count as f64 / total.max(1) as f64;
            let percent = 100.0 * count.count as f64 / total.max(1) as f64;
            let share = format!("{}: {} ({percent:.0}%)", count.key, count.count);
            let segment = (x, w, colour(&count.key), share);
            x += w;
            segment
        })
        .collect();
    html! {
        svg class={ "chart " (class) } role="img" aria-label=(label) width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } xmlns=(SVG_NAMESPACE) {
            @if total == 0 {
                rect width=(width) height=(bar) fill="#eef1f5" {}
                text x="8" y="15" font-size="12" fill="#6b7785" { "no data yet" }
            }
            @for (i, (x, w, fill, share)) in segments.iter().enumerate() {
                rect x=(at(*x)) y="0" width=(at(*w)) height=(bar) fill=(fill) { title { (share) } }
                rect x="0" y=(at(bar + 10.0 + 18.0 * i as f64)) width="10" height="10" fill=(fill) {}
                text x="16" y=(at(bar + 19.0 + 18.0 * i as f64)) font-size="12" fill="#1d2733" { (share) }
            }
        }
    }
}

/// What a timeline bar says about its event.
pub(crate) fn event_label(detail: &EventDetail) -> String {
    match detail {
        EventDetail::ProxyOffer(o) => format!(
            "{} offer ({}, {}){}",
            if o.server_port == 4011 {
                "PXE 4011"
            } else {
                "proxyDHCP"
            },
            o.arch,
            o.firmware,
            o.boot_file
                .as_ref()
                .map(|f| format!(" → {f}"))
                .unwrap_or_default()
        ),
        EventDetail::TftpTransfer(t) => format!(
            "TFTP {} {} in {}{}{}",
            t.file,
            bytes(t.bytes),
            duration(t.duration_ms),
            if t.retransmits > 0 {
                format!(", {} retransmits", t.retransmits)
            } else {
                String::new()
            },
            t.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        EventDetail::HttpsEntry(e) => format!(
            "iPXE entry{}{}",
            e.hardware
                .product
                .as_ref()
                .map(|p| format!(" from {p}"))
                .unwrap_or_default(),
            if e.tls { " over TLS" } else { "" }
        ),
        EventDetail::Decision(d) => format!(
            "decision {:?} by {}{}",
            d.kind,
            d.resolver,
            d.choice.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        )
        .to_lowercase(),
        EventDetail::ImageDownload(d) => format!(
            "{} {} in {} (HTTP {}){}{}",
            d.path,
            bytes(d.bytes),
            duration(d.duration_ms),
            d.status,
            match &d.peerdist {
                Some(PeerDistDelivery::ContentInformation {
                    version,
                    content_bytes,
                }) => format!(
                    ", PeerDist Content Information {version} for {}",
                    bytes(*content_bytes)
                ),
                Some(PeerDistDelivery::MissingData) => ", a range no peer had".to_string(),
                Some(PeerDistDelivery::NotReady) => ", PeerDist not ready yet".to_string(),
                None => String::new(),
            },
            d.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        EventDetail::Error(e) => format!("error: {}", e.cause),
        EventDetail::RequiredRun(r) => r.summary(),
        EventDetail::Login(l) => l.summary(),
        EventDetail::Approval(a) => a.summary(),
    }
}

/// The boot drawn on four lanes (DHCP, TFTP, HTTPS, image): each step a bar from its start to
/// its end, failures in red, and a marker where the boot stopped.
pub(crate) fn timeline(boot: &BootJourney) -> Markup {
    let (width, left, lane, top) = (940.0, 70.0, 34.0, 18.0);
    let height = top + lane * 4.0 + 40.0;
    let start = boot.started.timestamp_millis();
    let earliest = boot
        .events
        .iter()
        .map(|e| e.at.timestamp_millis() - e.duration_ms.unwrap_or(0) as i64)
        .min()
        .unwrap_or(start)
        .min(start);
    let span = (boot.ended.timestamp_millis() - earliest).max(1000) as f64;
    let plot = width - left - 180.0;
    let x_of = |ms: i64| left + plot * (ms - earliest) as f64 / span;
    let stop_x = at(x_of(boot.ended.timestamp_millis()));
    let colour = if boot.outcome == Outcome::Failed {
        "#c62828"
    } else {
        "#2e7d32"
    };
    let total = duration(u64::try_from(boot.ended.timestamp_millis() - earliest).unwrap_or(0));
    html! {
        svg class="timeline" role="img" aria-label="Boot timeline" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } xmlns=(SVG_NAMESPACE) {
            @for (i, stage) in Stage::ALL.iter().enumerate() {
                @let y = top + lane * i as f64;
                rect x=(left) y=(y) width=(plot) height=(lane - 4.0)
                    fill=(if i % 2 == 0 { "#f3f6f9" } else { "#fafbfc" }) {}
                text x="8" y=(at(y + lane / 2.0 + 2.0)) font-size="12" font-weight="600" fill=(stage_colour(*stage)) {
                    (stage.as_str().to_uppercase())
                }
            }
            @for fraction in [0.0, 0.25, 0.5, 0.75, 1.0] {
                @let x = at(left + plot * fraction);
                line x1=(x) x2=(x) y1=(top) y2=(at(top + lane * 4.0)) stroke="#dde3ea" stroke-dasharray="2,3" {}
                text x=(x) y=(at(top + lane * 4.0 + 12.0)) font-size="10" text-anchor="middle" fill="#6b7785" {
                    "+" (duration((span * fraction) as u64))
                }
            }
            @for event in &boot.events {
                @let lane_index = Stage::ALL.iter().position(|s| *s == event.stage).unwrap_or(0);
                @let end = event.at.timestamp_millis();
                @let (x0, x1) = (x_of(end - event.duration_ms.unwrap_or(0) as i64), x_of(end));
                rect class=(if event.ok { "step" } else { "step failed" })
                    x=(at(x0)) y=(at(top + lane * lane_index as f64 + 4.0))
                    width=(at((x1 - x0).max(5.0))) height=(at(lane - 12.0)) rx="3"
                    fill=(if event.ok { stage_colour(event.stage) } else { "#c62828" }) {
                    title { (event.at.format("%H:%M:%S%.3f")) " " (event_label(&event.detail)) }
                }
            }
            line x1=(stop_x) x2=(stop_x) y1=(at(top - 6.0)) y2=(at(top + lane * 4.0)) stroke=(colour) stroke-width="2" {}
            text.verdict x=(left) y=(at(height - 6.0)) font-size="13" font-weight="600" fill=(colour) {
                (verdict(boot)) " · total " (total)
            }
        }
    }
}

/// Where the boot stopped and why, or how far it got.
fn verdict(boot: &BootJourney) -> String {
    match (boot.outcome, boot.events.last()) {
        (Outcome::Failed, Some(last)) => {
            let failed = boot.events.iter().find(|e| !e.ok).unwrap_or(last);
            format!(
                "stopped at {}: {}",
                failed.stage.as_str().to_uppercase(),
                event_label(&failed.detail)
            )
        }
        (outcome, _) => format!(
            "reached {} ({})",
            boot.reached.as_str().to_uppercase(),
            outcome.as_str().replace('_', " ")
        ),
    }
}
