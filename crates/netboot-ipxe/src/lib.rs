//! Typed, injection-safe iPXE scripts.
//!
//! iPXE scripts have no quoting or escaping, and iPXE expands `${...}` again inside expanded
//! values, so this crate never splices text into templates. Scripts are built from typed
//! parts ([`Script`]) where every argument is one of:
//!
//! * [`DisplayText`]: untrusted text reduced to a whitelist (`$`, `{`, `#`, `|`, control
//!   characters and newlines can never survive);
//! * [`Identifier`] / [`Label`]: validated ids and server-generated menu keys;
//! * [`Url`]: percent-encoded URLs;
//! * [`Setting`]: the only source of `${...}`, with names fixed by the server.
//!
//! [`decision_script`] turns a [`netboot_core::BootDecision`] into the script the HTTPS service
//! answers, [`ClientIdentity`] reads what iPXE reports, and [`check_script`] verifies that a
//! rendered script only contains lines iPXE understands. Pure: no IO, no clock.
//!
//! ```
//! use netboot_core::{BootDecision, MacAddr};
//! use netboot_ipxe::{check_script, decision_script, RenderOptions};
//! let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
//! let script = decision_script(&BootDecision::EXIT, &mac, &RenderOptions::default()).unwrap();
//! assert_eq!(script.render(), "#!ipxe\nexit 1\n");
//! check_script(&script.render()).unwrap();
//! ```

#![deny(missing_docs)]

mod check;
mod error;
mod identity;
mod render;
mod script;
mod text;
mod url;

pub use check::{check_script, emit_script, CheckError, CheckedLine, KNOWN_COMMANDS};
pub use error::ScriptError;
pub use identity::{arch_from_ipxe, ClientIdentity, IdentityError, FIELD_MAX};
pub use render::{
    approval_wait_script, decision_script, decision_script_with_handoff, entry_script, exit_script,
    fallback_script, login_script, Fallback, Handoff, ImageMark, RenderOptions, AUTH_QUERY_KEY, WAIT_SECS,
};
pub use script::{Arg, KernelArgs, Script, Wimboot};
pub use text::{is_display_safe, DisplayText, Identifier, Label, DISPLAY_TEXT_MAX};
pub use url::{QueryValue, Setting, Url};

/// The `${...}` references rendered scripts may contain; anything else is an injection.
pub const RENDERED_SETTINGS: &[&str] = &[
    "${netX/mac:hexhyp}",
    "${uuid}",
    "${buildarch}",
    "${platform}",
    "${manufacturer:hexhyp}",
    "${product:hexhyp}",
    "${serial:hexhyp}",
    "${asset:hexhyp}",
    "${selected}",
    "${username:hexhyp}",
    "${password:hexhyp}",
];

/// Entry points for `cargo fuzz` and the corpus test; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use netboot_core::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, MacAddr, WimbootFile};

    use crate::{
        check_script, decision_script, decision_script_with_handoff, fallback_script, ClientIdentity,
        Fallback, Handoff, ImageMark, RenderOptions, Url,
    };

    /// Treats `data` as a client's identity and as resolver-supplied names, renders every
    /// script kind from it and asserts the result passes [`check_script`] with no `${...}`
    /// beyond [`crate::RENDERED_SETTINGS`].
    ///
    /// # Panics
    /// When an injection gets through; that is the bug the fuzzer looks for.
    pub fn render_untrusted(data: &[u8]) {
        let identity = ClientIdentity::parse_form(data);
        let round_trip = ClientIdentity::parse_form(identity.to_form().as_bytes());
        assert_eq!(round_trip, identity, "form encoding must round-trip");
        let _ = identity.to_request();

        let text = String::from_utf8_lossy(data);
        let mut parts = text.split('\u{0}');
        let mut next = || parts.next().unwrap_or("x").to_owned();
        let entries = (0..3)
            .map(|i| BootAction {
                auth: false,
                id: next(),
                title: next(),
                deployment: if i == 0 {
                    Deployment::Required
                } else {
                    Deployment::Available
                },
                target: match i {
                    0 => BootTarget::Wimboot {
                        boot_wim: next(),
                        bcd: Some(next()),
                        boot_sdi: None,
                        files: vec![
                            WimbootFile {
                                name: next(),
                                path: next(),
                                secret: false,
                            },
                            WimbootFile {
                                name: next(),
                                path: next(),
                                secret: true,
                            },
                        ],
                        wimboot_args: Some(next()),
                        variables: [(next(), next())].into_iter().collect(),
                    },
                    1 => BootTarget::Linux {
                        kernel: next(),
                        initrds: vec![next()],
                        cmdline: Some(next()),
                    },
                    _ => BootTarget::Chain { url: next() },
                },
            })
            .collect();
        let mac = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        let menu = BootMenu {
            title: Some(next()),
            entries,
            timeout_secs: Some(30),
            resource_id: None,
        };
        let options = RenderOptions {
            wimboot: next(),
            ..RenderOptions::default()
        };
        let mut scripts = vec![fallback_script(&text, &Fallback::Exit).render()];
        scripts.push(
            fallback_script(
                &text,
                &Fallback::Retry {
                    delay_secs: 5,
                    entry: Url::path(&text),
                },
            )
            .render(),
        );
        scripts.push(
            decision_script(
                &BootDecision::Exit {
                    message: Some(text.to_string()),
                },
                &mac,
                &options,
            )
            .map(|s| s.render())
            .unwrap_or_default(),
        );
        let mut handoff = Handoff::new(
            Url::path("/boot.ipxe/handoff"),
            text.len() % 2 == 0,
            Url::path("/boot.ipxe"),
        );
        handoff.tokens = menu.entries.iter().map(|a| (a.id.clone(), next())).collect();
        let mut marked = handoff.clone();
        if let Some(first) = menu.entries.first() {
            handoff.waiting.insert(first.id.clone(), vec![next(), next()]);
            let mark = ImageMark {
                key: "required_run",
                value: next(),
            };
            marked.marks.insert(first.id.clone(), mark);
        }
        let mut authenticated = handoff.clone();
        authenticated.auth = Some(next());
        scripts.push(crate::login_script(&Url::path(&text), &[text.to_string()], 2).render());
        let decision = BootDecision::Boot(menu);
        for handoff in [None, Some(&handoff), Some(&marked), Some(&authenticated)] {
            if let Ok(script) = decision_script_with_handoff(&decision, &mac, &options, handoff) {
                scripts.push(script.render());
            }
        }
        for script in scripts.iter().filter(|s| !s.is_empty()) {
            assert_safe(script);
        }
    }

    /// Asserts that `script` passes the syntax check and holds only the server's own settings.
    ///
    /// # Panics
    /// When it does not.
    pub fn assert_safe(script: &str) {
        if let Err(e) = check_script(script) {
            panic!("rendered script fails the check: {e}\n{script}");
        }
        let mut rest = script;
        while let Some(start) = rest.find("${") {
            let reference = &rest[start..];
            let end = reference.find('}').map_or(reference.len(), |e| e + 1);
            assert!(
                crate::RENDERED_SETTINGS.contains(&&reference[..end]),
                "unexpected expansion {:?} in\n{script}",
                &reference[..end]
            );
            rest = &reference[end..];
        }
    }
}
