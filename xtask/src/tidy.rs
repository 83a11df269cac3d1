//! `cargo xtask tidy`: the checks the project runs on itself beyond formatting, clippy and
//! the tests (`cargo xtask ci` runs it).
//!
//! * The configuration reference (`docs/configuration.md`) is what the schema's doc comments
//!   give, and every key has one (`cargo xtask docs --check`).
//! * The protocol crates stay sans-IO: `cargo metadata` must show no async runtime, socket,
//!   clock or file-system crate among their (transitive, non-dev) dependencies.
//! * Every published crate has `#![deny(missing_docs)]`.
//! * `cargo doc` has no warning (broken or private intra-doc links, bad code blocks).
//! * The fuzz crate (its own workspace, so the workspace clippy never sees it) is clippy-clean.
//! * Every fuzz target runs for a bounded time (`cargo xtask fuzz-smoke`).
//! * The dependency tree follows `deny.toml` (`cargo deny check licenses bans sources`).

use std::collections::{BTreeMap, VecDeque};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::ci::run_step;

/// The sans-IO protocol crates: bytes and time in, replies and deadlines out.
const PROTOCOL_CRATES: &[&str] = &[
    "netboot-core",
    "netboot-dhcp",
    "netboot-tftp",
    "netboot-ipxe",
    "netboot-peerdist",
    "netboot-pccr",
    "netboot-token",
];

/// Crates a protocol crate must not depend on, with what each would bring in. `libc` itself is
/// not among them: `sha2` reaches it through `cpufeatures` to detect CPU features, which is
/// no I/O; the crates that wrap sockets, files and clocks on top of it are.
const BANNED: &[(&str, &str)] = &[
    ("tokio", "an async runtime"),
    ("async-std", "an async runtime"),
    ("smol", "an async runtime"),
    ("async-io", "an async runtime"),
    ("async-executor", "an async runtime"),
    ("futures-executor", "an async executor"),
    ("mio", "sockets and an event loop"),
    ("socket2", "sockets"),
    ("nix", "system calls (sockets, files)"),
    ("rustix", "system calls (sockets, files, clocks)"),
    ("chrono", "the wall clock"),
    ("time", "the wall clock"),
    ("jiff", "the wall clock"),
    ("quanta", "a clock"),
    ("coarsetime", "a clock"),
    ("walkdir", "the file system"),
    ("tempfile", "the file system"),
    ("fs-err", "the file system"),
    ("notify", "the file system"),
    ("memmap2", "the file system"),
];

