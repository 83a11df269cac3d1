//! Process limits every service raises at start.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Threads at most in the runtime's pool for blocking work (file reads, DNS, SQLite). Tokio's
/// default of 512 let requests with many byte ranges start hundreds of threads; beyond this
/// the work waits in the pool's queue instead.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// Raises the soft limit on open files to the hard limit, so a busy listener is not refused
/// new connections at the common default of 1,024 while the system allows more. Logs the
/// limit in force (at `info` when it was raised, `debug` when it already was the hard limit,
/// `warn` when raising it failed).
pub(crate) fn raise_open_files_limit() {
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        tracing::debug!(soft = ?limit.current, hard = ?limit.maximum, "open files limit");
        return;
    };
    if soft >= hard {
        tracing::debug!(limit = soft, "open files limit");
        return;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(
            from = soft,
            to = hard,
            "raised the open files limit to the hard limit"
        ),
        Err(error) => {
            tracing::warn!(limit = soft, hard, %error, "open files limit could not be raised");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        raise_open_files_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
