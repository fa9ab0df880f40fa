//! `reload` (and SIGHUP): read the configuration again; on any error the old one keeps
//! running, and no ban is lost either way.

use portcullis_config::Config;
use portcullis_control::data::ReloadData;
use portcullis_control::{ErrorBody, ErrorKind};

use crate::daemon::{Daemon, build_jails, load_config};

/// Load and compile the new configuration first (an error changes nothing), then stop the
/// sources (their lines so far go through the old filters and are committed), hand the new
/// jails to the [`JailSet`](crate::daemon::jail_set::JailSet) (which keeps every ban) and
/// start the sources of the new configuration.
pub async fn reload(d: &mut Daemon) -> Result<ReloadData, ErrorBody> {
    let failed = |e: anyhow::Error| ErrorBody::new(ErrorKind::ReloadFailed, format!("{e:#}"));
    let config = load_config(&d.args).map_err(failed)?;
    let now = d.clock.read();
    let (filters, inits) = build_jails(&config, &d.store, now, Some(&d.jails)).map_err(failed)?;
    let warnings = restart_warnings(&d.config, &config);
    d.stop_sources(true).await;
    d.jails.reload(inits, d.clock.now());
    d.filters = filters;
    // What only a restart can change stays as it is.
    let mut config = config;
    config.daemon.socket = d.config.daemon.socket.clone();
    config.daemon.state_dir = d.config.daemon.state_dir.clone();
    config.firewall = d.config.firewall.clone();
    d.config = config;
    d.start_sources();
    Ok(ReloadData {
        jails: d.jails.names().map(str::to_string).collect(),
        warnings,
    })
}

/// What changed in `new` that takes effect only at the next restart.
fn restart_warnings(old: &Config, new: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if new.firewall != old.firewall {
        warnings
            .push("firewall settings changed: they take effect at the next restart".to_string());
    }
    if new.daemon.socket != old.daemon.socket || new.daemon.state_dir != old.daemon.state_dir {
        warnings.push("state_dir/socket changed: they take effect at the next restart".to_string());
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_a_restart_applies_are_warned_about() {
        let old = Config::embedded_default().expect("embedded default");
        assert!(restart_warnings(&old, &old.clone()).is_empty());
        let mut new = old.clone();
        new.firewall.table = "other".to_string();
        new.daemon.socket = "/run/other.sock".into();
        let w = restart_warnings(&old, &new);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("firewall settings changed"), "{w:?}");
        assert!(w[1].starts_with("state_dir/socket changed"), "{w:?}");
        let mut new = old.clone();
        new.jails.clear();
        assert!(restart_warnings(&old, &new).is_empty());
    }
}
