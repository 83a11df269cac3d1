//! The project's own services on the PXE side: built with `cargo build`, started from one
//! shared configuration file written by the harness, either together in one namespace or
//! each in its own.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::client::{ClientSpec, Expect, Firmware};
use super::lab::{ClientAddr, Lab, Layout};
use super::process::Spawned;
use super::scenario::LabKind;

/// The services, in start order, with the lab role that runs each in the split layout.
const SERVICES: &[(&str, &str)] = &[
    ("pxe-https", "https"),
    ("pxe-tftp", "tftp"),
    ("pxe-proxy", "proxy"),
];

/// The all-in-one binary, which runs all three roles in one process.
const ALL_IN_ONE: &str = "pxe-server";

/// How long a service may take to log `listening on`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths of the built service binaries, and the lab's iPXE build.
pub(crate) struct Binaries {
    dir: PathBuf,
    /// The iPXE boot programs (a build cache entry), trusting the test CA.
    pub(crate) ipxe: PathBuf,
}

/// Builds the service binaries (debug profile, like `cargo test`) and the lab's iPXE (once; a
/// later run takes it from the cache).
pub(crate) fn build(workspace: &Path) -> Result<Binaries> {
    let ipxe = crate::ipxe::build_for_lab(workspace, &super::lab_arches())?.dir;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The compatibility TLS listener serves OVMF's HTTPS Boot (scenario uefi-https).
    command
        .current_dir(workspace)
        .args(["build", "--features", "pxe-https/openssl-compat"]);
    for package in SERVICES.iter().map(|(package, _)| *package).chain([ALL_IN_ONE]) {
        command.args(["-p", package]);
    }
    crate::ci::run_step("cargo build (services for the lab)", &mut command)?;
    Ok(Binaries {
        dir: workspace.join("target/debug"),
        ipxe,
    })
}

/// Running services; dropping stops them.
pub(crate) struct Services {
    processes: Vec<Spawned>,
    kind: LabKind,
}

impl Services {
    /// Writes the shared configuration and the per-machine scripts, then starts each service
    /// on its host and waits until each has logged `listening on`.
    pub(crate) fn start(
        binaries: &Binaries,
        lab: &Lab,
        layout: Layout,
        dir: &Path,
        clients: &[ClientSpec],
        kind: LabKind,
    ) -> Result<Self> {
        let config = super::project_config::write(lab, dir, clients, kind, &binaries.ipxe)?;
        let mut processes = Vec::new();
        if kind == LabKind::Auth {
            processes.push(super::auth::start_directory(dir, lab.host("https"))?);
        }
        let all_in_one = [(ALL_IN_ONE, "pxe")];
        let services = if layout == Layout::AllInOne {
            &all_in_one[..]
        } else {
            SERVICES
        };
        for (package, role) in services {
            let host = lab.host(role);
            let program = binaries.dir.join(package);
            let log = dir.join(format!("{package}.log"));
            let args = vec!["--config".to_owned(), config.display().to_string()];
            let mut process =
                Spawned::start(package, &host.netns, &log, &program.display().to_string(), &args)?;
            wait_listening(&mut process)?;
            processes.push(process);
        }
        if kind == LabKind::Measure {
            let https = lab.host("https");
            let program = binaries.dir.join("pxe-https");
            for mut server in
                super::measure::start_key_type_servers(&program, &config, &https.netns, https.ip, dir)?
            {
                wait_listening(&mut server)?;
                processes.push(server);
            }
        }
        let peerdist: Vec<_> = clients.iter().filter_map(|c| c.measurement).collect();
        if peerdist.iter().any(|m| m.peerdist_file().is_some()) {
            let https = lab.host("https");
            super::measure::prepare_peerdist(
                &https.netns,
                https.ip,
                super::project_config::HTTPS_PORT,
                &dir.join("state"),
                &peerdist,
            )?;
        }
        Ok(Self { processes, kind })
    }

    /// The services' log files, labelled by binary.
    pub(crate) fn logs(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.processes.iter().map(|p| (p.name(), p.log()))
    }

