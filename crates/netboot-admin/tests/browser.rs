//! The reports page in a real headless Chromium: it loads, lists a machine, opens the
//! machine's timeline, a screenshot is kept under `target/test-artifacts/admin/`, and
//! unauthenticated access is refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use netboot_testkit::process::skip_or_fail;
use support::{BAD, GOOD, PASSWORD, USER};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-artifacts/admin");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `url` with `extra` arguments and returns its stdout and stderr.
async fn run_chromium_output(binary: &Path, profile: &Path, url: &str, extra: &[String]) -> (String, String) {
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium did not finish within 90 s")
        .expect("running chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What Chromium printed on stdout (the DOM with `--dump-dom`).
async fn run_chromium(binary: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    run_chromium_output(binary, profile, url, extra).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_headless_chromium() {
    let Some(binary) = chromium() else {
        skip_or_fail("chromium is not installed (Debian package chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (state, _store) = support::state(&dir, "/admin", false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(netboot_admin::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let profile = tempfile::tempdir().unwrap();

    // Without credentials: refused, nothing listed.
    // Headless Chromium cannot show the password prompt, so the load fails with the 401.
    let (refused, log) = run_chromium_output(
        &binary,
        profile.path(),
        &format!("http://127.0.0.1:{port}/admin/"),
        &["--dump-dom".into()],
    )
    .await;
    assert!(!refused.contains(GOOD), "{refused}");
    assert!(log.contains("ERR_INVALID_AUTH_CREDENTIALS"), "{log}");
    let wrong = format!("http://{USER}:wrong@127.0.0.1:{port}/admin/");
    let (refused, log) = run_chromium_output(&binary, profile.path(), &wrong, &["--dump-dom".into()]).await;
    assert!(
        !refused.contains(GOOD) && log.contains("ERR_INVALID_AUTH_CREDENTIALS"),
        "{refused}{log}"
    );

    // With basic-auth credentials in the URL: the machine list.
    let user = format!("{USER}:{}", PASSWORD.replace(' ', "%20"));
    let index_url = format!("http://{user}@127.0.0.1:{port}/admin/");
    let index = run_chromium(&binary, profile.path(), &index_url, &["--dump-dom".into()]).await;
    assert!(index.contains("<table id=\"machines\""), "{index}");
    let link = format!("href=\"/admin/machines/{BAD}\"");
    assert!(
        index.contains(&link),
        "the failed machine is listed with a link to its timeline: {index}"
    );
    assert!(index.contains("<svg class=\"chart boots-per-day\""), "{index}");
    let shot = artifacts().join("machines.png");
    run_chromium(
        &binary,
        profile.path(),
        &index_url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1100".into(),
        ],
    )
    .await;

    // Follow the link: the timeline of the failed boot.
    let timeline_url = format!("http://{user}@127.0.0.1:{port}/admin/machines/{BAD}");
    let timeline = run_chromium(&binary, profile.path(), &timeline_url, &["--dump-dom".into()]).await;
    assert!(timeline.contains("<svg class=\"timeline\""), "{timeline}");
    assert!(timeline.contains("stopped at TFTP"), "{timeline}");
    let shot = artifacts().join("timeline.png");
    run_chromium(
        &binary,
        profile.path(),
        &timeline_url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    eprintln!("screenshots in {}", artifacts().display());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
