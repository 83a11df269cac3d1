//! The committed corpus (`testdata/configmgr/corpus`) through the fuzzing entry point,
//! so the fuzz target's code path runs on every `cargo test`.
//!
//! The corpus holds client messages captured from tiberius and FreeTDS `tsql` (`*-tiberius`,
//! `*-tsql`) plus encoder-built and malformed ones. `UPDATE_CORPUS=1 cargo test -p
//! netboot-tds-testserver --test corpus` captures the client messages again.

use std::path::{Path, PathBuf};

use netboot_tds_testserver::wire::{self, packet_type, ExecuteSql, Login, Value};
use netboot_tds_testserver::{fuzzing, read_message, tokens, write_message};
use tokio::net::TcpListener;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/configmgr/corpus")
}

/// Plays the server for one client connection and returns the messages it sent.
async fn record(listener: TcpListener) -> Vec<(u8, Vec<u8>)> {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(Some((kind, payload))) = read_message(&mut stream).await {
        let mut out = Vec::new();
        match kind {
            packet_type::PRELOGIN => out = wire::prelogin_response(),
            packet_type::LOGIN7 => {
                tokens::login_ack(&mut out);
                tokens::done(&mut out, 0, 0);
            }
            packet_type::RPC => tokens::end_of_procedure(&mut out, 0, 0),
            _ => tokens::done(&mut out, 0, 0),
        }
        seen.push((kind, payload));
        if write_message(&mut stream, packet_type::TABULAR_RESULT, &out)
            .await
            .is_err()
        {
            break;
        }
    }
    seen
}

fn name(kind: u8) -> &'static str {
    match kind {
        packet_type::PRELOGIN => "prelogin",
        packet_type::LOGIN7 => "login7",
        packet_type::RPC => "rpc",
        packet_type::SQL_BATCH => "batch",
        _ => "other",
    }
}

async fn capture_tiberius(dir: &Path) {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(record(listener));
    let ado = format!(
        "server=tcp:127.0.0.1,{};database=CM_PS1;user=pxe_reader;password=s3cret;encrypt=DANGER_PLAINTEXT",
        addr.port()
    );
    let config = tiberius::Config::from_ado_string(&ado).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap();
    let _ = client
        .query(
            "SELECT Name0 FROM v_R_System WHERE SMBIOS_GUID0 = @P1 OR ResourceID = @P2",
            &[&"4C4C4544-0001", &16777220i32],
        )
        .await;
    let _ = client.simple_query("SELECT 1").await;
    drop(client);
    for (kind, payload) in server.await.unwrap() {
        std::fs::write(dir.join(format!("{}-tiberius.bin", name(kind))), payload).unwrap();
    }
}

async fn capture_tsql(dir: &Path) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("tsql").arg("-C").output().is_err() {
        eprintln!("tsql not installed, FreeTDS messages not captured");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(record(listener));
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("tsql")
            .args([
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "pxe_reader",
                "-P",
                "s3cret",
                "-o",
                "q",
            ])
            .env("FREETDSCONF", "/dev/null")
            .env("TDSVER", "7.4")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"SELECT Name0 FROM v_R_System\ngo\nquit\n")
            .unwrap();
        child.wait().unwrap();
    })
    .await
    .unwrap();
    for (kind, payload) in server.await.unwrap() {
        std::fs::write(dir.join(format!("{}-tsql.bin", name(kind))), payload).unwrap();
    }
}

fn write_built(dir: &Path) {
    let login = Login {
        tds_version: 0x7400_0004,
        packet_size: 4096,
        user: "pxe_reader".into(),
        password: "s3cret".into(),
        database: "CM_PS1".into(),
        app_name: "netboot".into(),
    };
    std::fs::write(dir.join("login7-built.bin"), wire::encode_login7(&login)).unwrap();
    let call = ExecuteSql {
        statement: format!("SELECT 1 WHERE 'x' <> @P1{}", " ".repeat(4500)),
        params: vec![
            ("@P1".into(), Value::Text("y".repeat(4100))),
            ("@P2".into(), Value::Null),
        ],
    };
    std::fs::write(dir.join("rpc-built-plp.bin"), wire::encode_rpc(&call)).unwrap();
    let mut truncated = wire::encode_login7(&login);
    truncated.truncate(60);
    std::fs::write(dir.join("bad-login7-truncated.bin"), truncated).unwrap();
    let mut bad_type = wire::encode_rpc(&ExecuteSql {
        statement: "SELECT @P1".into(),
        params: vec![("@P1".into(), Value::Int(1))],
    });
    let at = bad_type.len() - 11; // the INTN type byte of the last parameter (type, max, len, 8 bytes)
    bad_type[at] = 0x22; // IMAGE: not a parameter type the endpoint takes
    std::fs::write(dir.join("bad-rpc-type.bin"), bad_type).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_fuzzing_entry_point() {
    let dir = corpus_dir();
    if std::env::var_os("UPDATE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        capture_tiberius(&dir).await;
        capture_tsql(&dir).await;
        write_built(&dir);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "corpus too small: {files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        fuzzing::parse_client_message(&bytes);
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let parsed = if file.starts_with("login7-") {
            wire::parse_login7(&bytes)
                .map(|l| assert_eq!(l.user, "pxe_reader", "{file}"))
                .is_ok()
        } else if file.starts_with("rpc-") {
            wire::parse_rpc(&bytes).is_ok()
        } else if file.starts_with("batch-") {
            wire::parse_sql_batch(&bytes).is_ok()
        } else if file.starts_with("bad-") {
            wire::parse_login7(&bytes).is_err() && wire::parse_rpc(&bytes).is_err()
        } else {
            true
        };
        assert!(parsed, "{file}");
    }
}
