//! Property tests: the engine against a naive reference model over random event sequences.
//!
//! The model keeps every event it was given (no pruning, no coalescing, no heap) and
//! recomputes everything from scratch at each step, so its correctness is evident by reading.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use proptest::prelude::*;

use super::sim::{EPOCH, drain, ip};
use crate::event::{BanReason, Decision, Event, EventKind, UnbanReason, Weight};
use crate::jail::escalation::ban_length;
use crate::jail::{Command, JailConfig, JailEngine, Restored};
use crate::time::Time;

/// The addresses random sequences use; the first is allowlisted in every config.
const ADDRS: [&str; 5] = [
    "192.0.2.1",
    "198.51.100.1",
    "198.51.100.2",
    "203.0.113.9",
    "2001:db8::9",
];

#[derive(Clone, Debug)]
enum Op {
    /// An event from `ADDRS[addr]`; the clock moves by `step` seconds (may be negative) and
    /// the event is stamped `lag` seconds before the new clock (negative: from the future).
    Event {
        addr: usize,
        kind: EventKind,
        weight: u32,
        count: u32,
        step: i64,
        lag: i64,
    },
    /// `handle_timeout` after moving the clock by `step` seconds.
    Timeout { step: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        6 => Just(EventKind::Attempt),
        3 => Just(EventKind::Probe),
        1 => Just(EventKind::Success),
        1 => Just(EventKind::Info),
    ];
    let weight = prop_oneof![
        Just(0u32),
        Just(200),
        Just(500),
        Just(1000),
        Just(1000),
        Just(2000)
    ];
    prop_oneof![
        8 => (0..ADDRS.len(), kind, weight, 0u32..4, -60i64..120, -30i64..800).prop_map(
            |(addr, kind, weight, count, step, lag)| Op::Event { addr, kind, weight, count, step, lag }
        ),
        1 => (-300i64..3000).prop_map(|step| Op::Timeout { step }),
    ]
}

/// Random whole-second configs (so the model's integer arithmetic is exact), with the
/// features the model does not implement (protection, breach, aggregation) off.
fn config() -> impl Strategy<Value = JailConfig> {
    (
        prop_oneof![Just(1000u32), Just(2500), Just(3000), Just(5000)],
        60u64..900,
        30u64..900,
        prop_oneof![Just(1.0f64), Just(2.0), Just(3.0)],
        100u64..20_000,
        prop_oneof![Just(None), Just(Some(2u32)), Just(Some(3)), Just(Some(5))],
        1000u64..20_000,
    )
        .prop_map(
            |(maxretry, findtime, bantime, factor, maxtime, permanent_after, history)| {
                let mut c = JailConfig::new("model");
                // The slow signals have their own tests (slow.rs).
                c.long_window = None;
                c.max_users = None;
                c.maxretry = Weight(maxretry);
                c.findtime = Duration::from_secs(findtime);
                c.bantime = Duration::from_secs(bantime);
                c.factor = factor;
                c.maxtime = Duration::from_secs(maxtime);
                c.permanent_after = permanent_after;
                c.history = Duration::from_secs(history);
                c.allowlist = vec!["192.0.2.0/31".parse().unwrap()];
                c.v6_net_threshold = None;
                c.breach_after = None;
                c.protect_after_success = None;
                c.alert_root_login = false;
                c
            },
        )
}

/// A ban as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelBan {
    target: IpAddr,
    since: Time,
    until: Option<Time>,
    ban_no: u32,
}

struct Model {
    config: JailConfig,
    clock: Option<Time>,
    /// Every failure since the address's last ban: (event time clamped to the clock, weight).
    failures: HashMap<IpAddr, Vec<(Time, u64)>>,
    bans: HashMap<IpAddr, ModelBan>,
    history: HashMap<IpAddr, Vec<Time>>,
}

impl Model {
    fn new(config: JailConfig) -> Model {
        Model {
            config,
            clock: None,
            failures: HashMap::new(),
            bans: HashMap::new(),
            history: HashMap::new(),
        }
    }

