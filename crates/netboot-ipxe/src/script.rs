//! The typed script builder.

use std::fmt::Write as _;

use crate::error::ScriptError;
use crate::text::{DisplayText, Identifier, Label};
use crate::url::{Setting, Url};

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Sanitised text; may render as several words, which iPXE joins again with spaces.
    Text(DisplayText),
    /// A validated identifier.
    Id(Identifier),
    /// A URL.
    Url(Url),
    /// A setting iPXE expands.
    Setting(Setting),
    /// A number.
    Number(u64),
}

impl From<DisplayText> for Arg {
    fn from(text: DisplayText) -> Self {
        Self::Text(text)
    }
}
impl From<Identifier> for Arg {
    fn from(id: Identifier) -> Self {
        Self::Id(id)
    }
}
impl From<Url> for Arg {
    fn from(url: Url) -> Self {
        Self::Url(url)
    }
}
impl From<Setting> for Arg {
    fn from(setting: Setting) -> Self {
        Self::Setting(setting)
    }
}
impl From<u64> for Arg {
    fn from(number: u64) -> Self {
        Self::Number(number)
    }
}

/// Kernel or wimboot arguments from configuration, split into words.
///
/// Refuses characters iPXE would interpret instead of altering them, since a silently changed
/// command line would boot something else: `$`, `{`, `}`, `\`, `|`, `&`, `;`, `#`, control
/// characters and non-ASCII.
///
/// ```
/// use netboot_ipxe::KernelArgs;
/// assert_eq!(KernelArgs::parse("quiet  console=ttyS0,115200").unwrap().words().len(), 2);
/// assert!(KernelArgs::parse("x=${password}").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs(Vec<String>);

impl KernelArgs {
    /// Splits and checks a command line.
    pub fn parse(cmdline: &str) -> Result<Self, ScriptError> {
        let unsafe_char = |c: &char| c.is_control() || !c.is_ascii() || "${}\\|&;#".contains(*c);
        if let Some(found) = cmdline.chars().find(unsafe_char) {
            return Err(ScriptError::UnsafeCommandLine { found });
        }
        Ok(Self(cmdline.split_whitespace().map(str::to_owned).collect()))
    }

    /// The words.
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// What follows a command on the same line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tail {
    None,
    /// `|| goto label`.
    OrGoto(Label),
    /// `&& goto label`.
    AndGoto(Label),
    /// `||`: ignore a failure.
    OrContinue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Comment(DisplayText),
    Label(Label),
    Command { words: Vec<Word>, tail: Tail },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Fixed(&'static str),
    Arg(Arg),
    Label(Label),
    Owned(String),
}

/// A wimboot boot: WinPE (or any WIM) over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wimboot {
    /// Where wimboot itself is.
    pub wimboot: Url,
    /// Arguments for wimboot (`gui`, `pause`, `index=2`).
    pub args: KernelArgs,
    /// The BCD store, when not taken from the WIM.
    pub bcd: Option<Url>,
    /// `boot.sdi`, when not taken from the WIM.
    pub boot_sdi: Option<Url>,
    /// The boot image.
    pub boot_wim: Url,
    /// Files injected into `\Windows\System32` of the image, by name.
    pub files: Vec<(Identifier, Url)>,
}

/// An iPXE script under construction. Every method appends one line; the `or_*`/`and_*`
/// methods attach a condition to the last command.
///
/// ```
/// use netboot_ipxe::{DisplayText, Label, Script, Url};
/// let mut script = Script::new();
/// script.echo(DisplayText::new("Hello ${user}"))
///     .chain(&Url::path("/next.ipxe")).or_goto(&Label::fixed("failed"))
///     .label(&Label::fixed("failed"))
///     .exit(1);
/// assert_eq!(
///     script.render(),
///     "#!ipxe\necho Hello __user_\nchain --autofree --replace /next.ipxe || goto failed\n:failed\nexit 1\n"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    lines: Vec<Line>,
}

