//! A clean Debian 12 root for the package tests, made once with debootstrap and kept as a
//! tarball under `target/dist/`, keyed on everything that goes into it, so reruns unpack it
//! in seconds instead of bootstrapping for minutes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::ci::run_step;

/// The Debian release the package is for.
pub(crate) const SUITE: &str = "bookworm";

/// Packages added to debootstrap's minimal base, with the reason. The package's own
/// dependencies are among them so that it installs in the container without a network.
const INCLUDE: &[(&str, &str)] = &[
    ("systemd", "runs the units (the container boots it as PID 1)"),
    ("systemd-sysv", "makes systemd the container's init"),
    ("dbus", "systemctl talks to systemd through it"),
    ("iproute2", "ss: which ports the services listen on"),
    ("procps", "ps: which user the service runs as"),
    ("adduser", "a dependency of the package: the system user"),
    (
        "ipxe",
        "the package's recommendation: boot programs for a fresh installation",
    ),
    ("libcap2-bin", "setcap, for the container image's binaries"),
];

/// Debian packages the host needs to make and boot the root.
pub(crate) const HOST_PACKAGES: &[(&str, &str)] = &[
    ("debootstrap", "makes the clean Debian 12 root"),
    (
        "systemd-container",
        "systemd-nspawn boots the root with a private network",
    ),
    ("util-linux", "nsenter runs commands inside the booted container"),
    ("tar", "caches the root"),
];

/// The mirror: the host's own (apt's deb822 sources), else Debian's redirector.
fn mirror() -> String {
    std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|text| {
            text.lines()
                .filter_map(|line| line.strip_prefix("URIs:"))
                .flat_map(str::split_whitespace)
                .find(|uri| uri.ends_with("/debian"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// The tarball of the root, made when missing; returns its path.
pub(crate) fn cached(workspace: &Path) -> Result<PathBuf> {
    crate::deps::install_packages(HOST_PACKAGES)?;
    let mirror = mirror();
    let include: Vec<&str> = INCLUDE.iter().map(|(name, _)| *name).collect();
    let mut key = Sha256::new();
    key.update(format!("{SUITE}\n{mirror}\nminbase\n{}\n", include.join(",")));
    let key = format!("{:x}", key.finalize());
    let dir = workspace.join(super::DIST_DIR).join("rootfs");
    let tarball = dir.join(format!("debian-{SUITE}-{}.tar", &key[..16]));
    if tarball.is_file() {
        return Ok(tarball);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let staging = dir.join("bootstrap");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let started = Instant::now();
    run_step(
        &format!("debootstrap {SUITE} from {mirror}"),
        Command::new("debootstrap")
            .args(["--variant=minbase", "--include"])
            .arg(include.join(","))
            .arg(SUITE)
            .arg(&staging)
            .arg(&mirror),
    )?;
    // Downloaded .debs are not part of a clean system.
    run_step(
        "apt-get clean in the new root",
        Command::new("chroot").arg(&staging).args(["apt-get", "clean"]),
    )?;
    let partial = tarball.with_extension("tar.partial");
    run_step(
        "tar the new root",
        Command::new("tar")
            .arg("--create")
            .arg("--file")
            .arg(&partial)
            .args(["--numeric-owner", "--xattrs", "--directory"])
            .arg(&staging)
            .arg("."),
    )?;
    std::fs::rename(&partial, &tarball)?;
    std::fs::remove_dir_all(&staging)?;
    eprintln!(
        "dist: bootstrapped Debian {SUITE} in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        tarball.display()
    );
    Ok(tarball)
}

/// Unpacks the root's tarball into `dir`, replacing what is there.
pub(crate) fn unpack(tarball: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let status = Command::new("tar")
        .arg("--extract")
        .arg("--file")
        .arg(tarball)
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "--directory"])
        .arg(dir)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("unpacking {} failed", tarball.display());
    }
    Ok(())
}
