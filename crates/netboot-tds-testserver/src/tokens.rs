//! Server-to-client token encoders (MS-TDS 2.2.7) and the result sets they carry.

use chrono::{NaiveDate, NaiveDateTime, Timelike};

use crate::wire::{put_b_varchar, put_ucs2, put_us_varchar};

/// Wire type of a result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// INTN with 4 bytes (`int`).
    Int,
    /// INTN with 8 bytes (`bigint`).
    BigInt,
    /// FLTN with 8 bytes (`float`).
    Float,
    /// DATETIMEN with 8 bytes (`datetime`).
    DateTime,
    /// NVARCHAR(4000).
    NVarChar,
}

/// A cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Date and time.
    DateTime(NaiveDateTime),
    /// Text.
    Text(String),
}

/// One result set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    /// Column names and types.
    pub columns: Vec<(String, ColumnType)>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

/// Token type bytes.
mod token {
    pub(super) const COLMETADATA: u8 = 0x81;
    pub(super) const ROW: u8 = 0xD1;
    pub(super) const DONE: u8 = 0xFD;
    pub(super) const DONEPROC: u8 = 0xFE;
    pub(super) const DONEINPROC: u8 = 0xFF;
    pub(super) const RETURNSTATUS: u8 = 0x79;
    pub(super) const ERROR: u8 = 0xAA;
    pub(super) const LOGINACK: u8 = 0xAD;
    pub(super) const ENVCHANGE: u8 = 0xE3;
}

/// DONE status bits.
pub mod done {
    /// More results follow.
    pub const MORE: u16 = 0x01;
    /// The statement failed.
    pub const ERROR: u16 = 0x02;
    /// The row count is valid.
    pub const COUNT: u16 = 0x10;
    /// Acknowledges an attention.
    pub const ATTENTION: u16 = 0x20;
}

/// `SQL_Latin1_General_CP1_CI_AS`, the collation sent with character columns.
const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];
/// Current command `SELECT` in DONE tokens.
const CMD_SELECT: u16 = 0xC1;

fn with_u16_length(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    body(out);
    let len = (out.len() - at - 2) as u16;
    out[at..at + 2].copy_from_slice(&len.to_le_bytes());
}

/// LOGINACK for TDS 7.4.
pub fn login_ack(out: &mut Vec<u8>) {
    out.push(token::LOGINACK);
    with_u16_length(out, |out| {
        out.push(1); // SQL_TSQL
        out.extend_from_slice(&0x7400_0004u32.to_be_bytes());
        put_b_varchar(out, "netboot-tds-testserver");
        out.extend_from_slice(&[16, 0, 0x10, 0x00]);
    });
}

/// ENVCHANGE with a text value (database = 1, language = 2, packet size = 4).
pub fn env_change(out: &mut Vec<u8>, kind: u8, new: &str, old: &str) {
    out.push(token::ENVCHANGE);
    with_u16_length(out, |out| {
        out.push(kind);
        put_b_varchar(out, new);
        put_b_varchar(out, old);
    });
}

/// ERROR token.
pub fn error(out: &mut Vec<u8>, number: i32, class: u8, message: &str) {
    out.push(token::ERROR);
    with_u16_length(out, |out| {
        out.extend_from_slice(&number.to_le_bytes());
        out.push(1); // state
        out.push(class);
        put_us_varchar(out, message);
        put_b_varchar(out, "netboot-tds-testserver");
        put_b_varchar(out, "");
        out.extend_from_slice(&1i32.to_le_bytes());
    });
}

fn done_token(out: &mut Vec<u8>, kind: u8, status: u16, rows: u64) {
    out.push(kind);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&CMD_SELECT.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
}

/// DONE (end of a batch statement).
pub fn done(out: &mut Vec<u8>, status: u16, rows: u64) {
    done_token(out, token::DONE, status, rows);
}

/// DONEINPROC (end of a statement inside a procedure).
pub fn done_in_proc(out: &mut Vec<u8>, status: u16, rows: u64) {
    done_token(out, token::DONEINPROC, status, rows);
}

