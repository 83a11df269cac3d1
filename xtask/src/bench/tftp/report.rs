//! Results of a run, printed as aligned text and written as markdown, and the goals judged
//! from them.

use std::fmt::Write as _;

use super::clients::Grant;
use super::servers::Server;

/// A blksize/windowsize combination of the single-client matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Combo {
    pub(super) blksize: u32,
    pub(super) window: u32,
}

/// One server's figure for one combination.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    /// Medians of the rounds that completed.
    Measured {
        mbps: f64,
        cpu_per_gib: f64,
        /// Rounds run (fewer than the table's when it stalled).
        rounds: usize,
        /// Rounds in which the client failed or ran past its deadline.
        failures: usize,
        /// Client retransmission timeouts summed over all rounds.
        timeouts: u64,
        /// The window the server granted instead of the one asked for, when it narrowed it.
        narrowed_to: Option<u32>,
    },
    /// The server grants something other than what was asked, so no figure stands here.
    Granted(Grant),
    /// Every round failed, or the options probe did.
    Failed(String),
    /// Not measured at this size because it stalled at a smaller one.
    Skipped(String),
}

impl Cell {
    fn measured(&self) -> Option<(f64, f64)> {
        match self {
            Self::Measured {
                mbps, cpu_per_gib, ..
            } => Some((*mbps, *cpu_per_gib)),
            _ => None,
        }
    }

    fn text(&self, asked: Combo, table_rounds: usize) -> String {
        match self {
            Self::Measured {
                mbps,
                cpu_per_gib,
                rounds,
                failures,
                timeouts,
                narrowed_to,
            } => {
                let mut cell = format!("{mbps:.1} · {cpu_per_gib:.2}");
                if let Some(window) = narrowed_to {
                    let _ = write!(cell, " (grants w{window})");
                }
                if *rounds < table_rounds {
                    let _ = write!(cell, " ({rounds} rnd)");
                }
                if *timeouts > 0 {
                    let _ = write!(cell, " ({timeouts} to)");
                }
                if *failures > 0 {
                    let _ = write!(cell, " ({failures} failed)");
                }
                cell
            }
            Self::Granted(grant) => {
                let mut what = Vec::new();
                if grant.blksize != asked.blksize {
                    what.push(format!("bs {}", grant.blksize));
                }
                if grant.window != asked.window {
                    what.push(format!("w{}", grant.window));
                }
                format!("n/a (grants {})", what.join(" "))
            }
            Self::Failed(_) => "failed (see below)".to_owned(),
            Self::Skipped(why) => format!("skipped ({why})"),
        }
    }
}

/// The single-client matrix for one file size.
#[derive(Debug)]
pub(super) struct SizeTable {
    pub(super) mib: u64,
    pub(super) rounds: usize,
    pub(super) servers: Vec<Server>,
    /// Per combination: one cell per server, and the ping-pong limit where measured.
    pub(super) rows: Vec<(Combo, Vec<Cell>, Option<Limit>)>,
}

/// Medians of the ping-pong runs, MB/s.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    /// One `send` per datagram.
    pub(super) plain: f64,
    /// UDP GSO sends.
    pub(super) gso: f64,
    /// CPU seconds per GiB of the sender sending one datagram per `send`.
    pub(super) plain_cpu_per_gib: f64,
}

impl Limit {
    /// The limit the goal is stated against: the bare ping-pong, one `send` per datagram. The
    /// GSO sender is shown next to it as the stricter reference a batching server could reach.
    pub(super) fn reference(self) -> f64 {
        self.plain
    }
}

impl SizeTable {
    fn cell(&self, combo: Combo, server: Server) -> Option<&Cell> {
        let column = self.servers.iter().position(|&s| s == server)?;
        let (_, cells, _) = self.rows.iter().find(|(c, _, _)| *c == combo)?;
        cells.get(column)
    }

    fn limit(&self, combo: Combo) -> Option<Limit> {
        self.rows.iter().find(|(c, _, _)| *c == combo)?.2
    }

