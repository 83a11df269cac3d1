//! Rendered scripts compared with `testdata/ipxe/*.ipxe`. `UPDATE_GOLDEN=1 cargo test -p
//! netboot-ipxe` rewrites the files; review the diff before committing.

use std::path::PathBuf;

use netboot_core::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, MacAddr, WimbootFile};
use netboot_ipxe::{
    check_script, decision_script, decision_script_with_handoff, emit_script, entry_script, fallback_script,
    fuzzing, Fallback, Handoff, RenderOptions, Url,
};
use netboot_testkit::{golden, testdata};

fn golden_dir() -> PathBuf {
    testdata().join("ipxe")
}

fn assert_golden(name: &str, rendered: &str) {
    fuzzing::assert_safe(rendered);
    golden::check(&golden_dir().join(format!("{name}.ipxe")), rendered);
}

fn mac() -> MacAddr {
    "52:54:00:12:34:56".parse().unwrap()
}

fn winpe(deployment: Deployment) -> BootAction {
    BootAction {
        auth: false,
        id: "PS120010".into(),
        title: "Windows 11 23H2 x64 (PS120010)".into(),
        deployment,
        target: BootTarget::Wimboot {
            boot_wim: "sources/boot.wim".into(),
            bcd: Some("boot/BCD".into()),
            boot_sdi: Some("boot/boot.sdi".into()),
            files: vec![WimbootFile {
                name: "winpeshl.ini".into(),
                path: "inject/winpeshl.ini".into(),
                secret: false,
            }],
            wimboot_args: Some("gui".into()),
            variables: Default::default(),
        },
    }
}

fn debian() -> BootAction {
    BootAction {
        auth: false,
        id: "debian".into(),
        title: "Debian 12 installer".into(),
        deployment: Deployment::Available,
        target: BootTarget::Linux {
            kernel: "debian/linux".into(),
            initrds: vec!["debian/initrd.gz".into()],
            cmdline: Some("auto=true priority=critical console=ttyS0,115200".into()),
        },
    }
}

fn tools() -> BootAction {
    BootAction {
        auth: false,
        id: "tools".into(),
        title: "Rescue tools".into(),
        deployment: Deployment::Available,
        target: BootTarget::Chain {
            url: "https://tools.example/menu.ipxe".into(),
        },
    }
}

fn render(decision: BootDecision) -> String {
    decision_script(&decision, &mac(), &RenderOptions::default())
        .unwrap()
        .render()
}

/// A ConfigMgr entry with the Windows PE hand-off: public files, the site's media files
/// (secret) and per-machine variables.
fn handed_off(deployment: Deployment) -> BootAction {
    let mut action = winpe(deployment);
    action.id = "PS120002".into();
    let BootTarget::Wimboot { files, variables, .. } = &mut action.target else {
        unreachable!()
    };
    files.push(WimbootFile {
        name: "variables.dat".into(),
        path: "PS100004/variables.dat".into(),
        secret: true,
    });
    variables.insert("OSDComputerName".into(), "PC-0042".into());
    variables.insert("SMSTSPreferredAdvertID".into(), "PS120002".into());
    action
}

fn handoff(over_tls: bool) -> Handoff {
    let mut handoff = Handoff::new(Url::path("/boot.ipxe/handoff"), over_tls, Url::path("/boot.ipxe"));
    handoff.tokens = [("PS120002".to_owned(), "AQdoYW5k.b2Zm-_x".to_owned())].into();
    handoff
}

#[test]
fn a_boot_image_still_being_copied_says_so_and_asks_again() {
    let menu = BootMenu {
        entries: vec![handed_off(Deployment::Required)],
        ..BootMenu::default()
    };
    let mut handoff = handoff(true);
    handoff.waiting.insert(
        "PS120002".into(),
        vec![
            "Boot image PS100004 is being copied from distribution point dp01: 120 of 512 MiB".into(),
            "${evil} stays text".into(),
        ],
    );
    let script = decision_script_with_handoff(
        &BootDecision::Boot(menu),
        &mac(),
        &RenderOptions::default(),
        Some(&handoff),
    )
    .unwrap()
    .render();
    assert_golden("handoff-waiting", &script);
    assert!(
        script.contains("sleep 10\nchain --autofree --replace /boot.ipxe || goto failed"),
        "{script}"
    );
    assert!(!script.contains("initrd"));
}

