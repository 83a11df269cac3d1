//! Operator commands of the `pxe-https` and `pxe-server` binaries, for scripts:
//! `clear-required <MAC>`, `site-ca export|issue|show` (see [`crate::site_ca_command`]) and
//! `auth-user add <NAME>` (see [`crate::auth_users`]).

use anyhow::Context as _;
use netboot_config::Config;
use netboot_core::MacAddr;
use netboot_records::{RequiredRun, RequiredRuns, Store};

/// A command run instead of the service.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Clears the Required deployments a machine ran, so they boot by themselves again.
    ///
    /// What ConfigMgr's "Clear Required PXE Deployments" does. Uses the same store as the service:
    /// the `[records]` database, or the file in `https.state_dir`.
    ClearRequired {
        /// The machine's MAC address (`52:54:00:12:34:56` or `52-54-00-12-34-56`).
        mac: MacAddr,
    },
    /// The site CA that issues the HTTPS certificates: export, issue, show.
    #[command(subcommand)]
    SiteCa(crate::site_ca_command::SiteCaCommand),
    /// Boot-console accounts in `auth.users_file`: add.
    #[command(subcommand)]
    AuthUser(crate::auth_users::AuthUserCommand),
}

impl netboot_service::Commands for Command {
    async fn run(self, context: netboot_service::CommandContext) -> anyhow::Result<()> {
        match self {
            Self::ClearRequired { mac } => {
                let cleared = clear_required(&context.config, mac).await?;
                if cleared.is_empty() {
                    println!("{mac}: no Required deployment recorded");
                }
                for run in cleared {
                    println!(
                        "{mac}: cleared {} (booted at {} UTC as {}); it is Required again",
                        run.deployment,
                        run.at.format("%Y-%m-%d %H:%M:%S"),
                        run.mac
                    );
                }
                Ok(())
            }
            Self::SiteCa(command) => crate::site_ca_command::run(&command, &context.config),
            Self::AuthUser(command) => crate::auth_users::run(&command, &context.config),
        }
    }
}

/// Clears the machine's Required runs in the store `config` names and puts the clear on its
/// timeline when boot records are kept. Returns the runs cleared.
pub async fn clear_required(config: &Config, mac: MacAddr) -> anyhow::Result<Vec<RequiredRun>> {
    let records = if config.records.enabled {
        Some(
            Store::open_config(config)
                .await
                .context("opening the records database")?,
        )
    } else {
        None
    };
    let runs = match &records {
        Some(store) => RequiredRuns::over(store.clone()),
        None => RequiredRuns::from_config(config),
    };
    let cleared = runs
        .clear_machine(mac, records.as_ref(), "the command line")
        .await
        .with_context(|| format!("clearing the Required runs in the {}", runs.location()))?;
    if let Some(store) = records {
        store.close().await;
    }
    Ok(cleared)
}
