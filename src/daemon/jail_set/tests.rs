//! The daemon's rules, driven through the [`JailSet`] and the pure control commands as the
//! tokio loop drives them, on a fake clock: no root, no tokio, no store, no firewall.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_control::data::{BanData, FlushData, UnbanData};
use portcullis_control::{ErrorBody, ErrorKind, Target};
use portcullis_core::event::{Ban, BanReason, UnbanReason};
use portcullis_core::jail::JailConfig;
use portcullis_core::{Decision, Event, EventKind, Time, Weight};
use portcullis_firewall::Change;

use super::{Commit, FirewallChange, FirewallWork, JailInit, JailSet};
use crate::daemon::commands::{activity, ban, bans, flush, unban};

/// 2027-01-15T08:00:00Z: an arbitrary fixed start.
const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Time {
    Time::from_secs(T0 + secs)
}

fn net(s: &str) -> IpNet {
    Target::parse(s).expect("literal target").0
}

fn jail(name: &str) -> JailInit {
    JailInit {
        config: JailConfig::new(name),
        history: Vec::new(),
        windows: Vec::new(),
    }
}

/// A stored ban of `jail` on `target`, from `at(0)` for `secs` (`None`: permanent).
fn stored(jail: &str, target: &str, secs: Option<i64>) -> Ban {
    Ban {
        target: net(target),
        jail: jail.into(),
        since: at(0),
        until: secs.map(at),
        ban_no: 1,
        reason: BanReason::Manual,
    }
}

/// The set and a clock, with one method per thing the driver does.
struct Sim {
    set: JailSet,
    now: Time,
}

impl Sim {
    fn new(jails: &[&str]) -> Sim {
        Sim::with(jails.iter().map(|n| jail(n)).collect(), Vec::new())
    }

    fn with(jails: Vec<JailInit>, stored: Vec<Ban>) -> Sim {
        Sim {
            set: JailSet::new(jails, stored, at(0)),
            now: at(0),
        }
    }

    fn advance(&mut self, secs: i64) {
        self.now = self.now.saturating_add(Duration::from_secs(secs as u64));
    }

    /// What the driver does when the deadline comes.
    fn timeout(&mut self) {
        self.set.handle_timeout(self.now);
    }

    /// `n` failed password attempts from `addr` in jail `idx`, one line each.
    fn attempts(&mut self, idx: usize, addr: &str, n: u32) {
        let addr: IpAddr = addr.parse().expect("literal address");
        for _ in 0..n {
            let ev = Event {
                time: self.now,
                addr,
                kind: EventKind::Attempt,
                weight: Weight::ONE,
                count: 1,
                user: Some("root".into()),
                user_exists: None,
                method: Some("password".into()),
                pid: Some(4242),
                rule: 0,
            };
            self.set
                .handle_events(idx, self.now, std::slice::from_ref(&ev));
        }
    }

    fn ban(&mut self, target: &str, jail: Option<&str>, secs: Option<u64>) -> BanData {
        self.try_ban(target, jail, secs, false, false)
            .expect("ban accepted")
    }

    fn try_ban(
        &mut self,
        target: &str,
        jail: Option<&str>,
        secs: Option<u64>,
        permanent: bool,
        force: bool,
    ) -> Result<BanData, ErrorBody> {
        let target = Target::parse(target).expect("literal target");
        ban::ban(
            &mut self.set,
            self.now,
            target,
            jail,
            secs,
            permanent,
            force,
        )
    }

    fn unban(&mut self, target: Option<&str>, jail: Option<&str>) -> Result<UnbanData, ErrorBody> {
        let target = target.map(|t| Target::parse(t).expect("literal target"));
        unban::unban(&mut self.set, self.now, target, jail, false)
    }

    fn flush(&mut self, jail: Option<&str>) -> Result<FlushData, ErrorBody> {
        flush::flush(&mut self.set, self.now, jail)
    }

    /// What the driver writes after the burst (empty when nothing).
    fn commit(&mut self) -> Commit {
        self.set.poll_commit(self.now).unwrap_or_default()
    }

