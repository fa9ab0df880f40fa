//! Prometheus metrics (`[metrics]`, off by default): the Fail2Ban exporter's series
//! (`f2b_*`, same names and labels, so existing dashboards work) and portcullis' own
//! (`portcullis_*`). Every series is listed in docs/metrics.md.
//!
//! Key decision: only the daemon task touches its state. After a burst (at most every
//! [`PUBLISH_INTERVAL`], at once when it decided a ban) it copies what the series show into a
//! plain [`Snapshot`] and publishes it on a `watch` channel (a pointer swap); a scrape
//! encodes the latest snapshot on the server's own task ([`server`]), so a scrape never
//! waits for the loop and the loop never waits for a scrape.

mod server;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portcullis_core::event::BanReason;
use portcullis_core::{Decision, EventKind, Time};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

pub use server::MetricsServer;

use super::Daemon;

/// The longest a published snapshot lags the loop while it is busy (a ban is published at
/// once).
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Upper bounds of the ban latency histogram, in seconds (read of the line → kernel).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What the daemon counts for the metrics beyond what `status` already counts; owned by the
/// daemon task, plain integers.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bans decided, by jail and kind ([`BanReason::kind`]).
    pub bans: BTreeMap<(Box<str>, &'static str), u64>,
    /// Ban latency: per-bucket counts (the last one is +Inf), sum, count.
    pub latency: Histogram,
    /// Failed writes of the state database.
    pub store_errors: u64,
    /// Failed firewall batches, reconciles and setups.
    pub firewall_errors: u64,
}

/// A histogram with the fixed [`LATENCY_BUCKETS`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); index `LATENCY_BUCKETS.len()` is +Inf.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of the observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Count one observation of `secs`.
    pub fn observe(&mut self, secs: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += secs;
        self.count += 1;
    }
}

impl Counters {
    /// Count the decisions of one commit; `first_read` is the read time of the burst's first
    /// line that gave events, `applied` the wall time its firewall work was done.
    pub fn decisions(&mut self, decisions: &[Decision], first_read: Option<Time>, applied: Time) {
        for d in decisions {
            if let Decision::Ban(b) = d {
                *self
                    .bans
                    .entry((Box::from(&*b.jail), b.reason.kind()))
                    .or_insert(0) += 1;
                let from_lines = matches!(
                    b.reason,
                    BanReason::Threshold { .. }
                        | BanReason::SlowThreshold { .. }
                        | BanReason::UserNames { .. }
                        | BanReason::Aggregate { .. }
                );
                if let (true, Some(read)) = (from_lines, first_read) {
                    self.latency.observe(applied.since(read).as_secs_f64());
                }
            }
        }
    }
}

/// One jail as the series show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JailSnapshot {
    pub name: String,
    pub banned_current: u64,
    pub banned_total: u64,
    /// Addresses with failures in the window (Fail2Ban's "Currently failed").
    pub failed_current: u64,
    /// Whole failed attempts since start (Fail2Ban's "Total failed").
    pub failed_total: u64,
    pub bantime_secs: f64,
    pub findtime_secs: f64,
    pub maxretry: f64,
    /// Events its filter produced, by kind (attempt, probe, success, info).
    pub events: [u64; 4],
}

/// One jail's filter over one source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterSnapshot {
    pub jail: String,
    pub matched: u64,
    pub unmatched: u64,
    pub unparsed: u64,
    pub oversized: u64,
    pub bad: u64,
}

/// One source as the series show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceSnapshot {
    /// Its store key (`file:/var/log/auth.log`, `journal:…`).
    pub key: String,
    pub read: u64,
    pub untrusted: u64,
    /// Lines longer than the line cap (their rest discarded).
    pub truncated: u64,
    /// Seconds from the read of its last processed line to its processing.
    pub lag_secs: f64,
    pub error: bool,
    pub filters: Vec<FilterSnapshot>,
}

/// Everything a scrape shows, copied by the daemon task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub version: &'static str,
    pub uptime_secs: f64,
    pub jails: Vec<JailSnapshot>,
    pub sources: Vec<SourceSnapshot>,
    /// Bans decided since start by jail and kind.
    pub bans: Vec<(String, &'static str, u64)>,
    pub latency: Histogram,
    pub store_errors: u64,
    pub store_healthy: bool,
    pub firewall_errors: u64,
    pub firewall_healthy: bool,
    pub hooks_delivered: u64,
    pub hooks_failed: u64,
    pub hooks_dropped: u64,
    pub hooks_waiting: u64,
}

