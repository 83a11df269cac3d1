//! TFTP packets (RFC 1350, RFC 2347 OACK): borrowed views for parsing, owned reprs for building.
//!
//! Parsing never copies: [`Packet::parse`] returns slices of the datagram. Strings stay bytes,
//! because a filename is whatever the client sent (Windows Boot Manager sends backslashes, some
//! ROMs send Latin-1), and options stay in wire order with unknown ones preserved, so
//! `emit(parse(b)) == b` for every packet this module accepts.

use std::fmt;

use crate::BlockNum;

/// Largest datagram a TFTP peer may send: a DATA packet of the largest RFC 2348 block.
pub const MAX_DATAGRAM: usize = 4 + crate::BlockSize::MAX as usize;

/// Length of the DATA header (opcode and block number) that precedes the payload.
pub const DATA_HEADER_LEN: usize = 4;

/// The opcodes of RFC 1350 and RFC 2347.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Opcode {
    /// Read request.
    Rrq = 1,
    /// Write request.
    Wrq = 2,
    /// A block of file data.
    Data = 3,
    /// Acknowledgement of a block.
    Ack = 4,
    /// An error that ends the transfer.
    Error = 5,
    /// Option acknowledgement (RFC 2347).
    Oack = 6,
}

/// TFTP error codes (RFC 1350, RFC 2347 code 8); unknown codes are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID (a packet from the wrong port).
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: the options could not be agreed; the transfer ends (RFC 2347).
    OptionNegotiation,
    /// A code no RFC defines.
    Unknown(u16),
}

impl From<u16> for ErrorCode {
    fn from(code: u16) -> Self {
        match code {
            0 => Self::NotDefined,
            1 => Self::FileNotFound,
            2 => Self::AccessViolation,
            3 => Self::DiskFull,
            4 => Self::IllegalOperation,
            5 => Self::UnknownTransferId,
            6 => Self::FileExists,
            7 => Self::NoSuchUser,
            8 => Self::OptionNegotiation,
            other => Self::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionNegotiation => 8,
            ErrorCode::Unknown(other) => other,
        }
    }
}

impl ErrorCode {
    /// What the code means, as RFC 1350 and RFC 2347 describe it.
    #[must_use]
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::NotDefined => "not defined",
            Self::FileNotFound => "file not found",
            Self::AccessViolation => "access violation",
            Self::DiskFull => "disk full",
            Self::IllegalOperation => "illegal operation",
            Self::UnknownTransferId => "unknown transfer ID",
            Self::FileExists => "file already exists",
            Self::NoSuchUser => "no such user",
            Self::OptionNegotiation => "option negotiation failed",
            Self::Unknown(_) => "unknown code",
        }
    }
}

/// `8 (option negotiation failed)`: the number and its meaning.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", u16::from(*self), self.meaning())
    }
}

/// Which part of a packet a decode error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The 2-byte opcode.
    Opcode,
    /// The filename of a request.
    Filename,
    /// The transfer mode of a request.
    Mode,
    /// An option name.
    OptionName,
    /// An option value.
    OptionValue,
    /// A block number.
    Block,
    /// An error code.
    ErrorCode,
    /// An error message.
    ErrorMessage,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Opcode => "opcode",
            Self::Filename => "filename",
            Self::Mode => "mode",
            Self::OptionName => "option name",
            Self::OptionValue => "option value",
            Self::Block => "block number",
            Self::ErrorCode => "error code",
            Self::ErrorMessage => "error message",
        })
    }
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ends before a fixed-size field.
    #[error("truncated {field}: needed {needed} bytes at offset {offset}, datagram has {got}")]
    Truncated {
        /// The field that is cut.
        field: Field,
        /// Bytes needed from the start of the datagram.
        needed: usize,
        /// Bytes the datagram has.
        got: usize,
        /// Where the field starts.
        offset: usize,
    },
    /// A string runs to the end of the datagram without its NUL terminator.
    #[error("{field} at offset {offset} has no NUL terminator")]
    Unterminated {
        /// The string that is cut.
        field: Field,
        /// Where it starts.
        offset: usize,
    },
    /// The opcode is not one of 1..=6.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// An OACK that acknowledges nothing (RFC 2347 sends OACK only for accepted options).
    #[error("OACK without options")]
    EmptyOack,
    /// Bytes after the last NUL-terminated string of an ERROR packet.
    #[error("{0} bytes after the error message")]
    TrailingBytes(usize),
}

