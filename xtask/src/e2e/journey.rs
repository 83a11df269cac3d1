//! Live narration of a boot for `cargo xtask demo`: new serial-console lines that mark a step
//! of the firmware's journey, and new service log lines about the booting machines, printed
//! as they appear with the time since the start.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Instant;

/// Serial console text that marks a step worth showing.
const SERIAL_STEPS: &[&str] = &[
    "iPXE 1.0",
    "Configuring",
    "PXEBS",
    "Filename:",
    "... ok",
    "Station IP",
    ">>Start PXE",
    ">>Start HTTP",
    "Downloading NBP",
    "URI:",
    "NETBOOT-E2E",
    "Booting from Hard Disk",
    "No bootable device",
];

/// Follows a set of log files and prints the interesting new lines.
pub(crate) struct Journey {
    started: Instant,
    sources: Vec<Source>,
    /// Service log text that identifies a booting machine: its MAC, and its address as the
    /// TFTP (`peer=IP:`) and HTTP (`remote=IP `) logs write it.
    needles: Vec<String>,
}

struct Source {
    label: String,
    path: PathBuf,
    offset: u64,
    partial: String,
    serial: bool,
}

impl Journey {
    /// Narrates service log lines about these machines (MAC and reserved address).
    pub(crate) fn new(machines: &[(String, std::net::Ipv4Addr)]) -> Self {
        let needles = machines
            .iter()
            .flat_map(|(mac, ip)| [mac.clone(), format!("peer={ip}:"), format!("remote={ip} ")])
            .collect();
        Self {
            started: Instant::now(),
            sources: Vec::new(),
            needles,
        }
    }

    /// Follows a service log.
    pub(crate) fn follow_service(&mut self, label: &str, path: PathBuf) {
        self.sources.push(Source {
            label: label.to_owned(),
            path,
            offset: 0,
            partial: String::new(),
            serial: false,
        });
    }

    /// Follows a serial console.
    pub(crate) fn follow_serial(&mut self, label: &str, path: PathBuf) {
        self.sources.push(Source {
            label: label.to_owned(),
            path,
            offset: 0,
            partial: String::new(),
            serial: true,
        });
    }

    /// Prints what appeared since the last call.
    pub(crate) fn poll(&mut self) {
        for source in &mut self.sources {
            for line in source.read_new_lines() {
                let show = if source.serial {
                    SERIAL_STEPS.iter().any(|step| line.contains(step))
                } else {
                    self.needles.iter().any(|needle| line.contains(needle.as_str()))
                };
                if show {
                    let message = if source.serial {
                        line.as_str()
                    } else {
                        without_timestamp(&line)
                    };
                    let elapsed = self.started.elapsed().as_secs_f64();
                    println!("[{elapsed:6.1}s] {:<16} {message}", source.label);
                }
            }
        }
    }
}

impl Source {
    fn read_new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&clean(&String::from_utf8_lossy(&bytes)));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_owned).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
            .into_iter()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// A service log line without its leading RFC 3339 timestamp (the narration has its own clock).
fn without_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((first, rest)) if first.len() > 20 && first.ends_with('Z') && first.contains('T') => {
            rest.trim_start()
        }
        _ => line,
    }
}

/// Removes ANSI escape sequences, carriage returns and backspace animations from console text.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => out.push('\n'),
            '\u{8}' => {
                out.pop();
            }
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn service_timestamps_are_dropped() {
        assert_eq!(
            super::without_timestamp("2026-11-25T15:58:16.340378Z  INFO pxe_proxy::serve: answered"),
            "INFO pxe_proxy::serve: answered"
        );
        assert_eq!(super::without_timestamp("plain line"), "plain line");
    }

    #[test]
    fn console_noise_is_removed() {
        assert_eq!(clean("\u{1b}[0;1miPXE\u{1b}[0m ok\r\n"), "iPXE ok\n\n");
        assert_eq!(clean("wait...x\u{8} \u{8}done"), "wait...done");
    }
}