    /// Fails when a service has exited.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        for p in &mut self.processes {
            if !p.is_running() {
                bail!("{} exited; see {}", p.name(), p.log().display());
            }
        }
        Ok(())
    }

    /// The services' side of a boot: some service logged the client's MAC with the
    /// architecture this firmware must report and the decision the rules give it, and the
    /// boot program went the way this firmware fetches it (TFTP for UEFI PXE, HTTP for UEFI
    /// HTTP Boot), to the address the site DHCP server reserved for it.
    pub(crate) fn check_logs(&self, client: &ClientSpec, ip: &ClientAddr) -> Result<()> {
        // Logs may be coloured; compare the text without escape sequences.
        let text: String = self
            .processes
            .iter()
            .map(|p| super::journey::clean(&std::fs::read_to_string(p.log()).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(&client.mac)).collect();
        if lines.is_empty() {
            bail!("no service logged {}", client.mac);
        }
        let arches = client.firmware.expected_arches();
        if !lines
            .iter()
            .any(|l| arches.iter().any(|arch| mentions_arch(l, arch)))
        {
            bail!(
                "the services logged {} but never with arch {arches:?}",
                client.mac
            );
        }
        // An IPv6 client's addresses: what its console showed, plus those the services
        // logged with its MAC (the 4011 reply's target, iPXE's decision requests).
        let ip = &match ip {
            ClientAddr::V6(seen) => {
                let mut all = seen.clone();
                all.extend(addresses_logged_with(&lines, &client.mac));
                all.sort_unstable();
                all.dedup();
                ClientAddr::V6(all)
            }
            v4 => v4.clone(),
        };
        let peers = ip.peers();
        let remotes = ip.remotes();
        // Some line holds every needle and one of the client's `peer=` or `remote=` forms.
        let from = |forms: &[String], needles: &[&str]| {
            text.lines().any(|l| {
                forms.iter().any(|f| l.contains(f.as_str())) && needles.iter().all(|n| l.contains(n))
            })
        };
        let fetched = |needles: &[&str]| text.lines().any(|l| needles.iter().all(|n| l.contains(n)));
        if client.expect == Expect::TlsRefused {
            if !from(&peers, &["TLS handshake failed"]) && !from(&peers, &["TLS handshake timed out"]) {
                bail!(
                    "pxe-https never logged a failed TLS handshake with {ip} ({})",
                    client.mac
                );
            }
            let mac = format!("mac={}", client.mac);
            if from(&remotes, &["entry script"]) || fetched(&[&mac, "boot decision"]) {
                bail!(
                    "{} got a script although its iPXE does not trust the server",
                    client.mac
                );
            }
            return Ok(());
        }
        // Every script came over TLS: the entry script was served on the TLS listener.
        if !from(&peers, &["TLS handshake done"]) || !from(&remotes, &["entry script", "tls=true"]) {
            bail!(
                "pxe-https never served {ip} ({}) its entry script over TLS",
                client.mac
            );
        }
        if self.kind == LabKind::Auth {
            let mac = format!("mac={}", client.mac);
            let accepted = fetched(&[&mac, "login accepted"]);
            let refused = fetched(&[&mac, "login refused"]);
            match client.expect {
                Expect::Script if !accepted => {
                    bail!("pxe-https never logged accepting a login from {}", client.mac)
                }
                Expect::LoginRefused if accepted || !refused => {
                    bail!(
                        "pxe-https accepted a login from {} or never refused one",
                        client.mac
                    )
                }
                Expect::LoginRefused if from(&remotes, &[&format!("path=\"/e2e/{}.ipxe\"", client.name)]) => {
                    bail!(
                        "{} was refused every login but fetched its boot script",
                        client.mac
                    )
                }
                _ => {}
            }
        }
        let decision = match client.expect {
            Expect::Script | Expect::Wimboot | Expect::LoginRefused => "decision=\"boot\"",
            Expect::NextBootDevice => "decision=\"exit\"",
            Expect::TlsRefused => unreachable!("handled above"),
        };
        if !lines.iter().any(|l| l.contains(decision)) {
            bail!("no service logged {decision} for {}", client.mac);
        }
        if let Some(problem) = super::scenario::journey_log_problem(client, &text, ip) {
            bail!("{problem}");
        }
        if client.expect == Expect::Wimboot {
            let ClientAddr::V4(ip) = ip else {
                bail!("the wimboot check needs the client's IPv4 address");
            };
            if let Some(problem) = super::wimboot::missing_downloads(&text, *ip) {
                bail!("{problem}");
            }
        }
        let probe = format!("path=\"/{}\"", super::measure::PROBE);
        if client.measurement == Some(super::measure::Measurement::Features)
            && !from(&remotes, &[&probe, "peerdist=true"])
        {
            bail!("{ip} ({}) fetched {probe} without PeerDist headers", client.mac);
        }
        if let Some((file, _)) = client
            .measurement
            .and_then(super::measure::Measurement::peerdist_file)
        {
            let path = format!("path=\"/{file}\"");
            if !from(&remotes, &["PeerDist answer", &path]) {
                bail!(
                    "pxe-https never logged a PeerDist answer for /{file} to {ip} ({})",
                    client.mac
                );
            }
            if client.measurement == Some(super::measure::Measurement::PeerDist)
                && !from(&remotes, &["PeerDist missing-data range", &path])
            {
                bail!(
                    "pxe-https never logged a missing-data range of /{file} for {ip} ({})",
                    client.mac
                );
            }
        }
        let x64 = super::project_config::x64_boot_file(self.kind);
        let x64_path = format!("/{x64}");
        match client.firmware {
            Firmware::UefiPxe | Firmware::UefiPxe6 if !from(&peers, &["sent", &format!("path={x64}")]) => {
                bail!("pxe-tftp never logged sending {x64} to {ip} ({})", client.mac)
            }
            Firmware::Arm64Uefi if !from(&peers, &["sent", "path=snponly-arm64.efi"]) => {
                bail!(
                    "pxe-tftp never logged sending snponly-arm64.efi to {ip} ({})",
                    client.mac
                )
            }
            Firmware::UefiHttp | Firmware::UefiHttps | Firmware::UefiHttp6
                if !from(&remotes, &["GET", &x64_path, "status=200"]) =>
            {
                bail!(
                    "pxe-https never logged serving {x64_path} to {ip} ({})",
                    client.mac
                )
            }
            // The NBP must have come over the OpenSSL listener, not plain HTTP.
            Firmware::UefiHttps if !from(&peers, &["compat TLS handshake done"]) => {
                bail!(
                    "pxe-https never logged a compat TLS handshake with {ip} ({})",
                    client.mac
                )
            }
            _ => Ok(()),
        }
    }
}

