//! The firewall backends against the real kernel, each test in its own network
//! namespaces (see `support`). Needs root, `ip`, `nft`, `ipset`, `iptables`, `ip6tables`;
//! skips loudly without them, fails when `CI=true`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use portcullis_firewall::{Change, Firewall, RejectReason, Verdict};
use support::{ATTACKER4, ATTACKER6, Lab, Netns, SERVER4, SERVER6};

#[derive(Copy, Clone, Debug)]
enum Kind {
    /// nftables, elements over netlink.
    Nft,
    /// nftables, everything through the `nft` CLI (the fallback).
    NftCli,
    Ipset,
}

fn tools(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Nft | Kind::NftCli => &["nft"],
        Kind::Ipset => &["ipset", "iptables", "ip6tables"],
    }
}

fn firewall(kind: Kind, ns: &Netns) -> Firewall {
    let config = support::config(ns);
    match kind {
        Kind::Nft => Firewall::nft(config).unwrap(),
        Kind::NftCli => Firewall::nft(portcullis_firewall::FirewallConfig {
            netlink: false,
            ..config
        })
        .unwrap(),
        Kind::Ipset => Firewall::ipset(config).unwrap(),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn host(ip: &str) -> IpNet {
    IpNet::from(ip.parse::<std::net::IpAddr>().unwrap())
}

fn add(target: IpNet, timeout: Option<Duration>) -> Change {
    Change::Add { target, timeout }
}

async fn listed(fw: &Firewall) -> HashMap<IpNet, Option<Duration>> {
    fw.list().await.unwrap().into_iter().collect()
}

/// Ban the attacker for 3 s: the next connect fails at once, the kernel expires the
/// element by itself and the attacker connects again.
async fn ban_blocks_then_expires(kind: Kind, attacker: &str, server: &str) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let lab = Lab::new();
    let mut fw = firewall(kind, &lab.pair.server);
    fw.setup().await.unwrap();
    assert!(lab.connects(server), "attacker must connect before the ban");

    let report = fw
        .apply(&[add(host(attacker), Some(Duration::from_secs(3)))])
        .await
        .unwrap();
    let banned_at = Instant::now();
    assert_eq!((report.added, report.transactions), (1, 1));
    assert!(
        lab.connect(server).is_err(),
        "connect must fail right after the ban"
    );
    assert!(banned_at.elapsed() < Duration::from_secs(1));
    let remaining = listed(&fw).await[&host(attacker)];
    assert!(
        remaining.is_some_and(|r| r <= Duration::from_secs(3)),
        "{remaining:?}"
    );

    let back = lab
        .wait_until_connects(server, Duration::from_secs(8))
        .expect("ban never expired");
    let total = banned_at.elapsed();
    assert!(
        total >= Duration::from_millis(2500),
        "connected again after only {total:?} ({back:?} of polling)"
    );
    assert!(!listed(&fw).await.contains_key(&host(attacker)));
}

#[tokio::test]
async fn nft_cli_ban_blocks_then_expires_v4() {
    ban_blocks_then_expires(Kind::NftCli, ATTACKER4, SERVER4).await;
}
#[tokio::test]
async fn nft_ban_blocks_then_expires_v4() {
    ban_blocks_then_expires(Kind::Nft, ATTACKER4, SERVER4).await;
}
#[tokio::test]
async fn nft_ban_blocks_then_expires_v6() {
    ban_blocks_then_expires(Kind::Nft, ATTACKER6, SERVER6).await;
}
#[tokio::test]
async fn ipset_ban_blocks_then_expires_v4() {
    ban_blocks_then_expires(Kind::Ipset, ATTACKER4, SERVER4).await;
}
#[tokio::test]
async fn ipset_ban_blocks_then_expires_v6() {
    ban_blocks_then_expires(Kind::Ipset, ATTACKER6, SERVER6).await;
}

/// Permanent bans stay (no timeout in the kernel) until removed; removal of absent
/// elements, alone or mixed into a batch, is not an error.
async fn permanent_then_removed(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let lab = Lab::new();
    let mut fw = firewall(kind, &lab.pair.server);
    fw.setup().await.unwrap();
    fw.apply(&[add(host(ATTACKER4), None), add(host(ATTACKER6), None)])
        .await
        .unwrap();
    assert!(!lab.connects(SERVER4));
    assert!(!lab.connects(SERVER6));
    let l = listed(&fw).await;
    assert_eq!(l.get(&host(ATTACKER4)), Some(&None));
    assert_eq!(l.get(&host(ATTACKER6)), Some(&None));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!lab.connects(SERVER4), "a permanent ban must stay");

    // Remove the v4 ban, remove two absent elements (one address, one network), and add
    // an unrelated ban, all in one batch.
    let report = fw
        .apply(&[
            Change::Remove {
                target: host(ATTACKER4),
            },
            Change::Remove {
                target: host("203.0.113.9"),
            },
            Change::Remove {
                target: net("198.51.100.0/24"),
            },
            add(host("203.0.113.10"), None),
        ])
        .await
        .unwrap();
    assert_eq!(report.added, 1);
    assert!(lab.connects(SERVER4), "removed ban must be gone");
    assert!(!lab.connects(SERVER6), "the v6 ban was not removed");
    let l = listed(&fw).await;
    assert!(l.contains_key(&host("203.0.113.10")));
    assert!(!l.contains_key(&host(ATTACKER4)));

    // Removing only absent elements.
    fw.apply(&[Change::Remove {
        target: host(ATTACKER4),
    }])
    .await
    .unwrap();
    fw.apply(&[Change::Remove {
        target: host(ATTACKER6),
    }])
    .await
    .unwrap();
    assert!(lab.connects(SERVER6));
}

