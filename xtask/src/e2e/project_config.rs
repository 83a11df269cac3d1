//! The one configuration file every service of the lab reads, and the per-machine scripts it
//! points at. In the split layout the same file goes to all three hosts: the proxy hands out
//! the TFTP and HTTPS hosts' addresses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::client::{ClientSpec, Expect, Firmware};
use super::lab::{Lab, Stack};
use super::scenario::LabKind;

/// Plain HTTP port of the HTTPS service (for UEFI HTTP Boot, which has no CA to check TLS with).
pub(crate) const HTTP_PORT: u16 = 80;
/// TLS port of the HTTPS service.
pub(crate) const HTTPS_PORT: u16 = 443;
/// Port of the OpenSSL compatibility TLS listener, for OVMF's HTTPS Boot.
pub(crate) const COMPAT_TLS_PORT: u16 = 8443;

/// The x64 UEFI boot program a lab's proxy hands out: HTTP Boot labs load `ipxe.efi` (iPXE's
/// own NIC drivers), the others `snponly.efi` (the firmware's network stack).
pub(crate) fn x64_boot_file(kind: LabKind) -> &'static str {
    match kind {
        LabKind::HttpBoot | LabKind::Ipv6 => "ipxe.efi",
        LabKind::Tls | LabKind::HttpsBoot | LabKind::UntrustedCa | LabKind::Measure | LabKind::Auth => {
            "snponly.efi"
        }
    }
}

/// The name the IPv6 lab's site DNS gives the HTTPS host (an AAAA record in the site's
/// dnsmasq, named in the server certificate through `https.cert_names`). Stock iPXE 2.0 sends
/// the host of an `https://[addr]/` URL, brackets included, as TLS SNI, which rustls refuses
/// (`ServerNameMustContainOneHostName`); our build sends the bare address, and a name works
/// with both. The lab hands `uefi-pxe6` the literal, `uefi-http6` the name.
pub(crate) const IPV6_HTTPS_NAME: &str = "netboot-https.lab";

/// The script URL by the HTTPS host's IPv6 address, `https://[fd77:...]/boot.ipxe`.
pub(crate) fn ipxe_script_url_by_address6(lab: &Lab) -> String {
    format!("https://[{}]:{HTTPS_PORT}/boot.ipxe", lab.host("https").ip6)
}

/// The script URL the lab's iPXE gets: over HTTPS on the HTTPS host, by its IPv4 address or,
/// in an IPv6-only lab, by its name in the site's DNS (which the site's DHCPv6 server hands
/// out there).
pub(crate) fn ipxe_script_url(lab: &Lab) -> String {
    match lab.stack {
        Stack::Ipv4 => format!("https://{}:{HTTPS_PORT}/boot.ipxe", lab.host("https").ip),
        Stack::Ipv6Only => format!("https://{IPV6_HTTPS_NAME}:{HTTPS_PORT}/boot.ipxe"),
    }
}

