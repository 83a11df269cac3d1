//! A TDS (SQL Server wire protocol) endpoint for tests, answering from a SQLite database.
//!
//! No SQL Server can run on the development and CI machines, yet the SQL Server path of the
//! ConfigMgr resolver (tiberius) must be exercised end to end. This endpoint speaks enough of
//! TDS 7.4 for tiberius and FreeTDS:
//!
//! - PRELOGIN (answering "encryption not supported": clients must allow plaintext, e.g.
//!   tiberius `encrypt=DANGER_PLAINTEXT`);
//! - LOGIN7 with SQL authentication → ENVCHANGE (database, packet size), LOGINACK, DONE, or
//!   error 18456 for a wrong login;
//! - SQL batches and `sp_executesql` RPCs (the way tiberius sends parameterised queries),
//!   with INT/BIGINT/BIT/FLOAT/NVARCHAR/VARCHAR parameters;
//! - results as COLMETADATA + ROW + DONE/DONEINPROC/DONEPROC with `int`, `bigint`, `float`,
//!   `datetime` and `nvarchar` columns, and ERROR tokens for failing statements.
//!
//! Each query's `@Pn` placeholders become SQLite `?n`; the column types come from the
//! SQLite declared types (`INTEGER` → `int`, `DATETIME` → `datetime`, `TEXT` → `nvarchar`).
//! It is a test double: no TLS, one SQL login, read-only. It is not shipped.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use netboot_tds_testserver::{Credentials, TdsTestServer};
//! let creds = Credentials { user: "pxe".into(), password: "secret".into(), database: "CM_PS1".into() };
//! let server = TdsTestServer::start("fixture.sqlite", creds).await?;
//! println!("connect with: {}", server.ado_string());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod exec;
mod server;
pub mod tokens;
pub mod wire;

pub use exec::Database;
pub use server::{read_message, write_message, Credentials, TdsTestServer};

/// Entry points for the fuzz targets and the corpus test.
#[doc(hidden)]
pub mod fuzzing {
    /// Feeds `data` to every client-message parser; none may panic.
    pub fn parse_client_message(data: &[u8]) {
        let _ = crate::wire::parse_login7(data);
        let _ = crate::wire::parse_sql_batch(data);
        let _ = crate::wire::parse_rpc(data);
        if let Ok(header) =
            <&[u8; crate::wire::HEADER_LEN]>::try_from(data.get(..crate::wire::HEADER_LEN).unwrap_or(&[]))
        {
            let _ = crate::wire::PacketHeader::parse(header);
        }
    }
}
