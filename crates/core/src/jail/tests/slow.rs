//! The slow signals (issue 12, item 5): the long window against slow brute force and the
//! distinct-user-names signal against enumeration, one test per rule and properties over
//! random event sequences.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;

use super::sim::*;
use crate::event::{BanReason, Decision, Event, Weight};
use crate::jail::slow::{MAX_LONG_BUCKETS, bucket_start, bucket_width};
use crate::jail::{JailConfig, JailEngine, Restored};
use crate::time::Time;

const DAY: u64 = 86_400;

/// The shipped sshd defaults (5 in 10 min, 20 in 1 day, 5 distinct users), with escalation
/// and the alerts out of the way.
fn slow_config() -> JailConfig {
    let mut c = JailConfig::new("sshd");
    assert_eq!(
        c.long_window,
        Some((Weight(20_000), Duration::from_secs(DAY)))
    );
    assert_eq!(c.max_users, Some(5));
    c.permanent_after = None;
    c.breach_after = None;
    c.alert_root_login = false;
    c.v6_net_threshold = None;
    c
}

/// A failure of `weight` thousandths naming `user`.
fn failure(addr: &str, user: Option<&str>, weight: u32, time: Time) -> Event {
    Event {
        weight: Weight(weight),
        user: user.map(Into::into),
        ..attempt(addr, time)
    }
}

#[test]
fn a_slow_attacker_is_banned_by_the_long_window_not_the_short_one() {
    // One attempt every 10 minutes for a day: never more than 2 in any 10 minutes.
    let mut sim = Sim::new(slow_config());
    sim.attempts("203.0.113.9", 0, 600, 144);
    sim.drive();
    let bans = sim.bans();
    let (t, ban) = &bans[0];
    // The 20th attempt, at 19 × 10 min, reaches slow_maxretry.
    assert_eq!(*t, at(19 * 600));
    assert_eq!(
        ban.reason,
        BanReason::SlowThreshold {
            score: Weight(20_000)
        }
    );
    // It comes back after each ban and is banned again, escalating, never by the short
    // window: 20 more attempts (the ban cleared the window) past each ban's end.
    assert_eq!(bans.len(), 5, "{bans:?}");
    assert!(bans.iter().all(|(_, b)| b.reason
        == BanReason::SlowThreshold {
            score: Weight(20_000)
        }));
    assert_eq!(
        bans.iter().map(|(_, b)| b.ban_no).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // Without the long window, the same attacker is never banned.
    let mut c = slow_config();
    c.long_window = None;
    let mut sim = Sim::new(c);
    sim.attempts("203.0.113.9", 0, 600, 144);
    sim.drive();
    assert!(sim.bans().is_empty());
    assert_eq!(sim.engine.long_score(ip("203.0.113.9")), Weight::ZERO);
}

#[test]
fn the_long_window_forgets_after_slow_findtime_plus_at_most_one_bucket() {
    let mut c = slow_config();
    c.long_window = Some((Weight(3000), Duration::from_secs(4800))); // 100 s buckets
    c.max_users = None;
    let mut sim = Sim::new(c);
    sim.attempts("192.0.2.1", 0, 1000, 2).run_until(at(1000));
    assert_eq!(sim.engine.long_score(ip("192.0.2.1")), Weight(2000));
    // At 4899 s the cutoff (99 s) is still in the bucket of the first attempt.
    sim.run_until(at(4899));
    assert_eq!(sim.engine.long_score(ip("192.0.2.1")), Weight(2000));
    sim.run_until(at(4900));
    assert_eq!(sim.engine.long_score(ip("192.0.2.1")), Weight(1000));
    // The third attempt now makes 2, not 3: no ban.
    sim.push(attempt("192.0.2.1", at(4900)));
    sim.run_until(at(4900));
    assert!(sim.bans().is_empty());
    assert_eq!(sim.engine.long_score(ip("192.0.2.1")), Weight(2000));
}

#[test]
fn an_enumerator_is_banned_by_distinct_user_names() {
    // Six names at 0.5 each: 3 attempts of weight in all, under maxretry 5.
    let mut sim = Sim::new(slow_config());
    let names = ["admin", "oracle", "test", "ubuntu", "pi", "git"];
    for (i, u) in names.iter().enumerate() {
        sim.push(failure("198.51.100.4", Some(u), 500, at(10 * i as i64)));
    }
    sim.drive();
    let bans = sim.bans();
    assert_eq!(bans.len(), 1, "{bans:?}");
    // Banned at the fifth distinct name (max_users = 5), at 2.5 attempts of weight.
    assert_eq!(bans[0].0, at(40));
    assert_eq!(bans[0].1.reason, BanReason::UserNames { users: 5 });
}

#[test]
fn a_user_retrying_their_own_name_is_not_banned_by_it() {
    let mut sim = Sim::new(slow_config());
    for i in 0..9 {
        sim.push(failure("198.51.100.5", Some("alice"), 500, at(30 * i)));
    }
    sim.drive();
    assert!(sim.bans().is_empty(), "{:?}", sim.bans());
    assert_eq!(sim.engine.distinct_users(ip("198.51.100.5")), 0, "swept");
    // Four distinct names (a few typos) are under max_users too.
    let mut sim = Sim::new(slow_config());
    for (i, u) in ["alice", "alcie", "Alice", "alice2"].iter().enumerate() {
        sim.push(failure("198.51.100.6", Some(u), 500, at(i as i64)));
    }
    sim.run_until(at(10));
    assert!(sim.bans().is_empty());
    assert_eq!(sim.engine.distinct_users(ip("198.51.100.6")), 4);
}

#[test]
fn distinct_names_count_within_findtime_only() {
    // Five names, each 11 minutes apart: never more than one within findtime.
    let mut sim = Sim::new(slow_config());
    for (i, u) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        sim.push(failure("198.51.100.7", Some(u), 200, at(660 * i as i64)));
    }
    sim.drive();
    assert!(sim.bans().is_empty(), "{:?}", sim.bans());
}