    /// The firewall changes of the next commit (which must be a plain batch).
    fn firewall(&mut self) -> Vec<FirewallChange> {
        match self.commit().firewall {
            FirewallWork::Apply(c) => c,
            FirewallWork::Nothing => Vec::new(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    /// (jail, target) of the bans `bans` lists.
    fn listed(&self, jail: Option<&str>) -> Vec<(String, String)> {
        bans::bans(&self.set, jail, None, None, self.now)
            .expect("bans")
            .bans
            .into_iter()
            .map(|b| (b.jail, b.target.to_string()))
            .collect()
    }
}

fn add(target: &str, until: Option<i64>) -> FirewallChange {
    FirewallChange::Add {
        target: net(target),
        until: until.map(at),
    }
}

fn remove(target: &str) -> FirewallChange {
    FirewallChange::Remove {
        target: net(target),
    }
}

fn unban_of(jail: &str, target: &str, reason: UnbanReason) -> Decision {
    Decision::Unban {
        target: net(target),
        jail: jail.into(),
        reason,
    }
}

/// (jail, target, until) of the `Ban` decisions.
fn bans_in(c: &Commit) -> Vec<(String, IpNet, Option<Time>)> {
    c.decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Ban(b) => Some((b.jail.to_string(), b.target, b.until)),
            _ => None,
        })
        .collect()
}

// ---- bans from events, and the commit protocol ----

#[test]
fn a_ban_from_events_is_a_decision_then_a_kernel_element_until_its_end() {
    let mut sim = Sim::new(&["sshd"]);
    sim.attempts(0, "192.0.2.10", 4);
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "4 of 5 attempts: nothing yet"
    );
    sim.attempts(0, "192.0.2.10", 1);
    let c = sim.commit();
    // JailConfig::new: the first ban lasts 10 minutes.
    assert_eq!(
        bans_in(&c),
        vec![("sshd".into(), net("192.0.2.10"), Some(at(600)))]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.10", Some(600))])
    );
    assert_eq!(sim.set.attempts(0), 5);
    assert_eq!(sim.set.total_bans(0), 1);
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "a burst is handed out once"
    );
    assert_eq!(sim.set.poll_timeout(), Some(at(600)));
}

#[test]
fn nothing_happening_is_no_commit() {
    let mut sim = Sim::new(&["sshd", "web"]);
    assert_eq!(sim.set.poll_commit(sim.now), None);
    sim.advance(3600);
    sim.timeout();
    assert_eq!(sim.set.poll_commit(sim.now), None);
    assert_eq!(sim.set.poll_timeout(), None);
}

#[test]
fn firewall_changes_carry_ends_so_a_late_apply_still_ends_on_time() {
    let c = add("192.0.2.1", Some(600));
    assert_eq!(
        c.at(at(100)),
        Change::Add {
            target: net("192.0.2.1"),
            timeout: Some(Duration::from_secs(500)),
        }
    );
    assert_eq!(
        c.at(at(700)),
        Change::Add {
            target: net("192.0.2.1"),
            timeout: Some(Duration::ZERO),
        },
        "an end already passed is a zero timeout, which the firewall skips"
    );
    assert_eq!(
        add("192.0.2.1", None).at(at(700)),
        Change::Add {
            target: net("192.0.2.1"),
            timeout: None,
        }
    );
    assert_eq!(
        remove("192.0.2.1").at(at(1)),
        Change::Remove {
            target: net("192.0.2.1")
        }
    );
}

// ---- longest ban wins across jails ----

#[test]
fn the_kernel_element_carries_the_longest_ban_of_all_jails() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("192.0.2.7", Some("a"), Some(3600));
    assert_eq!(sim.firewall(), vec![add("192.0.2.7", Some(3600))]);
    // A shorter ban in another jail is recorded, but does not shorten the element.
    let c = sim.try_ban("192.0.2.7", Some("b"), Some(600), false, false);
    assert_eq!(c.expect("ban").ban.until, Some(at(600).as_secs()));
    let c = sim.commit();
    assert_eq!(
        bans_in(&c),
        vec![("b".into(), net("192.0.2.7"), Some(at(600)))]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.7", Some(3600))])
    );
    // A longer one lengthens it.
    sim.ban("192.0.2.7", Some("b"), Some(7200));
    assert_eq!(sim.firewall(), vec![add("192.0.2.7", Some(7200))]);
}

#[test]
fn a_permanent_ban_is_never_shortened_by_another_jail() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.try_ban("198.51.100.3", Some("a"), None, true, false)
        .expect("permanent ban");
    assert_eq!(sim.firewall(), vec![add("198.51.100.3", None)]);
    sim.ban("198.51.100.3", Some("b"), Some(600));
    assert_eq!(sim.firewall(), vec![add("198.51.100.3", None)]);
    // And the other way round: a temporary ban first, then a permanent one.
    sim.ban("198.51.100.4", Some("b"), Some(600));
    sim.try_ban("198.51.100.4", Some("a"), None, true, false)
        .expect("permanent ban");
    assert_eq!(sim.firewall(), vec![add("198.51.100.4", None)]);
}

