use std::sync::atomic::AtomicBool;

use netboot_core::{BootAction, BootMenu, BootStage, BootTarget, ClientArch, Deployment, MacAddr};

use super::*;

/// Counts calls; waits for `gate` to open; fails while `failing` is set.
#[derive(Debug)]
struct Backend {
    calls: AtomicU64,
    gate: watch::Receiver<bool>,
    failing: AtomicBool,
    nothing: AtomicBool,
}

fn backend(open: bool) -> (Backend, watch::Sender<bool>) {
    let (tx, gate) = watch::channel(open);
    (
        Backend {
            calls: AtomicU64::new(0),
            gate,
            failing: AtomicBool::new(false),
            nothing: AtomicBool::new(false),
        },
        tx,
    )
}

fn menu_for(mac: MacAddr) -> BootDecision {
    BootDecision::Boot(BootMenu {
        title: None,
        entries: vec![BootAction {
            auth: false,
            id: mac.to_string(),
            title: "WinPE".into(),
            deployment: Deployment::Available,
            target: BootTarget::Chain { url: "x".into() },
        }],
        timeout_secs: None,
        resource_id: None,
    })
}

impl BootResolver for Backend {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut gate = self.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(ResolveError::Unavailable {
                    backend: "test",
                    source: "database down".into(),
                });
            }
            if self.nothing.load(Ordering::SeqCst) {
                return Ok(BootDecision::EXIT);
            }
            Ok(menu_for(request.mac))
        })
    }

    fn name(&self) -> &'static str {
        "test"
    }
}

fn request(n: u32) -> BootRequest {
    let b = n.to_be_bytes();
    BootRequest::new(
        MacAddr([0x52, 0x54, b[0], b[1], b[2], b[3]]),
        ClientArch::EfiX64,
        BootStage::Ipxe,
    )
}

fn options() -> CacheOptions {
    CacheOptions {
        ttl: Duration::from_secs(600),
        negative_ttl: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        max_entries: 1000,
    }
}

/// Waits (bounded) until `n` callers are parked behind a leader.
async fn until_coalesced<R: BootResolver>(cache: &Cached<R>, n: u64) {
    for _ in 0..10_000 {
        if cache.stats().coalesced.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "only {} callers coalesced, expected {n}",
        cache.stats().coalesced.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn second_lookup_is_a_hit() {
    let (b, _gate) = backend(true);
    let cache = Cached::new(b, options());
    assert_eq!(
        cache.resolve(&request(1)).await.unwrap(),
        menu_for(request(1).mac)
    );
    assert_eq!(
        cache.resolve(&request(1)).await.unwrap(),
        menu_for(request(1).mac)
    );
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_identical_lookups_costs_one_backend_call() {
    let (b, gate) = backend(false);
    let cache = Arc::new(Cached::new(b, options()));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.resolve(&request(7)).await })
        })
        .collect();
    until_coalesced(&cache, 199).await;
    gate.send_replace(true);
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), menu_for(request(7).mac));
    }
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_200_machines_costs_one_call_per_machine() {
    let (b, gate) = backend(false);
    let cache = Arc::new(Cached::new(b, options()));
    // Every machine asks three times (DHCP, PXE 4011, HTTPS) at once.
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { (i % 200, cache.resolve(&request(i % 200)).await) })
        })
        .collect();
    until_coalesced(&cache, 400).await;
    gate.send_replace(true);
    for task in tasks {
        let (n, result) = task.await.unwrap();
        assert_eq!(result.unwrap(), menu_for(request(n).mac));
    }
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 200);
}

#[tokio::test]
async fn negative_answers_use_their_own_ttl() {
    let (b, _gate) = backend(true);
    b.nothing.store(true, Ordering::SeqCst);
    let cache = Cached::new(b, options());
    assert_eq!(cache.resolve(&request(1)).await.unwrap(), BootDecision::EXIT);
    // negative_ttl is zero here: the next lookup asks again and sees the new deployment.
    cache.inner().nothing.store(false, Ordering::SeqCst);
    assert_eq!(
        cache.resolve(&request(1)).await.unwrap(),
        menu_for(request(1).mac)
    );
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 2);

    let (b, _gate) = backend(true);
    b.nothing.store(true, Ordering::SeqCst);
    let cache = Cached::new(
        b,
        CacheOptions {
            negative_ttl: Duration::from_secs(600),
            ..options()
        },
    );
    cache.resolve(&request(1)).await.unwrap();
    cache.resolve(&request(1)).await.unwrap();
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn errors_are_not_cached_and_stale_answers_cover_an_outage() {
    let (b, _gate) = backend(true);
    b.failing.store(true, Ordering::SeqCst);
    let cache = Cached::new(
        b,
        CacheOptions {
            ttl: Duration::ZERO,
            stale_if_error: Duration::from_secs(600),
            ..options()
        },
    );
    assert!(
        cache.resolve(&request(1)).await.is_err(),
        "nothing known yet: the error passes through"
    );
    cache.inner().failing.store(false, Ordering::SeqCst);
    assert_eq!(
        cache.resolve(&request(1)).await.unwrap(),
        menu_for(request(1).mac)
    );
    cache.inner().failing.store(true, Ordering::SeqCst);
    // The entry expired (ttl 0) and the backend is down: the last answer is served.
    assert_eq!(
        cache.resolve(&request(1)).await.unwrap(),
        menu_for(request(1).mac)
    );
    assert_eq!(cache.stats().stale_served.load(Ordering::SeqCst), 1);
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_the_leaders_error() {
    let (b, gate) = backend(false);
    b.failing.store(true, Ordering::SeqCst);
    let cache = Arc::new(Cached::new(b, options()));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.resolve(&request(3)).await })
        })
        .collect();
    until_coalesced(&cache, 4).await;
    gate.send_replace(true);
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("database down"), "{err}");
    }
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    let (b, gate) = backend(false);
    let cache = Arc::new(Cached::new(b, options()));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.resolve(&request(4)).await })
    };
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.resolve(&request(4)).await })
    };
    until_coalesced(&cache, 1).await;
    leader.abort();
    let _ = leader.await;
    gate.send_replace(true);
    assert_eq!(follower.await.unwrap().unwrap(), menu_for(request(4).mac));
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn size_is_bounded() {
    let (b, _gate) = backend(true);
    let cache = Cached::new(
        b,
        CacheOptions {
            max_entries: 3,
            ..options()
        },
    );
    for n in 0..10 {
        cache.resolve(&request(n)).await.unwrap();
    }
    assert!(cache.lock().len() <= 3);
    cache.clear();
    assert_eq!(cache.lock().len(), 0);
}

#[tokio::test]
async fn a_resolver_specific_key_shares_entries_across_stages() {
    let (b, _gate) = backend(true);
    let key: KeyFn = Arc::new(|r: &BootRequest| r.mac.to_string());
    let cache = Cached::with_key(b, options(), key);
    let mut dhcp = request(9);
    dhcp.stage = BootStage::PxeFirmware;
    let mut https = request(9);
    https.hardware.manufacturer = Some("QEMU".into());
    cache.resolve(&dhcp).await.unwrap();
    cache.resolve(&https).await.unwrap();
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 1);

    // Keyed by the whole request, the two are different lookups.
    let (b, _gate) = backend(true);
    let cache = Cached::new(b, options());
    cache.resolve(&dhcp).await.unwrap();
    cache.resolve(&https).await.unwrap();
    assert_eq!(cache.inner().calls.load(Ordering::SeqCst), 2);
}