impl Snapshot {
    /// The daemon's state now. Reads only the daemon's own fields and atomics (no I/O).
    pub fn of(d: &Daemon) -> Snapshot {
        let jails = (0..d.jails.len())
            .map(|i| {
                let engine = d.jails.engine(i);
                let config = engine.config();
                JailSnapshot {
                    name: d.jails.name(i).to_string(),
                    banned_current: engine.ban_count() as u64,
                    banned_total: d.jails.total_bans(i),
                    failed_current: engine.tracked_addresses() as u64,
                    failed_total: d.jails.attempts(i),
                    bantime_secs: config.bantime.as_secs_f64(),
                    findtime_secs: config.findtime.as_secs_f64(),
                    maxretry: config.maxretry.as_attempts(),
                    events: d.filters.get(i).map_or([0; 4], |f| f.events_by_kind),
                }
            })
            .collect();
        let sources = d
            .sources
            .iter()
            .enumerate()
            .map(|(idx, s)| SourceSnapshot {
                key: s.key.store_key(),
                read: s.lines.load(Ordering::Relaxed),
                untrusted: s.untrusted.load(Ordering::Relaxed),
                truncated: s.truncated,
                lag_secs: s.lag.as_secs_f64(),
                error: s.error.lock().map(|g| g.is_some()).unwrap_or(true),
                filters: s
                    .jails
                    .iter()
                    .filter_map(|&j| {
                        let st = d.filters.get(j)?.source_stats(idx)?;
                        Some(FilterSnapshot {
                            jail: d.jails.name(j).to_string(),
                            matched: st.matched,
                            unmatched: st.unmatched,
                            unparsed: st.unparsed,
                            oversized: st.oversized,
                            bad: st.bad,
                        })
                    })
                    .collect(),
            })
            .collect();
        let (hooks, waiting) = d.notifier.stats();
        let c = &d.metrics_counters;
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: d.started.elapsed().as_secs_f64(),
            jails,
            sources,
            bans: c
                .bans
                .iter()
                .map(|((j, k), n)| (j.to_string(), *k, *n))
                .collect(),
            latency: c.latency.clone(),
            store_errors: c.store_errors,
            store_healthy: d.unsaved.failure().is_none(),
            firewall_errors: c.firewall_errors,
            firewall_healthy: d.firewall_error.is_none(),
            hooks_delivered: hooks.delivered.load(Ordering::Relaxed),
            hooks_failed: hooks.failed.load(Ordering::Relaxed),
            hooks_dropped: hooks.dropped.load(Ordering::Relaxed),
            hooks_waiting: waiting as u64,
        }
    }
}

/// The daemon's side: publishes snapshots; the server scrapes them.
pub struct Metrics {
    tx: watch::Sender<Arc<Snapshot>>,
    last: Instant,
    server: MetricsServer,
}

impl Metrics {
    /// Start serving on `listen` (an empty snapshot until the first publish).
    pub fn start(listen: &portcullis_config::MetricsListen) -> anyhow::Result<Metrics> {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let server = MetricsServer::start(listen, Arc::new(registry(rx)))?;
        Ok(Metrics {
            tx,
            last: Instant::now(),
            server,
        })
    }

    /// Whether a snapshot is due: `PUBLISH_INTERVAL` passed, or `now` is forced.
    pub fn due(&self, force: bool) -> bool {
        force || self.last.elapsed() >= PUBLISH_INTERVAL
    }

    /// Publish `snap` (the server's next scrape shows it).
    pub fn publish(&mut self, snap: Snapshot) {
        self.tx.send_replace(Arc::new(snap));
        self.last = Instant::now();
    }

    /// Where the server listens.
    pub fn local(&self) -> &str {
        &self.server.local
    }

    /// Stop listening (a Unix socket's file is removed).
    pub fn stop(self) {
        self.server.stop();
    }
}

/// The registry a scrape encodes: one collector reading the latest snapshot.
pub fn registry(rx: watch::Receiver<Arc<Snapshot>>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(SnapshotCollector { rx }));
    r
}