#[test]
fn unbanning_in_one_jail_keeps_the_target_another_jail_bans() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("192.0.2.7", Some("a"), Some(3600));
    sim.ban("192.0.2.7", Some("b"), Some(600));
    sim.commit();
    let out = sim.unban(Some("192.0.2.7"), Some("a")).expect("unban");
    assert_eq!(out.removed.len(), 1);
    assert_eq!(out.removed[0].jail, "a");
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![unban_of("a", "192.0.2.7", UnbanReason::Manual)]
    );
    // Still banned by b: the element stays, now with b's end.
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.7", Some(600))])
    );
    assert_eq!(sim.listed(None), vec![("b".into(), "192.0.2.7".into())]);
    sim.unban(Some("192.0.2.7"), Some("b")).expect("unban");
    assert_eq!(sim.firewall(), vec![remove("192.0.2.7")]);
}

#[test]
fn expiry_in_one_jail_keeps_the_target_another_jail_bans() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("192.0.2.8", Some("a"), Some(600));
    sim.ban("192.0.2.8", Some("b"), Some(3600));
    assert_eq!(sim.firewall(), vec![add("192.0.2.8", Some(3600))]);
    assert_eq!(sim.set.poll_timeout(), Some(at(600)));
    sim.advance(599);
    sim.timeout();
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "a second early: nothing"
    );
    sim.advance(1);
    sim.timeout();
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![unban_of("a", "192.0.2.8", UnbanReason::Expired)]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.8", Some(3600))])
    );
    assert_eq!(sim.set.poll_timeout(), Some(at(3600)));
    sim.advance(3000);
    sim.timeout();
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![unban_of("b", "192.0.2.8", UnbanReason::Expired)]
    );
    assert_eq!(c.firewall, FirewallWork::Apply(vec![remove("192.0.2.8")]));
    assert!(sim.set.in_force(sim.now).is_empty());
}

#[test]
fn a_ban_that_ends_within_its_burst_leaves_no_element() {
    let mut cfg = JailConfig::new("sshd");
    cfg.bantime = Duration::ZERO;
    let mut sim = Sim::with(
        vec![JailInit {
            config: cfg,
            history: Vec::new(),
            windows: Vec::new(),
        }],
        Vec::new(),
    );
    sim.attempts(0, "203.0.113.5", 5);
    let c = sim.commit();
    assert_eq!(c.decisions.len(), 2, "{:?}", c.decisions);
    assert!(matches!(c.decisions[0], Decision::Ban(_)));
    assert_eq!(
        c.decisions[1],
        unban_of("sshd", "203.0.113.5", UnbanReason::Expired)
    );
    assert_eq!(c.firewall, FirewallWork::Apply(vec![remove("203.0.113.5")]));
}

#[test]
fn a_network_ban_lifts_its_members_elements_unless_another_jail_bans_them() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("2001:db8:1::1", Some("b"), Some(3600));
    sim.commit();
    // JailConfig::new: 4 banned addresses of a /64 ban the /64.
    for host in [
        "2001:db8:1::1",
        "2001:db8:1::2",
        "2001:db8:1::3",
        "2001:db8:1::4",
    ] {
        sim.attempts(0, host, 5);
    }
    let c = sim.commit();
    let nets: Vec<_> = bans_in(&c)
        .into_iter()
        .filter(|(_, t, _)| t.prefix_len() == 64)
        .collect();
    assert_eq!(nets.len(), 1, "{:?}", c.decisions);
    let FirewallWork::Apply(changes) = c.firewall else {
        panic!("expected a batch, got {:?}", c.firewall);
    };
    assert_eq!(
        changes,
        vec![
            add("2001:db8:1::1", Some(3600)), // b still bans it
            remove("2001:db8:1::2"),
            remove("2001:db8:1::3"),
            remove("2001:db8:1::4"),
            add("2001:db8:1::/64", nets[0].2.map(|t| t.as_secs() - T0)),
        ]
    );
}

// ---- manual bans ----

