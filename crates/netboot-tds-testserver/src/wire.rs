//! TDS messages the endpoint understands, as pure parsers over byte slices (client to
//! server) and encoders into `Vec<u8>` (server to client). No I/O here.
//!
//! Layouts follow [MS-TDS] 2.2: all integers little-endian except the packet header length
//! and the PRELOGIN option table (big-endian); strings are UCS-2 with a character count.

/// Packet types (MS-TDS 2.2.3.1.1).
pub mod packet_type {
    /// SQL batch.
    pub const SQL_BATCH: u8 = 0x01;
    /// Remote procedure call.
    pub const RPC: u8 = 0x03;
    /// Server response.
    pub const TABULAR_RESULT: u8 = 0x04;
    /// Attention (cancel).
    pub const ATTENTION: u8 = 0x06;
    /// LOGIN7.
    pub const LOGIN7: u8 = 0x10;
    /// PRELOGIN.
    pub const PRELOGIN: u8 = 0x12;
}

/// Length of the packet header.
pub const HEADER_LEN: usize = 8;

/// A client message that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends before a field it announces.
    #[error("{what}: needed {needed} bytes at offset {offset}, message has {len}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Where.
        offset: usize,
        /// Message length.
        len: usize,
    },
    /// A packet header with an impossible length.
    #[error("packet length {0} is outside 8..=32768")]
    PacketLength(u16),
    /// A parameter type this endpoint does not decode.
    #[error("unsupported parameter type 0x{0:02x}")]
    UnsupportedType(u8),
    /// A procedure other than `sp_executesql`.
    #[error("unsupported procedure {0}")]
    UnsupportedProcedure(String),
    /// A field value that breaks the format.
    #[error("{what}: {detail}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What is wrong.
        detail: &'static str,
    },
}

/// A cursor over a message with bounds-checked reads.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, naming `what` in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, pos: 0, what }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated {
                what: self.what,
                needed: n,
                offset: self.pos,
                len: self.bytes.len(),
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// Little-endian u16.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Little-endian u32.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Little-endian u64.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// UCS-2 text of `chars` characters.
    pub fn ucs2(&mut self, chars: usize) -> Result<String, WireError> {
        let bytes = self.take(chars.checked_mul(2).ok_or(WireError::Invalid {
            what: self.what,
            detail: "length overflow",
        })?)?;
        Ok(decode_ucs2(bytes))
    }

    /// Text with a one-byte character count (B_VARCHAR).
    pub fn b_varchar(&mut self) -> Result<String, WireError> {
        let chars = self.u8()? as usize;
        self.ucs2(chars)
    }
}

/// Decodes UTF-16LE, replacing unpaired surrogates.
pub fn decode_ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Appends UTF-16LE.
pub fn put_ucs2(out: &mut Vec<u8>, text: &str) {
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Appends a B_VARCHAR (at most 255 UTF-16 units; longer text is cut).
pub fn put_b_varchar(out: &mut Vec<u8>, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Appends a US_VARCHAR (at most 65535 UTF-16 units).
pub fn put_us_varchar(out: &mut Vec<u8>, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(u16::MAX as usize).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// A packet header (MS-TDS 2.2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Packet type.
    pub kind: u8,
    /// Status bits; `0x01` ends the message.
    pub status: u8,
    /// Whole packet length including this header.
    pub length: u16,
}

impl PacketHeader {
    /// Parses the 8-byte header.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, WireError> {
        let length = u16::from_be_bytes([bytes[2], bytes[3]]);
        if !(HEADER_LEN as u16..=32768).contains(&length) {
            return Err(WireError::PacketLength(length));
        }
        Ok(Self {
            kind: bytes[0],
            status: bytes[1],
            length,
        })
    }

    /// True on the last packet of a message.
    pub fn end_of_message(&self) -> bool {
        self.status & 0x01 != 0
    }
}

/// The parts of LOGIN7 the endpoint uses (MS-TDS 2.2.6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Client's TDS version, e.g. `0x74000004`.
    pub tds_version: u32,
    /// Requested packet size.
    pub packet_size: u32,
    /// SQL login name.
    pub user: String,
    /// Password (de-obfuscated).
    pub password: String,
    /// Requested database.
    pub database: String,
    /// Application name.
    pub app_name: String,
}

