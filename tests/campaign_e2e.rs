//! Issue 15.1 end to end: the real daemon in its own network namespace with real nftables
//! reads a log file in which, after a quiet learning period, a distributed low-and-slow
//! attack begins: 150 addresses, 1 or 2 tries each, none near any per-address threshold.
//! The daemon detects the campaign (log line, `status`, the store), bans its participants
//! in the kernel through the jail (ban action on), never the allowlisted address among
//! them, and reports the campaign ended once the attack stops. Bins of 2 s (`campaign.bin`)
//! stand in for hours so the test takes about a minute.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::Netns;
use crate::e2e::require_root_and;

const ALLOWED: &str = "192.0.2.77";

fn stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// Append `(pid, message)` lines stamped now.
fn write(log: &std::path::Path, msgs: &[(u32, String)]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("log");
    let mut text = String::new();
    for (pid, m) in msgs {
        text += &format!("{} gate sshd[{pid}]: {m}\n", stamp());
    }
    f.write_all(text.as_bytes()).expect("append");
}

/// One failed try as sshd logs it (one connection: one pid, taken from the port).
fn failure(addr: &str, name: &str, port: u32) -> Vec<(u32, String)> {
    if name == "root" {
        vec![(
            port,
            format!("Failed password for root from {addr} port {port} ssh2"),
        )]
    } else {
        vec![
            (port, format!("Invalid user {name} from {addr} port {port}")),
            (
                port,
                format!("Failed password for invalid user {name} from {addr} port {port} ssh2"),
            ),
        ]
    }
}

