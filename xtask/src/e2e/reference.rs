//! A reference PXE side built from Debian's dnsmasq (proxyDHCP on 67 and 4011 plus its TFTP
//! server), to tell a harness problem from a problem in the project's services:
//! `cargo xtask e2e --pxe-side dnsmasq`. dnsmasq's proxy mode ignores UEFI HTTP Boot clients,
//! so those scenarios are skipped with it. Scripts are served over TFTP.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::client::{exit_marker, ClientSpec, Expect, Firmware};
use super::lab::{Lab, SERVER_IF};
use super::process::Spawned;

/// Starts dnsmasq in the lab's PXE host with a TFTP root holding the iPXE programs, an entry
/// script and one script per client that has an action.
pub(crate) fn start(lab: &Lab, dir: &Path, clients: &[ClientSpec]) -> Result<Vec<Spawned>> {
    let host = lab.host("pxe");
    let root = dir.join("reference-tftp");
    std::fs::create_dir_all(root.join("machines"))?;
    for program in ["undionly.kpxe", "snponly.efi"] {
        let source = Path::new(super::IPXE_DIR).join(program);
        std::fs::copy(&source, root.join(program))
            .with_context(|| format!("copying {}", source.display()))?;
    }
    let ip = host.ip;
    let entry = format!(
        "#!ipxe\nchain --autofree tftp://{ip}/machines/${{net0/mac:hexhyp}}.ipxe || goto none\n:none\necho {} no action for ${{net0/mac}}\nexit\n",
        exit_marker()
    );
    std::fs::write(root.join("boot.ipxe"), entry)?;
    for client in clients.iter().filter(|c| c.expect == Expect::Script) {
        std::fs::write(
            root.join("machines")
                .join(format!("{}.ipxe", client.mac.replace(':', "-"))),
            machine_script(client),
        )?;
    }

    let script_url = format!("tftp://{ip}/boot.ipxe");
    let mut conf = String::new();
    for line in [
        "port=0",
        &format!("interface={SERVER_IF}"),
        "bind-interfaces",
        "user=root",
        "group=root",
        "log-dhcp",
        "log-facility=-",
        &format!("dhcp-range={ip},proxy,255.255.255.0"),
        "enable-tftp",
        &format!("tftp-root={}", root.display()),
        "dhcp-userclass=set:ipxe,iPXE",
        // QEMU's iPXE ROM says PXEClient:Arch:00000:UNDI:002001, a chainloaded undionly.kpxe
        // plain PXEClient: that difference ends the BIOS chain loop.
        "dhcp-vendorclass=set:rom,PXEClient:Arch:00000",
        "pxe-service=tag:!ipxe,x86PC,\"e2e\",undionly.kpxe",
        "pxe-service=tag:!ipxe,BC_EFI,\"e2e\",snponly.efi",
        "pxe-service=tag:!ipxe,x86-64_EFI,\"e2e\",snponly.efi",
        "pxe-service=tag:ipxe,tag:rom,x86PC,\"e2e\",undionly.kpxe",
        &format!("pxe-service=tag:ipxe,tag:!rom,x86PC,\"e2e\",{script_url}"),
        &format!("pxe-service=tag:ipxe,BC_EFI,\"e2e\",{script_url}"),
        &format!("pxe-service=tag:ipxe,x86-64_EFI,\"e2e\",{script_url}"),
    ] {
        writeln!(conf, "{line}")?;
    }
    let conf_path = dir.join("reference-dnsmasq.conf");
    std::fs::write(&conf_path, conf)?;
    let dnsmasq = Spawned::start(
        "reference dnsmasq",
        &host.netns,
        &dir.join("reference-dnsmasq.log"),
        "dnsmasq",
        &[
            "--no-daemon".into(),
            format!("--conf-file={}", conf_path.display()),
        ],
    )?;
    Ok(vec![dnsmasq])
}

/// Whether the reference side can boot this client: not UEFI HTTP Boot, not ARM64 (it serves
/// Debian's x86 iPXE), and not the TLS or login scenarios (its scripts come over TFTP, and it
/// has no logins).
pub(crate) fn supports(client: &ClientSpec) -> bool {
    !matches!(
        client.firmware,
        Firmware::UefiHttp | Firmware::UefiHttps | Firmware::Arm64Uefi
    ) && !client.firmware.is_ipv6()
        && !matches!(
            client.expect,
            Expect::TlsRefused | Expect::Wimboot | Expect::LoginRefused
        )
        && client.console.is_empty()
}

/// The per-machine script: prints the marker and what iPXE knows about the machine.
pub(crate) fn machine_script(client: &ClientSpec) -> String {
    format!(
        "#!ipxe\necho {} mac=${{net0/mac}} uuid=${{uuid}} platform=${{platform}} arch=${{buildarch}}\n",
        client.marker()
    )
}