/// The registry's text in the Prometheus text format 0.0.4.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    // Writing to a String does not fail; an encoder error would be a bug in a series below.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        tracing::error!("metrics encoding failed: {e}");
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector {
    rx: watch::Receiver<Arc<Snapshot>>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Clone the pointer and let the channel go at once.
        let s: Arc<Snapshot> = self.rx.borrow().clone();
        encode_snapshot(&s, &mut enc)
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn gauge<'a, V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?.encode_gauge(&v)?;
    }
    Ok(())
}

/// A counter family; the encoder appends `_total` to `name`.
fn counter<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

fn one<V>(v: V) -> [(Labels<'static>, V); 1] {
    [(Vec::new(), v)]
}

const KINDS: [EventKind; 4] = [
    EventKind::Attempt,
    EventKind::Probe,
    EventKind::Success,
    EventKind::Info,
];

/// Every series of one snapshot (docs/metrics.md lists them).
fn encode_snapshot(s: &Snapshot, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    // The Fail2Ban exporter's series, its names and labels.
    gauge(
        enc,
        "f2b_up",
        "Whether the server is up (always 1: the daemon serves its own metrics)",
        one(1u64),
    )?;
    gauge(
        enc,
        "f2b_errors",
        "Errors since start, by type (db: failed writes of the state database; firewall: failed firewall batches)",
        [
            (vec![("type", "db")], s.store_errors),
            (vec![("type", "firewall")], s.firewall_errors),
        ],
    )?;
    gauge(
        enc,
        "f2b_jail_count",
        "Number of jails",
        one(s.jails.len() as u64),
    )?;
    let per_jail = |f: fn(&JailSnapshot) -> u64| {
        s.jails
            .iter()
            .map(move |j| (vec![("jail", j.name.as_str())], f(j)))
    };
    let per_jail_f = |f: fn(&JailSnapshot) -> f64| {
        s.jails
            .iter()
            .map(move |j| (vec![("jail", j.name.as_str())], f(j)))
    };
    gauge(
        enc,
        "f2b_jail_banned_current",
        "Addresses currently banned by this jail",
        per_jail(|j| j.banned_current),
    )?;
    counter(
        enc,
        "f2b_jail_banned",
        "Bans decided by this jail since start (expired ones included)",
        per_jail(|j| j.banned_total),
    )?;
    gauge(
        enc,
        "f2b_jail_failed_current",
        "Addresses with failures in this jail's window",
        per_jail(|j| j.failed_current),
    )?;
    counter(
        enc,
        "f2b_jail_failed",
        "Failed attempts counted by this jail since start",
        per_jail(|j| j.failed_total),
    )?;
    gauge(
        enc,
        "f2b_jail_config_ban_time",
        "Ban time of this jail (first ban), seconds",
        per_jail_f(|j| j.bantime_secs),
    )?;
    gauge(
        enc,
        "f2b_jail_config_find_time",
        "Find time (window) of this jail, seconds",
        per_jail_f(|j| j.findtime_secs),
    )?;
    gauge(
        enc,
        "f2b_jail_config_fail_threshold",
        "Weighted attempts in the window that ban (maxretry)",
        per_jail_f(|j| j.maxretry),
    )?;

    // portcullis' own.
    gauge(
        enc,
        "portcullis_build_info",
        "Always 1; the version as a label",
        [(vec![("version", s.version)], 1u64)],
    )?;
    gauge(
        enc,
        "portcullis_uptime_seconds",
        "Seconds since the daemon started (as of the snapshot)",
        one(s.uptime_secs),
    )?;
    let per_source = |f: fn(&SourceSnapshot) -> u64| {
        s.sources
            .iter()
            .map(move |src| (vec![("source", src.key.as_str())], f(src)))
    };
    counter(
        enc,
        "portcullis_source_lines_read",
        "Lines (journal entries) read from this source",
        per_source(|x| x.read),
    )?;
    counter(
        enc,
        "portcullis_source_lines_truncated",
        "Lines longer than the line cap (16 KiB) whose rest was discarded",
        per_source(|x| x.truncated),
    )?;
    counter(
        enc,
        "portcullis_source_untrusted",
        "Journal entries read and not believed (their sender is not vouched for)",
        per_source(|x| x.untrusted),
    )?;
    gauge(
        enc,
        "portcullis_source_lag_seconds",
        "Seconds from the read of this source's last processed line to its processing",
        s.sources
            .iter()
            .map(|x| (vec![("source", x.key.as_str())], x.lag_secs)),
    )?;
    gauge(
        enc,
        "portcullis_source_error",
        "1 while this source's last read failed",
        per_source(|x| u64::from(x.error)),
    )?;
    let per_filter = |f: fn(&FilterSnapshot) -> u64| {
        s.sources.iter().flat_map(move |src| {
            src.filters.iter().map(move |fl| {
                (
                    vec![("source", src.key.as_str()), ("jail", fl.jail.as_str())],
                    f(fl),
                )
            })
        })
    };
    counter(
        enc,
        "portcullis_lines_matched",
        "Lines of this source this jail's filter made events of",
        per_filter(|f| f.matched),
    )?;
    counter(
        enc,
        "portcullis_lines_unmatched",
        "Lines of this source no rule of this jail's filter matched (other programs' included)",
        per_filter(|f| f.unmatched),
    )?;
    counter(
        enc,
        "portcullis_lines_unparsed",
        "Lines of this source whose timestamp and header this jail's filter could not split",
        per_filter(|f| f.unparsed),
    )?;
    counter(
        enc,
        "portcullis_lines_oversized",
        "Lines of this source at or over the line cap, never matched",
        per_filter(|f| f.oversized),
    )?;
    counter(
        enc,
        "portcullis_lines_bad",
        "Lines of this source for this jail's filter that could not be used",
        per_filter(|f| f.bad),
    )?;
    counter(
        enc,
        "portcullis_events",
        "Events this jail's filter produced, by kind (attempt, probe, success, info)",
        s.jails.iter().flat_map(|j| {
            KINDS
                .iter()
                .zip(j.events)
                .map(|(k, n)| (vec![("jail", j.name.as_str()), ("kind", k.as_str())], n))
        }),
    )?;
    counter(
        enc,
        "portcullis_bans",
        "Bans decided since start, by jail and kind (threshold, slow, users, aggregate, manual)",
        s.bans
            .iter()
            .map(|(j, k, n)| (vec![("jail", j.as_str()), ("kind", *k)], *n)),
    )?;
    {
        let mut m = enc.encode_descriptor(
            "portcullis_ban_latency_seconds",
            "Seconds from the read of the first line of a burst that gave events to the end of the firewall batch of the bans it decided",
            None,
            MetricType::Histogram,
        )?;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(s.latency.buckets)
            .collect();
        m.encode_histogram::<NoLabelSet>(s.latency.sum, s.latency.count, &buckets, None)?;
    }
    counter(
        enc,
        "portcullis_store_errors",
        "Failed writes of the state database (decisions are kept in memory and retried)",
        one(s.store_errors),
    )?;
    gauge(
        enc,
        "portcullis_store_healthy",
        "1 when the last write of the state database succeeded",
        one(u64::from(s.store_healthy)),
    )?;
    counter(
        enc,
        "portcullis_firewall_errors",
        "Failed firewall batches, reconciles and setups (retried with backoff)",
        one(s.firewall_errors),
    )?;
    gauge(
        enc,
        "portcullis_firewall_healthy",
        "1 when the last firewall change succeeded",
        one(u64::from(s.firewall_healthy)),
    )?;
    counter(
        enc,
        "portcullis_hook_runs_delivered",
        "Notification hook runs that succeeded",
        one(s.hooks_delivered),
    )?;
    counter(
        enc,
        "portcullis_hook_runs_failed",
        "Notification hook runs that failed (error, exit status, timeout, every webhook try)",
        one(s.hooks_failed),
    )?;
    counter(
        enc,
        "portcullis_hook_queue_dropped",
        "Notification hook runs dropped because the hook queue was full",
        one(s.hooks_dropped),
    )?;
    gauge(
        enc,
        "portcullis_hook_queue_waiting",
        "Notification hook runs waiting for a worker",
        one(s.hooks_waiting),
    )?;
    Ok(())
}

/// Labels of a family row are a `Vec<(&str, &str)>`; keep the type checked here.
const _: fn() = || {
    fn is_label_set<T: EncodeLabelSet>() {}
    is_label_set::<Labels<'static>>();
};
