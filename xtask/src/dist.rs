//! `cargo xtask dist`: the Debian 12 package, built with `dpkg-deb` from the release binaries,
//! the units in [`units`] and the files under `contrib/debian/`; `--test` installs it in a
//! fresh Debian 12 container ([`container_test`]) and `--image` builds and starts the
//! container image ([`image`]).
//!
//! Hand-driven rather than through debhelper or cargo-deb: the package is small, and this
//! way building it needs nothing beyond what a Debian machine has (dpkg-deb, binutils).

mod container_test;
mod image;
mod rootfs;
mod units;

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::ci::run_step;
use units::UNITS;

/// `cargo xtask dist` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DistArgs {
    /// Then install the package in a fresh Debian 12 container (debootstrap, systemd-nspawn
    /// with a private network), start, check, stop and purge it (as root).
    #[arg(long)]
    test: bool,
    /// Then build the container image (contrib/container/Containerfile) with podman from the
    /// same Debian 12 root and start it once without a network (as root).
    #[arg(long)]
    image: bool,
    /// Package the release binaries already in target/release instead of building them.
    #[arg(long)]
    no_build: bool,
}

/// The package's name.
const PACKAGE: &str = "netboot";
/// The Debian revision of the package.
const DEBIAN_REVISION: &str = "1";
/// Where the package lands, relative to the workspace.
pub(crate) const DIST_DIR: &str = "target/dist";
/// Where the build script for the site's iPXE is installed.
const INSTALLED_IPXE_SCRIPT: &str = "usr/share/netboot/build-ipxe.sh";
/// The conffile.
const CONFFILE: &str = "etc/netboot/netboot.toml";

/// Debian packages building the package needs.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    (
        "binutils",
        "strip removes debug info; objdump reads the glibc versions",
    ),
    ("gzip", "compresses the documentation"),
];

/// `Recommends:`: Debian's iPXE lets a fresh installation start and boot BIOS and UEFI
/// machines (over plain HTTP: it has no TLS) until the site builds its own.
const RECOMMENDS: &str = "ipxe";
/// `Suggests:`: what `build-ipxe.sh` needs to build the site's own iPXE.
const SUGGESTS: &str = "gcc, binutils, make, patch, perl, liblzma-dev, openssl";

/// `cargo xtask dist ...`.
pub(crate) fn run(args: DistArgs) -> Result<()> {
    let workspace = crate::workspace_root();
    let started = Instant::now();
    crate::deps::install_packages(BUILD_PACKAGES)?;
    if !args.no_build {
        let mut cargo = Command::new("cargo");
        cargo.current_dir(&workspace).args(["build", "--release"]);
        for unit in UNITS {
            cargo.args(["-p", unit.binary]);
        }
        run_step("cargo build --release (the four binaries)", &mut cargo)?;
    }
    let deb = build_package(&workspace)?;
    eprintln!(
        "dist: {} in {:.0} s",
        deb.display(),
        started.elapsed().as_secs_f64()
    );
    if args.test || args.image {
        crate::signals::install()?;
        let root = rootfs::cached(&workspace)?;
        if args.test {
            container_test::run(&workspace, &root, &deb)?;
        }
        if args.image {
            image::run(&workspace, &root, &deb)?;
        }
    }
    Ok(())
}

/// The package's version: the workspace's, with the Debian revision.
fn version() -> String {
    format!("{}-{DEBIAN_REVISION}", env!("CARGO_PKG_VERSION"))
}

