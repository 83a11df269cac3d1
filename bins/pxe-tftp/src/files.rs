//! Files under the served root: safe opening (symlinks checked after open), optional
//! case-insensitive lookup, and a shared in-memory cache for small, hot files such as NBPs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use netboot_tftp::path::SafePath;
use netboot_tftp::{BlockSource, FileProvider, MemorySource, Mode, OpenError};

/// Netascii conversion happens in memory, so it is limited to text-sized files.
const MAX_NETASCII_FILE: u64 = 16 << 20;
/// Bytes read from disk at a time for an uncached file: one system call per ~90 blocks of
/// 1468 bytes instead of one per block, with little memory per transfer.
const READ_AHEAD: usize = 128 << 10;

/// An opened file: shared cached bytes, or positioned reads from the file itself.
#[derive(Debug)]
pub enum FileSource {
    /// From the cache (or converted to netascii).
    Memory(MemorySource),
    /// Read from the open file with `pread` (no seek), in chunks of 128 KiB.
    Disk {
        /// The open file.
        file: File,
        /// Its length when opened.
        len: u64,
        /// The chunk read last; allocated at the first read.
        ahead: ReadAhead,
    },
}

/// A chunk of a file read ahead of the blocks being sent.
#[derive(Debug, Default)]
pub struct ReadAhead {
    bytes: Vec<u8>,
    /// File offset of `bytes[0]`.
    start: u64,
    /// Valid bytes in `bytes`.
    filled: usize,
}

impl ReadAhead {
    /// Reads from `file` at `offset` into `buf`, from the chunk in memory when it holds
    /// `offset`, else after reading the chunk that starts there.
    fn read_at(&mut self, file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() >= READ_AHEAD {
            return file.read_at(buf, offset);
        }
        let held = offset
            .checked_sub(self.start)
            .and_then(|skip| usize::try_from(skip).ok())
            // A read straddling the chunk's end starts a new chunk rather than coming back
            // short, unless the chunk ends at the end of the file.
            .filter(|&skip| {
                skip < self.filled && (skip + buf.len() <= self.filled || self.filled < READ_AHEAD)
            });
        let skip = match held {
            Some(skip) => skip,
            None => {
                self.bytes.resize(READ_AHEAD, 0);
                self.start = offset;
                self.filled = 0;
                while self.filled < READ_AHEAD {
                    match file.read_at(&mut self.bytes[self.filled..], offset + self.filled as u64) {
                        Ok(0) => break,
                        Ok(n) => self.filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                0
            }
        };
        let len = buf.len().min(self.filled - skip);
        buf[..len].copy_from_slice(&self.bytes[skip..skip + len]);
        Ok(len)
    }
}

impl BlockSource for FileSource {
    fn len(&self) -> u64 {
        match self {
            Self::Memory(source) => source.len(),
            Self::Disk { len, .. } => *len,
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Memory(source) => source.read_at(offset, buf),
            Self::Disk { file, ahead, .. } => ahead.read_at(file, offset, buf),
        }
    }
}

/// What a cached entry was read from; a change of any of these means the file was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<PathBuf, (Identity, Arc<[u8]>, u64)>,
    total: u64,
    clock: u64,
}

impl Cache {
    fn get(&mut self, path: &Path, identity: Identity) -> Option<Arc<[u8]>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(path).filter(|(id, ..)| *id == identity)?;
        entry.2 = clock;
        Some(entry.1.clone())
    }

    fn insert(&mut self, path: PathBuf, identity: Identity, bytes: Arc<[u8]>, limit: u64) {
        if let Some((_, old, _)) = self.entries.remove(&path) {
            self.total -= old.len() as u64;
        }
        while self.total + bytes.len() as u64 > limit {
            // Evict the least recently used entry.
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.2)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some((_, evicted, _)) = self.entries.remove(&oldest) {
                self.total -= evicted.len() as u64;
            }
        }
        self.total += bytes.len() as u64;
        self.clock += 1;
        self.entries.insert(path, (identity, bytes, self.clock));
    }
}

/// The served directory.
#[derive(Debug)]
pub struct RootDir {
    root: PathBuf,
    case_insensitive: bool,
    cache_max_file: u64,
    cache_total: u64,
    cache: Mutex<Cache>,
}

