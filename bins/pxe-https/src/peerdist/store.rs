//! Content Information kept on disk, one file per served file under
//! `<state_dir>/peerdist/`, named after a hash of the served file's real path:
//!
//! ```text
//! magic "NBPDCI\0\x01" | header length u32 | header | version 1.0 bytes | version 2.0 bytes
//! header: dev u64 | inode u64 | size u64 | mtime seconds i64 | mtime nanoseconds u32 |
//!         passphrase fingerprint [8] | version 1.0 length u64 | version 2.0 length u64 |
//!         path length u16 | path
//! ```
//! (integers little-endian). An entry is used only while every field of the key still matches
//! the served file and the passphrase, so a changed file, a renamed-over file or a new
//! passphrase makes it stale; the next computation for that path replaces it. Entries are
//! written under a temporary name and renamed into place, so readers see whole entries only.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use netboot_peerdist::{HashAlgorithm, Version};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

const MAGIC: &[u8; 8] = b"NBPDCI\0\x01";
/// Longest header accepted (the path is the variable part).
const MAX_HEADER_LEN: usize = 8 * 1024;
const FIXED_HEADER_LEN: usize = 8 + 8 + 8 + 8 + 4 + 8 + 8 + 8 + 2;
/// Magic and header length.
const PREFIX_LEN: usize = MAGIC.len() + 4;

/// The header length an entry's first bytes announce, if they are an entry's.
fn header_len(prefix: &[u8; PREFIX_LEN]) -> Option<usize> {
    let (magic, len) = prefix.split_at(MAGIC.len());
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    (magic == MAGIC && (FIXED_HEADER_LEN..=MAX_HEADER_LEN).contains(&len)).then_some(len)
}

/// What identifies one version of a served file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    pub(crate) len: u64,
    pub(crate) mtime_secs: i64,
    pub(crate) mtime_nanos: u32,
}

impl FileKey {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            inode: meta.ino(),
            len: meta.len(),
            mtime_secs: meta.mtime(),
            mtime_nanos: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        }
    }
}

/// Where entries live.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
    fingerprint: [u8; 8],
}

impl Store {
    /// Creates the directory when needed.
    pub(crate) fn open(dir: PathBuf, fingerprint: [u8; 8]) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, fingerprint })
    }

    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry file of the served file at `real`.
    pub(crate) fn entry_path(&self, real: &Path) -> PathBuf {
        let name = HashAlgorithm::Sha256
            .hash(real.as_os_str().as_bytes())
            .to_string();
        self.dir.join(format!("{}.pccrc", &name[..32]))
    }

    /// Starts the entry of `real` with `key`, whose Content Information will be `v1_len` and
    /// `v2_len` bytes long: a temporary file of the final size that [`EntryWriter::commit`]
    /// renames into place.
    pub(crate) fn create(
        &self,
        real: &Path,
        key: &FileKey,
        v1_len: u64,
        v2_len: u64,
    ) -> std::io::Result<EntryWriter> {
        let path = self.entry_path(real);
        let header = Header {
            key: *key,
            fingerprint: self.fingerprint,
            v1_len,
            v2_len,
            path: real.as_os_str().as_bytes().to_vec(),
        }
        .encode()?;
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let writer = EntryWriter {
            file: Some(std::fs::File::create(&temporary)?),
            base: header.len() as u64,
            v1_len,
            temporary,
            path,
        };
        // Dropping the writer on error removes the temporary file.
        let file = writer.file.as_ref().expect("just created");
        (&*file).write_all(&header)?;
        file.set_len(writer.base + v1_len + v2_len)?;
        Ok(writer)
    }

    /// Writes a whole entry at once.
    #[cfg(test)]
    pub(crate) fn write(&self, real: &Path, key: &FileKey, v1: &[u8], v2: &[u8]) -> std::io::Result<()> {
        let entry = self.create(real, key, v1.len() as u64, v2.len() as u64)?;
        entry.write(Version::V1, 0, v1)?;
        entry.write(Version::V2, 0, v2)?;
        entry.commit()
    }

    /// Opens the entry of `real` and positions it at the Content Information of `version`,
    /// if the entry is there and still describes the file with `key`. Returns the file and
    /// the number of bytes to send.
    pub(crate) async fn open_current(
        &self,
        real: &Path,
        key: &FileKey,
        version: Version,
    ) -> std::io::Result<Option<(tokio::fs::File, u64)>> {
        let mut file = match tokio::fs::File::open(self.entry_path(real)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut prefix = [0; PREFIX_LEN];
        if file.read_exact(&mut prefix).await.is_err() {
            return Ok(None);
        }
        let Some(header_len) = header_len(&prefix) else {
            return Ok(None);
        };
        let mut bytes = vec![0; header_len];
        if file.read_exact(&mut bytes).await.is_err() {
            return Ok(None);
        }
        let Some(header) = Header::decode(&bytes) else {
            return Ok(None);
        };
        let start = (PREFIX_LEN + header_len) as u64;
        let complete = file.metadata().await?.len() == start + header.v1_len + header.v2_len;
        let current = header.key == *key
            && header.fingerprint == self.fingerprint
            && header.path == real.as_os_str().as_bytes();
        if !complete || !current {
            return Ok(None);
        }
        let (offset, len) = match version {
            Version::V1 => (start, header.v1_len),
            Version::V2 => (start + header.v1_len, header.v2_len),
        };
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        Ok(Some((file, len)))
    }
}

