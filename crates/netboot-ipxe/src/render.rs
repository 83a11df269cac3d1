//! Scripts for the HTTPS service: the entry script, decisions and the resolver fallback.

use std::collections::BTreeMap;

use netboot_core::handoff::{check_variables, VARIABLES_FILE};
use netboot_core::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, MacAddr, WimbootFile};

use crate::error::ScriptError;
use crate::script::{KernelArgs, Script, Wimboot};
use crate::text::{DisplayText, Identifier, Label};
use crate::url::{Setting, Url};

/// How decisions are turned into scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Base URL that relative boot-file paths resolve against (`/` or `https://host/files/`).
    pub files_base: Url,
    /// Where wimboot is, relative to `files_base` or absolute.
    pub wimboot: String,
    /// Seconds a single Required action waits for a key press before booting (0 = at once).
    pub countdown_secs: u32,
    /// Menu timeout when the decision does not set one (0 = wait for a choice).
    pub menu_timeout_secs: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            files_base: Url::path("/"),
            wimboot: "wimboot".into(),
            countdown_secs: 5,
            menu_timeout_secs: 30,
        }
    }
}

/// Per-boot URLs for the parts of a decision only its machine may fetch: the generated task
/// sequence variables file and `secret` files; and the marks that tell one entry's boot image
/// download apart from any other download of the same file.
///
/// A file is fetched from `<base>/<token>/<name>?mac=${netX/mac:hexhyp}`: the token (issued
/// by the caller for one action, one MAC and one client address) names the boot, iPXE
/// reports the MAC it boots from, and the server sees the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Base URL of the per-boot file route.
    pub base: Url,
    /// Whether the decision is served over TLS; secret files are only ever fetched over TLS.
    pub over_tls: bool,
    /// Token per action id (URL-safe text).
    pub tokens: BTreeMap<String, String>,
    /// Actions whose files are not ready yet (a boot image being copied from a distribution
    /// point), with what to tell the client; picking one shows the lines, waits
    /// [`WAIT_SECS`] and starts over at `retry` for a fresh decision.
    pub waiting: BTreeMap<String, Vec<String>>,
    /// Where a waiting client starts over (the entry script).
    pub retry: Url,
    /// A query parameter added to the boot image URL, per action id (`pxe-https` marks the
    /// Required entries whose complete download it records).
    pub marks: BTreeMap<String, ImageMark>,
    /// The login token of a machine that authenticated at its console (URL-safe text): added
    /// with the booting MAC to every boot-file URL under `files_base`, so the server can tell
    /// this machine's downloads of protected files apart from anyone else's.
    pub auth: Option<String>,
}

/// Seconds a client waits before asking again for a boot image that is not ready.
pub const WAIT_SECS: u32 = 10;

impl Handoff {
    /// No tokens and nothing waiting.
    pub fn new(base: Url, over_tls: bool, retry: Url) -> Self {
        Self {
            base,
            over_tls,
            tokens: BTreeMap::new(),
            waiting: BTreeMap::new(),
            retry,
            marks: BTreeMap::new(),
            auth: None,
        }
    }

    /// Whether `target` has parts that need a per-boot URL.
    pub fn needed_by(target: &BootTarget) -> bool {
        match target {
            BootTarget::Wimboot { files, variables, .. } => {
                !variables.is_empty() || files.iter().any(|f| f.secret)
            }
            _ => false,
        }
    }

    /// Whether `target` carries secret files.
    pub fn has_secrets(target: &BootTarget) -> bool {
        matches!(target, BootTarget::Wimboot { files, .. } if files.iter().any(|f| f.secret))
    }

    fn url(&self, token: &str, name: &Identifier) -> Url {
        Url::join(&self.base, &format!("{token}/{}", name.as_str()))
            .query("mac", Setting::typed("netX/mac", "hexhyp"))
    }
}

/// The query parameter that carries a login token on boot-file URLs.
pub const AUTH_QUERY_KEY: &str = "auth";

