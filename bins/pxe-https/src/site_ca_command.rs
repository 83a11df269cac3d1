//! `site-ca` subcommands of `pxe-https` and `pxe-server`: export the site CA (for building
//! iPXE), issue a certificate for another server of the site, and show the state.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use netboot_config::Config;

use crate::site_ca::{self, KeyKind, SiteCa};

/// Manage the site CA (in the state directory) that issues the servers' HTTPS certificates.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SiteCaCommand {
    /// Print the CA certificate (PEM), making the CA first if there is none. Build iPXE with
    /// it: `build-ipxe.sh --trust site-ca.pem ...`.
    Export {
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Issue a server certificate for another host of the site (split services, a second
    /// server): copy both files there and set `https.cert` and `https.key`.
    Issue {
        /// DNS name or IP address the clients use for that host (repeat for more).
        #[arg(long = "name", value_name = "NAME", required = true)]
        names: Vec<String>,
        /// Where the certificate chain goes (PEM).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Where its private key goes (PEM, mode 0600).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// An RSA-2048 key instead of ECDSA P-256 (for the OpenSSL compatibility listener).
        #[arg(long)]
        rsa: bool,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Show the CA, this server's certificate and whether the served iPXE trusts it.
    Show,
}

/// Runs a `site-ca` subcommand against the configuration's state directory.
pub fn run(command: &SiteCaCommand, config: &Config) -> Result<()> {
    let dir = config.state_dir();
    let now = SystemTime::now();
    match command {
        SiteCaCommand::Export { out } => {
            let (ca, created) = SiteCa::load_or_create(&dir, &crate::tls::site_name(), now)
                .with_context(|| format!("the site CA in {}", dir.display()))?;
            if created {
                eprintln!("created the site CA in {}", dir.display());
            }
            eprintln!("site CA SHA-256 {}", ca.fingerprint());
            match out {
                Some(path) => std::fs::write(path, ca.cert_pem())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{}", ca.cert_pem()),
            }
        }
        SiteCaCommand::Issue {
            names,
            cert,
            key,
            rsa,
            force,
        } => {
            for name in names {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:*".contains(c));
                if !valid {
                    bail!("--name {name:?} is not a DNS name or IP address");
                }
            }
            for path in [cert, key] {
                if path.exists() && !force {
                    bail!("{} exists; pass --force to replace it", path.display());
                }
            }
            let ca = SiteCa::load(&dir)?.with_context(|| {
                format!(
                    "no site CA in {}: start pxe-https once, or run `site-ca export`, to make it",
                    dir.display()
                )
            })?;
            let kind = if *rsa {
                KeyKind::Rsa2048
            } else {
                KeyKind::EcdsaP256
            };
            let issued = ca.issue(names, kind, now)?;
            site_ca::write_issued(&issued, cert, key)?;
            eprintln!(
                "issued {} (key {}) for {} from the site CA {}, valid {} days",
                cert.display(),
                key.display(),
                names.join(", "),
                ca.fingerprint(),
                site_ca::SERVER_VALIDITY.as_secs() / 86_400
            );
        }
        SiteCaCommand::Show => show(config, now)?,
    }
    Ok(())
}

fn show(config: &Config, now: SystemTime) -> Result<()> {
    let dir = config.state_dir();
    let Some(ca) = SiteCa::load(&dir)? else {
        println!(
            "no site CA in {} yet (made on first start or by `site-ca export`)",
            dir.display()
        );
        return Ok(());
    };
    println!("site CA      {}", ca.cert_path().display());
    println!("  SHA-256    {}", ca.fingerprint());
    println!("  valid for  {} more days", days_left(ca.not_after(), now));
    if config.https.cert.is_some() {
        println!("server       https.cert is set: a certificate from another CA is used");
    } else {
        let cert = dir.join(crate::tls::GENERATED_CERT);
        let names = crate::tls::certificate_names(config);
        match std::fs::read_to_string(&cert) {
            Ok(pem) => match ca.renewal_reason(&pem, &names, now) {
                None => println!("server       {} is current", cert.display()),
                Some(reason) => println!(
                    "server       {} is renewed at the next start: {reason}",
                    cert.display()
                ),
            },
            Err(_) => println!("server       {} is issued at the next start", cert.display()),
        }
    }
    let ipxe = config.ipxe_dir();
    match ipxe.manifest() {
        Some(Ok(build)) if build.trusts(&ca.fingerprint()) => {
            println!(
                "iPXE         {} trusts the site CA",
                ipxe.path().map(|p| p.display().to_string()).unwrap_or_default()
            );
        }
        Some(Ok(build)) => println!(
            "iPXE         {} does NOT trust the site CA (it trusts {})",
            ipxe.path().map(|p| p.display().to_string()).unwrap_or_default(),
            build.trust_sha256.join(", ")
        ),
        Some(Err(e)) => println!("iPXE         {e}"),
        None => println!(
            "iPXE         no site build in {}",
            config.site_ipxe_dir().display()
        ),
    }
    Ok(())
}

fn days_left(until: SystemTime, now: SystemTime) -> u64 {
    until.duration_since(now).map_or(0, |d| d.as_secs() / 86_400)
}