#[test]
fn a_manual_ban_of_an_allowlisted_address_needs_force() {
    let mut cfg = JailConfig::new("sshd");
    cfg.allowlist.push(net("192.0.2.0/28"));
    let mut sim = Sim::with(
        vec![JailInit {
            config: cfg,
            history: Vec::new(),
            windows: Vec::new(),
        }],
        Vec::new(),
    );
    for target in ["127.0.0.1", "192.0.2.3", "192.0.2.0/24"] {
        let err = sim
            .try_ban(target, None, None, false, false)
            .expect_err("allowlisted");
        assert_eq!(err.kind, ErrorKind::Allowlisted, "{target}: {err:?}");
        assert!(err.message.contains("force"), "{}", err.message);
    }
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "a refused ban changes nothing"
    );
    let ok = sim
        .try_ban("192.0.2.3", None, Some(60), false, true)
        .expect("forced");
    assert_eq!(ok.ban.reason, "manual");
    assert_eq!(sim.firewall(), vec![add("192.0.2.3", Some(60))]);
}

#[test]
fn a_manual_ban_goes_to_the_first_jail_unless_one_is_named() {
    let mut sim = Sim::new(&["sshd", "web"]);
    assert_eq!(sim.ban("192.0.2.20", None, Some(60)).ban.jail, "sshd");
    assert_eq!(sim.ban("192.0.2.21", Some("web"), Some(60)).ban.jail, "web");
    let err = sim
        .try_ban("192.0.2.22", Some("nope"), None, false, false)
        .expect_err("unknown jail");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains("nope"), "{}", err.message);
    let mut none = Sim::new(&[]);
    let err = none
        .try_ban("192.0.2.22", None, None, false, false)
        .expect_err("no jail");
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::NotFound, "no jail configured")
    );
}

#[test]
fn a_manual_ban_without_length_escalates_on_history() {
    let mut sim = Sim::with(
        vec![JailInit {
            config: JailConfig::new("sshd"),
            history: vec![(net("192.0.2.30"), at(-3600))],
            windows: Vec::new(),
        }],
        Vec::new(),
    );
    let ban = sim.ban("192.0.2.30", None, None).ban;
    // Second ban within history: 10 min × 2.
    assert_eq!((ban.ban_no, ban.until), (2, Some(at(1200).as_secs())));
}

// ---- unban ----

#[test]
fn unban_of_a_permanent_ban_lifts_it() {
    let mut sim = Sim::new(&["sshd"]);
    let ban = sim
        .try_ban("2001:db8::66", None, None, true, false)
        .expect("permanent")
        .ban;
    assert_eq!(ban.until, None);
    assert_eq!(sim.firewall(), vec![add("2001:db8::66", None)]);
    let out = sim.unban(Some("2001:db8::66"), None).expect("unban");
    assert_eq!(out.removed.len(), 1);
    assert_eq!(out.removed[0].until, None);
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![unban_of("sshd", "2001:db8::66", UnbanReason::Manual)]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![remove("2001:db8::66")])
    );
    let err = sim.unban(Some("2001:db8::66"), None).expect_err("gone");
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::NotFound, "2001:db8::66 is not banned")
    );
    assert_eq!(sim.set.poll_commit(sim.now), None);
}

#[test]
fn unban_without_a_jail_lifts_it_in_every_jail_and_orphan() {
    let mut sim = Sim::with(
        vec![jail("a"), jail("b")],
        vec![stored("gone", "192.0.2.40", Some(7200))],
    );
    sim.ban("192.0.2.40", Some("a"), Some(600));
    sim.ban("192.0.2.40", Some("b"), Some(600));
    assert_eq!(sim.firewall(), vec![add("192.0.2.40", Some(7200))]);
    let out = sim.unban(Some("192.0.2.40"), None).expect("unban");
    let jails: Vec<&str> = out.removed.iter().map(|b| b.jail.as_str()).collect();
    assert_eq!(jails, ["a", "b", "gone"]);
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![
            unban_of("a", "192.0.2.40", UnbanReason::Manual),
            unban_of("b", "192.0.2.40", UnbanReason::Manual),
            unban_of("gone", "192.0.2.40", UnbanReason::Manual),
        ]
    );
    assert_eq!(c.firewall, FirewallWork::Apply(vec![remove("192.0.2.40")]));
}

#[test]
fn unban_all_lifts_every_ban_of_the_named_jail_only() {
    let mut sim = Sim::with(
        vec![jail("a"), jail("b")],
        vec![stored("gone", "192.0.2.52", Some(7200))],
    );
    sim.ban("192.0.2.51", Some("a"), Some(600));
    sim.ban("192.0.2.50", Some("a"), Some(600));
    sim.ban("192.0.2.53", Some("b"), Some(600));
    sim.commit();
    let out = unban::unban(&mut sim.set, sim.now, None, Some("a"), true).expect("unban --all");
    let targets: Vec<String> = out.removed.iter().map(|b| b.target.to_string()).collect();
    assert_eq!(targets, ["192.0.2.50", "192.0.2.51"]);
    assert_eq!(
        sim.firewall(),
        vec![remove("192.0.2.50"), remove("192.0.2.51")]
    );
    assert_eq!(sim.set.orphans(sim.now).count(), 1);
    // Without a jail: every jail and the orphans.
    let out = unban::unban(&mut sim.set, sim.now, None, None, true).expect("unban --all");
    assert_eq!(out.removed.len(), 2);
    assert!(sim.set.in_force(sim.now).is_empty());
    let err = unban::unban(&mut sim.set, sim.now, None, None, true).expect_err("nothing left");
    assert_eq!(err.message, "anything is not banned");
}