/// The login form a machine gets before a menu that needs authentication: it explains why,
/// runs iPXE's `login` (Esc cancels: the machine moves on to its next boot device) and POSTs
/// the user name, the password and the machine's identity to `login` with `params`, so the
/// password never appears in a URL.
///
/// The user name and password are sent in iPXE's `:hexhyp` form (`70-61-73-73`): iPXE expands
/// `${...}` again inside expanded values and joins words with single spaces, and `:uristring`
/// leaves `$`, `{` and `+` alone, so a password holding `${`, `+` or several spaces would
/// otherwise reach the server altered. `notice` (a refusal, attempts left) is shown above the
/// form.
pub fn login_script(login: &Url, notice: &[String], attempt: u32) -> Script {
    let list = Label::fixed("login");
    let cancelled = Label::fixed("cancelled");
    let failed = Label::fixed("failed");
    let param = |script: &mut Script, key: &'static str, value: Setting| {
        script.param(&list, &Label::fixed(key), value);
    };
    let mut script = Script::new();
    script.comment(DisplayText::fixed("Log in before this machine may boot"));
    for line in notice {
        script.echo(DisplayText::with_max(line, 120));
    }
    // A refused attempt leaves its password in iPXE's settings, where the next form would
    // show it (masked) for the user to type after; each form starts with an empty one. The
    // user name is kept, as login forms do.
    script.clear(&Label::fixed("password"));
    script
        .echo(DisplayText::fixed(
            "This machine needs a login to boot (Esc skips to the next boot device)",
        ))
        .login()
        .or_goto(&cancelled)
        .params(&list);
    param(&mut script, "username", Setting::typed("username", "hexhyp"));
    param(&mut script, "password", Setting::typed("password", "hexhyp"));
    script.param(&list, &Label::fixed("attempt"), u64::from(attempt));
    identity_params(&mut script, &list);
    script
        .chain_with_params(login, &list)
        .or_goto(&failed)
        .label(&cancelled)
        .echo(DisplayText::fixed("Login cancelled, trying the next boot device"))
        .exit(1)
        .label(&failed)
        .echo(DisplayText::fixed(
            "Could not reach the login service, trying the next boot device",
        ))
        .prompt(Some(5000), DisplayText::fixed("Press any key to continue"))
        .or_continue()
        .exit(1);
    script
}

/// The machine's identity as the entry script sends it, added to the form-parameter `list`.
fn identity_params(script: &mut Script, list: &Label) {
    let mut param = |key: &'static str, value: Setting| {
        script.param(list, &Label::fixed(key), value);
    };
    param("mac", Setting::typed("netX/mac", "hexhyp"));
    param("uuid", Setting::new("uuid"));
    param("buildarch", Setting::new("buildarch"));
    param("platform", Setting::new("platform"));
    param("manufacturer_hex", Setting::typed("manufacturer", "hexhyp"));
    param("product_hex", Setting::typed("product", "hexhyp"));
    param("serial_hex", Setting::typed("serial", "hexhyp"));
    param("asset_hex", Setting::typed("asset", "hexhyp"));
}

/// What a machine waiting for an operator's approval runs: it shows `lines` (the code to
/// approve and what to do with it), sleeps `poll_secs` and POSTs the code with its identity
/// to `approval`, which answers this script again while the code waits, the menu once it is
/// approved, or the way to the next boot device. Ctrl-C during the sleep moves on at once.
pub fn approval_wait_script(approval: &Url, code: &Identifier, lines: &[String], poll_secs: u32) -> Script {
    let list = Label::fixed("approval");
    let cancelled = Label::fixed("cancelled");
    let failed = Label::fixed("failed");
    let mut script = Script::new();
    script.comment(DisplayText::fixed("Wait for an operator to approve this machine"));
    for line in lines {
        script.echo(DisplayText::with_max(line, 120));
    }
    script
        .echo(DisplayText::fixed(
            "Waiting for approval (Ctrl-C skips to the next boot device)",
        ))
        .sleep(poll_secs)
        .or_goto(&cancelled)
        .params(&list);
    script.param(&list, &Label::fixed("code"), code.clone());
    identity_params(&mut script, &list);
    script
        .chain_with_params(approval, &list)
        .or_goto(&failed)
        .label(&cancelled)
        .echo(DisplayText::fixed(
            "Approval cancelled, trying the next boot device",
        ))
        .exit(1)
        .label(&failed)
        .echo(DisplayText::fixed(
            "Could not reach the approval service, trying the next boot device",
        ))
        .prompt(Some(5000), DisplayText::fixed("Press any key to continue"))
        .or_continue()
        .exit(1);
    script
}

