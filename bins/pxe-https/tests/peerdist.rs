//! BranchCache (PeerDist) with real clients: curl sends exactly iPXE's headers; the Content
//! Information served is parsed back, every block verified against the file, and compared byte
//! for byte with an independent computation in Python (hashlib/hmac,
//! `tests/peerdist_reference.py`). Missing-data ranges and requests without PeerDist get
//! ordinary bytes; a changed file is hashed again; a restart reuses what is on disk; the boot
//! records show each PeerDist answer and each missing-data range.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{identity_query, spawn, start, Running};
use netboot_peerdist::{ContentInfoView, Version};
use netboot_records::{EventDetail, PeerDistDelivery};
use netboot_testkit::process::have_tool;

/// Two version 1.0 segments (the second one short) and 272 version 2.0 segments in two chunks.
const SIZE: usize = 32 * 1024 * 1024 + 1_000_000;
const MAC: &str = "52:54:00:00:00:07";
const IPXE: [&str; 6] = [
    "-H",
    "Accept-Encoding: peerdist",
    "-H",
    "X-P2P-PeerDist: Version=1.1",
    "-H",
    "X-P2P-PeerDistEx: MinContentInformation=1.0, MaxContentInformation=2.0",
];
/// Windows 7 BranchCache clients: PeerDist 1.0, Content Information 1.0 only.
const WINDOWS_7: [&str; 4] = [
    "-H",
    "Accept-Encoding: gzip, deflate, peerdist",
    "-H",
    "X-P2P-PeerDist: Version=1.0",
];
const CONFIG: &str = "[https]\nipxe_dir = \"\"\n\n[peerdist]\nmin_file_bytes = 1048576\n\n\
    [records]\nenabled = true\ndatabase = \"sqlite://records.db\"\n";

fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7).wrapping_add(seed) % 251) as u8)
        .collect()
}

fn tools() -> bool {
    have_tool("curl", "curl") && have_tool("python3", "python3")
}

fn server() -> Running {
    start(CONFIG, &[], |dir| {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("winpe")).unwrap();
        std::fs::write(root.join("winpe/boot.wim"), content(SIZE, 0)).unwrap();
        std::fs::write(root.join("small.bin"), content(100_000, 1)).unwrap();
    })
}

fn wim(server: &Running) -> PathBuf {
    server.dir.path().join("root/winpe/boot.wim")
}

