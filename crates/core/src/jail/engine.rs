//! [`JailEngine`]: the state machine of one jail.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::addr_table::AddrTable;
use super::command::{Command, CommandError, MAX_BAN_DURATION};
use super::config::JailConfig;
use super::escalation::ban_length;
use super::slow::{SlowSignals, bucket_width};
use super::window::Window;
use crate::event::{
    Alert, Ban, BanReason, Decision, Event, EventKind, UnbanReason, Weight, normalize_addr,
};
use crate::time::Time;

/// What a jail engine starts from: the state the store kept across a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Bans that were active when the daemon stopped. They are re-armed (expiry, coverage,
    /// IPv6 aggregation counts) without emitting decisions: the firewall and the store already
    /// hold them. Ones that ran out meanwhile expire at the first `handle_*` call.
    pub bans: Vec<Ban>,
    /// Start times of past bans, per target, for escalation. May include the starts of the
    /// active `bans` or not: the engine adds each active ban's `since` if it is missing.
    /// Entries older than the jail's `history` are ignored.
    pub history: Vec<(IpNet, Time)>,
    /// The windows the store kept (what [`JailEngine::poll_window_changes`] reported
    /// last), so a restart forgives nothing: counts go on from where they were. Entries
    /// that left the window meanwhile are dropped at the first call; windows of addresses
    /// under a restored ban, and empty ones, are ignored.
    pub windows: Vec<WindowState>,
}

/// One entry of an address's window: the failures at one event time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WindowEntry {
    /// The event time (held at the engine clock).
    pub time: Time,
    /// Weight counted toward `maxretry` (`weight × count`; zero when a login protection
    /// forgave it).
    pub weight: Weight,
    /// Whole failed authentications, for the breach rule.
    pub attempts: u32,
}

/// The window of one address as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowState {
    /// The address.
    pub addr: IpAddr,
    /// Its entries within `findtime`, oldest first; empty here and in `slow`: the window is
    /// gone (a ban or a flush cleared it), delete it.
    pub entries: Vec<WindowEntry>,
    /// The long window's buckets (slow brute force), oldest first: `time` is the bucket's
    /// start, `attempts` is 0. Empty when the jail has no long window.
    pub slow: Vec<WindowEntry>,
    /// When the newest entry or bucket leaves its window (its time + `findtime`, a bucket's
    /// start + one bucket + `slow_findtime`): the stored row is worthless after that and
    /// may be pruned. `Time::EPOCH` for an empty window.
    pub until: Time,
}

/// Counters since the engine was created (for `status` and metrics).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JailStats {
    /// Events handled, of every kind.
    pub events: u64,
    /// Bans decided: automatic, aggregate and manual (restored ones are not counted).
    pub bans: u64,
    /// How many of `bans` were permanent.
    pub permanent_bans: u64,
    /// Alerts raised (breach, root login).
    pub alerts: u64,
    /// Failure events from an address already covered by a ban of this jail (ignored: the
    /// firewall had not caught up yet, or the line was old).
    pub while_banned: u64,
    /// Times an allowlisted address reached `maxretry` (and was not banned).
    pub allowlisted: u64,
    /// Failure events forgiven by a login protection (they name a user who logged in
    /// cleanly from the address; they still count for the breach rule).
    pub protected: u64,
    /// Bans decided because a protection's budget (`protect_budget × maxretry` of forgiven
    /// failures) ran out.
    pub protection_exhausted: u64,
}

/// What a successful login means by the breach rule (see [`JailEngine::judge_success`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SuccessVerdict {
    /// Whole failed attempts from the address before the success: those within `findtime`
    /// before it, plus those its ban (if any) was decided on.
    pub failures: u32,
    /// Whether that is a breach: `failures` reached `breach_after` (never when the jail
    /// disables the alert).
    pub breach: bool,
}

/// A ban this jail holds, without the fields every ban shares (the jail name, the target is
/// the map key). Kept small: an attack wave can leave 100k of these.
#[derive(Clone, Debug)]
struct ActiveBan {
    since: Time,
    /// `None`: permanent.
    until: Option<Time>,
    ban_no: u32,
    reason: BanReason,
    /// Failed authentications counted in the window when the ban was decided, so that a
    /// success logged right after the ban (a parallel connection that got in) still raises
    /// the breach alert.
    failures: u32,
}

/// The login protection of one address: who logged in cleanly from it, until when, and
/// how much of its budget the forgiven failures used.
#[derive(Clone, Debug)]
struct Protection {
    /// The end: `protect_after_success` after the latest clean login.
    until: Time,
    /// The users whose clean login started or renewed it, oldest first, at most
    /// [`MAX_PROTECTED_USERS`] (a new one drops the oldest).
    users: Vec<Box<str>>,
    /// Weight of the failures forgiven in the current budget period (renewals keep it).
    spent: u64,
    /// When the current budget period began: the protection's start, then once per
    /// `protect_after_success` (a login never renews the budget; time does).
    period_start: Time,
}

impl Protection {
    fn covers(&self, user: Option<&str>) -> bool {
        user.is_some_and(|u| self.users.iter().any(|p| &**p == u))
    }
}

/// Users one address's protection remembers at most.
pub const MAX_PROTECTED_USERS: usize = 8;

/// How long a new ban lasts.
/// What [`JailEngine::ban_participant`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParticipantBan {
    /// Banned now.
    Banned,
    /// Already banned (by itself or a network): left as it is.
    AlreadyBanned,
    /// On the allowlist: never banned.
    Allowlisted,
    /// A recent clean login protects it: never banned by a campaign.
    Protected,
}

#[derive(Copy, Clone, Debug)]
enum Length {
    /// The escalation rule on the target's history.
    Escalate,
    Fixed(Duration),
    Permanent,
}

/// Which prefix lengths have at least one active ban, so that "is this address banned, by
/// itself or by a network?" costs one map lookup per length in use (usually one or two),
/// not a scan of all bans.
#[derive(Clone, Debug)]
struct PrefixLengths {
    v4: [u32; 33],
    v6: [u32; 129],
}

impl PrefixLengths {
    fn counts(&mut self, net: &IpNet) -> &mut u32 {
        match net {
            IpNet::V4(n) => &mut self.v4[usize::from(n.prefix_len().min(32))],
            IpNet::V6(n) => &mut self.v6[usize::from(n.prefix_len().min(128))],
        }
    }
    fn add(&mut self, net: &IpNet) {
        *self.counts(net) += 1;
    }
    fn remove(&mut self, net: &IpNet) {
        let c = self.counts(net);
        *c = c.saturating_sub(1);
    }
}