/// What the client does when no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Exit to the firmware's next boot device.
    Exit,
    /// Wait and fetch the entry script again.
    Retry {
        /// Seconds to wait.
        delay_secs: u32,
        /// The entry script's URL.
        entry: Url,
    },
}

/// The static script iPXE fetches first. It reports the booting interface's MAC, the SMBIOS
/// UUID, the firmware type and SMBIOS strings to `decide` and replaces itself with the answer.
///
/// Free-text SMBIOS strings are sent in iPXE's `:hexhyp` form so a crafted value never meets
/// iPXE's recursive `${...}` expansion as text. Not `:hex`: its colons would make the relative
/// decision URL look absolute to iPXE, whose URI parser takes everything before the first
/// `:` anywhere in the string as the scheme ("Operation not supported", 3c092003).
pub fn entry_script(decide: &Url) -> Script {
    let failed = Label::fixed("failed");
    let url = decide
        .clone()
        .query("mac", Setting::typed("netX/mac", "hexhyp"))
        .query("uuid", Setting::new("uuid"))
        .query("buildarch", Setting::new("buildarch"))
        .query("platform", Setting::new("platform"))
        .query("manufacturer_hex", Setting::typed("manufacturer", "hexhyp"))
        .query("product_hex", Setting::typed("product", "hexhyp"))
        .query("serial_hex", Setting::typed("serial", "hexhyp"))
        .query("asset_hex", Setting::typed("asset", "hexhyp"));
    let mut script = Script::new();
    script
        .comment(DisplayText::fixed(
            "Report this machine and run the boot decision for it",
        ))
        .chain(&url)
        .or_goto(&failed)
        .label(&failed)
        .echo(DisplayText::fixed(
            "Could not fetch the boot decision, trying the next boot device",
        ))
        .prompt(Some(5000), DisplayText::fixed("Press any key to continue"))
        .or_continue()
        .exit(1);
    script
}

/// A query parameter added to one entry's boot image (`boot.wim`) URL (see
/// [`Handoff::marks`]). The value is percent-encoded like any query value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMark {
    /// The parameter name (`[A-Za-z0-9_.-]+`, fixed by the server).
    pub key: &'static str,
    /// Its value.
    pub value: String,
}

/// The answer for a decision: `exit`, a cancellable countdown for one Required action, or a
/// menu with `[R]`/`[A]` markers and the first Required entry preselected.
///
/// Fails when an action holds an invalid id, file name, URL or command line; the caller then
/// serves [`fallback_script`].
pub fn decision_script(
    decision: &BootDecision,
    mac: &MacAddr,
    options: &RenderOptions,
) -> Result<Script, ScriptError> {
    decision_script_with_handoff(decision, mac, options, None)
}

/// [`decision_script`] with per-boot URLs for variables and secret files. An action that
/// needs them but has no token, or carries secret files while the decision goes out over
/// plain HTTP, explains that on the console and fails to the menu instead of booting a
/// Windows PE that would stop without its task sequence.
pub fn decision_script_with_handoff(
    decision: &BootDecision,
    mac: &MacAddr,
    options: &RenderOptions,
    handoff: Option<&Handoff>,
) -> Result<Script, ScriptError> {
    let menu = match decision {
        BootDecision::Boot(menu) if !menu.entries.is_empty() => menu,
        BootDecision::Exit {
            message: Some(message),
        } => return Ok(exit_script(Some(message))),
        _ => return Ok(exit_script(None)),
    };
    let keys: Vec<Label> = (0..menu.entries.len()).map(|i| Label::indexed("a", i)).collect();
    let exit = Label::fixed("exit");
    let failed = Label::fixed("failed");
    let show_menu = Label::fixed("menu");
    let mut script = Script::new();
    script.comment(DisplayText::new(&format!("Boot decision for {mac}")));
    if handoff.is_some_and(|h| h.auth.is_some()) {
        // The login form left the password in iPXE's settings, where anything booted after
        // this script could still read it.
        script.clear(&Label::fixed("password"));
    }

    let single_required = menu.entries.len() == 1 && menu.entries[0].deployment == Deployment::Required;
    if single_required && options.countdown_secs > 0 {
        let title = DisplayText::new(&menu.entries[0].title);
        let text = format!(
            "Booting {title} in {} seconds, press any key for the menu",
            options.countdown_secs
        );
        script
            .prompt(
                Some(u64::from(options.countdown_secs) * 1000),
                DisplayText::with_max(&text, 120),
            )
            .and_goto(&show_menu)
            .goto(&keys[0]);
    } else if single_required {
        script.goto(&keys[0]);
    }
    script.label(&show_menu);
    render_menu(&mut script, menu, mac, &keys, options, single_required);

    for (action, key) in menu.entries.iter().zip(&keys) {
        script.label(key);
        render_action(&mut script, action, options, handoff, &failed)?;
    }
    script
        .label(&failed)
        .echo(DisplayText::fixed("Boot failed"))
        .prompt(
            Some(10_000),
            DisplayText::fixed("Press any key to return to the menu"),
        )
        .and_goto(&show_menu)
        .label(&exit)
        .exit(1);
    Ok(script)
}

