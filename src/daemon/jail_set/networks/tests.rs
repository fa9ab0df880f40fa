//! The network rules through the whole [`JailSet`], as the driver runs it: member bans in,
//! network bans (and their lifting) out, on a fake clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_control::Target;
use portcullis_core::event::{BanReason, UnbanReason};
use portcullis_core::jail::{Command, JailConfig};
use portcullis_core::{Decision, Event, EventKind, Time, Weight};

use super::{NetworkRules, carve};
use crate::daemon::commands::{bans, unban};
use crate::daemon::jail_set::{FirewallChange, FirewallWork, JailInit, JailSet};

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Time {
    Time::from_secs(T0 + secs)
}

fn net(s: &str) -> IpNet {
    Target::parse(s).expect("literal").0
}

fn rules(threshold: u32) -> NetworkRules {
    NetworkRules {
        threshold: Some(threshold),
        v4_prefix: 24,
        v6_prefix: 48,
        widen_after: Some(2),
        widen_bits: 8,
        v4_widest: 16,
        v6_widest: 32,
        asn_threshold: None,
        bantime: Duration::from_secs(3600),
    }
}

struct Sim {
    set: JailSet,
    now: Time,
}

impl Sim {
    fn new(allow: &[&str], rules: NetworkRules) -> Sim {
        let mut config = JailConfig::new("sshd");
        config.allowlist.extend(allow.iter().map(|a| net(a)));
        let mut set = JailSet::new(
            vec![JailInit {
                config,
                history: Vec::new(),
                windows: Vec::new(),
            }],
            Vec::new(),
            at(0),
        );
        set.set_networks(rules, None, at(0));
        Sim { set, now: at(0) }
    }

    /// A host ban of `addr` for `secs`, and the commit it makes.
    fn ban(&mut self, addr: &str, secs: u64) -> Vec<Decision> {
        self.set
            .handle_command(
                0,
                self.now,
                Command::Ban {
                    target: net(addr),
                    duration: Some(Duration::from_secs(secs)),
                    permanent: false,
                    force: false,
                },
            )
            .expect("ban");
        self.set
            .poll_commit(self.now)
            .map(|c| c.decisions)
            .unwrap_or_default()
    }

    fn network_bans(&self) -> Vec<(IpNet, u32)> {
        let mut v: Vec<(IpNet, u32)> = self
            .set
            .engine(0)
            .active_bans()
            .filter_map(|b| match b.reason {
                BanReason::Network { members } => Some((b.target, members)),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }
}

fn banned(decisions: &[Decision]) -> Vec<IpNet> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Ban(b) if matches!(b.reason, BanReason::Network { .. }) => Some(b.target),
            _ => None,
        })
        .collect()
}

#[test]
fn the_kth_member_bans_its_24_visibly_and_in_the_same_commit() {
    let mut s = Sim::new(&[], rules(3));
    assert!(banned(&s.ban("198.51.100.10", 7200)).is_empty());
    assert!(banned(&s.ban("198.51.100.11", 7200)).is_empty());
    // Another /24 does not count.
    assert!(banned(&s.ban("198.51.101.12", 7200)).is_empty());
    s.set
        .handle_command(
            0,
            s.now,
            Command::Ban {
                target: net("198.51.100.12"),
                duration: Some(Duration::from_secs(7200)),
                permanent: false,
                force: false,
            },
        )
        .unwrap();
    let commit = s.set.poll_commit(s.now).unwrap();
    assert_eq!(banned(&commit.decisions), vec![net("198.51.100.0/24")]);
    // The member ban comes first, then the network, and the kernel gets both.
    assert!(matches!(&commit.decisions[0], Decision::Ban(b) if b.target == net("198.51.100.12")));
    let FirewallWork::Apply(changes) = commit.firewall else {
        panic!("expected a batch")
    };
    assert!(changes.contains(&FirewallChange::Add {
        target: net("198.51.100.0/24"),
        until: Some(at(3600)),
    }));
    assert_eq!(s.network_bans(), vec![(net("198.51.100.0/24"), 3)]);
    // `bans` shows it with its reason.
    let listed = bans::bans(&s.set, None, None, None, s.now).unwrap();
    let entry = listed
        .bans
        .iter()
        .find(|e| e.target.0 == net("198.51.100.0/24"))
        .unwrap();
    assert_eq!(entry.reason, "network: 3 members");
    // A fourth member: nothing new (the network is banned).
    assert!(banned(&s.ban("198.51.100.13", 7200)).is_empty());
}

#[test]
fn off_unless_a_threshold_is_set() {
    let mut r = rules(2);
    r.threshold = None;
    let mut s = Sim::new(&[], r);
    for i in 0..10 {
        assert!(banned(&s.ban(&format!("198.51.100.{i}"), 60)).is_empty());
    }
}