/// A string given to an emitter contains a NUL byte, which would end it early on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} contains a NUL byte")]
pub struct EncodeError(pub Field);

/// One `name\0value\0` pair of a request or OACK, exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Option name; compare it case-insensitively (RFC 2347).
    pub name: &'a [u8],
    /// Option value, usually ASCII decimal.
    pub value: &'a [u8],
}

/// Options in wire order, unknown ones included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options<'a>(pub Vec<RawOption<'a>>);

impl<'a> Options<'a> {
    /// Value of the first option called `name` (ASCII case-insensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.0
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|o| o.value)
    }

    /// Options in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &RawOption<'a>> {
        self.0.iter()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The path the client asked for, as bytes.
    pub filename: &'a [u8],
    /// `octet`, `netascii` or `mail`, in any case.
    pub mode: &'a [u8],
    /// RFC 2347 options.
    pub options: Options<'a>,
}

/// A parsed TFTP packet borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq(Request<'a>),
    /// Write request.
    Wrq(Request<'a>),
    /// A data block.
    Data {
        /// Its number.
        block: BlockNum,
        /// Its payload; shorter than the block size for the last block.
        data: &'a [u8],
    },
    /// An acknowledgement.
    Ack {
        /// The acknowledged block.
        block: BlockNum,
        /// Bytes after the block number. Windows Boot Manager's `msftwindow` extension sends one
        /// here; other clients send none.
        trailing: &'a [u8],
    },
    /// An error.
    Error {
        /// The code.
        code: ErrorCode,
        /// The human-readable message.
        message: &'a [u8],
    },
    /// Option acknowledgement.
    Oack(Options<'a>),
}

/// Bytes as text for logs and golden files: printable ASCII as is, everything else escaped
/// (`\\`, `\"`, `\xNN`), so any client-sent string renders on one line.
struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.escape_ascii(), f)
    }
}

/// A readable rendering, as in traces and golden files. `{}` gives one line, such as
/// `RRQ "pxelinux.0" octet blksize=1468 tsize=0`; `{:#}` gives one field per line.
///
/// ```
/// use netboot_tftp::Packet;
/// let rrq = Packet::parse(b"\x00\x01boot\\x64\\wdsmgfw.efi\x00octet\x00msftwindow\x0031416\x00").unwrap();
/// assert_eq!(rrq.to_string(), r#"RRQ "boot\\x64\\wdsmgfw.efi" octet msftwindow=31416"#);
/// let ack = Packet::parse(b"\x00\x04\x00\x07\x10").unwrap();
/// assert_eq!(ack.to_string(), "ACK 7 extra=[10]");
/// ```
impl fmt::Display for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let multiline = f.alternate();
        let field = |f: &mut fmt::Formatter<'_>, name: &str, value: &dyn fmt::Display| {
            if multiline {
                write!(f, "\n  {name}: {value}")
            } else {
                write!(f, " {value}")
            }
        };
        let options = |f: &mut fmt::Formatter<'_>, options: &Options<'_>| {
            options.iter().try_for_each(|o| {
                if multiline {
                    write!(f, "\n  option: {}={}", Escaped(o.name), Escaped(o.value))
                } else {
                    write!(f, " {}={}", Escaped(o.name), Escaped(o.value))
                }
            })
        };
        match self {
            Self::Rrq(request) | Self::Wrq(request) => {
                f.write_str(if matches!(self, Self::Rrq(_)) {
                    "RRQ"
                } else {
                    "WRQ"
                })?;
                field(f, "filename", &format_args!("\"{}\"", Escaped(request.filename)))?;
                field(f, "mode", &Escaped(request.mode))?;
                options(f, &request.options)
            }
            Self::Data { block, data } => {
                f.write_str("DATA")?;
                field(f, "block", block)?;
                if multiline {
                    write!(f, "\n  payload: {} bytes", data.len())
                } else {
                    write!(f, " ({} bytes)", data.len())
                }
            }
            Self::Ack { block, trailing } => {
                f.write_str("ACK")?;
                field(f, "block", block)?;
                if trailing.is_empty() {
                    return Ok(());
                }
                f.write_str(if multiline { "\n  extra: [" } else { " extra=[" })?;
                for (i, byte) in trailing.iter().enumerate() {
                    let separator = if i == 0 { "" } else { " " };
                    write!(f, "{separator}{byte:02x}")?;
                }
                f.write_str("]")
            }
            Self::Error { code, message } => {
                f.write_str("ERROR")?;
                field(f, "code", code)?;
                field(f, "message", &format_args!("\"{}\"", Escaped(message)))
            }
            Self::Oack(list) => {
                f.write_str("OACK")?;
                options(f, list)
            }
        }
    }
}

