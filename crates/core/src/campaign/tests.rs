//! Detector tests on simulated sites: a background of legitimate users (with typos) and the
//! internet's usual scanners, with and without a distributed campaign.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::*;
use crate::{EventKind, Weight};

const HOUR: i64 = 3600;
const DAY: i64 = 86400;
/// Monday 2026-11-02 00:00 UTC.
const T0: i64 = 1_793_577_600;

/// splitmix64: deterministic, good enough for a simulation.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Poisson by inversion (small means).
    fn poisson(&mut self, mean: f64) -> u64 {
        let l = (-mean).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

fn ev(t: i64, addr: IpAddr, kind: EventKind, user: &str, exists: Option<bool>) -> Event {
    Event {
        time: Time::from_secs(t),
        addr,
        kind,
        weight: if kind == EventKind::Attempt {
            Weight::ONE
        } else {
            Weight::ZERO
        },
        count: 1,
        user: Some(user.into()),
        user_exists: exists,
        method: None,
        pid: None,
        rule: 0,
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const SCANNER_NAMES: &[&str] = &[
    "root", "admin", "test", "user", "ubuntu", "oracle", "postgres", "git", "pi", "guest",
];
const CAMPAIGN_NAMES: &[&str] = &["root", "admin", "support", "deploy", "ftpuser", "nagios"];

/// The site's background for `days` days: `users` legitimate users logging in 3 times a day
/// from their own address, mistyping 10 % of the time, and `scanners_per_hour` new
/// scanner addresses an hour (1-6 tries each within minutes).
fn background(rng: &mut Rng, days: i64, users: u32, scanners_per_hour: f64) -> Vec<Event> {
    let mut out = Vec::new();
    for u in 0..users {
        let addr = v4(198, 51, 100, u as u8);
        let name = format!("user{u}");
        for d in 0..days {
            for _ in 0..3 {
                let t = T0 + d * DAY + 7 * HOUR + rng.below(14 * HOUR as u64) as i64;
                if rng.below(10) == 0 {
                    out.push(ev(t, addr, EventKind::Attempt, &name, Some(true)));
                }
                out.push(ev(t + 5, addr, EventKind::Success, &name, Some(true)));
            }
        }
    }
    let mut n = 0u32;
    for h in 0..days * 24 {
        for _ in 0..rng.poisson(scanners_per_hour) {
            n += 1;
            let addr = v4(203, (n >> 16) as u8, (n >> 8) as u8, n as u8);
            let t = T0 + h * HOUR + rng.below(HOUR as u64) as i64;
            for k in 0..=rng.below(6) as i64 {
                let name = SCANNER_NAMES[rng.below(SCANNER_NAMES.len() as u64) as usize];
                out.push(ev(
                    t + k * 7,
                    addr,
                    EventKind::Attempt,
                    name,
                    Some(name == "root"),
                ));
            }
        }
    }
    out
}

/// A campaign of `addrs` addresses from `start`, spread over `hours`, 1-3 tries each.
fn campaign(rng: &mut Rng, start: i64, hours: i64, addrs: u32) -> (Vec<Event>, HashSet<IpAddr>) {
    let mut out = Vec::new();
    let mut who = HashSet::new();
    for i in 0..addrs {
        let addr = v4(192, 0, (i >> 8) as u8 + 2, i as u8);
        who.insert(addr);
        let t = start + rng.below((hours * HOUR) as u64) as i64;
        for k in 0..=rng.below(3) as i64 {
            let name = CAMPAIGN_NAMES[rng.below(CAMPAIGN_NAMES.len() as u64) as usize];
            out.push(ev(
                t + k * 600,
                addr,
                EventKind::Attempt,
                name,
                Some(name == "root"),
            ));
        }
    }
    (out, who)
}

fn run(cfg: CampaignConfig, mut events: Vec<Event>, until: i64) -> Vec<CampaignAlert> {
    events.sort_by_key(|e| e.time);
    let mut w = SiteWatch::new(Some(cfg), None);
    let mut alerts = Vec::new();
    for e in &events {
        w.handle_event(e.time, e);
        alerts.extend(std::iter::from_fn(|| w.poll_alert()));
    }
    w.handle_timeout(Time::from_secs(until));
    alerts.extend(std::iter::from_fn(|| w.poll_alert()));
    alerts
}

#[test]
fn no_campaign_on_a_clean_background() {
    for seed in 1..=3 {
        let mut rng = Rng(seed);
        let events = background(&mut rng, 28, 40, 3.0);
        let alerts = run(CampaignConfig::default(), events, T0 + 28 * DAY);
        assert!(alerts.is_empty(), "seed {seed}: {alerts:#?}");
    }
}

#[test]
fn a_campaign_is_detected_bracketed_and_attributed() {
    let mut rng = Rng(7);
    let mut events = background(&mut rng, 21, 40, 3.0);
    let start = T0 + 10 * DAY + 5 * HOUR;
    let (attack, truth) = campaign(&mut rng, start, 72, 1500);
    events.extend(attack);
    let alerts = run(CampaignConfig::default(), events, T0 + 21 * DAY);
    let first = alerts.first().expect("detected");
    assert!(!first.ended);
    let delay = first.detected.as_secs() - start;
    assert_eq!(
        first.detected, first.end,
        "first reported at the end of its bin"
    );
    assert!(delay <= 8 * HOUR, "detected after {} h", delay / HOUR);
    let last = alerts.last().expect("an end");
    assert!(last.ended, "{last:?}");
    assert!(alerts.iter().all(|a| a.id == first.id), "one campaign");
    assert!(alerts.iter().all(|a| a.detected == first.detected));
    // Bracketed: starts within 2 h of the truth, ends within 3 h of the last attack hour.
    assert!(
        (last.start.as_secs() - start).abs() <= 2 * HOUR,
        "{:?}",
        last.start
    );
    assert!(
        (last.end.as_secs() - (start + 72 * HOUR)).abs() <= 3 * HOUR,
        "{:?}",
        last.end
    );
    let found: HashSet<IpAddr> = last.participants.iter().copied().collect();
    let hit = found.intersection(&truth).count() as f64;
    let precision = hit / found.len() as f64;
    let recall = hit / truth.len() as f64;
    assert!(precision >= 0.9, "precision {precision}");
    assert!(recall >= 0.9, "recall {recall}");
    // Every report's new participants add up to the whole list.
    let mut all: Vec<IpAddr> = alerts
        .iter()
        .flat_map(|a| a.new_participants.clone())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), last.participant_count);
    assert!(last.users.iter().any(|(u, _)| &**u == "support"));
    assert!(last.confidence > 0.5, "{}", last.confidence);
}

#[test]
fn the_site_users_and_loud_addresses_are_never_participants() {
    let mut rng = Rng(11);
    let mut events = background(&mut rng, 14, 40, 2.0);
    let start = T0 + 7 * DAY;
    let (attack, _) = campaign(&mut rng, start, 48, 1000);
    events.extend(attack);
    // A user of the site who mistypes with the campaign's names during it.
    let user = v4(198, 51, 100, 250);
    events.push(ev(
        start + HOUR,
        user,
        EventKind::Success,
        "admin",
        Some(true),
    ));
    for k in 0..3 {
        events.push(ev(
            start + 5 * HOUR + k * 900,
            user,
            EventKind::Attempt,
            "admin",
            Some(true),
        ));
    }
    // A loud brute forcer (the jail's business) with the same names.
    let loud = v4(203, 0, 113, 9);
    for k in 0..50 {
        events.push(ev(
            start + 2 * HOUR + k,
            loud,
            EventKind::Attempt,
            "root",
            Some(true),
        ));
    }
    let alerts = run(CampaignConfig::default(), events, T0 + 14 * DAY);
    let last = alerts.last().expect("detected");
    assert!(!last.participants.contains(&user));
    assert!(!last.participants.contains(&loud));
}

#[test]
fn memory_stays_under_the_caps() {
    let cfg = CampaignConfig {
        max_addresses: 1000,
        max_names: 50,
        ..CampaignConfig::default()
    };
    let mut d = CampaignDetector::new(cfg);
    for i in 0..20_000u32 {
        let addr = v4(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
        let e = ev(
            T0 + i64::from(i),
            addr,
            EventKind::Attempt,
            &format!("n{i}"),
            None,
        );
        d.handle_event(e.time, &e);
        assert!(d.tracked_addresses() <= 1000);
        assert!(d.tracked_names() <= 50);
    }
}

#[test]
fn a_user_targeted_attack_is_told_from_invalid_users_and_the_owner() {
    let cfg = TargetedConfig::default();
    let mut w = SiteWatch::new(None, Some(cfg));
    let owner = v4(198, 51, 100, 1);
    let mut t = T0;
    // The owner mistypes, then logs in: never a participant.
    w.handle_event(
        Time::from_secs(t),
        &ev(t, owner, EventKind::Attempt, "alice", Some(true)),
    );
    w.handle_event(
        Time::from_secs(t + 3),
        &ev(t + 3, owner, EventKind::Success, "alice", Some(true)),
    );
    // Twenty addresses guessing an invalid user: nothing.
    for i in 0..20 {
        t += 600;
        let e = ev(
            t,
            v4(203, 0, 113, i),
            EventKind::Attempt,
            "bob",
            Some(false),
        );
        w.handle_event(e.time, &e);
    }
    assert!(w.poll_alert().is_none());
    // Nine addresses on alice: not yet; the tenth: an alert.
    for i in 0..10 {
        t += 1800;
        let e = ev(t, v4(192, 0, 2, i), EventKind::Attempt, "alice", Some(true));
        w.handle_event(e.time, &e);
        if i < 9 {
            assert!(w.poll_alert().is_none(), "{i}");
        }
    }
    w.handle_event(
        Time::from_secs(t + 1),
        &ev(t + 1, owner, EventKind::Attempt, "alice", Some(true)),
    );
    let a = w.poll_alert().expect("an alert");
    assert_eq!(a.kind, CampaignKind::UserTargeted);
    assert_eq!(a.participant_count, 10);
    assert!(!a.participants.contains(&owner));
    assert_eq!(&*a.users[0].0, "alice");
    // More join: reported together at most every 10 s.
    for i in 10..15 {
        let e = ev(
            t + 2,
            v4(192, 0, 2, i),
            EventKind::Attempt,
            "alice",
            Some(true),
        );
        w.handle_event(e.time, &e);
    }
    assert!(w.poll_alert().is_none());
    w.handle_timeout(Time::from_secs(t + 11));
    let b = w.poll_alert().expect("an update");
    assert_eq!((b.id.clone(), b.new_participants.len()), (a.id.clone(), 5));
    // Quiet for a window: it ends.
    let end = w.poll_timeout().expect("a deadline");
    w.handle_timeout(end);
    let c = w.poll_alert().expect("the end");
    assert!(c.ended);
    assert!(w.active().is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Any background (users, scanner rate, seed): no alarm in two weeks.
    #[test]
    fn no_false_alarm_on_any_background(seed in 0u64..1000, users in 0u32..80, rate in 0.0f64..8.0) {
        let mut rng = Rng(seed);
        let events = background(&mut rng, 14, users, rate);
        let alerts = run(CampaignConfig::default(), events, T0 + 14 * DAY);
        proptest::prop_assert!(alerts.is_empty(), "{:?}", alerts.first());
    }

    /// Participants are always slow newcomers that never logged in.
    #[test]
    fn participants_are_slow_newcomers(seed in 0u64..1000, n in 300u32..1500) {
        let mut rng = Rng(seed);
        let mut events = background(&mut rng, 10, 30, 3.0);
        let (attack, truth) = campaign(&mut rng, T0 + 5 * DAY, 36, n);
        events.extend(attack);
        let alerts = run(CampaignConfig::default(), events, T0 + 10 * DAY);
        let last = alerts.last();
        proptest::prop_assert!(last.is_some(), "missed {} addresses", n);
        for a in &last.expect("checked").participants {
            let IpAddr::V4(v) = a else { unreachable!() };
            proptest::prop_assert!(v.octets()[0] != 198, "a site user: {}", a);
        }
        let found = last.expect("checked").participants.iter().filter(|a| truth.contains(a)).count();
        proptest::prop_assert!(found * 10 >= truth.len() * 8, "recall {found}/{}", truth.len());
    }
}

#[test]
fn targeted_memory_is_capped() {
    let cfg = TargetedConfig {
        max_users: 10,
        max_participants: 100,
        ..TargetedConfig::default()
    };
    let mut d = TargetedDetector::new(cfg);
    for i in 0..5000u32 {
        let addr = v4(10, 0, (i >> 8) as u8, i as u8);
        let e = ev(
            T0 + i64::from(i),
            addr,
            EventKind::Attempt,
            &format!("u{}", i % 50),
            Some(true),
        );
        d.handle_event(e.time, &e);
        assert!(d.tracked_users() <= 10);
    }
    let _ = Duration::ZERO;
}
