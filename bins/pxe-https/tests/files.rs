//! Static boot files over HTTPS and plain HTTP: traversal, HEAD, validators and ranges.

mod common;

use common::{start, Running};
use netboot_testkit::process::have_tool;

const SIZE: usize = 100_000;

fn content() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

fn server() -> Running {
    start("", &[], |dir| {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("winpe")).unwrap();
        std::fs::write(root.join("winpe/boot.wim"), content()).unwrap();
        std::fs::write(root.join(".hidden"), b"secret").unwrap();
        std::fs::write(dir.join("outside.txt"), b"outside the root").unwrap();
        std::os::unix::fs::symlink(dir.join("outside.txt"), root.join("escape.txt")).unwrap();
        std::fs::write(root.join("empty.bin"), b"").unwrap();
    })
}

/// Status, headers and body of one request.
fn request(server: &Running, args: &[&str], path: &str, plain_http: bool) -> (u16, String, Vec<u8>) {
    server.request(args, path, plain_http)
}

#[test]
fn files_are_served_whole_over_https_and_http() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    for plain in [false, true] {
        let (status, headers, body) = request(&server, &[], "/winpe/boot.wim", plain);
        assert_eq!(status, 200);
        assert_eq!(body, content());
        assert!(headers.contains(&format!("content-length: {SIZE}")), "{headers}");
        assert!(
            headers.contains("accept-ranges: bytes") && headers.contains("last-modified:"),
            "{headers}"
        );
    }
}

#[test]
fn traversal_and_hidden_files_are_refused() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    for path in [
        "/../outside.txt",
        "/winpe/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/winpe/%2E%2E%2F%2E%2E%2Foutside.txt",
        "/..%5coutside.txt",
        "/escape.txt",
        "/.hidden",
        "/winpe%00/boot.wim",
        "/winpe/",
        "/missing",
    ] {
        for plain in [false, true] {
            let (status, _, body) = request(&server, &[], path, plain);
            assert_eq!(status, 404, "{path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("outside the root") && !body.starts_with(b"secret"),
                "{path}"
            );
        }
    }
    let (status, headers, _) = request(&server, &["-X", "DELETE"], "/winpe/boot.wim", false);
    assert_eq!(status, 405);
    assert!(headers.contains("allow: get, head"), "{headers}");
}

#[test]
fn head_and_conditional_requests() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let (status, headers, body) = request(&server, &["-I"], "/winpe/boot.wim", true);
    assert_eq!(status, 200);
    assert!(body.is_empty() || String::from_utf8_lossy(&body).starts_with("HTTP/"));
    assert!(headers.contains(&format!("content-length: {SIZE}")), "{headers}");
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_owned();
    // HTTP dates are case-sensitive, so take this one from the unaltered headers.
    let raw = server.curl(&["-I", &server.https_url("/winpe/boot.wim")]).stdout;
    let raw = String::from_utf8(raw).unwrap();
    let modified = raw
        .lines()
        .find_map(|l| l.strip_prefix("last-modified: "))
        .unwrap()
        .trim()
        .to_owned();

    let (status, _, body) = request(
        &server,
        &["-H", &format!("If-None-Match: {etag}")],
        "/winpe/boot.wim",
        false,
    );
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let (status, _, _) = request(
        &server,
        &["-H", "If-None-Match: \"other\""],
        "/winpe/boot.wim",
        false,
    );
    assert_eq!(status, 200);
    let (status, _, _) = request(
        &server,
        &["-H", &format!("If-Modified-Since: {modified}")],
        "/winpe/boot.wim",
        false,
    );
    assert_eq!(status, 304);
    // If-Range with a stale validator gives the whole file instead of the range.
    let (status, _, body) = request(
        &server,
        &["-r", "0-9", "-H", "If-Range: \"stale\""],
        "/winpe/boot.wim",
        false,
    );
    assert_eq!((status, body.len()), (200, SIZE));
    let (status, _, body) = request(
        &server,
        &["-r", "0-9", "-H", &format!("If-Range: {etag}")],
        "/winpe/boot.wim",
        false,
    );
    assert_eq!((status, body.len()), (206, 10));
}

