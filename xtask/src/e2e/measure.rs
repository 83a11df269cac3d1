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

use anyhow::Result;

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
