//! Debian packages the test suite needs, installed when missing.

use std::process::Command;

use anyhow::{bail, Result};

use crate::ci::run_step;

/// Packages the default test run uses, with the reason each is here.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("curl", "HTTPS and TFTP client for integration tests"),
    (
        "python3",
        "hashlib/hmac: an independent computation of PeerDist Content Information",
    ),
    ("openssl", "s_client cipher checks"),
    (
        "libssl-dev",
        "builds pxe-https with the openssl-compat TLS listener",
    ),
    ("pkg-config", "finds libssl for the openssl-compat build"),
    ("tftp-hpa", "TFTP client for pxe-tftp integration tests"),
    (
        "atftp",
        "TFTP client with windowsize for pxe-tftp integration tests",
    ),
    ("busybox", "busybox tftp client for pxe-tftp integration tests"),
    ("iproute2", "network namespaces for integration tests"),
    (
        "nftables",
        "kernel packet loss on the veth link of the pxe-tftp namespace tests",
    ),
    (
        "slapd",
        "slapd and slapadd: a private OpenLDAP server for the boot-console LDAP login tests",
    ),
    (
        "ldap-utils",
        "ldapsearch and ldapwhoami, to look into that test directory when a login test fails",
    ),
    (
        "freetds-bin",
        "tsql, an independent TDS client checked against the TDS test endpoint",
    ),
    ("qemu-system-x86", "end-to-end lab: QEMU firmware clients"),
    ("ipxe-qemu", "end-to-end lab: QEMU's iPXE NIC option ROMs"),
    (
        "ipxe",
        "end-to-end lab: Debian's iPXE for the dnsmasq reference side",
    ),
    ("gcc", "the lab's own iPXE build (cargo xtask ipxe)"),
    ("binutils", "the lab's own iPXE build"),
    ("make", "the lab's own iPXE build"),
    ("perl", "the lab's own iPXE build"),
    ("patch", "the lab's own iPXE build (fixes on the release)"),
    ("liblzma-dev", "the lab's own iPXE build (compressed images)"),
    (
        "gcc-aarch64-linux-gnu",
        "the lab's own ARM64 iPXE (cross compiler)",
    ),
    (
        "qemu-system-arm",
        "end-to-end lab: the arm64-uefi scenario (QEMU aarch64)",
    ),
    (
        "qemu-efi-aarch64",
        "end-to-end lab: the arm64-uefi scenario (AAVMF firmware)",
    ),
    ("ovmf", "end-to-end lab: UEFI firmware"),
    ("seabios", "end-to-end lab: BIOS firmware"),
    ("dnsmasq-base", "end-to-end lab: the site DHCP server"),
    (
        "wimtools",
        "end-to-end lab: wimlib-imagex makes the wimboot scenario's boot WIM",
    ),
    ("gcc", "end-to-end lab: builds wimboot from the pinned source"),
    ("make", "end-to-end lab: builds wimboot from the pinned source"),
    (
        "postgresql",
        "boot records: the same storage suite on a private PostgreSQL server",
    ),
    (
        "chromium",
        "admin page: loaded, navigated and screenshotted headless",
    ),
];

fn missing<'a>(packages: &[(&'a str, &str)]) -> Vec<&'a str> {
    packages
        .iter()
        .filter(|(name, _)| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", name])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .map(|(name, _)| *name)
        .collect()
}

/// Installs whatever of [`TEST_PACKAGES`] is missing.
pub(crate) fn install() -> Result<()> {
    install_packages(TEST_PACKAGES)
}

/// Installs the missing ones of `packages` with apt-get (needs root).
pub(crate) fn install_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing = missing(packages);
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages {missing:?}; install them as root: apt-get install {}",
            missing.join(" ")
        );
    }
    run_step("apt-get update", Command::new("apt-get").args(["update", "-q"]))?;
    run_step(
        "apt-get install",
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
