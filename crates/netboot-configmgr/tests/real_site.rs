//! Opt-in check against a real ConfigMgr site database (never runs by default, never in CI
//! unless asked): set `NETBOOT_TEST_CONFIGMGR_SQL` to an ADO.NET connection string of a
//! read-only login, and optionally `NETBOOT_TEST_CONFIGMGR_MAC` / `_UUID` to a machine.
//!
//! It proves the views and columns the resolver reads exist with usable types on that site
//! (the verification checklist of the site-database notes) and prints what a machine gets.

use std::sync::Arc;

use netboot_configmgr::*;
use netboot_core::{BootRequest, BootResolver, BootStage, ClientArch};

#[tokio::test]
async fn real_site_database_answers_the_resolver_queries() {
    let Ok(connection_string) = std::env::var("NETBOOT_TEST_CONFIGMGR_SQL") else {
        eprintln!(
            "skipping: NETBOOT_TEST_CONFIGMGR_SQL is not set (opt-in test against a real site database)"
        );
        return;
    };
    let site = TdsSite::from_ado_string(&connection_string, TdsOptions::default()).unwrap();
    eprintln!("site database at {}", site.server());
    let keys = LookupKeys {
        guid: String::new(),
        mac: "00:00:00:00:00:00".into(),
        cpu_type: "x64".into(),
    };
    let rows = site
        .lookup(&keys)
        .await
        .unwrap_or_else(|e| panic!("lookup failed: {e}"));
    eprintln!("unknown-computer objects (x64): {:?}", rows.unknown);
    assert!(
        !rows.unknown.is_empty(),
        "no x64 Unknown Computer object found in v_R_UnknownSystem"
    );
    eprintln!("deployments reaching them: {}", rows.deployments.len());

    let Ok(mac) = std::env::var("NETBOOT_TEST_CONFIGMGR_MAC") else {
        return;
    };
    let uuid = std::env::var("NETBOOT_TEST_CONFIGMGR_UUID")
        .ok()
        .map(|u| u.parse().unwrap());
    let request = BootRequest::new(mac.parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe).with_uuid(uuid);
    let settings = ResolverSettings {
        policy: Policy {
            unknown_computers: true,
            ..Policy::default()
        },
        duplicates: DuplicateIdentifiers::default(),
        excluded_macs: Default::default(),
        bios_assume_x64: true,
        // Boot images count as present only when found under NETBOOT_TEST_CONFIGMGR_IMAGES.
        images: ImageStore {
            dir: std::env::var("NETBOOT_TEST_CONFIGMGR_IMAGES")
                .unwrap_or_else(|_| "/".into())
                .into(),
            url_prefix: "configmgr".into(),
            fetch_missing: false,
        },
        local_offset: None,
    };
    let resolver = ConfigMgrResolver::new(Arc::new(site), settings);
    eprintln!("{mac} gets {:#?}", resolver.resolve(&request).await.unwrap());
}