/// Splits a NUL-terminated string at `offset`, returning it and the offset after its NUL.
fn take_string(bytes: &[u8], offset: usize, field: Field) -> Result<(&[u8], usize), DecodeError> {
    let rest = &bytes[offset..];
    match rest.iter().position(|&b| b == 0) {
        Some(len) => Ok((&rest[..len], offset + len + 1)),
        None => Err(DecodeError::Unterminated { field, offset }),
    }
}

fn take_u16(bytes: &[u8], offset: usize, field: Field) -> Result<u16, DecodeError> {
    match bytes.get(offset..offset + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DecodeError::Truncated {
            field,
            needed: offset + 2,
            got: bytes.len(),
            offset,
        }),
    }
}

fn parse_options(bytes: &[u8], mut offset: usize) -> Result<Options<'_>, DecodeError> {
    let mut options = Vec::new();
    while offset < bytes.len() {
        let (name, after_name) = take_string(bytes, offset, Field::OptionName)?;
        if after_name >= bytes.len() {
            return Err(DecodeError::Unterminated {
                field: Field::OptionValue,
                offset: after_name,
            });
        }
        let (value, after_value) = take_string(bytes, after_name, Field::OptionValue)?;
        options.push(RawOption { name, value });
        offset = after_value;
    }
    Ok(Options(options))
}

fn parse_request(bytes: &[u8]) -> Result<Request<'_>, DecodeError> {
    let (filename, offset) = take_string(bytes, 2, Field::Filename)?;
    let (mode, offset) = take_string(bytes, offset, Field::Mode)?;
    let options = parse_options(bytes, offset)?;
    Ok(Request {
        filename,
        mode,
        options,
    })
}

impl<'a> Packet<'a> {
    /// Parses one datagram.
    ///
    /// ```
    /// use netboot_tftp::{BlockNum, Packet};
    /// let packet = Packet::parse(b"\x00\x04\x00\x07").unwrap();
    /// assert_eq!(packet, Packet::Ack { block: BlockNum(7), trailing: b"" });
    /// assert!(Packet::parse(b"\x00\x04\x00").is_err());
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let opcode = take_u16(bytes, 0, Field::Opcode)?;
        match opcode {
            1 => Ok(Self::Rrq(parse_request(bytes)?)),
            2 => Ok(Self::Wrq(parse_request(bytes)?)),
            3 => {
                let block = BlockNum(take_u16(bytes, 2, Field::Block)?);
                Ok(Self::Data {
                    block,
                    data: &bytes[4..],
                })
            }
            4 => {
                let block = BlockNum(take_u16(bytes, 2, Field::Block)?);
                Ok(Self::Ack {
                    block,
                    trailing: &bytes[4..],
                })
            }
            5 => {
                let code = ErrorCode::from(take_u16(bytes, 2, Field::ErrorCode)?);
                let (message, end) = take_string(bytes, 4, Field::ErrorMessage)?;
                if end != bytes.len() {
                    return Err(DecodeError::TrailingBytes(bytes.len() - end));
                }
                Ok(Self::Error { code, message })
            }
            6 => {
                let options = parse_options(bytes, 2)?;
                if options.is_empty() {
                    return Err(DecodeError::EmptyOack);
                }
                Ok(Self::Oack(options))
            }
            other => Err(DecodeError::UnknownOpcode(other)),
        }
    }

    /// Appends the wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Rrq(request) | Self::Wrq(request) => {
                let opcode = if matches!(self, Self::Rrq(_)) {
                    Opcode::Rrq
                } else {
                    Opcode::Wrq
                };
                out.extend_from_slice(&(opcode as u16).to_be_bytes());
                push_string(out, request.filename, Field::Filename)?;
                push_string(out, request.mode, Field::Mode)?;
                push_options(out, &request.options)?;
            }
            Self::Data { block, data } => {
                out.extend_from_slice(&(Opcode::Data as u16).to_be_bytes());
                out.extend_from_slice(&block.0.to_be_bytes());
                out.extend_from_slice(data);
            }
            Self::Ack { block, trailing } => {
                out.extend_from_slice(&(Opcode::Ack as u16).to_be_bytes());
                out.extend_from_slice(&block.0.to_be_bytes());
                out.extend_from_slice(trailing);
            }
            Self::Error { code, message } => {
                out.extend_from_slice(&(Opcode::Error as u16).to_be_bytes());
                out.extend_from_slice(&u16::from(*code).to_be_bytes());
                push_string(out, message, Field::ErrorMessage)?;
            }
            Self::Oack(options) => {
                out.extend_from_slice(&(Opcode::Oack as u16).to_be_bytes());
                push_options(out, options)?;
            }
        }
        Ok(())
    }

    /// Copies the packet into an owned repr.
    #[must_use]
    pub fn to_owned_packet(&self) -> OwnedPacket {
        let request = |r: &Request<'_>| OwnedRequest {
            filename: r.filename.to_vec(),
            mode: r.mode.to_vec(),
            options: owned_options(&r.options),
        };
        match self {
            Self::Rrq(r) => OwnedPacket::Rrq(request(r)),
            Self::Wrq(r) => OwnedPacket::Wrq(request(r)),
            Self::Data { block, data } => OwnedPacket::Data {
                block: *block,
                data: data.to_vec(),
            },
            Self::Ack { block, trailing } => OwnedPacket::Ack {
                block: *block,
                trailing: trailing.to_vec(),
            },
            Self::Error { code, message } => OwnedPacket::Error {
                code: *code,
                message: message.to_vec(),
            },
            Self::Oack(options) => OwnedPacket::Oack(owned_options(options)),
        }
    }
}