/// Parses a LOGIN7 message.
pub fn parse_login7(bytes: &[u8]) -> Result<Login, WireError> {
    let mut fixed = Reader::new(bytes, "LOGIN7");
    let length = fixed.u32()? as usize;
    if length > bytes.len() {
        return Err(WireError::Truncated {
            what: "LOGIN7",
            needed: length,
            offset: 0,
            len: bytes.len(),
        });
    }
    let tds_version = u32::from_be_bytes(fixed.u32()?.to_le_bytes());
    let packet_size = fixed.u32()?;
    fixed.take(24)?; // program version, pid, connection id, option flags, time zone, LCID
    let field = |r: &mut Reader<'_>| -> Result<(usize, usize), WireError> {
        Ok((r.u16()? as usize, r.u16()? as usize))
    };
    let host = field(&mut fixed)?;
    let user = field(&mut fixed)?;
    let password = field(&mut fixed)?;
    let app = field(&mut fixed)?;
    let _server = field(&mut fixed)?;
    let _extension = field(&mut fixed)?;
    let _library = field(&mut fixed)?;
    let _language = field(&mut fixed)?;
    let database = field(&mut fixed)?;
    let _ = host;
    let text = |(offset, chars): (usize, usize)| -> Result<String, WireError> {
        let mut r = Reader::new(bytes, "LOGIN7 string");
        r.take(offset)?;
        r.ucs2(chars)
    };
    let password = {
        let (offset, chars) = password;
        let mut r = Reader::new(bytes, "LOGIN7 password");
        r.take(offset)?;
        let raw = r.take(chars.checked_mul(2).ok_or(WireError::Invalid {
            what: "LOGIN7",
            detail: "length overflow",
        })?)?;
        // The client swapped each byte's nibbles and XORed it with 0xA5.
        let plain: Vec<u8> = raw.iter().map(|b| (b ^ 0xA5).rotate_left(4)).collect();
        decode_ucs2(&plain)
    };
    Ok(Login {
        tds_version,
        packet_size,
        user: text(user)?,
        password,
        database: text(database)?,
        app_name: text(app)?,
    })
}

/// Skips the ALL_HEADERS block that TDS 7.2+ puts before batches and RPCs.
fn skip_all_headers(r: &mut Reader<'_>) -> Result<(), WireError> {
    let total = r.u32()? as usize;
    if total < 4 {
        return Err(WireError::Invalid {
            what: "ALL_HEADERS",
            detail: "length below 4",
        });
    }
    r.take(total - 4)?;
    Ok(())
}

/// Parses an SQL batch: ALL_HEADERS then the statement text.
pub fn parse_sql_batch(bytes: &[u8]) -> Result<String, WireError> {
    let mut r = Reader::new(bytes, "SQL batch");
    skip_all_headers(&mut r)?;
    let rest = r.take(r.remaining())?;
    if rest.len() % 2 != 0 {
        return Err(WireError::Invalid {
            what: "SQL batch",
            detail: "odd UCS-2 length",
        });
    }
    Ok(decode_ucs2(rest))
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer type.
    Int(i64),
    /// `float`/`real`.
    Float(f64),
    /// Character types.
    Text(String),
}

/// One `sp_executesql` call.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteSql {
    /// The statement(s).
    pub statement: String,
    /// `@Pn`-style named parameters with their values, in call order.
    pub params: Vec<(String, Value)>,
}

const SP_EXECUTESQL: u16 = 10;