    pub(super) fn table(&self) -> Table {
        let ours = self.servers.iter().position(|&s| s == Server::PxeTftp);
        let mut header = vec!["blksize".to_owned(), "window".to_owned()];
        for (i, server) in self.servers.iter().enumerate() {
            header.push(format!("{} MB/s · CPU", server.name()));
            if ours.is_some() && Some(i) != ours {
                header.push(format!("÷ {}", server.name()));
            }
        }
        header.push("ping-pong MB/s send · GSO".to_owned());
        header.push("ping-pong sender CPU".to_owned());
        if ours.is_some() {
            header.push("% of limit send · GSO".to_owned());
        }
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for (combo, cells, limit) in &self.rows {
            for (server, cell) in self.servers.iter().zip(cells) {
                if let Cell::Failed(why) = cell {
                    notes.push(format!(
                        "{} blksize {} window {} failed: {why}",
                        server.name(),
                        combo.blksize,
                        combo.window
                    ));
                }
            }
            let mine = ours.and_then(|i| cells[i].measured());
            let mut row = vec![combo.blksize.to_string(), combo.window.to_string()];
            for (i, cell) in cells.iter().enumerate() {
                row.push(cell.text(*combo, self.rounds));
                if ours.is_some() && Some(i) != ours {
                    row.push(match (mine, cell.measured()) {
                        (Some((m, mc)), Some((p, pc))) => {
                            format!("x{:.2} · x{:.2}", m / p, mc / pc)
                        }
                        _ => "–".to_owned(),
                    });
                }
            }
            row.push(limit.map_or("–".to_owned(), |l| format!("{:.1} · {:.1}", l.plain, l.gso)));
            row.push(limit.map_or("–".to_owned(), |l| format!("{:.2}", l.plain_cpu_per_gib)));
            if ours.is_some() {
                row.push(match (mine, limit) {
                    (Some((m, _)), Some(l)) => {
                        format!("{:.0}% · {:.0}%", 100.0 * m / l.plain, 100.0 * m / l.gso)
                    }
                    _ => "–".to_owned(),
                });
            }
            rows.push(row);
        }
        Table {
            title: format!(
                "{} MiB, single client (atftp): median of {} round{}; cell = MB/s · server CPU s/GiB; \
                 ÷ peer = pxe-tftp's throughput ÷ peer's · CPU ÷ peer's; \"to\" = client timeouts; \
                 % of limit = pxe-tftp ÷ the ping-pong with one send per datagram (the goal's limit) · ÷ the GSO sender; \
                 ping-pong sender CPU = s/GiB of a bare loop of blocking sends and receives (no file, no bookkeeping)",
                self.mib,
                self.rounds,
                if self.rounds == 1 { "" } else { "s" }
            ),
            header,
            rows,
            notes,
        }
    }
}

/// One server's storm.
#[derive(Debug)]
pub(super) struct StormRow {
    pub(super) server: Server,
    pub(super) wall_seconds: f64,
    pub(super) failures: usize,
    pub(super) timeouts: u64,
    pub(super) peak_rss_kib: u64,
    /// Server CPU seconds over the storm (with 200 clients on two cores the wall time is
    /// mostly the clients'; this is what the server itself spent).
    pub(super) cpu_seconds: f64,
}

/// The storm for every server.
#[derive(Debug)]
pub(super) struct StormTable {
    pub(super) clients: usize,
    pub(super) mib: u64,
    pub(super) rows: Vec<StormRow>,
}

impl StormTable {
    fn row(&self, server: Server) -> Option<&StormRow> {
        self.rows.iter().find(|r| r.server == server)
    }

