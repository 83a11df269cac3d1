//! Slow and failing resolvers, through the library API with resolvers built in the test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::identity_query;
use netboot_config::{Config, ResolverFallback};
use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError, ResolveFuture};
use netboot_ipxe::fuzzing::assert_safe;
use netboot_service::{Bound as _, Context, Shutdown};
use netboot_testkit::process::have_tool;

/// Answers only after an hour: longer than any deadline.
#[derive(Debug)]
struct Stuck;

impl BootResolver for Stuck {
    fn resolve<'a>(&'a self, _request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(BootDecision::EXIT)
        })
    }
    fn name(&self) -> &'static str {
        "stuck"
    }
}

/// Always fails as an unreachable backend would.
#[derive(Debug)]
struct Down;

impl BootResolver for Down {
    fn resolve<'a>(&'a self, _request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(async {
            Err(ResolveError::Unavailable {
                backend: "webhook",
                source: "connection refused; ${password}\nchain http://evil/".into(),
            })
        })
    }
    fn name(&self) -> &'static str {
        "down"
    }
}

/// Starts the server in-process with `resolver` and returns the decision script for a
/// known-good identity.
fn decide_with(resolver: Arc<dyn BootResolver>, fallback: ResolverFallback) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        base_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    config.resolver.deadline_ms = 200;
    config.https.listen = "127.0.0.1:0".parse().unwrap();
    config.https.http_listen = None;
    // The state directory (keys, the issued certificate) must lie outside the served root.
    config.https.root = dir.path().join("root");
    std::fs::create_dir_all(&config.https.root).unwrap();
    config.https.ipxe_dir = Some("".into());
    config.https.state_dir = "state".into();
    config.https.on_resolver_error = fallback;
    config.https.retry_delay_secs = 7;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let context = Context::with_resolver(netboot_records::Telemetry::disabled(), resolver);
        let server = pxe_https::Server::bind(Arc::new(config), context).await.unwrap();
        let port = server.https_addr().port();
        let (stop, shutdown) = Shutdown::new();
        let serving = tokio::spawn(server.serve(shutdown));
        let cert = dir.path().join("state/pxe-https.crt");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
                .arg(cert)
                .arg(format!(
                    "https://localhost:{port}/boot.ipxe/decide?{}",
                    identity_query("52-54-00-00-00-01")
                ))
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        stop.stop();
        serving.await.unwrap().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
}

#[test]
fn a_stuck_resolver_gets_the_exit_fallback_within_the_deadline() {
    if !have_tool("curl", "curl") {
        return;
    }
    let script = decide_with(Arc::new(Stuck), ResolverFallback::Exit);
    assert_safe(&script);
    let (shown, rest) = script
        .strip_prefix("#!ipxe\necho No boot decision: the boot server did not decide in time (incident ")
        .and_then(|s| s.split_once(')'))
        .unwrap_or_else(|| panic!("{script}"));
    assert!(
        shown.len() == 8 && shown.bytes().all(|b| b.is_ascii_hexdigit()),
        "{script}"
    );
    assert_eq!(rest, "\necho Continuing with the next boot device\nexit 1\n");
}

#[test]
fn a_failing_resolver_gets_the_retry_fallback() {
    if !have_tool("curl", "curl") {
        return;
    }
    let script = decide_with(Arc::new(Down), ResolverFallback::Retry);
    assert_safe(&script);
    // The backend's error (hosts, ports, whatever it says) stays in the log.
    assert!(
        script.starts_with(
            "#!ipxe\necho No boot decision: the boot server cannot reach its deployment source (incident "
        ),
        "{script}"
    );
    assert!(
        !script.contains("refused") && !script.contains("evil"),
        "{script}"
    );
    assert!(
        script.contains("sleep 7\nchain --autofree --replace /boot.ipxe || goto failed\n"),
        "{script}"
    );
}
