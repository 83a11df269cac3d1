//! The scenarios and the loop that boots their clients and judges them.

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::client::{ClientSpec, Expect, Firmware, RunningClient, Verdict};
use super::interrupted;
use super::journey::Journey;
use super::lab::Lab;

/// A named set of clients booted at the same time.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Name for `--scenario`.
    pub(crate) name: &'static str,
    /// What it proves.
    pub(crate) about: &'static str,
    /// Part of the default run (otherwise only with `--all` or by name).
    pub(crate) default: bool,
    /// Its clients, started together.
    pub(crate) clients: Vec<ClientSpec>,
}

/// Every scenario, in the order they run.
pub(crate) fn catalogue() -> Vec<Scenario> {
    use Expect::{NextBootDevice, Script, Wimboot};
    use Firmware::{Bios, UefiHttp, UefiHttps, UefiPxe};
    vec![
        Scenario {
            name: "bios",
            about: "SeaBIOS + QEMU's iPXE NIC ROM -> proxy offer -> TFTP undionly.kpxe -> iPXE asks again -> script URL -> script",
            default: true,
            clients: vec![ClientSpec::new("bios", Bios, 1, 0, Script)],
        },
        Scenario {
            name: "uefi-pxe",
            about: "OVMF native PXE -> proxy offer -> REQUEST/ACK on 4011 -> TFTP snponly.efi (blksize 1468, windowsize 4) -> iPXE -> script",
            default: true,
            clients: vec![ClientSpec::new("uefi-pxe", UefiPxe, 2, 0, Script)],
        },
        Scenario {
            name: "uefi-http",
            about: "OVMF HTTP Boot (HTTPClient) -> proxy offer with URL -> NBP over HTTP -> iPXE -> script",
            default: true,
            clients: vec![ClientSpec::new("uefi-http", UefiHttp, 3, 0, Script)],
        },
        Scenario {
            name: "uefi-https",
            about: "OVMF HTTPS Boot, lab CA via fw_cfg -> NBP over TLS 1.2 (DHE-RSA or RSA kex, AES-GCM) from the compat listener -> iPXE -> script",
            // The proxy has one HTTP Boot URL per site, so this runs in a lab of its own.
            default: true,
            clients: vec![ClientSpec::new("uefi-https", UefiHttps, 4, 0, Script)],
        },
        Scenario {
            name: "no-action",
            about:
                "a machine without an action: the script exits and the firmware tries its next boot device",
            default: true,
            clients: vec![ClientSpec::new("no-action", Bios, 5, 0, NextBootDevice)],
        },
        Scenario {
            name: "wimboot",
            about: "SeaBIOS + iPXE -> decision with injected files and per-machine variables -> wimboot (built from the pinned source) takes every file, then stops without Windows",
            default: true,
            clients: vec![ClientSpec::new("wimboot", Bios, 7, 0, Wimboot)],
        },
        Scenario {
            name: "mixed",
            about: "four clients of mixed kinds at once",
            default: false,
            clients: vec![
                ClientSpec::new("mixed-bios", Bios, 6, 0, Script),
                ClientSpec::new("mixed-uefi-pxe", UefiPxe, 6, 1, Script),
                ClientSpec::new("mixed-uefi-http", UefiHttp, 6, 2, Script),
                ClientSpec::new("mixed-no-action", Bios, 6, 3, NextBootDevice),
            ],
        },
    ]
}

/// Groups `scenarios` into labs whose clients can share one site configuration: the proxy
/// hands every UEFI HTTP Boot client of a site the same URL, so HTTPS Boot clients (an
/// `https://` URL on the compatibility listener) get a lab of their own. Empty groups are
/// left out; the order within a group is kept.
pub(crate) fn labs(scenarios: &[Scenario]) -> Vec<Vec<Scenario>> {
    let https_boot = |s: &Scenario| s.clients.iter().any(|c| c.firmware == Firmware::UefiHttps);
    let (https, others): (Vec<Scenario>, Vec<Scenario>) = scenarios.iter().cloned().partition(https_boot);
    [others, https]
        .into_iter()
        .filter(|group| !group.is_empty())
        .collect()
}