fn render_menu(
    script: &mut Script,
    menu: &BootMenu,
    mac: &MacAddr,
    keys: &[Label],
    options: &RenderOptions,
    interrupted: bool,
) {
    let exit = Label::fixed("exit");
    let title = match &menu.title {
        Some(title) => DisplayText::new(title),
        None => DisplayText::new(&format!("Boot menu for {mac}")),
    };
    script.menu(title);
    for (heading, deployment) in [
        ("Required", Deployment::Required),
        ("Available", Deployment::Available),
    ] {
        let mut entries = menu
            .entries
            .iter()
            .zip(keys)
            .filter(|(a, _)| a.deployment == deployment)
            .peekable();
        if entries.peek().is_some() {
            script.item_gap(Some(DisplayText::fixed(heading)));
        }
        for (action, key) in entries {
            let text = format!("[{}] {}", deployment.marker(), DisplayText::new(&action.title));
            script.item(key, DisplayText::with_max(&text, 80));
        }
    }
    script.item_gap(None).item_with_shortcut(
        'x',
        &exit,
        DisplayText::fixed("Exit and continue with the next boot device"),
    );
    let default = menu.first_required().and_then(|required| {
        menu.entries
            .iter()
            .position(|a| std::ptr::eq(a, required))
            .map(|i| keys[i].clone())
    });
    // After someone interrupted a countdown, the menu waits for them instead of timing out.
    let timeout_secs = if interrupted {
        0
    } else {
        menu.timeout_secs.unwrap_or(options.menu_timeout_secs)
    };
    let timeout = (timeout_secs > 0).then(|| u64::from(timeout_secs) * 1000);
    let selection = Label::fixed("selected");
    script
        .choose(&selection, timeout, Some(default.as_ref().unwrap_or(&exit)))
        .or_goto(&exit)
        .goto_setting(Setting::new("selected"));
}

