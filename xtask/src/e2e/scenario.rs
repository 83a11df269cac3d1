//! The scenarios and the loop that boots their clients and judges them.

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::client::{ClientSpec, Expect, Firmware, RunningClient, Verdict};
use super::interrupted;
use super::journey::Journey;
use super::lab::{ClientAddr, Lab, Stack};

/// A named set of clients booted at the same time.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Name for `--scenario`.
    pub(crate) name: &'static str,
    /// What it proves.
    pub(crate) about: &'static str,
    /// Part of the default run (otherwise only with `--all` or by name).
    pub(crate) default: bool,
    /// The site set-up it needs; scenarios of one kind share a lab.
    pub(crate) lab: LabKind,
    /// Its clients, started together.
    pub(crate) clients: Vec<ClientSpec>,
}

/// Site set-ups; every scenario boots through the lab's own iPXE build, which trusts only the
/// committed test CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LabKind {
    /// The server's certificate comes from the test CA and the plain HTTP listener is off, so
    /// a script that arrives proves TLS.
    Tls,
    /// UEFI HTTP Boot loads `ipxe.efi` over plain HTTP (the firmware trusts no CA), so the
    /// plain listener is on; the server-side check requires the scripts over TLS.
    HttpBoot,
    /// OVMF HTTPS Boot from the OpenSSL compatibility listener (a lab CA given to OVMF).
    HttpsBoot,
    /// The server's site CA is made fresh on its first start: the lab's iPXE, built with
    /// another CA, must refuse it.
    UntrustedCa,
    /// Like [`Self::HttpBoot`] (plain HTTP on, for comparison), plus one extra `pxe-https`
    /// per server key type ([`super::measure`]).
    Measure,
    /// Like [`Self::Tls`], with logins at the boot console required for every action
    /// ([`super::auth`]).
    Auth,
    /// IPv6 only on the client link: router advertisements and DHCPv6 addresses from the site
    /// (which also names the script URL for iPXE), the firmware's boot offer from the proxy
    /// over DHCPv6. Plain HTTP is on for UEFI HTTP Boot's boot program, as in
    /// [`Self::HttpBoot`]; the scripts must come over TLS.
    Ipv6,
}

impl LabKind {
    /// Whether the plain HTTP listener runs.
    pub(crate) fn plain_http(self) -> bool {
        matches!(
            self,
            Self::HttpBoot | Self::HttpsBoot | Self::Measure | Self::Ipv6
        )
    }

    /// The IP versions of its network.
    pub(crate) fn stack(self) -> Stack {
        match self {
            Self::Ipv6 => Stack::Ipv6Only,
            Self::Tls | Self::HttpBoot | Self::HttpsBoot | Self::UntrustedCa | Self::Measure | Self::Auth => {
                Stack::Ipv4
            }
        }
    }
}

