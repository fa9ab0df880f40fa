//! `status [JAIL]`: version, uptime, firewall health, recent alerts, and per jail its bans,
//! attempts and sources.

use std::sync::atomic::Ordering;
use std::time::Instant;

use portcullis_control::ErrorBody;
use portcullis_control::data::{
    AlertEntry, BackendStatus, HookStatus, JailStatus, LineCounts, SourceStatus, StatusData,
    StoreStatus,
};
use portcullis_core::event::Alert;

use super::selected;
use crate::daemon::{Daemon, HEALTH_MAX_AGE};
use crate::text::chain;

/// How many alerts `status` shows, newest first.
const ALERTS: usize = 20;

/// The daemon's state as `status` shows it (the firewall's health is listed at most once
/// per [`HEALTH_MAX_AGE`]).
pub async fn status(d: &mut Daemon, jail: Option<&str>) -> Result<StatusData, ErrorBody> {
    let jails = selected(&d.jails, jail)?;
    let health = match &d.health {
        Some((at, h)) if at.elapsed() < HEALTH_MAX_AGE => h.clone(),
        _ => {
            let in_force = d.jails.in_force_counts(d.clock.now());
            let h = d.firewall.check(in_force).await;
            d.health = Some((Instant::now(), h.clone()));
            h
        }
    };
    let d = &*d;
    let error = d.firewall_error.clone().or(health.last_error.clone());
    let jails = jails
        .into_iter()
        .map(|idx| JailStatus {
            name: d.jails.name(idx).to_string(),
            active_bans: d.jails.engine(idx).ban_count() as u64,
            total_bans: d.jails.total_bans(idx),
            attempts: d.jails.attempts(idx),
            failing: d.jails.engine(idx).tracked_addresses() as u64,
            banned: if jail.is_some() {
                let mut targets: Vec<_> = d
                    .jails
                    .engine(idx)
                    .active_bans()
                    .map(|b| b.target)
                    .collect();
                targets.sort();
                targets.iter().map(|t| host_or_net(*t)).collect()
            } else {
                Vec::new()
            },
            lines: line_counts(&d.filters[idx].line_stats()),
            sources: d
                .sources
                .iter()
                .filter(|s| s.jails.contains(&idx))
                .map(|s| SourceStatus {
                    key: s.key.store_key(),
                    position: s.describe_position(),
                    lines: s.lines.load(Ordering::Relaxed),
                    untrusted: s.untrusted.load(Ordering::Relaxed),
                    error: s.error.lock().ok().and_then(|g| g.clone()),
                })
                .collect(),
        })
        .collect();
    let geoip = geoip_status(d).map(Box::new);
    let networks =
        d.jails
            .network_status()
            .map(|(rules, n)| portcullis_control::data::NetworksStatus {
                rules,
                network_bans: n as u64,
            });
    Ok(StatusData {
        geoip,
        networks,
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_secs: d.started.elapsed().as_secs(),
        dry_run: d.args.dry_run,
        backend: BackendStatus {
            name: health.backend.to_string(),
            healthy: error.is_none() && health.counts.is_some(),
            error,
        },
        jails,
        alerts: recent_alerts(d),
        hooks: {
            let (stats, waiting) = d.notifier.stats();
            HookStatus {
                delivered: stats.delivered.load(Ordering::Relaxed),
                failed: stats.failed.load(Ordering::Relaxed),
                dropped: stats.dropped.load(Ordering::Relaxed),
                waiting: waiting as u64,
            }
        },
        store: match d.unsaved.failure() {
            None => StoreStatus {
                healthy: true,
                ..StoreStatus::default()
            },
            Some(f) => StoreStatus {
                healthy: false,
                error: Some(f.error.clone()),
                failing_secs: f.since.elapsed().as_secs(),
                failed_writes: f.attempts,
                unsaved_decisions: d.unsaved.decision_count() as u64,
            },
        },
        fleet: d.fleet.as_ref().map(|f| {
            let now = d.clock.now();
            let mut bans = 0u64;
            let mut origins = std::collections::BTreeMap::<String, u64>::new();
            let fleet_bans = d
                .jails
                .orphans(now)
                .filter(|b| &*b.jail == crate::daemon::jail_set::fleet::FLEET_JAIL);
            for b in fleet_bans {
                bans += 1;
                if let portcullis_core::event::BanReason::Fleet { origin } = &b.reason {
                    for o in origin.split(',') {
                        *origins.entry(o.to_owned()).or_default() += 1;
                    }
                }
            }
            let mut s = f.status(bans);
            s.origins = origins;
            Box::new(s)
        }),
    })
}

/// How many active bans `status` looks up for its by-country and by-AS tallies: a bound
/// on the work of one status request on the loop (about 1 µs a lookup).
const GEOIP_STATUS_BANS: usize = 10_000;

/// The databases in use and where the bans in force come from; `None` without GeoIP.
fn geoip_status(d: &Daemon) -> Option<portcullis_control::data::GeoIpStatus> {
    for w in d.geo.take_warnings() {
        tracing::warn!("{w}");
    }
    let warnings = d.geo.problems();
    if d.geo.is_empty() && warnings.is_empty() {
        return None;
    }
    // Keys only, no list of every ban built or sorted (a status at 1M bans stays cheap).
    let origins: Vec<Option<portcullis_core::origin::Origin>> = (0..d.jails.len())
        .flat_map(|i| d.jails.engine(i).ban_keys())
        .take(GEOIP_STATUS_BANS)
        .map(|(_, t)| d.geo.lookup(t.addr()))
        .collect();
    let (bans_by_country, bans_by_asn) =
        crate::geo::tally(origins.iter().map(|o| (o.as_ref(), 0)), 10);
    Some(portcullis_control::data::GeoIpStatus {
        databases: d
            .geo
            .paths()
            .into_iter()
            .map(|(p, kind)| format!("{} ({kind})", p.display()))
            .collect(),
        warnings,
        bans_by_country,
        bans_by_asn,
        counted: origins.len() as u64,
    })
}

/// An address alone when the target is one host (as Fail2Ban lists them), else the network.
fn host_or_net(t: ipnet::IpNet) -> String {
    if t.prefix_len() == t.max_prefix_len() {
        t.addr().to_string()
    } else {
        t.to_string()
    }
}

pub(super) fn recent_alerts(d: &Daemon) -> Vec<AlertEntry> {
    let alerts = match d.store.recent_alerts(ALERTS) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("cannot read alerts: {}", chain(&e));
            return Vec::new();
        }
    };
    alerts
        .into_iter()
        .map(|a| match a.alert {
            Alert::Breach {
                addr,
                user,
                failures,
                time,
            } => AlertEntry {
                kind: "breach".into(),
                time: time.as_secs(),
                addr: addr.to_string(),
                user: user.map(|u| u.to_string()),
                failures,
            },
            Alert::RootLogin { addr, time } => AlertEntry {
                kind: "root_login".into(),
                time: time.as_secs(),
                addr: addr.to_string(),
                user: Some("root".into()),
                failures: 0,
            },
        })
        .collect()
}

/// A filter's counters as `status` shows them.
fn line_counts(st: &portcullis_core::filter::Stats) -> LineCounts {
    LineCounts {
        read: st.lines,
        matched: st.matched,
        ignored: st.ignored,
        unmatched: st.unmatched,
        unparsed: st.unparsed,
        bad: st.bad,
        oversized: st.oversized,
        no_timestamp: st.no_timestamp,
        cut: st.cut,
    }
}
