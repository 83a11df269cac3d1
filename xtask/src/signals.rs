//! SIGINT/SIGTERM/SIGHUP for long runs (benchmarks, firmware boots): the first signal sets a
//! flag that wait loops check to unwind, so guards stop what they started and remove their
//! namespaces; a second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Whether one of the signals arrived since [`install`].
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// Installs the handlers; calling it again adds nothing.
pub(crate) fn install() -> Result<()> {
    let mut first = false;
    let flag = INTERRUPTED.get_or_init(|| {
        first = true;
        Arc::new(AtomicBool::new(false))
    });
    if !first {
        return Ok(());
    }
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(flag))
            .context("installing a signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(flag)).context("installing a signal handler")?;
    }
    Ok(())
}