#[test]
fn handoff_files_come_first_from_per_boot_urls() {
    let menu = BootMenu {
        entries: vec![handed_off(Deployment::Required)],
        ..BootMenu::default()
    };
    let decision = BootDecision::Boot(menu);
    let render = |handoff: Option<&Handoff>| {
        decision_script_with_handoff(&decision, &mac(), &RenderOptions::default(), handoff)
            .unwrap()
            .render()
    };
    let over_tls = render(Some(&handoff(true)));
    assert_golden("handoff-https", &over_tls);
    // The public file keeps its path; the secret file and the variables come per boot.
    assert!(over_tls.contains("initrd --name winpeshl.ini /inject/winpeshl.ini winpeshl.ini"));
    assert!(over_tls.contains(
        "initrd --name variables.dat /boot.ipxe/handoff/AQdoYW5k.b2Zm-_x/variables.dat?mac=${netX/mac:hexhyp} variables.dat"
    ));
    assert!(over_tls.contains("/boot.ipxe/handoff/AQdoYW5k.b2Zm-_x/netboot-variables.txt?mac="));
    assert!(
        !over_tls.contains("PS100004/variables.dat"),
        "the private path never reaches a script"
    );
    let plain = render(Some(&handoff(false)));
    assert_golden("handoff-plain-http", &plain);
    assert!(plain.contains("only served over HTTPS"));
    assert!(!plain.contains("initrd"), "{plain}");
    let without_token = render(None);
    assert!(without_token.contains("could not issue"));
    assert!(!without_token.contains("initrd"));
}

#[test]
fn bad_variables_are_refused() {
    let mut action = handed_off(Deployment::Available);
    if let BootTarget::Wimboot { variables, .. } = &mut action.target {
        variables.insert("Evil".into(), "x\r\nSMSTSMP=http://evil".into());
    }
    let decision = BootDecision::Boot(BootMenu {
        entries: vec![action],
        ..BootMenu::default()
    });
    assert!(
        decision_script_with_handoff(&decision, &mac(), &RenderOptions::default(), Some(&handoff(true)))
            .is_err()
    );
}

#[test]
fn exit() {
    assert_golden("exit", &render(BootDecision::EXIT));
    let message = BootDecision::Exit {
        message: Some("No deployment for ${serial}\nbye".into()),
    };
    assert_golden("exit-message", &render(message));
}

#[test]
fn one_required_counts_down() {
    let menu = BootMenu {
        title: None,
        entries: vec![winpe(Deployment::Required)],
        timeout_secs: None,
        resource_id: None,
    };
    assert_golden("required-wimboot", &render(BootDecision::Boot(menu)));
}

#[test]
fn one_required_without_countdown() {
    let menu = BootMenu {
        title: None,
        entries: vec![winpe(Deployment::Required)],
        timeout_secs: None,
        resource_id: None,
    };
    let options = RenderOptions {
        countdown_secs: 0,
        ..RenderOptions::default()
    };
    let script = decision_script(&BootDecision::Boot(menu), &mac(), &options)
        .unwrap()
        .render();
    assert_golden("required-immediate", &script);
}

#[test]
fn several_actions_make_a_menu() {
    let menu = BootMenu {
        title: Some("Deployments for THIS-PC01".into()),
        entries: vec![winpe(Deployment::Required), debian(), tools()],
        timeout_secs: Some(20),
        resource_id: None,
    };
    assert_golden("menu-required", &render(BootDecision::Boot(menu)));
    let menu = BootMenu {
        title: None,
        entries: vec![debian(), tools()],
        timeout_secs: None,
        resource_id: None,
    };
    assert_golden("menu-available", &render(BootDecision::Boot(menu)));
}