/// Writes `netboot.toml`, the scripts and the state directory (the lab's iPXE build from
/// `ipxe_build`, and the test CA unless the lab is about an untrusted one) into `dir`;
/// returns the configuration's path.
pub(crate) fn write(
    lab: &Lab,
    dir: &Path,
    clients: &[ClientSpec],
    kind: LabKind,
    ipxe_build: &Path,
) -> Result<PathBuf> {
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("e2e"))?;
    std::fs::write(files.join(super::measure::PROBE), super::measure::probe_bytes())?;
    for (file, len) in clients
        .iter()
        .filter_map(|c| c.measurement.and_then(super::measure::Measurement::peerdist_file))
    {
        std::fs::write(files.join(file), super::measure::peerdist_bytes(len))?;
    }
    let state = dir.join("state");
    // Secret hand-off files: outside the served root and the iPXE directory.
    let private = dir.join("private");
    install_state(&state, kind, ipxe_build)?;
    let stack = lab.stack;
    let tftp = lab.host("tftp").url_host(stack);
    let https_ip = lab.host("https").ip;
    let https = lab.host("https").url_host(stack);
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
    let plain = kind.plain_http();
    let mut toml = String::new();
    // Debug level: the services then log each request's MAC, UUID and architecture, and each
    // TLS handshake, which the harness checks against what each client is.
    writeln!(
        toml,
        "[log]\nlevel = \"info,pxe_proxy=debug,pxe_tftp=debug,pxe_https=debug,pxe_server=debug\"\n"
    )?;
    // Every iPXE of the lab is the lab's own build (with HTTPS), so all get the https:// URL.
    // An IPv6-only lab names the TFTP host for DHCPv6 (`tftp://[...]` URLs) instead.
    let tftp_server = match stack {
        Stack::Ipv4 => format!("tftp_server = \"{tftp}\""),
        Stack::Ipv6Only => format!("tftp_server6 = \"{}\"", lab.host("tftp").ip6),
    };
    writeln!(
        toml,
        "[proxy]\n{tftp_server}\n\
         ipxe_script_url = \"{}\"\n\
         ipxe_script_url_without_https = \"\"\n\
         http_boot_url = \"{http_boot_url}\"\n\n\
         [proxy.boot_files]\nx64-uefi = \"{}\"\n",
        ipxe_script_url(lab),
        x64_boot_file(kind)
    )?;
    // No tftp.root and no https.ipxe_dir: the services find the site's iPXE build in the state
    // directory by themselves, as on a real server. Only a host with a /srv/tftp (which would
    // win) gets the root spelled out.
    if Path::new("/srv/tftp").is_dir() {
        writeln!(toml, "[tftp]\nroot = \"{}\"\n", state.join("ipxe").display())?;
    }
    // The IPv6-only lab's hosts have no IPv4 address: the services listen on [::].
    let any = match stack {
        Stack::Ipv4 => "0.0.0.0",
        Stack::Ipv6Only => "[::]",
    };
    let http_listen = if plain {
        format!("{any}:{HTTP_PORT}")
    } else {
        "off".to_owned()
    };
    writeln!(
        toml,
        "[https]\nlisten = \"{any}:{HTTPS_PORT}\"\nhttp_listen = \"{http_listen}\"\n\
         root = \"{}\"\nstate_dir = \"{}\"\nprivate_dir = \"{}\"\ncountdown_secs = 0\n",
        files.display(),
        state.display(),
        private.display()
    )?;
    if stack == Stack::Ipv6Only {
        writeln!(toml, "cert_names = [\"{IPV6_HTTPS_NAME}\"]\n")?;
    }
    if https_boot {
        let ca = super::lab_ca::make(dir, https_ip)?;
        writeln!(
            toml,
            "compat_tls_listen = \"0.0.0.0:{COMPAT_TLS_PORT}\"\ncompat_tls_cert = \"{}\"\ncompat_tls_key = \"{}\"\n",
            ca.server_cert.display(),
            ca.server_key.display()
        )?;
    }
    if kind == LabKind::Auth {
        writeln!(toml, "{}", super::auth::config_toml(dir, https_ip))?;
    }
    writeln!(toml, "[resolver]\nkind = \"static\"\n")?;
    writeln!(toml, "[resolver.static]\nunmatched = \"exit\"\n")?;
    if clients.iter().any(|c| c.expect == Expect::Wimboot) {
        super::wimboot::prepare(&files, &private)?;
    }
    for client in clients.iter() {
        let action = match client.expect {
            Expect::Wimboot => super::wimboot::action_toml(&client.name),
            Expect::Script | Expect::LoginRefused => {
                let script = format!("e2e/{}.ipxe", client.name);
                let text = match client.measurement {
                    Some(measurement) => {
                        super::measure::script(measurement, https_ip, HTTPS_PORT, HTTP_PORT, &client.marker())
                    }
                    None => super::reference::machine_script(client),
                };
                std::fs::write(files.join(&script), text)?;
                format!(
                    "[[resolver.static.actions]]\nid = \"{name}\"\ntitle = \"e2e {name}\"\n\
                     auth = {auth}\ntarget = {{ kind = \"chain\", url = \"{script}\" }}\n",
                    name = client.name,
                    auth = kind == LabKind::Auth,
                )
            }
            Expect::NextBootDevice | Expect::TlsRefused => continue,
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

/// The state directory of a lab: the iPXE build in `ipxe/` where the services look for the
/// site's own build, and the committed test CA as the site CA (the key 0600, as the services
/// expect), except in an untrusted-CA lab, where the services make a CA of their own.
fn install_state(state: &Path, kind: LabKind, ipxe_build: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let ipxe = state.join("ipxe");
    std::fs::create_dir_all(&ipxe)?;
    for entry in std::fs::read_dir(ipxe_build)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
            std::fs::copy(entry.path(), ipxe.join(entry.file_name()))?;
        }
    }
    if kind != LabKind::UntrustedCa {
        let ca = crate::ipxe::test_ca(&crate::workspace_root());
        std::fs::copy(&ca.cert, state.join("site-ca.crt"))?;
        let key = state.join("site-ca.key");
        std::fs::copy(&ca.key, &key)?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}
