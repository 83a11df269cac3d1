//! The summary table: runs, failures and boot times per scenario client and layout.

use std::collections::BTreeMap;

use super::lab::Layout;
use super::scenario::ClientResult;

/// Prints one line per (layout, client): passed/total and min/median/max seconds.
pub(crate) fn print(results: &[(Layout, ClientResult)]) {
    if results.is_empty() {
        return;
    }
    let mut by_client: BTreeMap<(String, String), Vec<&ClientResult>> = BTreeMap::new();
    for (layout, result) in results {
        by_client
            .entry((layout.name().to_owned(), result.spec.name.clone()))
            .or_default()
            .push(result);
    }
    println!(
        "{:<10} {:<18} {:<10} {:>7}  boot seconds (min / median / max)",
        "layout", "client", "firmware", "passed"
    );
    for ((layout, name), runs) in &by_client {
        let mut times: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok().copied())
            .collect();
        times.sort_by(f64::total_cmp);
        let passed = format!("{}/{}", times.len(), runs.len());
        let timing = match (times.first(), times.last()) {
            (Some(min), Some(max)) => format!("{min:.1} / {:.1} / {max:.1}", times[times.len() / 2]),
            _ => "-".to_owned(),
        };
        println!(
            "{layout:<10} {name:<18} {:<10} {passed:>7}  {timing}",
            runs[0].spec.firmware.label()
        );
    }
}
