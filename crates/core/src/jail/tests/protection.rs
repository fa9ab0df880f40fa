//! Property tests of the login-protection bound (issue 10, item 3), stated over the raw
//! event sequence rather than a copy of the engine's bookkeeping:
//!
//! - **Bound.** Between two bans of an address, the failures that name a user who logged in
//!   cleanly from it (and that were in the window when they arrived) never weigh
//!   `protect_budget × maxretry` without a ban: the failure that reaches it is banned.
//! - **Other users.** Failures that name no such user (another user, or none) are counted
//!   exactly as without protection: the engine bans at the failure where their weight in
//!   the window reaches `maxretry`, and bans only then or at the bound.
//!
//! The protection lasts longer than any sequence here, so a protection never lapses between
//! bans (lapsing is a rule test).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;

use super::sim::{EPOCH, ip};
use crate::event::{Decision, Event, EventKind, Weight};
use crate::jail::{JailConfig, JailEngine, Restored};
use crate::time::Time;

const ADDRS: [&str; 3] = ["198.51.100.1", "198.51.100.2", "192.0.2.1"];
/// `192.0.2.1` is allowlisted.
const ALLOWLISTED: usize = 2;
const USERS: [Option<&str>; 4] = [Some("alice"), Some("bob"), Some("mallory"), None];

#[derive(Clone, Debug)]
struct Op {
    addr: usize,
    /// 0..=5 attempt, 6..=8 probe, 9 success.
    kind: u8,
    user: usize,
    weight: u32,
    count: u32,
    /// Clock step in seconds (may go backward).
    step: i64,
    /// How long before the clock the event is stamped (negative: from the future).
    lag: i64,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..ADDRS.len(),
        0u8..10,
        0..USERS.len(),
        prop_oneof![Just(200u32), Just(500), Just(1000), Just(1000), Just(2000)],
        0u32..4,
        -30i64..200,
        -20i64..900,
    )
        .prop_map(|(addr, kind, user, weight, count, step, lag)| Op {
            addr,
            kind,
            user,
            weight,
            count,
            step,
            lag,
        })
}

fn config() -> impl Strategy<Value = JailConfig> {
    (
        prop_oneof![Just(1000u32), Just(3000), Just(5000)],
        60u64..1200,
        1u32..5,
    )
        .prop_map(|(maxretry, findtime, budget)| {
            let mut c = JailConfig::new("protect");
            // The slow signals have their own tests (slow.rs).
            c.long_window = None;
            c.max_users = None;
            c.maxretry = Weight(maxretry);
            c.findtime = Duration::from_secs(findtime);
            c.bantime = Duration::from_secs(300);
            c.permanent_after = None;
            c.allowlist = vec!["192.0.2.1/32".parse().unwrap()];
            c.v6_net_threshold = None;
            c.breach_after = None;
            c.protect_after_success = Some(Duration::from_secs(10 * 365 * 86400));
            c.protect_budget = budget;
            c.alert_root_login = false;
            c
        })
}

/// What the oracle remembers of one address since its last ban.
#[derive(Default)]
struct Since {
    /// Users with a clean login from the address (not while it was banned).
    logged_in: HashSet<&'static str>,
    /// Failures that counted when they arrived: (time held at the clock, weight, named a
    /// logged-in user at that moment).
    failures: Vec<(Time, u64, bool)>,
}

fn shift(t: Time, s: i64) -> Time {
    let d = Duration::from_secs(s.unsigned_abs());
    if s >= 0 {
        t.saturating_add(d)
    } else {
        t.saturating_sub(d)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn protection_is_bounded_and_never_covers_other_users(
        config in config(),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let maxretry = u64::from(config.maxretry.0);
        let bound = maxretry * u64::from(config.protect_budget);
        let findtime = config.findtime;
        let mut engine = JailEngine::new(config, Restored::default());
        let mut since: HashMap<IpAddr, Since> = HashMap::new();
        let mut now = EPOCH;
        // The engine's clock: the largest `now` it was given (it starts at the first one).
        let mut clock: Option<Time> = None;
        for op in ops {
            now = shift(now, op.step);
            let clock = *clock.insert(clock.map_or(now, |c| c.max(now)));
            let addr = ip(ADDRS[op.addr]);
            // Expire what is due first, so "banned before the event" is observable.
            engine.handle_timeout(now);
            while engine.poll_decision().is_some() {}
            let banned_before = engine.banned_by(addr).is_some();
            let user = USERS[op.user];
            let kind = match op.kind {
                0..=5 => EventKind::Attempt,
                6..=8 => EventKind::Probe,
                _ => EventKind::Success,
            };
            let time = shift(now, -op.lag);
            let ev = Event {
                time,
                addr,
                kind,
                weight: if kind == EventKind::Success { Weight::ZERO } else { Weight(op.weight) },
                count: op.count,
                user: user.map(Into::into),
                user_exists: None,
                method: None,
                pid: None,
                rule: 0,
            };
            engine.handle_event(now, &ev);
            let mut banned_now = false;
            while let Some(d) = engine.poll_decision() {
                if let Decision::Ban(b) = d {
                    prop_assert_eq!(b.target, ipnet::IpNet::from(addr), "only the event's address");
                    prop_assert!(op.addr != ALLOWLISTED, "allowlisted address banned");
                    banned_now = true;
                }
            }
            let s = since.entry(addr).or_default();
            if banned_before {
                prop_assert!(!banned_now);
                continue;
            }
            match kind {
                EventKind::Success => {
                    if let Some(u) = user {
                        s.logged_in.insert(u);
                    }
                }
                _ => {
                    let held = time.min(clock);
                    let cutoff = clock.saturating_sub(findtime);
                    let weight = u64::from(op.weight) * u64::from(op.count);
                    if held >= cutoff && weight > 0 {
                        let named = user.is_some_and(|u| s.logged_in.contains(u));
                        s.failures.push((held, weight, named));
                    }
                    let named_total: u64 = s.failures.iter().filter(|f| f.2).map(|f| f.1).sum();
                    let plain_in_window: u64 = s
                        .failures
                        .iter()
                        .filter(|f| !f.2 && f.0 >= cutoff)
                        .map(|f| f.1)
                        .sum();
                    if op.addr == ALLOWLISTED {
                        prop_assert!(!banned_now);
                    } else {
                        let due = named_total >= bound || plain_in_window >= maxretry;
                        prop_assert_eq!(
                            banned_now, due,
                            "named {} (bound {}), unprotected in window {} (maxretry {})",
                            named_total, bound, plain_in_window, maxretry
                        );
                    }
                }
            }
            if banned_now {
                // A ban clears the window and ends the protection.
                since.remove(&addr);
            }
        }
    }
}