impl RootDir {
    /// Serves `root`, which must exist; it is canonicalised so the symlink check compares real
    /// paths.
    pub fn new(
        root: &Path,
        case_insensitive: bool,
        cache_max_file: u64,
        cache_total: u64,
    ) -> io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Self {
            root,
            case_insensitive,
            cache_max_file,
            cache_total,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds `path` below the root, trying a case-insensitive match per component when the
    /// exact name is absent and that is enabled.
    fn locate(&self, path: &SafePath) -> PathBuf {
        let exact = self.root.join(path.to_relative_path());
        if !self.case_insensitive || exact.symlink_metadata().is_ok() {
            return exact;
        }
        let mut found = self.root.clone();
        for component in path.components() {
            let exact_child = found.join(component);
            if exact_child.symlink_metadata().is_ok() {
                found = exact_child;
                continue;
            }
            let wanted = component.to_lowercase();
            let matched = std::fs::read_dir(&found).ok().and_then(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name())
                    .find(|name| name.to_str().is_some_and(|n| n.to_lowercase() == wanted))
            });
            match matched {
                Some(name) => found.push(name),
                None => return exact,
            }
        }
        found
    }

    /// Whether `location` really lies under the root, following every symlink on the way.
    /// Unresolvable (a component missing or not searchable) counts as outside.
    fn resolves_inside(&self, location: &Path) -> bool {
        location
            .canonicalize()
            .is_ok_and(|real| real.starts_with(&self.root))
    }

    /// Opens `path` in `mode`.
    ///
    /// Anything that resolves outside the root (through a symlinked file or directory) is
    /// answered [`OpenError::NotFound`], whether or not it exists or may be read there: a
    /// distinct answer would let a client probe which files exist outside the root.
    pub fn open_mode(&self, path: &SafePath, mode: Mode) -> Result<FileSource, OpenError> {
        let location = self.locate(path);
        // Non-blocking, so a FIFO (or a device) under the root cannot hold a worker thread in
        // open(2) until a writer appears; fstat then refuses anything but a regular file, whose
        // reads O_NONBLOCK does not change.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&location)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OpenError::NotFound,
                // Unreadable under the root is worth telling the operator's client; unreadable
                // outside it is nobody's business.
                io::ErrorKind::PermissionDenied if self.resolves_inside(&location) => OpenError::AccessDenied,
                io::ErrorKind::PermissionDenied => OpenError::NotFound,
                _ => OpenError::Io(e),
            })?;
        // The name was clean, but a symlink (or a directory swapped for one) can still lead
        // out of the root: ask the kernel where the open file really is. Checked before
        // anything else about the file, so an outside file answers exactly as a missing one.
        let real = real_path(&file, &location)?;
        if !real.starts_with(&self.root) {
            return Err(OpenError::NotFound);
        }
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(OpenError::NotFound);
        }
        let identity = Identity {
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        };
        match mode {
            Mode::Netascii => {
                if identity.len > MAX_NETASCII_FILE {
                    return Err(OpenError::TooLarge("netascii"));
                }
                let bytes = read_all(file, identity.len)?;
                Ok(FileSource::Memory(MemorySource::new(
                    netboot_tftp::netascii::encode(&bytes).into(),
                )))
            }
            Mode::Octet if identity.len <= self.cache_max_file => {
                // Held while reading so a storm of clients reads a new file once, not once each.
                let mut cache = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(bytes) = cache.get(&real, identity) {
                    return Ok(FileSource::Memory(MemorySource::new(bytes)));
                }
                let bytes: Arc<[u8]> = read_all(file, identity.len)?.into();
                cache.insert(real, identity, bytes.clone(), self.cache_total);
                Ok(FileSource::Memory(MemorySource::new(bytes)))
            }
            Mode::Octet => Ok(FileSource::Disk {
                file,
                len: identity.len,
                ahead: ReadAhead::default(),
            }),
        }
    }
}

impl FileProvider for RootDir {
    type Source = FileSource;

    fn open(&self, path: &SafePath) -> Result<FileSource, OpenError> {
        self.open_mode(path, Mode::Octet)
    }
}

fn read_all(mut file: File, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(io::Error::other("file changed while being read"));
    }
    Ok(bytes)
}

