//! The daemon's ban policy across all jails, as a sans-IO step.
//!
//! [`JailSet`] holds every configured jail's engine and the bans the store keeps for jails
//! that are no longer configured, and decides what the store and the kernel must hold. It
//! never reads a clock, opens a file, runs a command or awaits: `now` is an argument and
//! every output is a value, so the rules are unit-tested without root, tokio or a firewall.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_core::event::{Ban, UnbanReason};
use portcullis_core::jail::{Command, CommandError, JailConfig, JailEngine, Restored, WindowState};
use portcullis_core::{Decision, Event, EventKind, Time};
use portcullis_firewall::{Change, timeout_at};

pub mod networks;
use networks::Networks;

/// What one jail needs to join the set (at start or by a reload).
pub struct JailInit {
    /// Its policy (with the host's own addresses already in the allowlist).
    pub config: JailConfig,
    /// Its offender history from the store (ban start times within `config.history`), for
    /// escalation. Used only when the jail is new: a running jail keeps its own.
    pub history: Vec<(IpNet, Time)>,
    /// Its live windows from the store (what [`JailSet::poll_window_changes`] handed out
    /// last). Used only when the jail is new, like `history`.
    pub windows: Vec<WindowState>,
}

/// One configured jail: its engine and what `status` counts of it.
struct Jail {
    engine: JailEngine,
    /// Whole failed attempts handed to the engine since start.
    attempts: u64,
    /// Bans decided since start (restored ones are not decisions).
    total_bans: u64,
}

/// A change of one kernel set element, with the ban's end as an instant rather than a
/// timeout, so the value stays right however late it is applied (or retried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirewallChange {
    /// Ban `target` until `until` (`None`: permanently); an existing element takes the new
    /// end.
    Add {
        /// The banned address (as /32 or /128) or network.
        target: IpNet,
        /// The longest end among all bans of `target`.
        until: Option<Time>,
    },
    /// No jail bans `target` any more.
    Remove {
        /// The address or network to lift.
        target: IpNet,
    },
}

impl FirewallChange {
    /// The firewall crate's change, with the timeout counted from `now` (an end already
    /// passed gives a zero timeout, which the firewall skips).
    pub fn at(&self, now: Time) -> Change {
        match *self {
            FirewallChange::Add { target, until } => Change::Add {
                target,
                timeout: timeout_at(until, now),
            },
            FirewallChange::Remove { target } => Change::Remove { target },
        }
    }
}

/// What the kernel sets must be brought to after a burst.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FirewallWork {
    /// Nothing changed.
    #[default]
    Nothing,
    /// These element changes, as one batch (one kernel transaction).
    Apply(Vec<FirewallChange>),
    /// Make the sets hold exactly these bans (target, end; `None` = permanent) and nothing
    /// else, so elements no ban accounts for go too (after a flush of everything).
    Resync(Vec<(IpNet, Option<Time>)>),
}

/// One burst's work for the driver, in the order it must be done.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Commit {
    /// First, in ONE store transaction (with the source positions read up to this burst):
    /// the decisions, in the order they were made. A ban is durable before the kernel or a
    /// client hears of it.
    pub decisions: Vec<Decision>,
    /// Then the firewall.
    pub firewall: FirewallWork,
}

impl Commit {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.firewall == FirewallWork::Nothing
    }
}