    pub(super) fn table(&self) -> Table {
        let ours = self.row(Server::PxeTftp).map(|r| r.wall_seconds);
        let header = [
            "server",
            "wall s",
            "pxe-tftp ÷",
            "failures",
            "client timeouts",
            "peak RSS MiB",
            "server CPU s",
        ]
        .map(str::to_owned)
        .to_vec();
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.server.name().to_owned(),
                    format!("{:.1}", r.wall_seconds),
                    ours.map_or("–".to_owned(), |o| format!("x{:.2}", o / r.wall_seconds)),
                    r.failures.to_string(),
                    r.timeouts.to_string(),
                    format!("{:.1}", r.peak_rss_kib as f64 / 1024.0),
                    format!("{:.1}", r.cpu_seconds),
                ]
            })
            .collect();
        Table {
            title: format!(
                "storm: {} atftp clients fetch {} MiB at once, blksize 1468, lock-step; wall = first \
                 start to last exit; client timeouts = atftp retransmission timer expiries (5 s each); \
                 RSS summed over the server's processes; server CPU = its cgroup's CPU time over the storm",
                self.clients, self.mib
            ),
            header,
            rows,
            notes: Vec::new(),
        }
    }
}

/// A titled table.
pub(super) struct Table {
    pub(super) title: String,
    pub(super) header: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
    /// Lines printed under the table.
    pub(super) notes: Vec<String>,
}

impl Table {
    /// Aligned columns for the terminal.
    pub(super) fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (cell, width) in cells.iter().zip(&widths) {
                let pad = width.saturating_sub(cell.chars().count());
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
            out.trim_end().to_owned()
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.header));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }

    /// A markdown table under a bold title.
    pub(super) fn markdown(&self) -> String {
        let mut out = format!("**{}**\n\n| {} |\n|", self.title, self.header.join(" | "));
        for _ in &self.header {
            out.push_str("---:|");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }
}

/// One goal and whether the measured figures meet it.
pub(super) struct Goal {
    pub(super) statement: String,
    /// `None` when a figure it needs was not measured.
    pub(super) pass: Option<bool>,
    pub(super) evidence: String,
}

impl Goal {
    pub(super) fn line(&self) -> String {
        let verdict = match self.pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "n/a ",
        };
        format!("[{verdict}] {}: {}", self.statement, self.evidence)
    }
}

/// Judges every goal of the benchmark against one measured value per size; a goal passes
/// when it holds at every size.
fn per_size(
    tables: &[SizeTable],
    statement: String,
    check: impl Fn(&SizeTable) -> Option<(bool, String)>,
) -> Goal {
    let mut pass = Some(true);
    let mut evidence = Vec::new();
    for table in tables {
        match check(table) {
            Some((ok, text)) => {
                if !ok {
                    pass = pass.map(|_| false);
                }
                evidence.push(format!("{} MiB {text}", table.mib));
            }
            None => {
                pass = None;
                evidence.push(format!("{} MiB not measured", table.mib));
            }
        }
    }
    if tables.is_empty() {
        pass = None;
        evidence.push("no single-client run".to_owned());
    }
    Goal {
        statement,
        pass,
        evidence: evidence.join("; "),
    }
}

