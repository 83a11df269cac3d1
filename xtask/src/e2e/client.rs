//! QEMU firmware clients: SeaBIOS with QEMU's iPXE NIC ROM, and OVMF's own PXE and HTTP Boot
//! stacks. Always TCG: nested KVM on the machines this runs on crashes iPXE and OVMF.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use super::lab::{tap_name, Lab};
use super::process::Spawned;

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Which firmware boots and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Firmware {
    /// SeaBIOS with QEMU's iPXE option ROM on an e1000; the ROM is iPXE, so the proxy
    /// chainloads `undionly.kpxe` over TFTP to exercise the PXE path.
    Bios,
    /// OVMF's native PXE on virtio-net without an option ROM (OVMF has no e1000 driver).
    UefiPxe,
    /// OVMF UEFI HTTP Boot (vendor class `HTTPClient`), PXE switched off through fw_cfg so
    /// OVMF does not spend minutes failing PXEv4 and PXEv6 first.
    UefiHttp,
    /// OVMF UEFI HTTPS Boot: like [`Self::UefiHttp`], handed an `https://` URL on the
    /// compatibility TLS listener and trusting the lab CA enrolled through fw_cfg.
    UefiHttps,
}

impl Firmware {
    /// Short name for reports.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Bios => "bios",
            Self::UefiPxe => "uefi-pxe",
            Self::UefiHttp => "uefi-http",
            Self::UefiHttps => "uefi-https",
        }
    }

    /// The architecture names (as the services log them) this client must show up with.
    pub(crate) fn expected_arches(self) -> &'static [&'static str] {
        match self {
            Self::Bios => &["bios"],
            Self::UefiPxe => &["x64-uefi"],
            Self::UefiHttp | Self::UefiHttps => &["x64-uefi-http"],
        }
    }
}

/// What proves the boot worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The per-machine script ran: its marker line is on the serial console.
    Script,
    /// No action was configured: the script exited and the firmware tried its next boot device.
    NextBootDevice,
    /// The decision booted wimboot: wimboot's own console output names every file of the
    /// decision ([`super::wimboot::CONSOLE_NAMES`]) before it stops for lack of Windows.
    Wimboot,
}

/// One client of a scenario.
#[derive(Debug, Clone)]
pub(crate) struct ClientSpec {
    /// Unique name, also used in the marker and the log file names.
    pub(crate) name: String,
    /// Firmware and boot path.
    pub(crate) firmware: Firmware,
    /// NIC MAC address.
    pub(crate) mac: String,
    /// SMBIOS system UUID.
    pub(crate) uuid: String,
    /// Success criterion.
    pub(crate) expect: Expect,
}

impl ClientSpec {
    /// A client whose MAC and UUID are derived from `scenario` and `slot`, so every client of
    /// every scenario is distinct (and gets its own address from the site DHCP server).
    pub(crate) fn new(name: &str, firmware: Firmware, scenario: u8, slot: u8, expect: Expect) -> Self {
        Self {
            name: name.to_owned(),
            firmware,
            mac: format!("52:54:00:e2:{scenario:02x}:{slot:02x}"),
            uuid: format!("8d7e6f00-e2e0-4000-8000-5254e2{scenario:02x}{slot:02x}00"),
            expect,
        }
    }

    /// The line the per-machine script prints; the harness waits for it on the serial console.
    pub(crate) fn marker(&self) -> String {
        format!("NETBOOT-E2E-OK {}", self.name)
    }

    /// Serial console text that shows the firmware moved on to its next boot device.
    pub(crate) fn next_boot_device_patterns(&self) -> &'static [&'static str] {
        match self.firmware {
            // SeaBIOS, once the NIC's boot entry returns and nothing else can boot.
            Firmware::Bios => &["Booting from Hard Disk", "No bootable device"],
            // OVMF's boot manager reports the failed entry and goes on to the next one.
            Firmware::UefiPxe | Firmware::UefiHttp | Firmware::UefiHttps => {
                &["BdsDxe: failed to load Boot", "Shell>"]
            }
        }
    }
}

/// A booting VM.
pub(crate) struct RunningClient {
    /// What it is.
    pub(crate) spec: ClientSpec,
    /// The QEMU process.
    pub(crate) qemu: Spawned,
    /// Serial console log.
    pub(crate) serial: PathBuf,
    /// When QEMU was started.
    pub(crate) started: Instant,
}

