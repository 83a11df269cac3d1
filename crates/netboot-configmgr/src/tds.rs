//! SQL Server backend through tiberius (TDS 7.3+, rustls TLS), with a small connection pool.
//!
//! Logins: SQL authentication (`user=..;password=..`), or Kerberos (`IntegratedSecurity=true`)
//! when built with the `kerberos` feature. NTLM from Linux is not available in tiberius.
//!
//! Connections are opened lazily, so a resolver can be built while the database is down;
//! a connection that fails or times out is dropped and the next lookup dials a new one, so
//! the resolver recovers without a restart when the database returns.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use futures::TryStreamExt;
use tiberius::{Client, ColumnData, Config, FromSql, Query, QueryItem, Row};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::source::{site_rows, LookupFuture, LookupKeys, RowAccess, SiteDatabase, SourceError};
use crate::sql;

type Connection = Client<Compat<TcpStream>>;

/// tiberius takes the process's default rustls provider and, when none is installed, falls
/// back to aws-lc-rs. Installing ring first (unless the program already chose one) keeps the
/// SQL Server connections on the same TLS implementation as every other connection here.
fn use_ring_for_tls() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // An `Err` means a provider is already installed: that choice stands.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Pool and timeout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdsOptions {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Limit for TCP connect plus login.
    pub connect_timeout: Duration,
    /// Limit for one lookup (waiting for a connection, the batch and reading all rows).
    pub query_timeout: Duration,
}

impl Default for TdsOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_millis(1500),
        }
    }
}

/// A SQL Server site database.
pub struct TdsSite {
    config: Config,
    server: String,
    options: TdsOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for TdsSite {
    // The tiberius config holds the password: show only where it points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdsSite")
            .field("server", &self.server)
            .field("options", &self.options)
            .finish()
    }
}

impl TdsSite {
    /// Parses an ADO.NET connection string (`server=tcp:host,1433;database=CM_PS1;
    /// user=..;password=..;encrypt=true;TrustServerCertificateCA=/path/ca.pem`) without
    /// connecting. Errors never echo the string, since it carries the password.
    pub fn from_ado_string(connection_string: &str, options: TdsOptions) -> Result<Self, SourceError> {
        let config = Config::from_ado_string(connection_string).map_err(|e| SourceError::Settings {
            detail: format!("connection string: {}", redact(&e.to_string(), connection_string)),
        })?;
        Ok(Self::from_config(config, options))
    }

    /// Uses a ready tiberius configuration.
    pub fn from_config(mut config: Config, options: TdsOptions) -> Self {
        use_ring_for_tls();
        config.application_name("netboot-configmgr");
        let server = config.get_addr();
        let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
        Self {
            config,
            server,
            options,
            idle: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// `host:port` this site connects to.
    pub fn server(&self) -> &str {
        &self.server
    }

    async fn connect(&self) -> Result<Connection, SourceError> {
        let connect_error = |e: Box<dyn std::error::Error + Send + Sync>| SourceError::Connect {
            server: self.server.clone(),
            source: e,
        };
        let attempt = async {
            let tcp = TcpStream::connect(self.config.get_addr())
                .await
                .map_err(|e| connect_error(e.into()))?;
            tcp.set_nodelay(true).map_err(|e| connect_error(e.into()))?;
            match Client::connect(self.config.clone(), tcp.compat_write()).await {
                // Azure SQL and availability-group listeners may redirect once.
                Err(tiberius::error::Error::Routing { host, port }) => {
                    let mut config = self.config.clone();
                    config.host(&host);
                    config.port(port);
                    let tcp = TcpStream::connect(config.get_addr())
                        .await
                        .map_err(|e| connect_error(e.into()))?;
                    tcp.set_nodelay(true).map_err(|e| connect_error(e.into()))?;
                    Client::connect(config, tcp.compat_write())
                        .await
                        .map_err(|e| connect_error(e.into()))
                }
                other => other.map_err(|e| connect_error(e.into())),
            }
        };
        tokio::time::timeout(self.options.connect_timeout, attempt)
            .await
            .map_err(|_| SourceError::Timeout(self.options.connect_timeout))?
    }

    async fn run(&self, keys: &LookupKeys) -> Result<Vec<Vec<Row>>, SourceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| SourceError::Query(Box::new(e)))?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let mut query = Query::new(sql::batch());
        query.bind(keys.guid.as_str());
        query.bind(keys.mac.as_str());
        query.bind(keys.cpu_type.as_str());
        let mut stream = query
            .query(&mut conn)
            .await
            .map_err(|e| SourceError::Query(Box::new(e)))?;
        // Grouped by the result-set index of each item rather than with `into_results`,
        // which loses empty result sets between non-empty ones.
        let mut sets: Vec<Vec<Row>> = Vec::with_capacity(sql::STATEMENTS.len());
        while let Some(item) = stream
            .try_next()
            .await
            .map_err(|e| SourceError::Query(Box::new(e)))?
        {
            match item {
                QueryItem::Metadata(meta) => {
                    while sets.len() <= meta.result_index() {
                        sets.push(Vec::new());
                    }
                }
                QueryItem::Row(row) => {
                    let index = row.result_index();
                    while sets.len() <= index {
                        sets.push(Vec::new());
                    }
                    sets[index].push(row);
                }
            }
        }
        drop(stream);
        // Only a connection that finished its work cleanly goes back to the pool.
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        Ok(sets)
    }
}

