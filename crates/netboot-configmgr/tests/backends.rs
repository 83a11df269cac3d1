//! The fixture through both backends: SQLite directly, and SQL Server's wire protocol
//! (tiberius against the TDS test endpoint serving the same SQLite file). Every case must
//! give the expected menu, and both backends the same decision.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use netboot_configmgr::fixture::{self, Fixture};
use netboot_configmgr::*;
use netboot_core::{
    BootDecision, BootRequest, BootResolver, BootStage, BootTarget, ClientArch, ResolveError, SmbiosUuid,
};
use netboot_tds_testserver::{Credentials, TdsTestServer};

fn credentials() -> Credentials {
    Credentials {
        user: "pxe_reader".into(),
        password: "Pa55word!".into(),
        database: "CM_PS1".into(),
    }
}

fn settings(fixture: &Fixture) -> ResolverSettings {
    ResolverSettings {
        policy: Policy {
            unknown_computers: true,
            site_code: Some("PS1".into()),
            ..Policy::default()
        },
        duplicates: DuplicateIdentifiers {
            macs: ["00:15:5d:00:00:99".parse().unwrap()].into(),
            uuids: HashSet::new(),
        },
        excluded_macs: ["00:15:5d:00:0e:ee".parse().unwrap()].into(),
        bios_assume_x64: true,
        images: ImageStore {
            dir: fixture.images.clone(),
            url_prefix: "configmgr".into(),
            fetch_missing: false,
        },
        local_offset: None,
    }
}

struct Backends {
    _dir: tempfile::TempDir,
    fixture: Fixture,
    server: TdsTestServer,
    sqlite: ConfigMgrResolver,
    tds: ConfigMgrResolver,
}

async fn backends() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture::create(dir.path()).await.unwrap();
    let server = TdsTestServer::start(&fixture.database, credentials())
        .await
        .unwrap();
    let sqlite = ConfigMgrResolver::new(Arc::new(fixture.site.clone()), settings(&fixture));
    let site = TdsSite::from_ado_string(&server.ado_string(), TdsOptions::default()).unwrap();
    let tds = ConfigMgrResolver::new(Arc::new(site), settings(&fixture));
    Backends {
        _dir: dir,
        fixture,
        server,
        sqlite,
        tds,
    }
}

fn request(mac: &str, uuid: Option<&str>, arch: ClientArch) -> BootRequest {
    BootRequest::new(mac.parse().unwrap(), arch, BootStage::Ipxe)
        .with_uuid(uuid.map(|u| u.parse::<SmbiosUuid>().unwrap()))
}

fn guid(n: &str) -> String {
    format!("4c4c4544-{n}-4a10-8000-b1c04f00{n}")
}

/// `Some(entries)` for a menu, `None` for exit; `Err` for ignore.
fn summary(decision: &BootDecision) -> Result<Option<Vec<(String, char)>>, ()> {
    match decision {
        BootDecision::Boot(menu) => Ok(Some(
            menu.entries
                .iter()
                .map(|e| (e.id.clone(), e.deployment.marker()))
                .collect(),
        )),
        BootDecision::Exit { .. } => Ok(None),
        BootDecision::Ignore => Err(()),
        other => panic!("unexpected {other:?}"),
    }
}

fn menu(list: &[(&str, char)]) -> Result<Option<Vec<(String, char)>>, ()> {
    Ok(Some(list.iter().map(|(id, m)| (id.to_string(), *m)).collect()))
}

