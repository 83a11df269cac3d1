//! Project automation. `cargo xtask --help` lists the commands.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod ci;
mod deny;
mod deps;
mod dist;
mod docs;
mod e2e;
mod fuzz;
mod ipxe;
mod pinned;
mod signals;
mod tidy;

#[derive(Parser)]
#[command(about = "netboot project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI checks: Debian packages, fmt, clippy, tests, tidy (docs, sans-IO, fuzz
    /// smoke), end-to-end boots.
    /// This is what `.ci/run` calls.
    Ci,
    /// Installs the Debian packages the tests need (when missing; needs root).
    Deps,
    /// Writes the configuration reference, docs/configuration.md, from the configuration
    /// schema and its doc comments.
    Docs {
        /// Write nothing; fail when a key is undocumented or the committed file differs.
        #[arg(long)]
        check: bool,
    },
    /// The project's checks on itself: the configuration reference up to date, protocol crates
    /// sans-IO, published crates documented, `cargo doc` without warnings, clippy on the fuzz
    /// crate, `cargo deny` (licences, bans, sources), every fuzz target run.
    Tidy {
        /// Seconds each fuzz target runs.
        #[arg(long, default_value_t = 20)]
        fuzz_seconds: u64,
    },
    /// Runs every fuzz target for a bounded time.
    FuzzSmoke {
        /// Seconds per target.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Whole-server benchmarks side by side with peer servers.
    Bench {
        /// `dhcp`, `tftp`, `https`, `records` or `peerdist`.
        target: String,
        /// Extra arguments for that benchmark.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boots a BIOS and a UEFI virtual machine through `pxe-server` in a lab network, narrating.
    Demo,
    /// Builds the site's iPXE (undionly.kpxe, snponly.efi, ipxe.efi; ARM64 with --arch) from
    /// the pinned release, trusting exactly the given CA; cached by a hash of all inputs.
    Ipxe(ipxe::IpxeArgs),
    /// Builds the Debian 12 package (target/dist/netboot_*.deb); --test installs, starts,
    /// stops and purges it in a clean Debian 12 container, --image checks the container image.
    Dist(dist::DistArgs),
    /// Boots real QEMU firmware through the project's binaries inside network namespaces.
    #[command(disable_help_flag = true)]
    E2e {
        /// Extra arguments for the harness (`cargo xtask e2e --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Ci => ci::run(),
        Command::Deps => deps::install(),
        Command::Docs { check } => docs::run(check),
        Command::Tidy { fuzz_seconds } => tidy::run(fuzz_seconds),
        Command::FuzzSmoke { seconds } => fuzz::smoke(seconds),
        Command::Bench { target, args } => bench::run(&target, &args),
        Command::Demo => e2e::demo(),
        Command::E2e { args } => e2e::run(&args),
        Command::Ipxe(args) => ipxe::run(args),
        Command::Dist(args) => dist::run(args),
    }
}

/// The workspace's top directory.
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}