/// Parses an RPC message calling `sp_executesql` (by ID or name).
pub fn parse_rpc(bytes: &[u8]) -> Result<ExecuteSql, WireError> {
    let mut r = Reader::new(bytes, "RPC");
    skip_all_headers(&mut r)?;
    let name_len = r.u16()?;
    if name_len == 0xFFFF {
        let id = r.u16()?;
        if id != SP_EXECUTESQL {
            return Err(WireError::UnsupportedProcedure(format!("id {id}")));
        }
    } else {
        let name = r.ucs2(name_len as usize)?;
        if !name.eq_ignore_ascii_case("sp_executesql") {
            return Err(WireError::UnsupportedProcedure(name));
        }
    }
    let _options = r.u16()?;
    let mut positional = Vec::new();
    while r.remaining() > 0 {
        let name = r.b_varchar()?;
        let _status = r.u8()?;
        positional.push((name, parse_value(&mut r)?));
    }
    let mut params = positional.into_iter();
    let statement = match params.next() {
        Some((_, Value::Text(text))) => text,
        _ => {
            return Err(WireError::Invalid {
                what: "sp_executesql",
                detail: "first parameter is not the statement text",
            })
        }
    };
    // The second parameter declares the others (`@P1 nvarchar(4000), ...`); tiberius names
    // it `params`. Anything not named like a placeholder in that position is the declaration.
    let mut params: Vec<(String, Value)> = params.collect();
    if let Some((name, Value::Text(_))) = params.first() {
        if !name.starts_with("@P") || name.eq_ignore_ascii_case("@params") {
            params.remove(0);
        }
    }
    Ok(ExecuteSql { statement, params })
}

fn collation(r: &mut Reader<'_>) -> Result<(), WireError> {
    r.take(5).map(|_| ())
}

fn int_value(bytes: &[u8]) -> Result<Value, WireError> {
    Ok(Value::Int(match bytes.len() {
        1 => i64::from(bytes[0]),
        2 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
        4 => i64::from(i32::from_le_bytes(bytes.try_into().unwrap_or_default())),
        8 => i64::from_le_bytes(bytes.try_into().unwrap_or_default()),
        _ => {
            return Err(WireError::Invalid {
                what: "INTN",
                detail: "length not 1, 2, 4 or 8",
            })
        }
    }))
}

fn float_value(bytes: &[u8]) -> Result<Value, WireError> {
    Ok(Value::Float(match bytes.len() {
        4 => f64::from(f32::from_le_bytes(bytes.try_into().unwrap_or_default())),
        8 => f64::from_le_bytes(bytes.try_into().unwrap_or_default()),
        _ => {
            return Err(WireError::Invalid {
                what: "FLTN",
                detail: "length not 4 or 8",
            })
        }
    }))
}

/// Largest parameter value accepted, so a hostile length cannot make the endpoint allocate
/// without bound.
const MAX_VALUE_BYTES: usize = 1 << 20;

fn plp(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, WireError> {
    let total = r.u64()?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let chunk = r.u32()? as usize;
        if chunk == 0 {
            return Ok(Some(out));
        }
        if out.len() + chunk > MAX_VALUE_BYTES {
            return Err(WireError::Invalid {
                what: "PLP",
                detail: "value larger than 1 MiB",
            });
        }
        out.extend_from_slice(r.take(chunk)?);
    }
}

/// Parses TYPE_INFO followed by the value (MS-TDS 2.2.5.4/2.2.5.5).
pub fn parse_value(r: &mut Reader<'_>) -> Result<Value, WireError> {
    let ty = r.u8()?;
    match ty {
        // Fixed-length: INT1, BIT, INT2, INT4, INT8, FLT4, FLT8.
        0x30 | 0x32 => int_value(r.take(1)?),
        0x34 => int_value(r.take(2)?),
        0x38 => int_value(r.take(4)?),
        0x7F => int_value(r.take(8)?),
        0x3B => float_value(r.take(4)?),
        0x3E => float_value(r.take(8)?),
        // INTN, BITN, FLTN: max length byte, then length-prefixed value.
        0x26 | 0x68 | 0x6D => {
            let _max = r.u8()?;
            let len = r.u8()? as usize;
            if len == 0 {
                return Ok(Value::Null);
            }
            let bytes = r.take(len)?;
            if ty == 0x6D {
                float_value(bytes)
            } else {
                int_value(bytes)
            }
        }
        // NVARCHAR, NCHAR, BIGVARCHAR, BIGCHAR.
        0xE7 | 0xEF | 0xA7 | 0xAF => {
            let max = r.u16()?;
            collation(r)?;
            let bytes = if max == 0xFFFF {
                plp(r)?
            } else {
                match r.u16()? {
                    0xFFFF => None,
                    len => Some(r.take(len as usize)?.to_vec()),
                }
            };
            Ok(match bytes {
                None => Value::Null,
                Some(b) if ty == 0xE7 || ty == 0xEF => Value::Text(decode_ucs2(&b)),
                Some(b) => Value::Text(b.iter().map(|&c| c as char).collect()),
            })
        }
        other => Err(WireError::UnsupportedType(other)),
    }
}