/// The sans-IO state machine of one jail: events and commands in, [`Decision`]s out.
///
/// It never reads a clock, touches the firewall or the store, or spawns anything; every
/// input carries `now`, and every output is polled. The same engine serves the daemon (wall
/// clock) and `portcullis scan` (log time).
///
/// # Call protocol
///
/// - **Getters** ([`active_bans`](Self::active_bans), [`banned_by`](Self::banned_by),
///   [`score`](Self::score), [`tracked_addresses`](Self::tracked_addresses),
///   [`stats`](Self::stats), …) may be called at any time and change nothing.
/// - **Inputs**: [`handle_event`](Self::handle_event) for each event a filter produced,
///   [`handle_timeout`](Self::handle_timeout) when the deadline from `poll_timeout` is
///   reached.
/// - **Commands**: [`handle_command`](Self::handle_command) for what an administrator asks
///   (ban, unban, unban all, flush); it returns an error instead of a decision when refused.
/// - **Outputs**: after any input or command, drain [`poll_decision`](Self::poll_decision)
///   until `None` (decisions come out in the order they were made, FIFO), then ask
///   [`poll_timeout`](Self::poll_timeout) when to call `handle_timeout` next. The daemon
///   applies one drained burst as one firewall batch and one store transaction.
/// - **Window changes** (opt-in, [`track_window_changes`](Self::track_window_changes)):
///   [`poll_window_changes`](Self::poll_window_changes) hands out the current window of
///   every address whose window changed since the last call (a failure entered it, a ban or
///   flush cleared it), so a driver can persist the windows with the source positions in
///   one transaction and restore them ([`Restored::windows`]): a restart then counts on
///   exactly. Windows that only age are not reported (their entries' times say when they
///   expire). Without the opt-in (`scan`) nothing is recorded.
///
/// Every `handle_*` call first expires the bans that are due at `now` (their
/// `Decision::Unban { reason: Expired }` come out first), so a driver that feeds events
/// faster than deadlines arrive (`scan`) never sees a stale ban; a ban of zero length
/// (e.g. `bantime = 0`) comes out as a `Ban` followed by its `Unban` in the same burst.
/// `handle_timeout` is needed only for idle periods; calling it early, late or twice is
/// harmless (a spurious call is a no-op).
///
/// # Time
///
/// `now` is a [`Time`] on the driver's clock: the daemon's engine time (the wall time of its
/// start plus monotonic time since, so a wall-clock step moves nothing; event times are moved
/// onto it), or, offline, log time as a [`LogClock`](super::LogClock) places it (so one
/// far-off line cannot freeze it). The engine clock is the largest `now` seen so far: a `now`
/// that goes backward (an older rotated log) is held at the last value, so time going
/// backward never unbans early and never panics. Bans start at the engine clock.
/// Window membership uses each event's own time: an event counts while its time is within
/// `[clock - findtime, clock]`; an event older than that counts for nothing, and an event
/// from the future counts as if it happened at the engine clock.
///
/// # Rules
///
/// - Only `Attempt` and `Probe` events are failures; their `weight × count` enters the
///   address's window. A ban is decided, at a failure event, when the window's weighted sum
///   reaches `maxretry`; the window is then cleared. Failures from an address already
///   covered by a ban (its own, or a network's) are ignored and counted in
///   [`JailStats::while_banned`].
/// - **Slow signals** (see `slow.rs`). A failure's weight also enters the address's long
///   window (`long_window`, bucketed per `slow_findtime / 48`, exact at that granularity);
///   reaching `slow_maxretry` bans with [`BanReason::SlowThreshold`]. A failure naming a
///   user adds the name's keyed hash to the address's distinct names within `findtime`
///   (at most `max_users` kept); reaching `max_users` bans with [`BanReason::UserNames`].
///   The short window's `Threshold` wins when both are reached at once. A forgiven failure
///   (login protection) adds nothing to either, a ban or a flush clears both, the allowlist
///   is never banned by them. The long window is reported with the window changes
///   ([`WindowState::slow`]) and restored; the names are memory only.
/// - Ban *n* of a target (n = its bans within `history`, plus one) lasts
///   `bantime × factor^(n-1)`, capped at `maxtime`, and is permanent once
///   `n >= permanent_after`. Lengths never shrink as n grows.
/// - Allowlisted addresses are never banned automatically, and an aggregate network ban
///   never covers them (nor an address under login protection).
/// - **Login protection is bounded.** A success of user U from A that is not a breach (see
///   the breach rule: `breach_after` failed attempts within `findtime` before it) starts or
///   renews A's protection: it lasts `protect_after_success` after A's latest clean login
///   and remembers the users who logged in (at most [`MAX_PROTECTED_USERS`], oldest dropped;
///   a success without a user name protects nothing). While it lasts, a failure from A that
///   *names* one of those users (the admin's typo) is forgiven: it enters the window with
///   weight zero (its attempts still count for the breach rule) and its weight is charged to
///   the protection instead. Failures naming another user, or none (an attacker behind the
///   same NAT, pre-auth probes), are counted as if there were no protection. The forgiven
///   weight is capped per period of `protect_after_success` (a day by default), counted from
///   the protection's start: the failure that brings it to `protect_budget × maxretry`
///   within one period bans A anyway ([`JailStats::protection_exhausted`]); the budget is
///   whole again when the next period begins (time renews it, a login never does). A ban of
///   A ends its protection; the next clean login after it, or after the protection lapsed,
///   starts a new one. So between two bans, an address gets at most `maxretry` (minus one
///   failure) of weight per `findtime` from unprotected failures and less than
///   `protect_budget × maxretry` per period from protected ones, while a user who logs in
///   daily and mistypes a few times a day is never banned. Protection lives in memory
///   only: a restart ends it (the budget is never renewed by a restart).
/// - IPv6: when `v6_net_threshold` addresses of one `/v6_prefix` are banned at the same time,
///   the network is banned ([`BanReason::Aggregate`], escalating on its own history) and the
///   member bans it outlasts are lifted with [`UnbanReason::Superseded`].
/// - A successful login as `root` raises [`Alert::RootLogin`] when `alert_root_login` is on.
///   Alerts do not depend on the allowlist (a breach from inside is still a breach).
/// - A manual ban of a target that is already banned replaces it (a new `Ban` decision for
///   the same target); every ban, manual or not, enters the target's history.
///
/// # Order of decisions within one call
///
/// `Unban { Expired }` for what was due, then the `Ban` of the address, then (IPv6) the
/// network `Ban` and its members' `Unban { Superseded }`; for a success, `Breach` before
/// `RootLogin`. `UnbanAll` lifts bans in ascending target order. Nothing depends on hash
/// order, so a run is reproducible.
///
/// # Memory
///
/// Per tracked address: one hash-map slot and a window holding only entries within
/// `findtime`. Addresses whose window is empty are dropped by a sweep that runs every
/// `findtime` of engine time and whenever the map doubled since the last sweep, so state is
/// bounded by the addresses seen within about two `findtime`s, whatever the driver does.
/// With slow signals, each address that failed within `slow_findtime` also keeps at most
/// 50 buckets and `max_users` name hashes, swept the same way.
#[derive(Debug)]
pub struct JailEngine {
    config: JailConfig,
    /// The jail name as it goes into each decision.
    name: Box<str>,
    /// The largest `now` seen (held when `now` goes backward); `None` before the first call.
    clock: Option<Time>,
    /// Per failing address, everything counted about it: its sliding window and its slow
    /// signals (long window, distinct user names), in ONE compact table (see
    /// [`AddrTable`]: 1M addresses in ~150 MB). Keys are chosen by attackers (any source
    /// address they can spoof or rent), so the table keeps std's SipHash with a
    /// per-process random key: an unkeyed hash would let them pick colliding addresses and
    /// turn each lookup linear. Swept, so it holds the addresses that failed within
    /// `findtime` (or `slow_findtime`, with a long window).
    addrs: AddrTable<AddrState>,
    /// How many of `addrs` have a non-empty short window (what `tracked_addresses` says).
    live_windows: usize,
    /// The key user names are hashed with (random per engine): the engine keeps hashes of
    /// the attacker's text, never the text, and no one can pick names that collide.
    user_key: RandomState,
    /// Addresses with a recent clean login: their protection. Only addresses that logged in
    /// successfully get one, so attackers cannot grow it without credentials.
    protected: HashMap<IpAddr, Protection>,
    /// Ban start times per target within `history` (pruned lazily). Attacker-keyed: SipHash.
    history: HashMap<IpNet, Vec<Time>>,
    /// Active bans by target. Attacker-keyed: SipHash.
    bans: HashMap<IpNet, ActiveBan>,
    /// Expiry deadlines, earliest first, with lazy deletion: an entry whose ban was lifted or
    /// replaced is skipped when it comes up.
    expiries: BinaryHeap<Reverse<(Time, IpNet)>>,
    /// Prefix lengths with active bans, for the coverage lookup.
    lengths: PrefixLengths,
    /// Banned IPv6 host addresses per aggregation network, for the aggregation rule.
    v6_members: HashMap<Ipv6Net, Vec<Ipv6Addr>>,
    /// Decisions not yet polled.
    decisions: VecDeque<Decision>,
    stats: JailStats,
    /// Engine time of the next sweep of stale state.
    next_sweep: Option<Time>,
    /// Tracked-map size that triggers a sweep (twice the size after the last one).
    sweep_at_len: usize,
    /// Addresses whose window changed since the last `poll_window_changes`, when the
    /// driver asked for them (`None`: not recorded); an address is listed once while its
    /// state carries `changed` (a removed state's address may be listed twice: the poll
    /// dedups). Bounded by the addresses seen between two polls.
    changed: Option<Vec<IpAddr>>,
}

