//! Project automation. `cargo xtask --help` lists the commands.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "netboot project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, tests. This is what `.ci/run` calls.
    Ci,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Ci => ci::run(),
    }
}

mod ci;
