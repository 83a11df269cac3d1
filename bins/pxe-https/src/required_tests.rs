use std::path::Path;

use netboot_core::{BootMenu, ClientArch, Deployment};

use super::*;

fn run(mac: &str, deployment: &str) -> RequiredRun {
    RequiredRun {
        mac: mac.parse().unwrap(),
        uuid: None,
        resource_id: None,
        deployment: deployment.into(),
        boot_image: Some("configmgr/PS100004/boot.wim".into()),
        client_ip: None,
        at: chrono::Utc::now(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn wim() -> PathBuf {
    PathBuf::from("configmgr/PS100004/boot.wim")
}

fn part(range: Range<u64>, total: u64) -> Part {
    Part {
        range,
        total,
        version: "\"v1\"".into(),
    }
}

#[test]
fn a_second_decision_of_the_same_boot_gets_the_same_mark() {
    let mut marks = Marks::default();
    let now = Instant::now();
    let first = marks.issue(ip("10.0.0.5"), wim(), run("52:54:00:00:00:01", "PS120002"), now);
    assert_eq!(first.len(), 32);
    let again = marks.issue(ip("10.0.0.5"), wim(), run("52:54:00:00:00:01", "PS120002"), now);
    assert_eq!(first, again);
    let other_entry = marks.issue(ip("10.0.0.5"), wim(), run("52:54:00:00:00:01", "PS120003"), now);
    let other_machine = marks.issue(ip("10.0.0.6"), wim(), run("52:54:00:00:00:02", "PS120002"), now);
    assert!(first != other_entry && first != other_machine && other_entry != other_machine);
    assert_eq!(marks.by_token.len(), 3);
}

#[test]
fn a_mark_matches_only_its_file_from_its_address_while_it_lives() {
    let mut marks = Marks::default();
    let now = Instant::now();
    let token = marks.issue(ip("10.0.0.5"), wim(), run("52:54:00:00:00:01", "PS120002"), now);
    assert!(marks.matches(&token, ip("10.0.0.5"), &wim(), now));
    assert!(
        !marks.matches(&token, ip("10.0.0.9"), &wim(), now),
        "another address"
    );
    assert!(!marks.matches(&token, ip("10.0.0.5"), Path::new("configmgr/PS100004/BCD"), now));
    assert!(
        !marks.matches(&"0".repeat(32), ip("10.0.0.5"), &wim(), now),
        "a guessed token"
    );
    let later = now + MARK_LIFETIME + Duration::from_secs(1);
    assert!(!marks.matches(&token, ip("10.0.0.5"), &wim(), later), "expired");
    assert!(marks.by_token.is_empty() && marks.order.is_empty() && marks.per_client.is_empty());
}

#[test]
fn marks_are_bounded_per_address_and_overall() {
    let mut marks = Marks::default();
    let now = Instant::now();
    let first = marks.issue(ip("10.0.0.5"), wim(), run("52:54:00:00:00:00", "PS120000"), now);
    for n in 1..=MAX_MARKS_PER_CLIENT {
        marks.issue(
            ip("10.0.0.5"),
            wim(),
            run(&format!("52:54:00:00:00:{n:02x}"), "PS120002"),
            now,
        );
    }
    assert_eq!(marks.per_client[&ip("10.0.0.5")].len(), MAX_MARKS_PER_CLIENT);
    assert!(
        !marks.by_token.contains_key(&first),
        "the address's oldest mark went first"
    );
    let others = marks.issue(ip("10.0.0.6"), wim(), run("52:54:00:00:01:00", "PS120002"), now);

    for n in 0..MAX_MARKS {
        let client = IpAddr::from([10, 1, (n >> 8) as u8, n as u8]);
        marks.issue(client, wim(), run("52:54:00:00:02:00", "PS120002"), now);
    }
    assert_eq!(marks.by_token.len(), MAX_MARKS);
    assert_eq!(marks.order.len(), MAX_MARKS);
    assert!(
        !marks.by_token.contains_key(&others),
        "the oldest marks went first"
    );
}

#[test]
fn the_run_is_released_once_the_whole_file_streamed() {
    let mut marks = Marks::default();
    let token = marks.issue(
        ip("10.0.0.5"),
        wim(),
        run("52:54:00:00:00:01", "PS120002"),
        Instant::now(),
    );
    // A resumed download: two ranges, overlapping, in any order.
    assert!(marks.cover(&token, &part(600..1000, 1000)).is_none());
    assert!(marks.cover(&token, &part(0..100, 1000)).is_none());
    let run = marks.cover(&token, &part(50..650, 1000)).expect("covered");
    assert_eq!(run.deployment, "PS120002");
    assert!(
        marks.cover(&token, &part(0..1000, 1000)).is_none(),
        "recorded once"
    );
}

#[test]
fn parts_of_another_file_version_start_over() {
    let mut coverage = Coverage::default();
    assert!(!coverage.add(&part(0..500, 1000)));
    let changed = Part {
        version: "\"v2\"".into(),
        ..part(500..1000, 1000)
    };
    assert!(!coverage.add(&changed), "the first half was of the old file");
    assert!(coverage.add(&Part {
        version: "\"v2\"".into(),
        ..part(0..500, 1000)
    }));
    assert!(
        Coverage::default().add(&part(0..0, 0)),
        "an empty file is covered at once"
    );
}

#[test]
fn only_whole_or_single_range_answers_of_the_file_count() {
    let answer = |status: u16, headers: &[(&str, &str)]| {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        Part::of(&builder.body(Body::empty()).unwrap())
    };
    assert_eq!(
        answer(200, &[("content-length", "1000"), ("etag", "\"v1\"")]),
        Some(part(0..1000, 1000))
    );
    assert_eq!(
        answer(
            206,
            &[
                ("content-length", "100"),
                ("content-range", "bytes 900-999/1000"),
                ("etag", "\"v1\"")
            ]
        ),
        Some(part(900..1000, 1000))
    );
    for (status, headers) in [
        (
            206,
            &[
                ("content-length", "300"),
                ("content-type", "multipart/byteranges; boundary=x"),
            ][..],
        ),
        (
            200,
            &[("content-length", "1000"), ("content-encoding", "peerdist")][..],
        ),
        (304, &[("content-length", "0")][..]),
        (404, &[("content-length", "10")][..]),
        (
            206,
            &[("content-length", "5"), ("content-range", "bytes 0-99/1000")][..],
        ),
        (
            206,
            &[("content-length", "1"), ("content-range", "bytes 5-4/1000")][..],
        ),
    ] {
        assert_eq!(answer(status, headers), None, "{status} {headers:?}");
    }
}

#[test]
fn marked_requests_are_recognised() {
    assert!(is_marked(Some("required_run=0123456789abcdef0123456789abcdef")));
    assert!(!is_marked(Some("x=1")));
    assert!(!is_marked(None));
}

#[test]
fn the_mark_is_read_from_the_query_only_in_its_own_shape() {
    let token = "0123456789abcdef0123456789ABCDEF";
    assert_eq!(
        mark_in_query(&format!("x=1&required_run={token}")).as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(mark_in_query("required_run=short"), None);
    assert_eq!(mark_in_query(&format!("required_run={token}0")), None);
    assert_eq!(
        mark_in_query("required_run=0123456789abcdef0123456789abcdeg"),
        None
    );
    assert_eq!(mark_in_query("other=1"), None);
}

#[test]
fn entries_are_marked_when_the_rule_applies_and_the_image_is_ours() {
    let action = |deployment, boot_wim: &str| BootAction {
        auth: false,
        id: "PS120002".into(),
        title: "W11".into(),
        deployment,
        target: BootTarget::Wimboot {
            boot_wim: boot_wim.into(),
            bcd: None,
            boot_sdi: None,
            files: vec![],
            wimboot_args: None,
            variables: Default::default(),
        },
    };
    let base = Url::path("/");
    assert_eq!(
        marked_file(
            &action(Deployment::Required, "configmgr/PS100004/boot.wim"),
            &base
        ),
        Some(("configmgr/PS100004/boot.wim".into(), wim()))
    );
    let public = Url::absolute("https://pxe.example:8443/").unwrap();
    assert_eq!(
        marked_file(&action(Deployment::Required, "win pe/boot.wim"), &public).map(|(_, p)| p),
        Some(PathBuf::from("win pe/boot.wim"))
    );
    assert_eq!(
        marked_file(&action(Deployment::Available, "a/boot.wim"), &base),
        None
    );
    assert_eq!(
        marked_file(
            &action(Deployment::Required, "https://dp.example/boot.wim"),
            &base
        ),
        None
    );
    assert_eq!(url_path("http://host"), "/");
    assert_eq!(url_path("/a/b"), "/a/b");
}

#[tokio::test]
async fn marks_go_to_the_required_entries_of_a_decision() {
    #[derive(Debug)]
    struct Nothing;
    impl BootResolver for Nothing {
        fn resolve<'a>(&'a self, _: &'a BootRequest) -> netboot_core::ResolveFuture<'a> {
            Box::pin(async { Ok(BootDecision::EXIT) })
        }
        fn name(&self) -> &'static str {
            "nothing"
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let service = RequiredOnceService::new(
        Arc::new(Nothing),
        RequiredRuns::in_file(&dir.path().join("runs.sqlite")),
        netboot_records::Recorder::disabled(),
    );
    let entry = |id: &str, deployment| BootAction {
        auth: false,
        id: id.into(),
        title: id.into(),
        deployment,
        target: BootTarget::Wimboot {
            boot_wim: "configmgr/PS100004/boot.wim".into(),
            bcd: None,
            boot_sdi: None,
            files: vec![],
            wimboot_args: None,
            variables: Default::default(),
        },
    };
    let decision = BootDecision::Boot(BootMenu {
        entries: vec![
            entry("PS120002", Deployment::Required),
            entry("PS120001", Deployment::Available),
            entry("PS120003", Deployment::Required),
        ],
        resource_id: Some(16_777_218),
        ..BootMenu::default()
    });
    let request = BootRequest::new(
        "52:54:00:00:00:01".parse().unwrap(),
        ClientArch::EfiX64,
        netboot_core::BootStage::Ipxe,
    );
    let nothing_waits = BTreeMap::<String, ()>::new();
    let marks = service.mark(
        &decision,
        &request,
        ip("10.0.0.5"),
        &Url::path("/"),
        &nothing_waits,
    );
    assert_eq!(marks.keys().collect::<Vec<_>>(), ["PS120002", "PS120003"]);
    assert_ne!(
        marks["PS120002"], marks["PS120003"],
        "two Required entries of one boot image: two marks"
    );
    let waiting: BTreeMap<String, ()> = [("PS120003".to_string(), ())].into();
    let some_wait = service.mark(&decision, &request, ip("10.0.0.5"), &Url::path("/"), &waiting);
    assert_eq!(some_wait.keys().collect::<Vec<_>>(), ["PS120002"]);
    let held = service.marks.lock().unwrap();
    let mark = &held.by_token[&marks["PS120002"].value];
    assert_eq!(mark.run.resource_id, Some(16_777_218));
    assert_eq!(mark.run.client_ip, Some(ip("10.0.0.5")));
}

#[tokio::test]
async fn completion_fires_after_the_last_byte_and_never_for_a_failed_or_dropped_body() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let fired = Arc::new(AtomicU32::new(0));
    let body = |chunks: Vec<Result<Bytes, axum::Error>>, expected: u64| {
        let fired = Arc::clone(&fired);
        Completion {
            inner: futures::stream::iter(chunks),
            remaining: expected,
            on_complete: Some(Box::new(move || {
                fired.fetch_add(1, Ordering::SeqCst);
            }) as OnComplete),
        }
    };
    let whole: Vec<_> = body(
        vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))],
        5,
    )
    .collect()
    .await;
    assert_eq!(whole.len(), 2);
    assert_eq!(fired.load(Ordering::SeqCst), 1);

    let mut partial = body(
        vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))],
        5,
    );
    partial.next().await;
    drop(partial);
    let failed: Vec<_> = body(
        vec![
            Ok(Bytes::from_static(b"abc")),
            Err(axum::Error::new(std::io::Error::other("reset"))),
        ],
        5,
    )
    .collect()
    .await;
    assert_eq!(failed.len(), 2);
    let short: Vec<_> = body(vec![Ok(Bytes::from_static(b"abc"))], 5).collect().await;
    assert_eq!(short.len(), 1);
    assert_eq!(fired.load(Ordering::SeqCst), 1, "none of those counted");
}