/// The daemon's policy over all jails: decisions in, store and kernel work out.
///
/// # Call protocol (quinn-proto style)
///
/// - **Construction**: [`new`](Self::new) with the configured jails and the store's bans in
///   force. Bans of configured jails re-arm their engines; the others are *orphans*: bans of
///   jails no longer configured, kept (in force in the store and the kernel until they end)
///   and liftable by `unban`.
/// - **Getters** ([`names`](Self::names), [`engine`](Self::engine), [`in_force`](Self::in_force),
///   [`poll_timeout`](Self::poll_timeout), …) change nothing.
/// - **Inputs**: [`handle_events`](Self::handle_events) for the events a jail's filter made
///   of a line, [`handle_timeout`](Self::handle_timeout) when the deadline of `poll_timeout`
///   is reached (early, late or twice is harmless).
/// - **Commands** (the control commands are built from these, see `commands/`):
///   [`handle_command`](Self::handle_command) on one jail, [`lift_orphans`](Self::lift_orphans),
///   [`resync_firewall`](Self::resync_firewall), [`reload`](Self::reload).
/// - **Output**: after a burst of inputs and commands, call [`poll_commit`](Self::poll_commit)
///   once; write its decisions to the store in one transaction, THEN apply its firewall
///   work as one batch. Whenever that transaction also writes the source positions, it
///   must write [`poll_window_changes`](Self::poll_window_changes) too (and only then): the
///   stored windows are then exactly those of the lines before the stored positions, so a
///   restart, `kill -9` included, counts on without forgiving or double-counting a line. Then sleep until [`poll_timeout`](Self::poll_timeout), the next line
///   or the next command. Outputs are plain values with absolute ban ends: a driver that
///   fails to write a commit can keep it and retry it before the next one (a later
///   commit's firewall change of a target supersedes an earlier one).
///
/// `now` must not go backward by much: each engine holds its clock at the largest `now` it
/// saw, and the orphans expire at `now`.
///
/// # Rules
///
/// - **Longest ban wins.** Several jails (and orphans) may ban the same target; the kernel
///   element carries the longest of their ends, permanent if any is permanent. A burst's
///   firewall work names each target its decisions touched once, with the target's state
///   after the whole burst: `Add` with the longest end while any jail still bans it,
///   `Remove` only when none does. So an unban (or expiry) in one jail never frees a target
///   another jail still bans, and a short ban never shortens a longer one in the kernel.
/// - Targets are exact: a network ban does not hold its member addresses' elements.
/// - Ban ends at or before `now` count as over (the engine that holds them expires them at
///   its next call).
/// - Networks (`[networks]`, off by default): enough banned addresses of one network (or
///   autonomous system) ban the network, widened by policy, carved around the allowlist;
///   the rules are in [`networks`].
/// - Reload keeps every ban: a jail that stays keeps its engine (reconfigured in place); a
///   jail that goes leaves its bans as orphans; a jail that comes back (or an orphan's jail
///   newly configured) restores them from the orphans.
pub struct JailSet {
    /// The configured jails, in configuration order: indices match the driver's line
    /// matchers and its sources' jail lists.
    jails: Vec<Jail>,
    /// Bans the store holds for jails no longer configured, by target (ended ones are
    /// ignored, and dropped at the next reload). Keys are
    /// attacker-chosen (any address that got banned): std `HashMap` with its per-process
    /// random SipHash key, so colliding keys cannot be chosen.
    orphans: HashMap<IpNet, Vec<Ban>>,
    /// Decisions drained from the engines (and orphan unbans) since the last `poll_commit`.
    decisions: Vec<Decision>,
    /// Targets those decisions touched, first touch first; `touched_set` dedups them.
    touched: Vec<IpNet>,
    touched_set: HashSet<IpNet>,
    /// Set by [`resync_firewall`](Self::resync_firewall): the next commit rewrites the sets.
    resync: bool,
    /// Network aggregation (`networks.rs`); off until [`set_networks`](Self::set_networks).
    networks: Networks,
    /// Host targets whose ban state changed since the last aggregation, with the jail.
    pending_members: Vec<(IpAddr, usize)>,
    /// Site-wide detection (`site.rs`), once [`configure_site`](Self::configure_site) ran.
    site: Option<site::Site>,
}

impl JailSet {
    /// The jails of `jails`, restored from `stored` (the store's bans in force at `now`).
    pub fn new(jails: Vec<JailInit>, stored: Vec<Ban>, now: Time) -> JailSet {
        let mut set = JailSet {
            jails: Vec::new(),
            orphans: HashMap::new(),
            decisions: Vec::new(),
            touched: Vec::new(),
            touched_set: HashSet::new(),
            resync: false,
            networks: Networks::off(),
            pending_members: Vec::new(),
            site: None,
        };
        let mut by_jail: HashMap<Box<str>, Vec<Ban>> = HashMap::new();
        for ban in stored {
            by_jail.entry(ban.jail.clone()).or_default().push(ban);
        }
        set.take_jails(jails, by_jail, now);
        set
    }