/// RETURNSTATUS then DONEPROC: the end of an RPC.
pub fn end_of_procedure(out: &mut Vec<u8>, return_status: i32, status: u16) {
    out.push(token::RETURNSTATUS);
    out.extend_from_slice(&return_status.to_le_bytes());
    done_token(out, token::DONEPROC, status, 0);
}

/// COLMETADATA then one ROW per row.
pub fn result_set(out: &mut Vec<u8>, set: &ResultSet) -> Result<(), String> {
    out.push(token::COLMETADATA);
    out.extend_from_slice(&(set.columns.len() as u16).to_le_bytes());
    for (name, ty) in &set.columns {
        out.extend_from_slice(&0u32.to_le_bytes()); // user type
        out.extend_from_slice(&0x0001u16.to_le_bytes()); // nullable
        match ty {
            ColumnType::Int => out.extend_from_slice(&[0x26, 4]),
            ColumnType::BigInt => out.extend_from_slice(&[0x26, 8]),
            ColumnType::Float => out.extend_from_slice(&[0x6D, 8]),
            ColumnType::DateTime => out.extend_from_slice(&[0x6F, 8]),
            ColumnType::NVarChar => {
                out.push(0xE7);
                out.extend_from_slice(&8000u16.to_le_bytes());
                out.extend_from_slice(&COLLATION);
            }
        }
        put_b_varchar(out, name);
    }
    for row in &set.rows {
        out.push(token::ROW);
        for ((name, ty), cell) in set.columns.iter().zip(row) {
            cell_value(out, *ty, cell).map_err(|e| format!("column {name}: {e}"))?;
        }
    }
    Ok(())
}

fn cell_value(out: &mut Vec<u8>, ty: ColumnType, cell: &Cell) -> Result<(), String> {
    match (ty, cell) {
        (ColumnType::NVarChar, Cell::Null) => out.extend_from_slice(&0xFFFFu16.to_le_bytes()),
        (_, Cell::Null) => out.push(0),
        (ColumnType::Int, Cell::Int(v)) => {
            let v = i32::try_from(*v).map_err(|_| format!("{v} does not fit an int"))?;
            out.push(4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        (ColumnType::BigInt, Cell::Int(v)) => {
            out.push(8);
            out.extend_from_slice(&v.to_le_bytes());
        }
        (ColumnType::Float, Cell::Float(v)) => {
            out.push(8);
            out.extend_from_slice(&v.to_le_bytes());
        }
        (ColumnType::Float, Cell::Int(v)) => {
            out.push(8);
            out.extend_from_slice(&(*v as f64).to_le_bytes());
        }
        (ColumnType::DateTime, Cell::DateTime(t)) => {
            let (days, ticks) = datetime_parts(t)?;
            out.push(8);
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&ticks.to_le_bytes());
        }
        (ColumnType::NVarChar, value) => {
            let text = match value {
                Cell::Text(t) => t.clone(),
                Cell::Int(v) => v.to_string(),
                Cell::Float(v) => v.to_string(),
                Cell::DateTime(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
                Cell::Null => unreachable!("handled above"),
            };
            let mut bytes = Vec::new();
            put_ucs2(&mut bytes, &text);
            if bytes.len() > 8000 {
                return Err("text longer than nvarchar(4000)".into());
            }
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        (ty, cell) => return Err(format!("{cell:?} cannot be sent as {ty:?}")),
    }
    Ok(())
}

/// `datetime` on the wire: days since 1900-01-01 and 1/300-second ticks since midnight.
pub fn datetime_parts(t: &NaiveDateTime) -> Result<(i32, u32), String> {
    let epoch = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");
    let days = i32::try_from((t.date() - epoch).num_days()).map_err(|_| "date out of range".to_string())?;
    let millis = u64::from(t.num_seconds_from_midnight()) * 1000 + u64::from(t.nanosecond() / 1_000_000);
    let ticks = (millis * 300).div_ceil(1000);
    Ok((days, ticks as u32))
}
