//! Independent clients against the endpoint: tiberius (parameterised RPC, several result
//! sets, types) and FreeTDS `tsql` (Debian `freetds-bin`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures::TryStreamExt;
use netboot_tds_testserver::{Credentials, TdsTestServer};
use netboot_testkit::process::have_tool;
use tiberius::{Client, Config, Query, QueryItem};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

fn credentials() -> Credentials {
    Credentials {
        user: "pxe_reader".into(),
        password: "s3cret".into(),
        database: "CM_PS1".into(),
    }
}

/// The repository fixture built with the same migrations the resolver uses.
fn fixture(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/configmgr/migrations");
    let mut files: Vec<_> = std::fs::read_dir(&migrations)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        conn.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
    }
    path
}

async fn client(server: &TdsTestServer) -> Client<tokio_util::compat::Compat<TcpStream>> {
    let config = Config::from_ado_string(&server.ado_string()).unwrap();
    let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
    Client::connect(config, tcp.compat_write()).await.unwrap()
}

#[tokio::test]
async fn tiberius_reads_typed_columns_and_several_result_sets() {
    let dir = tempfile::tempdir().unwrap();
    let server = TdsTestServer::start(fixture(dir.path()), credentials())
        .await
        .unwrap();
    let mut client = client(&server).await;

    let mut query = Query::new(
        "SELECT ResourceID, Name0, Obsolete0 FROM v_R_System WHERE ResourceID = @P1; \
         SELECT Name0 FROM v_R_System WHERE Name0 = @P2; \
         SELECT AdvertisementID, PresentTime, AdvertFlags FROM v_Advertisement WHERE AdvertisementID = @P2 OR AdvertisementID = 'PS120002'",
    );
    query.bind(16777221i32);
    query.bind("nobody");
    let mut stream = query.query(&mut client).await.unwrap();
    let mut sets: Vec<Vec<tiberius::Row>> = Vec::new();
    while let Some(item) = stream.try_next().await.unwrap() {
        match item {
            QueryItem::Metadata(meta) => {
                assert_eq!(meta.result_index(), sets.len());
                sets.push(Vec::new());
            }
            QueryItem::Row(row) => sets.last_mut().unwrap().push(row),
        }
    }
    drop(stream);
    assert_eq!(sets.len(), 3, "an empty result set keeps its place");
    assert_eq!(sets[0][0].get::<i32, _>("ResourceID"), Some(16777221));
    assert_eq!(sets[0][0].get::<&str, _>("Name0"), Some("PC-REQ"));
    assert_eq!(sets[0][0].get::<i32, _>("Obsolete0"), Some(0));
    assert!(sets[1].is_empty());
    let start: chrono::NaiveDateTime = sets[2][0].get("PresentTime").unwrap();
    assert_eq!(start.to_string(), "2024-01-01 08:00:00");
    assert_eq!(sets[2][0].get::<i32, _>("AdvertFlags"), Some(262176));

    // A long statement travels as nvarchar(max) (PLP chunks) and an SQL error comes back as one.
    let padding = " ".repeat(5000);
    let rows = client
        .query(format!("SELECT COUNT(*) AS n FROM v_R_System{padding}"), &[])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows[0].get::<i32, _>("n"), Some(12));
    let err = match client.simple_query("SELECT * FROM no_such_view").await {
        Err(e) => e,
        Ok(stream) => stream.into_results().await.unwrap_err(),
    };
    assert!(err.to_string().contains("no such table"), "{err}");
    // The connection stays usable after an error.
    let rows = client
        .simple_query("SELECT 1 AS one")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows[0].get::<i32, _>("one"), Some(1));
    assert_eq!(server.queries(), 4);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TdsTestServer::start(fixture(dir.path()), credentials())
        .await
        .unwrap();
    let mut config = Config::from_ado_string(&server.ado_string()).unwrap();
    config.authentication(tiberius::AuthMethod::sql_server("pxe_reader", "guess"));
    let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
    let err = Client::connect(config, tcp.compat_write()).await.unwrap_err();
    assert!(
        err.to_string().contains("Login failed for user 'pxe_reader'"),
        "{err}"
    );
}

/// FreeTDS, a C implementation written without our code in view, must log in and read rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freetds_tsql_reads_the_fixture() {
    if !have_tool("tsql", "freetds-bin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TdsTestServer::start(fixture(dir.path()), credentials())
        .await
        .unwrap();
    let addr = server.addr();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("tsql")
            .args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-U", "pxe_reader", "-P", "s3cret"])
            .args(["-D", "CM_PS1", "-o", "q"])
            // No user or system freetds.conf may change the outcome.
            .env("FREETDSCONF", "/dev/null")
            .env("TDSVER", "7.4")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let sql = "SELECT ResourceID, Name0, SMBIOS_GUID0 FROM v_R_System WHERE ResourceID IN (16777220, 16777224) ORDER BY ResourceID\ngo\n\
                   SELECT AdvertisementID, ExpirationTime FROM v_Advertisement WHERE AdvertisementID = 'PS120003'\ngo\nquit\n";
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tsql failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("16777220\tPC-AVAIL\t4C4C4544-0001-4A10-8000-B1C04F000001"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("16777224\tPC-MACONLY\tNULL"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("PS120003\tJan  1 2021 12:00AM"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(server.queries(), 2);
}
