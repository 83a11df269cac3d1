//! Properties: no untrusted input reaches a script as anything but inert text.

use netboot_core::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, MacAddr};
use netboot_ipxe::{
    check_script, decision_script, emit_script, fuzzing, ClientIdentity, DisplayText, RenderOptions,
};
use proptest::prelude::*;

fn untrusted() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\\n\\r\\t\u{1b}$\\{\\}]{0,200}",
        Just("${password}".to_owned()),
        Just("a || shell\n:label".to_owned()),
        "[a-z]{0,5}(\\$\\{[a-z/]{0,8}\\}?){1,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_text_is_inert(input in untrusted()) {
        let text = DisplayText::new(&input);
        let s = text.as_str();
        prop_assert!(!s.is_empty());
        prop_assert!(!s.contains("${"), "expansion in {:?}", s);
        prop_assert!(!s.chars().any(|c| c.is_control() || "$#{}|&;\\\"".contains(c)), "unsafe char in {:?}", s);
        prop_assert!(!s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  "));
    }

    #[test]
    fn decisions_with_untrusted_text_render_safely(
        title in untrusted(), menu_title in untrusted(), message in untrusted(), path in untrusted(), args in untrusted(),
        deployments in proptest::collection::vec(any::<bool>(), 1..5),
    ) {
        let mac = MacAddr([0x52, 0x54, 0, 1, 2, 3]);
        let entries = deployments.iter().enumerate().map(|(i, required)| BootAction {
            auth: false,
            id: format!("id{i}"),
            title: title.clone(),
            deployment: if *required { Deployment::Required } else { Deployment::Available },
            target: BootTarget::Linux { kernel: path.clone(), initrds: vec![path.clone()], cmdline: Some(args.clone()) },
        }).collect();
        let menu = BootDecision::Boot(BootMenu { title: Some(menu_title), entries, timeout_secs: None, resource_id: None });
        if let Ok(script) = decision_script(&menu, &mac, &RenderOptions::default()) {
            fuzzing::assert_safe(&script.render());
        }
        let exit = decision_script(&BootDecision::Exit { message: Some(message) }, &mac, &RenderOptions::default()).unwrap();
        fuzzing::assert_safe(&exit.render());
    }

    #[test]
    fn identity_form_round_trips(
        mac in proptest::option::of("[0-9a-f]{2}(-[0-9a-f]{2}){5}"),
        serial in proptest::option::of("[^\u{0}]{1,100}"),
        product in proptest::option::of(any::<String>().prop_filter("non-empty", |s| !s.is_empty() && s.len() <= 256)),
    ) {
        let identity = ClientIdentity { mac, serial, product, ..ClientIdentity::default() };
        prop_assert_eq!(ClientIdentity::parse_form(identity.to_form().as_bytes()), identity);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = ClientIdentity::parse_form(&data).to_request();
        let _ = check_script(&String::from_utf8_lossy(&data));
        fuzzing::render_untrusted(&data);
    }

    #[test]
    fn checked_scripts_round_trip(title in untrusted(), cut in any::<prop::sample::Index>()) {
        let mac = MacAddr([0x52, 0x54, 0, 1, 2, 3]);
        let action = BootAction {
            auth: false,
            id: "a".into(),
            title,
            deployment: Deployment::Required,
            target: BootTarget::Chain { url: "next.ipxe".into() },
        };
        let decision = BootDecision::Boot(BootMenu { title: None, entries: vec![action], timeout_secs: None, resource_id: None });
        let text = decision_script(&decision, &mac, &RenderOptions::default()).unwrap().render();
        let lines = check_script(&text).unwrap();
        prop_assert_eq!(emit_script(&lines), text.clone());
        // A prefix cut inside a line is always refused, so a truncated download is never run.
        let cut = cut.index(text.len());
        if !text[..cut].ends_with('\n') && text.is_char_boundary(cut) {
            prop_assert!(check_script(&text[..cut]).is_err());
        }
    }
}
