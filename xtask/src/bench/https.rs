//! `cargo xtask bench https`: the release `pxe-https` next to nginx on loopback.
//!
//! Measures, on the same machine and in one run:
//! * boot decisions per second and latency percentiles (`wrk`, keep-alive, static resolver);
//! * new TLS 1.2 handshakes per second (`openssl s_time -new`, the suite iPXE negotiates);
//! * download throughput of one large `boot.wim` over TLS (curl), against nginx serving the
//!   same file with the same certificate.
//!
//! The decision endpoint is measured twice: with the per-boot access log at `info` (written
//! straight to a file) and with `warn`, to show what logging costs.
//!
//! Options: `--seconds N` per load test (default 10), `--size-mib N` for boot.wim (default
//! 300), `--connections N,M` keep-alive connections for wrk (default `8,64`).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use netboot_testkit::process::Listening;

/// Debian packages the benchmark drives.
const PACKAGES: &[(&str, &str)] = &[
    ("wrk", "keep-alive HTTP load generator"),
    ("nginx-light", "reference static file server"),
    ("openssl", "TLS handshake rate (s_time)"),
    ("curl", "download throughput"),
];

/// The TLS 1.2 suite modern iPXE negotiates.
const IPXE_CIPHER: &str = "ECDHE-RSA-AES128-GCM-SHA256";
const MAC: &str = "52-54-00-12-34-56";

struct Options {
    seconds: u64,
    size_mib: u64,
    connections: Vec<u32>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        seconds: 10,
        size_mib: 300,
        connections: vec![8, 64],
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--size-mib" => options.size_mib = value.parse().context("--size-mib")?,
            "--connections" => {
                options.connections = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("--connections")?;
            }
            other => bail!("unknown option {other} (use --seconds, --size-mib, --connections)"),
        }
    }
    Ok(options)
}

/// A child process stopped (by its own pid) when dropped: SIGTERM, so nginx's master stops its
/// workers too, then SIGKILL if it is still there after a few seconds.
pub(super) struct Guard(pub(super) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    if super::reexec_as_release("https", args)? {
        return Ok(());
    }
    crate::deps::install_packages(PACKAGES)?;
    let workspace = build_release_pxe_https()?;
    let dir = std::env::temp_dir().join(format!("netboot-bench-https-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("root"))?;
    let result = bench(&workspace, &dir, &options);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Builds the release `pxe-https`; returns the workspace root it is under.
pub(super) fn build_release_pxe_https() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let status = Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "pxe-https"])
        .current_dir(&workspace)
        .status()?;
    if !status.success() {
        bail!("building pxe-https failed");
    }
    Ok(workspace)
}

fn bench(workspace: &Path, dir: &Path, options: &Options) -> Result<()> {
    let wim = dir.join("root/boot.wim");
    write_test_file(&wim, options.size_mib, 0)?;
    let (server, https_port) = start_pxe_https(workspace, dir, "info")?;
    let (quiet_server, quiet_port) = start_pxe_https(workspace, dir, "warn")?;
    let cert = dir.join("state/pxe-https.crt");
    let key = dir.join("state/pxe-https.key");
    let (nginx, nginx_port) = start_nginx(dir, &cert, &key)?;

    println!(
        "pxe-https vs nginx on 127.0.0.1, {} s per load test, load generator on the same cores",
        options.seconds
    );
    println!();
    println!("decision endpoint (wrk -t1, keep-alive, TLS 1.3, static resolver, one Required action):");
    let query = format!("mac={MAC}&uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32&buildarch=x86_64&platform=efi");
    for &connections in &options.connections {
        let runs = [
            (
                "pxe-https, access log info",
                format!("https://127.0.0.1:{https_port}/boot.ipxe/decide?{query}"),
            ),
            (
                "pxe-https, access log warn",
                format!("https://127.0.0.1:{quiet_port}/boot.ipxe/decide?{query}"),
            ),
            (
                "nginx, fixed string",
                format!("https://127.0.0.1:{nginx_port}/decide"),
            ),
        ];
        for (name, url) in runs {
            let result = wrk(&url, connections, options.seconds)?;
            println!(
                "  {connections:>3} conns  {name:<28} {:>9.0} req/s  p50 {:>8}  p99 {:>8}",
                result.rps, result.p50, result.p99
            );
        }
    }
    println!();

    let ours = handshakes(https_port, options.seconds)?;
    let theirs = handshakes(nginx_port, options.seconds)?;
    println!("new TLS 1.2 handshakes ({IPXE_CIPHER}, RSA-2048, openssl s_time -new, one client):");
    println!("  pxe-https {ours:>8.0} /s");
    println!("  nginx     {theirs:>8.0} /s   ratio {:.2}", ours / theirs);
    println!();

    let ours = throughput(https_port, &cert, options)?;
    let theirs = throughput(nginx_port, &cert, options)?;
    println!(
        "boot.wim download ({} MiB, TLS 1.2 {IPXE_CIPHER}, curl, best of 3):",
        options.size_mib
    );
    println!("  pxe-https {:>8.0} MiB/s", ours / 1_048_576.0);
    println!(
        "  nginx     {:>8.0} MiB/s   ratio {:.2}",
        theirs / 1_048_576.0,
        ours / theirs
    );
    drop((nginx, quiet_server, server));
    Ok(())
}

