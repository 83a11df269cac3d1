//! The listener and one task per client connection.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::exec::{Database, StatementResult};
use crate::tokens::{self, done};
use crate::wire::{self, packet_type, PacketHeader, HEADER_LEN};

/// The SQL login the endpoint accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database name announced after login (clients may ask for it or for none).
    pub database: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Packet size the endpoint announces and uses for its answers.
const PACKET_SIZE: usize = 4096;
/// Largest client message accepted (LOGIN7 and queries are far smaller).
const MAX_MESSAGE: usize = 4 << 20;

#[derive(Debug)]
struct Shared {
    database: PathBuf,
    credentials: Credentials,
    queries: AtomicU64,
    delay_ms: AtomicU64,
}

/// A running TDS endpoint on a loopback port.
#[derive(Debug)]
pub struct TdsTestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl TdsTestServer {
    /// Serves `database` (a SQLite file, opened read-only per connection) on an ephemeral
    /// port of 127.0.0.1.
    pub async fn start(database: impl Into<PathBuf>, credentials: Credentials) -> io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), database, credentials).await
    }

    /// Serves on `addr` (to restart on the port of a stopped endpoint).
    pub async fn start_on(
        addr: SocketAddr,
        database: impl Into<PathBuf>,
        credentials: Credentials,
    ) -> io::Result<Self> {
        let database = database.into();
        Database::open(&database).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            database,
            credentials,
            queries: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
        });
        let (shutdown, stop) = watch::channel(false);
        tokio::spawn(accept_loop(listener, shared.clone(), stop));
        tracing::info!("tds test endpoint listening on {addr}");
        Ok(Self {
            addr,
            shared,
            shutdown,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SQL batches and RPCs answered so far (logins not counted).
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::SeqCst)
    }

    /// Delays every query answer, to play a slow database.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// An ADO.NET connection string for tiberius (plaintext: the endpoint has no TLS).
    pub fn ado_string(&self) -> String {
        let c = &self.shared.credentials;
        format!(
            "server=tcp:{},{};database={};user={};password={};encrypt=DANGER_PLAINTEXT;TrustServerCertificate=true",
            self.addr.ip(),
            self.addr.port(),
            c.database,
            c.user,
            c.password
        )
    }

    /// Stops listening and closes every open connection.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for TdsTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let shared = shared.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.changed() => {}
                        result = session(stream, shared) => {
                            if let Err(e) = result {
                                tracing::debug!(%peer, error = %e, "tds session ended");
                            }
                        }
                    }
                });
            }
        }
    }
}

/// Reads one whole message (all packets up to end-of-message); `None` at a clean EOF.
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut payload = Vec::new();
    let mut kind = None;
    loop {
        let mut header = [0u8; HEADER_LEN];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && kind.is_none() => return Ok(None),
            Err(e) => return Err(e),
        }
        let header =
            PacketHeader::parse(&header).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let body_len = header.length as usize - HEADER_LEN;
        if payload.len() + body_len > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message larger than 4 MiB",
            ));
        }
        let start = payload.len();
        payload.resize(start + body_len, 0);
        stream.read_exact(&mut payload[start..]).await?;
        kind.get_or_insert(header.kind);
        if header.end_of_message() {
            return Ok(kind.map(|k| (k, payload)));
        }
    }
}

/// Writes `payload` as one message of `kind`, split into packets of the announced size.
pub async fn write_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    kind: u8,
    payload: &[u8],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN * (payload.len() / PACKET_SIZE + 1));
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(PACKET_SIZE - HEADER_LEN).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let length = (chunk.len() + HEADER_LEN) as u16;
        out.push(kind);
        out.push(if i == last { 0x01 } else { 0x00 });
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&[0, 0, (i + 1) as u8, 0]);
        out.extend_from_slice(chunk);
    }
    stream.write_all(&out).await?;
    stream.flush().await
}

