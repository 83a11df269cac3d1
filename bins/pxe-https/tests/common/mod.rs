//! Shared helpers: start the real binary on loopback ephemeral ports and talk to it with
//! independent clients (curl, openssl).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use netboot_testkit::process::{Listening, Service};

/// A running `pxe-https`, killed on drop.
pub struct Running {
    service: Service,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
}

impl Running {
    /// The certificate the server uses (generated beside the config).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("state/pxe-https.crt")
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
        self.service.drain_log()
    }

    /// Status, lower-cased response headers and body of one curl request (over plain HTTP or
    /// HTTPS) with extra curl `args`.
    pub fn request(&self, args: &[&str], path: &str, plain_http: bool) -> (u16, String, Vec<u8>) {
        let url = if plain_http {
            self.http_url(path)
        } else {
            self.https_url(path)
        };
        let headers = self.dir.path().join("headers.txt");
        let mut all = vec!["--path-as-is", "-D", headers.to_str().unwrap()];
        all.extend_from_slice(args);
        all.push(&url);
        let output = self.curl(&all);
        assert!(
            output.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let headers = std::fs::read_to_string(headers).unwrap().to_ascii_lowercase();
        let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, headers, output.stdout)
    }

    /// Stops the server, keeping its directory (to start it again on the same state).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.service.terminate(Duration::from_secs(10));
        self.dir
    }

    /// Stops the server as an init system would (SIGTERM) and starts it again on the same
    /// directory and configuration (new ephemeral ports).
    pub fn restart(self, extra_args: &[&str]) -> Self {
        let dir = self.stop();
        let config = dir.path().join("netboot.toml");
        spawn(dir, &config, extra_args)
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.service.id()
    }

    /// The exit status, once the server has ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.service.exit_status()
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
    // The boot token key and the PeerDist passphrase and Content Information go to the test's
    // own directory, never to /var/lib.
    let state = if https_keys.contains("state_dir") {
        ""
    } else {
        "state_dir = \"state\"\n"
    };
    let config = format!(
        "[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nroot = \"root\"\n{state}{https_keys}\n{rest}"
    );
    let config_path = dir.path().join("netboot.toml");
    std::fs::write(&config_path, config).unwrap();
    spawn(dir, &config_path, extra_args)
}

/// Starts the binary with an existing directory and config.
pub fn spawn(dir: tempfile::TempDir, config_path: &Path, extra_args: &[&str]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-https"));
    command
        .arg("--config")
        .arg(config_path)
        .args(extra_args)
        .env("RUST_LOG", "info");
    let service = Service::spawn("pxe-https", &mut command);
    let is_https = |l: &Listening| l.label.contains("https");
    let http_expected = !extra_args.contains(&"--no-http");
    let listeners = service
        .wait_for_listening(Duration::from_secs(60), |found| {
            found.iter().any(is_https) && (!http_expected || found.iter().any(|l| !is_https(l)))
        })
        .unwrap_or_else(|log| panic!("pxe-https did not report its listeners; log:\n{log}"));
    let first = |https: bool| listeners.iter().find(|l| is_https(l) == https).map(|l| l.addr);
    Running {
        https: first(true).unwrap(),
        http: first(false),
        service,
        dir,
    }
}

/// A static configuration with three machines: one Required action, a menu, and the rest
/// unknown (answered with an exit).
pub const RULES: &str = r#"
[resolver.static]
unmatched = "exit"

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