#[test]
fn range_edge_cases() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let data = content();
    let check_single = |range: &str, expected: std::ops::Range<usize>| {
        let (status, headers, body) = request(
            &server,
            &["-H", &format!("Range: bytes={range}")],
            "/winpe/boot.wim",
            false,
        );
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, &data[expected.clone()], "{range}");
        let content_range = format!(
            "content-range: bytes {}-{}/{SIZE}",
            expected.start,
            expected.end - 1
        );
        assert!(headers.contains(&content_range), "{range}: {headers}");
    };
    check_single("0-0", 0..1);
    check_single("100-199", 100..200);
    check_single("-500", SIZE - 500..SIZE);
    check_single("-1000000", 0..SIZE);
    check_single(&format!("{}-", SIZE - 1), SIZE - 1..SIZE);
    check_single(&format!("99000-{}", SIZE * 3), 99_000..SIZE);
    check_single("0-99,50-149", 0..150);

    for unsatisfiable in [
        format!("{SIZE}-"),
        format!("{}-{}", SIZE + 5, SIZE + 10),
        "-0".to_owned(),
    ] {
        let (status, headers, body) = request(
            &server,
            &["-H", &format!("Range: bytes={unsatisfiable}")],
            "/winpe/boot.wim",
            false,
        );
        assert_eq!(status, 416, "{unsatisfiable}");
        assert!(
            headers.contains(&format!("content-range: bytes */{SIZE}")),
            "{headers}"
        );
        assert!(body.is_empty());
    }
    let (status, _, _) = request(&server, &["-H", "Range: bytes=0-0"], "/empty.bin", false);
    assert_eq!(status, 416);
    // Malformed or reversed ranges are ignored: the whole file.
    for ignored in ["bytes=9-1", "bytes=x-y", "lines=0-1"] {
        let (status, _, body) = request(
            &server,
            &["-H", &format!("Range: {ignored}")],
            "/winpe/boot.wim",
            false,
        );
        assert_eq!((status, body.len()), (200, SIZE), "{ignored}");
    }

    // Several ranges: multipart/byteranges, one part per range in request order.
    let (status, headers, body) = request(
        &server,
        &["-H", "Range: bytes=500-509,0-9,-5"],
        "/winpe/boot.wim",
        true,
    );
    assert_eq!(status, 206);
    let boundary = headers
        .lines()
        .find_map(|l| l.split("boundary=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let text = String::from_utf8_lossy(&body).into_owned();
    let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
    assert_eq!(parts.len(), 5, "{text}");
    assert!(parts[4].starts_with("--"), "closing delimiter");
    for (part, (start, end)) in parts[1..4].iter().zip([(500, 509), (0, 9), (SIZE - 5, SIZE - 1)]) {
        assert!(
            part.to_ascii_lowercase()
                .contains(&format!("content-range: bytes {start}-{end}/{SIZE}")),
            "{part}"
        );
    }
    let raw = body;
    let first_part = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&raw[first_part..first_part + 10], &data[500..510]);
}

#[test]
fn the_ipxe_directory_is_a_second_root() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start("[https]\nipxe_dir = \"ipxe\"\n\n", &[], |dir| {
        std::fs::create_dir_all(dir.join("ipxe")).unwrap();
        std::fs::write(dir.join("ipxe/ipxe.efi"), b"from the ipxe directory").unwrap();
        std::fs::write(dir.join("ipxe/snponly.efi"), b"shadowed").unwrap();
        std::fs::write(dir.join("root/snponly.efi"), b"from the boot root").unwrap();
    });
    // UEFI HTTP Boot fetches the NBP over plain HTTP.
    let (status, headers, body) = request(&server, &[], "/ipxe.efi", true);
    assert_eq!((status, body.as_slice()), (200, &b"from the ipxe directory"[..]));
    assert!(headers.contains("content-type: application/efi"), "{headers}");
    let (_, _, body) = request(&server, &[], "/snponly.efi", true);
    assert_eq!(body, b"from the boot root");
}