/// Builds the PRELOGIN answer: server version, encryption not supported, no instance, no MARS.
pub fn prelogin_response() -> Vec<u8> {
    // (token, data); the table of 5-byte entries comes first, then the data.
    let options: [(u8, Vec<u8>); 5] = [
        (0x00, vec![16, 0, 0x10, 0x00, 0, 0]), // version 16.0.4096, sub-build 0
        (0x01, vec![0x02]),                    // ENCRYPT_NOT_SUP
        (0x02, vec![0x00]),                    // no instance name
        (0x03, vec![]),                        // thread id omitted
        (0x04, vec![0x00]),                    // no MARS
    ];
    let mut offset = (options.len() * 5 + 1) as u16;
    let mut out = Vec::new();
    for (token, data) in &options {
        out.push(*token);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        offset += data.len() as u16;
    }
    out.push(0xFF);
    for (_, data) in options {
        out.extend_from_slice(&data);
    }
    out
}

/// Client side: encodes a LOGIN7 message (for tests, fuzz seeds and test clients).
pub fn encode_login7(login: &Login) -> Vec<u8> {
    const FIXED: usize = 94;
    let utf16 = |text: &str| -> Vec<u8> {
        let mut out = Vec::new();
        put_ucs2(&mut out, text);
        out
    };
    let password: Vec<u8> = utf16(&login.password)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect();
    // host, user, password, app, server, extension, library, language, database
    let fields: [Vec<u8>; 9] = [
        utf16("test-host"),
        utf16(&login.user),
        password,
        utf16(&login.app_name),
        utf16("127.0.0.1"),
        Vec::new(),
        utf16("netboot"),
        Vec::new(),
        utf16(&login.database),
    ];
    let total = FIXED + fields.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&login.tds_version.to_be_bytes());
    out.extend_from_slice(&login.packet_size.to_le_bytes());
    out.extend_from_slice(&[0u8; 24]);
    let mut offset = FIXED;
    for field in &fields {
        out.extend_from_slice(&(offset as u16).to_le_bytes());
        out.extend_from_slice(&((field.len() / 2) as u16).to_le_bytes());
        offset += field.len();
    }
    out.extend_from_slice(&[0u8; 6]); // client ID
    for _ in 0..3 {
        out.extend_from_slice(&(offset as u16).to_le_bytes()); // SSPI, attach file, new password
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // long SSPI
    for field in fields {
        out.extend_from_slice(&field);
    }
    out
}

/// The ALL_HEADERS block with a transaction descriptor of zero and one outstanding request.
fn put_all_headers(out: &mut Vec<u8>) {
    out.extend_from_slice(&22u32.to_le_bytes());
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&1u32.to_le_bytes());
}