fn render_action(
    script: &mut Script,
    action: &BootAction,
    options: &RenderOptions,
    handoff: Option<&Handoff>,
    failed: &Label,
) -> Result<(), ScriptError> {
    Identifier::new("action id", &action.id)?;
    let auth = match handoff.and_then(|h| h.auth.as_deref()) {
        Some(token) if is_token(token) => Some(token),
        Some(_) => {
            return Err(ScriptError::InvalidIdentifier {
                kind: "login token",
                value: String::new(),
                reason: "may only contain A-Z, a-z, 0-9, '.', '_' and '-' (at most 512)",
            })
        }
        None => None,
    };
    let resolve = |reference: &str| -> Result<Url, ScriptError> {
        let url = Url::resolve(&options.files_base, reference)?;
        Ok(match auth {
            // Only URLs under the file root point at this server; the token stays there.
            Some(token) if !Url::is_absolute_reference(reference) => url
                .query(AUTH_QUERY_KEY, token)
                .query("mac", Setting::typed("netX/mac", "hexhyp")),
            _ => url,
        })
    };
    script.echo(DisplayText::new(&format!(
        "Booting {}",
        DisplayText::new(&action.title)
    )));
    match &action.target {
        BootTarget::Wimboot {
            boot_wim,
            bcd,
            boot_sdi,
            files,
            wimboot_args,
            variables,
        } => {
            if let Some((handoff, lines)) = handoff.and_then(|h| Some((h, h.waiting.get(&action.id)?))) {
                for line in lines {
                    script.echo(DisplayText::with_max(line, 120));
                }
                script
                    .echo(DisplayText::new(&format!("Trying again in {WAIT_SECS} seconds")))
                    .sleep(WAIT_SECS)
                    .chain(&handoff.retry)
                    .or_goto(failed);
                return Ok(());
            }
            let Some(files) = injected_files(script, action, files, variables, options, handoff, failed)?
            else {
                return Ok(());
            };
            let spec = Wimboot {
                wimboot: resolve(&options.wimboot)?,
                args: KernelArgs::parse(wimboot_args.as_deref().unwrap_or(""))?,
                bcd: bcd.as_deref().map(resolve).transpose()?,
                boot_sdi: boot_sdi.as_deref().map(resolve).transpose()?,
                boot_wim: match handoff.and_then(|h| h.marks.get(&action.id)) {
                    Some(mark) => resolve(boot_wim)?.query(mark.key, mark.value.as_str()),
                    None => resolve(boot_wim)?,
                },
                files,
            };
            script.wimboot(&spec, failed);
        }
        BootTarget::Linux {
            kernel,
            initrds,
            cmdline,
        } => {
            let args = KernelArgs::parse(cmdline.as_deref().unwrap_or(""))?;
            script.kernel(&resolve(kernel)?, &args).or_goto(failed);
            for initrd in initrds {
                script.initrd(&resolve(initrd)?, None).or_goto(failed);
            }
            script.boot().or_goto(failed);
        }
        BootTarget::Chain { url } => {
            script.chain(&resolve(url)?).or_goto(failed);
        }
        _ => {
            script
                .echo(DisplayText::fixed(
                    "This boot target is not supported by this server",
                ))
                .goto(failed);
        }
    }
    Ok(())
}

/// The names and URLs of the files wimboot injects for `action`, or `None` after rendering an
/// explanation and a jump to `failed` when the per-boot parts cannot be fetched.
fn injected_files(
    script: &mut Script,
    action: &BootAction,
    files: &[WimbootFile],
    variables: &BTreeMap<String, String>,
    options: &RenderOptions,
    handoff: Option<&Handoff>,
    failed: &Label,
) -> Result<Option<Vec<(Identifier, Url)>>, ScriptError> {
    check_variables(variables)?;
    let needs_token = !variables.is_empty() || files.iter().any(|f| f.secret);
    let secret = files.iter().any(|f| f.secret);
    let per_boot = match handoff {
        _ if !needs_token => None,
        Some(handoff) if secret && !handoff.over_tls => {
            script
                .echo(DisplayText::fixed(
                    "This boot image is handed files that are only served over HTTPS,",
                ))
                .echo(DisplayText::fixed(
                    "and this iPXE asked over plain HTTP: boot it with an HTTPS-capable iPXE",
                ))
                .goto(failed);
            return Ok(None);
        }
        Some(handoff) => match handoff.tokens.get(&action.id) {
            Some(token) if is_token(token) => Some((handoff, token.as_str())),
            Some(_) => {
                return Err(ScriptError::InvalidIdentifier {
                    kind: "per-boot token",
                    value: String::new(),
                    reason: "may only contain A-Z, a-z, 0-9, '.', '_' and '-' (at most 512)",
                })
            }
            None => None,
        },
        None => None,
    };
    if needs_token && per_boot.is_none() {
        script
            .echo(DisplayText::fixed(
                "This boot needs per-machine files that this server could not issue",
            ))
            .goto(failed);
        return Ok(None);
    }
    let per_boot_url = |name: &Identifier| {
        let (handoff, token) = per_boot.as_ref().expect("checked above");
        handoff.url(token, name)
    };
    let mut injected = Vec::with_capacity(files.len() + 1);
    for file in files {
        let name = Identifier::new("file name", &file.name)?;
        let url = if file.secret {
            per_boot_url(&name)
        } else {
            Url::resolve(&options.files_base, &file.path)?
        };
        injected.push((name, url));
    }
    if !variables.is_empty() {
        let name = Identifier::new("file name", VARIABLES_FILE)?;
        let url = per_boot_url(&name);
        injected.push((name, url));
    }
    Ok(Some(injected))
}

