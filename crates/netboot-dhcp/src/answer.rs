//! What a boot client is handed, decided the same way for DHCPv4 and DHCPv6: a boot program
//! over TFTP or HTTP for firmware, the script URL for iPXE, and the boot program once more for
//! an iPXE NIC ROM when the site chainloads its own iPXE build.

use netboot_core::ClientArch;

use crate::proxy::{NoReply, ProxySettings};
use crate::pxe::ClientKind;

/// What a reply tells the client to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// iPXE's script URL.
    Script(String),
    /// A boot program over TFTP: its file name (the protocol puts the server elsewhere).
    TftpProgram(String),
    /// A boot program over HTTP (UEFI HTTP Boot): its URL.
    HttpProgram(String),
}

impl Answer {
    /// Whether the reply hands out a boot program rather than a script URL.
    pub(crate) fn hands_boot_program(&self) -> bool {
        !matches!(self, Self::Script(_))
    }
}

/// The facts about a client the choice depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asker {
    pub(crate) kind: ClientKind,
    pub(crate) arch: ClientArch,
    /// iPXE running from a NIC option ROM rather than a build this server handed out.
    pub(crate) ipxe_rom: bool,
    /// iPXE said (DHCPv4 option 175) that it cannot fetch `https://` URLs.
    pub(crate) lacks_https: bool,
}

/// Chooses the answer. `server_host` replaces `{server}` in URL templates: an IPv4 address,
/// or an IPv6 address in brackets. `handed_recently` says this machine was just handed a boot
/// program, so an iPXE asking now is the chainloaded one.
pub(crate) fn choose(
    asker: Asker,
    settings: &ProxySettings,
    handed_recently: bool,
    server_host: &str,
) -> Result<Answer, NoReply> {
    let tftp_program = || {
        settings
            .boot_file(asker.arch)
            .map(str::to_string)
            .ok_or(NoReply::NoBootFile(asker.arch))
    };
    Ok(match asker.kind {
        ClientKind::Ipxe if settings.chainload_ipxe_roms && asker.ipxe_rom && !handed_recently => {
            Answer::TftpProgram(tftp_program()?)
        }
        ClientKind::Ipxe => {
            let url = match &settings.ipxe_script_url_without_https {
                Some(plain) if asker.lacks_https => plain,
                _ => &settings.ipxe_script_url,
            };
            Answer::Script(expand(url, server_host))
        }
        ClientKind::PxeFirmware => Answer::TftpProgram(tftp_program()?),
        ClientKind::HttpBoot => Answer::HttpProgram(join_url(
            &expand(&settings.http_boot_url, server_host),
            &tftp_program()?,
        )),
    })
}

/// Replaces `{server}` in a URL template.
pub(crate) fn expand(template: &str, server_host: &str) -> String {
    template.replace("{server}", server_host)
}

/// Joins a base URL and a file name with exactly one `/`.
pub(crate) fn join_url(base: &str, name: &str) -> String {
    match (base.ends_with('/'), name.starts_with('/')) {
        (true, true) => format!("{base}{}", &name[1..]),
        (false, false) => format!("{base}/{name}"),
        _ => format!("{base}{name}"),
    }
}
