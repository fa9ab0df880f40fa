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
    Ok(StatusData {
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
        campaigns: super::campaigns::status(d),
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