impl RunningClient {
    /// Starts QEMU for `spec` on tap `slot` of `lab`, logging into `dir`.
    pub(crate) fn start(spec: &ClientSpec, slot: usize, lab: &Lab, dir: &Path) -> Result<Self> {
        let serial = dir.join(format!("{}.serial.log", spec.name));
        std::fs::write(&serial, "")?;
        let mut args: Vec<String> = [
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-smp",
            "1",
            "-nographic",
            "-nodefaults",
            "-no-user-config",
            "-monitor",
            "none",
        ]
        .map(String::from)
        .to_vec();
        args.extend(["-serial".into(), format!("file:{}", serial.display())]);
        args.extend(["-uuid".into(), spec.uuid.clone()]);
        args.extend([
            "-netdev".into(),
            format!("tap,id=n0,ifname={},script=no,downscript=no", tap_name(slot)),
        ]);
        match spec.firmware {
            Firmware::Bios => {
                args.extend(["-m".into(), "256".into()]);
                // QEMU's default ROM for e1000 is iPXE (Debian ipxe-qemu).
                args.extend([
                    "-device".into(),
                    format!("e1000,netdev=n0,mac={},bootindex=1", spec.mac),
                ]);
            }
            Firmware::UefiPxe | Firmware::UefiHttp | Firmware::UefiHttps => {
                // A fresh copy of the NVRAM every boot: no boot order or variables carried over.
                let vars = dir.join(format!("{}.OVMF_VARS.fd", spec.name));
                std::fs::copy(OVMF_VARS, &vars)
                    .with_context(|| format!("copying {OVMF_VARS} (Debian package ovmf)"))?;
                args.extend(["-m".into(), "512".into()]);
                args.extend([
                    "-drive".into(),
                    format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
                ]);
                args.extend([
                    "-drive".into(),
                    format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
                ]);
                // romfile= empty: no iPXE option ROM, OVMF's own network stack boots.
                args.extend([
                    "-device".into(),
                    format!("virtio-net-pci,netdev=n0,mac={},bootindex=1,romfile=", spec.mac),
                ]);
                if matches!(spec.firmware, Firmware::UefiHttp | Firmware::UefiHttps) {
                    for stack in ["IPv4PXESupport", "IPv6PXESupport"] {
                        args.extend([
                            "-fw_cfg".into(),
                            format!("name=opt/org.tianocore/{stack},string=n"),
                        ]);
                    }
                }
                if spec.firmware == Firmware::UefiHttps {
                    // OVMF's HTTPS Boot trusts only the CAs enrolled here.
                    let cacerts = super::lab_ca::cacerts_esl(dir);
                    args.extend([
                        "-fw_cfg".into(),
                        format!("name=etc/edk2/https/cacerts,file={}", cacerts.display()),
                    ]);
                }
            }
        }
        if spec.expect == Expect::Wimboot {
            // wimboot also writes its console to the Bochs debug port; kept for diagnosis.
            let debugcon = dir.join(format!("{}.debugcon.log", spec.name));
            args.extend(["-debugcon".into(), format!("file:{}", debugcon.display())]);
        }
        let log = dir.join(format!("{}.qemu.log", spec.name));
        let qemu = Spawned::start(
            &format!("qemu {}", spec.name),
            &lab.clients_netns,
            &log,
            "qemu-system-x86_64",
            &args,
        )?;
        Ok(Self {
            spec: spec.clone(),
            qemu,
            serial,
            started: Instant::now(),
        })
    }

    /// The serial console so far (lossy: firmware writes control sequences).
    pub(crate) fn serial_text(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// What the serial console says so far.
    pub(crate) fn verdict(&self) -> Verdict {
        self.spec.judge(&self.serial_text())
    }
}

/// Where a boot stands, judged from its serial console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not decided yet: keep waiting.
    Pending,
    /// The success criterion is on the console.
    Succeeded,
    /// The firmware moved on to its next boot device without meeting the criterion; waiting
    /// longer cannot help.
    GaveUp,
}

/// What the entry script prints when it could not fetch the decision: the machine then moves
/// on to its next boot device for the wrong reason.
const DECISION_FAILURES: &[&str] = &["Could not fetch the boot decision", "Could not start download"];

