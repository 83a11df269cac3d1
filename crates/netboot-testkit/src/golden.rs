//! Golden files: output compared with a committed file, which `UPDATE_GOLDEN=1` rewrites.
//!
//! ```no_run
//! let path = netboot_testkit::testdata().join("ipxe/exit.ipxe");
//! netboot_testkit::golden::check(&path, "#!ipxe\nexit\n");
//! ```

use std::path::Path;

/// Whether golden files are being rewritten: `UPDATE_GOLDEN=1` is set.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path`; a difference panics naming the file and the
/// first line that differs. When [`updating`], writes `actual` there instead (creating
/// directories), only if it differs and never half-written, so a second `UPDATE_GOLDEN=1` run
/// leaves every file as it is.
pub fn check(path: &Path, actual: impl AsRef<[u8]>) {
    let actual = actual.as_ref();
    if updating() {
        bless(path, actual);
        return;
    }
    let expected = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if expected != actual {
        let (expected, actual) = (
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual),
        );
        let line = first_different_line(&expected, &actual);
        panic!(
            "{} differs (first difference at line {}):\n expected: {:?}\n   actual: {:?}\nrun with UPDATE_GOLDEN=1 to accept",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// Writes `contents` to `path` unless it already holds exactly that. The bytes go to a
/// temporary file beside it that is then renamed over it, so a test reading the golden files
/// in parallel never sees a half-written one.
fn bless(path: &Path, contents: &[u8]) {
    if std::fs::read(path).is_ok_and(|existing| existing == contents) {
        return;
    }
    let parent = path.parent().expect("a golden file lives in a directory");
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    let name = path
        .file_name()
        .expect("a golden file has a name")
        .to_string_lossy();
    let temporary = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, contents).unwrap_or_else(|e| panic!("writing {}: {e}", temporary.display()));
    std::fs::rename(&temporary, path).unwrap_or_else(|e| panic!("renaming to {}: {e}", path.display()));
}

/// Index (0-based) of the first line that differs; when one text is a prefix of the other,
/// the line after the shorter one.
pub fn first_different_line(expected: &str, actual: &str) -> usize {
    expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()))
}

#[cfg(test)]
mod tests {
    use super::{bless, first_different_line};

    #[test]
    fn names_the_first_line_that_differs() {
        assert_eq!(first_different_line("a\nb\nc\n", "a\nx\nc\n"), 1);
        assert_eq!(first_different_line("a\nb\n", "a\nb\nc\n"), 2);
        assert_eq!(first_different_line("a\n", "a\r\n"), 1);
    }

    #[test]
    fn blessing_writes_only_what_changed() {
        let dir = std::env::temp_dir().join(format!("netboot-testkit-golden-{}", std::process::id()));
        let path = dir.join("nested/out.txt");
        bless(&path, b"one\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        bless(&path, b"one\n");
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written);
        bless(&path, b"two\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