pub(crate) fn run(fuzz_seconds: u64) -> Result<()> {
    eprintln!("==> the configuration reference is generated from the schema");
    crate::docs::run(true)?;
    let metadata = cargo_metadata()?;
    let packages = Packages::from_metadata(&metadata)?;
    eprintln!(
        "==> protocol crates stay sans-IO ({})",
        PROTOCOL_CRATES.join(", ")
    );
    let problems = sans_io_problems(&packages);
    if !problems.is_empty() {
        bail!(
            "protocol crates depend on I/O crates:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!("==> published crates deny missing docs");
    let undocumented = undocumented_crates(&packages)?;
    if !undocumented.is_empty() {
        bail!(
            "published crates without #![deny(missing_docs)] in their lib.rs: {}",
            undocumented.join(", ")
        );
    }
    // Seconds once cargo-deny is installed: before the long steps.
    crate::deny::check()?;
    run_step(
        "cargo doc (warnings are errors)",
        Command::new("cargo")
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    let root = crate::fuzz::workspace_root();
    run_step(
        "cargo clippy (fuzz crate)",
        Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["clippy", "--all-targets", "--target-dir"])
            .arg(root.join("target/fuzz-clippy"))
            .args(["--", "-D", "warnings"]),
    )?;
    crate::fuzz::smoke(fuzz_seconds)
}

fn cargo_metadata() -> Result<Value> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing cargo metadata")
}

/// What tidy needs to know about each package of the dependency graph.
#[derive(Debug, Default)]
struct Packages {
    /// Package id → name.
    names: BTreeMap<String, String>,
    /// Package id → ids of its normal (not dev, not build) dependencies.
    normal_deps: BTreeMap<String, Vec<String>>,
    /// Workspace members: name → (publishable, lib.rs path).
    members: BTreeMap<String, (bool, Option<String>)>,
}

impl Packages {
    fn from_metadata(metadata: &Value) -> Result<Self> {
        let mut packages = Self::default();
        let members: Vec<&str> = metadata["workspace_members"]
            .as_array()
            .context("cargo metadata: no workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for package in metadata["packages"]
            .as_array()
            .context("cargo metadata: no packages")?
        {
            let (Some(id), Some(name)) = (package["id"].as_str(), package["name"].as_str()) else {
                continue;
            };
            packages.names.insert(id.into(), name.into());
            if members.contains(&id) {
                // `publish = false` is `[]`; unset is `null` (any registry).
                let publishable = package["publish"]
                    .as_array()
                    .is_none_or(|registries| !registries.is_empty());
                let lib = package["targets"].as_array().and_then(|targets| {
                    targets
                        .iter()
                        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")))
                        .and_then(|t| t["src_path"].as_str().map(str::to_string))
                });
                packages.members.insert(name.into(), (publishable, lib));
            }
        }
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .context("cargo metadata: no resolve")?
        {
            let Some(id) = node["id"].as_str() else { continue };
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .filter_map(|dep| dep["pkg"].as_str().map(str::to_string))
                .collect();
            packages.normal_deps.insert(id.into(), deps);
        }
        Ok(packages)
    }

    fn id_of(&self, name: &str) -> Option<&String> {
        self.names
            .iter()
            .find(|(id, n)| *n == name && self.members.contains_key(*n) && self.normal_deps.contains_key(*id))
            .map(|(id, _)| id)
    }
}

/// Each banned crate a protocol crate reaches, with the chain that brings it in.
fn sans_io_problems(packages: &Packages) -> Vec<String> {
    let mut problems = Vec::new();
    for crate_name in PROTOCOL_CRATES {
        let Some(start) = packages.id_of(crate_name) else {
            problems.push(format!("{crate_name}: not in the workspace"));
            continue;
        };
        // Breadth first, remembering how each package was reached, for the message.
        let mut reached_from: BTreeMap<&String, Option<&String>> = BTreeMap::from([(start, None)]);
        let mut queue = VecDeque::from([start]);
        while let Some(id) = queue.pop_front() {
            for dep in packages.normal_deps.get(id).into_iter().flatten() {
                if reached_from.contains_key(dep) {
                    continue;
                }
                reached_from.insert(dep, Some(id));
                queue.push_back(dep);
                let name = &packages.names[dep];
                if let Some((_, brings)) = BANNED.iter().find(|(banned, _)| banned == name) {
                    let mut chain = vec![name.clone()];
                    let mut at = id;
                    while let Some(parent) = reached_from[at] {
                        chain.push(packages.names[at].clone());
                        at = parent;
                    }
                    chain.push(packages.names[at].clone());
                    chain.reverse();
                    problems.push(format!("{crate_name} -> {} ({brings})", chain[1..].join(" -> ")));
                }
            }
        }
    }
    problems
}

/// Published workspace crates whose lib.rs lacks `#![deny(missing_docs)]`.
fn undocumented_crates(packages: &Packages) -> Result<Vec<String>> {
    let mut undocumented = Vec::new();
    for (name, (publishable, lib)) in &packages.members {
        let (true, Some(lib)) = (publishable, lib) else {
            continue;
        };
        let text = std::fs::read_to_string(lib).with_context(|| format!("reading {lib}"))?;
        let denies = text
            .lines()
            .map(str::trim)
            .any(|line| line == "#![deny(missing_docs)]" || line == "#![forbid(missing_docs)]");
        if !denies {
            undocumented.push(name.clone());
        }
    }
    Ok(undocumented)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages() -> Packages {
        Packages::from_metadata(&cargo_metadata().unwrap()).unwrap()
    }

    #[test]
    fn the_protocol_crates_are_sans_io_and_published_crates_documented() {
        let packages = packages();
        assert_eq!(sans_io_problems(&packages), Vec::<String>::new());
        assert_eq!(undocumented_crates(&packages).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_runtime_in_a_protocol_crate_is_reported_with_its_chain() {
        let mut packages = packages();
        let dhcp = packages.id_of("netboot-dhcp").unwrap().clone();
        let tokio = packages
            .names
            .iter()
            .find(|(_, name)| *name == "tokio")
            .map(|(id, _)| id.clone())
            .unwrap();
        packages.normal_deps.get_mut(&dhcp).unwrap().push(tokio);
        let problems = sans_io_problems(&packages);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("netboot-dhcp -> tokio (an async runtime)")),
            "{problems:?}"
        );
    }
}
