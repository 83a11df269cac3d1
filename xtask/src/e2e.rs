//! `cargo xtask e2e`: boots unmodified QEMU firmware (SeaBIOS + iPXE ROM, OVMF PXE, OVMF HTTP
//! Boot) through the project's services inside network namespaces, and judges every boot from
//! both sides: the marker the per-machine script prints on the serial console, and the
//! services' logs naming the same MAC with the expected architecture.
//!
//! Each repetition builds a fresh lab (namespaces named after this process's pid), starts the
//! site DHCP server and the PXE side, boots the scenarios one after another, then stops only
//! the processes it started and deletes its namespaces, also on failure and on Ctrl-C.
//! Logs stay in `target/e2e/<run>/` for inspection.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

mod auth;
mod client;
mod journey;
mod lab;
mod lab_ca;
mod measure;
mod process;
mod project;
mod project_config;
mod reference;
mod report;
mod scenario;
mod site_dhcp;
mod wimboot;

use lab::{ClientAddr, Lab, Layout, Stack};
use scenario::{ClientResult, Scenario};

/// Where Debian's `ipxe` package puts the iPXE boot programs (the dnsmasq reference side
/// serves them; the project's side boots the lab's own build).
pub(crate) const IPXE_DIR: &str = "/usr/lib/ipxe";

/// Debian packages the lab needs (also listed in `deps.rs` for CI).
const LAB_PACKAGES: &[(&str, &str)] = &[
    ("wimtools", "wimlib-imagex makes the wimboot scenario's boot WIM"),
    ("gcc", "builds wimboot from the pinned source"),
    ("make", "builds wimboot from the pinned source"),
    ("qemu-system-x86", "QEMU firmware clients"),
    ("ipxe-qemu", "QEMU's iPXE NIC option ROMs"),
    ("ipxe", "undionly.kpxe and snponly.efi"),
    ("ovmf", "UEFI firmware"),
    ("seabios", "BIOS firmware"),
    ("dnsmasq-base", "the site DHCP server"),
    ("iproute2", "network namespaces"),
    ("qemu-system-arm", "the arm64-uefi scenario: QEMU aarch64"),
    (
        "qemu-efi-aarch64",
        "the arm64-uefi scenario: AAVMF (EDK2 for ARM64)",
    ),
];

/// The architectures of the lab's iPXE build: x86_64, and ARM64 for `arm64-uefi`.
pub(crate) fn lab_arches() -> [crate::ipxe::Arch; 2] {
    [crate::ipxe::Arch::X86_64, crate::ipxe::Arch::Arm64]
}

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask e2e",
    about = "Boot real firmware through the services in network namespaces"
)]
struct Args {
    /// Run only this scenario (repeatable); see --list.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Every scenario, with the services together, split across hosts, and as the all-in-one
    /// `pxe-server`.
    #[arg(long)]
    all: bool,
    /// Boot the selected scenarios this many times, each time in a fresh lab.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Run each service in its own namespace ("host") with one shared configuration file.
    #[arg(long, conflicts_with = "all_in_one")]
    split: bool,
    /// Run the all-in-one `pxe-server` instead of the three services.
    #[arg(long)]
    all_in_one: bool,
    /// Which PXE side answers the clients.
    #[arg(long, value_enum, default_value_t = PxeSideKind::Project)]
    pxe_side: PxeSideKind,
    /// Seconds each scenario may take before its clients count as failed.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

/// What stands on the PXE side of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PxeSideKind {
    /// The project's binaries, built by the harness.
    Project,
    /// Debian's dnsmasq in proxy mode (a reference to check the harness itself).
    Dnsmasq,
}

pub(crate) use crate::signals::interrupted;

