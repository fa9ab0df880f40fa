//! Random operation sequences against one jail engine: random config, events, timeouts and
//! commands, with time jumping back and forth. Besides "never panics", it checks the
//! engine's promises after every operation:
//! - the engine clock is the largest `now` seen;
//! - no automatic ban (threshold or aggregate) and no unforced manual ban covers an
//!   allowlisted address, and unforced manual bans of such targets are refused;
//! - a ban expires only once the clock reached its end, and no active ban is past its end;
//! - ban numbers start at 1, and `poll_timeout` is always in the future (no livelock).
//!
//! `cargo fuzz run -s none jail_ops` (stable) or `RUSTC_BOOTSTRAP=1 cargo fuzz run jail_ops`.

#![no_main]

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use portcullis_core::event::{BanReason, Decision, Event, EventKind, UnbanReason, Weight};
use portcullis_core::jail::{Command, JailConfig, JailEngine, Restored};
use portcullis_core::time::Time;

/// Addresses the operations pick from: loopback (allowlisted), an allowlisted /31, IPv4-mapped
/// forms, and several hosts in two IPv6 /64s (one with an allowlisted member).
const ADDRS: [&str; 16] = [
    "127.0.0.1",
    "::1",
    "192.0.2.0",
    "192.0.2.1",
    "::ffff:192.0.2.1",
    "192.0.2.2",
    "198.51.100.7",
    "::ffff:198.51.100.7",
    "203.0.113.200",
    "2001:db8:1::1",
    "2001:db8:1::2",
    "2001:db8:1::3",
    "2001:db8:2::1",
    "2001:db8:2::2",
    "2001:db8:2::3",
    "2001:db8:2::4",
];

#[derive(Arbitrary, Debug)]
struct Settings {
    maxretry: u16,
    findtime: u16,
    bantime: u32,
    factor: u8,
    maxtime: u32,
    permanent_after: Option<u8>,
    history: u32,
    v6_net_threshold: Option<u8>,
    v6_prefix: u8,
    breach_after: Option<u8>,
    protect_after_success: Option<u16>,
    protect_budget: u8,
    alert_root_login: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// An event; the clock moves `step` s, the event is stamped `lag` s before it.
    Event {
        addr: u8,
        kind: u8,
        weight: u16,
        count: u8,
        step: i16,
        lag: i16,
        root: bool,
    },
    Timeout {
        step: i32,
    },
    Ban {
        addr: u8,
        prefix: u8,
        secs: Option<u16>,
        permanent: bool,
        force: bool,
    },
    Unban {
        addr: u8,
        prefix: u8,
    },
    UnbanAll,
    Flush,
}

#[derive(Arbitrary, Debug)]
struct Input {
    settings: Settings,
    ops: Vec<Op>,
}

fn config(s: &Settings) -> JailConfig {
    let mut c = JailConfig::new("fuzz");
    c.maxretry = Weight(u32::from(s.maxretry));
    c.findtime = Duration::from_secs(u64::from(s.findtime));
    c.bantime = Duration::from_secs(u64::from(s.bantime));
    c.factor = f64::from(s.factor) / 16.0;
    c.maxtime = Duration::from_secs(u64::from(s.maxtime));
    c.permanent_after = s.permanent_after.map(u32::from);
    c.history = Duration::from_secs(u64::from(s.history));
    c.allowlist.push("192.0.2.0/31".parse().expect("literal"));
    c.allowlist
        .push("2001:db8:1::1/128".parse().expect("literal"));
    c.v6_net_threshold = s.v6_net_threshold.map(u32::from);
    c.v6_prefix = s.v6_prefix % 129;
    c.breach_after = s.breach_after.map(u32::from);
    c.protect_after_success = s
        .protect_after_success
        .map(|x| Duration::from_secs(u64::from(x)));
    c.protect_budget = u32::from(s.protect_budget % 8).max(1);
    c.alert_root_login = s.alert_root_login;
    c
}

fn addr(i: u8) -> IpAddr {
    ADDRS[usize::from(i) % ADDRS.len()]
        .parse()
        .expect("literal")
}

fn shift(t: Time, secs: i64) -> Time {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        t.saturating_add(d)
    } else {
        t.saturating_sub(d)
    }
}

