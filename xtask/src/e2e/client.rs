//! QEMU firmware clients: SeaBIOS with QEMU's iPXE NIC ROM, and OVMF's own PXE and HTTP Boot
//! stacks. Always TCG: nested KVM on the machines this runs on crashes iPXE and OVMF.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use super::lab::{tap_name, Lab};
use super::process::Spawned;

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// Debian's `qemu-efi-aarch64`: EDK2 for QEMU's `virt` machine (64 MiB flash images).
pub(crate) const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

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
    /// AAVMF (EDK2 for ARM64) native PXE on QEMU's aarch64 `virt` machine, under TCG.
    Arm64Uefi,
    /// OVMF's native PXE over IPv6, its IPv4 stack switched off through fw_cfg
    /// (`opt/org.tianocore/IPv4Support`, `IPv4PXESupport`), so PXEv6 is its first boot
    /// option and nothing waits for IPv4.
    UefiPxe6,
    /// OVMF UEFI HTTP Boot over IPv6, IPv4 and PXE switched off through fw_cfg.
    UefiHttp6,
}

impl Firmware {
    /// Short name for reports.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Bios => "bios",
            Self::UefiPxe => "uefi-pxe",
            Self::UefiHttp => "uefi-http",
            Self::UefiHttps => "uefi-https",
            Self::Arm64Uefi => "arm64-uefi",
            Self::UefiPxe6 => "uefi-pxe6",
            Self::UefiHttp6 => "uefi-http6",
        }
    }

    /// Whether this client boots over IPv6 (in an IPv6-only lab).
    pub(crate) fn is_ipv6(self) -> bool {
        matches!(self, Self::UefiPxe6 | Self::UefiHttp6)
    }

    /// The architecture names (as the services log them) this client must show up with.
    pub(crate) fn expected_arches(self) -> &'static [&'static str] {
        match self {
            Self::Bios => &["bios"],
            Self::UefiPxe | Self::UefiPxe6 => &["x64-uefi"],
            Self::UefiHttp | Self::UefiHttps | Self::UefiHttp6 => &["x64-uefi-http"],
            Self::Arm64Uefi => &["arm64-uefi"],
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
    /// iPXE refused the server's certificate: the console shows the error for the script URL
    /// and no script ran.
    TlsRefused,
    /// Every login typed at the console was refused: the console shows the server giving up
    /// after the last attempt, the firmware moves on, and the machine's script never ran.
    LoginRefused,
}

/// Keys a person would type at a client's console once it shows a prompt (the boot-console
/// login form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsoleInput {
    /// Typed once the console (escape sequences removed) shows this text for the `nth` time.
    pub(crate) after: &'static str,
    /// Which appearance of `after` to wait for, from 1: the login form comes back after a
    /// refused attempt.
    pub(crate) nth: usize,
    /// The keys: `\r` is Enter.
    pub(crate) keys: String,
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
    /// What its script measures instead of only printing the marker.
    pub(crate) measurement: Option<super::measure::Measurement>,
    /// What is typed at its console, in order.
    pub(crate) console: Vec<ConsoleInput>,
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
            measurement: None,
            console: Vec::new(),
        }
    }

    /// The same client with `keys` typed at its console after the `nth` appearance of
    /// `after`, following what it types already.
    pub(crate) fn typing(mut self, after: &'static str, nth: usize, keys: &str) -> Self {
        self.console.push(ConsoleInput {
            after,
            nth,
            keys: keys.to_owned(),
        });
        self
    }

    /// The same client running a measurement script.
    pub(crate) fn measuring(mut self, measurement: super::measure::Measurement) -> Self {
        self.measurement = Some(measurement);
        self
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
            Firmware::UefiPxe
            | Firmware::UefiHttp
            | Firmware::UefiHttps
            | Firmware::Arm64Uefi
            | Firmware::UefiPxe6
            | Firmware::UefiHttp6 => &["BdsDxe: failed to load Boot", "Shell>"],
        }
    }
}

/// Memory, flash and NIC of an EDK2 machine: the firmware code read-only, a fresh copy of the
/// NVRAM every boot (no boot order or variables carried over), and virtio-net without an
/// option ROM (`romfile=` empty), so the firmware's own network stack boots.
fn uefi_machine(spec: &ClientSpec, dir: &Path, code: &str, vars: &str, package: &str) -> Result<Vec<String>> {
    let name = Path::new(vars)
        .file_name()
        .map_or_else(|| "VARS.fd".into(), |n| n.to_string_lossy());
    let copy = dir.join(format!("{}.{name}", spec.name));
    std::fs::copy(vars, &copy).with_context(|| format!("copying {vars} (Debian package {package})"))?;
    Ok(vec![
        "-m".into(),
        "512".into(),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", copy.display()),
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,mac={},bootindex=1,romfile=", spec.mac),
    ])
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
    /// The keyboard side of the serial console, for clients that type.
    console: Option<Console>,
}

/// Pause after each key typed at a console.
const KEY_INTERVAL_MS: u64 = 150;