impl Store {
    /// Removes entries whose served file no longer exists, unreadable entries, and temporary
    /// files a crash left behind. Returns how many files were removed.
    pub(crate) fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = if name.contains(".tmp-") {
                true
            } else if name.ends_with(".pccrc") {
                read_header(&path).is_none_or(|header| !Path::new(OsStr::from_bytes(&header.path)).exists())
            } else {
                false
            };
            if stale && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// The header of the entry file at `path`, if it has one.
fn read_header(path: &Path) -> Option<Header> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).ok()?;
    let mut prefix = [0; PREFIX_LEN];
    file.read_exact(&mut prefix).ok()?;
    let mut bytes = vec![0; header_len(&prefix)?];
    file.read_exact(&mut bytes).ok()?;
    Header::decode(&bytes)
}

/// An entry being written; removed unless committed.
#[derive(Debug)]
pub(crate) struct EntryWriter {
    file: Option<std::fs::File>,
    base: u64,
    v1_len: u64,
    temporary: PathBuf,
    path: PathBuf,
}

impl EntryWriter {
    /// Writes `bytes` at `offset` of `version`'s Content Information.
    pub(crate) fn write(&self, version: Version, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        let start = match version {
            Version::V1 => self.base,
            Version::V2 => self.base + self.v1_len,
        };
        self.file
            .as_ref()
            .expect("open until committed")
            .write_all_at(bytes, start + offset)
    }

    /// Makes the entry durable and visible.
    pub(crate) fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take().expect("committed once");
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temporary, &self.path)
    }
}

impl Drop for EntryWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

struct Header {
    key: FileKey,
    fingerprint: [u8; 8],
    v1_len: u64,
    v2_len: u64,
    path: Vec<u8>,
}

impl Header {
    /// Magic, length and header.
    fn encode(&self) -> std::io::Result<Vec<u8>> {
        let path_len = u16::try_from(self.path.len())
            .ok()
            .filter(|len| FIXED_HEADER_LEN + usize::from(*len) <= MAX_HEADER_LEN)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "path too long for the store")
            })?;
        let header_len = FIXED_HEADER_LEN + self.path.len();
        let mut out = Vec::with_capacity(PREFIX_LEN + header_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
        out.extend_from_slice(&self.key.dev.to_le_bytes());
        out.extend_from_slice(&self.key.inode.to_le_bytes());
        out.extend_from_slice(&self.key.len.to_le_bytes());
        out.extend_from_slice(&self.key.mtime_secs.to_le_bytes());
        out.extend_from_slice(&self.key.mtime_nanos.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.v1_len.to_le_bytes());
        out.extend_from_slice(&self.v2_len.to_le_bytes());
        out.extend_from_slice(&path_len.to_le_bytes());
        out.extend_from_slice(&self.path);
        Ok(out)
    }

    /// The header after magic and length.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let key = FileKey {
            dev: u64_at(take(8)?),
            inode: u64_at(take(8)?),
            len: u64_at(take(8)?),
            mtime_secs: i64::from_le_bytes(take(8)?.try_into().ok()?),
            mtime_nanos: u32::from_le_bytes(take(4)?.try_into().ok()?),
        };
        let fingerprint = take(8)?.try_into().ok()?;
        let v1_len = u64_at(take(8)?);
        let v2_len = u64_at(take(8)?);
        let path_len = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let path = take(usize::from(path_len))?.to_vec();
        rest.is_empty().then_some(Self {
            key,
            fingerprint,
            v1_len,
            v2_len,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(len: u64) -> FileKey {
        FileKey {
            dev: 1,
            inode: 2,
            len,
            mtime_secs: 3,
            mtime_nanos: 4,
        }
    }

    async fn read(store: &Store, real: &Path, key: &FileKey, version: Version) -> Option<Vec<u8>> {
        let (file, len) = store.open_current(real, key, version).await.unwrap()?;
        let mut out = Vec::new();
        file.take(len).read_to_end(&mut out).await.unwrap();
        Some(out)
    }

    #[tokio::test]
    async fn entries_are_found_only_for_the_same_file_version_and_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerdist"), *b"abcdefgh").unwrap();
        let real = Path::new("/srv/netboot/boot.wim");
        assert_eq!(read(&store, real, &key(10), Version::V1).await, None);
        store.write(real, &key(10), b"version one", b"two").unwrap();
        assert_eq!(
            read(&store, real, &key(10), Version::V1).await.unwrap(),
            b"version one"
        );
        assert_eq!(read(&store, real, &key(10), Version::V2).await.unwrap(), b"two");
        assert_eq!(
            read(&store, real, &key(11), Version::V1).await,
            None,
            "file changed"
        );
        assert_eq!(
            read(&store, Path::new("/other"), &key(10), Version::V1).await,
            None
        );
        let other_passphrase = Store::open(dir.path().join("peerdist"), *b"zzzzzzzz").unwrap();
        assert_eq!(read(&other_passphrase, real, &key(10), Version::V1).await, None);
        // A cut-short entry is never used.
        let entry = store.entry_path(real);
        let bytes = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(read(&store, real, &key(10), Version::V1).await, None);
        assert_eq!(
            std::fs::read_dir(store.dir()).unwrap().count(),
            1,
            "no temporary files left"
        );
    }

    #[test]
    fn sweeping_removes_entries_of_files_that_are_gone_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerdist"), *b"abcdefgh").unwrap();
        let kept = dir.path().join("kept.wim");
        std::fs::write(&kept, b"x").unwrap();
        store.write(&kept, &key(1), b"1", b"2").unwrap();
        store
            .write(Path::new("/nonexistent/gone.wim"), &key(1), b"1", b"2")
            .unwrap();
        std::fs::write(store.dir().join("0123.tmp-99"), b"half").unwrap();
        std::fs::write(store.dir().join("garbage.pccrc"), b"not an entry").unwrap();
        assert_eq!(store.sweep(), 3);
        let left: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [store.entry_path(&kept)]);
    }
}