#[test]
fn allowlisted_addresses_are_never_banned_by_the_slow_signals() {
    let mut c = slow_config();
    c.allowlist.push("192.0.2.0/24".parse().unwrap());
    let mut sim = Sim::new(c);
    sim.attempts("192.0.2.50", 0, 600, 144);
    for i in 0..50 {
        sim.push(failure("192.0.2.51", Some(&format!("user{i}")), 100, at(i)));
    }
    sim.drive();
    assert!(sim.bans().is_empty(), "{:?}", sim.bans());
    assert!(sim.engine.stats().allowlisted > 0);
    // Their name set stays at max_users however many names they try.
    assert!(sim.engine.distinct_users(ip("192.0.2.51")) <= 5);
}

#[test]
fn a_login_protection_forgives_the_slow_signals_as_it_does_the_short_window() {
    // alice logs in cleanly, then mistypes her password once every 10 minutes for hours
    // (well inside protect_budget = 3 × maxretry per day... until it is not).
    let mut sim = Sim::new(slow_config());
    sim.push(success("198.51.100.8", "alice", at(0)));
    for i in 1..=14 {
        sim.push(attempt_as("198.51.100.8", "alice", at(600 * i)));
    }
    sim.run_until(at(600 * 14));
    // 14 forgiven failures: no long-window ban at 20 either way, and nothing counted.
    assert!(sim.bans().is_empty(), "{:?}", sim.bans());
    assert_eq!(sim.engine.long_score(ip("198.51.100.8")), Weight::ZERO);
    assert_eq!(sim.engine.stats().protected, 14);
    // The 15th reaches the budget (3 × 5): banned anyway, by the protection rule.
    sim.push(attempt_as("198.51.100.8", "alice", at(600 * 15)));
    sim.run_until(at(600 * 15));
    assert_eq!(sim.bans().len(), 1);
    assert_eq!(sim.engine.stats().protection_exhausted, 1);

    // Failures naming other users from the protected address count as usual: the
    // enumerator behind alice's NAT is banned by its names.
    let mut sim = Sim::new(slow_config());
    sim.push(success("198.51.100.9", "alice", at(0)));
    for (i, u) in ["alice", "root", "admin", "test", "oracle", "pi"]
        .iter()
        .enumerate()
    {
        sim.push(failure("198.51.100.9", Some(u), 500, at(1 + i as i64)));
    }
    sim.drive();
    let bans = sim.bans();
    assert_eq!(bans.len(), 1, "{bans:?}");
    // alice's name is forgiven, so the fifth *other* name bans.
    assert_eq!(bans[0].1.reason, BanReason::UserNames { users: 5 });
    assert_eq!(bans[0].0, at(6));
}

