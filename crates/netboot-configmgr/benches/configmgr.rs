//! `cargo bench -p netboot-configmgr`: ConfigMgr resolver speed on the fixture.
//!
//! - `cached decision`: a warm [`netboot_resolver::Cached`] answer (what every repeat
//!   request of a boot costs);
//! - `cold lookup/tds`: one uncached decision through tiberius and the TDS test endpoint
//!   (TCP on loopback, one batch of four statements, SQLite behind it);
//! - `cold lookup/sqlite`: the same through the SQLite backend directly;
//! - the boot storm: 200 machines asking three times each, all at once, through the cache;
//!   prints how many queries reached the endpoint (at most one per machine is the goal).
//!
//! Each iteration drives the future with `Runtime::block_on`, which adds a small constant.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use netboot_configmgr::fixture::{self, Fixture};
use netboot_configmgr::*;
use netboot_core::{BootRequest, BootResolver, BootStage, ClientArch, MacAddr};
use netboot_resolver::{CacheOptions, Cached};
use netboot_tds_testserver::{Credentials, TdsTestServer};
use tokio::runtime::Runtime;

struct Setup {
    _dir: tempfile::TempDir,
    fixture: Fixture,
    server: TdsTestServer,
}

fn setup(rt: &Runtime) -> Setup {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let fixture = fixture::create(dir.path()).await.unwrap();
        let creds = Credentials {
            user: "bench".into(),
            password: "bench-pw".into(),
            database: "CM_PS1".into(),
        };
        let server = TdsTestServer::start(&fixture.database, creds).await.unwrap();
        Setup {
            _dir: dir,
            fixture,
            server,
        }
    })
}

fn settings(fixture: &Fixture) -> ResolverSettings {
    ResolverSettings {
        policy: Policy {
            unknown_computers: true,
            site_code: Some("PS1".into()),
            ..Policy::default()
        },
        duplicates: DuplicateIdentifiers::default(),
        excluded_macs: Default::default(),
        bios_assume_x64: true,
        images: ImageStore {
            dir: fixture.images.clone(),
            url_prefix: "configmgr".into(),
            fetch_missing: false,
        },
        local_offset: None,
    }
}

fn tds_resolver(s: &Setup) -> ConfigMgrResolver {
    let site = TdsSite::from_ado_string(&s.server.ado_string(), TdsOptions::default()).unwrap();
    ConfigMgrResolver::new(Arc::new(site), settings(&s.fixture))
}

/// A machine not in the database (the unknown-computer path), numbered.
fn machine(n: u32) -> BootRequest {
    let b = n.to_be_bytes();
    BootRequest::new(
        MacAddr([0x00, 0x15, 0x5d, b[1], b[2], b[3]]),
        ClientArch::EfiX64,
        BootStage::Ipxe,
    )
}

fn known_machine() -> BootRequest {
    BootRequest::new(
        "00:15:5d:00:00:03".parse().unwrap(),
        ClientArch::EfiX64,
        BootStage::Ipxe,
    )
    .with_uuid(Some("4c4c4544-0003-4a10-8000-b1c04f000003".parse().unwrap()))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = setup(&rt);

    let cached = Cached::new(tds_resolver(&s), CacheOptions::default());
    let req = known_machine();
    rt.block_on(cached.resolve(&req)).unwrap();
    let mut group = c.benchmark_group("cached decision");
    group.throughput(Throughput::Elements(1));
    group.bench_function("warm", |b| {
        b.iter(|| rt.block_on(cached.resolve(black_box(&req))).unwrap())
    });
    group.finish();

    let tds = tds_resolver(&s);
    let sqlite = ConfigMgrResolver::new(Arc::new(s.fixture.site.clone()), settings(&s.fixture));
    let mut group = c.benchmark_group("cold lookup");
    group.throughput(Throughput::Elements(1));
    for (name, resolver) in [("tds", &tds), ("sqlite", &sqlite)] {
        let mut n = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                rt.block_on(resolver.resolve(&machine(n))).unwrap()
            })
        });
    }
    group.finish();
}

/// 200 machines, three requests each (proxyDHCP, PXE 4011, iPXE script), all at once.
fn storm() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = setup(&rt);
    let resolver = tds_resolver(&s);
    let keyed = resolver.clone();
    let key: netboot_resolver::KeyFn = Arc::new(move |r: &BootRequest| keyed.cache_key(r));
    let cached = Arc::new(Cached::with_key(resolver, CacheOptions::default(), key));
    let before = s.server.queries();
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..600u32)
            .map(|i| {
                let cached = cached.clone();
                // The same machine asks as firmware (proxyDHCP, PXE) and as iPXE (HTTPS).
                let mut request = machine(1_000_000 + i % 200);
                if i >= 400 {
                    request.stage = BootStage::PxeFirmware;
                }
                tokio::spawn(async move { cached.resolve(&request).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    });
    let elapsed = started.elapsed();
    let queries = s.server.queries() - before;
    println!(
        "boot storm: 200 machines x 3 requests = 600 lookups in {:.1} ms -> {queries} queries at the TDS endpoint \
         ({:.2} per machine; goal <= 1)",
        elapsed.as_secs_f64() * 1000.0,
        queries as f64 / 200.0
    );
    assert!(
        queries <= 200,
        "the storm cost {queries} queries for 200 machines"
    );
}

criterion_group! {
    name = group;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = benches
}

fn main() {
    storm();
    group();
    Criterion::default().configure_from_args().final_summary();
}