    // ---- getters ----

    /// How many jails are configured.
    pub fn len(&self) -> usize {
        self.jails.len()
    }

    /// Whether no jail is configured.
    pub fn is_empty(&self) -> bool {
        self.jails.is_empty()
    }

    /// The configured jails' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.jails.iter().map(|j| j.engine.config().name.as_str())
    }

    /// The name of jail `idx`.
    pub fn name(&self, idx: usize) -> &str {
        &self.jails[idx].engine.config().name
    }

    /// The index of jail `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names().position(|n| n == name)
    }

    /// The engine of jail `idx`.
    pub fn engine(&self, idx: usize) -> &JailEngine {
        &self.jails[idx].engine
    }

    /// Whole failed attempts jail `idx` was handed since start.
    pub fn attempts(&self, idx: usize) -> u64 {
        self.jails[idx].attempts
    }

    /// Bans jail `idx` decided since start.
    pub fn total_bans(&self, idx: usize) -> u64 {
        self.jails[idx].total_bans
    }

    /// The orphans (bans of jails no longer configured) in force at `now`.
    pub fn orphans(&self, now: Time) -> impl Iterator<Item = &Ban> {
        self.orphans
            .values()
            .flatten()
            .filter(move |b| in_force(b, now))
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next (the earliest ban end of
    /// any engine). Orphans need no call: the kernel and the store end them by themselves.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.jails
            .iter()
            .filter_map(|j| j.engine.poll_timeout())
            .chain(self.site_poll_timeout())
            .min()
    }

    /// What the kernel sets should hold at `now`: every target banned by any jail or orphan,
    /// with the longest end. For the reconcile at start and after a firewall failure.
    pub fn in_force(&self, now: Time) -> Vec<(IpNet, Option<Time>)> {
        if self.jails.len() == 1 && self.orphans.is_empty() {
            // One jail: its targets are distinct already; no map, no `Ban` per entry.
            let mut out: Vec<(IpNet, Option<Time>)> = self.jails[0]
                .engine
                .ban_ends()
                .filter(|(_, until)| until.is_none_or(|u| u > now))
                .collect();
            out.sort_unstable_by_key(|(t, _)| *t);
            return out;
        }
        let mut out: HashMap<IpNet, Option<Time>> = HashMap::new();
        let engines = self.jails.iter().flat_map(|j| j.engine.active_bans());
        let orphans = self.orphans(now).cloned();
        for ban in engines.chain(orphans).filter(|b| in_force(b, now)) {
            out.entry(ban.target)
                .and_modify(|u| *u = longer(*u, ban.until))
                .or_insert(ban.until);
        }
        let mut out: Vec<_> = out.into_iter().collect();
        out.sort_unstable_by_key(|(t, _)| *t);
        out
    }

    /// How many targets of each kind [`in_force`](Self::in_force) holds, without building
    /// it: one pass over the bans, a set only when several jails (or orphans) could ban the
    /// same target. For `status`, which must not list the kernel.
    pub fn in_force_counts(&self, now: Time) -> portcullis_firewall::ElementCounts {
        let mut counts = portcullis_firewall::ElementCounts::default();
        if self.jails.len() == 1 && self.orphans.is_empty() {
            // No `Ban` per entry: 1M bans are counted in milliseconds.
            self.jails[0]
                .engine
                .ban_ends()
                .filter(|(_, until)| until.is_none_or(|u| u > now))
                .for_each(|(t, _)| counts.count(&t));
            return counts;
        }
        let engines = self.jails.iter().flat_map(|j| j.engine.active_bans());
        let mut bans = engines
            .chain(self.orphans(now).cloned())
            .filter(|b| in_force(b, now));
        let shared = self.jails.len() > 1 || !self.orphans.is_empty();
        if shared {
            let mut seen = HashSet::new();
            for b in bans {
                if seen.insert(b.target) {
                    counts.count(&b.target);
                }
            }
        } else {
            bans.by_ref().for_each(|b| counts.count(&b.target));
        }
        counts
    }

    /// The longest end among all bans of exactly `target` at `now`: `None` when nothing bans
    /// it, `Some(None)` when a ban is permanent.
    pub fn longest_ban(&self, target: IpNet, now: Time) -> Option<Option<Time>> {
        let engines = self
            .jails
            .iter()
            .filter_map(|j| j.engine.active_ban(target));
        let orphans = self.orphans.get(&target).into_iter().flatten().cloned();
        engines
            .chain(orphans)
            .filter(|b| in_force(b, now))
            .map(|b| b.until)
            .reduce(longer)
    }

    // ---- inputs ----

    /// Hand the events one line of jail `idx` made to its engine.
    pub fn handle_events(&mut self, idx: usize, now: Time, events: &[Event]) {
        let jail = &mut self.jails[idx];
        for ev in events {
            if ev.kind == EventKind::Attempt {
                jail.attempts += u64::from(ev.count);
            }
            jail.engine.handle_event(now, ev);
        }
        self.site_events(idx, now, events);
    }

    /// Expire what is due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        for j in &mut self.jails {
            j.engine.handle_timeout(now);
        }
        self.site_timeout(now);
        // Orphans that ended are ignored wherever they are read and dropped at the next
        // reload: sweeping them here would cost O(orphans) at every expiry.
    }

    // ---- commands ----

    /// Run an administrator's command on jail `idx` (see the engine's `Command`).
    pub fn handle_command(
        &mut self,
        idx: usize,
        now: Time,
        cmd: Command,
    ) -> Result<(), CommandError> {
        let result = self.jails[idx].engine.handle_command(now, cmd);
        // Now, so that the burst keeps the order decisions were made in.
        self.drain();
        self.aggregate(now);
        result
    }

    /// Lift the orphans of `target` (every orphan when `None`), as manual unbans; returns
    /// the bans lifted, ordered by target then jail.
    pub fn lift_orphans(&mut self, now: Time, target: Option<IpNet>) -> Vec<Ban> {
        let mut lifted: Vec<Ban> = match target {
            Some(t) => self.orphans.remove(&t).unwrap_or_default(),
            None => self.orphans.drain().flat_map(|(_, b)| b).collect(),
        };
        lifted.retain(|b| in_force(b, now));
        lifted.sort_by(|a, b| (a.target, &a.jail).cmp(&(b.target, &b.jail)));
        for ban in &lifted {
            self.record(Decision::Unban {
                target: ban.target,
                jail: ban.jail.clone(),
                reason: UnbanReason::Manual,
            });
        }
        lifted
    }

    /// Make the next commit rewrite the kernel sets to [`in_force`](Self::in_force) instead of
    /// changing elements, so that elements no ban accounts for go too.
    pub fn resync_firewall(&mut self) {
        self.resync = true;
    }

    /// Take the jails of a new configuration, in its order, keeping every ban (see the
    /// rules on the type). Decisions the engines made so far stay queued for the next
    /// commit.
    pub fn reload(&mut self, jails: Vec<JailInit>, now: Time) {
        self.drain();
        let new: HashSet<&str> = jails
            .iter()
            .map(|j| j.config.name.as_str())
            .filter(|n| self.index_of(n).is_none())
            .collect();
        let mut by_jail: HashMap<Box<str>, Vec<Ban>> = HashMap::new();
        if !new.is_empty() {
            // One pass over the orphans for all new jails.
            self.orphans.retain(|_, bans| {
                bans.retain(|b| {
                    let restore = new.contains(&*b.jail);
                    if restore {
                        by_jail.entry(b.jail.clone()).or_default().push(b.clone());
                    }
                    !restore
                });
                !bans.is_empty()
            });
            for bans in by_jail.values_mut() {
                bans.sort_by_key(|b| (b.since, b.target));
            }
        }
        self.take_jails(jails, by_jail, now);
    }

    // ---- output ----

    /// Every jail's windows that changed since the last call, as `(jail, window)` for the
    /// store (an empty window: delete it). Call it exactly when the source positions are
    /// written, in the same transaction.
    pub fn poll_window_changes(&mut self) -> Vec<(std::sync::Arc<str>, WindowState)> {
        let mut out = Vec::new();
        for j in &mut self.jails {
            let changes = j.engine.poll_window_changes();
            if changes.is_empty() {
                continue;
            }
            // One name per jail, shared by its windows (not one allocation per window).
            let name: std::sync::Arc<str> = j.engine.config().name.as_str().into();
            out.extend(changes.into_iter().map(|w| (name.clone(), w)));
        }
        out
    }

    /// How many changed windows wait for [`poll_window_changes`](Self::poll_window_changes)
    /// (an upper bound).
    pub fn window_changes_pending(&self) -> usize {
        self.jails
            .iter()
            .map(|j| j.engine.window_changes_pending())
            .sum()
    }

    /// The work this burst calls for (`None` when there is none): drains every engine.
    pub fn poll_commit(&mut self, now: Time) -> Option<Commit> {
        self.drain();
        self.aggregate(now);
        let firewall = if std::mem::take(&mut self.resync) {
            FirewallWork::Resync(self.in_force(now))
        } else if self.touched.is_empty() {
            FirewallWork::Nothing
        } else {
            let changes = self
                .touched
                .iter()
                .map(|&target| match self.longest_ban(target, now) {
                    Some(until) => FirewallChange::Add { target, until },
                    None => FirewallChange::Remove { target },
                })
                .collect();
            FirewallWork::Apply(changes)
        };
        self.touched.clear();
        self.touched_set.clear();
        let commit = Commit {
            decisions: std::mem::take(&mut self.decisions),
            firewall,
        };
        (!commit.is_empty()).then_some(commit)
    }

    // ---- internals ----

    /// Move every engine's decisions into the burst.
    fn drain(&mut self) {
        for i in 0..self.jails.len() {
            while let Some(d) = self.jails[i].engine.poll_decision() {
                if matches!(d, Decision::Ban(_)) {
                    self.jails[i].total_bans += 1;
                }
                self.record(d);
            }
        }
    }

    fn record(&mut self, d: Decision) {
        if self.networks.enabled() {
            self.note_for_networks(&d);
        }
        let target = match &d {
            Decision::Ban(b) => Some(b.target),
            Decision::Unban { target, .. } => Some(*target),
            Decision::Alert(_) => None,
        };
        if let Some(t) = target
            && self.touched_set.insert(t)
        {
            self.touched.push(t);
        }
        self.decisions.push(d);
    }

    /// Put `jails` in place of the current ones: a jail that stays keeps its engine, a new
    /// one is restored from its bans in `restore`; the bans of jails that went, and
    /// whatever is left in `restore`, become orphans.
    fn take_jails(
        &mut self,
        jails: Vec<JailInit>,
        mut restore: HashMap<Box<str>, Vec<Ban>>,
        now: Time,
    ) {
        let mut old: Vec<Jail> = std::mem::take(&mut self.jails);
        for init in jails {
            let kept = old
                .iter()
                .position(|j| j.engine.config().name == init.config.name);
            let jail = match kept {
                Some(i) => {
                    let mut jail = old.swap_remove(i);
                    if *jail.engine.config() != init.config {
                        jail.engine.reconfigure(init.config);
                    }
                    jail
                }
                None => {
                    let bans = restore
                        .remove(init.config.name.as_str())
                        .unwrap_or_default();
                    let restored = Restored {
                        bans,
                        history: init.history,
                        windows: init.windows,
                    };
                    let mut engine = JailEngine::new(init.config, restored);
                    engine.track_window_changes();
                    Jail {
                        engine,
                        attempts: 0,
                        total_bans: 0,
                    }
                }
            };
            self.jails.push(jail);
        }
        self.orphans.retain(|_, bans| {
            bans.retain(|b| in_force(b, now));
            !bans.is_empty()
        });
        let gone = old
            .iter()
            .flat_map(|j| j.engine.active_bans().collect::<Vec<_>>());
        for ban in gone.chain(restore.into_values().flatten()) {
            if in_force(&ban, now) {
                self.orphans.entry(ban.target).or_default().push(ban);
            }
        }
    }
}

/// Whether `ban` still holds at `now`.
fn in_force(ban: &Ban, now: Time) -> bool {
    ban.until.is_none_or(|u| u > now)
}

/// The later of two ends, `None` (permanent) being the latest.
fn longer(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    }
}

pub mod fleet;
mod site;

#[cfg(test)]
mod tests;
