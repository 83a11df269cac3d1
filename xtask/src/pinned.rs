//! Builds from pinned upstream source releases (iPXE, wimboot): check a tarball against its
//! pinned SHA-256, unpack it, and keep build outputs in a cache (`target/pinned/`) keyed by a
//! hash of everything that went into them, so an unchanged rebuild is a copy. A cache entry
//! appears only once its build finished (built under a temporary name and renamed), so an
//! interrupted build is redone rather than half-used; outputs reach a destination only whole.
//!
//! The tarballs are never downloaded: they come from `shared/ipxe/` in the workspace's
//! directory or one above it (CI lays `shared/` beside the checkout), or from
//! `$NETBOOT_SHARED_DIR/ipxe/`, with their hashes pinned here and in `shared/ipxe/README.md`.
//! [`wimboot`] is the small example of a build driven from Rust; the iPXE build
//! (`crate::ipxe`) runs the user-facing script instead.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

/// An upstream release packed with `git archive`, and what identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pin {
    /// Project and release, for messages (`iPXE 2.0.0`).
    pub(crate) name: &'static str,
    /// The tarball's file name.
    pub(crate) file: &'static str,
    /// SHA-256 of the tarball, lower-case hex.
    pub(crate) sha256: &'static str,
    /// The commit `zcat FILE | git get-tar-commit-id` prints.
    pub(crate) commit: &'static str,
}

/// iPXE v2.0.0 (github.com/ipxe/ipxe), as listed in the shared `ipxe/README.md`.
pub(crate) const IPXE_2_0_0: Pin = Pin {
    name: "iPXE 2.0.0",
    file: "ipxe-2.0.0.tar.gz",
    sha256: "907009e4faa3947c823849cf0dc077456290f738d455376fa965f7531bb99562",
    commit: "12798ec29aa8a64d8675c4378b99f5fe28447afb",
};

/// wimboot v2.9.0 (github.com/ipxe/wimboot).
pub(crate) const WIMBOOT_2_9_0: Pin = Pin {
    name: "wimboot 2.9.0",
    file: "wimboot-2.9.0.tar.gz",
    sha256: "9914dfadc79a9ed1c32fe613aeba9753fb6d52db7baa38f140ba92c5c5a86105",
    commit: "e5875648bd52a3b915ae54933d9adf8ac763baca",
};

/// A source checked against the pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedSource {
    /// The file or directory.
    pub(crate) path: PathBuf,
    /// SHA-256 of the tarball, or of a directory's contents ([`digest_dir`]).
    pub(crate) sha256: String,
    /// The pinned release it is, when it is one.
    pub(crate) pin: Option<Pin>,
}

/// Checks `path`: a tarball must have the SHA-256 of one of `pins`, or `accepted_sha256`
/// (a hash the user vouches for); a directory is taken as it is and hashed by content.
pub(crate) fn verify(path: &Path, pins: &[Pin], accepted_sha256: Option<&str>) -> Result<VerifiedSource> {
    if path.is_dir() {
        return Ok(VerifiedSource {
            path: path.to_path_buf(),
            sha256: digest_dir(path)?,
            pin: None,
        });
    }
    if !path.is_file() {
        bail!("source {} does not exist", path.display());
    }
    let sha256 = sha256_file(path)?;
    if let Some(pin) = pins.iter().find(|p| p.sha256 == sha256) {
        return Ok(VerifiedSource {
            path: path.to_path_buf(),
            sha256,
            pin: Some(*pin),
        });
    }
    if accepted_sha256.is_some_and(|h| h.eq_ignore_ascii_case(&sha256)) {
        return Ok(VerifiedSource {
            path: path.to_path_buf(),
            sha256,
            pin: None,
        });
    }
    let expected: Vec<String> = pins.iter().map(|p| format!("{} {}", p.file, p.sha256)).collect();
    bail!(
        "SHA-256 of {} is {sha256}, which is not a pinned release ({}){}; check where the file came from \
         (`zcat FILE | git get-tar-commit-id` must print the release's commit) and pass --sha256 {sha256} \
         to build it anyway",
        path.display(),
        expected.join(", "),
        accepted_sha256.map_or(String::new(), |h| format!(" nor the given --sha256 {h}")),
    )
}

