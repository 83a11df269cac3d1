use netboot_core::{BootAction, BootMenu, Deployment};

use super::*;

fn gate(toml: &str) -> AuthGate {
    let config = Config::from_toml_str(toml).unwrap();
    AuthGate::from_config(&config, Some(TokenKey::from_bytes([3; 32])), &Url::path("/")).unwrap()
}

fn linux(id: &str, kernel: &str, auth: bool) -> BootAction {
    BootAction {
        id: id.into(),
        title: id.into(),
        deployment: Deployment::Available,
        target: BootTarget::Linux {
            kernel: kernel.into(),
            initrds: vec![format!("{kernel}.initrd")],
            cmdline: None,
        },
        auth,
    }
}

fn menu(entries: Vec<BootAction>) -> BootDecision {
    BootDecision::Boot(BootMenu {
        entries,
        ..BootMenu::default()
    })
}

#[test]
fn only_marked_actions_or_require_all_need_a_login_and_their_files_are_protected() {
    let gate = gate("[auth]\nenabled = true\n");
    assert!(!gate.requires(&menu(vec![linux("open", "open/vmlinuz", false)])));
    assert!(!gate.is_protected("/open/vmlinuz"));
    assert!(gate.requires(&menu(vec![
        linux("open", "open/vmlinuz", false),
        linux("locked", "Locked/Vmlinuz", true),
    ])));
    assert!(gate.is_protected("/locked/vmlinuz"));
    assert!(gate.is_protected("//locked/./vmlinuz.initrd"));
    assert!(gate.is_protected("/Locked/%56mlinuz"));
    assert!(!gate.is_protected("/open/vmlinuz"));
    assert!(!gate.requires(&BootDecision::EXIT));

    let all = super::tests::gate("[auth]\nenabled = true\nrequire = \"all\"\n");
    assert!(all.requires(&menu(vec![linux("open", "open/vmlinuz", false)])));
    assert!(all.is_protected("/open/vmlinuz"));
}

#[test]
fn unknown_machines_need_a_login_only_where_the_resolver_knows_machines() {
    let static_gate = gate("[auth]\nenabled = true\nunknown_machines = true\n");
    assert!(!static_gate.requires(&menu(vec![linux("a", "a/k", false)])));
    let mut configmgr = static_gate;
    configmgr.knows_machines = true;
    assert!(configmgr.requires(&menu(vec![linux("a", "a/k", false)])));
    let known = BootDecision::Boot(BootMenu {
        entries: vec![linux("a", "a/k", false)],
        resource_id: Some(16777220),
        ..BootMenu::default()
    });
    assert!(!configmgr.requires(&known));
}

#[test]
fn static_actions_marked_auth_are_protected_from_the_start() {
    let gate = gate(
        "[auth]\nenabled = true\n[[resolver.static.actions]]\nid = \"tools\"\ntitle = \"Tools\"\nauth = true\n\
         target = { kind = \"linux\", kernel = \"tools/vmlinuz\" }\n",
    );
    assert!(gate.is_protected("/tools/vmlinuz"));
}

#[test]
fn require_available_asks_a_login_for_available_actions_only() {
    let gate = gate("[auth]\nenabled = true\nrequire = \"available\"\n");
    let mut required = linux("task-sequence", "ts/vmlinuz", false);
    required.deployment = Deployment::Required;
    assert!(!gate.requires(&menu(vec![required.clone()])));
    assert!(!gate.is_protected("/ts/vmlinuz"));
    assert!(gate.requires(&menu(vec![required, linux("tools", "tools/vmlinuz", false)])));
    assert!(gate.is_protected("/tools/vmlinuz"));
    assert!(!gate.is_protected("/ts/vmlinuz"));
}

#[test]
fn static_machine_rules_and_available_lists_protect_their_actions_from_the_start() {
    let actions = "[[resolver.static.actions]]\nid = \"tools\"\ntitle = \"Tools\"\n\
         target = { kind = \"linux\", kernel = \"tools/vmlinuz\" }\n\
         [[resolver.static.actions]]\nid = \"os\"\ntitle = \"OS\"\n\
         target = { kind = \"linux\", kernel = \"os/vmlinuz\" }\n";
    let by_rule = gate(&format!(
        "[auth]\nenabled = true\n{actions}[[resolver.static.machines]]\nmac = \"52:54:00:00:00:01\"\n\
         auth = true\nrequired = [\"os\"]\n[[resolver.static.machines]]\navailable = [\"tools\"]\n"
    ));
    assert!(by_rule.is_protected("/os/vmlinuz"));
    assert!(!by_rule.is_protected("/tools/vmlinuz"));
    let by_list = gate(&format!(
        "[auth]\nenabled = true\nrequire = \"available\"\n{actions}[[resolver.static.machines]]\n\
         required = [\"os\"]\navailable = [\"tools\"]\n"
    ));
    assert!(by_list.is_protected("/tools/vmlinuz"));
    assert!(!by_list.is_protected("/os/vmlinuz"));
}

