//! `activity`: what `portcullis top` polls once a second — the attempt counter, the
//! heaviest failing addresses and networks, the newest bans, alerts and sources.
//!
//! [`snapshot`] is pure (the [`JailSet`] at `now`); [`activity`] adds what only the daemon
//! has (sources, the store's alerts). Every list is a bounded selection: a poll costs one
//! pass over the jails' windows and bans and sends at most `limit` entries per list, however
//! many addresses fail (the windows' keys are attacker-chosen).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;

use ipnet::IpNet;
use portcullis_control::data::{ActivityData, FailingEntry, NetworkEntry, SourceActivity};
use portcullis_control::{DEFAULT_ACTIVITY_LIMIT, ErrorBody, MAX_ACTIVITY_LIMIT, Target};
use portcullis_core::Time;
use portcullis_core::event::Ban;
use portcullis_sources::Position;

use super::ban_entry;
use crate::daemon::Daemon;
use crate::daemon::jail_set::JailSet;
use crate::daemon::sources::SourceKey;

/// Prefix of the IPv4 networks failing addresses are summed into.
const NET4_PREFIX: u8 = 24;
/// Prefix of the IPv6 networks failing addresses are summed into.
const NET6_PREFIX: u8 = 64;

/// The daemon's answer: [`snapshot`] plus sources and alerts.
pub async fn activity(d: &mut Daemon, limit: Option<u64>) -> Result<ActivityData, ErrorBody> {
    let now = d.clock.now();
    let keep = keep_of(limit);
    let mut data = snapshot(&d.jails, now, keep);
    let mut alerts = super::status::recent_alerts(d);
    alerts.truncate(keep);
    data.alerts = alerts;
    data.sources = d
        .sources
        .iter()
        .map(|s| SourceActivity {
            key: s.key.store_key(),
            jails: s
                .jails
                .iter()
                .map(|&i| d.jails.name(i).to_string())
                .collect(),
            lines: s.lines.load(Ordering::Relaxed),
            lag_bytes: match &s.position {
                Some(Position::File(p)) => match &s.key {
                    SourceKey::File(path) => std::fs::metadata(path)
                        .ok()
                        .filter(|meta| meta.ino() == p.ino)
                        .map(|meta| meta.len().saturating_sub(p.offset)),
                    SourceKey::Journal { .. } => None,
                },
                _ => None,
            },
            error: s.error.lock().ok().and_then(|g| g.clone()),
        })
        .collect();
    Ok(data)
}

/// How many entries per list a request's `limit` gives.
fn keep_of(limit: Option<u64>) -> usize {
    let limit = limit
        .unwrap_or(DEFAULT_ACTIVITY_LIMIT)
        .min(MAX_ACTIVITY_LIMIT);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// What the jails hold at `now` (engine time; the caller converts ban times to wall
/// time): at most `keep` entries per list, heaviest or newest first, ties in address order.
pub fn snapshot(set: &JailSet, now: Time, keep: usize) -> ActivityData {
    let mut data = ActivityData {
        now: now.as_secs(),
        ..ActivityData::default()
    };
    // Min-heaps of size `keep`: the lightest (then the highest address) leaves first.
    let mut failing: Largest<FailingKey> = BinaryHeap::new();
    let mut networks: Largest<NetworkKey> = BinaryHeap::new();
    for idx in 0..set.len() {
        data.attempts = data.attempts.saturating_add(set.attempts(idx));
        data.bans_decided = data.bans_decided.saturating_add(set.total_bans(idx));
        // Per network of this jail: (addresses, weight). Bounded by the jail's windows.
        let mut nets: HashMap<IpNet, (u64, u64)> = HashMap::new();
        for (addr, weight) in set.engine(idx).failing() {
            let weight = u64::from(weight.0);
            data.failing_total += 1;
            push_bounded(&mut failing, keep, Reverse((weight, Reverse((addr, idx)))));
            let e = nets.entry(network_of(addr)).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(weight);
        }
        for (net, (addresses, weight)) in nets {
            if addresses >= 2 {
                let item = Reverse((weight, addresses, Reverse((net, idx))));
                push_bounded(&mut networks, keep, item);
            }
        }
    }
    let threshold = |idx: usize| u64::from(set.engine(idx).config().maxretry.0);
    let mut failing: Vec<_> = failing.into_iter().map(|Reverse(x)| x).collect();
    failing.sort_unstable_by(|a, b| b.cmp(a));
    data.failing = failing
        .into_iter()
        .map(|(weight, Reverse((addr, idx)))| FailingEntry {
            jail: set.name(idx).to_string(),
            addr,
            weight,
            threshold: threshold(idx),
        })
        .collect();
    let mut networks: Vec<_> = networks.into_iter().map(|Reverse(x)| x).collect();
    networks.sort_unstable_by(|a, b| b.cmp(a));
    data.networks = networks
        .into_iter()
        .map(|(weight, addresses, Reverse((net, idx)))| NetworkEntry {
            jail: set.name(idx).to_string(),
            net: Target(net),
            addresses,
            weight,
        })
        .collect();
    // The newest bans: latest start first, then target.
    let mut newest: Largest<BanKey> = BinaryHeap::new();
    let engines = (0..set.len()).flat_map(|i| set.engine(i).active_bans());
    for ban in engines.chain(set.orphans(now).cloned()) {
        if ban.until.is_some_and(|u| u <= now) {
            continue;
        }
        data.bans_total += 1;
        push_bounded(
            &mut newest,
            keep,
            Reverse(Keyed((ban.since, Reverse(ban.target)), ban)),
        );
    }
    let mut newest: Vec<_> = newest.into_iter().map(|Reverse(x)| x).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    data.bans = newest.iter().map(|Keyed(_, b)| ban_entry(b)).collect();
    data
}

/// A min-heap that [`push_bounded`] keeps at the largest items seen.
type Largest<T> = BinaryHeap<Reverse<T>>;

/// A failing address's order: weight, then the lower address (and jail index) first.
type FailingKey = (u64, Reverse<(IpAddr, usize)>);

/// A network's order: weight, then addresses, then the lower network (and jail index).
type NetworkKey = (u64, u64, Reverse<(IpNet, usize)>);

/// A ban ordered by start, then the lower target.
type BanKey = Keyed<(Time, Reverse<IpNet>), Ban>;

/// A value ordered by its key alone.
struct Keyed<K, V>(K, V);

impl<K: Ord, V> PartialEq for Keyed<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Ord, V> Eq for Keyed<K, V> {}

impl<K: Ord, V> PartialOrd for Keyed<K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, V> Ord for Keyed<K, V> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// Push onto a min-heap holding the `keep` largest items seen.
fn push_bounded<T: Ord>(heap: &mut Largest<T>, keep: usize, item: Reverse<T>) {
    if keep == 0 {
        return;
    }
    if heap.len() < keep {
        heap.push(item);
    } else if heap.peek().is_some_and(|least| item < *least) {
        // `item` is larger than the smallest kept (Reverse inverts the order).
        heap.pop();
        heap.push(item);
    }
}

/// The /24 or /64 of `addr`.
fn network_of(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() {
        NET4_PREFIX
    } else {
        NET6_PREFIX
    };
    IpNet::new(addr, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(addr))
}