#[test]
fn a_distributed_low_and_slow_attack_is_detected_and_its_participants_banned() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("campaign");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let cfg = format!(
        "[campaign]\nbin = \"2s\"\nlearn = \"20s\"\nthreshold = 6.0\nban = \"1h\"\n\
         targeted = false\n\
         [jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 5\nallowlist = [\"127.0.0.0/8\", \"{ALLOWED}\"]\n",
        log.display()
    );
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);

    // Learning: a site user logging in, the odd scanner, for 26 s (13 bins).
    let t0 = Instant::now();
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_secs(26) {
        n += 1;
        let mut msgs = vec![(
            30000 + n,
            format!(
                "Accepted password for alice from 198.51.100.1 port {} ssh2",
                30000 + n
            ),
        )];
        if n.is_multiple_of(3) {
            msgs.extend(failure(
                &format!("203.0.113.{}", n % 200 + 1),
                "test",
                40000 + n,
            ));
        }
        write(&log, &msgs);
        std::thread::sleep(Duration::from_millis(1000));
    }
    let st = daemon.status();
    assert!(
        st["campaigns"]["active"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "no campaign while learning: {}",
        st["campaigns"]
    );

    // The attack: 150 addresses of 192.0.2.0/24 (ALLOWED among them), 1-2 tries each with
    // the same few names, spread over 20 s.
    let names = ["root", "admin", "support", "deploy"];
    let addrs: Vec<String> = (1..=150).map(|i| format!("192.0.2.{i}")).collect();
    let start = Instant::now();
    for (i, a) in addrs.iter().enumerate() {
        let mut msgs = failure(a, names[i % 4], 50000 + i as u32);
        if i % 2 == 0 {
            msgs.extend(failure(a, names[(i + 1) % 4], 51000 + i as u32));
        }
        write(&log, &msgs);
        // 150 addresses in ~20 s.
        let due = Duration::from_millis(133 * (i as u64 + 1));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    daemon.wait_for("the campaign", 30, |d| {
        d.status()["campaigns"]["active"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || d.status()["campaigns"]["recent"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    daemon.wait_for("participants banned", 30, |d| {
        d.bans()
            .iter()
            .filter(|b| b["reason"] == "campaign")
            .count()
            >= 100
    });
    let bans = daemon.bans();
    let banned: Vec<&str> = bans
        .iter()
        .filter(|b| b["reason"] == "campaign")
        .filter_map(|b| b["target"].as_str())
        .collect();
    assert!(
        !banned.contains(&ALLOWED),
        "the allowlisted address was banned"
    );
    assert!(
        banned.iter().all(|t| t.starts_with("192.0.2.")),
        "only attackers: {banned:?}"
    );
    assert!(
        !banned.contains(&"198.51.100.1"),
        "the site's user was banned"
    );
    // In the kernel.
    let set = ns.exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
    assert!(
        set.contains("192.0.2.1 ") || set.contains("192.0.2.1,"),
        "{set}"
    );
    assert!(!set.contains(&format!("{ALLOWED} ")), "{set}");
    // No per-address jail would have banned any of them.
    assert!(bans.iter().all(|b| b["reason"] == "campaign"), "{bans:?}");
    assert!(
        daemon
            .log()
            .contains("CAMPAIGN: distributed attack in progress")
    );
    let st = daemon.status();
    assert!(
        st["campaigns"]["spared"].as_u64() >= Some(1),
        "{}",
        st["campaigns"]
    );

    // Quiet again: the campaign ends, is in the store and in `status`'s recent list.
    daemon.wait_for("the campaign's end", 60, |d| {
        d.status()["campaigns"]["recent"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["ended"] == true))
    });
    let st = daemon.status();
    let c = &st["campaigns"]["recent"][0];
    assert_eq!(c["kind"], "campaign");
    let count = c["participant_count"].as_u64().expect("count");
    assert!((130..=160).contains(&count), "{c}");
    let text = daemon.ctl(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("ended campaign"), "{text}");
}

/// Issue 15.2 end to end: twelve addresses guessing the password of the existing account
/// `alice` (sshd's `Failed password for alice`, not `invalid user`) raise a user-targeted
/// alert; with `targeted_ban` on, each is banned in the kernel, except the allowlisted one
/// among them and alice's own address, whose typo her login cleared.
#[test]
fn a_user_targeted_attack_bans_its_participants_but_not_the_owner_or_the_allowlist() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("targeted");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let allowed = "203.0.113.77";
    let cfg = format!(
        "[campaign]\ntargeted_min_addresses = 8\ntargeted_window = \"10m\"\ntargeted_ban = \"1h\"\n\
         [jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 5\nallowlist = [\"127.0.0.0/8\", \"{allowed}\"]\n",
        log.display()
    );
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);
    // Alice mistypes, then logs in: her address is hers.
    write(
        &log,
        &[
            (
                100,
                "Failed password for alice from 198.51.100.1 port 40000 ssh2".into(),
            ),
            (
                100,
                "Accepted password for alice from 198.51.100.1 port 40000 ssh2".into(),
            ),
        ],
    );
    // Guessers of an invalid account: no alert, whatever their number.
    for i in 1..=12u32 {
        write(
            &log,
            &failure(&format!("198.51.100.{}", 100 + i), "nosuchuser", 41000 + i),
        );
    }
    let mut guessers: Vec<String> = (1..=11).map(|i| format!("203.0.113.{i}")).collect();
    guessers.push(allowed.to_owned());
    for (i, a) in guessers.iter().enumerate() {
        let port = 42000 + i as u32;
        write(
            &log,
            &[(
                port,
                format!("Failed password for alice from {a} port {port} ssh2"),
            )],
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Alice mistypes again during the attack: still hers.
    write(
        &log,
        &[(
            101,
            "Failed password for alice from 198.51.100.1 port 40001 ssh2".into(),
        )],
    );
    daemon.wait_for("the guessers banned", 30, |d| {
        d.bans()
            .iter()
            .filter(|b| b["reason"] == "targeted")
            .count()
            >= 11
    });
    // Late joiners come in the next report (at most 10 s later): give it a moment.
    std::thread::sleep(Duration::from_secs(2));
    let bans = daemon.bans();
    let banned: Vec<&str> = bans
        .iter()
        .filter(|b| b["reason"] == "targeted")
        .filter_map(|b| b["target"].as_str())
        .collect();
    assert_eq!(banned.len(), 11, "{banned:?}");
    assert!(
        banned.iter().all(|t| t.starts_with("203.0.113.")),
        "{banned:?}"
    );
    assert!(!banned.contains(&allowed));
    assert!(
        !bans.iter().any(|b| b["target"] == "198.51.100.1"),
        "the owner was banned"
    );
    let set = ns.exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
    assert!(set.contains("203.0.113.1"), "{set}");
    assert!(!set.contains(allowed), "{set}");
    let st = daemon.status();
    let active = st["campaigns"]["active"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let alice: Vec<_> = active
        .iter()
        .filter(|c| c["users"][0]["user"] == "alice")
        .collect();
    assert_eq!(alice.len(), 1, "{}", st["campaigns"]);
    assert_eq!(alice[0]["kind"], "user-targeted");
    assert_eq!(alice[0]["participant_count"], 12);
    assert!(
        !active.iter().any(|c| c["users"][0]["user"] == "nosuchuser"),
        "an invalid account is never targeted: {}",
        st["campaigns"]
    );
    assert!(
        daemon
            .log()
            .contains("CAMPAIGN: many addresses on one existing account")
    );
}
