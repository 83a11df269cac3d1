//! A private PostgreSQL server for tests: `initdb` into a temporary directory, listen on a
//! free loopback port (and a socket inside that directory), stop and delete on drop.

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

impl PgServer {
    /// Starts a server, or explains why it cannot: `Err` when the tools are missing (the caller
    /// fails under `CI` and skips otherwise).
    pub fn start() -> Result<Self, String> {
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
        let options = format!(
            "-p {port} -k {} -h 127.0.0.1 -F -c max_connections=200",
            server.dir.path().display()
        );
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

    /// Creates an empty database.
    pub async fn create_database(&self, name: &str) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
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
