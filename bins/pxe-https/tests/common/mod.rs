//! Shared helpers: start the real binary on loopback ephemeral ports and talk to it with
//! independent clients (curl, openssl).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// True when `tool` can run. Missing tools fail under CI and skip (with a note) elsewhere.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required (Debian package in xtask TEST_PACKAGES)"
        );
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// A running `pxe-https`, killed on drop.
pub struct Running {
    child: Child,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub log: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// The certificate the server uses (generated beside the config).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("pxe-https.crt")
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    pub fn http_url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.http.expect("http listener").port()
        )
    }

    /// `curl` over TLS, trusting only the server's own certificate.
    pub fn curl(&self, args: &[&str]) -> Output {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--globoff", "--max-time", "20", "--cacert"])
            .arg(self.cert())
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", self.https.port())])
            .args(args);
        command.output().expect("running curl")
    }

    /// Body of a successful GET over HTTPS.
    pub fn get(&self, path: &str) -> String {
        let output = self.curl(&["--fail", &self.https_url(path)]);
        assert!(
            output.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 body")
    }

    /// Log lines printed so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

/// Writes `config_toml` (plus listeners on loopback port 0) to a temp dir with a `root/`
/// directory, starts the binary and waits for its `listening on` lines.
pub fn start(config_toml: &str, extra_args: &[&str], prepare: impl FnOnce(&Path)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root")).unwrap();
    prepare(dir.path());
    // `https_keys` go into the generated [https] table; the rest of the caller's text follows it.
    let (https_keys, rest) = match config_toml.strip_prefix("[https]\n") {
        Some(rest) => rest.split_once("\n\n").unwrap_or((rest, "")),
        None => ("ipxe_dir = \"\"", config_toml),
    };
    let config = format!(
        "[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nroot = \"root\"\n{https_keys}\n{rest}"
    );
    let config_path = dir.path().join("netboot.toml");
    std::fs::write(&config_path, config).unwrap();
    spawn(dir, &config_path, extra_args)
}

/// Starts the binary with an existing directory and config.
pub fn spawn(dir: tempfile::TempDir, config_path: &Path, extra_args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pxe-https"))
        .arg("--config")
        .arg(config_path)
        .args(extra_args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting pxe-https");
    let stderr = child.stderr.take().unwrap();
    let (sender, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    let mut https = None;
    let mut http = None;
    let http_expected = !extra_args.contains(&"--no-http");
    let mut seen = Vec::new();
    while https.is_none() || (http_expected && http.is_none()) {
        let Ok(line) = log.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "pxe-https did not report its listeners; log:\n{}",
                seen.join("\n")
            );
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            let (addr, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let addr: SocketAddr = addr.parse().unwrap();
            if kind.contains("https") {
                https = Some(addr);
            } else {
                http = Some(addr);
            }
        }
        seen.push(line);
    }
    Running {
        child,
        https: https.unwrap(),
        http,
        dir,
        log,
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A static configuration with three machines: one Required action, a menu, and the rest
/// unknown.
pub const RULES: &str = r#"
[[resolver.static.actions]]
id = "winpe"
title = "Windows PE x64"
target = { kind = "wimboot", boot_wim = "winpe/boot.wim", bcd = "winpe/BCD" }

[[resolver.static.actions]]
id = "debian"
title = "Debian installer"
target = { kind = "linux", kernel = "debian/linux", initrds = ["debian/initrd.gz"], cmdline = "auto=true" }

[[resolver.static.machines]]
mac = "52:54:00:00:00:01"
required = ["winpe"]

[[resolver.static.machines]]
mac = "52:54:00:00:00:02"
required = ["winpe"]
available = ["debian"]
"#;

/// The query iPXE sends for a machine (as the entry script builds it).
pub fn identity_query(mac: &str) -> String {
    format!("mac={mac}&uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32&buildarch=x86_64&platform=efi&manufacturer_hex=51:45:4d:55&product_hex=&serial_hex=&asset_hex=")
}
