//! Why bytes are not a DHCP message.

/// A datagram that is not a well-formed BOOTP/DHCPv4 message.
///
/// Offsets are byte positions in the datagram (or in the `file`/`sname` field for options
/// carried there through overload, option 52).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ends before a structure it announces.
    #[error("truncated at byte {offset}: needed {needed} bytes, got {got}")]
    Truncated {
        /// Bytes the structure at `offset` needs.
        needed: usize,
        /// Bytes actually left at `offset`.
        got: usize,
        /// Where the structure starts.
        offset: usize,
    },
    /// The four bytes after the BOOTP header are not the DHCP magic cookie `63 82 53 63`.
    #[error("bad magic cookie {0:#010x}")]
    BadCookie(u32),
    /// The option area has no END (255) option.
    #[error("options in {area} have no END option")]
    MissingEnd {
        /// `options`, `file` or `sname`.
        area: OptionArea,
    },
    /// A known option's value has the wrong length or shape.
    #[error("option {code} has an invalid value of {len} bytes")]
    BadOptionValue {
        /// Option code.
        code: u8,
        /// Length of the (concatenated) value.
        len: usize,
    },
    /// Option 52 holds a value other than 1, 2 or 3.
    #[error("option overload value {0} is not 1, 2 or 3")]
    BadOverload(u8),
}

/// Where in a DHCP message an option was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptionArea {
    /// The variable-length options field after the magic cookie.
    Options,
    /// The 128-byte `file` field, when option 52 says it holds options.
    File,
    /// The 64-byte `sname` field, when option 52 says it holds options.
    Sname,
}

impl std::fmt::Display for OptionArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Options => "options",
            Self::File => "file",
            Self::Sname => "sname",
        })
    }
}