#[test]
fn an_allowlisted_or_own_address_inside_is_carved_out() {
    let mut s = Sim::new(&["198.51.100.77", "127.0.0.0/8"], rules(2));
    s.ban("198.51.100.10", 7200);
    let got = banned(&s.ban("198.51.100.11", 7200));
    assert!(!got.is_empty());
    let host = |a: &str| a.parse::<IpAddr>().unwrap();
    assert!(
        got.iter().all(|p| !p.contains(&host("198.51.100.77"))),
        "{got:?}"
    );
    for a in [
        "198.51.100.0",
        "198.51.100.50",
        "198.51.100.76",
        "198.51.100.78",
        "198.51.100.255",
    ] {
        assert!(
            got.iter().any(|p| p.contains(&host(a))),
            "{a} not covered: {got:?}"
        );
    }
    // The largest parts: /25 (upper half), /26, /27, /28, /30, /31 and /32 pieces.
    assert!(got.contains(&net("198.51.100.128/25")), "{got:?}");
    let total: u64 = got.iter().map(|p| 1u64 << (32 - p.prefix_len())).sum();
    assert_eq!(total, 255);
    // All of them are the network's bans; unban of the /24 lifts every part.
    let lifted = unban::unban(
        &mut s.set,
        s.now,
        Some(Target(net("198.51.100.0/24"))),
        None,
        false,
    )
    .unwrap();
    assert_eq!(lifted.removed.len(), got.len());
    assert!(s.network_bans().is_empty());
    // The members' own bans are still in force.
    assert!(s.set.engine(0).active_ban(net("198.51.100.10")).is_some());
    let c = s.set.poll_commit(s.now).unwrap();
    assert!(c.decisions.iter().all(|d| matches!(
        d,
        Decision::Unban {
            reason: UnbanReason::Manual,
            ..
        }
    )));
    // Counted afresh: one new member does not ban it again, a second does.
    assert!(banned(&s.ban("198.51.100.12", 7200)).is_empty());
    assert!(!banned(&s.ban("198.51.100.13", 7200)).is_empty());
}

#[test]
fn an_address_under_login_protection_is_never_inside_a_network_ban() {
    let mut s = Sim::new(&[], rules(2));
    let admin: IpAddr = "198.51.100.9".parse().unwrap();
    let ev = Event {
        time: s.now,
        addr: admin,
        kind: EventKind::Success,
        weight: Weight::ONE,
        count: 1,
        user: Some("alice".into()),
        method: Some("publickey".into()),
        pid: Some(1),
        rule: 0,
        user_exists: Some(true),
    };
    s.set.handle_events(0, s.now, &[ev]);
    assert!(s.set.engine(0).protected_until(admin).is_some());
    s.ban("198.51.100.10", 7200);
    let got = banned(&s.ban("198.51.100.11", 7200));
    assert!(!got.is_empty());
    assert!(got.iter().all(|p| !p.contains(&admin)), "{got:?}");
}

#[test]
fn two_banned_24s_widen_to_their_16_and_the_24s_are_replaced() {
    let mut s = Sim::new(&[], rules(2));
    s.ban("198.51.100.1", 7200);
    assert_eq!(
        banned(&s.ban("198.51.100.2", 7200)),
        vec![net("198.51.100.0/24")]
    );
    s.ban("198.51.101.1", 7200);
    let commit_decisions = {
        s.set
            .handle_command(
                0,
                s.now,
                Command::Ban {
                    target: net("198.51.101.2"),
                    duration: Some(Duration::from_secs(7200)),
                    permanent: false,
                    force: false,
                },
            )
            .unwrap();
        s.set.poll_commit(s.now).unwrap()
    };
    assert_eq!(
        banned(&commit_decisions.decisions),
        vec![net("198.51.0.0/16")]
    );
    assert_eq!(s.network_bans(), vec![(net("198.51.0.0/16"), 4)]);
    // The /24 banned before is lifted in the same commit (nft: no overlapping elements).
    let FirewallWork::Apply(changes) = commit_decisions.firewall else {
        panic!()
    };
    assert!(changes.contains(&FirewallChange::Remove {
        target: net("198.51.100.0/24")
    }));
    // Capped at /16: two /16s never make a /8.
    s.ban("198.52.100.1", 7200);
    assert_eq!(
        banned(&s.ban("198.52.100.2", 7200)),
        vec![net("198.52.100.0/24")]
    );
    s.ban("198.52.101.1", 7200);
    assert_eq!(
        banned(&s.ban("198.52.101.2", 7200)),
        vec![net("198.52.0.0/16")]
    );
    assert!(s.network_bans().iter().all(|(n, _)| n.prefix_len() >= 16));
}

#[test]
fn ipv6_members_ban_their_48() {
    let mut s = Sim::new(&[], rules(2));
    s.ban("2001:db8:5:1::1", 7200);
    assert_eq!(
        banned(&s.ban("2001:db8:5:2::1", 7200)),
        vec![net("2001:db8:5::/48")]
    );
}