#[test]
fn unban_refusals_are_not_found() {
    let mut sim = Sim::new(&["sshd"]);
    sim.ban("198.51.100.0/24", None, Some(600));
    sim.commit();
    let err = sim
        .unban(Some("198.51.100.9"), None)
        .expect_err("inside a network");
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = sim
        .unban(Some("198.51.100.0/24"), Some("nope"))
        .expect_err("no jail");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains("nope"));
    let err = sim.unban(None, None).expect_err("no target");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(sim.set.poll_commit(sim.now), None);
    assert_eq!(sim.listed(None).len(), 1);
}

// ---- bans of jails no longer configured ----

#[test]
fn bans_of_jails_no_longer_configured_stay_in_force_until_lifted() {
    let mut sim = Sim::with(
        vec![jail("sshd")],
        vec![
            stored("old", "203.0.113.9", Some(3600)),
            stored("sshd", "203.0.113.10", None),
        ],
    );
    assert_eq!(
        sim.set.in_force(sim.now),
        vec![
            (net("203.0.113.9"), Some(at(3600))),
            (net("203.0.113.10"), None),
        ]
    );
    // `bans` lists every ban in force: the configured jails' (restored into their engines)
    // and the orphans, so the admin sees all the kernel enforces (same start: by address).
    assert_eq!(
        sim.listed(None),
        vec![
            ("old".into(), "203.0.113.9".into()),
            ("sshd".into(), "203.0.113.10".into())
        ]
    );
    assert_eq!(
        sim.listed(Some("old")),
        vec![("old".into(), "203.0.113.9".into())]
    );
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "restoring is no decision"
    );
    // The orphan can only be lifted without naming a jail.
    let err = sim
        .unban(Some("203.0.113.9"), Some("old"))
        .expect_err("no jail old");
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = sim
        .unban(Some("203.0.113.9"), Some("sshd"))
        .expect_err("not sshd's");
    assert_eq!(err.kind, ErrorKind::NotFound);
    let out = sim.unban(Some("203.0.113.9"), None).expect("unban");
    assert_eq!(out.removed.len(), 1);
    assert_eq!(out.removed[0].jail, "old");
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![unban_of("old", "203.0.113.9", UnbanReason::Manual)],
        "the store deletes the row of (old, target)"
    );
    assert_eq!(c.firewall, FirewallWork::Apply(vec![remove("203.0.113.9")]));
    assert!(sim.unban(Some("203.0.113.9"), None).is_err());
}

#[test]
fn an_orphan_is_one_of_the_bans_the_longest_is_taken_from() {
    let mut sim = Sim::with(
        vec![jail("sshd")],
        vec![stored("old", "203.0.113.11", Some(7200))],
    );
    sim.ban("203.0.113.11", None, Some(600));
    assert_eq!(sim.firewall(), vec![add("203.0.113.11", Some(7200))]);
    // Lifting sshd's ban leaves the orphan's element.
    sim.unban(Some("203.0.113.11"), Some("sshd"))
        .expect("unban");
    assert_eq!(sim.firewall(), vec![add("203.0.113.11", Some(7200))]);
}

#[test]
fn orphans_end_at_their_own_time() {
    let mut sim = Sim::with(
        vec![jail("sshd")],
        vec![stored("old", "203.0.113.12", Some(60))],
    );
    assert_eq!(
        sim.set.poll_timeout(),
        None,
        "the kernel and store end orphans"
    );
    sim.advance(60);
    assert!(sim.set.in_force(sim.now).is_empty());
    assert_eq!(sim.set.orphans(sim.now).count(), 0);
    let err = sim.unban(Some("203.0.113.12"), None).expect_err("ended");
    assert_eq!(err.kind, ErrorKind::NotFound);
    sim.timeout();
    assert_eq!(sim.set.poll_commit(sim.now), None);
}

// ---- flush ----

