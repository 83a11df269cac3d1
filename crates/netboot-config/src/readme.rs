//! The README's TOML examples are configuration files, parsed here with the real loader, so an
//! example that stops parsing (a renamed key, a changed type, a value now refused) fails
//! `cargo test`.
//!
//! The conventions, also stated in the README's Configuration section:
//! * A ```` ```toml ```` block is a whole configuration file.
//! * A block whose fence follows the line [`CONTINUES`] continues the file of the block before
//!   it, and is parsed appended to it (a `[resolver.configmgr.handoff]` example needs the
//!   `[resolver.configmgr]` above it).
//! * A commented-out `# key = value` line is an optional key or an alternative. A second pass
//!   uncomments them all and parses again: key names and value types must be right, but the
//!   values are not validated together, since an optional key may only be valid with others
//!   (`tftp.upload_dir` needs `allow_upload = true`).

use std::path::Path;

/// The line before a block that continues the block above it.
pub(crate) const CONTINUES: &str = "<!-- toml: continues the example above -->";

/// One ```` ```toml ```` block of the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Example {
    /// 1-based line of its opening fence.
    pub(crate) line: usize,
    /// The block as written.
    pub(crate) own: String,
    /// The file it stands for: the block, after the blocks it continues.
    pub(crate) file: String,
}

/// The README's examples.
pub(crate) fn examples() -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    examples_in(&readme)
}

/// The example whose own text starts with `head`.
pub(crate) fn example_starting_with(head: &str) -> Example {
    examples()
        .into_iter()
        .find(|example| example.own.starts_with(head))
        .unwrap_or_else(|| panic!("README.md has no ```toml block starting with {head:?}"))
}

fn examples_in(markdown: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut previous_line = "";
    let mut open: Option<(usize, bool, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            None if line.trim_end() == "```toml" => {
                open = Some((index + 1, previous_line.trim() == CONTINUES, String::new()));
            }
            None => {
                if !line.trim().is_empty() {
                    previous_line = line;
                }
            }
            Some(_) if line.trim_end() == "```" => {
                let (line, continues, own) = open.take().expect("a block is open");
                let file = match examples.last() {
                    Some(before) if continues => format!("{}{own}", before.file),
                    None if continues => panic!("README.md line {line}: continues no example"),
                    _ => own.clone(),
                };
                examples.push(Example { line, own, file });
                previous_line = "```";
            }
            Some((_, _, own)) => {
                own.push_str(line);
                own.push('\n');
            }
        }
    }
    examples
}

/// `text` with every `# key = value` line uncommented, and how many there were.
fn uncomment_keys(text: &str) -> (String, usize) {
    let mut count = 0;
    let mut out = String::new();
    for line in text.lines() {
        let commented = line.trim_start().strip_prefix('#').map(str::trim_start);
        let is_key = commented.is_some_and(|rest| {
            rest.split_once('=').is_some_and(|(key, value)| {
                let key = key.trim();
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-\"".contains(c))
                    && !value.trim().is_empty()
            })
        });
        match commented {
            Some(rest) if is_key => {
                out.push_str(rest);
                count += 1;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn every_readme_example_parses_with_and_without_its_commented_keys() {
        let examples = examples();
        assert!(examples.len() >= 15, "{} examples", examples.len());
        let mut uncommented = 0;
        for example in &examples {
            Config::from_toml_str(&example.file)
                .unwrap_or_else(|e| panic!("README.md example at line {}: {e}", example.line));
            let (file, count) = uncomment_keys(&example.file);
            toml::from_str::<Config>(&file).unwrap_or_else(|e| {
                panic!(
                    "README.md example at line {} with its `# key = value` lines uncommented: {e}",
                    example.line
                )
            });
            uncommented += count;
        }
        assert!(uncommented >= 20, "only {uncommented} commented keys checked");
    }

    #[test]
    fn blocks_are_files_unless_marked_as_continuing() {
        let markdown = format!(
            "text\n```toml\n[a]\n```\n\n```toml\n[b]\n```\n{CONTINUES}\n\n```toml\n[c]\n```\n```sh\nx\n```\n"
        );
        let examples = examples_in(&markdown);
        let files: Vec<&str> = examples.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, ["[a]\n", "[b]\n", "[b]\n[c]\n"]);
        assert_eq!(examples[2].line, 11);
    }

    #[test]
    fn only_commented_keys_are_uncommented() {
        let text = "[tftp]\n# root = \"/srv/tftp\"   # a note\n# OpenLDAP: users by uid\n#     with a bind_dn\n# or: user_filter = \"(x)\"\nretries = 5 # = not a key\n";
        let (out, count) = uncomment_keys(text);
        assert_eq!(count, 1);
        assert!(out.contains("\nroot = \"/srv/tftp\"   # a note\n"), "{out}");
        assert!(out.contains("# or: user_filter"), "{out}");
    }
}