/// Asks with `headers` until the answer is Content Information (bounded); returns it.
fn wait_for_content_information(server: &Running, headers: &[&str]) -> (String, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, head, body) = server.request(headers, "/winpe/boot.wim", true);
        assert_eq!(status, 200, "{head}");
        if head.contains("content-encoding: peerdist") {
            return (head, body);
        }
        assert_eq!(
            body.len(),
            std::fs::metadata(wim(server)).unwrap().len() as usize,
            "plain until ready"
        );
        assert!(Instant::now() < deadline, "no Content Information within 180 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Parses `info`, checks it describes all of `file` and that every block verifies.
fn verify(info: &[u8], file: &[u8], version: Version) {
    let view = ContentInfoView::parse(info).expect("Content Information parses");
    assert_eq!(view.version(), version);
    assert_eq!(view.content_range(), 0..file.len() as u64);
    assert_eq!(view.verify(file), Ok(()));
}

/// The independent computation.
fn reference(file: &Path, passphrase: &Path, version: Version) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peerdist_reference.py");
    let number = if version == Version::V1 { "1" } else { "2" };
    let output = Command::new("python3")
        .arg(script)
        .arg(file)
        .arg(passphrase)
        .arg(number)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn passphrase(server: &Running) -> PathBuf {
    server.dir.path().join("state/peerdist.secret")
}

#[test]
fn ipxe_gets_content_information_identical_to_an_independent_computation() {
    if !tools() {
        return;
    }
    let server = server();
    let file = std::fs::read(wim(&server)).unwrap();
    assert_eq!(
        server
            .request(
                &["--fail"],
                &format!("/boot.ipxe/decide?{}", identity_query(MAC)),
                true
            )
            .0,
        200
    );

    // Not computed yet: the plain file, never a wait.
    let (status, head, body) = server.request(&IPXE, "/winpe/boot.wim", true);
    assert_eq!((status, body.len()), (200, SIZE), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");

    let (head, info) = wait_for_content_information(&server, &IPXE);
    assert!(
        head.contains(&format!("x-p2p-peerdist: version=1.1, contentlength={SIZE}")),
        "{head}"
    );
    assert!(
        head.contains(&format!("content-length: {}", info.len())),
        "{head}"
    );
    verify(&info, &file, Version::V2);
    assert_eq!(
        info,
        reference(&wim(&server), &passphrase(&server), Version::V2),
        "version 2.0 differs"
    );

    // The same over HTTPS.
    let (status, head, over_tls) = server.request(&IPXE, "/winpe/boot.wim", false);
    assert_eq!((status, &over_tls), (200, &info), "{head}");

    // Version 1.0 for clients that do not accept 2.0.
    let expected_v1 = reference(&wim(&server), &passphrase(&server), Version::V1);
    let (_, head, v1) = server.request(&WINDOWS_7, "/winpe/boot.wim", true);
    assert!(
        head.contains(&format!("x-p2p-peerdist: version=1.0, contentlength={SIZE}")),
        "{head}"
    );
    verify(&v1, &file, Version::V1);
    assert_eq!(v1, expected_v1, "version 1.0 differs");
    let max_1 = IPXE.map(|h| h.replace("MaxContentInformation=2.0", "MaxContentInformation=1.0"));
    let max_1: Vec<&str> = max_1.iter().map(String::as_str).collect();
    assert_eq!(server.request(&max_1, "/winpe/boot.wim", true).2, expected_v1);

    // One block no peer had, as iPXE asks for it.
    let missing = [
        "-H",
        "X-P2P-PeerDist: Version=1.1, MissingDataRequest=true",
        "-r",
        "131072-262143",
    ];
    let (status, _, range) = server.request(&missing, "/winpe/boot.wim", true);
    assert_eq!((status, range.as_slice()), (206, &file[131_072..262_144]));

    let log = server.drain_log().join("\n");
    assert!(log.contains("PeerDist answer"), "{log}");
    assert!(log.contains("PeerDist missing-data range"), "{log}");
    let dir = server.stop();
    let deliveries = peerdist_events(&dir.path().join("records.db"));
    let content_information = PeerDistDelivery::ContentInformation {
        version: "2.0".into(),
        content_bytes: SIZE as u64,
    };
    assert!(
        deliveries.contains(&(content_information, info.len() as u64)),
        "{deliveries:?}"
    );
    assert!(
        deliveries.contains(&(PeerDistDelivery::MissingData, 131_072)),
        "{deliveries:?}"
    );
    assert!(
        deliveries.contains(&(PeerDistDelivery::NotReady, SIZE as u64)),
        "{deliveries:?}"
    );
}

/// The PeerDist events recorded for [`MAC`], with the bytes each sent.
fn peerdist_events(database: &Path) -> Vec<(PeerDistDelivery, u64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = netboot_records::Store::open_sqlite(database, Duration::from_secs(10))
            .await
            .unwrap();
        let events = store.events_of(MAC.parse().unwrap(), 1000).await.unwrap();
        events
            .into_iter()
            .filter_map(|event| match event.detail {
                EventDetail::ImageDownload(d) => Some((d.peerdist?, d.bytes)),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn requests_without_peerdist_and_small_files_get_bytes() {
    if !tools() {
        return;
    }
    let server = server();
    let file = std::fs::read(wim(&server)).unwrap();
    let (status, head, body) = server.request(&[], "/winpe/boot.wim", true);
    assert_eq!((status, body.len()), (200, SIZE));
    assert!(!head.contains("content-encoding"), "{head}");
    let (status, _, body) = server.request(&["-r", "0-99"], "/winpe/boot.wim", false);
    assert_eq!((status, body.as_slice()), (206, &file[..100]));
    // A range with iPXE's headers (not flagged missing data) is an ordinary range, and HEAD
    // is never answered with Content Information.
    wait_for_content_information(&server, &IPXE);
    let mut ranged = IPXE.to_vec();
    ranged.extend(["-r", "10-19"]);
    let (status, head, body) = server.request(&ranged, "/winpe/boot.wim", true);
    assert_eq!((status, body.as_slice()), (206, &file[10..20]), "{head}");
    let mut head_request = IPXE.to_vec();
    head_request.push("-I");
    let (_, head, _) = server.request(&head_request, "/winpe/boot.wim", true);
    assert!(
        !head.contains("content-encoding") && head.contains(&format!("content-length: {SIZE}")),
        "{head}"
    );
    // Below min_file_bytes: always bytes, never queued for hashing.
    for _ in 0..2 {
        let (status, head, body) = server.request(&IPXE, "/small.bin", true);
        assert_eq!((status, body.len()), (200, 100_000));
        assert!(!head.contains("content-encoding"), "{head}");
    }
    let log = server.drain_log().join("\n");
    assert_eq!(
        log.matches("computing PeerDist Content Information").count(),
        1,
        "{log}"
    );
}

#[test]
fn a_changed_file_is_hashed_again_and_a_restart_reuses_the_store() {
    if !tools() {
        return;
    }
    let server = server();
    wait_for_content_information(&server, &IPXE);

    // Replace the file: the stale answer is never sent, the new one describes the new bytes.
    let changed = content(3 * 1024 * 1024 + 5, 9);
    std::fs::write(wim(&server), &changed).unwrap();
    let (status, head, body) = server.request(&IPXE, "/winpe/boot.wim", true);
    assert_eq!((status, body.as_slice()), (200, changed.as_slice()), "{head}");
    let (_, info) = wait_for_content_information(&server, &IPXE);
    verify(&info, &changed, Version::V2);
    assert_eq!(info, reference(&wim(&server), &passphrase(&server), Version::V2));
    let store: Vec<_> = std::fs::read_dir(server.dir.path().join("state/peerdist"))
        .unwrap()
        .collect();
    assert_eq!(store.len(), 1, "one entry per file, replaced in place");

    // After a restart the first request is answered from disk, without hashing again.
    let dir = server.stop();
    let config = dir.path().join("netboot.toml");
    let restarted = spawn(dir, &config, &[]);
    let (status, head, again) = restarted.request(&IPXE, "/winpe/boot.wim", true);
    assert_eq!((status, &again), (200, &info), "{head}");
    let log = restarted.drain_log().join("\n");
    assert!(!log.contains("computing PeerDist Content Information"), "{log}");
}
