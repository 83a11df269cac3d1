//! Runs T-SQL text against SQLite: splits the batch into statements, rewrites `@Pn` to
//! `?n`, binds the parameters and chooses a TDS type per column from SQLite's declared
//! column type (or from the values, for computed columns).

use std::path::Path;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::tokens::{Cell, ColumnType, ResultSet};
use crate::wire::Value;

/// Most rows one statement may return; the fixture is small, this only stops runaway joins.
const MAX_ROWS: usize = 100_000;

/// A read-only SQLite connection.
#[derive(Debug)]
pub struct Database {
    conn: Connection,
}

/// Result of one statement: rows, or nothing for `SET`/`USE` statements.
pub(crate) type StatementResult = Option<ResultSet>;

impl Database {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Self { conn })
    }

    /// Runs every statement of `batch` with `params` (named `@Pn`, or positional when
    /// unnamed); stops at the first error.
    pub fn execute(&self, batch: &str, params: &[(String, Value)]) -> Result<Vec<StatementResult>, String> {
        let mut values: Vec<SqlValue> = Vec::new();
        for (position, (name, value)) in params.iter().enumerate() {
            let index = name
                .strip_prefix("@P")
                .or_else(|| name.strip_prefix("@p"))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(position + 1);
            if index == 0 || index > 2100 {
                return Err(format!("parameter {name} is out of range"));
            }
            if values.len() < index {
                values.resize(index, SqlValue::Null);
            }
            values[index - 1] = match value {
                Value::Null => SqlValue::Null,
                Value::Int(v) => SqlValue::Integer(*v),
                Value::Float(v) => SqlValue::Real(*v),
                Value::Text(t) => SqlValue::Text(t.clone()),
            };
        }
        split_statements(batch)
            .into_iter()
            .map(|s| self.statement(s, &values))
            .collect()
    }

    fn statement(&self, text: &str, values: &[SqlValue]) -> Result<StatementResult, String> {
        let first_word = text.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        if first_word == "SET" || first_word == "USE" {
            return Ok(None);
        }
        let sql = placeholders_to_sqlite(text);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| e.to_string())?;
        for index in 1..=stmt.parameter_count() {
            let value = values.get(index - 1).cloned().unwrap_or(SqlValue::Null);
            stmt.raw_bind_parameter(index, value).map_err(|e| e.to_string())?;
        }
        let declared: Vec<(String, Option<String>)> = stmt
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.decl_type().map(str::to_ascii_uppercase)))
            .collect();
        let mut rows = Vec::new();
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next().map_err(|e| e.to_string())? {
            if rows.len() == MAX_ROWS {
                return Err(format!("more than {MAX_ROWS} rows"));
            }
            let mut cells = Vec::with_capacity(declared.len());
            for (index, (name, _)) in declared.iter().enumerate() {
                cells.push(match row.get_ref(index).map_err(|e| e.to_string())? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Float(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => return Err(format!("column {name} holds a blob")),
                });
            }
            rows.push(cells);
        }
        let mut columns = Vec::with_capacity(declared.len());
        for (index, (name, decl)) in declared.into_iter().enumerate() {
            let ty = column_type(decl.as_deref(), rows.iter().map(|r| &r[index]));
            if ty == ColumnType::DateTime {
                for row in &mut rows {
                    row[index] = to_datetime(&row[index]).map_err(|e| format!("column {name}: {e}"))?;
                }
            }
            columns.push((name, ty));
        }
        Ok(Some(ResultSet { columns, rows }))
    }
}

fn column_type<'a>(declared: Option<&str>, values: impl Iterator<Item = &'a Cell>) -> ColumnType {
    let values: Vec<&Cell> = values.filter(|c| !matches!(c, Cell::Null)).collect();
    let fits_int = values.iter().all(|c| match c {
        Cell::Int(v) => i32::try_from(*v).is_ok(),
        _ => true,
    });
    let int = if fits_int {
        ColumnType::Int
    } else {
        ColumnType::BigInt
    };
    match declared {
        Some(d) if d.contains("DATE") || d.contains("TIME") => ColumnType::DateTime,
        Some(d) if d.contains("BIGINT") => ColumnType::BigInt,
        Some(d) if d.contains("INT") || d == "BIT" => int,
        Some(d) if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") => ColumnType::Float,
        Some(_) => ColumnType::NVarChar,
        // Computed column: decide from what came back (all NULL or no rows: int).
        None if values.iter().all(|c| matches!(c, Cell::Int(_))) => int,
        None if values.iter().all(|c| matches!(c, Cell::Int(_) | Cell::Float(_))) => ColumnType::Float,
        None => ColumnType::NVarChar,
    }
}

fn to_datetime(cell: &Cell) -> Result<Cell, String> {
    match cell {
        Cell::Null | Cell::DateTime(_) => Ok(cell.clone()),
        Cell::Text(t) => {
            for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
                if let Ok(v) = chrono::NaiveDateTime::parse_from_str(t.trim(), format) {
                    return Ok(Cell::DateTime(v));
                }
            }
            chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(Cell::DateTime)
                .ok_or_else(|| format!("{t:?} is not a date"))
        }
        other => Err(format!("{other:?} is not a date")),
    }
}

/// Splits a batch at `;` outside quotes and brackets, dropping empty statements.
pub(crate) fn split_statements(batch: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    for (i, ch) in batch.char_indices() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (None, '[') => quote = Some(']'),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                out.push(&batch[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&batch[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Rewrites `@Pn` to `?n`.
pub(crate) fn placeholders_to_sqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("@P") {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 2..].chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            out.push_str("@P");
        } else {
            out.push('?');
            out.push_str(&digits);
        }
        rest = &rest[at + 2 + digits.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(
            split_statements("SELECT 'a;b'; SELECT [x;y] ;; "),
            vec!["SELECT 'a;b'", "SELECT [x;y]"]
        );
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            placeholders_to_sqlite("a = @P12 AND b = @Px"),
            "a = ?12 AND b = @Px"
        );
    }
}
