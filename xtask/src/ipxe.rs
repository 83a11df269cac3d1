//! `cargo xtask ipxe`: the site's own iPXE boot programs, built from the pinned upstream
//! release with the site's CA as the only trust anchor.
//!
//! The build recipe is `contrib/ipxe/build-ipxe.sh`, the same script users run on a server;
//! this command adds what a developer and CI want around it: the Debian build packages, a
//! check of the source before anything runs, and a cache keyed on a hash of the source, the
//! script (which holds the build options), the CA, the embedded script, the architectures and
//! the compilers, so an unchanged rebuild is a copy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::ValueEnum;

use crate::pinned::{self, BuildCache, CacheEntry, CacheKey, VerifiedSource, IPXE_2_0_0};

/// The user-facing build script, relative to the workspace.
pub(crate) const SCRIPT: &str = "contrib/ipxe/build-ipxe.sh";
/// The manifest the script writes next to the boot programs.
pub(crate) const MANIFEST: &str = "ipxe-build.toml";

/// Debian packages every build needs, with the reason.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("gcc", "compiles iPXE"),
    ("binutils", "links iPXE"),
    ("make", "runs iPXE's build"),
    ("patch", "applies the build's fixes to the release"),
    ("perl", "iPXE's build scripts"),
    ("liblzma-dev", "iPXE's compressed images (util/zbin)"),
    ("openssl", "checks the CA and computes TRUST= fingerprints"),
];

/// Target architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Arch {
    /// BIOS (`undionly.kpxe`) and x86_64 UEFI (`snponly.efi`, `ipxe.efi`).
    #[value(name = "x86_64")]
    X86_64,
    /// ARM64 UEFI (`snponly-arm64.efi`, `ipxe-arm64.efi`), cross-compiled.
    Arm64,
}

impl Arch {
    /// The files the script writes for this architecture.
    pub(crate) fn files(self) -> &'static [&'static str] {
        match self {
            Self::X86_64 => &["undionly.kpxe", "snponly.efi", "ipxe.efi"],
            Self::Arm64 => &["snponly-arm64.efi", "ipxe-arm64.efi"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// Its C compiler, whose version goes into the cache key.
    fn compiler(self) -> &'static str {
        match self {
            Self::X86_64 => "gcc",
            Self::Arm64 => "aarch64-linux-gnu-gcc",
        }
    }

    fn packages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::X86_64 => &[],
            Self::Arm64 => &[("gcc-aarch64-linux-gnu", "cross-compiles the ARM64 iPXE")],
        }
    }
}

/// `cargo xtask ipxe` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IpxeArgs {
    /// The iPXE release tarball (checked against its pinned SHA-256) or an unpacked tree.
    #[arg(long, value_name = "TARBALL|DIR")]
    source: PathBuf,
    /// The site CA certificate (PEM; several certificates in one file are all trusted).
    /// iPXE trusts exactly these and nothing else.
    #[arg(long, value_name = "CA.pem")]
    trust: PathBuf,
    /// Where the boot programs go (created; files are replaced only after a good build).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// An iPXE script to embed (runs instead of the DHCP-given boot file).
    #[arg(long, value_name = "SCRIPT")]
    embed: Option<PathBuf>,
    /// Architectures, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "x86_64")]
    arch: Vec<Arch>,
    /// Copy iPXE's console to COM1 (only for machines whose firmware does not already).
    #[arg(long)]
    serial_console: bool,
    /// Accept a tarball with this SHA-256 although it is not a pinned release.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Build cache [default: target/pinned].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// One iPXE build: everything that determines its output.
#[derive(Debug, Clone)]
pub(crate) struct IpxeBuild {
    /// Tarball or tree.
    pub(crate) source: PathBuf,
    /// Trusted CA certificate(s), PEM.
    pub(crate) trust: PathBuf,
    /// Embedded script.
    pub(crate) embed: Option<PathBuf>,
    /// Architectures (sorted, no duplicates).
    pub(crate) arches: Vec<Arch>,
    /// `CONSOLE_SERIAL`.
    pub(crate) serial_console: bool,
    /// A non-pinned tarball hash the user vouches for.
    pub(crate) sha256: Option<String>,
}