/// The IPv6 addresses the services logged for the client with `mac` (its lines): the target
/// of the proxy's port-4011 reply (`to=[addr]:4011`) and the `remote=` of pxe-https's
/// decision requests.
fn addresses_logged_with(lines: &[&str], mac: &str) -> Vec<Ipv6Addr> {
    let mac = format!("mac={mac}");
    let mut found = Vec::new();
    for line in lines.iter().filter(|l| l.contains(&mac)) {
        for (key, end) in [("to=[", ']'), ("remote=", ' ')] {
            for (at, _) in line.match_indices(key) {
                let rest = &line[at + key.len()..];
                let value = rest.split(end).next().unwrap_or_default();
                if let Ok(address) = value.trim_end_matches(',').parse::<Ipv6Addr>() {
                    found.push(address);
                }
            }
        }
    }
    found
}

/// Whether `line` names `arch` as a whole word (`x64-uefi` must not match `x64-uefi-http`).
fn mentions_arch(line: &str, arch: &str) -> bool {
    line.match_indices(arch).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + arch.len()..].chars().next();
        let boundary =
            |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        boundary(before) && boundary(after)
    })
}

/// Waits for the `listening on` log line, failing early when the process exits.
fn wait_listening(process: &mut Spawned) -> Result<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(process.log()).unwrap_or_default();
        if text.contains("listening on") {
            return Ok(());
        }
        if !process.is_running() {
            bail!("{} exited during start-up:\n{}", process.name(), tail(&text));
        }
        if Instant::now() >= deadline || super::interrupted() {
            bail!(
                "{} did not log `listening on` within {:?}:\n{}",
                process.name(),
                STARTUP_TIMEOUT,
                tail(&text)
            );
        }
        sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::{addresses_logged_with, mentions_arch};

    #[test]
    fn ipv6_addresses_logged_with_a_mac_are_found() {
        let lines = [
            "x INFO pxe_proxy::dhcpv6: answered mac=52:54:00:e2:11:00 arch=x64-uefi socket=\"pxe6\" to=[fd77:0:0:77::1a2]:4011 url=tftp://[fd77:0:0:77::1]/ipxe.efi",
            "x INFO pxe_https::app: boot decision mac=52:54:00:e2:11:00 uuid=u arch=x64-uefi remote=fd77:0:0:77::1b3 decision=\"boot\"",
            "x INFO pxe_https::app: boot decision mac=52:54:00:e2:12:00 remote=fd77:0:0:77::1c4 decision=\"boot\"",
            "x INFO pxe_https::app: boot decision mac=52:54:00:e2:11:00 remote=10.77.0.101 decision=\"boot\"",
        ];
        let found: Vec<String> = addresses_logged_with(&lines, "52:54:00:e2:11:00")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["fd77:0:0:77::1a2", "fd77:0:0:77::1b3"]);
    }

    #[test]
    fn arch_names_match_whole_words_only() {
        assert!(mentions_arch(
            "mac=52:54:00:e2:02:00 arch=x64-uefi stage=ipxe",
            "x64-uefi"
        ));
        assert!(!mentions_arch("arch=x64-uefi-http", "x64-uefi"));
        assert!(mentions_arch("arch=\"x64-uefi-http\"", "x64-uefi-http"));
        assert!(!mentions_arch("arch=x86-bios", "bios"));
    }
}