#[test]
fn flush_of_one_jail_lifts_its_bans_and_forgets_its_windows_only() {
    let mut sim = Sim::with(
        vec![jail("a"), jail("b")],
        vec![stored("old", "203.0.113.20", Some(3600))],
    );
    sim.ban("192.0.2.60", Some("a"), Some(600));
    sim.ban("192.0.2.61", Some("a"), Some(600));
    sim.ban("192.0.2.60", Some("b"), Some(300));
    sim.ban("192.0.2.62", Some("b"), Some(600));
    sim.attempts(0, "198.51.100.60", 3);
    sim.attempts(1, "198.51.100.60", 3);
    sim.commit();
    let out = sim.flush(Some("a")).expect("flush");
    assert_eq!(out.removed, 2);
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![
            unban_of("a", "192.0.2.60", UnbanReason::Manual),
            unban_of("a", "192.0.2.61", UnbanReason::Manual),
        ]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.60", Some(300)), remove("192.0.2.61")])
    );
    let addr: IpAddr = "198.51.100.60".parse().expect("literal");
    assert_eq!(
        sim.set.engine(0).score(addr),
        Weight(0),
        "a's window forgotten"
    );
    assert_eq!(
        sim.set.engine(1).score(addr),
        Weight(3 * Weight::ONE.0),
        "b's kept"
    );
    assert_eq!(sim.listed(Some("b")).len(), 2);
    assert_eq!(sim.set.orphans(sim.now).count(), 1);
    assert_eq!(
        sim.flush(Some("nope")).expect_err("no jail").kind,
        ErrorKind::NotFound
    );
}

#[test]
fn flush_of_everything_lifts_orphans_and_rewrites_the_kernel_sets() {
    let mut sim = Sim::with(
        vec![jail("a"), jail("b")],
        vec![stored("old", "203.0.113.21", None)],
    );
    sim.ban("192.0.2.70", Some("a"), Some(600));
    sim.ban("192.0.2.71", Some("b"), Some(600));
    sim.commit();
    let out = sim.flush(None).expect("flush");
    assert_eq!(out.removed, 3);
    let c = sim.commit();
    assert_eq!(
        c.decisions,
        vec![
            unban_of("a", "192.0.2.70", UnbanReason::Manual),
            unban_of("b", "192.0.2.71", UnbanReason::Manual),
            unban_of("old", "203.0.113.21", UnbanReason::Manual),
        ]
    );
    // The sets are rewritten to hold exactly what is left: nothing, so an element no ban
    // accounts for goes too.
    assert_eq!(c.firewall, FirewallWork::Resync(Vec::new()));
    assert!(sim.listed(None).is_empty());
    // Flushing nothing still rewrites the sets.
    assert_eq!(sim.flush(None).expect("flush").removed, 0);
    assert_eq!(sim.commit().firewall, FirewallWork::Resync(Vec::new()));
}

// ---- reload ----

#[test]
fn reload_keeps_every_ban() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("192.0.2.80", Some("a"), Some(600));
    sim.ban("192.0.2.81", Some("b"), Some(3600));
    sim.attempts(0, "198.51.100.80", 2);
    sim.commit();

    // a stays with a changed policy, b goes, c comes.
    let mut a = JailConfig::new("a");
    a.maxretry = Weight(3 * Weight::ONE.0);
    sim.set.reload(
        vec![
            JailInit {
                config: a,
                history: Vec::new(),
                windows: Vec::new(),
            },
            jail("c"),
        ],
        sim.now,
    );
    assert_eq!(sim.set.names().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(
        sim.set.poll_commit(sim.now),
        None,
        "a reload decides nothing"
    );
    assert_eq!(
        sim.listed(None),
        vec![
            ("a".into(), "192.0.2.80".into()),
            ("b".into(), "192.0.2.81".into())
        ]
    );
    assert_eq!(sim.set.total_bans(0), 1, "a kept its engine and counters");
    // b's ban stays in force (store and kernel) as an orphan.
    assert_eq!(
        sim.set.in_force(sim.now),
        vec![
            (net("192.0.2.80"), Some(at(600))),
            (net("192.0.2.81"), Some(at(3600))),
        ]
    );
    // The new policy applies to a's kept window: 2 + 1 attempts reach maxretry 3.
    sim.attempts(0, "198.51.100.80", 1);
    assert_eq!(bans_in(&sim.commit()).len(), 1);

    // b comes back: its ban is restored from the orphans, not decided again.
    sim.set.reload(vec![jail("a"), jail("b")], sim.now);
    assert_eq!(sim.set.poll_commit(sim.now), None);
    assert_eq!(
        sim.listed(Some("b")),
        vec![("b".into(), "192.0.2.81".into())]
    );
    assert_eq!(sim.set.orphans(sim.now).count(), 0);
    assert_eq!(
        sim.set
            .engine(1)
            .active_ban(net("192.0.2.81"))
            .map(|b| b.until),
        Some(Some(at(3600)))
    );
}