/// Writes `size_mib` MiB of incompressible-looking bytes; `seed` varies them.
pub(super) fn write_test_file(path: &Path, size_mib: u64, seed: u64) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    // Incompressible-looking content from a small xorshift generator.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..size_mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

fn start_pxe_https(workspace: &Path, dir: &Path, log_level: &str) -> Result<(Guard, u16)> {
    let config = dir.join(format!("netboot-{log_level}.toml"));
    // Every wrk connection comes from 127.0.0.1: the per-client limit would cap --connections.
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"{log_level},pxe_https::server=info\"\n[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"off\"\nroot = \"root\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n\
             max_connections_per_client = 4096\n\
             [[resolver.static.actions]]\nid = \"winpe\"\ntitle = \"Windows PE\"\ntarget = {{ kind = \"wimboot\", boot_wim = \"boot.wim\" }}\n\
             [[resolver.static.machines]]\nmac = \"{}\"\nrequired = [\"winpe\"]\n",
            MAC.replace('-', ":"),
        ),
    )?;
    spawn_pxe_https(
        workspace,
        &config,
        &dir.join(format!("pxe-https-{log_level}.log")),
        "(https)",
    )
}

/// Starts the release `pxe-https` with `config`, its log going to `log_path`, and waits for the
/// `listening on` line labelled `label` (`(https)` or `(http)`); returns the process and port.
pub(super) fn spawn_pxe_https(
    workspace: &Path,
    config: &Path,
    log_path: &Path,
    label: &str,
) -> Result<(Guard, u16)> {
    let binary = workspace.join("target/release/pxe-https");
    // Logs go straight to a file (as with `2>>/var/log/pxe-https.log`), so the figures are the
    // server's own cost and not that of a log collector competing for the same cores.
    let child = Command::new(&binary)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_path)?)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        // Only whole lines: the server may be halfway through writing the last one.
        let mut whole_lines = log.split_inclusive('\n').filter(|line| line.ends_with('\n'));
        let wanted = |line: &str| Listening::parse(line.trim_end()).filter(|l| l.label == label);
        if let Some(listening) = whole_lines.find_map(wanted) {
            break listening.addr.port();
        }
        if Instant::now() > deadline {
            bail!("pxe-https did not report listening; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok((guard, port))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_nginx(dir: &Path, cert: &Path, key: &Path) -> Result<(Guard, u16)> {
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nworker_processes auto;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  keepalive_requests 10000000;\n\
             client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n  fastcgi_temp_path {d}/nginx-fastcgi;\n\
             uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n\
             server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n\
             ssl_protocols TLSv1.2 TLSv1.3;\n    root {d}/root;\n\
             location = /decide {{ default_type text/plain; return 200 \"#!ipxe\\nexit 1\\n\"; }}\n  }}\n}}\n",
            cert.display(),
            key.display()
        ),
    )?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "nginx did not start; see {}",
                dir.join("nginx-error.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((guard, port))
}

struct LoadResult {
    rps: f64,
    p50: String,
    p99: String,
}

fn wrk(url: &str, connections: u32, seconds: u64) -> Result<LoadResult> {
    let output = Command::new("wrk")
        .args([
            "-t1",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "?".into())
    };
    if text.contains("Non-2xx") || !output.status.success() {
        bail!("wrk against {url} reported errors:\n{text}");
    }
    let rps = field("Requests/sec:")
        .parse()
        .with_context(|| format!("wrk output:\n{text}"))?;
    Ok(LoadResult {
        rps,
        p50: field("50%"),
        p99: field("99%"),
    })
}

fn handshakes(port: u16, seconds: u64) -> Result<f64> {
    let output = Command::new("openssl")
        .args([
            "s_time",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-new",
            "-time",
            &seconds.to_string(),
        ])
        .args(["-cipher", IPXE_CIPHER])
        .stdin(Stdio::null())
        .output()
        .context("running openssl s_time")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "1234 connections in 10.00s; 123.40 connections/user sec, ..." then "1234 connections in 11 real seconds"
    let real = text
        .lines()
        .find(|l| l.contains("real seconds"))
        .with_context(|| format!("s_time output:\n{text}"))?;
    let mut words = real.split_whitespace();
    let connections: f64 = words.next().unwrap_or_default().parse()?;
    let secs: f64 = real
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .parse()?;
    Ok(connections / secs.max(1.0))
}

fn throughput(port: u16, cert: &PathBuf, options: &Options) -> Result<f64> {
    let mut best = 0.0f64;
    for _ in 0..3 {
        let output = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "-o",
                "/dev/null",
                "-w",
                "%{speed_download} %{size_download}",
            ])
            .args(["--tls-max", "1.2", "--ciphers", IPXE_CIPHER, "--cacert"])
            .arg(cert)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/boot.wim"))
            .output()
            .context("running curl")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut fields = text.split_whitespace();
        let speed: f64 = fields
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("curl: {text}"))?;
        let size: u64 = fields.next().unwrap_or_default().parse().unwrap_or(0);
        if size != options.size_mib << 20 {
            bail!("downloaded {size} bytes instead of {}", options.size_mib << 20);
        }
        best = best.max(speed);
    }
    Ok(best)
}