/// `addr/prefix` (prefix taken modulo the family's width + 1), host bits cleared.
fn target(addr: IpAddr, prefix: u8) -> IpNet {
    let width = if addr.is_ipv4() { 33 } else { 129 };
    IpNet::new(addr, prefix % width)
        .expect("prefix in range")
        .trunc()
}

/// The target as the engine normalises it (IPv4-mapped IPv6 becomes IPv4).
fn normal(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                .expect("prefix in range")
                .trunc(),
            None => net,
        },
        _ => net,
    }
}

fuzz_target!(|input: Input| {
    let config = config(&input.settings);
    let allowlist = config.allowlist.clone();
    let overlaps = |t: &IpNet| allowlist.iter().any(|a| a.contains(t) || t.contains(a));
    let mut engine = JailEngine::new(config, Restored::default());
    let mut now = Time::from_secs(1_767_225_600);
    let mut clock: Option<Time> = None;
    let mut untils: HashMap<IpNet, Option<Time>> = HashMap::new();
    for op in input.ops.iter().take(2000) {
        let mut forced = None;
        match *op {
            Op::Event {
                addr: a,
                kind,
                weight,
                count,
                step,
                lag,
                root,
            } => {
                now = shift(now, i64::from(step));
                let event = Event {
                    time: shift(now, -i64::from(lag)),
                    addr: addr(a),
                    kind: [
                        EventKind::Attempt,
                        EventKind::Probe,
                        EventKind::Success,
                        EventKind::Info,
                    ][usize::from(kind % 4)],
                    weight: Weight(u32::from(weight)),
                    count: u32::from(count),
                    user: Some(if root { "root" } else { "x" }.into()),
                    user_exists: None,
                    method: None,
                    pid: None,
                    rule: 0,
                };
                engine.handle_event(now, &event);
            }
            Op::Timeout { step } => {
                now = shift(now, i64::from(step));
                engine.handle_timeout(now);
            }
            Op::Ban {
                addr: a,
                prefix,
                secs,
                permanent,
                force,
            } => {
                let t = target(addr(a), prefix);
                let cmd = Command::Ban {
                    target: t,
                    duration: secs.map(|s| Duration::from_secs(u64::from(s))),
                    permanent,
                    force,
                };
                let r = engine.handle_command(now, cmd);
                let t = normal(t);
                assert_eq!(r.is_err(), !force && overlaps(&t), "ban {t}: {r:?}");
                if force {
                    forced = Some(t);
                }
            }
            Op::Unban { addr: a, prefix } => {
                let t = normal(target(addr(a), prefix));
                let was = engine.active_ban(t).is_some();
                let r = engine.handle_command(now, Command::Unban { target: t });
                assert_eq!(r.is_ok(), was, "unban {t}: {r:?}");
            }
            Op::UnbanAll => {
                engine
                    .handle_command(now, Command::UnbanAll)
                    .expect("never refused");
                assert_eq!(engine.ban_count(), 0);
            }
            Op::Flush => {
                engine
                    .handle_command(now, Command::Flush)
                    .expect("never refused");
                assert_eq!(engine.tracked_addresses(), 0);
            }
        }
        let held = clock.map_or(now, |c| c.max(now));
        clock = Some(held);
        assert_eq!(engine.now(), Some(held));
        while let Some(d) = engine.poll_decision() {
            match d {
                Decision::Ban(b) => {
                    assert!(b.ban_no >= 1);
                    assert_eq!(b.since, held);
                    let manual_forced = b.reason == BanReason::Manual && forced == Some(b.target);
                    assert!(
                        manual_forced || !overlaps(&b.target),
                        "banned allowlisted {b:?}"
                    );
                    untils.insert(b.target, b.until);
                }
                Decision::Unban { target, reason, .. } => {
                    let until = untils.remove(&target).expect("unban of a ban it made");
                    if reason == UnbanReason::Expired {
                        assert!(until.is_some_and(|u| u <= held), "{target} expired early");
                    }
                }
                Decision::Alert(_) => {}
            }
        }
        assert_eq!(engine.ban_count(), untils.len());
        for b in engine.active_bans() {
            assert!(b.until.is_none_or(|u| u > held), "stale ban {b:?}");
        }
        if let Some(t) = engine.poll_timeout() {
            assert!(
                t > held || held == Time::MAX,
                "deadline {t} not after {held}"
            );
        }
    }
});