#[test]
fn reload_keeps_decisions_not_yet_committed() {
    let mut sim = Sim::new(&["a", "b"]);
    sim.ban("192.0.2.90", Some("b"), Some(600));
    // b goes before the burst was committed: its ban still reaches the store and kernel.
    sim.set.reload(vec![jail("a")], sim.now);
    let c = sim.commit();
    assert_eq!(
        bans_in(&c),
        vec![("b".into(), net("192.0.2.90"), Some(at(600)))]
    );
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![add("192.0.2.90", Some(600))])
    );
    assert_eq!(sim.set.orphans(sim.now).count(), 1);
}

// ---- windows across restarts (issue 10.4) ----

#[test]
fn a_restart_from_the_stored_windows_bans_at_exactly_maxretry() {
    // The default jail bans at 5. Two failures in jail 0, one in jail 1; "restart" from
    // what the set handed out for the store; three more in jail 0: banned at the fifth.
    let mut sim = Sim::new(&["sshd", "other"]);
    sim.attempts(0, "198.51.100.1", 2);
    sim.attempts(1, "198.51.100.1", 1);
    let stored: Vec<(std::sync::Arc<str>, portcullis_core::jail::WindowState)> =
        sim.set.poll_window_changes();
    assert_eq!(
        stored
            .iter()
            .map(|(j, w)| (j.to_string(), w.entries.len()))
            .collect::<Vec<_>>(),
        [("sshd".to_string(), 1), ("other".to_string(), 1)],
        "one entry each (equal times merge)"
    );
    assert!(sim.set.poll_window_changes().is_empty(), "drained");
    let windows_of = |name: &str| -> Vec<_> {
        stored
            .iter()
            .filter(|(j, _)| &**j == name)
            .map(|(_, w)| w.clone())
            .collect()
    };
    let inits = ["sshd", "other"]
        .iter()
        .map(|n| JailInit {
            windows: windows_of(n),
            ..jail(n)
        })
        .collect();
    let mut sim2 = Sim::with(inits, Vec::new());
    sim2.advance(60);
    sim2.attempts(0, "198.51.100.1", 2);
    assert!(bans_in(&sim2.commit()).is_empty(), "4 of 5");
    sim2.attempts(0, "198.51.100.1", 1);
    assert_eq!(bans_in(&sim2.commit()).len(), 1, "banned at the 5th");
    // The ban cleared jail 0's window: the store is told to delete it.
    let changes = sim2.set.poll_window_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(&*changes[0].0, "sshd");
    assert!(changes[0].1.entries.is_empty());
    // Jail 1 still counts its restored failure.
    assert_eq!(
        sim2.set.engine(1).score("198.51.100.1".parse().unwrap()),
        Weight::ONE
    );
}