/// The serial console of a client that types: QEMU serves it on a Unix socket and still logs
/// everything the guest writes to the serial log file; a thread reads (and drops) the socket's
/// copy of that output, because an unread socket would stall the guest's UART.
struct Console {
    socket: std::os::unix::net::UnixStream,
    path: PathBuf,
    /// Index of the next [`ConsoleInput`] to type.
    next: usize,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Console {
    /// Where QEMU listens for `name`'s console: a short path, as Unix socket paths are limited
    /// to 107 bytes.
    fn socket_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("netboot-e2e-{}-{name}.sock", std::process::id()))
    }

    /// Connects to the socket QEMU has just been asked to create (it may take a moment).
    fn connect(path: PathBuf) -> Result<Self> {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let socket = loop {
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(socket) => break socket,
                Err(e) if Instant::now() >= deadline => {
                    return Err(e).with_context(|| format!("connecting to the console {}", path.display()))
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        let mut output = socket.try_clone()?;
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            // Ends when QEMU exits or the harness shuts the socket down.
            while matches!(std::io::Read::read(&mut output, &mut sink), Ok(n) if n > 0) {}
        });
        Ok(Self {
            socket,
            path,
            next: 0,
        })
    }
}

impl RunningClient {
    /// Starts QEMU for `spec` on tap `slot` of `lab`, logging into `dir`.
    pub(crate) fn start(spec: &ClientSpec, slot: usize, lab: &Lab, dir: &Path) -> Result<Self> {
        let serial = dir.join(format!("{}.serial.log", spec.name));
        std::fs::write(&serial, "")?;
        let machine = if spec.firmware == Firmware::Arm64Uefi {
            "virt"
        } else {
            "q35"
        };
        let mut args: Vec<String> = [
            "-machine",
            machine,
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
        let console_socket = (!spec.console.is_empty()).then(|| Console::socket_path(&spec.name));
        match &console_socket {
            Some(socket) => {
                let _ = std::fs::remove_file(socket);
                args.extend([
                    "-chardev".into(),
                    format!(
                        "socket,id=console,path={},server=on,wait=off,logfile={}",
                        socket.display(),
                        serial.display()
                    ),
                    "-serial".into(),
                    "chardev:console".into(),
                ]);
            }
            None => args.extend(["-serial".into(), format!("file:{}", serial.display())]),
        }
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
            Firmware::Arm64Uefi => {
                args.extend(["-cpu".into(), "cortex-a57".into()]);
                args.extend(uefi_machine(
                    spec,
                    dir,
                    AAVMF_CODE,
                    AAVMF_VARS,
                    "qemu-efi-aarch64",
                )?);
            }
            Firmware::UefiPxe
            | Firmware::UefiHttp
            | Firmware::UefiHttps
            | Firmware::UefiPxe6
            | Firmware::UefiHttp6 => {
                args.extend(uefi_machine(spec, dir, OVMF_CODE, OVMF_VARS, "ovmf")?);
                if spec.firmware.is_ipv6() {
                    // No IPv4 stack at all: OVMF would otherwise try PXEv4 (and HTTPv4) first
                    // and wait out their DHCPv4 timeouts on a link without IPv4.
                    for knob in ["IPv4Support", "IPv4PXESupport"] {
                        args.extend([
                            "-fw_cfg".into(),
                            format!("name=opt/org.tianocore/{knob},string=n"),
                        ]);
                    }
                }
                if spec.firmware == Firmware::UefiHttp6 {
                    args.extend([
                        "-fw_cfg".into(),
                        "name=opt/org.tianocore/IPv6PXESupport,string=n".into(),
                    ]);
                    // EDK2 before edk2-stable202508 starts HTTP Boot's DHCPv6 before the
                    // link-local address has passed duplicate address detection and gives
                    // up at once (EFI_NO_MAPPING) when HTTPv6 is the first boot option. A
                    // 5 s boot menu, during which the NIC is already connected, gives DAD its
                    // second; PXEv6 waits for DAD itself.
                    args.extend(["-boot".into(), "menu=on,splash-time=5000".into()]);
                }
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
        let program = if spec.firmware == Firmware::Arm64Uefi {
            "qemu-system-aarch64"
        } else {
            "qemu-system-x86_64"
        };
        let qemu = Spawned::start(
            &format!("qemu {}", spec.name),
            &lab.clients_netns,
            &log,
            program,
            &args,
        )?;
        let console = console_socket.map(Console::connect).transpose()?;
        Ok(Self {
            spec: spec.clone(),
            qemu,
            serial,
            started: Instant::now(),
            console,
        })
    }

    /// Types the next console input once its prompt is on the console. Typing is the
    /// harness acting as the person at the machine; a write that fails (QEMU gone) is left
    /// to the verdict.
    pub(crate) fn type_when_prompted(&mut self) {
        let Some(next) = self.console.as_ref().map(|c| c.next) else {
            return;
        };
        let Some(input) = self.spec.console.get(next) else {
            return;
        };
        let text = super::journey::clean(&self.serial_text());
        if text.matches(input.after).count() < input.nth {
            return;
        }
        let Some(console) = &mut self.console else {
            return;
        };
        eprintln!(
            "e2e:   {} types at prompt {:?} #{}",
            self.spec.name, input.after, input.nth
        );
        console.next += 1;
        let Ok(mut keyboard) = console.socket.try_clone() else {
            return;
        };
        let keys = input.keys.clone().into_bytes();
        // One key at a time, as a person types: the guest's UART holds 16 bytes, and firmware
        // under TCG that redraws a form field per key drains it slower than a burst fills it
        // (keys past the FIFO are lost). A write that fails means QEMU is gone; the verdict
        // tells.
        std::thread::spawn(move || {
            for key in keys {
                if std::io::Write::write_all(&mut keyboard, &[key]).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(KEY_INTERVAL_MS));
            }
        });
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
            Expect::TlsRefused if text.contains(&self.marker()) => Verdict::GaveUp,
            // The refusal, then the firmware moving on: iPXE has given up and closed its
            // connection by then, so the server has seen the handshake fail.
            Expect::TlsRefused => match refused_certificate(&text) {
                Some(end) if moved_on(&text[end..]) => Verdict::Succeeded,
                Some(_) => Verdict::Pending,
                None if moved_on(&text) => Verdict::GaveUp,
                None => Verdict::Pending,
            },
            Expect::LoginRefused if text.contains(&self.marker()) => Verdict::GaveUp,
            Expect::LoginRefused => match text.find(super::auth::GAVE_UP) {
                Some(at) if moved_on(&text[at..]) => Verdict::Succeeded,
                Some(_) => Verdict::Pending,
                None if moved_on(&text) => Verdict::GaveUp,
                None => Verdict::Pending,
            },
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

/// Where iPXE's console shows it refusing the server's certificate for the script URL (the
/// offset after that line), if it does. A
/// chain that does not end in a trusted root sends iPXE 2.0's validator looking for a
/// cross-signed certificate; the site build has no source for those (`CROSSCERT ""`), so the
/// error is the validator's `Invalid argument (https://ipxe.org/1c2ee002)`; an expired or
/// otherwise unacceptable certificate is `Permission denied`.
fn refused_certificate(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let refused = line.contains("https://")
            && line.contains("boot.ipxe...")
            && (line.contains("ipxe.org/1c2ee002") || line.contains("Permission denied"));
        if refused {
            return Some(offset);
        }
    }
    None
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
    fn a_boot_after_a_login_and_a_console_refused_every_login_are_told_apart() {
        let booted = capture("bios-auth-ldap.log");
        let refused = capture("bios-auth-refused.log");
        let spec = |name: &str, expect| client(name, Firmware::Bios, expect);
        assert_eq!(
            spec("auth-ldap", Expect::Script).judge(&booted),
            Verdict::Succeeded
        );
        assert_eq!(
            spec("auth-ldap", Expect::LoginRefused).judge(&booted),
            Verdict::GaveUp
        );
        assert_eq!(
            spec("auth-refused", Expect::LoginRefused).judge(&refused),
            Verdict::Succeeded
        );
        assert_eq!(
            spec("auth-refused", Expect::Script).judge(&refused),
            Verdict::GaveUp
        );
        // Until the server gave up and the firmware moved on, the refusal is not complete.
        for cut_at in [super::super::auth::GAVE_UP, "Booting from Hard Disk"] {
            let cut = &refused[..refused.find(cut_at).unwrap()];
            assert_eq!(
                spec("auth-refused", Expect::LoginRefused).judge(cut),
                Verdict::Pending
            );
        }
    }

    #[test]
    fn our_ipxe_over_https_and_its_refusal_of_an_untrusted_ca_are_told_apart() {
        let https = capture("bios-own-ipxe-https.log");
        assert_eq!(
            client("bios", Firmware::Bios, Expect::Script).judge(&https),
            Verdict::Succeeded
        );
        assert_eq!(
            client("bios", Firmware::Bios, Expect::TlsRefused).judge(&https),
            Verdict::GaveUp,
            "a script ran"
        );
        let arm64 = capture("arm64-uefi-own-ipxe-https.log");
        assert_eq!(
            client("arm64-uefi", Firmware::Arm64Uefi, Expect::Script).judge(&arm64),
            Verdict::Succeeded
        );
        let refused = capture("bios-untrusted-ca.log");
        assert_eq!(
            client("untrusted-ca", Firmware::Bios, Expect::TlsRefused).judge(&refused),
            Verdict::Succeeded
        );
        assert_eq!(
            client("untrusted-ca", Firmware::Bios, Expect::Script).judge(&refused),
            Verdict::GaveUp
        );
        for cut_at in ["boot.ipxe...", "Booting from Hard Disk"] {
            let cut = &refused[..refused.find(cut_at).unwrap()];
            assert_eq!(
                client("untrusted-ca", Firmware::Bios, Expect::TlsRefused).judge(cut),
                Verdict::Pending,
                "cut before {cut_at}"
            );
        }
        // A firmware that moved on for another reason (no script URL at all) is no refusal.
        assert_eq!(
            client("bios-chain", Firmware::Bios, Expect::TlsRefused)
                .judge(&capture("bios-decision-unreachable.log")),
            Verdict::GaveUp
        );
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