async fn session(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut database: Option<Arc<Mutex<Database>>> = None;
    while let Some((kind, payload)) = read_message(&mut stream).await? {
        let mut out = Vec::new();
        match kind {
            packet_type::PRELOGIN => out = wire::prelogin_response(),
            packet_type::LOGIN7 => {
                let accepted = login(&payload, &shared, &mut out);
                if accepted {
                    let db = Database::open(&shared.database).map_err(io::Error::other)?;
                    database = Some(Arc::new(Mutex::new(db)));
                } else {
                    write_message(&mut stream, packet_type::TABULAR_RESULT, &out).await?;
                    return Ok(());
                }
            }
            packet_type::SQL_BATCH | packet_type::RPC => {
                let Some(db) = database.clone() else {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "query before login",
                    ));
                };
                shared.queries.fetch_add(1, Ordering::SeqCst);
                let delay = shared.delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                out = answer(kind, payload, db).await;
            }
            packet_type::ATTENTION => tokens::done(&mut out, done::ATTENTION, 0),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected packet type 0x{other:02x}"),
                ));
            }
        }
        write_message(&mut stream, packet_type::TABULAR_RESULT, &out).await?;
    }
    Ok(())
}

fn login(payload: &[u8], shared: &Shared, out: &mut Vec<u8>) -> bool {
    let creds = &shared.credentials;
    match wire::parse_login7(payload) {
        Ok(login)
            if login.user == creds.user
                && login.password == creds.password
                && (login.database.is_empty() || login.database.eq_ignore_ascii_case(&creds.database)) =>
        {
            tokens::env_change(out, 1, &creds.database, "master");
            tokens::env_change(out, 4, &PACKET_SIZE.to_string(), &PACKET_SIZE.to_string());
            tokens::login_ack(out);
            tokens::done(out, 0, 0);
            true
        }
        Ok(login) => {
            tokens::error(
                out,
                18456,
                14,
                &format!("Login failed for user '{}'.", login.user),
            );
            tokens::done(out, done::ERROR, 0);
            false
        }
        Err(e) => {
            tokens::error(
                out,
                4002,
                16,
                &format!("The incoming tabular data stream (TDS) is incorrect: {e}"),
            );
            tokens::done(out, done::ERROR, 0);
            false
        }
    }
}

async fn answer(kind: u8, payload: Vec<u8>, db: Arc<Mutex<Database>>) -> Vec<u8> {
    let rpc = kind == packet_type::RPC;
    let request = if rpc {
        wire::parse_rpc(&payload).map(|call| (call.statement, call.params))
    } else {
        wire::parse_sql_batch(&payload).map(|text| (text, Vec::new()))
    };
    let mut out = Vec::new();
    let (text, params) = match request {
        Ok(request) => request,
        Err(e) => {
            tokens::error(
                &mut out,
                4002,
                16,
                &format!("The incoming tabular data stream (TDS) is incorrect: {e}"),
            );
            finish_failed(&mut out, rpc);
            return out;
        }
    };
    let results = tokio::task::spawn_blocking(move || {
        let db = db.lock().unwrap_or_else(|p| p.into_inner());
        db.execute(&text, &params)
    })
    .await
    .unwrap_or_else(|e| Err(format!("query task failed: {e}")));
    match results.and_then(|results| encode_results(&results, rpc)) {
        Ok(encoded) => encoded,
        Err(message) => {
            tokens::error(&mut out, 50000, 16, &message);
            finish_failed(&mut out, rpc);
            out
        }
    }
}

fn finish_failed(out: &mut Vec<u8>, rpc: bool) {
    if rpc {
        tokens::end_of_procedure(out, 1, done::ERROR);
    } else {
        tokens::done(out, done::ERROR, 0);
    }
}

fn encode_results(results: &[StatementResult], rpc: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (i, result) in results.iter().enumerate() {
        let more = if rpc || i + 1 < results.len() {
            done::MORE
        } else {
            0
        };
        let (status, rows) = match result {
            Some(set) => {
                tokens::result_set(&mut out, set)?;
                (done::COUNT | more, set.rows.len() as u64)
            }
            None => (more, 0),
        };
        if rpc {
            tokens::done_in_proc(&mut out, status, rows);
        } else {
            tokens::done(&mut out, status, rows);
        }
    }
    if rpc {
        tokens::end_of_procedure(&mut out, 0, 0);
    } else if results.is_empty() {
        tokens::done(&mut out, 0, 0);
    }
    Ok(out)
}
