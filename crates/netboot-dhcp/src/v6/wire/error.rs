//! Why bytes are not a DHCPv6 message, and why a message cannot be written.

/// A datagram that is not a well-formed DHCPv6 message. Offsets are byte positions in the
/// outermost datagram (inside relayed messages too).
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
    /// A known option's value has the wrong length or shape.
    #[error("option {code} at byte {offset} has an invalid value of {len} bytes")]
    BadOptionValue {
        /// Option code.
        code: u16,
        /// Length of the value.
        len: usize,
        /// Where the option starts.
        offset: usize,
    },
    /// Options inside options (relay messages, IAs) nest deeper than any real message does.
    #[error("options nest deeper than {0} levels")]
    TooDeep(usize),
}

/// A message that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An option's value is longer than its 16-bit length field can say.
    #[error("option {code} has {len} bytes, more than 65535")]
    TooLong {
        /// Option code.
        code: u16,
        /// Value length.
        len: usize,
    },
    /// Relay message types need the relay header and all others a transaction id.
    #[error("message type {0:?} does not go with its header")]
    HeaderMismatch(super::MessageType),
}