/// Every scenario, in the order they run.
pub(crate) fn catalogue() -> Vec<Scenario> {
    use super::auth::{typing_login, Login};
    use super::measure::Measurement;
    use Expect::{LoginRefused, NextBootDevice, Script, TlsRefused, Wimboot};
    use Firmware::{Arm64Uefi, Bios, UefiHttp, UefiHttp6, UefiHttps, UefiPxe, UefiPxe6};
    use LabKind::{Auth, HttpBoot, HttpsBoot, Ipv6, Measure, Tls, UntrustedCa};
    vec![
        Scenario {
            name: "bios",
            about: "SeaBIOS + QEMU's iPXE NIC ROM -> proxy offer -> TFTP our undionly.kpxe -> our iPXE asks again -> https:// script URL -> script over TLS (plain HTTP off)",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("bios", Bios, 1, 0, Script)],
        },
        Scenario {
            name: "uefi-pxe",
            about: "OVMF native PXE -> proxy offer -> REQUEST/ACK on 4011 -> TFTP our snponly.efi, which first asks TFTP for autoexec.ipxe (answered not found) -> script over TLS (plain HTTP off)",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("uefi-pxe", UefiPxe, 2, 0, Script)],
        },
        Scenario {
            name: "uefi-http",
            about: "OVMF HTTP Boot (HTTPClient) -> proxy offer with URL -> our ipxe.efi over HTTP -> script over TLS",
            default: true,
            lab: HttpBoot,
            clients: vec![ClientSpec::new("uefi-http", UefiHttp, 3, 0, Script)],
        },
        Scenario {
            name: "uefi-https",
            about: "OVMF HTTPS Boot, lab CA via fw_cfg -> our snponly.efi over TLS 1.2 (DHE-RSA or RSA kex, AES-GCM) from the compat listener -> script over TLS from the rustls listener",
            default: true,
            lab: HttpsBoot,
            clients: vec![ClientSpec::new("uefi-https", UefiHttps, 4, 0, Script)],
        },
        Scenario {
            name: "no-action",
            about:
                "a machine without an action: the script (over TLS) exits and the firmware tries its next boot device",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("no-action", Bios, 5, 0, NextBootDevice)],
        },
        Scenario {
            name: "wimboot",
            about: "SeaBIOS + our iPXE -> decision over TLS with injected files and per-machine variables -> wimboot (built from the pinned source) takes every file, all over HTTPS, then stops without Windows",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("wimboot", Bios, 7, 0, Wimboot)],
        },
        Scenario {
            name: "untrusted-ca",
            about: "the server's site CA is not the one our iPXE was built with: iPXE refuses the certificate, no script is served, the firmware moves on",
            default: true,
            lab: UntrustedCa,
            clients: vec![ClientSpec::new("untrusted-ca", Bios, 12, 0, TlsRefused)],
        },
        Scenario {
            name: "ipxe-features",
            about: "our BIOS iPXE uses what the site build adds: sha256sum/md5sum of a file, a params form POST to the decision, PeerDist headers, login/imgverify/ntp/certstat in help",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("ipxe-features", Bios, 11, 0, Script).measuring(Measurement::Features)],
        },
        Scenario {
            name: "peerdist",
            about: "our BIOS iPXE downloads a 100 MiB file with BranchCache: Content Information from pxe-https, no peers, every segment fetched as a missing-data range and verified, then its sha256sum",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("peerdist", Bios, 13, 0, Script).measuring(Measurement::PeerDist)],
        },
        Scenario {
            name: "peerdist-corrupt",
            about: "the stored Content Information of a file has one corrupted segment hash: our iPXE rejects the download",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("peerdist-corrupt", Bios, 14, 0, Script).measuring(Measurement::PeerDistCorrupt)],
        },
        Scenario {
            name: "arm64-uefi",
            about: "QEMU aarch64 (TCG) + AAVMF native PXE -> TFTP our snponly-arm64.efi -> script over TLS (plain HTTP off)",
            default: true,
            lab: Tls,
            clients: vec![ClientSpec::new("arm64-uefi", Arm64Uefi, 8, 0, Script)],
        },
        Scenario {
            name: "auth-ldap",
            about: "a login at the boot console checked against a directory (a private slapd, LDAPS, required group): our BIOS iPXE shows the login form, a technician in the group types it on the serial console, the menu comes back over TLS with a per-boot token and the machine's script runs",
            default: true,
            lab: Auth,
            clients: vec![typing_login(ClientSpec::new("auth-ldap", Bios, 15, 0, Script), &[Login::Good])],
        },
        Scenario {
            name: "auth-refused",
            about: "refused logins against the directory: a wrong password, then a user outside the required group; no menu, no boot file, the firmware moves on to its next boot device",
            default: true,
            lab: Auth,
            clients: vec![typing_login(
                ClientSpec::new("auth-refused", Bios, 16, 0, LoginRefused),
                &[Login::WrongPassword, Login::NotAllowed],
            )],
        },
        Scenario {
            name: "uefi-pxe6",
            about: "IPv6-only link: OVMF PXEv6 (IPv4 stack off) -> the site's DHCPv6 address + our boot-only Advertise -> Request/Reply on [::]:4011 -> TFTP our ipxe.efi over IPv6 -> iPXE (script URL from the site's DHCPv6) -> script over TLS over IPv6",
            default: true,
            lab: Ipv6,
            clients: vec![ClientSpec::new("uefi-pxe6", UefiPxe6, 17, 0, Script)],
        },
        Scenario {
            name: "uefi-http6",
            about: "IPv6-only link: OVMF HTTP Boot over IPv6 -> the site's DHCPv6 address + our boot-only Advertise with the URL -> our ipxe.efi over HTTP/IPv6 -> script over TLS over IPv6",
            default: true,
            lab: Ipv6,
            clients: vec![ClientSpec::new("uefi-http6", UefiHttp6, 18, 0, Script)],
        },
        Scenario {
            name: "tls-keys",
            about: "measurement: which server key types our iPXE accepts (ECDSA P-256/P-384, RSA 2048/4096, Ed25519), and what rustls negotiates with it",
            default: false,
            lab: Measure,
            clients: vec![ClientSpec::new("tls-keys", Bios, 9, 0, Script).measuring(Measurement::KeyTypes)],
        },
        Scenario {
            name: "tls-timing",
            about: "measurement: iPXE's own time for a fetch over a new HTTPS connection (handshake), a kept-alive one, and plain HTTP (BIOS and UEFI)",
            default: false,
            lab: Measure,
            clients: vec![
                ClientSpec::new("tls-timing-bios", Bios, 10, 0, Script).measuring(Measurement::Timing),
                ClientSpec::new("tls-timing-uefi", UefiPxe, 10, 1, Script).measuring(Measurement::Timing),
            ],
        },
        Scenario {
            name: "mixed",
            about: "four clients of mixed kinds at once",
            default: false,
            lab: HttpBoot,
            clients: vec![
                ClientSpec::new("mixed-bios", Bios, 6, 0, Script),
                ClientSpec::new("mixed-uefi-pxe", UefiPxe, 6, 1, Script),
                ClientSpec::new("mixed-uefi-http", UefiHttp, 6, 2, Script),
                ClientSpec::new("mixed-no-action", Bios, 6, 3, NextBootDevice),
            ],
        },
    ]
}

