//! The storm: many lock-step clients fetching one file from one server at once.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::clients::{self, Fetch};
use super::eta::minutes;
use super::eta::Eta;
use super::report::{StormRow, StormTable};
use super::servers::{self, Running};
use super::{file_name, Args};
use crate::bench::NamespacePair;

pub(super) fn storm_all(
    args: &Args,
    running: &[Running],
    ns: &NamespacePair,
    logs: &Path,
    eta: &mut Eta,
) -> Result<StormTable> {
    let mut rows = Vec::new();
    for r in running {
        let started = Instant::now();
        let row = storm(
            r,
            ns,
            &file_name(args.storm_mib),
            args.storm_mib,
            args.storm_clients,
            logs,
        )?;
        eprintln!(
            "  storm {}: {:.1} s, {} failed, {} client timeouts; about {} left",
            r.server.name(),
            row.wall_seconds,
            row.failures,
            row.timeouts,
            minutes(eta.storm_done(started.elapsed()))
        );
        rows.push(row);
    }
    Ok(StormTable {
        clients: args.storm_clients,
        mib: args.storm_mib,
        rows,
    })
}

fn storm(
    r: &Running,
    ns: &NamespacePair,
    file: &str,
    mib: u64,
    clients: usize,
    logs: &Path,
) -> Result<StormRow> {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), r.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(servers::tree_rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let fetch = Fetch {
        server: r.server,
        file,
        blksize: 1468,
        window: 1,
    };
    let fetches = vec![fetch; clients];
    // A client slower than 10 MB/s of the storm's total has failed.
    let deadline = Duration::from_secs(60) + Duration::from_secs(clients as u64 * (mib << 20) / 10_000_000);
    let cpu_before = r.cpu_seconds()?;
    let outcomes = clients::run_clients(&ns.client, &fetches, false, deadline, logs);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let outcomes = outcomes?;
    // Let forked transfer processes finish exiting.
    std::thread::sleep(Duration::from_millis(200));
    let cpu_seconds = r.cpu_seconds()? - cpu_before;
    let wall = outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default();
    Ok(StormRow {
        server: r.server,
        wall_seconds: wall.as_secs_f64(),
        failures: outcomes.iter().filter(|o| !o.ok).count(),
        timeouts: outcomes.iter().map(|o| o.timeouts).sum(),
        peak_rss_kib: peak.load(Ordering::Relaxed),
        cpu_seconds,
    })
}