impl IpxeBuild {
    /// A build of `source` trusting `trust`, for `arches`, with the default options.
    pub(crate) fn new(source: PathBuf, trust: PathBuf, arches: &[Arch]) -> Self {
        let mut arches = arches.to_vec();
        arches.sort();
        arches.dedup();
        Self {
            source,
            trust,
            embed: None,
            arches,
            serial_console: false,
            sha256: None,
        }
    }

    /// The boot programs and the manifest it produces.
    pub(crate) fn files(&self) -> Vec<&'static str> {
        let mut files: Vec<&'static str> = self.arches.iter().flat_map(|a| a.files()).copied().collect();
        files.push(MANIFEST);
        files
    }

    /// Debian packages this build needs.
    pub(crate) fn packages(&self) -> Vec<(&'static str, &'static str)> {
        let mut packages = BUILD_PACKAGES.to_vec();
        packages.extend(self.arches.iter().flat_map(|a| a.packages()));
        packages
    }

    /// The cache entry of this build, building it when the cache has none. Checks the
    /// source before anything else, so a wrong tarball fails at once.
    pub(crate) fn build(&self, workspace: &Path, cache: &BuildCache) -> Result<CacheEntry> {
        let source = pinned::verify(&self.source, &[IPXE_2_0_0], self.sha256.as_deref())?;
        let script = workspace.join(SCRIPT);
        let key = self.cache_key(&source, &script)?;
        let files = self.files();
        cache.get_or_build(&key, &files, |stage| {
            let mut command = Command::new("sh");
            command
                .arg(&script)
                .arg("--source")
                .arg(&self.source)
                .arg("--trust")
                .arg(&self.trust)
                .arg("--out")
                .arg(stage)
                .arg("--arch")
                .arg(self.arches.iter().map(|a| a.name()).collect::<Vec<_>>().join(","));
            if let Some(embed) = &self.embed {
                command.arg("--embed").arg(embed);
            }
            if self.serial_console {
                command.arg("--serial-console");
            }
            if let Some(sha256) = &self.sha256 {
                command.arg("--sha256").arg(sha256);
            }
            let status = command
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            if !status.success() {
                bail!("building iPXE failed ({status}); the reason is printed above");
            }
            Ok(())
        })
    }

    fn cache_key(&self, source: &VerifiedSource, script: &Path) -> Result<String> {
        let mut key = CacheKey::new("ipxe")
            .text("source", &source.sha256)
            .file("script", script)?
            .file("trust", &self.trust)
            .with_context(|| format!("reading the CA {}", self.trust.display()))?
            .text("serial_console", &self.serial_console.to_string());
        if let Some(embed) = &self.embed {
            key = key.file("embed", embed)?;
        }
        for arch in &self.arches {
            key = key
                .text("arch", arch.name())
                .text("compiler", &compiler_version(arch.compiler()));
        }
        Ok(key.finish())
    }
}

/// The first line of `<compiler> --version`, or a note that it is missing (the build then
/// fails with the script's own message).
fn compiler_version(compiler: &str) -> String {
    Command::new(compiler)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{compiler} missing"))
}

/// `cargo xtask ipxe ...`.
pub(crate) fn run(args: IpxeArgs) -> Result<()> {
    let workspace = crate::workspace_root();
    let mut build = IpxeBuild::new(args.source, args.trust, &args.arch);
    build.embed = args.embed;
    build.serial_console = args.serial_console;
    build.sha256 = args.sha256;
    crate::deps::install_packages(&build.packages())?;
    let cache = args
        .cache_dir
        .map_or_else(|| BuildCache::in_target(&workspace), BuildCache::new);
    let started = Instant::now();
    let entry = build.build(&workspace, &cache)?;
    pinned::publish(&entry.dir, &build.files(), &args.out)?;
    eprintln!(
        "ipxe: {} {} in {:.1} s: {} in {}",
        if entry.built {
            "built"
        } else {
            "taken from the cache"
        },
        entry.dir.display(),
        started.elapsed().as_secs_f64(),
        build.files().join(", "),
        args.out.display()
    );
    Ok(())
}