#[test]
fn a_ban_clears_the_slow_signals_and_a_flush_too() {
    let mut sim = Sim::new(slow_config());
    // 4 in 10 minutes, 3 times: 12 in the long window, never a short ban.
    for block in 0..3 {
        sim.attempts("203.0.113.20", block * 1200, 60, 4);
    }
    sim.run_until(at(2 * 1200 + 180));
    assert!(sim.bans().is_empty());
    assert_eq!(sim.engine.long_score(ip("203.0.113.20")), Weight(12_000));
    // A burst of 5: the short window bans (Threshold, not slow) and clears both.
    sim.attempts("203.0.113.20", 6000, 1, 5);
    sim.run_until(at(6004));
    let bans = sim.bans();
    assert_eq!(bans.len(), 1);
    assert!(matches!(bans[0].1.reason, BanReason::Threshold { .. }));
    assert_eq!(sim.engine.long_score(ip("203.0.113.20")), Weight::ZERO);

    let mut sim = Sim::new(slow_config());
    sim.attempts("203.0.113.21", 0, 600, 10).run_until(at(5400));
    assert_eq!(sim.engine.long_score(ip("203.0.113.21")), Weight(10_000));
    sim.command(crate::jail::Command::Flush).unwrap();
    assert_eq!(sim.engine.long_score(ip("203.0.113.21")), Weight::ZERO);
}

#[test]
fn the_long_window_survives_a_restart_through_window_changes() {
    let mut engine = JailEngine::new(slow_config(), Restored::default());
    engine.track_window_changes();
    let mut stored = HashMap::new();
    for i in 0..15 {
        let t = at(600 * i);
        engine.handle_event(t, &attempt("203.0.113.30", t));
        for w in engine.poll_window_changes() {
            stored.insert(w.addr, w);
        }
    }
    assert!(drain(&mut engine).is_empty());
    let w = &stored[&ip("203.0.113.30")];
    // The short window holds the last two (600 s apart: both ends are inside).
    assert_eq!(w.entries.len(), 2);
    let slow_sum: u32 = w.slow.iter().map(|b| b.weight.0).sum();
    assert_eq!(slow_sum, 15_000);
    let width = bucket_width(Duration::from_secs(DAY));
    let last_bucket = bucket_start(at(600 * 14), width);
    assert_eq!(
        w.until,
        Time::from_micros(last_bucket.as_micros() + width + DAY as i64 * 1_000_000)
    );
    // A new engine from the stored rows counts on: 5 more attempts, one every 10 min, ban.
    let restored = Restored {
        windows: stored.into_values().collect(),
        ..Restored::default()
    };
    let mut sim = Sim::restored(slow_config(), restored);
    sim.run_until(at(600 * 15));
    assert_eq!(sim.engine.long_score(ip("203.0.113.30")), Weight(15_000));
    sim.attempts("203.0.113.30", 600 * 15, 600, 5)
        .run_until(at(600 * 19));
    let bans = sim.bans();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].0, at(600 * 19));
    assert!(matches!(bans[0].1.reason, BanReason::SlowThreshold { .. }));
}

// ---- properties ----

const ADDRS: [&str; 4] = ["192.0.2.1", "192.0.2.2", "198.51.100.1", "2001:db8::1"];
const USERS: [&str; 8] = [
    "root", "admin", "alice", "bob", "pi", "git", "test", "ubuntu",
];

#[derive(Clone, Debug)]
struct Op {
    addr: usize,
    user: Option<usize>,
    weight: u32,
    step: i64,
    lag: i64,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..ADDRS.len(),
        prop::option::of(0..USERS.len()),
        prop_oneof![Just(200u32), Just(500), Just(1000), Just(2000)],
        0i64..1200,
        -900i64..60,
    )
        .prop_map(|(addr, user, weight, step, lag)| Op {
            addr,
            user,
            weight,
            step,
            lag,
        })
}