/// Client side: encodes an SQL batch.
pub fn encode_sql_batch(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    put_all_headers(&mut out);
    put_ucs2(&mut out, text);
    out
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(&[0x26, 8, 0]),
        Value::Int(v) => {
            out.extend_from_slice(&[0x26, 8, 8]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Float(v) => {
            out.extend_from_slice(&[0x6D, 8, 8]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Text(text) => {
            let mut bytes = Vec::new();
            put_ucs2(&mut bytes, text);
            out.push(0xE7);
            if bytes.len() <= 8000 {
                out.extend_from_slice(&8000u16.to_le_bytes());
                out.extend_from_slice(&[0u8; 5]);
                out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                out.extend_from_slice(&bytes);
            } else {
                // nvarchar(max): partially length-prefixed chunks.
                out.extend_from_slice(&0xFFFFu16.to_le_bytes());
                out.extend_from_slice(&[0u8; 5]);
                out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                for chunk in bytes.chunks(4000) {
                    out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                    out.extend_from_slice(chunk);
                }
                out.extend_from_slice(&0u32.to_le_bytes());
            }
        }
    }
}

/// Client side: encodes an `sp_executesql` RPC the way tiberius does (statement, parameter
/// declaration, then the named values).
pub fn encode_rpc(call: &ExecuteSql) -> Vec<u8> {
    let mut out = Vec::new();
    put_all_headers(&mut out);
    out.extend_from_slice(&0xFFFFu16.to_le_bytes());
    out.extend_from_slice(&SP_EXECUTESQL.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let declaration = call
        .params
        .iter()
        .map(|(name, _)| format!("{name} sql_variant"))
        .collect::<Vec<_>>()
        .join(",");
    for (name, value) in [
        ("stmt", &Value::Text(call.statement.clone())),
        ("params", &Value::Text(declaration)),
    ]
    .into_iter()
    .chain(call.params.iter().map(|(n, v)| (n.as_str(), v)))
    {
        put_b_varchar(&mut out, name);
        out.push(0); // status
        put_value(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn login_strategy() -> impl Strategy<Value = Login> {
        (
            any::<u32>(),
            any::<u32>(),
            ".{0,20}",
            ".{0,20}",
            ".{0,20}",
            ".{0,20}",
        )
            .prop_map(
                |(tds_version, packet_size, user, password, database, app_name)| Login {
                    tds_version,
                    packet_size,
                    user,
                    password,
                    database,
                    app_name,
                },
            )
    }

    fn value_strategy(long_text: bool) -> impl Strategy<Value = Value> {
        // Long enough for the nvarchar(max) chunked form.
        let long = if long_text { 4001..4100usize } else { 0..40 };
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            (-1e12f64..1e12).prop_map(Value::Float),
            ".{0,40}".prop_map(Value::Text),
            long.prop_map(|n| Value::Text("x".repeat(n))),
        ]
    }

    fn call_strategy(long_text: bool) -> impl Strategy<Value = ExecuteSql> {
        (
            ".{0,60}",
            proptest::collection::vec(value_strategy(long_text), 0..5),
        )
            .prop_map(|(statement, values)| ExecuteSql {
                statement,
                params: values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("@P{}", i + 1), v))
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn login7_round_trip(login in login_strategy()) {
            prop_assert_eq!(parse_login7(&encode_login7(&login))?, login);
        }

        #[test]
        fn login7_every_truncated_prefix_errors(login in login_strategy()) {
            let bytes = encode_login7(&login);
            for len in 0..bytes.len() {
                prop_assert!(parse_login7(&bytes[..len]).is_err(), "prefix {len} parsed");
            }
        }

        #[test]
        fn rpc_round_trip(call in call_strategy(true)) {
            prop_assert_eq!(parse_rpc(&encode_rpc(&call))?, call);
        }

        /// Parameters are self-delimiting, so a prefix may end exactly between two of them;
        /// such a prefix parses to the same statement with trailing parameters missing (only
        /// a call without parameters can lose just its optional declaration).
        #[test]
        fn rpc_truncated_prefixes_error_or_lose_parameters(call in call_strategy(false)) {
            let bytes = encode_rpc(&call);
            for len in 0..bytes.len() {
                if let Ok(partial) = parse_rpc(&bytes[..len]) {
                    prop_assert_eq!(&partial.statement, &call.statement);
                    prop_assert!(call.params.starts_with(&partial.params));
                    prop_assert!(partial.params.len() < call.params.len() || call.params.is_empty(), "prefix {} parsed whole", len);
                }
            }
        }

        #[test]
        fn sql_batch_round_trip_and_header_prefixes(text in ".{0,80}") {
            let bytes = encode_sql_batch(&text);
            prop_assert_eq!(parse_sql_batch(&bytes)?, text);
            for len in 0..22 {
                prop_assert!(parse_sql_batch(&bytes[..len]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            crate::fuzzing::parse_client_message(&bytes);
        }
    }

    #[test]
    fn ucs2_round_trip() {
        let mut out = Vec::new();
        put_ucs2(&mut out, "Grüße ✓");
        assert_eq!(decode_ucs2(&out), "Grüße ✓");
    }

    #[test]
    fn header_length_bounds() {
        assert_eq!(
            PacketHeader::parse(&[1, 1, 0, 7, 0, 0, 1, 0]),
            Err(WireError::PacketLength(7))
        );
        assert!(PacketHeader::parse(&[1, 1, 0, 8, 0, 0, 1, 0])
            .unwrap()
            .end_of_message());
    }
}
