//! The receiving policy on a fake clock, and fleet bans through the set as the loop drives
//! them (no broker, no store, no firewall).

use std::time::Duration;

use ipnet::IpNet;
use portcullis_control::Target;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason};
use portcullis_core::jail::JailConfig;

use super::{FLEET_JAIL, Ignored, PolicyConfig, ReceivePolicy, Received, Verdict};
use crate::daemon::jail_set::{FirewallChange, FirewallWork, JailInit, JailSet};

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Time {
    Time::from_secs(T0 + secs)
}

fn net(s: &str) -> IpNet {
    Target::parse(s).expect("literal target").0
}

fn policy() -> ReceivePolicy {
    ReceivePolicy::new(
        PolicyConfig {
            node: "b".into(),
            max_ban: Duration::from_secs(3600),
            permanent_after_nodes: Some(3),
            rate: 2,
            protected: vec![
                net("198.51.100.0/24"),
                net("2001:db8:1::/48"),
                net("127.0.0.0/8"),
            ],
        },
        Vec::new(),
    )
}

fn report(node: &str, target: &str, until: Option<i64>) -> Received {
    Received::Ban {
        node: node.into(),
        target: net(target),
        until: until.map(at),
    }
}

fn banned(v: Verdict) -> Ban {
    match v {
        Verdict::Ban(b) => b,
        other => panic!("expected a ban, got {other:?}"),
    }
}

fn origin(b: &Ban) -> &str {
    match &b.reason {
        BanReason::Fleet { origin } => origin,
        other => panic!("not a fleet ban: {other:?}"),
    }
}

#[test]
fn a_report_is_capped_and_never_permanent_on_one_nodes_word() {
    let mut p = policy();
    let b = banned(p.judge(&report("a", "192.0.2.2", None), None, at(0)));
    assert_eq!(
        b.until,
        Some(at(3600)),
        "permanent report capped at max_ban"
    );
    assert_eq!(b.jail.as_ref(), FLEET_JAIL);
    assert_eq!(origin(&b), "a");
    let b = banned(p.judge(&report("a", "192.0.2.3", Some(86_400 * 30)), None, at(0)));
    assert_eq!(b.until, Some(at(3600)), "a month capped at max_ban");
    let b = banned(p.judge(&report("a", "192.0.2.4", Some(60)), None, at(0)));
    assert_eq!(b.until, Some(at(60)), "a shorter ban is kept as reported");
}

#[test]
fn protected_own_member_and_wide_targets_always_win() {
    let mut p = policy();
    for (msg, why) in [
        (report("a", "198.51.100.7", None), Ignored::Protected),
        (report("a", "198.51.100.0/25", None), Ignored::Protected),
        // A network holding a protected address is refused too.
        (report("a", "198.51.0.0/16", None), Ignored::TooWide),
        (report("a", "198.51.100.0/24", None), Ignored::Protected),
        (report("a", "127.0.0.1", None), Ignored::Protected),
        (report("a", "2001:db8:1::5", None), Ignored::Protected),
        (report("a", "203.0.113.0/23", None), Ignored::TooWide),
        (report("a", "2001:db8:ff00::/40", None), Ignored::TooWide),
        (report("b", "192.0.2.2", None), Ignored::Own),
        (report("a", "192.0.2.2", Some(-5)), Ignored::Expired),
    ] {
        assert_eq!(p.judge(&msg, None, at(0)), Verdict::Ignored(why), "{msg:?}");
    }
    // The widest allowed networks pass.
    banned(p.judge(&report("a", "203.0.113.0/24", None), None, at(0)));
    banned(p.judge(&report("a", "2001:db8:2::/48", None), None, at(0)));
    // An admin's ban of a protected address is refused as well: the local allowlist wins.
    let admin = Received::AdminBan {
        target: net("198.51.100.7"),
        until: None,
    };
    assert_eq!(
        p.judge(&admin, None, at(0)),
        Verdict::Ignored(Ignored::Protected)
    );
}

#[test]
fn k_distinct_nodes_make_it_permanent_and_duplicates_change_nothing() {
    let mut p = policy();
    let b1 = banned(p.judge(&report("a", "192.0.2.2", None), None, at(0)));
    // The same node again (a duplicate or a retry): nothing new.
    assert_eq!(
        p.judge(&report("a", "192.0.2.2", None), Some(&b1), at(0)),
        Verdict::Ignored(Ignored::Duplicate)
    );
    let b2 = banned(p.judge(&report("c", "192.0.2.2", None), Some(&b1), at(1)));
    assert_eq!(origin(&b2), "a,c");
    assert!(b2.until.is_some(), "two of three nodes: still temporary");
    assert_eq!(b2.since, b1.since, "the ban keeps its start");
    let b3 = banned(p.judge(&report("d", "192.0.2.2", Some(10)), Some(&b2), at(2)));
    assert_eq!(origin(&b3), "a,c,d");
    assert_eq!(b3.until, None, "three distinct nodes: permanent");
}

#[test]
fn without_k_only_an_admin_makes_it_permanent() {
    let mut p = policy();
    p.reconfigure(PolicyConfig {
        permanent_after_nodes: None,
        ..p.config.clone()
    });
    let mut existing: Option<Ban> = None;
    for (i, n) in ["a", "c", "d", "e", "f"].iter().enumerate() {
        let b = banned(p.judge(
            &report(n, "192.0.2.9", None),
            existing.as_ref(),
            at(i as i64),
        ));
        assert!(b.until.is_some());
        existing = Some(b);
    }
    let admin = Received::AdminBan {
        target: net("192.0.2.9"),
        until: None,
    };
    let b = banned(p.judge(&admin, existing.as_ref(), at(9)));
    assert_eq!(b.until, None);
    assert_eq!(origin(&b), "admin");
}

