//! `cargo xtask fuzz-smoke`: builds every cargo-fuzz target in `fuzz/` with libFuzzer
//! instrumentation on the stable toolchain and runs each for a bounded time.
//!
//! It builds with the flags cargo-fuzz uses (SanitizerCoverage through `-C passes` and
//! `-C llvm-args`, `--cfg fuzzing`) instead of requiring cargo-fuzz itself; AddressSanitizer
//! is left out because it needs a nightly-only flag and the crates under test forbid
//! `unsafe`. Seeds come from `fuzz/corpus/<target>/` and from `testdata/<prefix>/corpus/`,
//! where `<prefix>` is the target name up to its first `_` (`dhcp_parse` → `testdata/dhcp`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ci::run_step;

const COVERAGE_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

pub(crate) fn smoke(seconds: u64) -> Result<()> {
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let targets = fuzz_targets(&fuzz_dir.join("Cargo.toml"))?;
    if targets.is_empty() {
        bail!("no [[bin]] targets in fuzz/Cargo.toml");
    }
    let target_dir = root.join("target/fuzz");
    // An explicit --target keeps RUSTFLAGS (the instrumentation) away from build scripts and
    // proc macros, which cannot link against libFuzzer.
    let host = host_triple()?;
    run_step(
        "build fuzz targets",
        Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["build", "--release", "--bins", "--target", &host, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", COVERAGE_FLAGS.join(" "))
            // Lets the stable toolchain accept any unstable flag a dependency's build needs.
            .env("RUSTC_BOOTSTRAP", "1"),
    )?;
    let mut failures = Vec::new();
    for target in &targets {
        let work = target_dir.join("smoke-corpus").join(target);
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let mut command = Command::new(target_dir.join(&host).join("release").join(target));
        command
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=65536")
            .arg("-print_final_stats=1")
            .arg(&work);
        for seeds in seed_dirs(&root, target) {
            command.arg(seeds);
        }
        if let Err(e) = run_step(&format!("fuzz {target} for {seconds}s"), &mut command) {
            eprintln!("{e:#}");
            failures.push(target.clone());
        }
    }
    if !failures.is_empty() {
        bail!("fuzz targets failed: {failures:?} (crash inputs are in the current directory)");
    }
    eprintln!(
        "fuzz-smoke: {} targets ran {seconds}s each without a crash",
        targets.len()
    );
    Ok(())
}

fn host_triple() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host triple")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// The `name`s of the `[[bin]]` tables of the fuzz crate's manifest.
fn fuzz_targets(manifest: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if let Some(value) = line
            .strip_prefix("name")
            .map(str::trim_start)
            .and_then(|l| l.strip_prefix('='))
        {
            if in_bin {
                targets.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    Ok(targets)
}

fn seed_dirs(root: &Path, target: &str) -> Vec<PathBuf> {
    let prefix = target.split('_').next().unwrap_or(target);
    [
        root.join("fuzz/corpus").join(target),
        root.join("testdata").join(prefix).join("corpus"),
    ]
    .into_iter()
    .filter(|dir| dir.is_dir())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bin_names_from_the_fuzz_manifest() {
        let targets = fuzz_targets(&workspace_root().join("fuzz/Cargo.toml")).unwrap();
        assert!(targets.contains(&"dhcp_parse".to_string()), "{targets:?}");
        assert!(
            !targets.contains(&"netboot-fuzz".to_string()),
            "package name is not a target"
        );
    }

    #[test]
    fn dhcp_seeds_come_from_testdata() {
        let seeds = seed_dirs(&workspace_root(), "dhcp_parse");
        assert!(
            seeds.iter().any(|d| d.ends_with("testdata/dhcp/corpus")),
            "{seeds:?}"
        );
    }
}