/// The goals of pxe-tftp against its peers, from the measured figures.
pub(super) fn goals(tables: &[SizeTable], storm: Option<&StormTable>) -> Vec<Goal> {
    let pair = |t: &SizeTable, combo: Combo, peer: Server| {
        let ours = t.cell(combo, Server::PxeTftp)?.measured()?;
        let theirs = t.cell(combo, peer)?.measured()?;
        Some((ours, theirs))
    };
    let lock_step = Combo {
        blksize: 1468,
        window: 1,
    };
    let mut goals = vec![
        per_size(
            tables,
            "lock-step (w1, blksize 1468) throughput ≥ tftpd-hpa's".to_owned(),
            |t| {
                let ((m, _), (p, _)) = pair(t, lock_step, Server::TftpdHpa)?;
                Some((m >= p, format!("{m:.1} vs {p:.1} MB/s (x{:.2})", m / p)))
            },
        ),
        per_size(
            tables,
            "lock-step (w1, blksize 1468) CPU/GiB ≤ ½ tftpd-hpa's".to_owned(),
            |t| {
                let ((_, m), (_, p)) = pair(t, lock_step, Server::TftpdHpa)?;
                let mut evidence = format!("{m:.2} vs {p:.2} s/GiB (x{:.2})", m / p);
                if let Some(floor) = t.limit(lock_step) {
                    let bare = floor.plain_cpu_per_gib;
                    evidence.push_str(&format!(
                        "; a bare send/recv loop pays {bare:.2} s/GiB, {:.0}% of tftpd-hpa's",
                        100.0 * bare / p
                    ));
                }
                Some((m <= p / 2.0, evidence))
            },
        ),
    ];
    for window in [16, 64] {
        let combo = Combo {
            blksize: 1468,
            window,
        };
        goals.push(per_size(
            tables,
            format!("w{window} (blksize 1468) throughput ≥ 1.5× atftpd's"),
            |t| {
                let ((m, _), (p, _)) = pair(t, combo, Server::Atftpd)?;
                Some((m >= 1.5 * p, format!("{m:.1} vs {p:.1} MB/s (x{:.2})", m / p)))
            },
        ));
        goals.push(per_size(
            tables,
            format!("w{window} (blksize 1468) throughput ≥ 85% of the ping-pong limit"),
            |t| {
                let (m, _) = t.cell(combo, Server::PxeTftp)?.measured()?;
                let limit = t.limit(combo)?;
                let reference = limit.reference();
                Some((
                    m >= 0.85 * reference,
                    format!(
                        "{m:.1} of {reference:.1} MB/s ({:.0}%; the GSO sender's {:.1} MB/s: {:.0}%)",
                        100.0 * m / reference,
                        limit.gso,
                        100.0 * m / limit.gso
                    ),
                ))
            },
        ));
        goals.push(per_size(
            tables,
            format!("w{window} (blksize 1468) CPU/GiB ≤ ½ atftpd's"),
            |t| {
                let ((_, m), (_, p)) = pair(t, combo, Server::Atftpd)?;
                Some((m <= p / 2.0, format!("{m:.2} vs {p:.2} s/GiB (x{:.2})", m / p)))
            },
        ));
    }
    let ours = storm.and_then(|s| s.row(Server::PxeTftp));
    let dnsmasq = storm.and_then(|s| s.row(Server::Dnsmasq));
    let storm_goal = |statement: &str, judged: Option<(bool, String)>| Goal {
        statement: statement.to_owned(),
        pass: judged.as_ref().map(|(ok, _)| *ok),
        evidence: judged.map_or("not measured".to_owned(), |(_, e)| e),
    };
    goals.push(storm_goal(
        "storm wall time ≤ 0.7× dnsmasq's",
        ours.zip(dnsmasq).map(|(o, d)| {
            (
                o.wall_seconds <= 0.7 * d.wall_seconds,
                format!(
                    "{:.1} vs {:.1} s (x{:.2})",
                    o.wall_seconds,
                    d.wall_seconds,
                    o.wall_seconds / d.wall_seconds
                ),
            )
        }),
    ));
    goals.push(storm_goal(
        "storm: 0 failed clients",
        ours.map(|o| (o.failures == 0, format!("{} failed", o.failures))),
    ));
    goals.push(storm_goal(
        "storm: 0 client timeouts",
        ours.map(|o| (o.timeouts == 0, format!("{} timeouts", o.timeouts))),
    ));
    goals.push(storm_goal(
        "storm: peak RSS < 64 MiB",
        ours.map(|o| {
            let mib = o.peak_rss_kib as f64 / 1024.0;
            (mib < 64.0, format!("{mib:.1} MiB"))
        }),
    ));
    goals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(mbps: f64, cpu_per_gib: f64) -> Cell {
        Cell::Measured {
            mbps,
            cpu_per_gib,
            rounds: 3,
            failures: 0,
            timeouts: 0,
            narrowed_to: None,
        }
    }

    fn table() -> SizeTable {
        let combo = |blksize, window| Combo { blksize, window };
        let no_window = Cell::Granted(Grant {
            blksize: 1468,
            window: 1,
        });
        SizeTable {
            mib: 64,
            rounds: 3,
            servers: vec![Server::PxeTftp, Server::TftpdHpa, Server::Atftpd],
            rows: vec![
                (
                    combo(1468, 1),
                    vec![measured(100.0, 2.0), measured(90.0, 5.0), measured(80.0, 6.0)],
                    Some(Limit {
                        plain: 110.0,
                        gso: 110.0,
                        plain_cpu_per_gib: 1.5,
                    }),
                ),
                (
                    combo(1468, 16),
                    vec![measured(300.0, 1.0), no_window.clone(), measured(100.0, 4.0)],
                    Some(Limit {
                        plain: 400.0,
                        gso: 500.0,
                        plain_cpu_per_gib: 1.0,
                    }),
                ),
                (
                    combo(1468, 64),
                    vec![measured(300.0, 1.0), no_window, measured(250.0, 4.0)],
                    Some(Limit {
                        plain: 200.0,
                        gso: 330.0,
                        plain_cpu_per_gib: 1.5,
                    }),
                ),
            ],
        }
    }

    fn verdict<'a>(goals: &'a [Goal], statement: &str) -> &'a Goal {
        goals
            .iter()
            .find(|g| g.statement == statement)
            .unwrap_or_else(|| panic!("no goal {statement:?}"))
    }

    #[test]
    fn goals_follow_the_figures() {
        let storm = StormTable {
            clients: 200,
            mib: 16,
            rows: vec![
                StormRow {
                    server: Server::PxeTftp,
                    wall_seconds: 10.0,
                    failures: 0,
                    timeouts: 2,
                    peak_rss_kib: 20 << 10,
                    cpu_seconds: 3.0,
                },
                StormRow {
                    server: Server::Dnsmasq,
                    wall_seconds: 20.0,
                    failures: 0,
                    timeouts: 0,
                    peak_rss_kib: 5 << 10,
                    cpu_seconds: 9.0,
                },
            ],
        };
        let goals = goals(&[table()], Some(&storm));
        let pass = |s: &str| verdict(&goals, s).pass;
        assert_eq!(
            pass("lock-step (w1, blksize 1468) throughput ≥ tftpd-hpa's"),
            Some(true)
        );
        assert_eq!(
            pass("lock-step (w1, blksize 1468) CPU/GiB ≤ ½ tftpd-hpa's"),
            Some(true)
        );
        let floor = &verdict(&goals, "lock-step (w1, blksize 1468) CPU/GiB ≤ ½ tftpd-hpa's").evidence;
        assert!(
            floor.contains("bare send/recv loop pays 1.50 s/GiB, 30%"),
            "{floor}"
        );
        assert_eq!(pass("w16 (blksize 1468) throughput ≥ 1.5× atftpd's"), Some(true));
        // 300 of the plain sender's 400 MB/s is 75%.
        assert_eq!(
            pass("w16 (blksize 1468) throughput ≥ 85% of the ping-pong limit"),
            Some(false)
        );
        assert_eq!(pass("w64 (blksize 1468) throughput ≥ 1.5× atftpd's"), Some(false));
        assert_eq!(
            pass("w64 (blksize 1468) throughput ≥ 85% of the ping-pong limit"),
            Some(true)
        );
        assert_eq!(pass("storm wall time ≤ 0.7× dnsmasq's"), Some(true));
        assert_eq!(pass("storm: 0 client timeouts"), Some(false));
        assert_eq!(pass("storm: peak RSS < 64 MiB"), Some(true));
    }

    #[test]
    fn goals_without_figures_are_not_judged() {
        let goals = goals(&[], None);
        assert!(
            goals.iter().all(|g| g.pass.is_none()),
            "nothing measured, nothing judged"
        );
    }

    #[test]
    fn a_peer_granting_less_shows_what_it_grants_and_no_ratio() {
        let text = table().table().text();
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("1468      16"))
            .unwrap();
        assert!(row.contains("n/a (grants w1)"), "{row}");
        assert!(row.contains("x3.00 · x0.25"), "ratio against atftpd: {row}");
        assert!(row.contains("75%"), "share of the limit: {row}");
        let markdown = table().table().markdown();
        assert_eq!(markdown.lines().filter(|l| l.starts_with("| 1468 |")).count(), 3);
    }
}
