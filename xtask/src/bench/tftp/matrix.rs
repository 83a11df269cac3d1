//! The single-client matrix: the options probe, then every file size x blksize x windowsize
//! in alternating rounds, with the ping-pong limit measured in the same rounds.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::clients::{self, Fetch, Grant};
use super::eta::minutes;
use super::eta::Eta;
use super::pingpong::{self, PingPong};
use super::report::{self, Cell, Combo, SizeTable};
use super::servers::{Running, Server};
use super::{file_name, interrupted, Args};
use crate::bench::NamespacePair;

/// Every server's grant for every combination, or why the probe failed.
pub(super) type Grants = Vec<Vec<std::result::Result<Grant, String>>>;

pub(super) fn probe_all(
    running: &[Running],
    combos: &[Combo],
    ns: &NamespacePair,
    logs: &Path,
) -> Result<Grants> {
    let mut grants = Vec::new();
    for r in running {
        let mut row = Vec::new();
        for combo in combos {
            let fetch = Fetch {
                server: r.server,
                file: "probe.bin",
                blksize: combo.blksize,
                window: combo.window,
            };
            row.push(clients::probe(&ns.client, fetch, logs).map_err(|e| {
                if interrupted() {
                    return "interrupted".to_owned();
                }
                format!("{e:#}")
            }));
            if interrupted() {
                bail!("interrupted");
            }
        }
        let granted: Vec<String> = combos
            .iter()
            .zip(&row)
            .map(|(c, g)| match g {
                Ok(g) if g.blksize == c.blksize && g.window == c.window => "as asked".to_owned(),
                Ok(g) => format!("bs{} w{} -> bs{} w{}", c.blksize, c.window, g.blksize, g.window),
                Err(e) => format!("bs{} w{}: {e}", c.blksize, c.window),
            })
            .collect();
        let mut shown: Vec<&String> = granted.iter().filter(|g| *g != "as asked").collect();
        shown.dedup();
        eprintln!(
            "options {}: {}",
            r.server.name(),
            if shown.is_empty() {
                "every combination as asked".to_owned()
            } else {
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        );
        grants.push(row);
    }
    Ok(grants)
}

/// Whether a server's grant lets it be measured for `combo`, and the cell to show if not.
pub(super) fn unmeasurable(grant: &std::result::Result<Grant, String>, combo: Combo) -> Option<Cell> {
    match grant {
        Ok(g) if g.blksize == combo.blksize && g.window == combo.window => None,
        // A windowed server that narrows a wide window of large blocks on purpose is measured
        // with the window it grants, and the cell says so.
        Ok(g) if g.blksize == combo.blksize && g.window > 1 && g.window < combo.window => None,
        Ok(g) => Some(Cell::Granted(*g)),
        Err(e) => Some(Cell::Failed(e.clone())),
    }
}

/// A transfer that spent at least half its time waiting out client timeouts (or failed) has
/// stalled: a server/combination that stalls once is not measured again (later rounds or
/// larger files), which keeps the run bounded where every round would crawl through
/// 5-second client timeouts. One timeout in an otherwise quick transfer is not a stall.
fn stalled_in_timeouts(timeouts: u64, elapsed: Duration) -> bool {
    clients::CLIENT_TIMEOUT * u32::try_from(timeouts).unwrap_or(u32::MAX) * 2 >= elapsed
}

/// Per combination and server: the file size (MiB) at which it stalled or failed.
pub(super) type Stalled = Vec<Vec<Option<u64>>>;

#[derive(Default, Clone)]
struct Samples {
    mbps: Vec<f64>,
    cpu_per_gib: Vec<f64>,
    failures: Vec<String>,
    timeouts: u64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn single_client_matrix(
    args: &Args,
    mib: u64,
    combos: &[Combo],
    grants: &Grants,
    running: &mut [Running],
    ns: &NamespacePair,
    logs: &Path,
    eta: &mut Eta,
    stalled: &mut Stalled,
) -> Result<SizeTable> {
    let bytes = mib << 20;
    let rounds = args.rounds_for(mib);
    let file = file_name(mib);
    let mut samples = vec![vec![Samples::default(); running.len()]; combos.len()];
    let mut limits: Vec<Vec<(PingPong, PingPong)>> = vec![Vec::new(); combos.len()];
    // Only figures at 1468 are held against the ping-pong.
    let with_limit = |c: &Combo| c.blksize == pingpong::PAYLOAD as u32;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..running.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (c, combo) in combos.iter().enumerate() {
            for &i in &order {
                if unmeasurable(&grants[i][c], *combo).is_some() {
                    continue;
                }
                if stalled[c][i].is_some() {
                    eta.skip(i, *combo, bytes);
                    continue;
                }
                let r = &running[i];
                let fetch = Fetch {
                    server: r.server,
                    file: &file,
                    blksize: combo.blksize,
                    window: combo.window,
                };
                let cpu_before = r.cpu_seconds()?;
                // Generous: a client slower than 2 MB/s has failed.
                let deadline = Duration::from_secs(30) + Duration::from_secs(bytes / 2_000_000);
                let outcome = clients::run_clients(&ns.client, &[fetch], false, deadline, logs)?
                    .pop()
                    .context("no outcome")?;
                // Let a forked transfer process finish exiting.
                std::thread::sleep(Duration::from_millis(100));
                let cpu = r.cpu_seconds()? - cpu_before;
                let s = &mut samples[c][i];
                s.timeouts += outcome.timeouts;
                eta.done(i, *combo, bytes, outcome.elapsed);
                if outcome.ok {
                    let mbps = bytes as f64 / outcome.elapsed.as_secs_f64() / 1e6;
                    s.mbps.push(mbps);
                    s.cpu_per_gib.push(cpu / (bytes as f64 / f64::from(1u32 << 30)));
                    if stalled_in_timeouts(outcome.timeouts, outcome.elapsed) {
                        stalled[c][i] = Some(mib);
                        eta.drop_all(i, *combo);
                    }
                } else {
                    stalled[c][i] = Some(mib);
                    eta.drop_all(i, *combo);
                    let last = clients::tail(&outcome.output);
                    eprintln!(
                        "  {} {mib} MiB bs{} w{} failed after {:.1} s: {last}",
                        r.server.name(),
                        combo.blksize,
                        combo.window,
                        outcome.elapsed.as_secs_f64()
                    );
                    s.failures.push(last);
                }
            }
            if with_limit(combo) {
                let plain = pingpong::measure(&ns.server, &ns.client, bytes, combo.window, false)?;
                // A window of one datagram is one send either way.
                let gso = if combo.window > 1 {
                    pingpong::measure(&ns.server, &ns.client, bytes, combo.window, true)?
                } else {
                    plain
                };
                limits[c].push((plain, gso));
            }
        }
        for r in running.iter_mut() {
            r.check_alive()?;
        }
        eprintln!(
            "  {mib} MiB round {}/{rounds} done, {} elapsed, about {} left",
            round + 1,
            minutes(eta.started.elapsed()),
            minutes(eta.remaining())
        );
    }
    let servers: Vec<Server> = running.iter().map(|r| r.server).collect();
    let rows = combos
        .iter()
        .enumerate()
        .map(|(c, combo)| {
            let cells = (0..running.len())
                .map(|i| {
                    if let Some(cell) = unmeasurable(&grants[i][c], *combo) {
                        return cell;
                    }
                    let s = &samples[c][i];
                    if s.mbps.is_empty() && s.failures.is_empty() {
                        if let Some(at) = stalled[c][i] {
                            return Cell::Skipped(format!("stalled at {at} MiB"));
                        }
                    }
                    if s.mbps.is_empty() {
                        return Cell::Failed(s.failures.first().cloned().unwrap_or_default());
                    }
                    Cell::Measured {
                        mbps: median(&s.mbps),
                        cpu_per_gib: median(&s.cpu_per_gib),
                        rounds: s.mbps.len() + s.failures.len(),
                        failures: s.failures.len(),
                        timeouts: s.timeouts,
                        narrowed_to: grants[i][c]
                            .as_ref()
                            .ok()
                            .map(|g| g.window)
                            .filter(|&w| w != combo.window),
                    }
                })
                .collect();
            let limit = (!limits[c].is_empty()).then(|| {
                let of = |value: fn(&(PingPong, PingPong)) -> f64| {
                    median(&limits[c].iter().map(value).collect::<Vec<_>>())
                };
                report::Limit {
                    plain: of(|l| l.0.mbps),
                    gso: of(|l| l.1.mbps),
                    plain_cpu_per_gib: of(|l| l.0.cpu_per_gib),
                }
            });
            (*combo, cells, limit)
        })
        .collect();
    Ok(SizeTable {
        mib,
        rounds,
        servers,
        rows,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_mostly_time_spent_in_client_timeouts() {
        assert!(!stalled_in_timeouts(0, Duration::from_secs(1)));
        assert!(!stalled_in_timeouts(1, Duration::from_secs(19)));
        assert!(stalled_in_timeouts(7, Duration::from_secs(63)));
        assert!(stalled_in_timeouts(3, Duration::from_secs(18)));
    }

    #[test]
    fn a_narrowed_window_is_measured_but_lock_step_in_a_windowed_row_is_not() {
        let combo = Combo {
            blksize: 8192,
            window: 64,
        };
        let grant = |window| {
            Ok(Grant {
                blksize: 8192,
                window,
            })
        };
        assert!(unmeasurable(&grant(64), combo).is_none());
        assert!(unmeasurable(&grant(12), combo).is_none(), "narrowed on purpose");
        assert!(matches!(unmeasurable(&grant(1), combo), Some(Cell::Granted(_))));
        let other_blksize = Ok(Grant {
            blksize: 1468,
            window: 64,
        });
        assert!(matches!(
            unmeasurable(&other_blksize, combo),
            Some(Cell::Granted(_))
        ));
    }
}