/// Per-boot tokens are URL-safe text; anything else would change meaning inside a URL.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 512
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A script that shows `message` (sanitised) and exits to the next boot device.
pub fn exit_script(message: Option<&str>) -> Script {
    let mut script = Script::new();
    if let Some(message) = message {
        script.echo(DisplayText::with_max(message, 120));
    }
    script.exit(1);
    script
}

/// The script served when no decision could be made: an explanation, then `fallback`.
pub fn fallback_script(reason: &str, fallback: &Fallback) -> Script {
    let mut script = Script::new();
    script.echo(DisplayText::with_max(&format!("No boot decision: {reason}"), 120));
    match fallback {
        Fallback::Exit => {
            script
                .echo(DisplayText::fixed("Continuing with the next boot device"))
                .exit(1);
        }
        Fallback::Retry { delay_secs, entry } => {
            let failed = Label::fixed("failed");
            script
                .echo(DisplayText::new(&format!("Retrying in {delay_secs} seconds")))
                .sleep(*delay_secs)
                .chain(entry)
                .or_goto(&failed)
                .label(&failed)
                .exit(1);
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use netboot_core::{BootAction, BootMenu, BootTarget};

    use super::*;

    fn winpe(id: &str, deployment: Deployment) -> BootAction {
        BootAction {
            auth: false,
            id: id.into(),
            title: id.into(),
            deployment,
            target: BootTarget::Wimboot {
                boot_wim: "configmgr/PS100004/boot.wim".into(),
                bcd: Some("configmgr/PS100004/BCD".into()),
                boot_sdi: None,
                files: vec![],
                wimboot_args: None,
                variables: Default::default(),
            },
        }
    }

    #[test]
    fn a_login_token_goes_on_every_url_under_the_file_root_only() {
        let mut elsewhere = winpe("PS120001", Deployment::Available);
        elsewhere.target = BootTarget::Chain {
            url: "https://other.example/next.ipxe".into(),
        };
        let decision = BootDecision::Boot(BootMenu {
            entries: vec![winpe("PS120002", Deployment::Available), elsewhere],
            ..BootMenu::default()
        });
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        let mut handoff = Handoff::new(Url::path("/boot.ipxe/handoff"), true, Url::path("/boot.ipxe"));
        handoff.auth = Some("abc.DEF_-1".into());
        let script = decision_script_with_handoff(&decision, &mac, &RenderOptions::default(), Some(&handoff))
            .unwrap()
            .render();
        crate::fuzzing::assert_safe(&script);
        assert!(script.contains("\nclear password\n"), "{script}");
        let tokened = "?auth=abc.DEF_-1&mac=${netX/mac:hexhyp}";
        assert!(script.contains(&format!("/wimboot{tokened}")), "{script}");
        assert!(
            script.contains(&format!("/configmgr/PS100004/boot.wim{tokened}")),
            "{script}"
        );
        assert!(
            script.contains(&format!("/configmgr/PS100004/BCD{tokened}")),
            "{script}"
        );
        assert!(script.contains("https://other.example/next.ipxe"), "{script}");
        assert!(!script.contains("next.ipxe?auth"), "{script}");

        handoff.auth = Some("not a token ${x}".into());
        assert!(
            decision_script_with_handoff(&decision, &mac, &RenderOptions::default(), Some(&handoff)).is_err()
        );
    }

    #[test]
    fn the_login_form_posts_and_never_puts_the_password_in_a_url() {
        let script = login_script(
            &Url::absolute("https://boot.example/boot.ipxe/login").unwrap(),
            &["Wrong user name or password ${x}".into()],
            2,
        )
        .render();
        crate::fuzzing::assert_safe(&script);
        assert!(script.contains("\nlogin || goto cancelled\n"), "{script}");
        assert!(
            script.contains("param --params login password ${password:hexhyp}\n"),
            "{script}"
        );
        assert!(script.contains("param --params login attempt 2\n"), "{script}");
        assert!(
            script.contains("chain --autofree --replace https://boot.example/boot.ipxe/login##params=login || goto failed"),
            "{script}"
        );
        assert!(!script.contains("login?"), "{script}");
        assert!(!script.contains("${x}"), "{script}");
        // The previous attempt's password is gone before the form shows.
        let clear = script.find("\nclear password\n").expect("password cleared");
        assert!(clear < script.find("\nlogin ").unwrap(), "{script}");
        // Fixed console lines fit an 80-column console without wrapping.
        for line in script.lines().filter_map(|l| l.strip_prefix("echo ")) {
            assert!(
                line.len() < 80 || line.contains("${x}") || line.contains("Wrong"),
                "{line}"
            );
        }
    }

    #[test]
    fn the_approval_wait_shows_the_code_sleeps_and_posts_it_with_the_identity() {
        let code = Identifier::new("approval code", "K7QX2M").unwrap();
        let script = approval_wait_script(
            &Url::absolute("https://boot.example/boot.ipxe/approval").unwrap(),
            &code,
            &["Approval code: K7QX2M - ask an operator ${x} (MAC 52:54:00:12:34:56)".into()],
            5,
        )
        .render();
        crate::fuzzing::assert_safe(&script);
        assert!(
            script.contains("echo Approval code: K7QX2M - ask an operator __x_ (MAC 52:54:00:12:34:56)\n"),
            "{script}"
        );
        assert!(script.contains("\nsleep 5 || goto cancelled\n"), "{script}");
        assert!(
            script.contains("param --params approval code K7QX2M\n"),
            "{script}"
        );
        assert!(
            script.contains("param --params approval mac ${netX/mac:hexhyp}\n"),
            "{script}"
        );
        assert!(
            script.contains("chain --autofree --replace https://boot.example/boot.ipxe/approval##params=approval || goto failed"),
            "{script}"
        );
        assert!(script.contains(":cancelled\n"), "{script}");
        assert!(!script.contains("login"), "{script}");
        assert!(!script.contains("${x}"), "{script}");
    }

    #[test]
    fn a_mark_goes_on_its_own_entrys_boot_image_only() {
        let decision = BootDecision::Boot(BootMenu {
            entries: vec![
                winpe("PS120002", Deployment::Required),
                winpe("PS120001", Deployment::Available),
            ],
            ..BootMenu::default()
        });
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        let mark = ImageMark {
            key: "required_run",
            value: "a b&c=${x}\n".into(),
        };
        let mut handoff = Handoff::new(Url::path("/boot.ipxe/handoff"), true, Url::path("/boot.ipxe"));
        handoff.marks.insert("PS120002".into(), mark);
        let script = decision_script_with_handoff(&decision, &mac, &RenderOptions::default(), Some(&handoff))
            .unwrap()
            .render();
        crate::fuzzing::assert_safe(&script);
        let wim_lines: Vec<&str> = script.lines().filter(|l| l.contains("boot.wim")).collect();
        assert_eq!(
            wim_lines,
            [
                "initrd --name boot.wim /configmgr/PS100004/boot.wim?required_run=a%20b%26c%3D%24%7Bx%7D%0A boot.wim || goto failed",
                "initrd --name boot.wim /configmgr/PS100004/boot.wim boot.wim || goto failed",
            ]
        );
        assert!(!script.contains("BCD?"), "{script}");
        let unmarked = decision_script(&decision, &mac, &RenderOptions::default()).unwrap();
        handoff.marks.clear();
        let no_marks =
            decision_script_with_handoff(&decision, &mac, &RenderOptions::default(), Some(&handoff)).unwrap();
        assert_eq!(unmarked, no_marks);
    }

    /// iPXE (at least up to the Debian 12 build) treats any URI containing `:` as absolute,
    /// taking everything before the first colon as the scheme; a relative decision URL must
    /// therefore stay colon-free after expansion.
    #[test]
    fn relative_entry_url_has_no_colon() {
        let rendered = entry_script(&Url::path("/boot.ipxe/decide")).render();
        let chain = rendered
            .lines()
            .find(|l| l.starts_with("chain "))
            .expect("a chain line");
        let url = chain.split_whitespace().nth(3).expect("a URL");
        // Settings are written `${name:type}`; their formats must not produce colons either.
        let without_types = url.replace(":hexhyp}", "}");
        assert!(!without_types.contains(':'), "{url}");
    }
}