/// How one client's boot ended.
#[derive(Debug, Clone)]
pub(crate) struct ClientResult {
    /// The client.
    pub(crate) spec: ClientSpec,
    /// Seconds from QEMU start to the success criterion, or why it failed.
    pub(crate) outcome: Result<f64, String>,
}

/// Boots every client of `scenario` at once on taps 0.. and waits (bounded by `timeout`) until
/// each has met its criterion, died or run out of time. `service_check` is asked whether the
/// services are still up on every round, so a crashed service fails fast.
pub(crate) fn boot_all(
    scenario: &Scenario,
    lab: &Lab,
    dir: &std::path::Path,
    timeout: Duration,
    mut journey: Option<&mut Journey>,
    mut service_check: impl FnMut() -> Result<()>,
) -> Result<Vec<ClientResult>> {
    let mut running = Vec::new();
    for (slot, spec) in scenario.clients.iter().enumerate() {
        let client = RunningClient::start(spec, slot, lab, dir)?;
        if let Some(journey) = journey.as_deref_mut() {
            journey.follow_serial(&spec.name, client.serial.clone());
        }
        running.push(client);
    }
    let mut results: Vec<Option<ClientResult>> = vec![None; running.len()];
    let deadline = Instant::now() + timeout;
    while results.iter().any(Option::is_none) {
        if interrupted() {
            bail!("interrupted");
        }
        service_check()?;
        if let Some(journey) = journey.as_deref_mut() {
            journey.poll();
        }
        for (client, result) in running.iter_mut().zip(results.iter_mut()) {
            if result.is_some() {
                continue;
            }
            let verdict = client.verdict();
            if verdict == Verdict::Succeeded {
                let seconds = client.started.elapsed().as_secs_f64();
                eprintln!("e2e:   {} booted in {seconds:.1} s", client.spec.name);
                // The VM has done its job; stopping it now frees CPU for the others.
                client.qemu.stop();
                *result = Some(ClientResult {
                    spec: client.spec.clone(),
                    outcome: Ok(seconds),
                });
            } else if verdict == Verdict::GaveUp {
                *result = Some(failure(
                    client,
                    "the firmware gave up and moved to its next boot device".into(),
                ));
            } else if !client.qemu.is_running() {
                *result = Some(failure(
                    client,
                    format!("QEMU exited early (see {})", client.qemu.log().display()),
                ));
            } else if Instant::now() >= deadline {
                *result = Some(failure(
                    client,
                    format!("no success within {} s", timeout.as_secs()),
                ));
            }
        }
        sleep(Duration::from_millis(200));
    }
    if let Some(journey) = journey {
        journey.poll();
    }
    Ok(results.into_iter().flatten().collect())
}

fn failure(client: &mut RunningClient, reason: String) -> ClientResult {
    client.qemu.stop();
    eprintln!(
        "e2e:   {} FAILED: {reason}; serial log {}",
        client.spec.name,
        client.serial.display()
    );
    let text = super::journey::clean(&client.serial_text());
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(15)
        .collect();
    for line in tail.into_iter().rev() {
        eprintln!("e2e:     | {}", line.trim_end());
    }
    ClientResult {
        spec: client.spec.clone(),
        outcome: Err(reason),
    }
}