fn architecture() -> Result<String> {
    let output = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .context("running dpkg --print-architecture")?;
    if !output.status.success() {
        bail!("dpkg --print-architecture failed");
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Assembles the package tree under `target/dist/` and builds the `.deb`; returns its path.
fn build_package(workspace: &Path) -> Result<PathBuf> {
    let dist = workspace.join(DIST_DIR);
    let tree = dist.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    let contrib = workspace.join("contrib/debian");
    let mut binaries = Vec::new();
    for unit in UNITS {
        let built = workspace.join("target/release").join(unit.binary);
        if !built.is_file() {
            bail!(
                "{} is missing: build it with cargo build --release -p {} (or drop --no-build)",
                built.display(),
                unit.binary
            );
        }
        let installed = tree.join("usr/bin").join(unit.binary);
        create_parent(&installed)?;
        // Line tables stay useful in panics; full debug info is most of the binary's size.
        run_step(
            &format!("strip {}", unit.binary),
            Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&installed)
                .arg(&built),
        )?;
        set_mode(&installed, 0o755)?;
        binaries.push(installed);
    }
    for unit in UNITS {
        write(
            &tree.join("lib/systemd/system").join(unit.file_name()),
            &unit.render(),
            0o644,
        )?;
    }
    copy(&contrib.join("netboot.toml"), &tree.join(CONFFILE), 0o644)?;
    copy(
        &workspace.join(crate::ipxe::SCRIPT),
        &tree.join(INSTALLED_IPXE_SCRIPT),
        0o755,
    )?;
    let doc = tree.join("usr/share/doc").join(PACKAGE);
    let mit = std::fs::read_to_string(workspace.join("LICENSE-MIT")).context("reading LICENSE-MIT")?;
    let copyright =
        std::fs::read_to_string(contrib.join("copyright"))?.replace("@MIT@", &debian_paragraph(&mit));
    write(&doc.join("copyright"), &copyright, 0o644)?;
    gzip_into(&workspace.join("README.md"), &doc.join("README.md.gz"))?;

    let debian = tree.join("DEBIAN");
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(contrib.join(script))
            .with_context(|| format!("reading contrib/debian/{script}"))?;
        write(&debian.join(script), &fill_unit_names(&text), 0o755)?;
    }
    write(&debian.join("conffiles"), &format!("/{CONFFILE}\n"), 0o644)?;
    let control = control(&tree, &binaries)?;
    write(&debian.join("control"), &control, 0o644)?;
    write(&debian.join("md5sums"), &md5sums(&tree)?, 0o644)?;

    let deb = dist.join(format!("{PACKAGE}_{}_{}.deb", version(), architecture()?));
    run_step(
        "dpkg-deb --build",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&tree)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// Replaces the unit-list placeholders of a maintainer script.
fn fill_unit_names(script: &str) -> String {
    let names = |pick: &dyn Fn(&units::Unit) -> bool| {
        UNITS
            .iter()
            .filter(|u| pick(u))
            .map(units::Unit::file_name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    script
        .replace("@UNITS@", &names(&|_| true))
        .replace("@ENABLED_UNITS@", &names(&|u| u.enabled_by_default))
        .replace("@DISABLED_UNITS@", &names(&|u| !u.enabled_by_default))
}

/// The `DEBIAN/control` file.
fn control(tree: &Path, binaries: &[PathBuf]) -> Result<String> {
    let glibc = required_glibc(binaries)?;
    let installed_kib = tree_size(tree)?.div_ceil(1024);
    Ok(format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: The netboot authors <https://github.com/netboot-rs/netboot/issues>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= {glibc}), libgcc-s1, adduser\n\
         Recommends: {RECOMMENDS}\n\
         Suggests: {SUGGESTS}\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://github.com/netboot-rs/netboot\n\
         Description: network boot suite: proxyDHCP, TFTP and HTTPS iPXE scripts\n\
         {long}",
        version = version(),
        arch = architecture()?,
        long = debian_paragraph(
            "Takes a machine with no operating system from its firmware's PXE request\n\
             to Windows PE or a Linux installer, deciding per machine what it boots.\n\
             It sits next to the existing DHCP server and never hands out addresses.\n\
             \n\
             pxe-server runs the proxyDHCP, TFTP and HTTPS services in one process and\n\
             is enabled on installation; pxe-proxy, pxe-tftp and pxe-https run them one\n\
             by one. All run as the system user netboot with CAP_NET_BIND_SERVICE and\n\
             CAP_NET_RAW only."
        ),
    ))
}

/// Text as the continuation lines of a Debian control field: each line indented by one
/// space, an empty line written as ` .`.
fn debian_paragraph(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end().lines() {
        if line.trim().is_empty() {
            out.push_str(" .\n");
        } else {
            let _ = writeln!(out, " {line}");
        }
    }
    out
}

/// The highest `GLIBC_x.y` symbol version the binaries link against.
fn required_glibc(binaries: &[PathBuf]) -> Result<String> {
    let mut highest: Option<(u32, u32)> = None;
    for binary in binaries {
        let output = Command::new("objdump")
            .arg("-T")
            .arg(binary)
            .output()
            .context("running objdump -T")?;
        if !output.status.success() {
            bail!("objdump -T {} failed", binary.display());
        }
        for version in glibc_versions(&String::from_utf8_lossy(&output.stdout)) {
            highest = highest.max(Some(version));
        }
    }
    let (major, minor) = highest.context("the binaries name no GLIBC_ symbol version")?;
    Ok(format!("{major}.{minor}"))
}

/// Every `GLIBC_x.y` in `objdump -T` output.
fn glibc_versions(objdump: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
    objdump.split_whitespace().filter_map(|word| {
        let version = word
            .trim_start_matches('(')
            .trim_end_matches(')')
            .strip_prefix("GLIBC_")?;
        let (major, minor) = version.split_once('.')?;
        let minor = minor.split('.').next()?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// `DEBIAN/md5sums`: every file outside DEBIAN/, for `dpkg --verify`.
fn md5sums(tree: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect_files(tree, tree, &mut files)?;
    files.retain(|f| !f.starts_with("DEBIAN"));
    files.sort();
    let output = Command::new("md5sum")
        .current_dir(tree)
        .args(&files)
        .output()
        .context("running md5sum")?;
    if !output.status.success() {
        bail!("md5sum failed");
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn tree_size(tree: &Path) -> Result<u64> {
    let mut files = Vec::new();
    collect_files(tree, tree, &mut files)?;
    files.iter().try_fold(0, |total, file| {
        Ok(total + std::fs::metadata(tree.join(file))?.len())
    })
}

/// Relative paths of the regular files under `dir`.
fn collect_files(top: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(top, &path, files)?;
        } else {
            files.push(path.strip_prefix(top)?.to_path_buf());
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    let parent = path.parent().context("a path with a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    create_parent(path)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    set_mode(path, mode)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    create_parent(to)?;
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)
}

fn gzip_into(from: &Path, to: &Path) -> Result<()> {
    create_parent(to)?;
    let input = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let output = std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    // -n: no name or time stamp, so the same README gives the same bytes.
    let status = Command::new("gzip")
        .args(["-9n"])
        .stdin(input)
        .stdout(output)
        .status()?;
    if !status.success() {
        bail!("gzip {} failed", from.display());
    }
    set_mode(to, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_scripts_get_every_unit_and_no_placeholder_is_left() {
        let contrib = crate::workspace_root().join("contrib/debian");
        for script in ["postinst", "prerm", "postrm"] {
            let filled = fill_unit_names(&std::fs::read_to_string(contrib.join(script)).unwrap());
            assert!(!filled.contains('@'), "{script}: {filled}");
            assert!(filled.contains("pxe-server.service"), "{script}");
        }
        let postinst = fill_unit_names(&std::fs::read_to_string(contrib.join("postinst")).unwrap());
        assert!(
            postinst.contains("for unit in pxe-server.service; do"),
            "{postinst}"
        );
        assert!(postinst.contains("for unit in pxe-proxy.service pxe-tftp.service pxe-https.service; do"));
    }

    #[test]
    fn the_highest_glibc_version_is_read_from_objdump() {
        let objdump = "0000 DF *UND* 0000 (GLIBC_2.2.5) memcpy\n\
                       0000 DF *UND* 0000 (GLIBC_2.34) __libc_start_main\n\
                       0000 DF *UND* 0000  GLIBC_2.28  statx\n";
        assert_eq!(glibc_versions(objdump).max(), Some((2, 34)));
    }

    #[test]
    fn control_paragraphs_mark_empty_lines() {
        assert_eq!(debian_paragraph("one\n\ntwo\n"), " one\n .\n two\n");
    }

    #[test]
    fn the_conffile_is_a_valid_configuration_equal_to_the_defaults() {
        let text =
            std::fs::read_to_string(crate::workspace_root().join("contrib/debian/netboot.toml")).unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        // Every key is commented out: a fresh install runs on the documented defaults.
        fn keys(table: &toml::Table) -> usize {
            table.values().map(|v| v.as_table().map_or(1, keys)).sum()
        }
        assert_eq!(keys(&parsed), 0, "{parsed:?}");
    }
}