fn owned_options(options: &Options<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    options
        .iter()
        .map(|o| (o.name.to_vec(), o.value.to_vec()))
        .collect()
}

fn push_string(out: &mut Vec<u8>, s: &[u8], field: Field) -> Result<(), EncodeError> {
    if s.contains(&0) {
        return Err(EncodeError(field));
    }
    out.extend_from_slice(s);
    out.push(0);
    Ok(())
}

fn push_options(out: &mut Vec<u8>, options: &Options<'_>) -> Result<(), EncodeError> {
    for option in options.iter() {
        push_string(out, option.name, Field::OptionName)?;
        push_string(out, option.value, Field::OptionValue)?;
    }
    Ok(())
}

/// An owned read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    /// The path, as bytes.
    pub filename: Vec<u8>,
    /// The transfer mode.
    pub mode: Vec<u8>,
    /// `(name, value)` pairs in wire order.
    pub options: Vec<(Vec<u8>, Vec<u8>)>,
}

/// An owned TFTP packet, for building packets and for keeping them past their datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedPacket {
    /// Read request.
    Rrq(OwnedRequest),
    /// Write request.
    Wrq(OwnedRequest),
    /// A data block.
    Data {
        /// Its number.
        block: BlockNum,
        /// Its payload.
        data: Vec<u8>,
    },
    /// An acknowledgement.
    Ack {
        /// The acknowledged block.
        block: BlockNum,
        /// Extension bytes after the block number.
        trailing: Vec<u8>,
    },
    /// An error.
    Error {
        /// The code.
        code: ErrorCode,
        /// The message.
        message: Vec<u8>,
    },
    /// Option acknowledgement as `(name, value)` pairs.
    Oack(Vec<(Vec<u8>, Vec<u8>)>),
}

impl OwnedPacket {
    /// Appends the wire form to `out`.
    ///
    /// ```
    /// use netboot_tftp::{ErrorCode, OwnedPacket, Packet};
    /// let packet = OwnedPacket::Error { code: ErrorCode::FileNotFound, message: b"no such file".to_vec() };
    /// let mut wire = Vec::new();
    /// packet.emit(&mut wire).unwrap();
    /// assert_eq!(Packet::parse(&wire).unwrap().to_owned_packet(), packet);
    /// ```
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let view = match self {
            Self::Rrq(r) => Packet::Rrq(borrow_request(r)),
            Self::Wrq(r) => Packet::Wrq(borrow_request(r)),
            Self::Data { block, data } => Packet::Data { block: *block, data },
            Self::Ack { block, trailing } => Packet::Ack {
                block: *block,
                trailing,
            },
            Self::Error { code, message } => Packet::Error { code: *code, message },
            Self::Oack(pairs) => Packet::Oack(borrow_options(pairs)),
        };
        view.emit(out)
    }
}

fn borrow_options(pairs: &[(Vec<u8>, Vec<u8>)]) -> Options<'_> {
    Options(
        pairs
            .iter()
            .map(|(name, value)| RawOption { name, value })
            .collect(),
    )
}