pub(crate) fn run(raw_args: &[String]) -> Result<()> {
    let argv = std::iter::once("cargo xtask e2e".to_owned()).chain(raw_args.iter().cloned());
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        // --help is not an error.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(());
        }
        Err(e) => {
            let _ = e.print();
            bail!("bad e2e arguments");
        }
    };
    let catalogue = scenario::catalogue();
    if args.list {
        for s in &catalogue {
            println!(
                "{:<12} {}{}",
                s.name,
                s.about,
                if s.default { "" } else { " (--all)" }
            );
        }
        return Ok(());
    }
    let selected: Vec<Scenario> = if args.scenarios.is_empty() {
        catalogue
            .iter()
            .filter(|s| s.default || args.all)
            .cloned()
            .collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.scenarios {
            match catalogue.iter().find(|s| s.name == name) {
                Some(s) => chosen.push(s.clone()),
                None => bail!("unknown scenario {name:?}; `cargo xtask e2e --list` shows them"),
            }
        }
        chosen
    };
    let layouts = if args.all {
        vec![Layout::Together, Layout::Split, Layout::AllInOne]
    } else if args.split {
        vec![Layout::Split]
    } else if args.all_in_one {
        vec![Layout::AllInOne]
    } else {
        vec![Layout::Together]
    };
    if args.pxe_side == PxeSideKind::Dnsmasq && layouts != [Layout::Together] {
        bail!("the dnsmasq reference side runs on one host only; drop --split, --all-in-one and --all");
    }

    preflight()?;
    crate::signals::install()?;
    lab::remove_stale_namespaces()?;
    let workspace = crate::workspace_root();
    let binaries = match args.pxe_side {
        PxeSideKind::Project => Some(project::build(&workspace)?),
        PxeSideKind::Dnsmasq => None,
    };
    let run_dir = workspace
        .join("target/e2e")
        .join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir)?;
    eprintln!("e2e: logs in {}", run_dir.display());

    let mut results: Vec<(Layout, ClientResult)> = Vec::new();
    let mut pass = 0;
    // Scenarios needing a different site configuration (HTTPS Boot) get a lab of their own.
    let labs = scenario::labs(&selected);
    for layout in &layouts {
        for repetition in 1..=args.repeat {
            for (lab_index, lab_scenarios) in labs.iter().enumerate() {
                pass += 1;
                let name = match lab_index {
                    0 => format!("{}-{repetition}", layout.name()),
                    n => format!("{}-{repetition}-lab{}", layout.name(), n + 1),
                };
                let dir = run_dir.join(name);
                std::fs::create_dir_all(&dir)?;
                eprintln!(
                    "e2e: == {} layout, run {repetition}/{}, lab {}/{} ==",
                    layout.name(),
                    args.repeat,
                    lab_index + 1,
                    labs.len()
                );
                let outcome = run_pass(
                    &format!("{}-{pass}", std::process::id()),
                    *layout,
                    lab_scenarios,
                    &dir,
                    Duration::from_secs(args.timeout),
                    binaries.as_ref(),
                    false,
                );
                match outcome {
                    Ok(pass_results) => {
                        results.extend(pass_results.into_iter().map(|r| (*layout, r)));
                    }
                    Err(e) => {
                        report::print(&results);
                        return Err(e.context(format!(
                            "run {repetition} ({} layout); logs in {}",
                            layout.name(),
                            dir.display()
                        )));
                    }
                }
            }
        }
    }
    report::print(&results);
    let failed = results.iter().filter(|(_, r)| r.outcome.is_err()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} boots failed; logs in {}",
            results.len(),
            run_dir.display()
        );
    }
    Ok(())
}

