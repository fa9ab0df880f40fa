//! `reload` (and SIGHUP): read the configuration again; on any error the old one keeps
//! running, and no ban is lost either way.

use portcullis_config::Config;
use portcullis_control::data::ReloadData;
use portcullis_control::{ErrorBody, ErrorKind};

use std::time::Duration;

use crate::daemon::{
    Daemon, compile_jails, live_jails, load_config, source_keys, watchdog_interval,
};

/// Load and compile the new configuration first, off the loop (an error changes nothing;
/// meanwhile the lines keep being matched, counted and committed: banning never pauses for
/// a reload), then hand the new jails to the
/// [`JailSet`](crate::daemon::jail_set::JailSet) (which keeps every ban). Sources that stay
/// the same keep running (their threads, positions and queued lines untouched); only when
/// the set of sources changes are they stopped (their lines so far go through the old
/// filters and are committed) and started again.
pub async fn reload(d: &mut Daemon) -> Result<ReloadData, ErrorBody> {
    let failed = |e: anyhow::Error| ErrorBody::new(ErrorKind::ReloadFailed, format!("{e:#}"));
    let t0 = std::time::Instant::now();
    let args = d.args.clone();
    let mut work = tokio::task::spawn_blocking(move || {
        let config = load_config(&args)?;
        let compiled = compile_jails(&config)?;
        // The GeoIP files are read again too (geoipupdate may have replaced them).
        let geo = crate::daemon::open_geo(&config.geoip);
        anyhow::Ok((config, compiled, geo))
    });
    // The loop lives on while the compile runs: it serves lines, and tells the watchdog.
    let watchdog = watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let prepared = loop {
        tokio::select! {
            biased;
            r = &mut work => break r,
            Some(batch) = d.lines_rx.recv() => {
                d.process_batch(batch);
                d.commit(false).await;
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    };
    let (config, compiled, geo) = prepared
        .map_err(|e| failed(anyhow::Error::new(e).context("the reload task failed")))?
        .map_err(failed)?;
    let compiled_in = t0.elapsed();
    let now = d.clock.read();
    let (filters, inits) = live_jails(compiled, &d.store, now, Some(&d.jails)).map_err(failed)?;
    let warnings = restart_warnings(&d.config, &config);
    let keys = source_keys(&filters);
    let same_sources =
        keys.len() == d.sources.len() && keys.iter().zip(&d.sources).all(|((k, _), s)| *k == s.key);
    if !same_sources {
        d.stop_sources(true).await;
    }
    let mut inits = inits;
    if let Some(f) = &mut d.fleet {
        crate::daemon::jail_set::fleet::allow_in(&mut inits, f.policy.allowed());
        // New receiving settings (allowlists, knobs); a changed link needs a restart.
        f.policy
            .reconfigure(crate::daemon::fleet::node::policy_config(
                &config.fleet,
                &f.node,
                &inits,
            ));
    }
    d.jails.reload(inits, d.clock.now());
    d.jails.configure_site(&config.campaign);
    d.filters = filters;
    let asn = crate::daemon::asn_lookup(&geo, &config.networks);
    d.jails.set_networks(
        crate::daemon::network_rules(&config.networks),
        asn,
        d.clock.now(),
    );
    d.geo = geo;
    if same_sources {
        for ((_, jails), s) in keys.into_iter().zip(&mut d.sources) {
            s.jails = jails;
        }
    }
    // What only a restart can change stays as it is.
    let mut config = config;
    config.daemon.socket = d.config.daemon.socket.clone();
    config.daemon.state_dir = d.config.daemon.state_dir.clone();
    config.firewall = d.config.firewall.clone();
    config.metrics = d.config.metrics.clone();
    d.config = config;
    if !same_sources {
        d.start_sources();
    }
    tracing::info!(
        compile_ms = compiled_in.as_millis() as u64,
        swap_ms = (t0.elapsed() - compiled_in).as_millis() as u64,
        sources_restarted = !same_sources,
        "configuration reloaded"
    );
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
    if new.metrics != old.metrics {
        warnings.push("metrics settings changed: they take effect at the next restart".to_string());
    }
    let link = |f: &portcullis_config::FleetSettings| {
        (
            f.enabled,
            f.servers.clone(),
            f.node.clone(),
            f.prefix.clone(),
            f.stream.clone(),
            f.credentials.clone(),
            f.queue,
        )
    };
    if link(&new.fleet) != link(&old.fleet) {
        warnings.push(
            "fleet link settings changed (enabled, servers, node, prefix, stream, credentials, queue): they take effect at the next restart; the receiving policy is reloaded now"
                .to_string(),
        );
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
        let mut new = old.clone();
        new.metrics.enabled = true;
        let w = restart_warnings(&old, &new);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("metrics settings changed"), "{w:?}");
    }
}