#[tokio::test]
async fn an_open_menu_offering_protected_files_carries_a_token_for_that_machine_only() {
    let gate = gate("[auth]\nenabled = true\n");
    let mac: MacAddr = "52:54:00:00:00:07".parse().unwrap();
    let peer: IpAddr = "192.0.2.7".parse().unwrap();
    let now = SystemTime::now();
    // Another machine's menu needed a login for the tools; this machine has them openly.
    assert!(gate.requires(&menu(vec![linux("tools", "tools/vmlinuz", true)])));
    let open = menu(vec![linux("tools", "tools/vmlinuz", false)]);
    let (step, verdict) = gate.step(&open, mac, peer, true, None, now).await;
    assert!(verdict.is_none());
    let Step::Granted(token) = step else {
        panic!("an open menu with protected files gets a token, got {step:?}")
    };
    let query = format!("auth={token}&mac={mac}");
    assert_eq!(gate.check_file(Some(&query), peer, now), Ok(()));
    let elsewhere: IpAddr = "192.0.2.8".parse().unwrap();
    assert!(gate.check_file(Some(&query), elsewhere, now).is_err());
    // A menu with nothing protected stays as it was: no token.
    let plain = menu(vec![linux("open", "open/vmlinuz", false)]);
    assert!(matches!(
        gate.step(&plain, mac, peer, true, None, now).await.0,
        Step::Open
    ));
}

#[test]
fn lockouts_last_until_the_deciding_failure_leaves_the_window() {
    let failures: VecDeque<u64> = [100, 110, 120].into_iter().collect();
    assert_eq!(locked_for(&failures, 4, 300, 130), None);
    assert_eq!(locked_for(&failures, 3, 300, 130), Some(270));
    assert_eq!(locked_for(&failures, 2, 300, 130), Some(280));
    assert_eq!(locked_for(&failures, 3, 300, 400), None);
    assert_eq!(
        locked_message(270),
        "Too many failed logins: locked for 5 minutes, trying the next boot device"
    );
    assert_eq!(
        locked_message(1),
        "Too many failed logins: locked for 1 minute, trying the next boot device"
    );
}

#[test]
fn paths_of_rendered_urls() {
    assert_eq!(url_path_of("/a/b?auth=x"), "/a/b");
    assert_eq!(url_path_of("https://boot.example/a/b?x"), "/a/b");
    assert_eq!(url_path_of("https://boot.example"), "/");
}

#[test]
fn tokens_verify_only_for_their_machine_and_address() {
    let gate = gate("[auth]\nenabled = true\n");
    let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    let token = gate.issue(mac, ip, "alice", 1_000).unwrap();
    let at = |secs| UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let query = format!("auth={token}&mac=52-54-00-12-34-56");
    assert_eq!(gate.check_file(Some(&query), ip, at(1_001)), Ok(()));
    assert_eq!(
        gate.check_file(Some(&query), "10.0.0.6".parse().unwrap(), at(1_001)),
        Err(FileRefusal::Token(TokenError::WrongAddress))
    );
    assert_eq!(
        gate.check_file(Some(&query), ip, at(1_000 + 600)),
        Err(FileRefusal::Token(TokenError::Expired))
    );
    let other = format!("auth={token}&mac=52-54-00-12-34-57");
    assert_eq!(
        gate.check_file(Some(&other), ip, at(1_001)),
        Err(FileRefusal::Token(TokenError::WrongMachine))
    );
    assert_eq!(
        gate.check_file(Some("mac=52-54-00-12-34-56"), ip, at(1_001)),
        Err(FileRefusal::NoToken)
    );
    assert_eq!(gate.check_file(None, ip, at(1_001)), Err(FileRefusal::NoToken));
}

#[test]
fn token_contexts_name_the_user_within_what_a_token_holds() {
    assert_eq!(token_context("alice"), "alice");
    assert_eq!(token_context("alice@example.org"), "alice_example.org");
    assert_eq!(token_context("EXAMPLE\\alice"), "EXAMPLE_alice");
    assert_eq!(
        token_context(&"x".repeat(100)).len(),
        netboot_token::MAX_CONTEXT_LEN
    );
    let gate = gate("[auth]\nenabled = true\n");
    let (mac, ip) = ("52:54:00:12:34:56".parse().unwrap(), "10.0.0.5".parse().unwrap());
    assert!(gate.issue(mac, ip, &token_context("*)(uid=*"), 1_000).is_some());
}

#[tokio::test]
async fn an_unreachable_directory_is_nobodys_failure() {
    // A port nothing listens on: connection refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gate = gate(&format!(
        "[auth]\nenabled = true\nrequire = \"all\"\nbackend = \"ldap\"\nmax_failures_per_user = 1\n\
         max_failures_per_machine = 1\n[auth.ldap]\nurl = \"ldap://127.0.0.1:{port}\"\n\
         allow_plain = true\nupn_suffix = \"example.org\"\ntimeout_secs = 2\n"
    ));
    let decision = menu(vec![linux("a", "a/k", false)]);
    let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
    let peer: IpAddr = "10.0.0.5".parse().unwrap();
    for attempt in 1..=3 {
        let login = LoginForm {
            username: "alice".into(),
            password: "a password".into(),
            attempt,
        };
        let (step, verdict) = gate
            .step(&decision, mac, peer, true, Some(&login), SystemTime::now())
            .await;
        let Some((_, Verdict::Unavailable(error))) = verdict else {
            panic!("attempt {attempt}: {verdict:?}");
        };
        assert!(error.contains("connecting to ldap://127.0.0.1"), "{error}");
        let Step::Answer(script) = step else {
            panic!("{step:?}")
        };
        let script = script.render();
        assert!(script.contains(DIRECTORY_DOWN), "{script}");
    }
    // An empty password is refused before any connection, and counts.
    let empty = LoginForm {
        username: "alice".into(),
        password: String::new(),
        attempt: 1,
    };
    let (_, verdict) = gate
        .step(&decision, mac, peer, true, Some(&empty), SystemTime::now())
        .await;
    assert_eq!(verdict.unwrap().1, Verdict::Refused("empty password"));
    let (_, verdict) = gate
        .step(&decision, mac, peer, true, Some(&empty), SystemTime::now())
        .await;
    assert!(matches!(verdict.unwrap().1, Verdict::Locked(_)));
}