#[test]
fn activity_sends_the_heaviest_failing_addresses_networks_and_newest_bans_bounded() {
    let mut sim = Sim::with(
        vec![jail("sshd"), jail("web")],
        vec![stored("gone", "203.0.113.0/24", Some(5000))],
    );
    sim.advance(10);
    for (addr, n) in [
        ("192.0.2.1", 3),
        ("192.0.2.2", 1),
        ("192.0.2.3", 2),
        ("2001:db8::1", 1),
        ("2001:db8::2", 2),
        ("203.0.113.5", 5), // banned at its fifth: no longer failing
    ] {
        sim.attempts(0, addr, n);
    }
    sim.attempts(1, "198.51.100.9", 4);
    sim.advance(10);
    sim.ban("198.51.100.50", Some("sshd"), Some(600));
    sim.commit();

    let a = activity::snapshot(&sim.set, sim.now, 3);
    assert_eq!(a.now, at(20).as_secs());
    assert_eq!(a.attempts, 14 + 4);
    assert_eq!(a.bans_decided, 2, "the threshold ban and the manual one");
    assert_eq!(a.failing_total, 6);
    let failing: Vec<_> = a
        .failing
        .iter()
        .map(|f| (f.jail.as_str(), f.addr.to_string(), f.weight, f.threshold))
        .collect();
    assert_eq!(
        failing,
        vec![
            ("web", "198.51.100.9".to_string(), 4000, 5000),
            ("sshd", "192.0.2.1".to_string(), 3000, 5000),
            // A tie goes to the lower address.
            ("sshd", "192.0.2.3".to_string(), 2000, 5000),
        ]
    );
    let networks: Vec<_> = a
        .networks
        .iter()
        .map(|n| (n.jail.as_str(), n.net.to_string(), n.addresses, n.weight))
        .collect();
    assert_eq!(
        networks,
        vec![
            ("sshd", "192.0.2.0/24".to_string(), 3, 6000),
            ("sshd", "2001:db8::/64".to_string(), 2, 3000),
        ],
        "a network with one failing address is not listed"
    );
    assert_eq!(a.bans_total, 3);
    let bans: Vec<_> = a.bans.iter().map(|b| b.target.to_string()).collect();
    assert_eq!(bans, vec!["198.51.100.50", "203.0.113.5", "203.0.113.0/24"]);

    // A smaller limit keeps the first entries and the totals.
    let a = activity::snapshot(&sim.set, sim.now, 1);
    assert_eq!((a.failing.len(), a.networks.len(), a.bans.len()), (1, 1, 1));
    assert_eq!((a.failing_total, a.bans_total), (6, 3));
    assert_eq!(a.bans[0].target.to_string(), "198.51.100.50");
    let a = activity::snapshot(&sim.set, sim.now, 0);
    assert!(a.failing.is_empty() && a.bans.is_empty() && a.networks.is_empty());

    // Once the orphan's ban and the manual one end, they are not listed.
    sim.advance(5000);
    sim.timeout();
    let a = activity::snapshot(&sim.set, sim.now, 10);
    let bans: Vec<_> = a.bans.iter().map(|b| b.target.to_string()).collect();
    assert_eq!(bans, Vec::<String>::new(), "every ban has ended: {bans:?}");
    assert_eq!(a.bans_total, 0);
    assert_eq!(a.failing_total, 0, "findtime passed");
}

/// Issue 13 item 2: a limited page is the oldest `limit` bans by (start, target) across the
/// jails' engines and the orphans, whatever the order they are held in, with `total` the
/// number that matched; `--net` and `--jail` filter before the limit.
#[test]
fn a_limited_page_is_the_oldest_across_jails_and_orphans() {
    let ban_at = |jail: &str, target: &str, since: i64| Ban {
        since: at(since),
        until: None,
        ..stored(jail, target, None)
    };
    // Starts interleaved across sshd, other and the orphan jail "old", held out of order.
    let mut stored_bans = Vec::new();
    for i in 0..30i64 {
        let jail = ["sshd", "other", "old"][(i % 3) as usize];
        let since = (i * 7919) % 30; // a permutation of 0..30
        stored_bans.push(ban_at(jail, &format!("198.51.100.{}", 100 + since), since));
    }
    let sim = Sim::with(vec![jail("sshd"), jail("other")], stored_bans);
    let page = |jail: Option<&str>, net: Option<&str>, limit: Option<u64>| {
        let d = bans::bans(
            &sim.set,
            jail,
            net.map(|n| n.parse().expect("literal net")),
            limit,
            sim.now,
        )
        .expect("bans");
        let targets: Vec<String> = d.bans.iter().map(|b| b.target.to_string()).collect();
        (d.total, targets)
    };
    let (total, all) = page(None, None, None);
    assert_eq!(total, 30);
    let expected: Vec<String> = (0..30).map(|s| format!("198.51.100.{}", 100 + s)).collect();
    assert_eq!(all, expected, "oldest first");
    for limit in [0u64, 1, 7, 29, 30, 31, 1000] {
        let (total, first) = page(None, None, Some(limit));
        assert_eq!(total, 30, "limit {limit}");
        assert_eq!(first, expected[..(limit as usize).min(30)], "limit {limit}");
    }
    // 198.51.100.96/28 holds .100..=.111: starts 0..=11.
    let (total, first) = page(None, Some("198.51.100.96/28"), Some(5));
    assert_eq!((total, first), (12, expected[..5].to_vec()));
    // The orphan jail alone: a third of them, still oldest first.
    let (total, first) = page(Some("old"), None, Some(3));
    assert_eq!(total, 10);
    assert_eq!(first.len(), 3);
    let (_, old_all) = page(Some("old"), None, None);
    assert_eq!(first, old_all[..3].to_vec());
    let mut sorted = old_all.clone();
    sorted.sort_by_key(|t| t.rsplit('.').next().and_then(|o| o.parse::<u32>().ok()));
    assert_eq!(old_all, sorted);
}