#[test]
fn each_node_is_rate_limited_on_its_own() {
    let mut p = policy();
    // rate 2/s: a burst of 20, then 2 per second.
    let mut taken = 0;
    for i in 0..50 {
        if let Verdict::Ban(_) = p.judge(&report("a", &format!("192.0.2.{i}"), None), None, at(0)) {
            taken += 1;
        }
    }
    assert_eq!(taken, 20);
    assert_eq!(
        p.judge(&report("a", "192.0.2.100", None), None, at(0)),
        Verdict::Ignored(Ignored::RateLimited)
    );
    // Another node is not held back by a's flood.
    banned(p.judge(&report("c", "192.0.2.100", None), None, at(0)));
    // One second later: two more from a.
    banned(p.judge(&report("a", "192.0.2.101", None), None, at(1)));
    banned(p.judge(&report("a", "192.0.2.102", None), None, at(1)));
    assert_eq!(
        p.judge(&report("a", "192.0.2.103", None), None, at(1)),
        Verdict::Ignored(Ignored::RateLimited)
    );
}

#[test]
fn an_admin_allow_wins_over_later_reports() {
    let mut p = policy();
    let allow = Received::AdminAllow {
        target: net("192.0.2.0/28"),
    };
    assert_eq!(
        p.judge(&allow, None, at(0)),
        Verdict::Allow(net("192.0.2.0/28"))
    );
    assert_eq!(
        p.judge(&report("a", "192.0.2.5", None), None, at(1)),
        Verdict::Ignored(Ignored::Allowed)
    );
    assert_eq!(p.allowed(), &[net("192.0.2.0/28")]);
    let unban = Received::AdminUnban {
        target: net("192.0.2.77"),
    };
    assert_eq!(
        p.judge(&unban, None, at(0)),
        Verdict::Lift(net("192.0.2.77"))
    );
}

#[test]
fn fleet_bans_go_to_the_kernel_with_the_longest_end_and_lift_alone() {
    let init = JailInit {
        config: JailConfig::new("sshd"),
        history: Vec::new(),
        windows: Vec::new(),
    };
    let mut set = JailSet::new(vec![init], Vec::new(), at(0));
    let mut p = policy();
    let b = banned(p.judge(&report("a", "192.0.2.2", Some(100)), None, at(0)));
    set.put_fleet_ban(b.clone());
    let c = set.poll_commit(at(0)).expect("a commit");
    assert_eq!(c.decisions.len(), 1);
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![FirewallChange::Add {
            target: net("192.0.2.2"),
            until: Some(at(100)),
        }])
    );
    assert_eq!(set.in_force(at(1)), vec![(net("192.0.2.2"), Some(at(100)))]);
    assert_eq!(set.fleet_ban_of(net("192.0.2.2"), at(1)), Some(&b));
    // A second report replaces it (one fleet ban per target).
    let b2 = banned(p.judge(&report("c", "192.0.2.2", Some(200)), Some(&b), at(1)));
    set.put_fleet_ban(b2);
    let _ = set.poll_commit(at(1));
    assert_eq!(set.orphans(at(2)).count(), 1);
    assert_eq!(set.in_force(at(2)), vec![(net("192.0.2.2"), Some(at(200)))]);
    // Lifted: the kernel element goes.
    assert_eq!(set.lift_orphans(at(3), Some(net("192.0.2.2"))).len(), 1);
    let c = set.poll_commit(at(3)).expect("a commit");
    assert_eq!(
        c.firewall,
        FirewallWork::Apply(vec![FirewallChange::Remove {
            target: net("192.0.2.2")
        }])
    );
    assert!(set.lift_orphans(at(3), Some(net("192.0.2.2"))).is_empty());
    // Restored from the store at start: the fleet ban is in force again.
    let stored = Ban {
        target: net("192.0.2.8"),
        jail: FLEET_JAIL.into(),
        since: at(0),
        until: Some(at(50)),
        ban_no: 1,
        reason: BanReason::Fleet { origin: "a".into() },
    };
    let set = JailSet::new(Vec::new(), vec![stored.clone()], at(1));
    assert_eq!(set.fleet_ban_of(net("192.0.2.8"), at(1)), Some(&stored));
    assert_eq!(set.fleet_ban_of(net("192.0.2.8"), at(50)), None, "ended");
}

#[test]
fn an_admin_allow_reaches_every_jails_allowlist_and_survives_a_reload() {
    use portcullis_core::jail::{Command, CommandError};
    let init = |name: &str| JailInit {
        config: JailConfig::new(name),
        history: Vec::new(),
        windows: Vec::new(),
    };
    let mut set = JailSet::new(vec![init("sshd"), init("web")], Vec::new(), at(0));
    let allowed = net("192.0.2.0/28");
    set.allow_everywhere(allowed);
    let ban = |set: &mut JailSet, idx| {
        set.handle_command(
            idx,
            at(1),
            Command::Ban {
                target: net("192.0.2.5"),
                duration: None,
                permanent: false,
                force: false,
            },
        )
    };
    for idx in 0..2 {
        assert!(matches!(
            ban(&mut set, idx),
            Err(CommandError::Allowlisted { .. })
        ));
    }
    // A reload's new jails get it through `allow_in`.
    let mut inits = vec![init("sshd"), init("web")];
    super::allow_in(&mut inits, &[allowed]);
    super::allow_in(&mut inits, &[allowed]);
    assert_eq!(
        inits[0]
            .config
            .allowlist
            .iter()
            .filter(|n| **n == allowed)
            .count(),
        1,
        "added once"
    );
    set.reload(inits, at(2));
    assert!(matches!(
        ban(&mut set, 1),
        Err(CommandError::Allowlisted { .. })
    ));
}