/// `cargo xtask demo`: the lab with the all-in-one `pxe-server`, one BIOS and one UEFI client
/// booting at once, and their journey printed as it happens.
pub(crate) fn demo() -> Result<()> {
    use client::{ClientSpec, Expect, Firmware};
    preflight()?;
    crate::signals::install()?;
    lab::remove_stale_namespaces()?;
    let workspace = crate::workspace_root();
    let binaries = project::build(&workspace)?;
    let dir = workspace
        .join("target/e2e")
        .join(format!("demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let scenario = Scenario {
        name: "demo",
        about: "a BIOS and a UEFI machine boot through pxe-server",
        default: false,
        lab: scenario::LabKind::Tls,
        clients: vec![
            ClientSpec::new("demo-bios", Firmware::Bios, 0xd, 0, Expect::Script),
            ClientSpec::new("demo-uefi", Firmware::UefiPxe, 0xd, 1, Expect::Script),
        ],
    };
    println!(
        "Booting a BIOS (SeaBIOS) and a UEFI (OVMF) virtual machine through pxe-server and the lab's own iPXE (scripts over HTTPS)."
    );
    println!(
        "Lab network: site DHCP 10.77.0.2 (addresses only), pxe-server 10.77.0.1; logs in {}",
        dir.display()
    );
    let run_id = format!("{}-demo", std::process::id());
    let results = run_pass(
        &run_id,
        Layout::AllInOne,
        std::slice::from_ref(&scenario),
        &dir,
        Duration::from_secs(180),
        Some(&binaries),
        true,
    )?;
    let failed = results.iter().filter(|r| r.outcome.is_err()).count();
    report::print(
        &results
            .into_iter()
            .map(|r| (Layout::AllInOne, r))
            .collect::<Vec<_>>(),
    );
    if failed > 0 {
        bail!(
            "{failed} of the demo's machines did not boot; logs in {}",
            dir.display()
        );
    }
    Ok(())
}

/// One fresh lab: site DHCP, PXE side, then each scenario in turn.
fn run_pass(
    run_id: &str,
    layout: Layout,
    scenarios: &[Scenario],
    dir: &Path,
    timeout: Duration,
    binaries: Option<&project::Binaries>,
    narrate: bool,
) -> Result<Vec<ClientResult>> {
    let taps = scenarios.iter().map(|s| s.clients.len()).max().unwrap_or(1);
    let kind = scenarios.first().map_or(scenario::LabKind::Tls, |s| s.lab);
    let lab = Lab::create(run_id, layout, taps, kind.stack())?;
    let every_client: Vec<_> = scenarios.iter().flat_map(|s| s.clients.iter().cloned()).collect();
    let mut site_dhcp = site_dhcp::start(&lab, dir, &every_client)?;
    let site_dns = site_dhcp::start_dns(&lab, dir)?;
    let mut pxe_side = match binaries {
        Some(binaries) => PxeSide::Project(project::Services::start(
            binaries,
            &lab,
            layout,
            dir,
            &every_client,
            kind,
        )?),
        None => PxeSide::Reference(reference::start(&lab, dir, &every_client)?),
    };
    let mut journey = narrate.then(|| {
        let machines: Vec<_> = every_client
            .iter()
            .enumerate()
            .filter_map(|(index, c)| Some((c.mac.clone(), site_dhcp::reserved_address(index).ok()?)))
            .collect();
        let mut journey = journey::Journey::new(&machines);
        if let PxeSide::Project(services) = &pxe_side {
            for (name, log) in services.logs() {
                journey.follow_service(name, log.to_path_buf());
            }
        }
        journey
    });
    let mut results = Vec::new();
    for scenario in scenarios {
        if let PxeSide::Reference(_) = pxe_side {
            if let Some(c) = scenario.clients.iter().find(|c| !reference::supports(c)) {
                eprintln!(
                    "e2e: skipping {}: the dnsmasq reference does not answer {}",
                    scenario.name,
                    c.firmware.label()
                );
                continue;
            }
        }
        eprintln!("e2e: scenario {}: {}", scenario.name, scenario.about);
        let booted = scenario::boot_all(scenario, &lab, dir, timeout, journey.as_mut(), || {
            if !site_dhcp.is_running() {
                bail!("the site DHCP server exited; see {}", site_dhcp.log().display());
            }
            pxe_side.check_running()
        })?;
        for mut result in booted {
            if result.spec.measurement.is_some() {
                report_measurement(&result.spec, dir);
            }
            if result.outcome.is_ok() && result.spec.measurement == Some(measure::Measurement::Features) {
                let serial = std::fs::read(dir.join(format!("{}.serial.log", result.spec.name)))?;
                if let Some(problem) =
                    measure::features_problem(&journey::clean(&String::from_utf8_lossy(&serial)))
                {
                    eprintln!("e2e:   {} FAILED: {problem}", result.spec.name);
                    result.outcome = Err(problem);
                }
            }
            if let Some(measurement) = result.spec.measurement.filter(|m| m.peerdist_file().is_some()) {
                if result.outcome.is_ok() {
                    let serial = std::fs::read(dir.join(format!("{}.serial.log", result.spec.name)))?;
                    let console = journey::clean(&String::from_utf8_lossy(&serial));
                    if let Some(problem) = measure::peerdist_problem(measurement, &console) {
                        eprintln!("e2e:   {} FAILED: {problem}", result.spec.name);
                        result.outcome = Err(problem);
                    }
                }
            }
            if result.outcome.is_ok() {
                let index = every_client
                    .iter()
                    .position(|c| c.name == result.spec.name)
                    .unwrap_or_default();
                let ip = match lab.stack {
                    Stack::Ipv4 => ClientAddr::V4(site_dhcp::reserved_address(index)?),
                    Stack::Ipv6Only => {
                        let serial = std::fs::read(dir.join(format!("{}.serial.log", result.spec.name)))?;
                        ClientAddr::V6(station_addresses(&journey::clean(&String::from_utf8_lossy(
                            &serial,
                        ))))
                    }
                };
                // Services write their logs through a queue: give the last lines a moment.
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                let mut checked = pxe_side.check_service_logs(&result.spec, &ip);
                while checked.is_err() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(200));
                    checked = pxe_side.check_service_logs(&result.spec, &ip);
                }
                if let Err(e) = checked {
                    eprintln!("e2e:   {} FAILED the server-side check: {e:#}", result.spec.name);
                    result.outcome = Err(format!("server-side check: {e:#}"));
                }
            }
            results.push(result);
        }
    }
    // Services first, then the DHCP server, then (when `lab` drops) the namespaces.
    drop(pxe_side);
    drop(site_dhcp);
    drop(site_dns);
    drop(lab);
    Ok(results)
}

