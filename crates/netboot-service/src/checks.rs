//! Loading a configuration and every check that needs no socket: what `--check-config`
//! runs, what a start runs before binding, and what a reload must pass.

use std::path::Path;

use netboot_config::{Config, ConfigError, Problems};

use crate::logging::{env_filter_text, parse_filter, LOG_ENV};
use crate::source::ConfigSource;
use crate::{Section, Service};

/// Reads the configuration from `source`, applies the binary's flags and runs every check:
/// the schema's validation, the log filter, what the resolver will read (when the binary
/// uses one) and the service's own checks.
///
/// `for_serving` adds what only serving needs: the resolver's and the service's own checks
/// (files it serves, boot programs, certificates). Operator commands go without them: a
/// command that prepares what serving needs (exporting the site CA to build iPXE with) must
/// run before it is there.
pub(crate) fn load<S: Service>(
    source: &ConfigSource,
    args: &S::Args,
    for_serving: bool,
) -> Result<Config, ConfigError> {
    let mut config = Config::load(source.path())?;
    S::apply_args(args, &mut config);
    config.validate()?;
    let mut problems = Problems::default();
    check_log(&config, &mut problems);
    if for_serving {
        if S::SECTIONS.contains(&Section::Resolver) {
            netboot_resolver::check(&config, &mut problems);
        }
        S::check(&config, &mut problems);
    }
    problems.into_result()?;
    Ok(config)
}

/// `[log] level` and `RUST_LOG` must parse as filters: a typo must not silently log at the
/// default level.
fn check_log(config: &Config, problems: &mut Problems) {
    if let Err(e) = parse_filter(&config.log.level) {
        problems.push("log.level", e);
    }
    if let Some(text) = env_filter_text() {
        if let Err(e) = parse_filter(&text) {
            problems.push(LOG_ENV, e);
        }
    }
}

/// Adds a problem under `key` unless `path` names an existing file. Returns whether it does.
pub fn check_file_exists(key: &str, path: &Path, problems: &mut Problems) -> bool {
    check_path(key, path, "file", std::fs::Metadata::is_file, problems)
}

/// Adds a problem under `key` unless `path` names an existing directory. Returns whether it
/// does.
pub fn check_dir_exists(key: &str, path: &Path, problems: &mut Problems) -> bool {
    check_path(key, path, "directory", std::fs::Metadata::is_dir, problems)
}

fn check_path(
    key: &str,
    path: &Path,
    kind: &str,
    is_kind: fn(&std::fs::Metadata) -> bool,
    problems: &mut Problems,
) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) if is_kind(&meta) => true,
        Ok(_) => {
            problems.push(key, format!("{} is not a {kind}", path.display()));
            false
        }
        Err(e) => {
            problems.push(key, format!("{}: {e}", path.display()));
            false
        }
    }
}