#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, BootRequest, Result<Option<Vec<(String, char)>>, ()>)> {
    use ClientArch::*;
    let g = |n: &str| guid(n);
    vec![
        (
            "one available",
            request("00:15:5d:00:00:01", Some(&g("0001")), EfiX64),
            menu(&[("PS120001", 'A')]),
        ),
        (
            "one required",
            request("00:15:5d:00:00:02", Some(&g("0002")), EfiX64),
            menu(&[("PS120002", 'R')]),
        ),
        (
            "both",
            request("00:15:5d:00:00:03", Some(&g("0003")), EfiX64),
            menu(&[("PS120002", 'R'), ("PS120001", 'A')]),
        ),
        (
            "UUID only",
            request("00:15:5d:00:00:44", Some(&g("0004")), EfiX64),
            menu(&[("PS120001", 'A')]),
        ),
        (
            "MAC only",
            request("00:15:5d:00:00:05", None, EfiX64),
            menu(&[("PS120002", 'R')]),
        ),
        (
            "required already ran",
            request("00:15:5d:00:00:06", Some(&g("0006")), EfiX64),
            menu(&[("PS120002", 'A')]),
        ),
        (
            "rules, UEFI x64",
            request("00:15:5d:00:00:07", Some(&g("0007")), EfiX64),
            menu(&[("PS120009", 'A')]),
        ),
        (
            "rules, BIOS takes x86 too",
            request("00:15:5d:00:00:07", Some(&g("0007")), X86Bios),
            menu(&[("PS120009", 'A'), ("PS120007", 'A')]),
        ),
        (
            "rules, ARM64",
            request("00:15:5d:00:00:07", Some(&g("0007")), EfiArm64),
            menu(&[("PS12000B", 'A')]),
        ),
        (
            "known, nothing deployed",
            request("00:15:5d:00:00:08", Some(&g("0008")), EfiX64),
            Ok(None),
        ),
        (
            "unknown x64 UEFI",
            request("00:15:5d:00:10:00", None, EfiX64),
            menu(&[("PS120020", 'A')]),
        ),
        (
            "unknown BIOS",
            request("00:15:5d:00:10:01", None, X86Bios),
            menu(&[("PS120020", 'A'), ("PS120021", 'A')]),
        ),
        (
            "unknown x86 UEFI",
            request("00:15:5d:00:10:02", None, EfiIa32),
            menu(&[("PS120021", 'A')]),
        ),
        (
            "unknown ARM64",
            request("00:15:5d:00:10:03", None, EfiArm64),
            Ok(None),
        ),
        (
            "unknown with a dummy UUID",
            request(
                "00:15:5d:00:10:04",
                Some("03000200-0400-0500-0006-000700080009"),
                EfiX64,
            ),
            menu(&[("PS120020", 'A')]),
        ),
        (
            "shared USB NIC, first machine",
            request("00:15:5d:00:00:99", Some(&g("0009")), EfiX64),
            menu(&[("PS120001", 'A')]),
        ),
        (
            "shared USB NIC, second machine",
            request("00:15:5d:00:00:99", Some(&g("000a")), EfiX64),
            menu(&[("PS120002", 'R')]),
        ),
        (
            "decommissioned record",
            request("00:15:5d:00:00:0b", Some(&g("000b")), EfiX64),
            menu(&[("PS120020", 'A')]),
        ),
        (
            "excluded MAC",
            request("00:15:5d:00:0e:ee", None, EfiX64),
            Err(()),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_cases_through_sqlite_and_tds_agree() {
    let b = backends().await;
    for (name, req, expected) in cases() {
        let from_sqlite = b
            .sqlite
            .resolve(&req)
            .await
            .unwrap_or_else(|e| panic!("{name}: sqlite: {e}"));
        let from_tds = b
            .tds
            .resolve(&req)
            .await
            .unwrap_or_else(|e| panic!("{name}: tds: {e:#?}"));
        assert_eq!(summary(&from_sqlite), expected, "{name} (sqlite)");
        assert_eq!(from_tds, from_sqlite, "{name}: tiberius and SQLite disagree");
    }
    assert!(b.server.queries() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_entries_point_at_files_on_this_server() {
    let b = backends().await;
    let decision = b
        .tds
        .resolve(&request(
            "00:15:5d:00:00:03",
            Some(&guid("0003")),
            ClientArch::EfiX64,
        ))
        .await
        .unwrap();
    let BootDecision::Boot(menu) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(menu.entries[0].title, "Windows 11 Enterprise (required)");
    assert_eq!(
        menu.entries[0].target,
        BootTarget::Wimboot {
            boot_wim: "configmgr/PS100004/boot.wim".into(),
            bcd: Some("configmgr/PS100004/BCD".into()),
            boot_sdi: Some("configmgr/PS100004/boot.sdi".into()),
            files: vec![],
            wimboot_args: None,
            variables: Default::default(),
        }
    );
    // ConfigMgr's own file name is accepted too.
    std::fs::rename(
        b.fixture.images.join("PS100003/boot.wim"),
        b.fixture.images.join("PS100003/boot.PS100003.wim"),
    )
    .unwrap();
    let decision = b
        .sqlite
        .resolve(&request("00:15:5d:00:10:02", None, ClientArch::EfiIa32))
        .await
        .unwrap();
    let BootDecision::Boot(menu) = decision else {
        panic!("{decision:?}")
    };
    let BootTarget::Wimboot { boot_wim, bcd, .. } = &menu.entries[0].target else {
        panic!()
    };
    assert_eq!(boot_wim, "configmgr/PS100003/boot.PS100003.wim");
    assert_eq!(bcd, &None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_last_pxe_makes_the_deployment_required_again() {
    let b = backends().await;
    let ran = request("00:15:5d:00:00:06", Some(&guid("0006")), ClientArch::EfiX64);
    assert_eq!(
        summary(&b.tds.resolve(&ran).await.unwrap()),
        menu(&[("PS120002", 'A')])
    );
    // What "Clear Required PXE Deployments" does in the site database.
    sqlx::query("DELETE FROM LastPXEAdvertisement WHERE MachineID = 16777226")
        .execute(b.fixture.site.pool())
        .await
        .unwrap();
    assert_eq!(
        summary(&b.tds.resolve(&ran).await.unwrap()),
        menu(&[("PS120002", 'R')])
    );
    assert_eq!(
        summary(&b.sqlite.resolve(&ran).await.unwrap()),
        menu(&[("PS120002", 'R')])
    );
}

/// Site rows whose deployment id or boot image PackageID carry path characters or iPXE
/// script metacharacters: left out of the menu (the machine still gets its other
/// deployments), never looked up on disk, never in a script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_in_the_site_database_reach_no_path_and_no_script() {
    let b = backends().await;
    // A boot image folder a `../evil` PackageID would reach from the image directory.
    let evil = b.fixture.images.join("../evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("boot.wim"), b"not a boot image").unwrap();
    let statements = [
        "INSERT INTO v_BootImagePackage VALUES ('../evil', 'Evil', 'x64', 1, '', ''), \
         ('PS1${x}', 'Expanding', 'x64', 1, '', '')",
        "INSERT INTO v_TaskSequencePackage VALUES ('PS1000E1', 'Escaping image', '', '../evil'), \
         ('PS1000E2', 'Expanding image', '', 'PS1${x}')",
        "INSERT INTO v_Advertisement VALUES \
         ('PS12${x}', 'Expanding id', 'PS100011', '*', 'PS100021', 262176, 8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1'), \
         ('../../PS12', 'Path id', 'PS100011', '*', 'PS100021', 262176, 8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1'), \
         ('PS12 || sh', 'Shell id', 'PS100011', '*', 'PS100021', 262176, 8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1'), \
         ('PS1200E1', 'Escaping image', 'PS1000E1', '*', 'PS100021', 262176, 8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1'), \
         ('PS1200E2', 'Expanding image', 'PS1000E2', '*', 'PS100021', 262176, 8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1')",
    ];
    for sql in statements {
        sqlx::query(sql).execute(b.fixture.site.pool()).await.unwrap();
    }
    let machine = request("00:15:5d:00:00:02", Some(&guid("0002")), ClientArch::EfiX64);
    for resolver in [&b.sqlite, &b.tds] {
        let decision = resolver.resolve(&machine).await.unwrap();
        assert_eq!(summary(&decision), menu(&[("PS120002", 'R')]));
        let mac = machine.mac;
        let script = netboot_ipxe::decision_script(&decision, &mac, &netboot_ipxe::RenderOptions::default())
            .unwrap()
            .render();
        netboot_ipxe::fuzzing::assert_safe(&script);
        for leaked in ["evil", "${x}", "PS1%24", "|| sh", ".."] {
            assert!(!script.contains(leaked), "{leaked:?} in\n{script}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_or_slow_errors_then_recovers_without_restart() {
    let b = backends().await;
    let options = TdsOptions {
        max_connections: 2,
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_millis(300),
    };
    let site = TdsSite::from_ado_string(&b.server.ado_string(), options).unwrap();
    let resolver = ConfigMgrResolver::new(Arc::new(site), settings(&b.fixture));
    let req = request("00:15:5d:00:00:01", Some(&guid("0001")), ClientArch::EfiX64);
    assert_eq!(
        summary(&resolver.resolve(&req).await.unwrap()),
        menu(&[("PS120001", 'A')])
    );

    // Slow: the query timeout gives up and drops the connection.
    b.server.set_delay(Duration::from_secs(3));
    match resolver.resolve(&req).await {
        Err(ResolveError::Unavailable {
            backend: "configmgr-sql",
            source,
        }) => {
            assert!(
                source.to_string().contains("no answer from the database"),
                "{source}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    b.server.set_delay(Duration::ZERO);

    // Down: connection refused.
    let addr = b.server.addr();
    b.server.stop();
    drop(b.server);
    let err = resolver.resolve(&req).await.unwrap_err();
    assert!(matches!(err, ResolveError::Unavailable { .. }), "{err:?}");

    // Back: the same resolver answers again.
    let server = start_on_retrying(addr, &b.fixture).await;
    assert_eq!(
        summary(&resolver.resolve(&req).await.unwrap()),
        menu(&[("PS120001", 'A')])
    );
    drop(server);
}

/// The old port can be briefly unavailable while the stopped listener is torn down.
async fn start_on_retrying(addr: std::net::SocketAddr, fixture: &Fixture) -> TdsTestServer {
    for _ in 0..50 {
        match TdsTestServer::start_on(addr, &fixture.database, credentials()).await {
            Ok(server) => return server,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("could not listen on {addr} again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_connect_error_without_the_secret() {
    let b = backends().await;
    let ado = b.server.ado_string().replace("Pa55word!", "wrong-secret");
    let site = TdsSite::from_ado_string(&ado, TdsOptions::default()).unwrap();
    let resolver = ConfigMgrResolver::new(Arc::new(site), settings(&b.fixture));
    let err = resolver
        .resolve(&request("00:15:5d:00:00:01", None, ClientArch::EfiX64))
        .await
        .unwrap_err();
    let text = format!(
        "{err} {:?}",
        std::error::Error::source(&err).map(|s| s.to_string())
    );
    assert!(text.contains("Login failed"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
}

#[tokio::test]
async fn cache_key_ignores_the_stage_but_not_the_platform() {
    let b = backends().await;
    let ipxe = request("00:15:5d:00:00:03", Some(&guid("0003")), ClientArch::EfiX64);
    let mut firmware = ipxe.clone();
    firmware.stage = BootStage::PxeFirmware;
    firmware.hardware.manufacturer = Some("QEMU".into());
    assert_eq!(b.sqlite.cache_key(&ipxe), b.sqlite.cache_key(&firmware));
    let bios = request("00:15:5d:00:00:03", Some(&guid("0003")), ClientArch::X86Bios);
    assert_ne!(b.sqlite.cache_key(&ipxe), b.sqlite.cache_key(&bios));
    let other = request("00:15:5d:00:00:04", Some(&guid("0003")), ClientArch::EfiX64);
    assert_ne!(b.sqlite.cache_key(&ipxe), b.sqlite.cache_key(&other));
}
