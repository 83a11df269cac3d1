//! Netascii (RFC 764 as used by RFC 1350): LF becomes CR LF, a bare CR becomes CR NUL.

/// Converts a file's bytes to netascii.
///
/// ```
/// assert_eq!(netboot_tftp::netascii::encode(b"a\nb\rc"), b"a\r\nb\r\0c");
/// ```
#[must_use]
pub fn encode(text: &[u8]) -> Vec<u8> {
    let extra = text.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let mut out = Vec::with_capacity(text.len() + extra);
    for &byte in text {
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            other => out.push(other),
        }
    }
    out
}