/// Everything one engine counts about one address, in one slot of [`AddrTable`] (88
/// bytes; 104 with its key).
#[derive(Clone, Debug, Default)]
struct AddrState {
    window: Window,
    slow: SlowSignals,
    /// Listed in `changed` since the last poll.
    changed: bool,
}

/// Lists `addr` in `changed` (when changes are tracked) unless its state already is.
fn mark_changed(changed: &mut Option<Vec<IpAddr>>, state: Option<&mut AddrState>, addr: IpAddr) {
    let Some(list) = changed else {
        return;
    };
    match state {
        Some(s) if s.changed => {}
        Some(s) => {
            s.changed = true;
            list.push(addr);
        }
        None => list.push(addr),
    }
}

/// The smallest map size that triggers a size-based sweep.
const MIN_SWEEP_LEN: usize = 4096;

impl JailEngine {
    /// An engine for one jail, starting from what the store restored (use
    /// `Restored::default()` for a fresh start).
    pub fn new(config: JailConfig, restored: Restored) -> JailEngine {
        let mut engine = JailEngine {
            name: config.name.clone().into_boxed_str(),
            config,
            clock: None,
            addrs: AddrTable::default(),
            live_windows: 0,
            user_key: RandomState::new(),
            protected: HashMap::new(),
            history: HashMap::new(),
            bans: HashMap::new(),
            expiries: BinaryHeap::new(),
            lengths: PrefixLengths {
                v4: [0; 33],
                v6: [0; 129],
            },
            v6_members: HashMap::new(),
            decisions: VecDeque::new(),
            stats: JailStats::default(),
            next_sweep: None,
            sweep_at_len: MIN_SWEEP_LEN,
            changed: None,
        };
        // Sized once: growing 100k-entry maps by doubling rehashes each several times.
        engine
            .history
            .reserve(restored.history.len().max(restored.bans.len()));
        engine.bans.reserve(restored.bans.len());
        engine.expiries.reserve(restored.bans.len());
        for (target, since) in restored.history {
            engine
                .history
                .entry(normalize_net(target))
                .or_default()
                .push(since);
        }
        for ban in restored.bans {
            let target = normalize_net(ban.target);
            engine.history.entry(target).or_default().push(ban.since);
            if engine.remove_ban(target).is_some() {
                // A duplicate target in the store: the later row wins.
            }
            engine.insert_ban(
                target,
                ActiveBan {
                    since: ban.since,
                    until: ban.until,
                    ban_no: ban.ban_no,
                    reason: ban.reason,
                    failures: 0,
                },
            );
        }
        for starts in engine.history.values_mut() {
            starts.sort_unstable();
            starts.dedup();
        }
        let long_on = engine.config.long_window.is_some();
        for state in restored.windows {
            let addr = normalize_addr(state.addr);
            if engine.bans.contains_key(&IpNet::from(addr)) {
                continue;
            }
            let has_long = long_on && !state.slow.is_empty();
            if state.entries.is_empty() && !has_long {
                continue;
            }
            let a = engine.addrs.get_or_insert_with(&addr, AddrState::default);
            let was_empty = a.window.is_empty();
            for e in state.entries {
                a.window.insert(e.time, e.weight.0, e.attempts);
            }
            if was_empty && !a.window.is_empty() {
                engine.live_windows += 1;
            }
            if has_long {
                // Bucket starts as stored: a driver that moved them between clocks moved
                // each by the same offset, so a failure still counts for slow_findtime
                // plus at most one bucket.
                for b in state.slow {
                    a.slow.long.insert_at(b.time, b.weight.0);
                }
            }
        }
        engine
    }

    /// Record which windows change, for [`poll_window_changes`](Self::poll_window_changes)
    /// (the daemon persists them; `scan` does not ask, and pays nothing).
    pub fn track_window_changes(&mut self) {
        if self.changed.is_none() {
            self.changed = Some(Vec::new());
        }
    }

    /// Applies a changed config (`reload`) without losing state: windows, bans, history and
    /// protection are kept; the new rules apply to decisions from now on, and active bans
    /// keep the end they were given. Bans of addresses the new allowlist covers stay until
    /// an administrator lifts them (the engine does not unban on its own).
    pub fn reconfigure(&mut self, config: JailConfig) {
        let reindex = config.v6_prefix != self.config.v6_prefix;
        self.name = config.name.clone().into_boxed_str();
        self.config = config;
        if reindex {
            self.v6_members.clear();
            let mut hosts: Vec<Ipv6Addr> = self
                .bans
                .keys()
                .filter_map(|t| match t {
                    IpNet::V6(n) if is_host(t) => Some(n.addr()),
                    _ => None,
                })
                .collect();
            // Ascending, so that a later aggregation lists members deterministically.
            hosts.sort_unstable();
            for host in hosts {
                if let Some(net) = self.v6_net(host) {
                    self.v6_members.entry(net).or_default().push(host);
                }
            }
        }
        // Windows are pruned against the new findtime at the next sweep; do it soon.
        self.next_sweep = self.clock;
        // Their stored expiry depends on findtime: report them all again.
        if let Some(changed) = &mut self.changed {
            for (addr, s) in self.addrs.iter_mut() {
                if !s.changed {
                    s.changed = true;
                    changed.push(addr);
                }
            }
        }
    }