fn config() -> impl Strategy<Value = JailConfig> {
    (
        prop_oneof![Just(3000u32), Just(5000)],
        60u64..900,
        prop_oneof![Just(8000u32), Just(20_000)],
        3600u64..(2 * DAY),
        prop::option::of(2u32..6),
    )
        .prop_map(|(maxretry, findtime, slow, slow_findtime, users)| {
            let mut c = JailConfig::new("prop");
            c.maxretry = Weight(maxretry);
            c.findtime = Duration::from_secs(findtime);
            c.bantime = Duration::from_secs(300);
            c.long_window = Some((Weight(slow), Duration::from_secs(slow_findtime)));
            c.max_users = users;
            c.v6_net_threshold = None;
            c.breach_after = None;
            c.protect_after_success = None;
            c.alert_root_login = false;
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For random failure sequences: the engine's long score equals a naive recomputation at
    /// bucket granularity over the address's failures since its last ban; every ban reached
    /// the threshold its reason names; state per address stays bounded.
    #[test]
    fn slow_signals_match_a_naive_model(config in config(), ops in prop::collection::vec(op(), 1..150)) {
        let (slow_max, slow_findtime) = config.long_window.unwrap();
        let width = bucket_width(slow_findtime);
        let mut engine = JailEngine::new(config.clone(), Restored::default());
        // Failures since the address's last ban: (time held at the clock, weight).
        let mut since_ban: HashMap<IpAddr, Vec<(Time, u32)>> = HashMap::new();
        let mut banned_until: HashMap<IpAddr, Time> = HashMap::new();
        let mut now = at(0);
        for o in ops {
            now = Time::from_micros(now.as_micros() + o.step * 1_000_000);
            let addr = ip(ADDRS[o.addr]);
            let time = Time::from_micros(now.as_micros() + o.lag * 1_000_000);
            let ev = failure(ADDRS[o.addr], o.user.map(|u| USERS[u]), o.weight, time);
            engine.handle_event(now, &ev);
            let long_cutoff = now.saturating_sub(slow_findtime);
            let first = bucket_start(long_cutoff, width);
            let banned_now = banned_until.get(&addr).is_some_and(|u| *u > now);
            let held = time.min(now);
            if !banned_now && held >= long_cutoff {
                since_ban.entry(addr).or_default().push((held, o.weight));
            }
            let naive = |list: &[(Time, u32)]| -> u64 {
                list.iter()
                    .filter(|(t, _)| bucket_start(*t, width) >= first)
                    .map(|(_, w)| u64::from(*w))
                    .sum()
            };
            for d in drain(&mut engine) {
                let Decision::Ban(b) = d else { continue };
                let target = b.target.addr();
                prop_assert_eq!(target, addr, "only the event's address is banned");
                match b.reason {
                    BanReason::Threshold { score } => {
                        prop_assert!(score >= config.maxretry);
                    }
                    BanReason::SlowThreshold { score } => {
                        prop_assert!(score >= slow_max);
                        let model = naive(since_ban.get(&addr).map_or(&[][..], |v| v));
                        prop_assert_eq!(u64::from(score.0), model);
                    }
                    BanReason::UserNames { users } => {
                        prop_assert!(users >= config.max_users.unwrap());
                    }
                    other => prop_assert!(false, "unexpected reason {:?}", other),
                }
                since_ban.remove(&addr);
                banned_until.insert(addr, b.until.unwrap_or(Time::MAX));
            }
            // Not banned: the score is the naive one, and below the threshold.
            if engine.banned_by(addr).is_none() {
                let model = naive(since_ban.get(&addr).map_or(&[][..], |v| v));
                prop_assert_eq!(u64::from(engine.long_score(addr).0), model);
                prop_assert!(model < u64::from(slow_max.0));
            }
            for a in ADDRS {
                let a = ip(a);
                if let Some(s) = engine.slow_of(a) {
                    prop_assert!(s.long.buckets().len() <= MAX_LONG_BUCKETS);
                    prop_assert!(s.users.len() <= config.max_users.map_or(0, |m| m as usize));
                }
            }
        }
    }
}

#[test]
fn memory_per_address_is_bounded_for_a_day_of_slow_traffic() {
    // 1000 addresses, each failing with a new name every 7 minutes for a day at a weight
    // that never reaches a threshold: each keeps at most MAX_LONG_BUCKETS buckets and
    // max_users - 1 names (the next name would ban).
    let mut c = slow_config();
    c.long_window = Some((Weight(u32::MAX), Duration::from_secs(DAY)));
    c.max_users = Some(1000);
    let mut engine = JailEngine::new(c, Restored::default());
    for step in 0..(DAY as i64 / 420) {
        let t = at(step * 420);
        for a in 0..1000u32 {
            let addr = std::net::Ipv4Addr::from(0xC000_0200 + a).to_string();
            let ev = failure(&addr, Some(&format!("u{step}")), 1, t);
            engine.handle_event(t, &ev);
        }
    }
    assert!(drain(&mut engine).is_empty());
    assert_eq!(engine.slow_addresses().count(), 1000);
    for s in engine.slow_addresses().map(|a| engine.slow_of(a).unwrap()) {
        assert!(s.long.buckets().len() <= MAX_LONG_BUCKETS);
        // Names within findtime (10 min) at one per 7 min: at most 2.
        assert!(s.users.len() <= 2, "{}", s.users.len());
    }
}
