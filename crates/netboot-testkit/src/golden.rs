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

/// Compares `actual` with the file at `path`, or writes it there (creating directories) when
/// [`updating`]. A difference panics naming the file and the first line that differs, so a
/// second `UPDATE_GOLDEN=1` run leaves every file as it is.
pub fn check(path: &Path, actual: impl AsRef<[u8]>) {
    let actual = actual.as_ref();
    if updating() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
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

/// Index of the first line that differs; when one text is a prefix of the other, the line
/// after the shorter one.
fn first_different_line(expected: &str, actual: &str) -> usize {
    expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()))
}

#[cfg(test)]
mod tests {
    use super::first_different_line;

    #[test]
    fn names_the_first_line_that_differs() {
        assert_eq!(first_different_line("a\nb\nc\n", "a\nx\nc\n"), 1);
        assert_eq!(first_different_line("a\nb\n", "a\nb\nc\n"), 2);
        assert_eq!(first_different_line("a\n", "a\r\n"), 1);
    }
}
