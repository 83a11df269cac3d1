use chrono::NaiveDate;
use netboot_core::{BootDecision, Deployment};

use super::*;
use crate::identity::Firmware;

const UEFI_X64: Platform = Platform {
    firmware: Firmware::Uefi,
    arch: ImageArch::X64,
};
const UEFI_X86: Platform = Platform {
    firmware: Firmware::Uefi,
    arch: ImageArch::X86,
};
const UEFI_ARM64: Platform = Platform {
    firmware: Firmware::Uefi,
    arch: ImageArch::Arm64,
};
const BIOS_X64: Platform = Platform {
    firmware: Firmware::Bios,
    arch: ImageArch::X64,
};

fn at(y: i32, m: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn clock() -> Clock {
    Clock {
        now: Utc.from_utc_datetime(&at(2026, 6, 1)),
        local_offset: FixedOffset::east_opt(0).unwrap(),
    }
}

fn device(id: i64, guid_match: bool, mac_match: bool) -> DeviceRow {
    DeviceRow {
        resource_id: id,
        name: Some(format!("PC-{id}")),
        guid_match,
        mac_match,
        ..DeviceRow::default()
    }
}

fn unknown(id: i64, cpu: &str, site: &str) -> UnknownRow {
    UnknownRow {
        resource_id: id,
        name: None,
        cpu_type: cpu.into(),
        site_code: Some(site.into()),
    }
}

fn deployment(resource: i64, id: &str, name: &str, required: bool) -> DeploymentRow {
    DeploymentRow {
        resource_id: resource,
        advertisement_id: id.into(),
        task_sequence_name: Some(name.into()),
        advert_flags: flags::CD_AND_PXE | if required { flags::IMMEDIATE } else { 0 },
        offer_type: Some(if required { 0 } else { 2 }),
        boot_image_id: Some("PS100004".into()),
        boot_image_architecture: Some("x64".into()),
        ..DeploymentRow::default()
    }
}

fn images() -> HashMap<String, BootImageFiles> {
    ["PS100003", "PS100004", "PS100005"]
        .into_iter()
        .map(|id| {
            let files = BootImageFiles {
                boot_wim: format!("configmgr/{id}/boot.wim"),
                bcd: None,
                boot_sdi: None,
            };
            (id.to_string(), files)
        })
        .collect()
}

fn policy() -> Policy {
    Policy {
        unknown_computers: true,
        ..Policy::default()
    }
}

fn run(rows: &SiteRows, platform: Platform) -> Outcome {
    decide(rows, Some(platform), &policy(), &clock(), &images())
}

/// `(id, marker)` of each menu entry, in order.
fn menu(outcome: &Outcome) -> Vec<(String, char)> {
    outcome.decision.entry_markers()
}

fn entries(list: &[(&str, char)]) -> Vec<(String, char)> {
    list.iter().map(|(id, m)| (id.to_string(), *m)).collect()
}

fn rejection(outcome: &Outcome, id: &str) -> Option<Rejection> {
    outcome
        .rejected
        .iter()
        .find(|(r, _)| r == id)
        .map(|(_, why)| why.clone())
}

fn known_with(deployments: Vec<DeploymentRow>) -> SiteRows {
    SiteRows {
        devices: vec![device(1, true, true)],
        deployments,
        ..SiteRows::default()
    }
}

#[test]
fn known_device_with_one_available() {
    let out = run(
        &known_with(vec![deployment(1, "PS120001", "Windows 11", false)]),
        UEFI_X64,
    );
    assert_eq!(menu(&out), entries(&[("PS120001", 'A')]));
    let BootDecision::Boot(menu) = &out.decision else {
        panic!()
    };
    assert_eq!(menu.entries[0].title, "Windows 11");
    assert_eq!(
        menu.entries[0].target,
        BootTarget::Wimboot {
            boot_wim: "configmgr/PS100004/boot.wim".into(),
            bcd: None,
            boot_sdi: None,
            files: vec![],
            wimboot_args: None,
            variables: Default::default(),
        }
    );
}

#[test]
fn known_device_with_one_required() {
    let out = run(
        &known_with(vec![deployment(1, "PS120002", "Rebuild", true)]),
        UEFI_X64,
    );
    assert_eq!(menu(&out), entries(&[("PS120002", 'R')]));
}

#[test]
fn both_puts_required_first_even_when_older() {
    let rows = known_with(vec![
        deployment(1, "PS120009", "Avail", false),
        deployment(1, "PS120002", "Req", true),
    ]);
    assert_eq!(
        menu(&run(&rows, UEFI_X64)),
        entries(&[("PS120002", 'R'), ("PS120009", 'A')])
    );
}

#[test]
fn required_falls_back_to_flags_when_offer_type_is_missing() {
    let mut row = deployment(1, "PS120002", "Req", true);
    row.offer_type = None;
    assert!(is_required(&row));
    row.advert_flags = flags::CD_AND_PXE;
    assert!(!is_required(&row));
    row.assigned_schedule_enabled = true;
    assert!(is_required(&row));
}

#[test]
fn expired_not_started_and_not_for_pxe_are_dropped() {
    let mut expired = deployment(1, "PS120003", "Expired", false);
    expired.expiration_time_enabled = true;
    expired.expiration_time = Some(at(2021, 1, 1));
    expired.expiration_time_is_gmt = true;
    let mut future = deployment(1, "PS120004", "Future", false);
    future.present_time_enabled = true;
    future.present_time = Some(at(2099, 1, 1));
    let mut disabled = deployment(1, "PS120005", "Not PXE", false);
    disabled.advert_flags = 0;
    let mut window_off = deployment(1, "PS120006", "Expiry not enabled", false);
    window_off.expiration_time = Some(at(2021, 1, 1));
    let out = run(&known_with(vec![expired, future, disabled, window_off]), UEFI_X64);
    assert_eq!(menu(&out), entries(&[("PS120006", 'A')]));
    assert_eq!(rejection(&out, "PS120003"), Some(Rejection::Expired));
    assert_eq!(rejection(&out, "PS120004"), Some(Rejection::NotStarted));
    assert_eq!(rejection(&out, "PS120005"), Some(Rejection::NotForPxe));
}

#[test]
fn local_times_use_the_configured_offset() {
    // Starts at 02:00 local; with the server at UTC+3 that is 23:00 UTC the day before.
    let mut row = deployment(1, "PS120001", "Soon", false);
    row.present_time_enabled = true;
    row.present_time = Some(at(2026, 6, 1) + chrono::Duration::hours(2));
    let mut c = clock();
    let rows = known_with(vec![row]);
    assert_eq!(
        rejection(
            &decide(&rows, Some(UEFI_X64), &policy(), &c, &images()),
            "PS120001"
        ),
        Some(Rejection::NotStarted)
    );
    c.local_offset = FixedOffset::east_opt(3 * 3600).unwrap();
    assert_eq!(
        menu(&decide(&rows, Some(UEFI_X64), &policy(), &c, &images())),
        entries(&[("PS120001", 'A')])
    );
}

#[test]
fn required_already_run_is_offered_as_available_until_cleared() {
    let mut rows = known_with(vec![deployment(1, "PS120002", "Rebuild", true)]);
    rows.last_pxe = vec![LastPxeRow {
        machine_id: Some(1),
        advertisement_id: "PS120002".into(),
        time: None,
    }];
    assert_eq!(menu(&run(&rows, UEFI_X64)), entries(&[("PS120002", 'A')]));
    rows.last_pxe.clear(); // "Clear Required PXE Deployments"
    assert_eq!(menu(&run(&rows, UEFI_X64)), entries(&[("PS120002", 'R')]));
}

#[test]
fn hidden_counts_only_when_required() {
    let mut hidden = deployment(1, "PS12000A", "Hidden", false);
    hidden.advert_flags = flags::HIDDEN_IN_WINPE;
    let mut hidden_required = deployment(1, "PS12000B", "Hidden required", true);
    hidden_required.advert_flags = flags::HIDDEN_IN_WINPE;
    let mut media_only = deployment(1, "PS120009", "Media only", false);
    media_only.advert_flags = flags::TARGET_TO_WINPE;
    let out = run(&known_with(vec![hidden, hidden_required, media_only]), UEFI_X64);
    assert_eq!(menu(&out), entries(&[("PS12000B", 'R'), ("PS120009", 'A')]));
    assert_eq!(rejection(&out, "PS12000A"), Some(Rejection::Hidden));
}

#[test]
fn no_boot_image_wrong_architecture_and_image_not_here() {
    let mut no_image = deployment(1, "PS120006", "No image", false);
    no_image.boot_image_id = Some(String::new());
    let mut x86 = deployment(1, "PS120007", "x86", false);
    x86.boot_image_id = Some("PS100003".into());
    x86.boot_image_architecture = Some("x86".into());
    let mut elsewhere = deployment(1, "PS120008", "Elsewhere", false);
    elsewhere.boot_image_id = Some("PS100006".into());
    let rows = known_with(vec![no_image, x86, elsewhere]);

    let uefi = run(&rows, UEFI_X64);
    assert!(menu(&uefi).is_empty());
    assert_eq!(rejection(&uefi, "PS120006"), Some(Rejection::NoBootImage));
    assert_eq!(
        rejection(&uefi, "PS120007"),
        Some(Rejection::WrongArchitecture { image: "x86".into() })
    );
    assert_eq!(
        rejection(&uefi, "PS120008"),
        Some(Rejection::ImageNotOnServer {
            boot_image_id: "PS100006".into()
        })
    );
    assert!(matches!(uefi.decision, BootDecision::Exit { .. }));

    // A 64-bit BIOS machine runs x86 WinPE too.
    assert_eq!(menu(&run(&rows, BIOS_X64)), entries(&[("PS120007", 'A')]));
}

#[test]
fn exact_architecture_comes_before_compatible() {
    let mut x86 = deployment(1, "PS120009", "x86", false);
    x86.boot_image_id = Some("PS100003".into());
    x86.boot_image_architecture = Some("x86".into());
    let x64 = deployment(1, "PS120001", "x64", false);
    assert_eq!(
        menu(&run(&known_with(vec![x86, x64]), BIOS_X64)),
        entries(&[("PS120001", 'A'), ("PS120009", 'A')])
    );
}

#[test]
fn configurable_order() {
    let rows = known_with(vec![
        deployment(1, "PS120001", "Zeta", false),
        deployment(1, "PS120003", "alpha", false),
        deployment(1, "PS120002", "Mu", false),
    ]);
    let with = |order| {
        let p = Policy { order, ..policy() };
        menu(&decide(&rows, Some(UEFI_X64), &p, &clock(), &images()))
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    assert_eq!(with(MenuOrder::Newest), ["PS120003", "PS120002", "PS120001"]);
    assert_eq!(with(MenuOrder::Oldest), ["PS120001", "PS120002", "PS120003"]);
    assert_eq!(with(MenuOrder::Name), ["PS120003", "PS120002", "PS120001"]);
}

#[test]
fn guid_only_and_mac_only_matches() {
    let guid_only = SiteRows {
        devices: vec![device(7, true, false)],
        deployments: vec![deployment(7, "PS120001", "W11", false)],
        ..SiteRows::default()
    };
    assert_eq!(menu(&run(&guid_only, UEFI_X64)), entries(&[("PS120001", 'A')]));
    let mac_only = SiteRows {
        devices: vec![device(8, false, true)],
        deployments: vec![deployment(8, "PS120002", "W11", true)],
        ..SiteRows::default()
    };
    assert_eq!(menu(&run(&mac_only, UEFI_X64)), entries(&[("PS120002", 'R')]));
}

#[test]
fn device_ranking_prefers_both_then_guid_and_skips_obsolete() {
    let mut obsolete = device(99, true, true);
    obsolete.obsolete = true;
    let mut retired = device(98, true, true);
    retired.decommissioned = true;
    let rows = [
        device(10, false, true),
        device(5, true, false),
        obsolete.clone(),
        retired,
    ];
    assert_eq!(pick_device(&rows).unwrap().resource_id, 5, "GUID beats MAC");
    let rows = [device(10, false, true), device(11, false, true)];
    assert_eq!(
        pick_device(&rows).unwrap().resource_id,
        11,
        "highest ResourceID on a tie"
    );
    let rows = [device(5, true, false), device(6, true, true)];
    assert_eq!(pick_device(&rows).unwrap().resource_id, 6, "both beats GUID");
    assert_eq!(pick_device(&[obsolete]), None);
}

fn unknown_rows() -> SiteRows {
    let mut x86 = deployment(2046820352, "PS120021", "W10 x86", false);
    x86.boot_image_id = Some("PS100003".into());
    x86.boot_image_architecture = Some("x86".into());
    SiteRows {
        unknown: vec![
            unknown(2046820352, "x86", "PS1"),
            unknown(2046820353, "x64", "PS1"),
            unknown(2046820368, "x86", "PS2"),
            unknown(2046820369, "x64", "PS2"),
        ],
        deployments: vec![
            x86,
            deployment(2046820353, "PS120020", "W11", false),
            deployment(2046820369, "PS220020", "Other site", false),
        ],
        ..SiteRows::default()
    }
}

#[test]
fn unknown_computer_x64_x86_and_arm64() {
    let mut rows = unknown_rows();
    // The query returns only the objects of the client's CPU type; emulate that per case.
    rows.unknown.retain(|u| u.cpu_type == "x64");
    let x64 = run(&rows, UEFI_X64);
    assert_eq!(x64.target.resource_id(), Some(2046820353));
    assert_eq!(menu(&x64), entries(&[("PS120020", 'A')]));

    let mut rows = unknown_rows();
    rows.unknown.retain(|u| u.cpu_type == "x86");
    let x86 = run(&rows, UEFI_X86);
    assert_eq!(x86.target.resource_id(), Some(2046820352));
    assert_eq!(menu(&x86), entries(&[("PS120021", 'A')]));

    let mut rows = unknown_rows();
    rows.unknown.retain(|u| u.cpu_type == "arm64");
    let arm = run(&rows, UEFI_ARM64);
    assert_eq!(arm.target, Target::Nobody(NoTarget::NoUnknownObject));
    assert!(matches!(arm.decision, BootDecision::Exit { .. }));
}

#[test]
fn unknown_object_of_the_configured_site_wins() {
    let rows = unknown_rows();
    let p = Policy {
        site_code: Some("PS2".into()),
        ..policy()
    };
    let out = decide(&rows, Some(UEFI_X64), &p, &clock(), &images());
    assert_eq!(out.target.resource_id(), Some(2046820369));
    assert_eq!(menu(&out), entries(&[("PS220020", 'A')]));
}

#[test]
fn unknown_computers_disabled_or_nothing_deployed() {
    let off = Policy {
        unknown_computers: false,
        nothing_deployed: NothingDeployed::Ignore,
        ..Policy::default()
    };
    let out = decide(&unknown_rows(), Some(UEFI_X64), &off, &clock(), &images());
    assert_eq!(out.target, Target::Nobody(NoTarget::UnknownComputersDisabled));
    assert_eq!(out.decision, BootDecision::Ignore);
    let out = decide(&unknown_rows(), None, &policy(), &clock(), &images());
    assert_eq!(out.target, Target::Nobody(NoTarget::UnsupportedArchitecture));
}

#[test]
fn unknown_deployments_never_reach_a_known_device() {
    let mut rows = unknown_rows();
    rows.devices = vec![device(1, true, true)];
    let out = run(&rows, UEFI_X64);
    assert!(matches!(out.target, Target::Known(_)));
    assert!(menu(&out).is_empty());
}

#[test]
fn a_deployment_reaching_through_two_collections_is_listed_once() {
    let rows = known_with(vec![
        deployment(1, "PS120001", "W11", false),
        deployment(1, "PS120001", "W11", false),
    ]);
    let out = run(&rows, UEFI_X64);
    assert_eq!(menu(&out), entries(&[("PS120001", 'A')]));
    assert_eq!(rejection(&out, "PS120001"), Some(Rejection::Duplicate));
}

#[test]
fn menu_settings_are_carried() {
    let p = Policy {
        menu_title: Some("Site PS1".into()),
        menu_timeout_secs: Some(15),
        wimboot_args: Some("gui".into()),
        ..policy()
    };
    let out = decide(
        &known_with(vec![deployment(1, "PS120002", "R", true)]),
        Some(UEFI_X64),
        &p,
        &clock(),
        &images(),
    );
    let BootDecision::Boot(menu) = out.decision else {
        panic!()
    };
    assert_eq!(menu.title.as_deref(), Some("Site PS1"));
    assert_eq!(menu.timeout_secs, Some(15));
    assert_eq!(menu.entries[0].deployment, Deployment::Required);
    let BootTarget::Wimboot { wimboot_args, .. } = &menu.entries[0].target else {
        panic!()
    };
    assert_eq!(wimboot_args.as_deref(), Some("gui"));
}

fn file(name: &str, path: &str, secret: bool) -> WimbootFile {
    WimbootFile {
        name: name.into(),
        path: path.into(),
        secret,
    }
}

fn handoff_policy() -> Policy {
    Policy {
        handoff: Handoff {
            enabled: true,
            files: vec![
                file("winpeshl.ini", "handoff/winpeshl-x64.ini", false),
                file("netboot-prestart.vbs", "handoff/netboot-prestart.vbs", false),
            ],
            boot_images: [(
                "PS100004".to_owned(),
                vec![
                    file("WINPESHL.INI", "handoff/PS100004/winpeshl.ini", false),
                    file("variables.dat", "PS100004/variables.dat", true),
                ],
            )]
            .into(),
            computer_name: true,
            preferred_deployment: true,
            variables: [("SMSTSLanguagePackID".to_owned(), "1031".to_owned())].into(),
        },
        ..policy()
    }
}

fn wimboot_parts(outcome: &Outcome) -> (Vec<WimbootFile>, BTreeMap<String, String>) {
    let BootDecision::Boot(menu) = &outcome.decision else {
        panic!("{:?}", outcome.decision)
    };
    let BootTarget::Wimboot { files, variables, .. } = &menu.entries[0].target else {
        panic!()
    };
    (files.clone(), variables.clone())
}

#[test]
fn the_handoff_adds_the_boot_images_files_and_the_machines_variables() {
    let rows = known_with(vec![deployment(1, "PS120002", "Windows 11", true)]);
    let outcome = decide(&rows, Some(UEFI_X64), &handoff_policy(), &clock(), &images());
    let (files, variables) = wimboot_parts(&outcome);
    // The boot image's own winpeshl.ini replaces the common one (names are case-insensitive).
    assert_eq!(
        files,
        vec![
            file("netboot-prestart.vbs", "handoff/netboot-prestart.vbs", false),
            file("WINPESHL.INI", "handoff/PS100004/winpeshl.ini", false),
            file("variables.dat", "PS100004/variables.dat", true),
        ]
    );
    assert_eq!(variables["OSDComputerName"], "PC-1");
    assert_eq!(variables["SMSTSPreferredAdvertID"], "PS120002");
    assert_eq!(variables["SMSTSLanguagePackID"], "1031");
}

#[test]
fn unknown_computers_get_no_computer_name_and_the_handoff_can_be_off() {
    let rows = SiteRows {
        unknown: vec![unknown(2_046_820_353, "x64", "PS1")],
        deployments: vec![deployment(2_046_820_353, "PS120003", "Unknown OSD", false)],
        ..SiteRows::default()
    };
    let outcome = decide(&rows, Some(UEFI_X64), &handoff_policy(), &clock(), &images());
    let (_, variables) = wimboot_parts(&outcome);
    assert!(!variables.contains_key("OSDComputerName"));
    assert_eq!(variables["SMSTSPreferredAdvertID"], "PS120003");

    let rows = known_with(vec![deployment(1, "PS120002", "Windows 11", true)]);
    let (files, variables) = wimboot_parts(&run(&rows, UEFI_X64));
    assert!(files.is_empty() && variables.is_empty());
}

#[test]
fn a_computer_name_that_cannot_be_handed_over_is_left_out() {
    let mut rows = known_with(vec![deployment(1, "PS120002", "Windows 11", true)]);
    rows.devices[0].name = Some("PC\r\nSMSTSMP=http://evil".into());
    let outcome = decide(&rows, Some(UEFI_X64), &handoff_policy(), &clock(), &images());
    let (_, variables) = wimboot_parts(&outcome);
    assert!(!variables.contains_key("OSDComputerName"));
}

/// The decision after this server's own run records: `ran` lists the deployments the machine
/// is recorded to have run (what the `RequiredOnce` layer finds in the ledger).
fn with_runs(outcome: &Outcome, ran: &[&str]) -> (Vec<(String, char)>, Vec<String>) {
    let mut after = outcome.clone();
    let demoted = netboot_core::offer_as_available(&mut after.decision, |a| ran.contains(&a.id.as_str()));
    (menu(&after), demoted)
}

#[test]
fn own_run_record_offers_a_known_devices_required_deployment_as_available() {
    let rows = known_with(vec![
        deployment(1, "PS120002", "Rebuild", true),
        deployment(1, "PS120003", "Other rebuild", true),
        deployment(1, "PS120001", "W11", false),
    ]);
    let out = run(&rows, UEFI_X64);
    assert_eq!(
        menu(&out),
        entries(&[("PS120003", 'R'), ("PS120002", 'R'), ("PS120001", 'A')])
    );
    // Only the deployment that ran changes; the other Required one still boots by itself.
    let (after, demoted) = with_runs(&out, &["PS120002"]);
    assert_eq!(
        after,
        entries(&[("PS120003", 'R'), ("PS120002", 'A'), ("PS120001", 'A')])
    );
    assert_eq!(demoted, ["PS120002"]);
    // Cleared: Required again.
    assert_eq!(with_runs(&out, &[]).0, menu(&out));
}

#[test]
fn last_pxe_does_not_touch_unknown_computers_but_own_records_do() {
    let mut rows = unknown_rows();
    rows.unknown.retain(|u| u.cpu_type == "x64");
    rows.deployments[1].offer_type = Some(0);
    // The site's record does not apply to an unknown computer object...
    rows.last_pxe = vec![LastPxeRow {
        machine_id: None,
        advertisement_id: "PS120020".into(),
        time: None,
    }];
    let out = run(&rows, UEFI_X64);
    assert_eq!(menu(&out), entries(&[("PS120020", 'R')]));
    // ...but this server's record, kept per MAC and UUID, does.
    assert_eq!(with_runs(&out, &["PS120020"]).0, entries(&[("PS120020", 'A')]));
}

#[test]
fn site_last_pxe_rows_and_own_records_both_count() {
    let mut rows = known_with(vec![
        deployment(1, "PS120002", "Ran per the site", true),
        deployment(1, "PS120003", "Ran per this server", true),
        deployment(1, "PS120004", "Not run", true),
    ]);
    rows.last_pxe = vec![LastPxeRow {
        machine_id: Some(1),
        advertisement_id: "PS120002".into(),
        time: None,
    }];
    let out = run(&rows, UEFI_X64);
    let (after, demoted) = with_runs(&out, &["PS120003"]);
    assert_eq!(
        after,
        entries(&[("PS120004", 'R'), ("PS120003", 'A'), ("PS120002", 'A')])
    );
    assert_eq!(
        demoted,
        ["PS120003"],
        "the site's own demotion is not counted twice"
    );
}

#[test]
fn resource_id_is_given_for_known_devices_only() {
    let resource = |out: &Outcome| match &out.decision {
        BootDecision::Boot(menu) => menu.resource_id,
        _ => panic!("expected a menu"),
    };
    let known = run(&known_with(vec![deployment(1, "PS120002", "R", true)]), UEFI_X64);
    assert_eq!(resource(&known), Some(1));
    let mut rows = unknown_rows();
    rows.unknown.retain(|u| u.cpu_type == "x64");
    let unknown = run(&rows, UEFI_X64);
    assert_eq!(unknown.target.resource_id(), Some(2046820353));
    assert_eq!(
        resource(&unknown),
        None,
        "an unknown computer object is no machine's id"
    );
}

#[test]
fn ids_with_path_or_script_characters_never_reach_the_menu() {
    let hostile = [
        "../PS1",
        "PS1/../../etc",
        "PS1\\x",
        "PS1${x}",
        "PS1 || shell",
        "PS1;reboot",
        "PS1\nchain http://evil",
        "PS1%2e%2e",
        "PS12000100000000001",
    ];
    for bad in hostile {
        let mut bad_deployment = deployment(1, bad, "Bad deployment id", true);
        bad_deployment.boot_image_id = Some("PS100004".into());
        let mut bad_image = deployment(1, "PS120005", "Bad image id", true);
        bad_image.boot_image_id = Some(bad.into());
        let mut images = images();
        // Even were a file found under the hostile name, it is never looked up.
        images.insert(bad.to_string(), images["PS100004"].clone());
        let rows = known_with(vec![
            bad_deployment,
            bad_image,
            deployment(1, "PS120001", "W11", false),
        ]);
        let out = decide(&rows, Some(UEFI_X64), &policy(), &clock(), &images);
        assert_eq!(menu(&out), entries(&[("PS120001", 'A')]), "{bad:?}");
        assert_eq!(rejection(&out, bad), Some(Rejection::UnsafeId), "{bad:?}");
        assert_eq!(rejection(&out, "PS120005"), Some(Rejection::UnsafeId), "{bad:?}");
    }
}