#[test]
fn a_network_ban_ends_after_bantime_and_members_keep_theirs() {
    let mut s = Sim::new(&[], rules(2));
    s.ban("198.51.100.1", 7200);
    s.ban("198.51.100.2", 7200);
    s.now = at(3601);
    s.set.handle_timeout(s.now);
    let c = s.set.poll_commit(s.now).unwrap();
    assert!(c.decisions.iter().any(|d| matches!(
        d,
        Decision::Unban { target, reason: UnbanReason::Expired, .. } if *target == net("198.51.100.0/24")
    )));
    assert!(s.network_bans().is_empty());
    assert!(s.set.engine(0).active_ban(net("198.51.100.1")).is_some());
    // The next member bans it again.
    assert_eq!(
        banned(&s.ban("198.51.100.3", 7200)),
        vec![net("198.51.100.0/24")]
    );
}

#[test]
fn restored_network_bans_are_ours_again_after_a_restart() {
    let mut s = Sim::new(&[], rules(2));
    s.ban("198.51.100.1", 7200);
    s.ban("198.51.100.2", 7200);
    let stored: Vec<_> = s.set.engine(0).active_bans().collect();
    let mut set = JailSet::new(
        vec![JailInit {
            config: JailConfig::new("sshd"),
            history: Vec::new(),
            windows: Vec::new(),
        }],
        stored,
        at(10),
    );
    set.set_networks(rules(2), None, at(10));
    assert_eq!(set.network_bans_within(net("198.51.100.0/24")).len(), 1);
    // Already banned: a third member changes nothing.
    set.handle_command(
        0,
        at(10),
        Command::Ban {
            target: net("198.51.100.3"),
            duration: Some(Duration::from_secs(60)),
            permanent: false,
            force: false,
        },
    )
    .unwrap();
    assert!(banned(&set.poll_commit(at(10)).unwrap().decisions).is_empty());
}

#[test]
fn members_of_one_autonomous_system_ban_its_prefixes() {
    let mut r = rules(2);
    r.threshold = None;
    r.asn_threshold = Some(3);
    let mut s = Sim::new(&[], r.clone());
    let lookup: super::AsnLookup = Arc::new(|ip: IpAddr| {
        let table = [
            ("203.0.113.0/25", 64_502),
            ("198.51.100.0/24", 64_502),
            ("10.0.0.0/8", 64_502),
            ("192.0.2.0/24", 64_999),
        ];
        table
            .iter()
            .map(|(n, a)| (net(n), *a))
            .find(|(n, _)| n.contains(&ip))
            .map(|(n, a)| (a, n))
    });
    s.set.set_networks(r, Some(lookup), s.now);
    assert!(banned(&s.ban("203.0.113.5", 7200)).is_empty());
    assert!(banned(&s.ban("192.0.2.5", 7200)).is_empty());
    assert!(banned(&s.ban("198.51.100.5", 7200)).is_empty());
    let mut got = banned(&s.ban("10.1.2.3", 7200));
    got.sort();
    // The /8 the database announces is cut to the /16 cap around the member.
    assert_eq!(
        got,
        vec![
            net("10.1.0.0/16"),
            net("198.51.100.0/24"),
            net("203.0.113.0/25")
        ]
    );
    assert!(s.network_bans().iter().all(|(_, m)| *m == 3));
}

#[test]
fn carve_keeps_the_largest_parts_and_gives_up_when_nothing_or_too_much_is_left() {
    assert_eq!(
        carve(net("192.0.2.0/24"), &[]),
        Some(vec![net("192.0.2.0/24")])
    );
    assert_eq!(carve(net("192.0.2.0/24"), &[net("192.0.0.0/16")]), None);
    assert_eq!(
        carve(net("192.0.2.0/24"), &[net("192.0.2.0/25")]),
        Some(vec![net("192.0.2.128/25")])
    );
    let many: Vec<IpNet> = (0..128)
        .map(|i| net(&format!("192.0.2.{}", i * 2)))
        .collect();
    assert_eq!(
        carve(net("192.0.2.0/24"), &many),
        None,
        "more than MAX_PARTS"
    );
}

#[test]
fn a_member_that_is_a_one_address_part_keeps_its_own_ban() {
    // Carving 198.51.100.0/24 around .77 leaves .76/32 as a part; .76 is a member.
    let mut s = Sim::new(&["198.51.100.77"], rules(2));
    s.ban("198.51.100.10", 7200);
    let got = banned(&s.ban("198.51.100.76", 7200));
    assert!(got.contains(&net("198.51.100.128/25")), "{got:?}");
    assert!(!got.contains(&net("198.51.100.76/32")), "{got:?}");
    let own = s.set.engine(0).active_ban(net("198.51.100.76")).unwrap();
    assert_eq!(own.reason, BanReason::Manual);
    unban::unban(
        &mut s.set,
        s.now,
        Some(Target(net("198.51.100.0/24"))),
        None,
        false,
    )
    .unwrap();
    assert!(s.set.engine(0).active_ban(net("198.51.100.76")).is_some());
}