impl SiteDatabase for TdsSite {
    fn lookup<'a>(&'a self, keys: &'a LookupKeys) -> LookupFuture<'a> {
        Box::pin(async move {
            let sets = tokio::time::timeout(self.options.query_timeout, self.run(keys))
                .await
                .map_err(|_| SourceError::Timeout(self.options.query_timeout))??;
            site_rows(sets)
        })
    }

    fn backend(&self) -> &'static str {
        "configmgr-sql"
    }
}

/// Removes any `password=`/`pwd=` value from a message that might quote the string.
fn redact(message: &str, connection_string: &str) -> String {
    let mut message = message.to_string();
    for part in connection_string.split(';') {
        if let Some((key, value)) = part.split_once('=') {
            let key = key.trim().to_ascii_lowercase();
            if (key == "password" || key == "pwd") && !value.trim().is_empty() {
                message = message.replace(value.trim(), "***");
            }
        }
    }
    message
}

fn cell<'a>(row: &'a Row, column: &'static str) -> Result<&'a ColumnData<'static>, SourceError> {
    row.cells()
        .find(|(c, _)| c.name().eq_ignore_ascii_case(column))
        .map(|(_, data)| data)
        .ok_or(SourceError::Column {
            column,
            detail: "missing from the result".into(),
        })
}

impl RowAccess for Row {
    fn int(&self, column: &'static str) -> Result<Option<i64>, SourceError> {
        Ok(match cell(self, column)? {
            ColumnData::U8(v) => v.map(i64::from),
            ColumnData::I16(v) => v.map(i64::from),
            ColumnData::I32(v) => v.map(i64::from),
            ColumnData::I64(v) => *v,
            ColumnData::Bit(v) => v.map(i64::from),
            ColumnData::String(None) => None,
            other => {
                return Err(SourceError::Column {
                    column,
                    detail: format!("expected an integer, got {}", kind(other)),
                })
            }
        })
    }

    fn text(&self, column: &'static str) -> Result<Option<String>, SourceError> {
        Ok(match cell(self, column)? {
            ColumnData::String(v) => v.as_ref().map(|s| s.to_string()),
            ColumnData::Guid(v) => v.map(|g| g.to_string().to_ascii_uppercase()),
            ColumnData::I32(None) | ColumnData::I64(None) => None,
            other => {
                return Err(SourceError::Column {
                    column,
                    detail: format!("expected text, got {}", kind(other)),
                })
            }
        })
    }

    fn datetime(&self, column: &'static str) -> Result<Option<NaiveDateTime>, SourceError> {
        match cell(self, column)? {
            ColumnData::String(text) => self.text_datetime(column, text.as_ref().map(|s| s.to_string())),
            data => NaiveDateTime::from_sql(data).map_err(|e| SourceError::Column {
                column,
                detail: format!("expected a datetime: {e}"),
            }),
        }
    }
}

fn kind(data: &ColumnData<'_>) -> &'static str {
    match data {
        ColumnData::U8(_) | ColumnData::I16(_) | ColumnData::I32(_) | ColumnData::I64(_) => "an integer",
        ColumnData::F32(_) | ColumnData::F64(_) => "a float",
        ColumnData::Bit(_) => "a bit",
        ColumnData::String(_) => "text",
        ColumnData::Guid(_) => "a uniqueidentifier",
        ColumnData::Binary(_) => "binary",
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_server_tls_runs_on_ring() {
        TdsSite::from_ado_string(
            "server=tcp:127.0.0.1,1433;database=CM_PS1;user=u;password=p;encrypt=true",
            TdsOptions::default(),
        )
        .unwrap();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("a provider is installed");
        // ring's provider calls its random source and key loader `Ring`; aws-lc-rs's `AwsLcRs`.
        assert_eq!(format!("{:?}", provider.secure_random), "Ring");
    }
}