/// The lab's iPXE: the pinned release trusting the committed test-only CA, for x86_64 and,
/// when asked, ARM64; built once and then taken from the workspace cache.
pub(crate) fn build_for_lab(workspace: &Path, arches: &[Arch]) -> Result<CacheEntry> {
    let Some(source) = pinned::find_shared(workspace, "ipxe", IPXE_2_0_0.file) else {
        bail!(
            "{} not found in shared/ipxe/ next to or above {} (or $NETBOOT_SHARED_DIR/ipxe/): the lab \
             builds its iPXE from the pinned release and never downloads it",
            IPXE_2_0_0.file,
            workspace.display()
        );
    };
    let build = IpxeBuild::new(source, test_ca(workspace).cert, arches);
    crate::deps::install_packages(&build.packages())?;
    let started = Instant::now();
    let entry = build.build(workspace, &BuildCache::in_target(workspace))?;
    if entry.built {
        eprintln!(
            "e2e: built iPXE ({}) in {:.0} s",
            build.files().join(", "),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(entry)
}

/// The committed test-only CA (its key is public: see `testdata/test-ca/README.md`).
pub(crate) struct TestCa {
    /// Certificate, PEM.
    pub(crate) cert: PathBuf,
    /// Private key, PEM.
    pub(crate) key: PathBuf,
}

/// Where the test-only CA lives.
pub(crate) fn test_ca(workspace: &Path) -> TestCa {
    let dir = workspace.join("testdata/test-ca");
    TestCa {
        cert: dir.join("site-ca.crt"),
        key: dir.join("site-ca.key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        crate::workspace_root()
    }

    /// Runs the build into a fresh cache and `out`; returns the error text.
    fn failing_build(build: &IpxeBuild, out: &Path) -> String {
        let cache = BuildCache::new(out.parent().unwrap().join("cache"));
        let error = build
            .build(&workspace(), &cache)
            .and_then(|entry| pinned::publish(&entry.dir, &build.files(), out))
            .unwrap_err();
        format!("{error:#}")
    }

    /// `--out` with one old file in it, which a failed build must leave alone.
    fn out_dir(dir: &Path) -> PathBuf {
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("undionly.kpxe"), b"the previous build").unwrap();
        out
    }

    fn assert_untouched(out: &Path) {
        let names: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["undionly.kpxe"], "--out changed");
        assert_eq!(
            std::fs::read(out.join("undionly.kpxe")).unwrap(),
            b"the previous build"
        );
    }

    #[test]
    fn a_tarball_with_the_wrong_hash_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("ipxe-2.0.0.tar.gz");
        std::fs::write(&tarball, b"not the release").unwrap();
        let out = out_dir(dir.path());
        let build = IpxeBuild::new(tarball, test_ca(&workspace()).cert, &[Arch::X86_64]);
        let error = failing_build(&build, &out);
        assert!(error.contains("SHA-256"), "{error}");
        assert!(
            error.contains(IPXE_2_0_0.sha256),
            "names the pinned hash: {error}"
        );
        assert_untouched(&out);
    }

    /// An iPXE-shaped tree whose make fails at once (the checks before make are what count).
    fn failing_tree(dir: &Path) -> PathBuf {
        let tree = dir.join("ipxe");
        std::fs::create_dir_all(tree.join("src")).unwrap();
        std::fs::write(
            tree.join("src/Makefile"),
            "%:\n\t@echo 'src/core/broken.c:1: error: this tree does not build' >&2; exit 1\n",
        )
        .unwrap();
        tree
    }

    #[test]
    fn a_ca_that_is_not_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let tree = failing_tree(dir.path());
        let not_a_cert = dir.path().join("ca.pem");
        std::fs::write(
            &not_a_cert,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let out = out_dir(dir.path());
        let error = failing_build(
            &IpxeBuild::new(tree.clone(), not_a_cert.clone(), &[Arch::X86_64]),
            &out,
        );
        assert!(error.contains("building iPXE failed"), "{error}");
        assert_untouched(&out);
        // The script's own message names the cause (what users see, and CI's log).
        let args = |ca: &Path| {
            ["--source", path(&tree), "--trust", path(ca), "--out", path(&out)].map(str::to_owned)
        };
        let output = script_output(&args(&not_a_cert));
        assert!(output.contains("holds no PEM certificate"), "{output}");

        std::fs::write(
            &not_a_cert,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let output = script_output(&args(&not_a_cert));
        assert!(output.contains("is not a certificate"), "{output}");
        assert!(!output.contains("make for"), "refused before building: {output}");
        assert_untouched(&out);
    }

    #[test]
    fn a_failing_make_names_the_step_and_leaves_out_alone() {
        let dir = tempfile::tempdir().unwrap();
        let tree = failing_tree(dir.path());
        let out = out_dir(dir.path());
        let ca = test_ca(&workspace()).cert;
        let build = IpxeBuild::new(tree.clone(), ca.clone(), &[Arch::X86_64]);
        let error = failing_build(&build, &out);
        assert!(error.contains("building iPXE failed"), "{error}");
        assert_untouched(&out);
        let output = script_output(
            &["--source", path(&tree), "--trust", path(&ca), "--out", path(&out)].map(str::to_owned),
        );
        assert!(output.contains("make for x86_64 failed"), "{output}");
        assert!(
            output.contains("this tree does not build"),
            "shows make's output: {output}"
        );
        let cache = dir.path().join("cache");
        assert!(
            !cache.exists() || std::fs::read_dir(&cache).unwrap().count() == 0,
            "no cache entry for a failed build"
        );
    }

    #[test]
    fn the_cache_key_follows_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("ipxe");
        std::fs::create_dir_all(tree.join("src")).unwrap();
        std::fs::write(tree.join("src/Makefile"), "all:\n").unwrap();
        let ca = test_ca(&workspace()).cert;
        let script = workspace().join(SCRIPT);
        let key = |build: &IpxeBuild| {
            let source = pinned::verify(&build.source, &[IPXE_2_0_0], None).unwrap();
            build.cache_key(&source, &script).unwrap()
        };
        let base = IpxeBuild::new(tree.clone(), ca.clone(), &[Arch::X86_64]);
        assert_eq!(key(&base), key(&base.clone()));
        let mut serial = base.clone();
        serial.serial_console = true;
        let both = IpxeBuild::new(
            tree.clone(),
            ca.clone(),
            &[Arch::Arm64, Arch::X86_64, Arch::Arm64],
        );
        assert_eq!(both.arches, [Arch::X86_64, Arch::Arm64]);
        let other_ca = dir.path().join("other.pem");
        std::fs::write(&other_ca, "another CA").unwrap();
        let with_other_ca = IpxeBuild::new(tree.clone(), other_ca, &[Arch::X86_64]);
        let mut embedded = base.clone();
        let script_file = dir.path().join("embed.ipxe");
        std::fs::write(&script_file, "#!ipxe\nshell\n").unwrap();
        embedded.embed = Some(script_file);
        let keys = [&base, &serial, &both, &with_other_ca, &embedded].map(key);
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        std::fs::write(tree.join("src/Makefile"), "all: x\n").unwrap();
        assert_ne!(key(&base), keys[0], "a changed tree is another build");
    }

    #[test]
    fn files_cover_each_architecture_and_the_manifest() {
        let build = IpxeBuild::new("x".into(), "y".into(), &[Arch::X86_64, Arch::Arm64]);
        assert_eq!(
            build.files(),
            [
                "undionly.kpxe",
                "snponly.efi",
                "ipxe.efi",
                "snponly-arm64.efi",
                "ipxe-arm64.efi",
                MANIFEST
            ]
        );
        assert!(build
            .packages()
            .iter()
            .any(|(p, _)| *p == "gcc-aarch64-linux-gnu"));
    }

    fn path(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// Runs the user-facing script directly; returns its stderr (it must fail).
    fn script_output(args: &[String]) -> String {
        let output = Command::new("sh")
            .arg(workspace().join(SCRIPT))
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "the script must fail here");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}