#[test]
fn absolute_file_base() {
    let options = RenderOptions {
        files_base: Url::absolute("https://pxe.example:8443/").unwrap(),
        wimboot: "ipxe/wimboot".into(),
        ..RenderOptions::default()
    };
    let menu = BootMenu {
        title: None,
        entries: vec![winpe(Deployment::Available)],
        timeout_secs: Some(0),
        resource_id: None,
    };
    let script = decision_script(&BootDecision::Boot(menu), &mac(), &options)
        .unwrap()
        .render();
    assert_golden("menu-absolute-base", &script);
}

#[test]
fn entry_and_fallbacks() {
    assert_golden("entry", &entry_script(&Url::path("/boot.ipxe/decide")).render());
    assert_golden(
        "fallback-exit",
        &fallback_script("resolver did not answer within 2s", &Fallback::Exit).render(),
    );
    let retry = Fallback::Retry {
        delay_secs: 10,
        entry: Url::path("/boot.ipxe"),
    };
    assert_golden(
        "fallback-retry",
        &fallback_script("static unavailable", &retry).render(),
    );
}

#[test]
fn malicious_titles_are_neutralised() {
    let mut action = debian();
    action.title = "x${password}y || shell\n:label \u{1b}[2J #comment line\\".into();
    let menu = BootMenu {
        title: Some("${net0/ip}\r\nchain http://evil/".into()),
        entries: vec![action],
        timeout_secs: None,
        resource_id: None,
    };
    assert_golden("menu-malicious", &render(BootDecision::Boot(menu)));
}

#[test]
fn invalid_ids_are_refused() {
    let mut action = winpe(Deployment::Required);
    action.id = "bad id".into();
    let menu = BootMenu {
        title: None,
        entries: vec![action],
        timeout_secs: None,
        resource_id: None,
    };
    assert!(decision_script(&BootDecision::Boot(menu), &mac(), &RenderOptions::default()).is_err());
    let mut action = debian();
    action.target = BootTarget::Linux {
        kernel: "k".into(),
        initrds: vec![],
        cmdline: Some("a=${password}".into()),
    };
    let menu = BootMenu {
        title: None,
        entries: vec![action],
        timeout_secs: None,
        resource_id: None,
    };
    assert!(decision_script(&BootDecision::Boot(menu), &mac(), &RenderOptions::default()).is_err());
}

#[test]
fn every_golden_file_is_valid_ipxe() {
    let mut count = 0;
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ipxe") {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = check_script(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                emit_script(&lines),
                text,
                "{} is not in canonical form",
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count >= 10,
        "expected the golden scripts in {}",
        golden_dir().display()
    );
}

#[test]
fn fuzz_corpus_renders_safely() {
    let dir = golden_dir().join("corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        fuzzing::render_untrusted(&std::fs::read(entry.unwrap().path()).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn every_builder_command() {
    use netboot_ipxe::{DisplayText, Identifier, KernelArgs, Label, Script, Setting};
    let (retry, done, list, user) = (
        Label::fixed("retry"),
        Label::fixed("done"),
        Label::fixed("creds"),
        Label::fixed("username"),
    );
    let image = Identifier::new("image", "kernel.efi").unwrap();
    let mut script = Script::new();
    script
        .comment(DisplayText::fixed("Every command the builder knows"))
        .label(&retry)
        .login()
        .or_goto(&done)
        .isset(Setting::new("username"))
        .or_goto(&retry)
        .iseq(Setting::new("platform"), DisplayText::fixed("efi"))
        .and_goto(&done)
        .set(&Label::fixed("attempt"), 2u64)
        .params(&list)
        .param(&list, &user, Setting::new("username"))
        .param(&list, &Label::fixed("password"), Setting::new("password"))
        .chain_with_params(&Url::path("/boot.ipxe/decide"), &list)
        .or_continue()
        .imgfetch(&Url::path("/kernel.efi"), &image)
        .imgargs(&image, &KernelArgs::parse("console=ttyS0 quiet").unwrap())
        .boot()
        .or_continue()
        .sleep(3)
        .label(&done)
        .exit(0);
    let rendered = script.render();
    let lines = check_script(&rendered).unwrap();
    assert_eq!(emit_script(&lines), rendered);
    golden::check(&golden_dir().join("builder-every-command.ipxe"), &rendered);
}
