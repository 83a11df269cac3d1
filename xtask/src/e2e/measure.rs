//! Measurements with the lab's own iPXE (scenarios `tls-keys` and `tls-timing`, run by name or
//! with `--all`):
//!
//! - which server key types and curves iPXE 2.0 accepts: one extra `pxe-https` per key type,
//!   each with a certificate of that type from the test CA (an ECDSA P-256 CA), and a script that fetches a file
//!   from each and prints whether it got it; the servers' debug logs show what rustls
//!   negotiated with iPXE;
//! - what a TLS handshake costs iPXE: with iPXE's `time`, a fetch over a new HTTPS connection
//!   (TCP + TLS handshake + request), over the kept-alive one (request only), and the same
//!   over plain HTTP, three times each. iPXE keeps idle connections for 10 s, so the script
//!   waits 11 s before each new connection.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use super::lab_ca::openssl;
use super::process::Spawned;

/// Server key types measured, with the port of their `pxe-https` and the `openssl req
/// -newkey` argument (plus `-pkeyopt` for curves). ECDSA P-521 is left out: rustls with ring
/// cannot sign with it, so `pxe-https` refuses such a key at start.
pub(crate) const KEY_TYPES: &[(&str, u16, &[&str])] = &[
    ("ecdsa-p256", 4431, &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    ("ecdsa-p384", 4432, &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
    ("rsa-2048", 4434, &["rsa:2048"]),
    ("rsa-4096", 4435, &["rsa:4096"]),
    ("ed25519", 4436, &["ed25519"]),
];

/// The small file every measurement fetches (under the boot-file root).
pub(crate) const PROBE: &str = "e2e/probe.txt";

/// What [`PROBE`] holds.
pub(crate) fn probe_bytes() -> Vec<u8> {
    vec![b'x'; 1024]
}

/// What a measuring client's per-machine script does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measurement {
    /// Use the build options the site build adds: digests, a `params` form POST, and list the
    /// commands (`help`); PeerDist shows in the server's log.
    Features,
    /// Fetch from each key type's server.
    KeyTypes,
    /// Time fetches over new and kept-alive HTTPS and HTTP connections.
    Timing,
    /// Download [`PEERDIST_FILE`] with BranchCache: Content Information from `pxe-https`, no
    /// peers, every block fetched as a missing-data range and verified, then its digest.
    PeerDist,
    /// The same for [`PEERDIST_CORRUPT_FILE`], whose stored Content Information the harness
    /// corrupted: iPXE must reject the download.
    PeerDistCorrupt,
}

/// The BranchCache download of the `peerdist` scenario (under the boot-file root).
pub(crate) const PEERDIST_FILE: (&str, usize) = ("e2e/peerdist.bin", 100 << 20);
/// The one of `peerdist-corrupt`: a file of its own, so corrupting its hashes leaves
/// [`PEERDIST_FILE`]'s alone (the scenarios share the lab's services).
pub(crate) const PEERDIST_CORRUPT_FILE: (&str, usize) = ("e2e/peerdist-corrupt.bin", 8 << 20);

impl Measurement {
    /// The file a BranchCache measurement downloads.
    pub(crate) fn peerdist_file(self) -> Option<(&'static str, usize)> {
        match self {
            Self::PeerDist => Some(PEERDIST_FILE),
            Self::PeerDistCorrupt => Some(PEERDIST_CORRUPT_FILE),
            _ => None,
        }
    }
}

/// The content of a BranchCache test file of `len` bytes: not compressible and not uniform,
/// so every block and segment hash differs.
pub(crate) fn peerdist_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The per-machine script of a measuring client, ending with its `marker`.
pub(crate) fn script(
    measurement: Measurement,
    server: Ipv4Addr,
    https_port: u16,
    http_port: u16,
    marker: &str,
) -> String {
    let mut script = String::from("#!ipxe\n");
    match measurement {
        Measurement::Features => {
            let _ = write!(
                script,
                "imgfetch --name probe https://{server}:{https_port}/{PROBE} || goto failed\n\
                 sha256sum probe || goto failed\n\
                 md5sum probe || goto failed\n\
                 params --name form || goto failed\n\
                 param --params form mac ${{netX/mac:hexhyp}} || goto failed\n\
                 param --params form uuid ${{uuid}} || goto failed\n\
                 param --params form buildarch ${{buildarch}} || goto failed\n\
                 param --params form platform ${{platform}} || goto failed\n\
                 imgfetch --name posted https://{server}:{https_port}/boot.ipxe/decide##params=form || goto failed\n\
                 help\n\
                 goto done\n\
                 :failed\n\
                 echo FEATURES FAILED\n\
                 exit 1\n\
                 :done\n"
            );
        }
        Measurement::KeyTypes => {
            for (name, port, _) in KEY_TYPES {
                let _ = writeln!(
                    script,
                    "imgfetch --name {name} https://{server}:{port}/{PROBE} && echo KEY {name} accepted || echo KEY {name} refused"
                );
            }
        }
        Measurement::PeerDist | Measurement::PeerDistCorrupt => {
            let (file, _) = measurement.peerdist_file().expect("a BranchCache measurement");
            let _ = write!(
                script,
                "imgfetch --name peerdist https://{server}:{https_port}/{file} || goto failed\n\
                 sha256sum peerdist || goto failed\n\
                 echo PEERDIST DOWNLOADED\n\
                 goto done\n\
                 :failed\n\
                 echo PEERDIST REJECTED\n\
                 :done\n"
            );
        }
        Measurement::Timing => {
            for round in 1..=3 {
                for (scheme, port) in [("https", https_port), ("http", http_port)] {
                    // iPXE keeps an idle connection for 10 s: after 11 s the next fetch opens a
                    // new one, the one after it reuses that.
                    let _ = writeln!(script, "sleep 11");
                    for kind in ["new", "kept"] {
                        let _ = writeln!(
                            script,
                            "echo TIMING {scheme} {kind} connection, round {round}:\n\
                             time imgfetch --name {scheme}-{kind}-{round} {scheme}://{server}:{port}/{PROBE}"
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(script, "echo {marker} mac=${{net0/mac}}");
    script
}

/// Makes a certificate of each key type for `server` from the test CA (openssl CLI) and
/// starts one `pxe-https` per type on its port in `netns`, with the lab's configuration.
pub(crate) fn start_key_type_servers(
    program: &Path,
    config: &Path,
    netns: &str,
    server: Ipv4Addr,
    dir: &Path,
) -> Result<Vec<Spawned>> {
    let keys = dir.join("key-types");
    std::fs::create_dir_all(&keys)?;
    let ca = crate::ipxe::test_ca(&crate::workspace_root());
    std::fs::write(
        keys.join("server.ext"),
        format!("subjectAltName=IP:{server}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )?;
    let mut servers = Vec::new();
    for (name, port, newkey) in KEY_TYPES {
        let (cert, key) = (keys.join(format!("{name}.crt")), keys.join(format!("{name}.key")));
        let csr = keys.join(format!("{name}.csr"));
        openssl(
            Command::new("openssl")
                .args(["req", "-new", "-nodes", "-newkey"])
                .args(*newkey)
                .args(["-subj", &format!("/CN={server}"), "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        )?;
        openssl(
            Command::new("openssl")
                .args([
                    "x509",
                    "-req",
                    "-days",
                    "7",
                    "-set_serial",
                    &port.to_string(),
                    "-in",
                ])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca.cert)
                .arg("-CAkey")
                .arg(&ca.key)
                .arg("-extfile")
                .arg(keys.join("server.ext"))
                .arg("-out")
                .arg(&cert),
        )?;
        let chain = append_ca(&cert, &ca.cert)?;
        let args = [
            "--config".to_owned(),
            config.display().to_string(),
            "--listen".to_owned(),
            format!("0.0.0.0:{port}"),
            "--no-http".to_owned(),
            "--cert".to_owned(),
            chain.display().to_string(),
            "--key".to_owned(),
            key.display().to_string(),
        ];
        let log = dir.join(format!("pxe-https-{name}.log"));
        servers.push(Spawned::start(
            &format!("pxe-https ({name})"),
            netns,
            &log,
            &program.display().to_string(),
            &args,
        )?);
    }
    Ok(servers)
}

/// `cert` followed by the CA: the chain a server sends.
fn append_ca(cert: &Path, ca: &Path) -> Result<PathBuf> {
    let chain = cert.with_extension("chain.pem");
    let mut text = std::fs::read_to_string(cert)?;
    text.push_str(&std::fs::read_to_string(ca)?);
    std::fs::write(&chain, text)?;
    Ok(chain)
}

/// Commands the site build adds to upstream's BIOS defaults (or to every platform), which
/// `help` must list.
pub(crate) const SITE_COMMANDS: &[&str] = &[
    "login",
    "params",
    "param",
    "sha256sum",
    "md5sum",
    "imgverify",
    "imgtrust",
    "ntp",
    "time",
    "certstat",
];

/// Why a features console does not show every option working, if it does not: the probe's
/// SHA-256 and MD5 printed by iPXE, the form POST fetched, and every site command in `help`.
pub(crate) fn features_problem(console: &str) -> Option<String> {
    use sha2::Digest as _;
    let sha256: String = sha2::Sha256::digest(probe_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if !console.contains(&format!("{sha256}  probe")) {
        return Some(format!("sha256sum did not print {sha256}  probe"));
    }
    if !console
        .lines()
        .any(|l| l.contains("/boot.ipxe/decide") && l.contains("... ok"))
    {
        return Some("the params form POST to /boot.ipxe/decide did not succeed".into());
    }
    let help: String = console
        .lines()
        .skip_while(|l| !l.contains("Available commands"))
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = help.split_whitespace().collect();
    let missing: Vec<&&str> = SITE_COMMANDS.iter().filter(|c| !words.contains(c)).collect();
    (!missing.is_empty()).then(|| format!("help does not list {missing:?}"))
}

/// What is wrong with a BranchCache client's console: the download must have ended with the
/// file's own SHA-256, or, for the corrupted Content Information, been rejected.
pub(crate) fn peerdist_problem(measurement: Measurement, console: &str) -> Option<String> {
    use sha2::Digest as _;
    let (file, len) = measurement.peerdist_file()?;
    let sha256: String = sha2::Sha256::digest(peerdist_bytes(len))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let printed = console.contains(&format!("{sha256}  peerdist"));
    match measurement {
        Measurement::PeerDistCorrupt if printed || console.contains("PEERDIST DOWNLOADED") => Some(format!(
            "iPXE accepted {file} against corrupted Content Information"
        )),
        Measurement::PeerDistCorrupt if !console.contains("PEERDIST REJECTED") => {
            Some(format!("iPXE did not report rejecting {file}"))
        }
        Measurement::PeerDist if !printed => Some(format!("sha256sum did not print {sha256}  peerdist")),
        _ => None,
    }
}

/// The stored Content Information entry of `file` (a path below the served root) under
/// `<state>/peerdist/`: its file and the offset of its version 2.0 bytes. Entry layout: magic
/// (8), header length (u32 LE), header (dev, inode, size, mtime s: 8 each; mtime ns: 4;
/// passphrase fingerprint: 8; version 1.0 and 2.0 lengths: u64 LE each; path length u16 LE;
/// path), version 1.0 bytes, version 2.0 bytes.
fn stored_v2(state: &Path, file: &str) -> Option<(PathBuf, u64)> {
    // The server keeps the path it resolved (perhaps canonical): compare the tail.
    let tail = format!("/{file}");
    for entry in std::fs::read_dir(state.join("peerdist")).ok()?.flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Some(header_len) = bytes
            .get(8..12)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
        else {
            continue;
        };
        let Some(header) = bytes.get(12..12 + header_len) else {
            continue;
        };
        let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
        // dev, inode, size, mtime s (4 x 8), mtime ns (4), fingerprint (8)
        let lengths = 8 * 4 + 4 + 8;
        if header.len() < lengths + 18 {
            continue;
        }
        let v1_len = u64_at(lengths);
        let path_len = u16::from_le_bytes(header[lengths + 16..lengths + 18].try_into().unwrap()) as usize;
        let Some(path) = header.get(lengths + 18..lengths + 18 + path_len) else {
            continue;
        };
        if path.ends_with(tail.as_bytes()) {
            return Some((entry.path(), (12 + header_len) as u64 + v1_len));
        }
    }
    None
}

/// Offset of the first segment's hash of data in version 2.0 Content Information: the
/// header (31 bytes), the chunk header (5), the segment's length (4).
const V2_FIRST_SEGMENT_HASH: u64 = 31 + 5 + 4;

/// Makes `pxe-https` (in `netns`, at `server`) compute the Content Information of each
/// BranchCache client's file before any client asks, by asking for it as iPXE does until it
/// answers with it; then flips a bit of the first segment's hash of data of the corrupted
/// one's stored version 2.0 (the version iPXE gets).
pub(crate) fn prepare_peerdist(
    netns: &str,
    server: Ipv4Addr,
    port: u16,
    state: &Path,
    measurements: &[Measurement],
) -> Result<()> {
    for measurement in measurements {
        let Some((file, _)) = measurement.peerdist_file() else {
            continue;
        };
        let url = format!("https://{server}:{port}/{file}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let output = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    netns,
                    "curl",
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-D",
                    "-",
                ])
                .args([
                    "-H",
                    "Accept-Encoding: peerdist",
                    "-H",
                    "X-P2P-PeerDist: Version=1.1",
                ])
                .args([
                    "-H",
                    "X-P2P-PeerDistEx: MinContentInformation=1.0, MaxContentInformation=2.0",
                ])
                .arg(&url)
                .output()?;
            let headers = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
            if headers.contains("content-encoding: peerdist") {
                break;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("pxe-https never answered {url} with PeerDist Content Information");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        if *measurement == Measurement::PeerDistCorrupt {
            let (entry, v2) = stored_v2(state, file).with_context(|| {
                format!("no stored Content Information for {file} in {}", state.display())
            })?;
            let mut bytes = std::fs::read(&entry)?;
            let at = usize::try_from(v2 + V2_FIRST_SEGMENT_HASH)?;
            anyhow::ensure!(at < bytes.len(), "{} is too short", entry.display());
            bytes[at] ^= 0x01;
            std::fs::write(&entry, bytes)?;
        }
    }
    Ok(())
}

/// The measurement lines of a console (`KEY ...`, `TIMING ...` with iPXE's `time: N.Ns` joined
/// to it), in order.
pub(crate) fn results(console: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = console
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("KEY ") {
            found.push(line.to_owned());
        } else if line.starts_with("TIMING ") {
            // The fetch's own progress line and then `time: 0.4s` follow (0.1 s resolution).
            let time = lines
                .clone()
                .take(4)
                .find_map(|l| l.strip_prefix("time: "))
                .unwrap_or("?");
            found.push(format!("{line} {time}"));
        }
    }
    found
}

/// What rustls negotiated per key type: the first `TLS handshake done` (or failed) line of
/// each extra server's log, shortened.
pub(crate) fn negotiated(dir: &Path) -> Vec<String> {
    KEY_TYPES
        .iter()
        .map(|(name, _, _)| {
            let log = std::fs::read_to_string(dir.join(format!("pxe-https-{name}.log"))).unwrap_or_default();
            let text = super::journey::clean(&log);
            let line = text
                .lines()
                .find(|l| l.contains("TLS handshake done") || l.contains("TLS handshake failed"))
                .map_or("no TLS connection".to_owned(), |l| {
                    l.split_once("pxe_https::server: ")
                        .map_or(l, |(_, rest)| rest)
                        .to_owned()
                });
            format!("{name}: {line}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peerdist_download_passes_on_its_digest_and_a_corrupt_one_on_its_rejection() {
        let ip = Ipv4Addr::new(10, 77, 0, 1);
        let text = script(Measurement::PeerDist, ip, 443, 80, "NETBOOT-E2E-OK p");
        assert!(text.contains("imgfetch --name peerdist https://10.77.0.1:443/e2e/peerdist.bin"));
        assert!(text.trim_end().ends_with("NETBOOT-E2E-OK p mac=${net0/mac}"));
        let corrupt = script(Measurement::PeerDistCorrupt, ip, 443, 80, "m");
        assert!(corrupt.contains("/e2e/peerdist-corrupt.bin"));
        // The console of the real runs, abridged.
        let digest = "83bceb6953a83a3ce83b25c7e2e0668ae0b81eee68ed48770cc90873d53e61ac";
        let downloaded = format!("... 99% [  0% from 0 peers] ok\n{digest}  peerdist\nPEERDIST DOWNLOADED\n");
        assert_eq!(peerdist_problem(Measurement::PeerDist, &downloaded), None);
        assert!(peerdist_problem(Measurement::PeerDist, "PEERDIST REJECTED\n").is_some());
        assert!(peerdist_problem(Measurement::PeerDistCorrupt, &downloaded).is_some());
        let rejected =
            "81% [  0% from 0 peers] Input/output error (https://ipxe.org/1d0c6539)\nPEERDIST REJECTED\n";
        assert_eq!(peerdist_problem(Measurement::PeerDistCorrupt, rejected), None);
        assert!(peerdist_problem(Measurement::PeerDistCorrupt, "").is_some());
        assert_eq!(peerdist_problem(Measurement::Features, ""), None);
    }

    #[test]
    fn the_stored_version_2_is_found_by_the_served_path() {
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state.path().join("peerdist")).unwrap();
        let path = b"/srv/files/e2e/peerdist-corrupt.bin";
        let mut header = vec![0u8; 44];
        header.extend(7u64.to_le_bytes()); // version 1.0 length
        header.extend(9u64.to_le_bytes()); // version 2.0 length
        header.extend((path.len() as u16).to_le_bytes());
        header.extend(path);
        let mut entry = b"NBPDCI\0\x01".to_vec();
        entry.extend((header.len() as u32).to_le_bytes());
        entry.extend(&header);
        entry.extend([1u8; 7]);
        entry.extend([2u8; 9]);
        std::fs::write(state.path().join("peerdist/entry"), &entry).unwrap();
        let (found, v2) = stored_v2(state.path(), "e2e/peerdist-corrupt.bin").unwrap();
        assert_eq!(found, state.path().join("peerdist/entry"));
        assert_eq!(entry[usize::try_from(v2).unwrap()], 2);
        assert_eq!(entry[usize::try_from(v2).unwrap() - 1], 1);
        assert!(stored_v2(state.path(), "e2e/peerdist.bin").is_none());
    }

    #[test]
    fn scripts_end_with_the_marker_and_time_every_kind_of_connection() {
        let ip = Ipv4Addr::new(10, 77, 0, 1);
        let keys = script(Measurement::KeyTypes, ip, 443, 80, "NETBOOT-E2E-OK k");
        assert!(keys.starts_with("#!ipxe\n"));
        assert!(keys.trim_end().ends_with("NETBOOT-E2E-OK k mac=${net0/mac}"));
        assert_eq!(keys.matches("imgfetch").count(), KEY_TYPES.len());
        let timing = script(Measurement::Timing, ip, 443, 80, "NETBOOT-E2E-OK t");
        assert_eq!(timing.matches("time imgfetch").count(), 12);
        assert!(timing.contains("https://10.77.0.1:443/e2e/probe.txt"));
        assert!(timing.contains("http://10.77.0.1:80/e2e/probe.txt"));
    }

    #[test]
    fn a_features_console_must_show_the_digest_the_post_and_every_command() {
        use sha2::Digest as _;
        let sha256: String = sha2::Sha256::digest(probe_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let good = format!(
            "{sha256}  probe\nhttps://10.77.0.1:443/boot.ipxe/decide... ok\n\nAvailable commands:\n\n  {}\n",
            SITE_COMMANDS.join("  ")
        );
        assert_eq!(features_problem(&good), None);
        assert!(features_problem(&good.replace("certstat", "x"))
            .unwrap()
            .contains("certstat"));
        assert!(features_problem(&good.replace(&sha256, "0")).is_some());
        assert!(
            features_problem(&good.replace("decide... ok", "decide... Operation not permitted")).is_some()
        );
    }

    #[test]
    fn results_pair_each_timing_with_its_time() {
        // As iPXE 2.0 prints it (blank lines from the serial console's CR LF).
        let console = "TIMING https new connection, round 1:\n\nhttps://10.77.0.1:443/e2e/probe.txt... ok\n\n\
                       time: 0.5s\n\nTIMING https kept connection, round 1:\n\nhttps://x... ok\n\ntime: 0.0s\n\
                       KEY rsa-2048 accepted\n";
        assert_eq!(
            results(console),
            [
                "TIMING https new connection, round 1: 0.5s",
                "TIMING https kept connection, round 1: 0.0s",
                "KEY rsa-2048 accepted"
            ]
        );
    }
}