    // ---- getters ----

    /// The jail's configuration.
    pub fn config(&self) -> &JailConfig {
        &self.config
    }

    /// The engine clock: the largest `now` passed in so far, `None` before the first call.
    pub fn now(&self) -> Option<Time> {
        self.clock
    }

    /// The active bans, in no particular order.
    pub fn active_bans(&self) -> impl Iterator<Item = Ban> + '_ {
        self.bans.iter().map(|(target, b)| self.to_ban(*target, b))
    }

    /// `(since, target)` of every active ban, in no order, without building a [`Ban`]: for
    /// paging through a million of them (see [`active_ban`](Self::active_ban)).
    pub fn ban_keys(&self) -> impl Iterator<Item = (Time, IpNet)> + '_ {
        self.bans.iter().map(|(target, b)| (b.since, *target))
    }

    /// `(target, until)` of every active ban (`None`: permanent), in no order, without
    /// building a [`Ban`] (the firewall's view: a restart hands 100k of these over).
    pub fn ban_ends(&self) -> impl Iterator<Item = (IpNet, Option<Time>)> + '_ {
        self.bans.iter().map(|(target, b)| (*target, b.until))
    }

    /// How many bans are active.
    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// The active ban of exactly `target`, if any.
    pub fn active_ban(&self, target: IpNet) -> Option<Ban> {
        let target = normalize_net(target);
        self.bans.get(&target).map(|b| self.to_ban(target, b))
    }

    /// The ban that covers `addr` (its own or a network's, the narrowest one), if any.
    pub fn banned_by(&self, addr: IpAddr) -> Option<IpNet> {
        covering_ban(
            &self.bans,
            &self.lengths,
            normalize_addr(addr),
            Lengths::All,
        )
    }

    /// How many addresses have failures in their window (memory use is proportional).
    pub fn tracked_addresses(&self) -> usize {
        self.live_windows
    }

    /// How many windows changed since the last
    /// [`poll_window_changes`](Self::poll_window_changes) (at most: an address can be
    /// counted twice); 0 when changes are not tracked. A driver writes them early when this
    /// grows large, so what one poll hands out stays small.
    pub fn window_changes_pending(&self) -> usize {
        self.changed.as_ref().map_or(0, Vec::len)
    }

    /// Every address with weighted failures within `[clock - findtime, clock]` now, with
    /// that weight (what [`score`](Self::score) gives), in no particular order. Lazy and
    /// allocation-free: a caller that shows the heaviest few (`portcullis top`) keeps a
    /// bounded selection instead of copying the map. Addresses whose window holds only
    /// forgiven (zero-weight) failures are left out.
    pub fn failing(&self) -> impl Iterator<Item = (IpAddr, Weight)> + '_ {
        let cutoff = self.window_cutoff();
        self.addrs.iter().filter_map(move |(addr, s)| {
            let sum = s.window.sum_since(cutoff);
            (sum > 0).then(|| (addr, Weight(u32::try_from(sum).unwrap_or(u32::MAX))))
        })
    }

    /// The weighted failures of `addr` within `[clock - findtime, clock]`.
    pub fn score(&self, addr: IpAddr) -> Weight {
        let cutoff = self.window_cutoff();
        let sum = self
            .addrs
            .get(&normalize_addr(addr))
            .map_or(0, |s| s.window.sum_since(cutoff));
        Weight(u32::try_from(sum).unwrap_or(u32::MAX))
    }

    /// The weighted failures of `addr` in the long window (slow brute force), at bucket
    /// granularity; zero when the jail has none.
    pub fn long_score(&self, addr: IpAddr) -> Weight {
        let Some((_, findtime)) = self.config.long_window else {
            return Weight::ZERO;
        };
        let cutoff = self.clock().saturating_sub(findtime);
        let sum = self
            .addrs
            .get(&normalize_addr(addr))
            .map_or(0, |s| s.slow.long.sum_since(cutoff, bucket_width(findtime)));
        Weight(u32::try_from(sum).unwrap_or(u32::MAX))
    }

    /// How many distinct user names `addr` failed with that the engine still holds (those
    /// within `findtime` as of the last failure or sweep, at most `max_users`).
    pub fn distinct_users(&self, addr: IpAddr) -> usize {
        self.addrs
            .get(&normalize_addr(addr))
            .map_or(0, |s| s.slow.users.len())
    }

    /// Bans of `target` within `history` before now: the next ban of it is number
    /// `prior_bans + 1`.
    pub fn prior_bans(&self, target: IpNet) -> u32 {
        self.prior_bans_at(normalize_net(target))
    }

    /// When the protection of `addr` (from a recent clean login) ends, if it is protected.
    pub fn protected_until(&self, addr: IpAddr) -> Option<Time> {
        self.protection(normalize_addr(addr)).map(|p| p.until)
    }

    /// The weight of failures `addr`'s protection still forgives before it bans anyway
    /// (`None` when the address is not protected).
    pub fn protection_left(&self, addr: IpAddr) -> Option<Weight> {
        let p = self.protection(normalize_addr(addr))?;
        let left = self.protection_budget().saturating_sub(p.spent);
        Some(Weight(u32::try_from(left).unwrap_or(u32::MAX)))
    }

    /// Counters since the engine was created.
    pub fn stats(&self) -> JailStats {
        self.stats
    }

    /// The breach rule, the one definition every command uses: a success of `addr` at
    /// `time` (held at the engine clock, as events are) counts the whole failed attempts
    /// before it within `findtime`, plus those a ban of the address was decided on (a
    /// parallel connection that got in right after the ban), and is a breach when they reach
    /// `breach_after`. [`handle_event`](Self::handle_event) raises [`Alert::Breach`] exactly
    /// for the successes this calls a breach, judged after the clock moved to `now`.
    pub fn judge_success(&self, addr: IpAddr, time: Time) -> SuccessVerdict {
        let addr = normalize_addr(addr);
        let time = self.clock.map_or(time, |c| time.min(c));
        let banned = self.bans.get(&IpNet::from(addr)).map_or(0, |b| b.failures);
        let window = self.addrs.get(&addr).map_or(0, |s| {
            s.window
                .attempts_between(time.saturating_sub(self.config.findtime), time)
        });
        let failures = banned.saturating_add(window);
        SuccessVerdict {
            failures,
            breach: self.config.breach_after.is_some_and(|k| failures >= k),
        }
    }

    // ---- inputs ----

    /// Takes one event from a filter. Only the event's own address can be banned (and,
    /// through IPv6 aggregation, its network).
    pub fn handle_event(&mut self, now: Time, event: &Event) {
        let clock = self.advance(now);
        self.stats.events += 1;
        let addr = normalize_addr(event.addr);
        let time = event.time.min(clock);
        match event.kind {
            EventKind::Info => {}
            EventKind::Success => self.on_success(addr, time, event),
            EventKind::Attempt | EventKind::Probe => {
                let attempts = if event.kind == EventKind::Attempt {
                    event.count
                } else {
                    0
                };
                let user = event.user.as_deref();
                self.on_failure(addr, time, event.total_weight().0, attempts, user);
            }
        }
        if self.addrs.len() >= self.sweep_at_len {
            self.sweep();
        }
        // A ban of zero length (bantime 0) ends where it starts.
        self.expire_due(clock);
    }

    /// Expires the bans due at `now` and drops stale state. A call before the deadline
    /// `poll_timeout` gave is a no-op apart from advancing the clock.
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
    }

    /// Carries out an administrator's command; refused commands change nothing.
    pub fn handle_command(&mut self, now: Time, cmd: Command) -> Result<(), CommandError> {
        let clock = self.advance(now);
        let result = self.apply(cmd);
        // A ban of zero length ends where it starts.
        self.expire_due(clock);
        result
    }

    /// Ban `addr` as a participant of a site-wide campaign (see `crate::campaign`) for
    /// `duration`, with `reason`. Never an allowlisted address, never one a recent clean
    /// login protects, and never shorter than a ban it already has.
    pub fn ban_participant(
        &mut self,
        now: Time,
        addr: IpAddr,
        duration: Duration,
        reason: BanReason,
    ) -> ParticipantBan {
        let clock = self.advance(now);
        let addr = normalize_addr(addr);
        let outcome = if self.is_allowlisted(addr) {
            self.stats.allowlisted += 1;
            ParticipantBan::Allowlisted
        } else if self.protection(addr).is_some() {
            ParticipantBan::Protected
        } else if self.banned_by(addr).is_some() {
            ParticipantBan::AlreadyBanned
        } else {
            self.ban(IpNet::from(addr), reason, 0, Length::Fixed(duration));
            ParticipantBan::Banned
        };
        self.expire_due(clock);
        outcome
    }

    fn apply(&mut self, cmd: Command) -> Result<(), CommandError> {
        match cmd {
            Command::Ban {
                target,
                duration,
                permanent,
                force,
            } => {
                let target = normalize_net(target);
                if !force && let Some(allowed) = self.allowlist_overlap(target) {
                    return Err(CommandError::Allowlisted { target, allowed });
                }
                let length = match (permanent, duration) {
                    (true, _) => Length::Permanent,
                    (false, Some(d)) if d > MAX_BAN_DURATION => Length::Permanent,
                    (false, Some(d)) => Length::Fixed(d),
                    (false, None) => Length::Escalate,
                };
                self.ban(target, BanReason::Manual, 0, length);
                Ok(())
            }
            Command::Unban { target } => {
                let target = normalize_net(target);
                if self.remove_ban(target).is_none() {
                    return Err(CommandError::NotBanned { target });
                }
                self.emit_unban(target, UnbanReason::Manual);
                Ok(())
            }
            Command::UnbanAll => {
                // Sorted so that the decision order does not depend on the hash key.
                let mut targets: Vec<IpNet> = self.bans.keys().copied().collect();
                targets.sort_unstable();
                for target in targets {
                    self.remove_ban(target);
                    self.emit_unban(target, UnbanReason::Manual);
                }
                Ok(())
            }
            Command::Flush => {
                let old = std::mem::take(&mut self.addrs);
                self.live_windows = 0;
                if let Some(changed) = &mut self.changed {
                    changed.extend(old.iter().filter(|(_, s)| !s.changed).map(|(a, _)| a));
                }
                Ok(())
            }
        }
    }

    /// Ban the network `target` for `length` because `members` of its addresses are banned
    /// (the daemon's network aggregation, which counts across jails and chooses `target`):
    /// [`BanReason::Network`]; never over this jail's allowlist (refused like an unforced
    /// manual ban). A ban of `target` in force is replaced.
    pub fn handle_network_ban(
        &mut self,
        now: Time,
        target: IpNet,
        members: u32,
        length: Duration,
    ) -> Result<(), CommandError> {
        let clock = self.advance(now);
        let target = normalize_net(target);
        if let Some(allowed) = self.allowlist_overlap(target) {
            return Err(CommandError::Allowlisted { target, allowed });
        }
        self.ban(
            target,
            BanReason::Network { members },
            0,
            Length::Fixed(length),
        );
        self.expire_due(clock);
        Ok(())
    }

    /// The addresses under login protection now (a recent clean login), in no order.
    pub fn protected_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.protected
            .iter()
            .filter(|(_, p)| self.clock.is_none_or(|c| p.until > c))
            .map(|(a, _)| *a)
    }

    // ---- outputs ----

    /// The next decision, oldest first; `None` when all were taken.
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    /// The windows that changed since the last call (see
    /// [`track_window_changes`](Self::track_window_changes)), ascending by address, each as
    /// it is now (pruned to `findtime`; empty when it is gone). Empty when changes are not
    /// tracked.
    pub fn poll_window_changes(&mut self) -> Vec<WindowState> {
        let Some(changed) = self.changed.as_mut() else {
            return Vec::new();
        };
        if changed.is_empty() {
            return Vec::new();
        }
        let mut addrs = std::mem::take(changed);
        addrs.sort_unstable();
        addrs.dedup();
        let cutoff = self.window_cutoff();
        let findtime = self.config.findtime;
        let long = self.long_cutoff();
        addrs
            .into_iter()
            .map(|addr| {
                let mut slow: Vec<WindowEntry> = Vec::new();
                let mut entries: Vec<WindowEntry> = Vec::new();
                if let Some(s) = self.addrs.get_mut(&addr) {
                    s.changed = false;
                    if let Some((long_cutoff, width)) = long {
                        s.slow.long.prune(long_cutoff, width);
                        slow.extend(s.slow.long.buckets().iter().map(|&(time, weight)| {
                            WindowEntry {
                                time,
                                weight: Weight(weight),
                                attempts: 0,
                            }
                        }));
                    }
                    let was_empty = s.window.is_empty();
                    s.window.prune(cutoff);
                    if !was_empty && s.window.is_empty() {
                        self.live_windows -= 1;
                    }
                    entries.extend(s.window.entries().iter().map(|e| WindowEntry {
                        time: e.time,
                        weight: Weight(e.weight),
                        attempts: e.attempts,
                    }));
                }
                let until = entries
                    .last()
                    .map_or(Time::EPOCH, |e| e.time.saturating_add(findtime));
                let slow_until = match (slow.last(), self.config.long_window) {
                    (Some(b), Some((_, long_findtime))) => b
                        .time
                        .saturating_add(long_findtime)
                        .saturating_add(Duration::from_micros(
                            u64::try_from(bucket_width(long_findtime)).unwrap_or(0),
                        )),
                    _ => Time::EPOCH,
                };
                WindowState {
                    addr,
                    entries,
                    slow,
                    until: until.max(slow_until),
                }
            })
            .collect()
    }

    /// When to call `handle_timeout` next: the earliest ban expiry, or the next sweep of
    /// stale windows while any are tracked. `None`: nothing will happen without input.
    /// May be earlier than needed (a lifted ban's deadline is dropped lazily).
    pub fn poll_timeout(&self) -> Option<Time> {
        let expiry = self.expiries.peek().map(|Reverse((t, _))| *t);
        let sweep = self
            .next_sweep
            .filter(|_| !self.addrs.is_empty() || !self.protected.is_empty());
        match (expiry, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- internals ----

    /// Moves the engine clock to `max(clock, now)`, expires what is due and sweeps when the
    /// sweep time has come.
    fn advance(&mut self, now: Time) -> Time {
        let clock = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(clock);
        self.expire_due(clock);
        match self.next_sweep {
            None => self.next_sweep = Some(clock.saturating_add(self.sweep_interval())),
            Some(at) if clock >= at => self.sweep(),
            Some(_) => {}
        }
        clock
    }

    fn sweep_interval(&self) -> Duration {
        self.config.findtime.max(Duration::from_secs(1))
    }

    fn clock(&self) -> Time {
        self.clock.unwrap_or(Time::from_micros(i64::MIN))
    }

    fn window_cutoff(&self) -> Time {
        self.clock().saturating_sub(self.config.findtime)
    }

    /// The long window's cutoff and bucket width, when the jail has one.
    fn long_cutoff(&self) -> Option<(Time, i64)> {
        let (_, findtime) = self.config.long_window?;
        Some((
            self.clock().saturating_sub(findtime),
            bucket_width(findtime),
        ))
    }

    fn expire_due(&mut self, clock: Time) {
        while let Some(&Reverse((until, target))) = self.expiries.peek() {
            if until > clock {
                break;
            }
            self.expiries.pop();
            if self
                .bans
                .get(&target)
                .is_some_and(|b| b.until == Some(until))
            {
                self.remove_ban(target);
                self.emit_unban(target, UnbanReason::Expired);
            }
        }
    }

    /// Drops empty windows, ended protections, decayed history and dead heap entries.
    fn sweep(&mut self) {
        let clock = self.clock();
        let cutoff = self.window_cutoff();
        let long = self.long_cutoff();
        let users_on = self.config.max_users.is_some();
        let mut live = 0;
        // A state swept while listed in `changed` is reported empty by the next poll.
        self.addrs.retain(|_, a| {
            a.window.prune(cutoff);
            let s = &mut a.slow;
            match long {
                Some((long_cutoff, width)) => s.long.prune(long_cutoff, width),
                None => s.long = Default::default(),
            }
            if users_on {
                s.users.prune(cutoff);
            } else {
                s.users = Default::default();
            }
            live += usize::from(!a.window.is_empty());
            !a.window.is_empty() || !s.is_empty()
        });
        self.live_windows = live;
        self.addrs.shrink_if_sparse();
        self.protected.retain(|_, p| p.until > clock);
        shrink_if_sparse(&mut self.protected);
        let history_cutoff = clock.saturating_sub(self.config.history);
        self.history.retain(|_, starts| {
            starts.retain(|&s| s >= history_cutoff);
            !starts.is_empty()
        });
        shrink_if_sparse(&mut self.history);
        let timed = self.bans.values().filter(|b| b.until.is_some()).count();
        if self.expiries.len() > 2 * timed + 64 {
            let bans = &self.bans;
            self.expiries.retain(|Reverse((t, target))| {
                bans.get(target).is_some_and(|b| b.until == Some(*t))
            });
            self.expiries.shrink_to_fit();
        }
        self.next_sweep = Some(clock.saturating_add(self.sweep_interval()));
        self.sweep_at_len = (2 * self.addrs.len()).max(MIN_SWEEP_LEN);
    }

    fn on_failure(
        &mut self,
        addr: IpAddr,
        time: Time,
        weight: u32,
        attempts: u32,
        user: Option<&str>,
    ) {
        let cutoff = self.window_cutoff();
        let counts = time >= cutoff && (weight > 0 || attempts > 0);
        // Forgiven by a login protection: charged to its budget, weight zero in the window.
        let mut weight = weight;
        let mut forgiven = false;
        let mut exhausted: Option<u64> = None;
        if counts
            && weight > 0
            && !self.protected.is_empty()
            && !self.is_allowlisted(addr)
            && self.protection(addr).is_some_and(|p| p.covers(user))
            && covering_ban(&self.bans, &self.lengths, addr, Lengths::All).is_none()
        {
            let budget = self.protection_budget();
            let period = self.config.protect_after_success.unwrap_or(Duration::MAX);
            let clock = self.clock();
            if let Some(p) = self.protected.get_mut(&addr) {
                if clock >= p.period_start.saturating_add(period) {
                    // A new period: the budget is whole again (a user who mistypes now and
                    // then over weeks of daily logins is never banned for it).
                    p.period_start = clock;
                    p.spent = 0;
                }
                p.spent = p.spent.saturating_add(u64::from(weight));
                if p.spent >= budget {
                    exhausted = Some(p.spent);
                } else {
                    self.stats.protected += 1;
                    weight = 0;
                    forgiven = true;
                }
            }
        }
        let counts = counts && (weight > 0 || attempts > 0);
        // One table probe on the hot path: an address with state is never banned by
        // itself (a ban removes the state and banned addresses get none), so only network
        // bans need checking then; only an address without state needs the host lookup.
        let found = self.addrs.find(&addr);
        let lengths = if found.is_some() {
            debug_assert!(!self.bans.contains_key(&IpNet::from(addr)), "{addr}");
            Lengths::Networks
        } else {
            Lengths::All
        };
        if covering_ban(&self.bans, &self.lengths, addr, lengths).is_some() {
            self.stats.while_banned += 1;
            return;
        }
        let (score, failures) = match found {
            Some(i) => {
                let a = self.addrs.at_mut(i);
                let was_empty = a.window.is_empty();
                if counts {
                    a.window.insert(time, weight, attempts);
                    mark_changed(&mut self.changed, Some(&mut *a), addr);
                }
                a.window.prune(cutoff);
                match (was_empty, a.window.is_empty()) {
                    (true, false) => self.live_windows += 1,
                    (false, true) => self.live_windows -= 1,
                    _ => {}
                }
                (a.window.sum(), a.window.attempts_between(cutoff, Time::MAX))
            }
            None if counts => {
                let mut a = AddrState::default();
                a.window.insert(time, weight, attempts);
                mark_changed(&mut self.changed, Some(&mut a), addr);
                let sums = (a.window.sum(), a.window.attempts_between(cutoff, Time::MAX));
                self.addrs.push_new(&addr, a);
                self.live_windows += 1;
                sums
            }
            None => (0, 0),
        };
        // The slow signals, after the ban checks above (a banned address gets none). A
        // forgiven failure adds nothing to them, as to the short window.
        let (long_score, users) = self.slow_signals(addr, time, weight, user, forgiven);
        if let Some(spent) = exhausted {
            self.stats.protection_exhausted += 1;
            let score = Weight(u32::try_from(spent).unwrap_or(u32::MAX));
            self.ban(
                IpNet::from(addr),
                BanReason::Threshold { score },
                failures,
                Length::Escalate,
            );
            return;
        }
        let as_weight = |w: u64| Weight(u32::try_from(w).unwrap_or(u32::MAX));
        let reason = if score >= u64::from(self.config.maxretry.0) {
            BanReason::Threshold {
                score: as_weight(score),
            }
        } else if let Some(((limit, _), long)) = self.config.long_window.zip(long_score)
            && long >= u64::from(limit.0)
        {
            BanReason::SlowThreshold {
                score: as_weight(long),
            }
        } else if let (Some(limit), Some(users)) = (self.config.max_users, users)
            && users >= limit.max(1)
        {
            BanReason::UserNames { users }
        } else {
            return;
        };
        if self.is_allowlisted(addr) {
            self.stats.allowlisted += 1;
            return;
        }
        self.ban(IpNet::from(addr), reason, failures, Length::Escalate);
    }

    /// Counts a failure of `addr` into its slow signals: its weight into the long window
    /// (if its time is within `slow_findtime`), its user name (hashed) into the distinct
    /// names (if within `findtime`, named, and not `forgiven`). Returns the long window's
    /// sum and the number of distinct names, each `None` when the jail does not have it.
    fn slow_signals(
        &mut self,
        addr: IpAddr,
        time: Time,
        weight: u32,
        user: Option<&str>,
        forgiven: bool,
    ) -> (Option<u64>, Option<u32>) {
        let long = self.long_cutoff();
        let max_users = self.config.max_users;
        if long.is_none() && max_users.is_none() {
            return (None, None);
        }
        let cutoff = self.window_cutoff();
        let add_long = long.filter(|&(c, _)| weight > 0 && time >= c);
        let add_user = match (max_users, user) {
            (Some(_), Some(u)) if !forgiven && time >= cutoff => Some(self.user_key.hash_one(u)),
            _ => None,
        };
        if add_long.is_none() && add_user.is_none() {
            // Nothing new: report what is there (pruned), without creating state.
            return match self.addrs.get_mut(&addr) {
                Some(a) => {
                    let s = &mut a.slow;
                    if let Some((c, width)) = long {
                        s.long.prune(c, width);
                    }
                    s.users.prune(cutoff);
                    (
                        long.map(|_| s.long.sum()),
                        max_users.map(|_| u32::try_from(s.users.len()).unwrap_or(u32::MAX)),
                    )
                }
                None => (long.map(|_| 0), max_users.map(|_| 0)),
            };
        }
        let a = self.addrs.get_or_insert_with(&addr, AddrState::default);
        let s = &mut a.slow;
        if let Some((c, width)) = long {
            if add_long.is_some() {
                s.long.insert(time, weight, width);
            }
            s.long.prune(c, width);
        }
        s.users.prune(cutoff);
        if let (Some(hash), Some(cap)) = (add_user, max_users) {
            s.users.insert(hash, time, cap as usize);
        }
        let users = u32::try_from(s.users.len()).unwrap_or(u32::MAX);
        let long_sum = long.map(|_| s.long.sum());
        if add_long.is_some() {
            mark_changed(&mut self.changed, Some(a), addr);
        }
        (long_sum, max_users.map(|_| users))
    }

    fn on_success(&mut self, addr: IpAddr, time: Time, event: &Event) {
        let covering = covering_ban(&self.bans, &self.lengths, addr, Lengths::All);
        let verdict = self.judge_success(addr, time);
        if verdict.breach {
            self.emit_alert(Alert::Breach {
                addr,
                user: event.user.clone(),
                failures: verdict.failures,
                time: event.time,
            });
        } else if let (Some(protect), Some(user)) =
            (self.config.protect_after_success, event.user.as_deref())
        {
            let until = time.saturating_add(protect);
            let clock = self.clock();
            if covering.is_none() && until > clock {
                let p = self.protected.entry(addr).or_insert_with(|| Protection {
                    until,
                    users: Vec::new(),
                    spent: 0,
                    period_start: clock,
                });
                if p.until <= clock {
                    // Lapsed (not swept yet): this login starts a new protection.
                    p.users.clear();
                    p.spent = 0;
                    p.period_start = clock;
                }
                p.until = p.until.max(until);
                if let Some(i) = p.users.iter().position(|u| **u == *user) {
                    let u = p.users.remove(i);
                    p.users.push(u);
                } else {
                    if p.users.len() >= MAX_PROTECTED_USERS {
                        p.users.remove(0);
                    }
                    p.users.push(user.into());
                }
            }
        }
        if self.config.alert_root_login && event.user.as_deref() == Some("root") {
            self.emit_alert(Alert::RootLogin {
                addr,
                time: event.time,
            });
        }
    }

    /// Bans `target` now: escalation, history, decision, IPv6 aggregation.
    fn ban(&mut self, target: IpNet, reason: BanReason, failures: u32, length: Length) {
        let since = self.clock();
        let n = self.prior_bans_at(target).saturating_add(1);
        let until = match length {
            Length::Escalate => ban_length(&self.config, n).map(|d| since.saturating_add(d)),
            Length::Fixed(d) => Some(since.saturating_add(d)),
            Length::Permanent => None,
        };
        self.remove_ban(target);
        if is_host(&target) {
            // "After a ban, the window of that address is cleared", and a ban ends its
            // protection.
            if let Some(mut a) = self.addrs.remove(&target.addr()) {
                if !a.window.is_empty() {
                    self.live_windows -= 1;
                }
                mark_changed(&mut self.changed, Some(&mut a), target.addr());
            }
            self.protected.remove(&target.addr());
        }
        self.history.entry(target).or_default().push(since);
        let ban = ActiveBan {
            since,
            until,
            ban_no: n,
            reason,
            failures,
        };
        self.decisions
            .push_back(Decision::Ban(self.to_ban(target, &ban)));
        self.stats.bans += 1;
        if until.is_none() {
            self.stats.permanent_bans += 1;
        }
        self.insert_ban(target, ban);
        if let (IpNet::V6(net), true) = (target, is_host(&target)) {
            self.maybe_aggregate(net.addr());
        }
    }

    /// Bans the aggregation network of `addr` if enough of its addresses are banned.
    fn maybe_aggregate(&mut self, addr: Ipv6Addr) {
        let (Some(threshold), Some(net)) = (self.config.v6_net_threshold, self.v6_net(addr)) else {
            return;
        };
        let members = self.v6_members.get(&net).map_or(0, Vec::len);
        let target = IpNet::V6(net);
        if members < threshold.max(1) as usize
            || self.bans.contains_key(&target)
            || self.allowlist_overlap(target).is_some()
            || self
                .protected
                .iter()
                .any(|(a, p)| p.until > self.clock() && target.contains(a))
        {
            return;
        }
        let members_now = u32::try_from(members).unwrap_or(u32::MAX);
        self.ban(
            target,
            BanReason::Aggregate {
                members: members_now,
            },
            0,
            Length::Escalate,
        );
        let net_until = self.bans.get(&target).and_then(|b| b.until);
        let list = self.v6_members.get(&net).cloned().unwrap_or_default();
        for member in list {
            let member = IpNet::V6(Ipv6Net::from(member));
            // A member ban that outlasts the network ban stays, so no ban ever gets shorter.
            let keep = match (self.bans.get(&member).map(|b| b.until), net_until) {
                (None, _) => true, // not banned any more
                (Some(None), Some(_)) => true,
                (Some(Some(m)), Some(n)) => m > n,
                (Some(_), None) => false,
            };
            if !keep {
                self.remove_ban(member);
                self.emit_unban(member, UnbanReason::Superseded);
            }
        }
    }

    /// The aggregation network of `addr`, if aggregation is meaningful.
    fn v6_net(&self, addr: Ipv6Addr) -> Option<Ipv6Net> {
        if self.config.v6_prefix >= 128 {
            return None;
        }
        Ipv6Net::new(addr, self.config.v6_prefix)
            .ok()
            .map(|n| n.trunc())
    }

    fn insert_ban(&mut self, target: IpNet, ban: ActiveBan) {
        if let Some(until) = ban.until {
            self.expiries.push(Reverse((until, target)));
        }
        self.lengths.add(&target);
        if let (IpNet::V6(host), true) = (target, is_host(&target))
            && let Some(net) = self.v6_net(host.addr())
        {
            self.v6_members.entry(net).or_default().push(host.addr());
        }
        self.bans.insert(target, ban);
    }

    /// Forgets the ban of exactly `target` (no decision); `None` if there was none.
    fn remove_ban(&mut self, target: IpNet) -> Option<ActiveBan> {
        let ban = self.bans.remove(&target)?;
        self.lengths.remove(&target);
        if let (IpNet::V6(host), true) = (target, is_host(&target))
            && let Some(net) = self.v6_net(host.addr())
            && let Some(list) = self.v6_members.get_mut(&net)
        {
            list.retain(|a| *a != host.addr());
            if list.is_empty() {
                self.v6_members.remove(&net);
            }
        }
        Some(ban)
    }

    fn prior_bans_at(&self, target: IpNet) -> u32 {
        let cutoff = self.clock().saturating_sub(self.config.history);
        self.history.get(&target).map_or(0, |starts| {
            let n = starts.iter().filter(|&&s| s >= cutoff).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        })
    }

    /// The protection of `addr` (normalised) if it has not ended.
    fn protection(&self, addr: IpAddr) -> Option<&Protection> {
        let p = self.protected.get(&addr)?;
        (self.clock.is_none_or(|c| p.until > c)).then_some(p)
    }

    /// The weight one protection forgives at most: `protect_budget × maxretry`.
    fn protection_budget(&self) -> u64 {
        u64::from(self.config.maxretry.0) * u64::from(self.config.protect_budget.max(1))
    }

    fn is_allowlisted(&self, addr: IpAddr) -> bool {
        self.config.allowlist.iter().any(|net| net.contains(&addr))
    }

    /// The first allowlist entry that overlaps `target` (one contains the other).
    fn allowlist_overlap(&self, target: IpNet) -> Option<IpNet> {
        self.config
            .allowlist
            .iter()
            .find(|a| a.contains(&target) || target.contains(*a))
            .copied()
    }

    fn to_ban(&self, target: IpNet, ban: &ActiveBan) -> Ban {
        Ban {
            target,
            jail: self.name.clone(),
            since: ban.since,
            until: ban.until,
            ban_no: ban.ban_no,
            reason: ban.reason.clone(),
        }
    }

    fn emit_unban(&mut self, target: IpNet, reason: UnbanReason) {
        self.decisions.push_back(Decision::Unban {
            target,
            jail: self.name.clone(),
            reason,
        });
    }

    fn emit_alert(&mut self, alert: Alert) {
        self.stats.alerts += 1;
        self.decisions.push_back(Decision::Alert(alert));
    }

    /// Test access to an address's window.
    #[cfg(test)]
    pub(crate) fn window(&self, addr: IpAddr) -> Option<&Window> {
        self.addrs.get(&addr).map(|a| &a.window)
    }

    /// Test access to an address's slow signals.
    #[cfg(test)]
    pub(crate) fn slow_of(&self, addr: IpAddr) -> Option<&SlowSignals> {
        self.addrs
            .get(&addr)
            .map(|a| &a.slow)
            .filter(|s| !s.is_empty())
    }

    /// Test access to the addresses with slow signals.
    #[cfg(test)]
    pub(crate) fn slow_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs
            .iter()
            .filter(|(_, a)| !a.slow.is_empty())
            .map(|(addr, _)| addr)
    }
}

