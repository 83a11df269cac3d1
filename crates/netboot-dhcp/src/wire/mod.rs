//! BOOTP/DHCPv4 wire format: a borrowed view ([`DhcpPacket`]) for checking and peeking, and
//! an owned message ([`DhcpMessage`]) with typed options kept in wire order.

mod error;
mod message;
mod options;
mod raw;

pub use error::{DecodeError, OptionArea};
pub use message::{DhcpMessage, BOOTREPLY, BOOTREQUEST, FLAG_BROADCAST};
pub use options::{code, encode_tlv, DhcpOption, MessageType};
pub use raw::{DhcpPacket, RawOption, RawOptions, MAGIC_COOKIE};