impl Script {
    /// An empty script (the `#!ipxe` header is added by [`Self::render`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn command(&mut self, words: Vec<Word>) -> &mut Self {
        self.lines.push(Line::Command {
            words,
            tail: Tail::None,
        });
        self
    }

    fn set_tail(&mut self, new_tail: Tail) -> &mut Self {
        match self.lines.last_mut() {
            Some(Line::Command { tail, .. }) => *tail = new_tail,
            _ => panic!("a condition needs a preceding command"),
        }
        self
    }

    /// `# text`: a comment.
    pub fn comment(&mut self, text: DisplayText) -> &mut Self {
        self.lines.push(Line::Comment(text));
        self
    }

    /// `echo text`.
    pub fn echo(&mut self, text: DisplayText) -> &mut Self {
        self.command(vec![Word::Fixed("echo"), Word::Arg(Arg::Text(text))])
    }

    /// `set name value`.
    pub fn set(&mut self, name: &Label, value: impl Into<Arg>) -> &mut Self {
        self.command(vec![
            Word::Fixed("set"),
            Word::Label(name.clone()),
            Word::Arg(value.into()),
        ])
    }

    /// `clear name`: forgets a setting.
    pub fn clear(&mut self, name: &Label) -> &mut Self {
        self.command(vec![Word::Fixed("clear"), Word::Label(name.clone())])
    }

    /// `isset ${setting}` (combine with [`Self::or_goto`]/[`Self::and_goto`]).
    pub fn isset(&mut self, setting: Setting) -> &mut Self {
        self.command(vec![Word::Fixed("isset"), Word::Arg(Arg::Setting(setting))])
    }

    /// `iseq a b`.
    pub fn iseq(&mut self, a: impl Into<Arg>, b: impl Into<Arg>) -> &mut Self {
        self.command(vec![
            Word::Fixed("iseq"),
            Word::Arg(a.into()),
            Word::Arg(b.into()),
        ])
    }

    /// `:label`.
    pub fn label(&mut self, label: &Label) -> &mut Self {
        self.lines.push(Line::Label(label.clone()));
        self
    }

    /// `goto label`.
    pub fn goto(&mut self, label: &Label) -> &mut Self {
        self.command(vec![Word::Fixed("goto"), Word::Label(label.clone())])
    }

    /// `goto ${setting}`: jumps to the label a `choose` stored.
    pub fn goto_setting(&mut self, setting: Setting) -> &mut Self {
        self.command(vec![Word::Fixed("goto"), Word::Arg(Arg::Setting(setting))])
    }

    /// `menu title`.
    pub fn menu(&mut self, title: DisplayText) -> &mut Self {
        self.command(vec![Word::Fixed("menu"), Word::Arg(Arg::Text(title))])
    }

    /// `item key text`.
    pub fn item(&mut self, key: &Label, text: DisplayText) -> &mut Self {
        self.command(vec![
            Word::Fixed("item"),
            Word::Label(key.clone()),
            Word::Arg(Arg::Text(text)),
        ])
    }

    /// `item --key c key text`: an item with a shortcut key (`c` must be alphanumeric).
    ///
    /// # Panics
    /// When `shortcut` is not an ASCII letter or digit (a programming error).
    pub fn item_with_shortcut(&mut self, shortcut: char, key: &Label, text: DisplayText) -> &mut Self {
        assert!(
            shortcut.is_ascii_alphanumeric(),
            "menu shortcuts are letters or digits"
        );
        self.command(vec![
            Word::Fixed("item"),
            Word::Fixed("--key"),
            Word::Owned(shortcut.to_string()),
            Word::Label(key.clone()),
            Word::Arg(Arg::Text(text)),
        ])
    }

    /// `item --gap -- text`: a heading or, without text, an empty line.
    pub fn item_gap(&mut self, text: Option<DisplayText>) -> &mut Self {
        let mut words = vec![Word::Fixed("item"), Word::Fixed("--gap"), Word::Fixed("--")];
        words.extend(text.map(|t| Word::Arg(Arg::Text(t))));
        self.command(words)
    }

    /// `choose [--timeout ms] [--default key] setting`.
    pub fn choose(&mut self, setting: &Label, timeout_ms: Option<u64>, default: Option<&Label>) -> &mut Self {
        let mut words = vec![Word::Fixed("choose")];
        if let Some(ms) = timeout_ms {
            words.extend([Word::Fixed("--timeout"), Word::Arg(Arg::Number(ms))]);
        }
        if let Some(key) = default {
            words.extend([Word::Fixed("--default"), Word::Label(key.clone())]);
        }
        words.push(Word::Label(setting.clone()));
        self.command(words)
    }

    /// `login`: asks for `${username}` and `${password}`.
    pub fn login(&mut self) -> &mut Self {
        self.command(vec![Word::Fixed("login")])
    }

    /// `params --name list`: starts a form-parameter list for a POST.
    pub fn params(&mut self, list: &Label) -> &mut Self {
        self.command(vec![
            Word::Fixed("params"),
            Word::Fixed("--name"),
            Word::Label(list.clone()),
        ])
    }

    /// `param --params list key value`.
    pub fn param(&mut self, list: &Label, key: &Label, value: impl Into<Arg>) -> &mut Self {
        self.command(vec![
            Word::Fixed("param"),
            Word::Fixed("--params"),
            Word::Label(list.clone()),
            Word::Label(key.clone()),
            Word::Arg(value.into()),
        ])
    }

    /// `chain --autofree --replace url`: hands over to another script or image.
    pub fn chain(&mut self, url: &Url) -> &mut Self {
        self.command(vec![
            Word::Fixed("chain"),
            Word::Fixed("--autofree"),
            Word::Fixed("--replace"),
            Word::Arg(Arg::Url(url.clone())),
        ])
    }

    /// `chain --autofree --replace url##params=list`: POSTs the list to `url`.
    pub fn chain_with_params(&mut self, url: &Url, list: &Label) -> &mut Self {
        let target = format!("{url}##params={}", list.as_str());
        self.command(vec![
            Word::Fixed("chain"),
            Word::Fixed("--autofree"),
            Word::Fixed("--replace"),
            Word::Owned(target),
        ])
    }

    /// `kernel url args...`.
    pub fn kernel(&mut self, url: &Url, args: &KernelArgs) -> &mut Self {
        let mut words = vec![Word::Fixed("kernel"), Word::Arg(Arg::Url(url.clone()))];
        words.extend(args.words().iter().cloned().map(Word::Owned));
        self.command(words)
    }

    /// `initrd [--name name] url [name]`: the name is given both ways so old and new iPXE
    /// builds present the file to wimboot or the kernel under it.
    pub fn initrd(&mut self, url: &Url, name: Option<&Identifier>) -> &mut Self {
        let mut words = vec![Word::Fixed("initrd")];
        if let Some(name) = name {
            words.extend([Word::Fixed("--name"), Word::Arg(Arg::Id(name.clone()))]);
        }
        words.push(Word::Arg(Arg::Url(url.clone())));
        words.extend(name.map(|n| Word::Arg(Arg::Id(n.clone()))));
        self.command(words)
    }

    /// `imgfetch --name name url`: downloads without selecting.
    pub fn imgfetch(&mut self, url: &Url, name: &Identifier) -> &mut Self {
        self.command(vec![
            Word::Fixed("imgfetch"),
            Word::Fixed("--name"),
            Word::Arg(Arg::Id(name.clone())),
            Word::Arg(Arg::Url(url.clone())),
        ])
    }

    /// `imgargs image args...`.
    pub fn imgargs(&mut self, image: &Identifier, args: &KernelArgs) -> &mut Self {
        let mut words = vec![Word::Fixed("imgargs"), Word::Arg(Arg::Id(image.clone()))];
        words.extend(args.words().iter().cloned().map(Word::Owned));
        self.command(words)
    }

    /// `boot`.
    pub fn boot(&mut self) -> &mut Self {
        self.command(vec![Word::Fixed("boot")])
    }

    /// `prompt [--timeout ms] text`: succeeds when a key is pressed, fails on timeout.
    pub fn prompt(&mut self, timeout_ms: Option<u64>, text: DisplayText) -> &mut Self {
        let mut words = vec![Word::Fixed("prompt")];
        if let Some(ms) = timeout_ms {
            words.extend([Word::Fixed("--timeout"), Word::Arg(Arg::Number(ms))]);
        }
        words.push(Word::Arg(Arg::Text(text)));
        self.command(words)
    }

    /// `sleep seconds`.
    pub fn sleep(&mut self, seconds: u32) -> &mut Self {
        self.command(vec![Word::Fixed("sleep"), Word::Arg(Arg::Number(seconds.into()))])
    }

    /// `exit code`: returns to the firmware; a non-zero code makes it try the next boot device.
    pub fn exit(&mut self, code: u8) -> &mut Self {
        self.command(vec![Word::Fixed("exit"), Word::Arg(Arg::Number(code.into()))])
    }

    /// `kernel wimboot` + `initrd` for the injected files, BCD, boot.sdi and boot.wim +
    /// `boot`, each failing to `on_failure`. The small injected files come first: per-boot
    /// URLs expire, and a refused one should fail the boot before the large WIM is loaded.
    pub fn wimboot(&mut self, spec: &Wimboot, on_failure: &Label) -> &mut Self {
        self.kernel(&spec.wimboot, &spec.args).or_goto(on_failure);
        for (name, url) in &spec.files {
            self.initrd(url, Some(name)).or_goto(on_failure);
        }
        let fixed_names = [("BCD", &spec.bcd), ("boot.sdi", &spec.boot_sdi)];
        for (name, url) in fixed_names {
            if let Some(url) = url {
                let name = Identifier::new("file name", name).expect("fixed names are valid");
                self.initrd(url, Some(&name)).or_goto(on_failure);
            }
        }
        let wim = Identifier::new("file name", "boot.wim").expect("fixed names are valid");
        self.initrd(&spec.boot_wim, Some(&wim)).or_goto(on_failure);
        self.boot().or_goto(on_failure)
    }

    /// Appends `|| goto label` to the last command.
    ///
    /// # Panics
    /// When the last line is not a command (a programming error).
    pub fn or_goto(&mut self, label: &Label) -> &mut Self {
        self.set_tail(Tail::OrGoto(label.clone()))
    }

    /// Appends `&& goto label` to the last command.
    ///
    /// # Panics
    /// When the last line is not a command (a programming error).
    pub fn and_goto(&mut self, label: &Label) -> &mut Self {
        self.set_tail(Tail::AndGoto(label.clone()))
    }

    /// Appends `||` so a failure of the last command does not end the script.
    ///
    /// # Panics
    /// When the last line is not a command (a programming error).
    pub fn or_continue(&mut self) -> &mut Self {
        self.set_tail(Tail::OrContinue)
    }

    /// The script text, starting with `#!ipxe`, one command per line.
    pub fn render(&self) -> String {
        let mut out = String::from("#!ipxe\n");
        for line in &self.lines {
            match line {
                Line::Comment(text) => {
                    let _ = writeln!(out, "# {text}");
                }
                Line::Label(label) => {
                    let _ = writeln!(out, ":{}", label.as_str());
                }
                Line::Command { words, tail } => {
                    let rendered: Vec<String> = words.iter().map(render_word).collect();
                    out.push_str(&rendered.join(" "));
                    match tail {
                        Tail::None => {}
                        Tail::OrGoto(label) => {
                            let _ = write!(out, " || goto {}", label.as_str());
                        }
                        Tail::AndGoto(label) => {
                            let _ = write!(out, " && goto {}", label.as_str());
                        }
                        Tail::OrContinue => out.push_str(" ||"),
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn render_word(word: &Word) -> String {
    match word {
        Word::Fixed(text) => (*text).to_owned(),
        Word::Owned(text) => text.clone(),
        Word::Label(label) => label.as_str().to_owned(),
        Word::Arg(Arg::Text(text)) => text.as_str().to_owned(),
        Word::Arg(Arg::Id(id)) => id.as_str().to_owned(),
        Word::Arg(Arg::Url(url)) => url.as_str().to_owned(),
        Word::Arg(Arg::Setting(setting)) => setting.to_string(),
        Word::Arg(Arg::Number(n)) => n.to_string(),
    }
}
