//! Hours of mixed traffic through the simulator, with answers worked out by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sim::*;
use crate::event::{Ban, Decision, EventKind, UnbanReason, Weight};
use crate::jail::JailConfig;

/// Address `i` of 198.51.0.0/16.
fn v4(i: u32) -> String {
    IpAddr::V4(Ipv4Addr::from(0xC633_0000 + i)).to_string()
}

/// The index `i` of a `v4(i)` address.
fn index(b: &Ban) -> Option<u32> {
    match b.target.addr() {
        IpAddr::V4(a) if b.target.prefix_len() == 32 => u32::from(a).checked_sub(0xC633_0000),
        _ => None,
    }
}

#[test]
fn hours_of_mixed_traffic() {
    // Shipped defaults: 5 in 10 min, 10 min doubling, 3rd ban permanent, /64 after 4,
    // breach after 3 failures, a day of protection after a clean login.
    let mut sim = Sim::new(JailConfig::new("sshd"));
    let mut events = Vec::new();
    // 1000 brute-forcers (0..1000): 12 attempts 2 s apart, three waves an hour apart.
    for wave in 0..3 {
        for a in 0..1000u32 {
            for k in 0..12 {
                let t = wave * 3600 + i64::from(a % 60) * 30 + k * 2;
                events.push(attempt(&v4(a), at(t)));
            }
        }
    }
    // 200 scanners, half-weight probes for four hours: 100 (10_000..10_100) every 67 s,
    // at most 9 in any 600 s (4.5 attempts: never banned by the short window), and 100 (10_100..10_200) every
    // 66 s, 10 in 594 s (exactly 5: banned at the 10th probe).
    for s in 0..200u32 {
        let every = if s < 100 { 67 } else { 66 };
        for k in 0..(4 * 3600 / every) {
            let mut e = event(
                EventKind::Probe,
                &v4(10_000 + s),
                at(k * every + i64::from(s)),
            );
            e.weight = Weight(500);
            events.push(e);
        }
    }
    // 200 users (20_000..20_200): two typos, a login, then six failures of a script.
    for u in 0..200u32 {
        let a = v4(20_000 + u);
        let t0 = i64::from(u) * 100;
        events.push(attempt(&a, at(t0)));
        events.push(attempt(&a, at(t0 + 5)));
        events.push(success(&a, "alice", at(t0 + 10)));
        for k in 0..6 {
            events.push(attempt_as(&a, "alice", at(t0 + 20 + k)));
        }
    }
    // An IPv6 botnet: 6 hosts of 2001:db8:7::/64, 5 attempts each, 10 s apart.
    for h in 1..=6u16 {
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, h)).to_string();
        for k in 0..5 {
            events.push(attempt(&a, at(20_000 + i64::from(h) * 10 + k)));
        }
    }
    events.sort_by_key(|e| e.time);
    let n = events.len();
    for e in events {
        sim.push(e);
    }
    sim.drive_bounded(n + 20_000);

    let bans = sim.bans();
    // Brute-forcers: bans 1, 2 and a permanent 3rd, each at its 5th attempt of a wave.
    for wave in 1..=3u32 {
        let of_wave: Vec<_> = bans
            .iter()
            .filter(|(_, b)| index(b).is_some_and(|i| i < 1000) && b.ban_no == wave)
            .collect();
        assert_eq!(of_wave.len(), 1000, "wave {wave}");
        assert!(of_wave.iter().all(|(_, b)| b.is_permanent() == (wave == 3)));
    }
    // Scanners: the 67 s ones never; the 66 s ones three times (the last permanent).
    let scanner_bans = |lo, hi| {
        bans.iter()
            .filter(|(_, b)| index(b).is_some_and(|i| (lo..hi).contains(&i)))
            .count()
    };
    // The 67 s ones stay under maxretry per findtime, but 40 half-weight probes (about
    // 45 minutes) reach the long window's 20: three bans each, by the long window only.
    assert_eq!(scanner_bans(10_000, 10_100), 300);
    assert!(
        bans.iter()
            .filter(|(_, b)| index(b).is_some_and(|i| (10_000..10_100).contains(&i)))
            .all(|(_, b)| matches!(b.reason, crate::event::BanReason::SlowThreshold { .. }))
    );
    let slow_first = bans
        .iter()
        .find(|(_, b)| index(b) == Some(10_000))
        .map(|(t, _)| *t);
    assert_eq!(slow_first, Some(at(39 * 67)));
    assert_eq!(scanner_bans(10_100, 10_200), 300);
    let first = bans
        .iter()
        .find(|(_, b)| index(b) == Some(10_100))
        .map(|(t, _)| *t);
    assert_eq!(first, Some(at(9 * 66 + 100)));
    // Users: their six failures naming alice are forgiven by alice's clean login (within the
    // budget of 3 × 5).
    assert_eq!(scanner_bans(20_000, 20_200), 0);
    assert_eq!(sim.engine.stats().protected, 200 * 6);
    // Two typos are below breach_after (3): no breach alert, and no root logins.
    assert!(sim.alerts().is_empty(), "{:?}", sim.alerts().first());
    // Botnet: four host bans, then the /64 supersedes them and covers the rest.
    let v6: Vec<_> = bans
        .iter()
        .filter(|(_, b)| b.target.addr().is_ipv6())
        .map(|(_, b)| b.target.to_string())
        .collect();
    assert_eq!(
        v6,
        [
            "2001:db8:7::1/128",
            "2001:db8:7::2/128",
            "2001:db8:7::3/128",
            "2001:db8:7::4/128",
            "2001:db8:7::/64"
        ]
    );
    let superseded = sim
        .log
        .iter()
        .filter(|(_, d)| {
            matches!(
                d,
                Decision::Unban {
                    reason: UnbanReason::Superseded,
                    ..
                }
            )
        })
        .count();
    assert_eq!(superseded, 4);
    assert_eq!(bans.len(), 3000 + 300 + 300 + 5);
    assert_eq!(sim.engine.stats().permanent_bans, 1000 + 100 + 100);
    // Idle at the end: only the permanent bans are left, and no window.
    assert_eq!(sim.engine.ban_count(), 1200);
    assert!(sim.engine.active_bans().all(|b| b.is_permanent()));
    assert_eq!(sim.engine.tracked_addresses(), 0);
    assert_eq!(sim.engine.poll_timeout(), None);
}
