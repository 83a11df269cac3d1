//! The one configuration file every service of the lab reads, and the per-machine scripts it
//! points at. In the split layout the same file goes to all three hosts: the proxy hands out
//! the TFTP and HTTPS hosts' addresses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::client::{ClientSpec, Expect, Firmware};
use super::lab::Lab;

/// Plain HTTP port of the HTTPS service (Debian's iPXE and UEFI HTTP Boot have no TLS).
pub(crate) const HTTP_PORT: u16 = 80;
/// TLS port of the HTTPS service.
pub(crate) const HTTPS_PORT: u16 = 443;
/// Port of the OpenSSL compatibility TLS listener, for OVMF's HTTPS Boot.
pub(crate) const COMPAT_TLS_PORT: u16 = 8443;

/// Writes `netboot.toml` and the scripts into `dir`; returns the configuration's path.
pub(crate) fn write(lab: &Lab, dir: &Path, clients: &[ClientSpec]) -> Result<PathBuf> {
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("e2e"))?;
    let tftp = lab.host("tftp").ip;
    let https = lab.host("https").ip;
    let ipxe = super::IPXE_DIR;
    let has = |firmware: Firmware| clients.iter().any(|c| c.firmware == firmware);
    // The proxy hands every HTTP Boot client of a site the same URL: plain HTTP, or HTTPS on
    // the compatibility listener with a certificate from the lab CA the clients trust.
    let https_boot = has(Firmware::UefiHttps);
    if https_boot && has(Firmware::UefiHttp) {
        bail!("uefi-https and uefi-http clients need different HTTP Boot URLs: run them in separate passes");
    }
    let http_boot_url = if https_boot {
        format!("https://{https}:{COMPAT_TLS_PORT}/")
    } else {
        format!("http://{https}:{HTTP_PORT}/")
    };
    let mut toml = String::new();
    // Debug level: the services then log each request's MAC, UUID and architecture, which the
    // harness checks against what each client is.
    writeln!(
        toml,
        "[log]\nlevel = \"info,pxe_proxy=debug,pxe_tftp=debug,pxe_https=debug,pxe_server=debug\"\n"
    )?;
    writeln!(
        toml,
        "[proxy]\ntftp_server = \"{tftp}\"\n\
         ipxe_script_url = \"https://{https}:{HTTPS_PORT}/boot.ipxe\"\n\
         ipxe_script_url_without_https = \"http://{https}:{HTTP_PORT}/boot.ipxe\"\n\
         http_boot_url = \"{http_boot_url}\"\n"
    )?;
    writeln!(toml, "[tftp]\nroot = \"{ipxe}\"\n")?;
    writeln!(
        toml,
        "[https]\nlisten = \"0.0.0.0:{HTTPS_PORT}\"\nhttp_listen = \"0.0.0.0:{HTTP_PORT}\"\n\
         root = \"{}\"\nipxe_dir = \"{ipxe}\"\nstate_dir = \"{}\"\ncountdown_secs = 0\n",
        files.display(),
        dir.join("state").display()
    )?;
    if https_boot {
        let ca = super::lab_ca::make(dir, https)?;
        writeln!(
            toml,
            "compat_tls_listen = \"0.0.0.0:{COMPAT_TLS_PORT}\"\ncompat_tls_cert = \"{}\"\ncompat_tls_key = \"{}\"\n",
            ca.server_cert.display(),
            ca.server_key.display()
        )?;
    }
    writeln!(toml, "[resolver]\nkind = \"static\"\n")?;
    writeln!(toml, "[resolver.static]\nunmatched = \"exit\"\n")?;
    if clients.iter().any(|c| c.expect == Expect::Wimboot) {
        super::wimboot::prepare(&files)?;
    }
    for client in clients.iter() {
        let action = match client.expect {
            Expect::Wimboot => super::wimboot::action_toml(&client.name),
            Expect::Script => {
                let script = format!("e2e/{}.ipxe", client.name);
                std::fs::write(files.join(&script), super::reference::machine_script(client))?;
                format!(
                    "[[resolver.static.actions]]\nid = \"{name}\"\ntitle = \"e2e {name}\"\n\
                     target = {{ kind = \"chain\", url = \"{script}\" }}\n",
                    name = client.name
                )
            }
            Expect::NextBootDevice => continue,
        };
        writeln!(toml, "{action}")?;
        writeln!(
            toml,
            "[[resolver.static.machines]]\nname = \"{name}\"\nmac = \"{mac}\"\nuuid = \"{uuid}\"\nrequired = [\"{name}\"]\n",
            name = client.name,
            mac = client.mac,
            uuid = client.uuid,
        )?;
    }
    let path = dir.join("netboot.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}