impl ClientSpec {
    /// Judges a serial console capture (raw, with control sequences).
    pub(crate) fn judge(&self, raw: &str) -> Verdict {
        let text = super::journey::clean(raw);
        let moved_on = |text: &str| self.next_boot_device_patterns().iter().any(|p| text.contains(p));
        match self.expect {
            Expect::Wimboot => {
                let named = |name: &&str| text.contains(&format!("Using {name} via"));
                if text.contains("wimboot v") && super::wimboot::CONSOLE_NAMES.iter().all(named) {
                    Verdict::Succeeded
                } else if moved_on(&text) || text.contains("Boot failed") {
                    Verdict::GaveUp
                } else {
                    Verdict::Pending
                }
            }
            Expect::Script if text.contains(&self.marker()) => Verdict::Succeeded,
            Expect::Script if moved_on(&text) => Verdict::GaveUp,
            Expect::Script => Verdict::Pending,
            Expect::NextBootDevice => {
                if !moved_on(&text) {
                    return Verdict::Pending;
                }
                // iPXE must have fetched a script ("<url>... ok") and the firmware must move on
                // after that without the entry script's failure messages: moving on because the
                // network boot failed proves nothing.
                let last_fetch = text
                    .lines()
                    .scan(0, |offset, line| {
                        let at = *offset;
                        *offset += line.len() + 1;
                        Some((at + line.len(), line.trim()))
                    })
                    .filter(|(_, line)| {
                        line.ends_with("... ok") && (line.contains("://") || line.starts_with('/'))
                    })
                    .last();
                match last_fetch {
                    Some((end, _))
                        if moved_on(&text[end..])
                            && !DECISION_FAILURES.iter().any(|f| text[end..].contains(f)) =>
                    {
                        Verdict::Succeeded
                    }
                    _ => Verdict::GaveUp,
                }
            }
        }
    }
}

/// What the reference side's script prints for a machine without an action, before `exit`.
pub(crate) fn exit_marker() -> &'static str {
    "NETBOOT-E2E-EXIT"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serial consoles captured from real boots in the lab.
    fn capture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/e2e/serial")
            .join(name);
        String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
    }

    fn client(name: &str, firmware: Firmware, expect: Expect) -> ClientSpec {
        ClientSpec::new(name, firmware, 1, 0, expect)
    }

    #[test]
    fn script_markers_are_found_in_real_consoles() {
        use Firmware::*;
        for (file, name, firmware) in [
            ("bios-script.log", "bios", Bios),
            ("uefi-pxe-script.log", "uefi-pxe", UefiPxe),
            ("uefi-http-script.log", "uefi-http", UefiHttp),
        ] {
            let text = capture(file);
            assert_eq!(
                client(name, firmware, Expect::Script).judge(&text),
                Verdict::Succeeded,
                "{file}"
            );
            // Another machine's marker never counts.
            assert_eq!(
                client("other", firmware, Expect::Script).judge(&text),
                Verdict::Pending,
                "{file}"
            );
        }
    }

    #[test]
    fn a_console_cut_short_is_pending() {
        let text = capture("bios-script.log");
        let cut = &text[..text.find("NETBOOT-E2E-OK").unwrap()];
        assert_eq!(
            client("bios", Firmware::Bios, Expect::Script).judge(cut),
            Verdict::Pending
        );
        assert_eq!(
            client("bios", Firmware::Bios, Expect::NextBootDevice).judge(cut),
            Verdict::Pending
        );
    }

    #[test]
    fn firmware_moving_on_fails_a_script_client_at_once() {
        let gave_up = capture("uefi-http-gave-up.log");
        assert_eq!(
            client("mixed-uefi-http", Firmware::UefiHttp, Expect::Script).judge(&gave_up),
            Verdict::GaveUp
        );
        let unreachable = capture("bios-decision-unreachable.log");
        assert_eq!(
            client("bios-chain", Firmware::Bios, Expect::Script).judge(&unreachable),
            Verdict::GaveUp
        );
    }

    #[test]
    fn wimboot_counts_once_it_named_every_file() {
        let text = capture("bios-wimboot.log");
        let spec = client("wimboot", Firmware::Bios, Expect::Wimboot);
        assert_eq!(spec.judge(&text), Verdict::Succeeded);
        // Cut before the variables file was reported: not yet.
        let cut = &text[..text.find("Using netboot-variables.txt").unwrap()];
        assert_eq!(spec.judge(cut), Verdict::Pending);
        // The script's own failure (a refused download) ends the wait at once.
        assert_eq!(spec.judge(&format!("{cut}\nBoot failed\n")), Verdict::GaveUp);
    }

    #[test]
    fn next_boot_device_counts_only_after_the_script_ran() {
        let spec = client("no-action", Firmware::Bios, Expect::NextBootDevice);
        assert_eq!(spec.judge(&capture("bios-no-action.log")), Verdict::Succeeded);
        assert_eq!(
            spec.judge(&capture("bios-reference-no-action.log")),
            Verdict::Succeeded
        );
        // The entry script could not reach the decision: moving on proves nothing.
        assert_eq!(
            spec.judge(&capture("bios-decision-unreachable.log")),
            Verdict::GaveUp
        );
        // OVMF failing HTTP Boot outright never fetched a script.
        let uefi = client("no-action", Firmware::UefiHttp, Expect::NextBootDevice);
        assert_eq!(uefi.judge(&capture("uefi-http-gave-up.log")), Verdict::GaveUp);
    }
}