    /// Moves the clock (held when `now` goes back) and returns the expired bans in the
    /// engine's documented order: by deadline, then target.
    fn advance(&mut self, now: Time) -> Vec<IpAddr> {
        let clock = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(clock);
        let mut expired: Vec<(Time, IpAddr)> = self
            .bans
            .values()
            .filter_map(|b| b.until.filter(|u| *u <= clock).map(|u| (u, b.target)))
            .collect();
        expired.sort_by_key(|&(u, a)| (u, IpNet::from(a)));
        for (_, a) in &expired {
            self.bans.remove(a);
        }
        expired.into_iter().map(|(_, a)| a).collect()
    }

    /// Length of ban `n` by the letter of the rule, in integer seconds.
    fn length(&self, n: u32) -> Option<Duration> {
        if self.config.permanent_after.is_some_and(|k| n >= k) {
            return None;
        }
        let mut secs = u128::from(self.config.bantime.as_secs());
        let max = u128::from(self.config.maxtime.as_secs());
        for _ in 1..n {
            secs = (secs * self.config.factor as u128).min(max * 4);
        }
        Some(Duration::from_secs(secs.min(max) as u64))
    }

    fn event(&mut self, now: Time, e: &Event) -> (Vec<IpAddr>, Option<ModelBan>) {
        let expired = self.advance(now);
        let clock = self.clock.unwrap();
        if !matches!(e.kind, EventKind::Attempt | EventKind::Probe)
            || self.bans.contains_key(&e.addr)
        {
            return (expired, None);
        }
        let list = self.failures.entry(e.addr).or_default();
        list.push((e.time.min(clock), u64::from(e.total_weight().0)));
        let cutoff = clock.saturating_sub(self.config.findtime);
        let sum: u64 = list
            .iter()
            .filter(|(t, _)| *t >= cutoff)
            .map(|(_, w)| w)
            .sum();
        let allowlisted = self.config.allowlist.iter().any(|n| n.contains(&e.addr));
        if sum < u64::from(self.config.maxretry.0) || allowlisted {
            return (expired, None);
        }
        let hcut = clock.saturating_sub(self.config.history);
        let starts = self.history.entry(e.addr).or_default();
        let n = starts.iter().filter(|s| **s >= hcut).count() as u32 + 1;
        starts.push(clock);
        let ban = ModelBan {
            target: e.addr,
            since: clock,
            until: self.length(n).map(|d| clock.saturating_add(d)),
            ban_no: n,
        };
        self.failures.remove(&e.addr);
        self.bans.insert(e.addr, ban.clone());
        (expired, Some(ban))
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(s.unsigned_abs())
}

fn shift(t: Time, s: i64) -> Time {
    if s >= 0 {
        t.saturating_add(secs(s))
    } else {
        t.saturating_sub(secs(s))
    }
}

fn make_event(addr: usize, kind: EventKind, weight: u32, count: u32, time: Time) -> Event {
    Event {
        time,
        addr: ip(ADDRS[addr]),
        kind,
        weight: Weight(weight),
        count,
        user: Some("root".into()),
        user_exists: None,
        method: None,
        pid: None,
        rule: 0,
    }
}

/// Splits the engine's decisions into expired targets and bans.
fn split(decisions: Vec<Decision>) -> (Vec<IpAddr>, Vec<ModelBan>) {
    let mut expired = Vec::new();
    let mut bans = Vec::new();
    for d in decisions {
        match d {
            Decision::Unban {
                target,
                reason: UnbanReason::Expired,
                ..
            } => expired.push(target.addr()),
            Decision::Ban(b) => {
                assert!(matches!(b.reason, BanReason::Threshold { .. }));
                bans.push(ModelBan {
                    target: b.target.addr(),
                    since: b.since,
                    until: b.until,
                    ban_no: b.ban_no,
                })
            }
            other => panic!("unexpected decision {other:?}"),
        }
    }
    (expired, bans)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Bans exactly when the window holds >= maxretry weighted attempts, with the model's
    /// lengths and numbers, and expires exactly what the model expires.
    #[test]
    fn engine_matches_the_reference_model(config in config(), ops in prop::collection::vec(op(), 1..300)) {
        let mut engine = JailEngine::new(config.clone(), Restored::default());
        let mut model = Model::new(config);
        let mut now = EPOCH;
        for op in ops {
            match op {
                Op::Event { addr, kind, weight, count, step, lag } => {
                    now = shift(now, step);
                    let e = make_event(addr, kind, weight, count, shift(now, -lag));
                    engine.handle_event(now, &e);
                    let (expired, ban) = model.event(now, &e);
                    let (got_expired, got_bans) = split(drain(&mut engine));
                    prop_assert_eq!(got_expired, expired);
                    prop_assert_eq!(got_bans, ban.into_iter().collect::<Vec<_>>());
                }
                Op::Timeout { step } => {
                    now = shift(now, step);
                    engine.handle_timeout(now);
                    let expired = model.advance(now);
                    let (got_expired, got_bans) = split(drain(&mut engine));
                    prop_assert_eq!(got_expired, expired);
                    prop_assert!(got_bans.is_empty());
                }
            }
            for a in ADDRS {
                let a = ip(a);
                let cutoff = model.clock.unwrap().saturating_sub(model.config.findtime);
                let want: u64 = model.failures.get(&a).map_or(0, |l| {
                    l.iter().filter(|(t, _)| *t >= cutoff).map(|(_, w)| w).sum()
                });
                prop_assert_eq!(u64::from(engine.score(a).0), want, "score of {}", a);
                prop_assert_eq!(engine.banned_by(a).is_some(), model.bans.contains_key(&a));
            }
        }
    }

    /// Whatever the config, ban n+1 is never shorter than ban n, and bans from
    /// `permanent_after` on are permanent.
    #[test]
    fn lengths_never_shrink_and_turn_permanent(
        bantime in 0u64..10_000_000,
        maxtime in 0u64..10_000_000,
        factor in prop_oneof![0.0f64..5.0, Just(f64::NAN), Just(f64::INFINITY), Just(1.0)],
        permanent_after in prop::option::of(0u32..10),
    ) {
        let mut c = JailConfig::new("t");
        // The slow signals have their own tests (slow.rs).
        c.long_window = None;
        c.max_users = None;
        c.bantime = Duration::from_millis(bantime);
        c.maxtime = Duration::from_millis(maxtime);
        c.factor = factor;
        c.permanent_after = permanent_after;
        let mut last = Some(Duration::ZERO);
        for n in 1..60 {
            let len = ban_length(&c, n);
            // None (permanent) is the longest.
            prop_assert!(match (last, len) {
                (Some(a), Some(b)) => a <= b,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            }, "ban {} shrank: {:?} -> {:?}", n, last, len);
            prop_assert_eq!(len.is_none(), permanent_after.is_some_and(|k| n >= k));
            if let Some(l) = len {
                prop_assert!(l <= c.maxtime);
            }
            last = len;
        }
    }

    /// End to end: automatic bans of one offender never get shorter as its ban number grows,
    /// and are permanent exactly from `permanent_after`.
    #[test]
    fn escalation_in_the_engine_is_monotone(config in config(), gaps in prop::collection::vec(0i64..6000, 1..30)) {
        let mut engine = JailEngine::new(config.clone(), Restored::default());
        let mut now = EPOCH;
        let mut bans = Vec::new();
        for gap in gaps {
            now = shift(now, gap);
            for _ in 0..5 {
                engine.handle_event(now, &make_event(1, EventKind::Attempt, 1000, 1, now));
            }
            bans.extend(split(drain(&mut engine)).1);
        }
        for w in bans.windows(2) {
            let len = |b: &ModelBan| b.until.map(|u| u.since(b.since));
            if w[1].ban_no > w[0].ban_no {
                prop_assert!(len(&w[0]).is_some_and(|a| len(&w[1]).is_none_or(|b| a <= b)));
            }
        }
        for b in &bans {
            prop_assert_eq!(b.until.is_none(), config.permanent_after.is_some_and(|k| b.ban_no >= k));
        }
    }

    /// No decision ever bans an allowlisted address: not by threshold, not by IPv6
    /// aggregation, not by an unforced manual ban (which must be refused instead). Time may
    /// go backward; bans never end before their deadline.
    #[test]
    fn allowlist_holds_and_time_going_backward_is_safe(
        ops in prop::collection::vec((0usize..12, 0u8..6, -5000i64..3000, any::<bool>()), 1..300),
    ) {
        let mut c = JailConfig::new("allow");
        // The slow signals have their own tests (slow.rs).
        c.long_window = None;
        c.max_users = None;
        c.maxretry = Weight(2000);
        c.v6_net_threshold = Some(2);
        c.protect_after_success = Some(Duration::from_secs(300));
        c.allowlist = vec![
            "192.0.2.0/31".parse().unwrap(),
            "2001:db8:1::1/128".parse().unwrap(),
        ];
        let addrs: Vec<IpAddr> = [
            "192.0.2.1", "192.0.2.0", "192.0.2.2", "192.0.2.3", "::ffff:192.0.2.1",
            "2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3", "2001:db8:1::4",
            "2001:db8:2::1", "2001:db8:2::2", "2001:db8:2::3",
        ].iter().map(|a| ip(a)).collect();
        let allowlist = c.allowlist.clone();
        let overlaps = |t: &IpNet| allowlist.iter().any(|a| a.contains(t) || t.contains(a));
        let mut engine = JailEngine::new(c, Restored::default());
        let mut now = EPOCH;
        let mut max_now: Option<Time> = None;
        let mut untils: HashMap<IpNet, Option<Time>> = HashMap::new();
        for (a, what, step, flag) in ops {
            now = shift(now, step);
            max_now = Some(max_now.map_or(now, |m| m.max(now)));
            let held = max_now.unwrap();
            let addr = addrs[a];
            match what {
                0..=2 => {
                    let kind = if what == 2 { EventKind::Probe } else { EventKind::Attempt };
                    let mut e = make_event(0, kind, 1000, 1, shift(now, -(step % 700)));
                    e.addr = addr;
                    engine.handle_event(now, &e);
                }
                3 => {
                    let mut e = make_event(0, EventKind::Success, 0, 1, now);
                    e.addr = addr;
                    engine.handle_event(now, &e);
                }
                4 => engine.handle_timeout(now),
                _ => {
                    let prefix = if addr.is_ipv4() { 31 } else { 64 };
                    let target = if flag { IpNet::from(addr) } else {
                        IpNet::new(addr, prefix).unwrap().trunc()
                    };
                    let target = crate::jail::engine::normalize_net(target);
                    let r = engine.handle_command(now, Command::Ban {
                        target, duration: None, permanent: false, force: false,
                    });
                    prop_assert_eq!(r.is_err(), overlaps(&target), "{}", target);
                }
            }
            prop_assert_eq!(engine.now(), max_now);
            for d in drain(&mut engine) {
                match d {
                    Decision::Ban(b) => {
                        prop_assert!(!overlaps(&b.target), "banned {:?}", b);
                        prop_assert_eq!(b.since, held);
                        untils.insert(b.target, b.until);
                    }
                    Decision::Unban { target, reason: UnbanReason::Expired, .. } => {
                        let until = untils.remove(&target).flatten();
                        prop_assert!(until.is_some_and(|u| u <= held), "{} early", target);
                    }
                    Decision::Unban { target, .. } => { untils.remove(&target); }
                    Decision::Alert(_) => {}
                }
            }
            for b in engine.active_bans() {
                prop_assert!(b.until.is_none_or(|u| u > held));
            }
        }
    }
}
