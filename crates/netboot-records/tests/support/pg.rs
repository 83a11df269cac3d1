//! A private PostgreSQL server for tests: `initdb` into a temporary directory, listen on a
//! free loopback port (and a socket inside that directory), stop and delete on drop.
//! [`PgServer::start_tls`] starts one with `ssl = on` that refuses TCP clients without TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

use netboot_testkit::net::unused_loopback_port;
use netboot_testkit::process::{running_as_root, skip_or_fail};

/// A running throw-away PostgreSQL server.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
}

fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// The server's TLS identity: PEM certificate chain and PEM private key.
#[allow(dead_code)]
pub struct ServerTls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl PgServer {
    /// Starts a server, or explains why it cannot: `Err` when the tools are missing (the caller
    /// fails under `CI` and skips otherwise).
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Starts a server with `ssl = on` presenting `tls`, whose `pg_hba.conf` accepts TCP
    /// connections only over TLS (`hostnossl ... reject`), so a client that connects has used it.
    #[allow(dead_code)]
    pub fn start_tls(tls: &ServerTls<'_>) -> Result<Self, String> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls<'_>>) -> Result<Self, String> {
        let bin = find_bin().ok_or("PostgreSQL server binaries not found (apt-get install postgresql)")?;
        // initdb refuses to run as root; run the server as the `postgres` user then.
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("netboot-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if as_postgres_user {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("chown of the data directory to postgres failed (no postgres user?)".into());
            }
        }
        let port = unused_loopback_port();
        let server = Self {
            bin,
            dir,
            port,
            as_postgres_user,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        let mut options = format!(
            "-p {port} -k {} -h 127.0.0.1 -F -c max_connections=200",
            server.dir.path().display()
        );
        if let Some(tls) = tls {
            options.push_str(&server.enable_tls(tls)?);
        }
        let log = server.dir.path().join("server.log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )?;
        Ok(server)
    }

    /// Writes the certificate, key and a TLS-only `pg_hba.conf`; returns the server options
    /// that use them.
    fn enable_tls(&self, tls: &ServerTls<'_>) -> Result<String, String> {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.dir.path().join("server.crt");
        let key = self.dir.path().join("server.key");
        let hba = self.dir.path().join("pg_hba.conf");
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&cert, tls.cert_pem)?;
        write(&key, tls.key_pem)?;
        write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )?;
        // PostgreSQL refuses a key that others can read, or that its user does not own.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        if self.as_postgres_user {
            let status = Command::new("chown")
                .arg("postgres:")
                .args([&cert, &key, &hba])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("chown of the TLS files to postgres failed".into());
            }
        }
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c hba_file={}",
            cert.display(),
            key.display(),
            hba.display()
        ))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            Err(format!(
                "{tool} failed: {}\n{}\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Connection URL of `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database (through the server's Unix socket, which needs no TLS).
    pub async fn create_database(&self, name: &str) {
        use sqlx::Connection;
        let options = sqlx::postgres::PgConnectOptions::new()
            .socket(self.dir.path())
            .port(self.port)
            .username("postgres")
            .database("postgres");
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connecting to the test server");
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("CREATE DATABASE");
        admin.close().await.ok();
    }

    /// The directory holding the data and the log.
    #[allow(dead_code)]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        if let Err(e) = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
        ) {
            eprintln!("stopping the test PostgreSQL server: {e}");
        }
    }
}

/// Starts a server, or returns `None` (skipping) outside CI when that is impossible.
pub fn start_or_skip() -> Option<PgServer> {
    match PgServer::start() {
        Ok(server) => Some(server),
        Err(reason) => {
            skip_or_fail(&format!("PostgreSQL test server: {reason}"));
            None
        }
    }
}
