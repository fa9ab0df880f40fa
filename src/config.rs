//! Which configuration a command runs: the TOML configuration (a file on top of the embedded
//! default, or the embedded default alone) or an existing Fail2Ban configuration read as
//! Fail2Ban reads it, with the report of what the import does not carry over.

use std::path::Path;

use anyhow::{Context, Result};
use portcullis_config::Config;
use portcullis_fail2ban::{Import, ImportOptions, Severity};

/// The configuration `scan`/`investigate` use: the given file (on top of the embedded
/// default), or the embedded default alone.
pub fn load_offline(path: Option<&Path>) -> Result<Config> {
    // A `ConfigError` names the file, line and key itself.
    Ok(match path {
        Some(p) => Config::load(Some(p), None)?,
        None => Config::embedded_default()?,
    })
}

/// An existing Fail2Ban configuration as a [`Config`] plus the report of what is not carried
/// over (host names in `ignoreip` resolved once, as Fail2Ban does).
fn import_fail2ban(dir: &Path) -> Result<Import> {
    Import::load(
        dir,
        &ImportOptions {
            resolve_hostnames: true,
        },
    )
    .with_context(|| format!("Fail2Ban configuration {}", dir.display()))
}

/// `--fail2ban-config DIR` of `scan`: what the import does not carry over exactly goes to
/// stderr (the offline commands have no log subscriber).
pub fn load_fail2ban_offline(dir: &Path) -> Result<Config> {
    let import = import_fail2ban(dir)?;
    for e in import.report.with_severity(Severity::NotCarried) {
        eprintln!("fail2ban import: {e}");
    }
    for e in import.report.with_severity(Severity::Approximated) {
        eprintln!("fail2ban import: {e}");
    }
    Ok(import.config)
}

/// `run --fail2ban-config DIR`: everything the import does not carry over exactly
/// (unimplemented actions, approximations) is logged as a warning (notes at info level), at
/// every load (start and reload).
pub fn load_fail2ban(dir: &Path) -> Result<Config> {
    let import = import_fail2ban(dir)?;
    for e in &import.report.entries {
        match e.severity {
            Severity::Note => tracing::info!("fail2ban import: {e}"),
            _ => tracing::warn!("fail2ban import: {e}"),
        }
    }
    tracing::info!(
        dir = %dir.display(),
        jails = ?import.config.jails.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        "running the Fail2Ban configuration"
    );
    Ok(import.config)
}