/// Checks the steps of a client's journey that the services' logs (`text`, escape sequences
/// removed) must show beyond its MAC, architecture and decision; `ip` is the client's address.
///
/// - BIOS (iPXE NIC ROM): the proxy handed the ROM a boot file, pxe-tftp sent `undionly.kpxe`
///   to the client, and after that the chainloaded iPXE got the script URL (no loop).
/// - UEFI PXE: the proxy answered a REQUEST on its boot-server socket (4011) back to port 4011
///   of the client with the boot file.
pub(crate) fn journey_log_problem(client: &ClientSpec, text: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    let mac = format!("mac={}", client.mac);
    let answers: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("answered") && l.contains(&mac))
        .collect();
    let answer_at = |needles: &[&str]| answers.iter().position(|l| needles.iter().all(|n| l.contains(n)));
    let peer = format!("peer={ip}:");
    match client.firmware {
        Firmware::Bios => {
            let Some(chainload) = answer_at(&["client=Ipxe", "answer=\"boot-file\""]) else {
                return Some(format!(
                    "pxe-proxy never handed the iPXE ROM of {} a boot file",
                    client.mac
                ));
            };
            let sent = text
                .lines()
                .any(|l| l.contains(" sent ") && l.contains(&peer) && l.contains("path=undionly.kpxe"));
            if !sent {
                return Some(format!(
                    "pxe-tftp never logged sending undionly.kpxe to {ip} ({})",
                    client.mac
                ));
            }
            let second_round = answers[chainload + 1..]
                .iter()
                .any(|l| l.contains("client=Ipxe") && l.contains("answer=\"script-url\""));
            if !second_round {
                return Some(format!(
                    "pxe-proxy never gave the chainloaded iPXE of {} its script URL",
                    client.mac
                ));
            }
            None
        }
        Firmware::UefiPxe => {
            let to_4011 = format!("to={ip}:4011");
            let exchanged = answer_at(&[
                "client=PxeFirmware",
                "Request",
                "socket=\"pxe\"",
                &to_4011,
                "answer=\"boot-file\"",
            ]);
            exchanged.is_none().then(|| {
                format!(
                    "pxe-proxy never answered a 4011 boot-server REQUEST of {} back to {ip}:4011",
                    client.mac
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod journey_tests {
    use super::*;

    const IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 101);

    fn spec(firmware: Firmware) -> ClientSpec {
        ClientSpec::new("t", firmware, 9, 0, Expect::Script)
    }

    fn answered(mac: &str, rest: &str) -> String {
        format!("2026-01-01T00:00:00Z  INFO pxe_proxy::serve: answered mac={mac} arch=bios {rest}\n")
    }

    #[test]
    fn bios_needs_the_chainload_the_transfer_and_the_second_round_in_order() {
        let client = spec(Firmware::Bios);
        let rom = answered(
            &client.mac,
            "client=Ipxe Discover decision=\"boot\" answer=\"boot-file\" socket=\"dhcp\"",
        );
        let script = answered(
            &client.mac,
            "client=Ipxe Discover decision=\"boot\" answer=\"script-url\" socket=\"dhcp\"",
        );
        let sent = format!(
            "x INFO pxe_tftp::server: sent peer={IP}:2070 path=undionly.kpxe size=1 elapsed=1ms resent=0\n"
        );
        assert_eq!(
            journey_log_problem(&client, &format!("{rom}{sent}{script}"), IP),
            None
        );
        // The script URL before the chainload is the ROM going straight to the script.
        assert!(journey_log_problem(&client, &format!("{script}{sent}{rom}"), IP).is_some());
        assert!(journey_log_problem(&client, &format!("{rom}{script}"), IP).is_some());
        assert!(journey_log_problem(&client, &script, IP).is_some());
    }

    #[test]
    fn uefi_pxe_needs_the_4011_exchange() {
        let client = spec(Firmware::UefiPxe);
        let offer = answered(&client.mac, "client=PxeFirmware Discover decision=\"boot\" answer=\"boot-file\" socket=\"dhcp\" to=255.255.255.255:68");
        let ack = answered(
            &client.mac,
            &format!("client=PxeFirmware Request decision=\"boot\" answer=\"boot-file\" socket=\"pxe\" to={IP}:4011"),
        );
        assert_eq!(journey_log_problem(&client, &format!("{offer}{ack}"), IP), None);
        assert!(journey_log_problem(&client, &offer, IP).is_some());
    }
}

#[cfg(test)]
mod lab_tests {
    use super::*;

    #[test]
    fn https_boot_scenarios_get_a_lab_of_their_own() {
        let everything = catalogue();
        let groups = labs(&everything);
        assert_eq!(groups.len(), 2);
        let names = |group: &[Scenario]| group.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(&groups[1]), ["uefi-https"]);
        assert!(names(&groups[0]).contains(&"uefi-http"));
        let only_plain: Vec<Scenario> = everything.into_iter().filter(|s| s.name == "bios").collect();
        assert_eq!(labs(&only_plain).len(), 1);
    }
}