/// Groups `scenarios` into labs by the site set-up they need ([`LabKind`]), in that order;
/// the order within a group is kept.
pub(crate) fn labs(scenarios: &[Scenario]) -> Vec<Vec<Scenario>> {
    let mut kinds: Vec<LabKind> = scenarios.iter().map(|s| s.lab).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| scenarios.iter().filter(|s| s.lab == kind).cloned().collect())
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
            client.type_when_prompted();
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
///   of the client with the boot file; over IPv6 the same on its `pxe6` socket.
pub(crate) fn journey_log_problem(client: &ClientSpec, text: &str, ip: &ClientAddr) -> Option<String> {
    let mac = format!("mac={}", client.mac);
    let answers: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("answered") && l.contains(&mac))
        .collect();
    let answer_at = |needles: &[&str]| answers.iter().position(|l| needles.iter().all(|n| l.contains(n)));
    let peers = ip.peers();
    match client.firmware {
        Firmware::Bios => {
            let Some(chainload) = answer_at(&["client=Ipxe", "answer=\"boot-file\""]) else {
                return Some(format!(
                    "pxe-proxy never handed the iPXE ROM of {} a boot file",
                    client.mac
                ));
            };
            let sent = text.lines().any(|l| {
                l.contains(" sent ")
                    && peers.iter().any(|p| l.contains(p.as_str()))
                    && l.contains("path=undionly.kpxe")
            });
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
        Firmware::UefiPxe6 => {
            let exchanged = answer_at(&[
                "client=PxeFirmware",
                "Request",
                "socket=\"pxe6\"",
                "to=[",
                "]:4011",
                "answer=\"boot-file\"",
            ]);
            exchanged.is_none().then(|| {
                format!(
                    "pxe-proxy never answered a boot-server Request of {} on [::]:4011 back to its port 4011",
                    client.mac
                )
            })
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

    const IP4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 101);
    const IP: &ClientAddr = &ClientAddr::V4(IP4);

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
            "x INFO pxe_tftp::server: sent peer={IP4}:2070 path=undionly.kpxe size=1 elapsed=1ms resent=0\n"
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
            &format!("client=PxeFirmware Request decision=\"boot\" answer=\"boot-file\" socket=\"pxe\" to={IP4}:4011"),
        );
        assert_eq!(journey_log_problem(&client, &format!("{offer}{ack}"), IP), None);
        assert!(journey_log_problem(&client, &offer, IP).is_some());

        let client = spec(Firmware::UefiPxe6);
        let v6 = &ClientAddr::V6(vec!["fd77:0:0:77::1b7".parse().unwrap()]);
        let reply = answered(
            &client.mac,
            "client=PxeFirmware message=Request decision=\"boot\" answer=\"boot-file\" socket=\"pxe6\" to=[fd77:0:0:77::1b7]:4011 url=tftp://[fd77:0:0:77::3]/ipxe.efi",
        );
        assert_eq!(journey_log_problem(&client, &reply, v6), None);
        // The same exchange over IPv4 does not count for an IPv6 client.
        assert!(journey_log_problem(&client, &ack, v6).is_some());
    }
}