#[tokio::test]
async fn nft_cli_permanent_then_removed() {
    permanent_then_removed(Kind::NftCli).await;
}
#[tokio::test]
async fn nft_permanent_then_removed() {
    permanent_then_removed(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_permanent_then_removed() {
    permanent_then_removed(Kind::Ipset).await;
}

/// Network (CIDR) bans block every address inside, for both families.
async fn network_bans(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let lab = Lab::new();
    let mut fw = firewall(kind, &lab.pair.server);
    fw.setup().await.unwrap();
    // Host bits are cleared: 192.0.2.77/24 means 192.0.2.0/24.
    fw.apply(&[
        add(net("192.0.2.77/24"), Some(Duration::from_secs(60))),
        add(net("2001:db8::/64"), None),
    ])
    .await
    .unwrap();
    assert!(!lab.connects(SERVER4));
    assert!(!lab.connects(SERVER6));
    let l = listed(&fw).await;
    assert!(l[&net("192.0.2.0/24")].is_some());
    assert_eq!(l[&net("2001:db8::/64")], None);
    fw.apply(&[
        Change::Remove {
            target: net("192.0.2.0/24"),
        },
        Change::Remove {
            target: net("2001:db8::/64"),
        },
    ])
    .await
    .unwrap();
    assert!(lab.connects(SERVER4));
    assert!(lab.connects(SERVER6));
    assert!(listed(&fw).await.is_empty());
}

#[tokio::test]
async fn nft_cli_network_bans() {
    network_bans(Kind::NftCli).await;
}
#[tokio::test]
async fn nft_network_bans() {
    network_bans(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_network_bans() {
    network_bans(Kind::Ipset).await;
}

/// nft interval sets cannot hold overlapping networks: the overlapping add is reported
/// as rejected and the rest of the batch still goes in (after one exact retry).
#[tokio::test]
async fn nft_overlapping_network_is_rejected_not_fatal() {
    if !support::can_run(&["nft"]) {
        return;
    }
    let ns = Netns::new("ovl");
    let mut fw = firewall(Kind::Nft, &ns);
    fw.setup().await.unwrap();
    fw.apply(&[add(net("198.51.100.0/24"), None)])
        .await
        .unwrap();
    let report = fw
        .apply(&[
            add(net("198.51.100.128/25"), None),
            add(host("203.0.113.5"), None),
            Change::Remove {
                target: net("203.0.113.0/24"),
            },
        ])
        .await
        .unwrap();
    assert_eq!(report.transactions, 2);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].target, net("198.51.100.128/25"));
    assert_eq!(
        report.rejected[0].reason,
        RejectReason::Overlaps(net("198.51.100.0/24"))
    );
    let l = listed(&fw).await;
    assert!(l.contains_key(&host("203.0.113.5")));
    assert!(l.contains_key(&net("198.51.100.0/24")));
    assert_eq!(l.len(), 2);
}

/// Reconcile adds what is missing, removes what is stale, fixes wrong timeouts, and is a
/// no-op the second time.
async fn reconcile(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let ns = Netns::new("rec");
    let mut fw = firewall(kind, &ns);
    fw.setup().await.unwrap();
    let long = Some(Duration::from_secs(600));
    fw.apply(&[
        add(host("192.0.2.10"), None),                           // stale
        add(host("192.0.2.11"), long),                           // becomes permanent
        add(host("192.0.2.12"), long),                           // stays
        add(net("2001:db8:5::/48"), long),                       // stale network
        add(host("2001:db8::12"), Some(Duration::from_secs(5))), // becomes longer
    ])
    .await
    .unwrap();
    let desired = vec![
        (host("192.0.2.11"), None),
        (host("192.0.2.12"), long),
        (host("192.0.2.13"), Some(Duration::from_secs(300))), // missing
        (net("198.51.100.0/24"), None),                       // missing network
        (host("2001:db8::12"), Some(Duration::from_secs(900))),
    ];
    let report = fw.reconcile(&desired).await.unwrap();
    assert_eq!(report.transactions, 1);
    let l = listed(&fw).await;
    let mut keys: Vec<_> = l.keys().copied().collect();
    keys.sort();
    let mut want: Vec<_> = desired.iter().map(|(t, _)| *t).collect();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(l[&host("192.0.2.11")], None);
    assert!(l[&host("192.0.2.12")].is_some_and(|r| r > Duration::from_secs(590)));
    assert!(l[&host("2001:db8::12")].is_some_and(|r| r > Duration::from_secs(890)));
    assert_eq!(l[&net("198.51.100.0/24")], None);

    let again = fw.reconcile(&desired).await.unwrap();
    match kind {
        // ipset and nft over netlink diff against a listing: nothing left to do.
        Kind::Ipset | Kind::Nft => assert_eq!(
            (again.added, again.removed, again.transactions),
            (0, 0, 0),
            "{again:?}"
        ),
        // The nft CLI rewrites the sets in one transaction instead of listing them.
        Kind::NftCli => assert_eq!((again.added, again.transactions), (desired.len(), 1)),
    }
    // One listing, compared with the first one modulo the seconds that passed (two listings
    // taken a moment apart can straddle a second).
    let after = listed(&fw).await;
    assert_eq!(l_without_drift(&l, &after), l);
    // From scratch (a restart after the kernel lost everything).
    fw.teardown(true).await.unwrap();
    fw.setup().await.unwrap();
    let report = fw.reconcile(&desired).await.unwrap();
    assert_eq!(report.added, desired.len());
    // Over netlink as through nft: one transaction.
    assert_eq!(report.transactions, 1, "{report:?}");
    assert_eq!(report.netlink_fallback, None);
    assert_eq!(listed(&fw).await.len(), desired.len());
}

#[tokio::test]
async fn nft_cli_reconcile() {
    reconcile(Kind::NftCli).await;
}
#[tokio::test]
async fn nft_reconcile() {
    reconcile(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_reconcile() {
    reconcile(Kind::Ipset).await;
}

/// `after` with the remaining times of `before` where they differ by at most 2 s (time
/// passes between two listings).
fn l_without_drift(
    before: &HashMap<IpNet, Option<Duration>>,
    after: &HashMap<IpNet, Option<Duration>>,
) -> HashMap<IpNet, Option<Duration>> {
    after
        .iter()
        .map(|(t, r)| {
            let keep = match (before.get(t), r) {
                (Some(Some(b)), Some(a)) if b.abs_diff(*a) <= Duration::from_secs(2) => Some(*b),
                _ => *r,
            };
            (*t, keep)
        })
        .collect()
}

/// Setup twice leaves one set of rules and keeps the elements.
#[tokio::test]
async fn nft_setup_is_idempotent() {
    if !support::can_run(&["nft"]) {
        return;
    }
    let ns = Netns::new("idem");
    let mut fw = firewall(Kind::Nft, &ns);
    fw.setup().await.unwrap();
    fw.apply(&[add(host("192.0.2.20"), None)]).await.unwrap();
    let first = ns.exec(&["nft", "list", "table", "inet", "portcullis"]);
    fw.setup().await.unwrap();
    let second = ns.exec(&["nft", "list", "table", "inet", "portcullis"]);
    assert_eq!(first, second);
    assert_eq!(second.matches(" drop").count(), 4, "{second}");
    assert!(
        second.contains("hook input priority filter - 10"),
        "{second}"
    );
    assert!(!second.contains("hook forward"));

    // A changed priority, verdict and forward hook take effect on the next setup.
    let mut config = support::config(&ns);
    config.priority = -50;
    config.verdict = Verdict::Reject;
    config.hook_forward = true;
    let mut fw = Firewall::nft(config).unwrap();
    fw.setup().await.unwrap();
    let third = ns.exec(&["nft", "list", "table", "inet", "portcullis"]);
    assert!(third.contains("hook input priority -50"), "{third}");
    assert!(third.contains("hook forward"), "{third}");
    assert_eq!(third.matches(" reject").count(), 8, "{third}");
    assert_eq!(third.matches(" drop").count(), 0, "{third}");
    assert!(listed(&fw).await.contains_key(&host("192.0.2.20")));
}

#[tokio::test]
async fn ipset_setup_is_idempotent() {
    if !support::can_run(tools(Kind::Ipset)) {
        return;
    }
    let ns = Netns::new("idem");
    let mut fw = firewall(Kind::Ipset, &ns);
    fw.setup().await.unwrap();
    fw.apply(&[add(host("192.0.2.20"), None)]).await.unwrap();
    fw.setup().await.unwrap();
    let v4 = ns.exec(&["iptables", "-w", "-S", "INPUT"]);
    let v6 = ns.exec(&["ip6tables", "-w", "-S", "INPUT"]);
    assert_eq!(v4.matches("--match-set").count(), 2, "{v4}");
    assert_eq!(v6.matches("--match-set").count(), 2, "{v6}");
    assert!(v4.contains("--match-set portcullis4 src -j DROP"), "{v4}");
    assert!(
        v4.contains("--match-set portcullis-net4 src -j DROP"),
        "{v4}"
    );
    assert!(v6.contains("--match-set portcullis6 src -j DROP"), "{v6}");
    assert!(listed(&fw).await.contains_key(&host("192.0.2.20")));

    let mut config = support::config(&ns);
    config.verdict = Verdict::Reject;
    config.hook_forward = true;
    let mut fw = Firewall::ipset(config).unwrap();
    fw.setup().await.unwrap();
    let v4 = ns.exec(&["iptables", "-w", "-S"]);
    assert_eq!(v4.matches("-j DROP").count(), 0, "{v4}");
    assert_eq!(v4.matches("--match-set").count(), 4, "{v4}");
    assert!(
        v4.contains("-A FORWARD -m set --match-set portcullis4 src -j REJECT"),
        "{v4}"
    );
}

/// The verdict `reject` answers at once (connection refused) instead of dropping.
async fn reject_refuses(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let lab = Lab::new();
    let mut config = support::config(&lab.pair.server);
    config.verdict = Verdict::Reject;
    let mut fw = match kind {
        Kind::Nft => Firewall::nft(config).unwrap(),
        Kind::NftCli => Firewall::nft(portcullis_firewall::FirewallConfig {
            netlink: false,
            ..config
        })
        .unwrap(),
        Kind::Ipset => Firewall::ipset(config).unwrap(),
    };
    fw.setup().await.unwrap();
    fw.apply(&[add(host(ATTACKER4), None), add(host(ATTACKER6), None)])
        .await
        .unwrap();
    // Linux TCP ignores the ICMPv6 error for the first SYN here and aborts on the
    // retransmission's (≈1 s), so give the connect 3 s: a drop would take all of them.
    for server in [SERVER4, SERVER6] {
        let started = Instant::now();
        let err = lab
            .connect_within(server, Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{server}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{server}");
    }
}

#[tokio::test]
async fn nft_reject_refuses() {
    reject_refuses(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_reject_refuses() {
    reject_refuses(Kind::Ipset).await;
}

/// Another table (or ipset/iptables rule) in the same namespace is untouched by setup,
/// apply, reconcile and teardown.
#[tokio::test]
async fn nft_other_table_untouched() {
    if !support::can_run(&["nft"]) {
        return;
    }
    let ns = Netns::new("other");
    ns.exec(&["nft", "add", "table", "inet", "other"]);
    ns.exec(&[
        "nft",
        "add",
        "set",
        "inet",
        "other",
        "addr4",
        "{ type ipv4_addr; flags timeout; }",
    ]);
    ns.exec(&[
        "nft",
        "add",
        "element",
        "inet",
        "other",
        "addr4",
        "{ 192.0.2.99 }",
    ]);
    ns.exec(&[
        "nft",
        "add",
        "chain",
        "inet",
        "other",
        "input",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    ns.exec(&[
        "nft", "add", "rule", "inet", "other", "input", "ip", "saddr", "@addr4", "counter", "drop",
    ]);
    let before = ns.exec(&["nft", "list", "table", "inet", "other"]);
    let mut fw = firewall(Kind::Nft, &ns);
    fw.setup().await.unwrap();
    fw.apply(&[
        add(host("192.0.2.99"), None),
        add(net("198.51.100.0/24"), None),
    ])
    .await
    .unwrap();
    fw.apply(&[Change::Remove {
        target: host("192.0.2.99"),
    }])
    .await
    .unwrap();
    fw.reconcile(&[(host("203.0.113.1"), None)]).await.unwrap();
    fw.teardown(false).await.unwrap();
    assert!(ns.exec_succeeds(&["nft", "list", "table", "inet", "portcullis"]));
    fw.teardown(true).await.unwrap();
    assert!(!ns.exec_succeeds(&["nft", "list", "table", "inet", "portcullis"]));
    fw.teardown(true).await.unwrap(); // absent table: still fine
    let after = ns.exec(&["nft", "list", "table", "inet", "other"]);
    assert_eq!(before, after);
}

#[tokio::test]
async fn ipset_other_sets_and_rules_untouched() {
    if !support::can_run(tools(Kind::Ipset)) {
        return;
    }
    let ns = Netns::new("other");
    ns.exec(&["ipset", "create", "other", "hash:ip", "timeout", "0"]);
    ns.exec(&["ipset", "add", "other", "192.0.2.99"]);
    ns.exec(&[
        "iptables",
        "-w",
        "-A",
        "INPUT",
        "-m",
        "set",
        "--match-set",
        "other",
        "src",
        "-j",
        "DROP",
    ]);
    let sets_before = ns.exec(&["ipset", "list", "other", "-output", "save"]);
    let mut fw = firewall(Kind::Ipset, &ns);
    fw.setup().await.unwrap();
    fw.apply(&[add(host("192.0.2.99"), None)]).await.unwrap();
    fw.reconcile(&[(host("203.0.113.1"), None)]).await.unwrap();
    fw.teardown(true).await.unwrap();
    let rules_after = ns.exec(&["iptables", "-w", "-S", "INPUT"]);
    assert_eq!(
        rules_after.matches("--match-set").count(),
        1,
        "{rules_after}"
    );
    assert!(rules_after.contains("--match-set other src -j DROP"));
    assert_eq!(
        sets_before,
        ns.exec(&["ipset", "list", "other", "-output", "save"])
    );
    let names = ns.exec(&["ipset", "list", "-n"]);
    assert_eq!(names.trim(), "other");
}

/// 100k distinct bans in one apply are all in the kernel afterwards (timing is measured
/// by bench/firewall.sh, not asserted here).
async fn hundred_thousand_in_one_batch(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let ns = Netns::new("big");
    let mut fw = firewall(kind, &ns);
    fw.setup().await.unwrap();
    let n: u32 = 100_000;
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, (i >> 16) as u16, i as u16);
            add(
                IpNet::from(std::net::IpAddr::V6(ip)),
                Some(Duration::from_secs(3600)),
            )
        })
        .collect();
    let report = fw.apply(&changes).await.unwrap();
    assert_eq!((report.added, report.transactions), (n as usize, 1));
    assert_eq!(report.netlink_fallback, None);
    let l = fw.list().await.unwrap();
    assert_eq!(l.len(), n as usize);
    let want: std::collections::HashSet<IpNet> = changes.iter().map(Change::target).collect();
    assert!(l.iter().all(|(t, r)| want.contains(t) && r.is_some()));
    let h = fw.health().await;
    assert_eq!(h.counts.map(|c| c.addr6), Some(n as usize), "{h}");

    // A restart at this size (nft over netlink: one flush-and-refill transaction): one
    // ban ended while the daemon was down, a network ban is new; the kernel ends up exact.
    let mut desired: Vec<(IpNet, Option<Duration>)> = changes[1..]
        .iter()
        .map(|c| (c.target(), Some(Duration::from_secs(3600))))
        .collect();
    desired.push((net("198.51.100.0/24"), None));
    let report = fw.reconcile(&desired).await.unwrap();
    assert_eq!(report.netlink_fallback, None);
    assert!(report.transactions <= 1, "{report:?}");
    // A dump right after a large transaction can come back short while the kernel frees
    // the flushed elements (its walk restarts per message; seen once: 93580 of 100000):
    // the second look, a moment later, must be whole.
    let mut l: HashMap<IpNet, Option<Duration>> = fw.list().await.unwrap().into_iter().collect();
    if l.len() != desired.len() {
        eprintln!(
            "short dump ({} of {}), looking again",
            l.len(),
            desired.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        l = fw.list().await.unwrap().into_iter().collect();
    }
    assert_eq!(l.len(), desired.len());
    assert!(!l.contains_key(&changes[0].target()));
    assert_eq!(l[&net("198.51.100.0/24")], None);
    assert!(desired.iter().all(|(t, _)| l.contains_key(t)));
}

#[tokio::test]
async fn nft_cli_hundred_thousand_in_one_batch() {
    hundred_thousand_in_one_batch(Kind::NftCli).await;
}
#[tokio::test]
async fn nft_hundred_thousand_in_one_batch() {
    hundred_thousand_in_one_batch(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_hundred_thousand_in_one_batch() {
    hundred_thousand_in_one_batch(Kind::Ipset).await;
}

/// Detection picks nftables where `nft` works; health reports a missing table.
#[tokio::test]
async fn detect_and_health() {
    if !support::can_run(&["nft"]) {
        return;
    }
    let ns = Netns::new("det");
    let fw = Firewall::detect(support::config(&ns)).await.unwrap();
    assert_eq!(fw.backend_name(), "nftables");
    let h = fw.health().await;
    assert!(!h.is_ok(), "no table yet: {h}");
    assert!(h.last_error.is_some());
    let mut fw = fw;
    fw.setup().await.unwrap();
    let h = fw.health().await;
    assert!(h.is_ok(), "{h}");
    assert_eq!(h.counts.map(|c| c.total()), Some(0));
}

/// Bans longer than the backend's largest element timeout: nft keeps them as timed
/// elements (u32 seconds), ipset (max ≈ 24.8 days) turns them into permanent elements
/// and says so, so the caller removes them at expiry.
async fn long_bans(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let ns = Netns::new("long");
    let mut fw = firewall(kind, &ns);
    fw.setup().await.unwrap();
    let ten_years = Duration::from_secs(10 * 365 * 86_400);
    let report = fw
        .apply(&[add(host("192.0.2.30"), Some(ten_years))])
        .await
        .unwrap();
    let remaining = listed(&fw).await[&host("192.0.2.30")];
    match kind {
        Kind::Nft | Kind::NftCli => {
            assert_eq!(report.made_permanent, 0);
            assert!(remaining.is_some_and(|r| r > ten_years - Duration::from_secs(5)));
        }
        Kind::Ipset => {
            assert_eq!(report.made_permanent, 1);
            assert_eq!(remaining, None);
        }
    }
    let h = fw.health().await;
    assert!(h.is_ok(), "{h}");
    assert!(
        h.to_string().contains("1 addresses (1 IPv4, 0 IPv6)"),
        "{h}"
    );
}

#[tokio::test]
async fn nft_cli_long_bans() {
    long_bans(Kind::NftCli).await;
}
#[tokio::test]
async fn nft_long_bans() {
    long_bans(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_long_bans() {
    long_bans(Kind::Ipset).await;
}

/// With `hook_forward`, a ban on a router (container host) also blocks traffic it
/// forwards: attacker → router → server.
async fn forward_hook_blocks_routed_traffic(kind: Kind) {
    if !support::can_run(tools(kind)) {
        return;
    }
    let attacker = Netns::new("fatt");
    let router = Netns::new("frtr");
    let server = Netns::new("fsrv");
    attacker.veth("a0", &router, "r0");
    server.veth("s0", &router, "r1");
    attacker.exec(&["ip", "addr", "add", "192.0.2.2/24", "dev", "a0"]);
    attacker.exec(&["ip", "link", "set", "a0", "up"]);
    attacker.exec(&["ip", "route", "add", "default", "via", "192.0.2.1"]);
    router.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "r0"]);
    router.exec(&["ip", "addr", "add", "198.51.100.1/24", "dev", "r1"]);
    router.exec(&["ip", "link", "set", "r0", "up"]);
    router.exec(&["ip", "link", "set", "r1", "up"]);
    router.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    server.exec(&["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    server.exec(&["ip", "link", "set", "s0", "up"]);
    server.exec(&["ip", "route", "add", "default", "via", "198.51.100.1"]);
    let addr: std::net::SocketAddr = "198.51.100.2:8022".parse().unwrap();
    let _listener = server.listen(addr);
    let connects = || attacker.connect(addr, Duration::from_millis(500)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !connects() {
        assert!(Instant::now() < deadline, "routed lab never came up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Input hook only: forwarded traffic passes.
    let mut fw = firewall(kind, &router);
    fw.setup().await.unwrap();
    fw.apply(&[add(host(ATTACKER4), None)]).await.unwrap();
    assert!(
        connects(),
        "without hook_forward, forwarded traffic is not filtered"
    );

    let mut config = support::config(&router);
    config.hook_forward = true;
    let mut fw = match kind {
        Kind::Nft => Firewall::nft(config).unwrap(),
        Kind::NftCli => Firewall::nft(portcullis_firewall::FirewallConfig {
            netlink: false,
            ..config
        })
        .unwrap(),
        Kind::Ipset => Firewall::ipset(config).unwrap(),
    };
    fw.setup().await.unwrap();
    assert!(!connects(), "hook_forward must block the banned source");
    fw.apply(&[Change::Remove {
        target: host(ATTACKER4),
    }])
    .await
    .unwrap();
    assert!(connects());
}

#[tokio::test]
async fn nft_forward_hook_blocks_routed_traffic() {
    forward_hook_blocks_routed_traffic(Kind::Nft).await;
}
#[tokio::test]
async fn ipset_forward_hook_blocks_routed_traffic() {
    forward_hook_blocks_routed_traffic(Kind::Ipset).await;
}

/// The table deleted behind our back: the netlink batch is refused by the kernel, the exact
/// retry through nft fails too, and apply says why (the daemon counts it and sets the
/// firewall up again). Setup plus a reconcile of the bans in force puts back everything,
/// the ban that failed included, over netlink.
#[tokio::test]
async fn nft_netlink_batch_refused_then_healed() {
    if !support::can_run(tools(Kind::Nft)) {
        return;
    }
    let lab = Lab::new();
    let ns = &lab.pair.server;
    let mut fw = firewall(Kind::Nft, ns);
    fw.setup().await.unwrap();
    let hour = Some(Duration::from_secs(3600));
    let first = [
        host("203.0.113.7"),
        net("198.51.100.0/24"),
        host("2001:db8::7"),
    ];
    let changes: Vec<Change> = first.iter().map(|t| add(*t, hour)).collect();
    let report = fw.apply(&changes).await.unwrap();
    assert_eq!((report.transactions, report.netlink_fallback), (1, None));

    ns.exec(&["nft", "delete", "table", "inet", "portcullis"]);
    let err = fw
        .apply(&[add(host(ATTACKER4), hour)])
        .await
        .expect_err("a ban into a deleted table cannot succeed");
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain += &format!(": {c}");
        cause = c.source();
    }
    assert!(
        chain.contains("No such file or directory"),
        "the cause is kept: {chain}"
    );
    assert!(lab.connects(SERVER4), "no table, no filtering");

    fw.setup().await.unwrap();
    let mut desired: Vec<(IpNet, Option<Duration>)> = first.iter().map(|t| (*t, hour)).collect();
    desired.push((host(ATTACKER4), hour));
    let report = fw.reconcile(&desired).await.unwrap();
    assert_eq!(
        (report.added, report.transactions, report.netlink_fallback),
        (desired.len(), 1, None)
    );
    let l = listed(&fw).await;
    assert_eq!(l.len(), desired.len(), "{l:?}");
    assert!(desired.iter().all(|(t, _)| l.contains_key(t)));
    assert!(lab.connect(SERVER4).is_err(), "the healed ban blocks");
}

/// No usable netlink socket (here: the namespace file is missing; in life EPERM or a kernel
/// without nf_tables netlink): every operation goes through nft, the bans are in the
/// kernel, and each report says netlink was not used and why (the daemon logs and counts
/// it).
#[tokio::test]
async fn nft_without_netlink_falls_back_to_the_cli() {
    if !support::can_run(tools(Kind::Nft)) {
        return;
    }
    let lab = Lab::new();
    let config = portcullis_firewall::FirewallConfig {
        netns: Some("/nonexistent/portcullis-test-netns".into()),
        ..support::config(&lab.pair.server)
    };
    let mut fw = Firewall::nft(config).unwrap();
    fw.setup().await.unwrap();
    let report = fw
        .apply(&[add(host(ATTACKER4), Some(Duration::from_secs(600)))])
        .await
        .unwrap();
    assert_eq!((report.added, report.transactions), (1, 1));
    let why = report.netlink_fallback.expect("the fallback is reported");
    assert!(why.contains("cannot open a netlink socket"), "{why}");
    assert!(lab.connect(SERVER4).is_err(), "banned through nft");
    let desired = vec![
        (host(ATTACKER4), Some(Duration::from_secs(600))),
        (net("198.51.100.0/24"), None),
    ];
    let report = fw.reconcile(&desired).await.unwrap();
    assert!(report.netlink_fallback.is_some(), "{report:?}");
    let l = listed(&fw).await;
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[&net("198.51.100.0/24")], None);
}

/// The restart's shortcut (issue 13 item 3): the ruleset generation moves with every
/// transaction, anyone's; with it unchanged, a sample of point lookups decides whether the
/// sets hold the bans. A missing element (here: never written, the generation unchanged,
/// as after a reboot that happened to reach the same number) makes the sampled path fall
/// back to the full diff, which repairs it; an element removed behind our back moves the
/// generation.
#[tokio::test]
async fn nft_generation_and_sampled_reconcile() {
    if !support::can_run(tools(Kind::Nft)) {
        return;
    }
    let ns = Netns::new("gen");
    let mut fw = firewall(Kind::Nft, &ns);
    fw.setup().await.unwrap();
    let long = Some(Duration::from_secs(600));
    let mut desired: Vec<(IpNet, Option<Duration>)> = (0..300u32)
        .map(|i| {
            (
                IpNet::from(std::net::IpAddr::V4((0xC633_6400 + (i % 250)).into())),
                long,
            )
        })
        .take(250)
        .collect();
    desired.push((host("2001:db8::7"), None));
    desired.push((net("203.0.113.0/24"), long));
    fw.reconcile(&desired).await.unwrap();
    let g0 = fw.generation().await.expect("a generation over netlink");
    // Nothing changed: reading moves nothing, and the sample finds every ban.
    assert_eq!(fw.generation().await, Some(g0));
    let r = fw.reconcile_unless_intact(&desired, true).await.unwrap();
    assert!(r.is_none(), "intact: nothing sent, {r:?}");
    assert_eq!(fw.generation().await, Some(g0), "no transaction was made");
    // A ban the kernel lacks while the generation says "unchanged": the sample (which
    // covers the first and the last host of the list) finds it missing, the full diff adds it.
    let mut more = desired.clone();
    more.push((host("192.0.2.99"), long));
    let r = fw.reconcile_unless_intact(&more, true).await.unwrap();
    let r = r.expect("a missing sampled ban falls back to the full diff");
    assert_eq!((r.added, r.removed), (1, 0), "{r:?}");
    assert!(listed(&fw).await.contains_key(&host("192.0.2.99")));
    // Someone else deletes an element: the generation moves (the daemon then never
    // trusts the sets, whatever a sample says).
    let g1 = fw.generation().await.unwrap();
    ns.exec(&[
        "nft",
        "delete",
        "element",
        "inet",
        "portcullis",
        "addr4",
        "{ 198.51.100.5 }",
    ]);
    let g2 = fw.generation().await.unwrap();
    assert_ne!(g1, g2);
    // Not told it is intact: the full diff, which puts it back; an extra element goes too.
    ns.exec(&[
        "nft",
        "add",
        "element",
        "inet",
        "portcullis",
        "addr4",
        "{ 192.0.2.200 }",
    ]);
    let r = fw
        .reconcile_unless_intact(&more, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.added, r.removed), (1, 1), "{r:?}");
    let l = listed(&fw).await;
    assert!(l.contains_key(&host("198.51.100.5")));
    assert!(!l.contains_key(&host("192.0.2.200")));
    assert_eq!(l.len(), more.len());
}