/// The IPv6 addresses EDK2's PXE and HTTP Boot print on the console once DHCPv6 gave them one
/// (`Station IP address is FD77:0:0:77:0:0:0:1A3`, HTTP Boot: `Station IPv6 address is ...`).
fn station_addresses(console: &str) -> Vec<std::net::Ipv6Addr> {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("Station IP address is ")
                .or_else(|| l.split_once("Station IPv6 address is "))
        })
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Prints what a measuring client's console (and, for key types, the extra servers' logs) show.
fn report_measurement(client: &client::ClientSpec, dir: &Path) {
    let serial = std::fs::read(dir.join(format!("{}.serial.log", client.name))).unwrap_or_default();
    let console = journey::clean(&String::from_utf8_lossy(&serial));
    for line in measure::results(&console) {
        eprintln!("e2e:   {}: {line}", client.name);
    }
    if client.measurement == Some(measure::Measurement::KeyTypes) {
        for line in measure::negotiated(dir) {
            eprintln!("e2e:   rustls {line}");
        }
    }
}

/// The PXE side of one pass; dropping it stops its processes.
enum PxeSide {
    Project(project::Services),
    Reference(Vec<process::Spawned>),
}

impl PxeSide {
    fn check_running(&mut self) -> Result<()> {
        match self {
            Self::Project(services) => services.check_running(),
            Self::Reference(processes) => {
                for p in processes {
                    if !p.is_running() {
                        bail!("{} exited; see {}", p.name(), p.log().display());
                    }
                }
                Ok(())
            }
        }
    }

    fn check_service_logs(&self, client: &client::ClientSpec, ip: &ClientAddr) -> Result<()> {
        match self {
            Self::Project(services) => services.check_logs(client, ip),
            Self::Reference(processes) => {
                // dnsmasq logs each proxy answer with the client's MAC.
                let text = std::fs::read_to_string(processes[0].log())?;
                if !text.lines().any(|l| l.contains(&client.mac)) {
                    bail!("{} never appears in {}", client.mac, processes[0].log().display());
                }
                Ok(())
            }
        }
    }
}

pub(crate) use crate::workspace_root;

/// Root, packages, firmware files: fail with what to do rather than half-way through a boot.
fn preflight() -> Result<()> {
    if !crate::deps::is_root() {
        bail!("the end-to-end lab creates network namespaces and tap devices: run it as root");
    }
    crate::deps::install_packages(LAB_PACKAGES)?;
    for file in [
        "/usr/lib/ipxe/undionly.kpxe",
        "/usr/lib/ipxe/snponly.efi",
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
        client::AAVMF_CODE,
    ] {
        if !Path::new(file).exists() {
            bail!("{file} is missing; reinstall the Debian packages ipxe, ovmf and qemu-efi-aarch64");
        }
    }
    Ok(())
}