#[cfg(test)]
mod lab_tests {
    use super::*;

    #[test]
    fn scenarios_share_a_lab_only_with_the_same_site_set_up() {
        let everything = catalogue();
        let groups = labs(&everything);
        let names = |group: &[Scenario]| group.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(groups.len(), 7);
        assert!(names(&groups[0]).contains(&"bios"));
        assert!(names(&groups[0]).contains(&"arm64-uefi"));
        assert_eq!(names(&groups[1]), ["uefi-http", "mixed"]);
        assert_eq!(names(&groups[2]), ["uefi-https"]);
        assert_eq!(names(&groups[3]), ["untrusted-ca"]);
        assert_eq!(names(&groups[4]), ["tls-keys", "tls-timing"]);
        assert_eq!(names(&groups[5]), ["auth-ldap", "auth-refused"]);
        assert_eq!(names(&groups[6]), ["uefi-pxe6", "uefi-http6"]);
        for group in &groups {
            let kind = group[0].lab;
            assert!(group.iter().all(|s| s.lab == kind));
            let has = |f: Firmware| group.iter().flat_map(|s| &s.clients).any(|c| c.firmware == f);
            assert!(!(has(Firmware::UefiHttp) && has(Firmware::UefiHttps)));
            if has(Firmware::UefiHttp) || has(Firmware::UefiHttps) {
                assert!(kind.plain_http(), "HTTP Boot needs the plain listener");
            }
        }
        let only_plain: Vec<Scenario> = everything.into_iter().filter(|s| s.name == "bios").collect();
        assert_eq!(labs(&only_plain).len(), 1);
    }
}

#[cfg(test)]
mod readme_tests {
    use super::catalogue;

    /// The README's end-to-end section lists what the lab covers in a table, one row per
    /// scenario (`| \`bios\` | TLS | ...`); it must be the catalogue, so it cannot go stale.
    #[test]
    fn the_readme_table_lists_every_scenario_and_no_other() {
        let readme = std::fs::read_to_string(crate::workspace_root().join("README.md")).unwrap();
        let section = readme
            .split_once("\n## End-to-end lab\n")
            .expect("README has an End-to-end lab section")
            .1;
        let section = section
            .split_once("\n## ")
            .map_or(section, |(section, _)| section);
        let mut listed: Vec<&str> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(name, _)| name))
            .collect();
        let mut scenarios: Vec<&str> = catalogue().iter().map(|s| s.name).collect();
        listed.sort_unstable();
        scenarios.sort_unstable();
        assert_eq!(listed, scenarios);
    }
}