fn borrow_request(request: &OwnedRequest) -> Request<'_> {
    Request {
        filename: &request.filename,
        mode: &request.mode,
        options: borrow_options(&request.options),
    }
}

/// Writes a DATA header for `block` into the first four bytes of `buf`: the hot path builds
/// DATA packets in place, with the payload read straight after the header.
///
/// # Panics
/// If `buf` is shorter than [`DATA_HEADER_LEN`]; callers size their buffers for the block size.
pub fn write_data_header(buf: &mut [u8], block: BlockNum) {
    buf[..2].copy_from_slice(&(Opcode::Data as u16).to_be_bytes());
    buf[2..4].copy_from_slice(&block.0.to_be_bytes());
}

/// Appends an ERROR packet; control bytes and NULs in `message` are replaced so it always encodes.
pub fn emit_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    out.extend_from_slice(&(Opcode::Error as u16).to_be_bytes());
    out.extend_from_slice(&u16::from(code).to_be_bytes());
    out.extend(
        message
            .bytes()
            .map(|b| if b.is_ascii_control() { b'?' } else { b }),
    );
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_rrq_with_options_in_order() {
        let wire = b"\x00\x01pxelinux.0\x00octet\x00blksize\x001468\x00tsize\x000\x00x-vendor\x00on\x00";
        let Packet::Rrq(request) = Packet::parse(wire).unwrap() else {
            panic!("not an RRQ")
        };
        assert_eq!(request.filename, b"pxelinux.0");
        assert_eq!(request.mode, b"octet");
        assert_eq!(request.options.get("BLKSIZE"), Some(&b"1468"[..]));
        let names: Vec<_> = request.options.iter().map(|o| o.name).collect();
        assert_eq!(names, [&b"blksize"[..], b"tsize", b"x-vendor"]);
        let mut out = Vec::new();
        Packet::Rrq(request).emit(&mut out).unwrap();
        assert_eq!(out, wire);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert!(matches!(
            Packet::parse(b"\x00"),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(Packet::parse(b"\x00\x09"), Err(DecodeError::UnknownOpcode(9)));
        assert!(matches!(
            Packet::parse(b"\x00\x01file"),
            Err(DecodeError::Unterminated { .. })
        ));
        assert!(matches!(
            Packet::parse(b"\x00\x01f\x00octet\x00blksize\x00"),
            Err(DecodeError::Unterminated { .. })
        ));
        assert_eq!(Packet::parse(b"\x00\x06"), Err(DecodeError::EmptyOack));
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01x\x00y"),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn renders_every_packet_on_one_line_or_one_field_per_line() {
        let render = |wire: &[u8]| {
            let packet = Packet::parse(wire).unwrap();
            (format!("{packet}"), format!("{packet:#}"))
        };
        let (line, pretty) = render(b"\x00\x02up\"\xff\x00NetAscii\x00tsize\x00\x01\x00");
        assert_eq!(line, r#"WRQ "up\"\xff" NetAscii tsize=\x01"#);
        assert_eq!(
            pretty,
            "WRQ\n  filename: \"up\\\"\\xff\"\n  mode: NetAscii\n  option: tsize=\\x01"
        );
        assert_eq!(render(b"\x00\x03\xff\xff abc").0, "DATA 65535 (4 bytes)");
        assert_eq!(
            render(b"\x00\x03\x00\x01").1,
            "DATA\n  block: 1\n  payload: 0 bytes"
        );
        assert_eq!(render(b"\x00\x04\x00\x00").0, "ACK 0");
        assert_eq!(
            render(b"\x00\x04\x00\x02\x04\x00").1,
            "ACK\n  block: 2\n  extra: [04 00]"
        );
        assert_eq!(
            render(b"\x00\x05\x00\x08no\nway\x00").0,
            r#"ERROR 8 (option negotiation failed) "no\nway""#
        );
        assert_eq!(
            render(b"\x00\x05\x01\x00\x00").1,
            "ERROR\n  code: 256 (unknown code)\n  message: \"\""
        );
        assert_eq!(render(b"\x00\x06blksize\x001432\x00").0, "OACK blksize=1432");
    }

    #[test]
    fn error_emitter_sanitises_messages() {
        let mut out = Vec::new();
        emit_error(&mut out, ErrorCode::FileNotFound, "bad\0name\n");
        assert_eq!(
            Packet::parse(&out).unwrap(),
            Packet::Error {
                code: ErrorCode::FileNotFound,
                message: b"bad?name?"
            }
        );
    }
}