/// SHA-256 of a file, lower-case hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A content hash of a source tree: every regular file's relative path and bytes and every
/// symlink's target, in sorted order (`.git` left out), so the same tree always hashes the same.
pub(crate) fn digest_dir(dir: &Path) -> Result<String> {
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries)?;
    entries.sort();
    let mut hasher = Sha256::new();
    for relative in entries {
        let path = dir.join(&relative);
        let meta = std::fs::symlink_metadata(&path)?;
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        if meta.file_type().is_symlink() {
            hasher.update(b"-> ");
            hasher.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
        } else {
            hasher.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        }
        hasher.update([0]);
    }
    Ok(hex(&hasher.finalize()))
}

fn collect(root: &Path, dir: &Path, into: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                collect(root, &path, into)?;
            }
        } else if kind.is_file() || kind.is_symlink() {
            into.push(path.strip_prefix(root).expect("below the root").to_path_buf());
        }
    }
    Ok(())
}

/// Unpacks a `.tar.gz` made by `git archive --prefix=NAME/` into `into` (created), without the
/// top directory; returns `into`. (The iPXE build leaves unpacking to its script, which users
/// run too.)
pub(crate) fn unpack(tarball: &Path, into: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let output = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(into)
        .arg("--strip-components=1")
        .output()
        .context("running tar")?;
    if !output.status.success() {
        bail!(
            "unpacking {} failed: {}",
            tarball.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(into.to_path_buf())
}

/// Finds a pinned tarball in the shared reference tree: `$NETBOOT_SHARED_DIR/<subdir>/<file>`,
/// or `shared/<subdir>/<file>` in the workspace's directory or any directory above it.
pub(crate) fn find_shared(workspace: &Path, subdir: &str, file: &str) -> Option<PathBuf> {
    if let Some(shared) = std::env::var_os("NETBOOT_SHARED_DIR") {
        let path = Path::new(&shared).join(subdir).join(file);
        return path.is_file().then_some(path);
    }
    workspace
        .ancestors()
        .map(|dir| dir.join("shared").join(subdir).join(file))
        .find(|path| path.is_file())
}

/// Builds a cache key from named parts: any change to any part (a source hash, a file's
/// bytes, an option) gives another key.
pub(crate) struct CacheKey {
    hasher: Sha256,
    label: String,
}

impl CacheKey {
    /// A key for outputs of kind `label` (becomes the entry's name prefix).
    pub(crate) fn new(label: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(label.as_bytes());
        Self {
            hasher,
            label: label.to_owned(),
        }
    }

    /// Adds a named value.
    pub(crate) fn text(mut self, name: &str, value: &str) -> Self {
        self.part(name, value.as_bytes());
        self
    }

    /// Adds a named file's bytes.
    pub(crate) fn file(mut self, name: &str, path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.part(name, &bytes);
        Ok(self)
    }

    fn part(&mut self, name: &str, bytes: &[u8]) {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        for field in [name.as_bytes(), bytes] {
            self.hasher.update((field.len() as u64).to_le_bytes());
            self.hasher.update(field);
        }
    }

    /// The key: `<label>-<first 32 hex digits of the hash>`.
    pub(crate) fn finish(self) -> String {
        let digest = hex(&self.hasher.finalize());
        format!("{}-{}", self.label, &digest[..32])
    }
}

/// A directory of finished builds, one subdirectory per key.
pub(crate) struct BuildCache {
    root: PathBuf,
}

/// A cache entry: where its files are, and whether it was built just now.
#[derive(Debug)]
pub(crate) struct CacheEntry {
    /// The entry's directory.
    pub(crate) dir: PathBuf,
    /// False when it came from the cache.
    pub(crate) built: bool,
}

impl BuildCache {
    /// A cache in `root` (created when needed).
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The workspace's cache, `target/pinned`.
    pub(crate) fn in_target(workspace: &Path) -> Self {
        Self::new(workspace.join("target/pinned"))
    }

    /// The entry for `key` holding `files`: from the cache when complete, else `build` fills a
    /// fresh staging directory which becomes the entry only when `build` succeeded and every
    /// file is there. A failed build leaves no entry.
    pub(crate) fn get_or_build(
        &self,
        key: &str,
        files: &[&str],
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<CacheEntry> {
        let dir = self.root.join(key);
        if dir.join(COMPLETE).is_file() && files.iter().all(|f| dir.join(f).is_file()) {
            return Ok(CacheEntry { dir, built: false });
        }
        std::fs::create_dir_all(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        let stage = self.root.join(format!(".stage-{key}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage)?;
        let built = build(&stage).and_then(|()| {
            for file in files {
                if !stage.join(file).is_file() {
                    bail!("the build finished without producing {file}");
                }
            }
            std::fs::write(stage.join(COMPLETE), key)?;
            Ok(())
        });
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&stage);
            return Err(e);
        }
        // Another run may have finished the same key meanwhile; either copy is good.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&stage, &dir).with_context(|| format!("storing {}", dir.display()))?;
        Ok(CacheEntry { dir, built: true })
    }
}

/// Marks a cache entry whose build finished.
const COMPLETE: &str = ".complete";

/// Copies `files` from `from` into `out` (created when missing): all under temporary names
/// first, then each renamed into place, so `out` never holds a partly written file and a
/// failure leaves it as it was.
pub(crate) fn publish(from: &Path, files: &[&str], out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let partial = |file: &str| out.join(format!(".{file}.partial"));
    let copied = files.iter().try_for_each(|file| {
        std::fs::copy(from.join(file), partial(file))
            .map(drop)
            .with_context(|| format!("writing {} into {}", file, out.display()))
    });
    if let Err(e) = copied {
        for file in files {
            let _ = std::fs::remove_file(partial(file));
        }
        return Err(e);
    }
    for file in files {
        std::fs::rename(partial(file), out.join(file))
            .with_context(|| format!("renaming {} into place in {}", file, out.display()))?;
    }
    Ok(())
}

/// wimboot for x86_64 (BIOS and UEFI in one hybrid binary), built from the pinned tarball and
/// cached; returns the path of the cached `wimboot`. `debug` builds it with `DEBUG=1`, which
/// makes wimboot print every file it is handed (`Using <name> via ... len ...`) and what it
/// does with the WIM: the lab's proof of what reached the client.
pub(crate) fn wimboot(workspace: &Path, debug: bool) -> Result<PathBuf> {
    let pin = WIMBOOT_2_9_0;
    let tarball = find_shared(workspace, "ipxe", pin.file).with_context(|| {
        format!(
            "{} not found in shared/ipxe/ beside the checkout; set NETBOOT_SHARED_DIR to the directory holding ipxe/{}",
            pin.file, pin.file
        )
    })?;
    let source = verify(&tarball, &[pin], None)?;
    let recipe = format!("make wimboot.x86_64.efi DEBUG={}", u8::from(debug));
    let key = CacheKey::new("wimboot")
        .text("source", &source.sha256)
        .text("recipe", &recipe)
        .finish();
    let entry = BuildCache::in_target(workspace).get_or_build(&key, &["wimboot"], |stage| {
        // The tree is built beside the staging directory, so only the binary is cached.
        let tree = stage.with_extension("src");
        let _ = std::fs::remove_dir_all(&tree);
        unpack(&tarball, &tree)?;
        let mut make = Command::new("make");
        make.current_dir(tree.join("src"))
            .args(["-j2", "wimboot.x86_64.efi"]);
        if debug {
            make.arg("DEBUG=1");
        }
        let built = crate::ci::run_step("build wimboot from the pinned source", &mut make).and_then(|()| {
            Ok(std::fs::copy(tree.join("src/wimboot.x86_64.efi"), stage.join("wimboot")).map(drop)?)
        });
        let _ = std::fs::remove_dir_all(&tree);
        built.with_context(|| format!("building {} ({recipe})", pin.file))
    })?;
    Ok(entry.dir.join("wimboot"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin_for(bytes: &[u8]) -> Pin {
        let sha256: &'static str = Box::leak(hex(&Sha256::digest(bytes)).into_boxed_str());
        Pin {
            name: "test 1.0",
            file: "test-1.0.tar.gz",
            sha256,
            commit: "0000000000000000000000000000000000000000",
        }
    }

    #[test]
    fn a_tarball_must_match_a_pin_or_the_given_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.tar.gz");
        std::fs::write(&file, b"release bytes").unwrap();
        let pin = pin_for(b"release bytes");
        assert_eq!(verify(&file, &[pin], None).unwrap().pin, Some(pin));

        let other = pin_for(b"another release");
        let error = format!("{:#}", verify(&file, &[other], None).unwrap_err());
        assert!(error.contains(pin.sha256), "names the file's hash: {error}");
        assert!(error.contains(other.sha256), "names the pinned hash: {error}");
        assert!(error.contains("--sha256"), "says how to override: {error}");

        let vouched = verify(&file, &[other], Some(&pin.sha256.to_uppercase())).unwrap();
        assert_eq!((vouched.pin, vouched.sha256.as_str()), (None, pin.sha256));
        assert!(verify(&dir.path().join("missing"), &[pin], None).is_err());
    }

    #[test]
    fn a_directory_hashes_by_content_not_by_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/.git")).unwrap();
        std::fs::write(dir.path().join("src/Makefile"), b"all:\n").unwrap();
        let first = digest_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("src/.git/HEAD"), b"ref").unwrap();
        assert_eq!(digest_dir(dir.path()).unwrap(), first, ".git is left out");
        std::fs::write(dir.path().join("src/Makefile"), b"all: x\n").unwrap();
        assert_ne!(digest_dir(dir.path()).unwrap(), first);
    }

    #[test]
    fn keys_change_with_every_part() {
        let base = || CacheKey::new("ipxe").text("a", "1").text("b", "2");
        assert_eq!(base().finish(), base().finish());
        assert_ne!(base().finish(), base().text("c", "").finish());
        assert_ne!(
            CacheKey::new("ipxe").text("a", "12").finish(),
            CacheKey::new("ipxe").text("a1", "2").finish()
        );
        assert!(base().finish().starts_with("ipxe-"));
    }

    #[test]
    fn a_failed_build_leaves_no_entry_and_a_good_one_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::new(dir.path().join("cache"));
        let error = cache
            .get_or_build("k", &["out.bin"], |_| bail!("compiler exploded"))
            .unwrap_err();
        assert!(format!("{error:#}").contains("compiler exploded"));
        let missing = cache.get_or_build("k", &["out.bin"], |_| Ok(())).unwrap_err();
        assert!(format!("{missing:#}").contains("without producing out.bin"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            0,
            "no entry and no staging directory left"
        );

        let entry = cache
            .get_or_build("k", &["out.bin"], |stage| {
                Ok(std::fs::write(stage.join("out.bin"), b"nbp")?)
            })
            .unwrap();
        assert!(entry.built);
        let again = cache
            .get_or_build("k", &["out.bin"], |_| panic!("must come from the cache"))
            .unwrap();
        assert!(!again.built);
        assert_eq!(std::fs::read(again.dir.join("out.bin")).unwrap(), b"nbp");
    }

    #[test]
    fn publish_replaces_files_whole_and_a_failure_leaves_the_directory_alone() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(from.join("a.efi"), b"new a").unwrap();
        std::fs::write(out.join("a.efi"), b"old a").unwrap();
        // b.efi is missing from the build: nothing in out changes.
        assert!(publish(&from, &["a.efi", "b.efi"], &out).is_err());
        assert_eq!(std::fs::read(out.join("a.efi")).unwrap(), b"old a");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "no partial files");

        std::fs::write(from.join("b.efi"), b"new b").unwrap();
        publish(&from, &["a.efi", "b.efi"], &out.join("fresh")).unwrap();
        publish(&from, &["a.efi", "b.efi"], &out).unwrap();
        assert_eq!(std::fs::read(out.join("a.efi")).unwrap(), b"new a");
        assert_eq!(std::fs::read(out.join("fresh/b.efi")).unwrap(), b"new b");
    }

    #[test]
    fn the_pinned_releases_are_the_shared_ones() {
        let workspace = crate::workspace_root();
        for pin in [IPXE_2_0_0, WIMBOOT_2_9_0] {
            match find_shared(&workspace, "ipxe", pin.file) {
                Some(tarball) => assert_eq!(verify(&tarball, &[pin], None).unwrap().pin, Some(pin)),
                None => netboot_testkit::process::skip_or_fail(&format!("{} in shared/ipxe", pin.file)),
            }
        }
    }

    #[test]
    fn unpack_strips_the_release_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("rel-1.0/src");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("Makefile"), b"all:\n").unwrap();
        let tarball = dir.path().join("rel.tar.gz");
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.path())
            .arg("rel-1.0")
            .status()
            .unwrap();
        assert!(status.success());
        let into = unpack(&tarball, &dir.path().join("x")).unwrap();
        assert!(into.join("src/Makefile").is_file());
        assert!(unpack(&dir.path().join("rel-1.0/src/Makefile"), &dir.path().join("y")).is_err());
    }
}
