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

/// Up to this many bans, `status JAIL` lists every banned target (Fail2Ban's "Banned IP
/// list", which scripts scrape); above it, only the newest [`BANNED_SHOWN`], with the total
/// and a hint to page with `bans --jail` (a million-entry line helps no one and costs the
/// loop a million strings).
pub const BANNED_ALL_UP_TO: usize = 1000;
/// How many of the newest bans `status JAIL` lists above [`BANNED_ALL_UP_TO`].
pub const BANNED_SHOWN: usize = 100;

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
                banned_list(d.jails.engine(idx))
            } else {
                Vec::new()
            },
            banned_omitted: match d.jails.engine(idx).ban_count() {
                n if jail.is_some() && n > BANNED_ALL_UP_TO => (n - BANNED_SHOWN) as u64,
                _ => 0,
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

/// The "Banned IP list" of `status JAIL`: every target in ascending order up to
/// [`BANNED_ALL_UP_TO`] bans, else the newest [`BANNED_SHOWN`] (a bounded heap over the
/// ban keys: no `Ban` built per ban), newest first.
fn banned_list(engine: &portcullis_core::jail::JailEngine) -> Vec<String> {
    use std::cmp::Reverse;
    if engine.ban_count() <= BANNED_ALL_UP_TO {
        let mut targets: Vec<_> = engine.ban_keys().map(|(_, t)| t).collect();
        targets.sort();
        return targets.iter().map(|t| host_or_net(*t)).collect();
    }
    let mut heap = std::collections::BinaryHeap::with_capacity(BANNED_SHOWN + 1);
    for k in engine.ban_keys() {
        if heap.len() < BANNED_SHOWN {
            heap.push(Reverse(k));
        } else if heap.peek().is_some_and(|Reverse(top)| k > *top) {
            heap.pop();
            heap.push(Reverse(k));
        }
    }
    let mut newest: Vec<_> = heap.into_iter().map(|Reverse(k)| k).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.iter().map(|(_, t)| host_or_net(*t)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ipnet::IpNet;
    use portcullis_core::Time;
    use portcullis_core::jail::{Command, JailConfig, JailEngine, Restored};

    use super::*;

    /// An engine with `n` manual bans of 198.18.x.y, the i-th at second i.
    fn engine_with(n: u32) -> JailEngine {
        let mut e = JailEngine::new(JailConfig::new("sshd"), Restored::default());
        for i in 0..n {
            let target = IpNet::from(std::net::IpAddr::V4((0xC612_0000 + i).into()));
            let ban = Command::Ban {
                target,
                duration: Some(Duration::from_secs(86400)),
                permanent: false,
                force: false,
            };
            e.handle_command(Time::from_secs(i64::from(i)), ban)
                .unwrap();
            while e.poll_decision().is_some() {}
        }
        e
    }

    #[test]
    fn a_small_jail_lists_every_ban_in_address_order() {
        let e = engine_with(BANNED_ALL_UP_TO as u32);
        let list = banned_list(&e);
        assert_eq!(list.len(), BANNED_ALL_UP_TO);
        assert_eq!(list[0], "198.18.0.0");
        let mut sorted = list.clone();
        sorted.sort_by_key(|s| s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(list, sorted);
    }

    #[test]
    fn a_jail_with_many_bans_lists_only_the_newest() {
        let n = 5000u32;
        let e = engine_with(n);
        let list = banned_list(&e);
        assert_eq!(list.len(), BANNED_SHOWN);
        // Newest first: the last ban decided is 198.18.19.135 (0xC612_0000 + 4999).
        let last = std::net::Ipv4Addr::from(0xC612_0000 + n - 1).to_string();
        let first_shown = std::net::Ipv4Addr::from(0xC612_0000 + n - BANNED_SHOWN as u32);
        assert_eq!(list[0], last);
        assert_eq!(list[BANNED_SHOWN - 1], first_shown.to_string());
    }
}
