//! A throw-away private CA for the UEFI HTTPS Boot scenario: an RSA server certificate for
//! the PXE host's address (made with the openssl CLI, as a site would), and the CA in the
//! EFI_SIGNATURE_LIST form OVMF reads from fw_cfg `etc/edk2/https/cacerts`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

/// `EFI_CERT_X509_GUID` (UEFI spec, "EFI_SIGNATURE_LIST"): the list holds DER certificates.
const EFI_CERT_X509_GUID: [u8; 16] = guid_le(
    0xa5c0_59a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);

/// The owner GUID written into each signature; firmware does not interpret it.
const OWNER_GUID: [u8; 16] = guid_le(
    0x6e65_7462,
    0x6f6f,
    0x7465,
    [0x32, 0x65, 0x6c, 0x61, 0x62, 0x63, 0x61, 0x00],
);

/// Size of `EFI_SIGNATURE_LIST`'s header: type GUID plus three `u32` sizes.
const LIST_HEADER_LEN: usize = 16 + 4 + 4 + 4;

/// Files of the lab CA.
#[derive(Debug, Clone)]
pub(crate) struct LabCa {
    /// The server certificate (PEM), signed by the CA, for the PXE host's address.
    pub(crate) server_cert: PathBuf,
    /// Its RSA key (PEM).
    pub(crate) server_key: PathBuf,
}

/// Where the CA files of a pass live (client start-up finds the signature list here).
pub(crate) fn dir(pass_dir: &Path) -> PathBuf {
    pass_dir.join("tls")
}

/// The signature list OVMF clients of the pass in `pass_dir` are given.
pub(crate) fn cacerts_esl(pass_dir: &Path) -> PathBuf {
    dir(pass_dir).join("cacerts.esl")
}

/// Makes a CA and a server certificate for `server_ip` under `pass_dir/tls`.
pub(crate) fn make(pass_dir: &Path, server_ip: Ipv4Addr) -> Result<LabCa> {
    let out = dir(pass_dir);
    std::fs::create_dir_all(&out)?;
    let path = |name: &str| out.join(name);
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7"])
            .args(["-subj", "/CN=netboot e2e lab CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout"])
            .arg(path("ca.key"))
            .arg("-out")
            .arg(path("ca.pem")),
    )?;
    openssl(
        Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", &format!("/CN={server_ip}"), "-keyout"])
            .arg(path("server.key"))
            .arg("-out")
            .arg(path("server.csr")),
    )?;
    std::fs::write(
        path("server.ext"),
        format!("subjectAltName=IP:{server_ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )?;
    openssl(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "7", "-CAcreateserial", "-in"])
            .arg(path("server.csr"))
            .arg("-CA")
            .arg(path("ca.pem"))
            .arg("-CAkey")
            .arg(path("ca.key"))
            .arg("-extfile")
            .arg(path("server.ext"))
            .arg("-out")
            .arg(path("server.pem")),
    )?;
    openssl(
        Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(path("ca.pem"))
            .arg("-out")
            .arg(path("ca.der")),
    )?;
    let der = std::fs::read(path("ca.der"))?;
    std::fs::write(cacerts_esl(pass_dir), signature_list(&der))?;
    Ok(LabCa {
        server_cert: path("server.pem"),
        server_key: path("server.key"),
    })
}

/// Runs an openssl CLI command, failing with its error output.
pub(crate) fn openssl(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .context("running openssl (Debian package openssl)")?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// One `EFI_SIGNATURE_LIST` of type X.509 holding `der` as its only signature: the header
/// (type, list size, header size 0, signature size), then the owner GUID and the certificate.
pub(crate) fn signature_list(der: &[u8]) -> Vec<u8> {
    let signature_len = OWNER_GUID.len() + der.len();
    let list_len = LIST_HEADER_LEN + signature_len;
    let mut list = Vec::with_capacity(list_len);
    list.extend_from_slice(&EFI_CERT_X509_GUID);
    list.extend_from_slice(&to_u32(list_len).to_le_bytes());
    list.extend_from_slice(&0u32.to_le_bytes());
    list.extend_from_slice(&to_u32(signature_len).to_le_bytes());
    list.extend_from_slice(&OWNER_GUID);
    list.extend_from_slice(der);
    list
}

fn to_u32(len: usize) -> u32 {
    u32::try_from(len).expect("a certificate is far smaller than 4 GiB")
}

/// A GUID in the mixed-endian byte order EFI stores it in.
const fn guid_le(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> [u8; 16] {
    let a = data1.to_le_bytes();
    let b = data2.to_le_bytes();
    let c = data3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], data4[0], data4[1], data4[2], data4[3], data4[4],
        data4[5], data4[6], data4[7],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x509_guid_has_the_byte_order_firmware_expects() {
        // a5c059a1-94e4-4aa7-87b5-ab155c2bf072 as EFI writes it.
        assert_eq!(
            EFI_CERT_X509_GUID,
            [
                0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0,
                0x72
            ]
        );
    }

    #[test]
    fn a_signature_list_frames_the_certificate_with_consistent_sizes() {
        let der = vec![0x30, 0x82, 0x01, 0x00, 0xaa, 0xbb];
        let list = signature_list(&der);
        let u32_at = |at: usize| u32::from_le_bytes(list[at..at + 4].try_into().unwrap());
        assert_eq!(&list[..16], &EFI_CERT_X509_GUID);
        assert_eq!(u32_at(16) as usize, list.len());
        assert_eq!(u32_at(20), 0, "no signature header");
        assert_eq!(u32_at(24) as usize, 16 + der.len());
        assert_eq!(&list[28..44], &OWNER_GUID);
        assert_eq!(&list[44..], &der[..]);
    }
}