fn real_path(file: &File, fallback: &Path) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(path) => Ok(path),
        Err(_) => fallback.canonicalize(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netboot_tftp::path::normalize;

    fn open(root: &RootDir, name: &str) -> Result<Vec<u8>, OpenError> {
        let mut source = root.open_mode(&normalize(name.as_bytes()).unwrap(), Mode::Octet)?;
        let mut buf = vec![0; source.len() as usize];
        source.read_at(0, &mut buf)?;
        Ok(buf)
    }

    #[test]
    fn a_fifo_under_the_root_is_refused_at_once_and_never_blocks_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::write(dir.path().join("file"), b"bytes").unwrap();
        let root = Arc::new(RootDir::new(dir.path(), false, 1 << 20, 1 << 20).unwrap());
        // On a worker of its own: a blocking open would never return.
        let (sender, answer) = std::sync::mpsc::channel();
        let worker = Arc::clone(&root);
        std::thread::spawn(move || {
            for mode in [Mode::Octet, Mode::Netascii] {
                let result = worker.open_mode(&normalize(b"pipe").unwrap(), mode).map(|_| ());
                let _ = sender.send(result);
            }
        });
        for _ in 0..2 {
            let result = answer
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("opening a FIFO blocked");
            assert!(matches!(result, Err(OpenError::NotFound)), "{result:?}");
        }
        assert_eq!(open(&root, "file").unwrap(), b"bytes");
    }

    #[test]
    fn uncached_files_read_in_chunks_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..READ_AHEAD * 3 + 1000).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &content).unwrap();
        // Nothing cached: every read goes through the read-ahead chunk.
        let root = RootDir::new(dir.path(), false, 0, 0).unwrap();
        let mut source = root.open_mode(&normalize(b"big").unwrap(), Mode::Octet).unwrap();
        assert!(matches!(source, FileSource::Disk { .. }));
        let mut block = [0u8; 1468];
        // Forwards across chunk edges, backwards (a window resent), and past the end.
        for offset in [
            0u64,
            1468,
            130_000,
            131_000,
            1468,
            393_000,
            393_216 + 1000 - 10,
            500_000,
        ] {
            let n = source.read_at(offset, &mut block).unwrap();
            let start = (offset as usize).min(content.len());
            let expected = &content[start..(start + 1468).min(content.len())];
            assert_eq!(&block[..n], expected, "at {offset}");
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused_and_inside_allowed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.efi"), b"nbp").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escdir")).unwrap();
        std::os::unix::fs::symlink("real.efi", dir.path().join("alias.efi")).unwrap();
        let root = RootDir::new(dir.path(), false, 1 << 20, 4 << 20).unwrap();
        // Outside the root, existing or not, readable or not: all answered as missing.
        std::fs::write(outside.path().join("locked"), b"locked").unwrap();
        std::fs::set_permissions(
            outside.path().join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("nothing"), dir.path().join("dangling")).unwrap();
        for name in [
            "escape",
            "dangling",
            "escdir/secret",
            "escdir/locked",
            "escdir/nothing",
            "escdir",
        ] {
            assert!(matches!(open(&root, name), Err(OpenError::NotFound)), "{name}");
        }
        assert_eq!(open(&root, "alias.efi").unwrap(), b"nbp");
        assert!(matches!(open(&root, "missing"), Err(OpenError::NotFound)));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(matches!(open(&root, "sub"), Err(OpenError::NotFound)));
    }

    #[test]
    fn case_insensitive_lookup_and_cache_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot/x64")).unwrap();
        std::fs::write(dir.path().join("boot/x64/bcd"), b"one").unwrap();
        let strict = RootDir::new(dir.path(), false, 1 << 20, 4 << 20).unwrap();
        assert!(matches!(
            open(&strict, r"\Boot\X64\BCD"),
            Err(OpenError::NotFound)
        ));
        let relaxed = RootDir::new(dir.path(), true, 1 << 20, 4 << 20).unwrap();
        assert_eq!(open(&relaxed, r"\Boot\X64\BCD").unwrap(), b"one");
        std::fs::write(dir.path().join("boot/x64/bcd"), b"two!").unwrap();
        assert_eq!(
            open(&relaxed, "boot/x64/bcd").unwrap(),
            b"two!",
            "a rewritten file is re-read"
        );
    }
}
