//! The page frame and small formatting helpers for the server-rendered pages.

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Percent-encodes a query-string or path value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `1.2 s`, `340 ms`.
pub(crate) fn duration(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// `1.4 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The page frame: title, inline style, header with the status line.
pub(crate) fn page(title: &str, base: &str, status: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · netboot" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.home href={ (base) "/" } { "netboot boot records" }
                    span.status { (status) }
                }
                main { (body) }
            }
        }
    }
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}\
header{display:flex;justify-content:space-between;align-items:center;background:#1d2733;color:#fff;padding:10px 20px}\
header a.home{color:#fff;font-weight:600;text-decoration:none;font-size:16px}\
.status{font-size:12px;color:#c6d0db}.status .warn{color:#ffb347;font-weight:600}\
main{padding:16px 20px;max-width:1280px}\
h1{font-size:20px;margin:8px 0 12px}h2{font-size:16px;margin:20px 0 8px}\
section.cards{display:flex;flex-wrap:wrap;gap:16px}\
.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 14px}\
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid #dde3ea}\
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}\
th{background:#eef1f5;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
code,.mono{font-family:ui-monospace,monospace;font-size:13px}\
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff;white-space:nowrap}\
.muted{color:#6b7785}.fail{color:#b3261e;font-weight:600}\
form.search{display:flex;gap:8px;margin:12px 0}form.inline{display:inline;margin-right:4px}form.search input[type=search]{flex:1;max-width:420px;padding:5px 8px}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}dl.facts dt{color:#6b7785}\
svg text{font-family:system-ui,sans-serif}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(url_encode("a b/&c"), "a%20b%2F%26c");
        assert_eq!(duration(420), "420 ms");
        assert_eq!(duration(1500), "1.5 s");
        assert_eq!(bytes(1_048_576), "1.0 MiB");
    }
}