/// Which prefix lengths `covering_ban` looks at.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Lengths {
    All,
    /// All but /32 and /128.
    Networks,
}

/// The narrowest active ban covering `addr`: one lookup per prefix length in use.
fn covering_ban(
    bans: &HashMap<IpNet, ActiveBan>,
    lengths: &PrefixLengths,
    addr: IpAddr,
    which: Lengths,
) -> Option<IpNet> {
    if bans.is_empty() {
        return None;
    }
    let skip_host = u8::from(which == Lengths::Networks);
    match addr {
        IpAddr::V4(a) => (0..=32 - skip_host).rev().find_map(|len| {
            if lengths.v4[usize::from(len)] == 0 {
                return None;
            }
            let net = IpNet::V4(Ipv4Net::new(a, len).ok()?.trunc());
            bans.contains_key(&net).then_some(net)
        }),
        IpAddr::V6(a) => (0..=128 - skip_host).rev().find_map(|len| {
            if lengths.v6[usize::from(len)] == 0 {
                return None;
            }
            let net = IpNet::V6(Ipv6Net::new(a, len).ok()?.trunc());
            bans.contains_key(&net).then_some(net)
        }),
    }
}

/// Whether `net` is a single address (/32 or /128).
fn is_host(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

/// A target as it is banned: host bits cleared, IPv4-mapped IPv6 turned into IPv4.
pub(crate) fn normalize_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(n.trunc());
    }
    net
}

/// Gives memory back after an attack wave: a map that once held 1M addresses keeps its
/// table until told otherwise.
fn shrink_if_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 1024 {
        map.shrink_to_fit();
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn one_address_costs_one_small_slot() {
        // Issue 13: the daemon tracking 1M addresses stays within 256 MiB; this slot
        // (with its 16-byte key in the table's dense vector) is most of it.
        assert!(
            std::mem::size_of::<AddrState>() <= 88,
            "{}",
            std::mem::size_of::<AddrState>()
        );
    }
}