mod properties {
    use proptest::prelude::*;

    use super::super::{mark_in_query, parse_content_range};

    proptest! {
        #[test]
        fn a_mark_is_found_wherever_it_sits_in_a_query(
            token in "[0-9a-f]{32}",
            before in proptest::collection::vec("[a-z_]{1,8}=[^&]{0,12}", 0..4),
            after in proptest::collection::vec("[a-z_]{1,8}=[^&]{0,12}", 0..4),
        ) {
            let mut pairs: Vec<String> = before.into_iter().filter(|p| !p.starts_with("required_run=")).collect();
            pairs.push(format!("required_run={token}"));
            pairs.extend(after.into_iter().filter(|p| !p.starts_with("required_run=")));
            prop_assert_eq!(mark_in_query(&pairs.join("&")), Some(token));
        }

        #[test]
        fn query_parsing_never_panics_and_only_yields_tokens(query in ".{0,200}") {
            if let Some(token) = mark_in_query(&query) {
                prop_assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }

        #[test]
        fn content_range_round_trip(first in 0u64..1 << 40, len in 1u64..1 << 30, extra in 0u64..1 << 20) {
            let total = first + len + extra;
            let header = format!("bytes {}-{}/{total}", first, first + len - 1);
            prop_assert_eq!(parse_content_range(&header), Some((first..first + len, total)));
        }

        #[test]
        fn content_range_parsing_never_panics(text in ".{0,60}") {
            if let Some((range, total)) = parse_content_range(&text) {
                prop_assert!(range.start < range.end && range.end <= total);
            }
        }
    }
}
