//! Issue 11 item 6, the fault-injection suite: faults injected while a storm of attacks is
//! being decided, against the real binary and real nftables in a network namespace.
//! (Faults one at a time are in `faults_e2e.rs`.)

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::Netns;
use crate::e2e::require_root_and;
use crate::faults_e2e::time_until;
use portcullis_testkit::Xorshift;

/// A jail that bans at 4 failures in 10 minutes, IPv6 addresses one by one.
fn config(log: &Path) -> String {
    format!(
        "[jail.sshd]\nmaxretry = 4\nfindtime = \"10m\"\nbantime = \"1h\"\nv6_net_threshold = false\nsources = [{{ file = \"{}\" }}]\n",
        log.display()
    )
}

/// Failed-password lines dated now: `per` for each address, interleaved across addresses
/// (as a real storm is), each with its own sshd pid.
fn storm(addrs: &[(String, usize)]) -> Vec<String> {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let most = addrs.iter().map(|a| a.1).max().unwrap_or(0);
    let mut lines = Vec::new();
    let mut pid = 10_000u32;
    for round in 0..most {
        for (a, per) in addrs {
            if round < *per {
                pid = if pid >= 4_000_000 { 10_000 } else { pid + 1 };
                lines.push(format!(
                    "{now} srv sshd[{pid}]: Failed password for root from {a} port 4242 ssh2\n"
                ));
            }
        }
    }
    lines
}

/// Append `lines` to `log` in `chunks` writes spread over `over`, on a thread.
fn write_over(log: &Path, lines: Vec<String>, chunks: usize, over: Duration) -> JoinHandle<()> {
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let per = lines.len().div_ceil(chunks.max(1));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("append");
        for chunk in lines.chunks(per.max(1)) {
            f.write_all(chunk.concat().as_bytes()).expect("append");
            std::thread::sleep(over / chunks as u32);
        }
    })
}

/// The addresses of one of our kernel sets.
fn kernel_set(ns: &Netns, name: &str) -> BTreeSet<String> {
    let out = ns
        .command("nft")
        .args(["-j", "list", "set", "inet", "portcullis", name])
        .output()
        .expect("nft");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut set = BTreeSet::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            let val = if e.is_string() { e } else { &e["elem"]["val"] };
            if let Some(s) = val.as_str() {
                set.insert(s.to_string());
            }
        }
    }
    set
}

/// The addresses the daemon says are banned.
fn daemon_bans(d: &Daemon) -> BTreeSet<String> {
    d.bans()
        .iter()
        .filter_map(|b| b["target"].as_str())
        .map(|t| {
            t.trim_end_matches("/128")
                .trim_end_matches("/32")
                .to_string()
        })
        .collect()
}

/// `kill -9` at random moments while 5000 attackers (4 failures each: banned) and 5000
/// near-misses (3 failures each: never banned) are decided, 8 times; then a last start
/// finishes the work. If a line were lost, an attacker would go free; if one were counted
/// twice, a near-miss would be banned. The kernel set, the store and the engine must hold
/// exactly the attackers, and each near-miss's stored window exactly 3 failures.
#[test]
fn i11_kill9_at_random_moments_of_a_storm_loses_nothing_and_counts_nothing_twice() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("kill9storm");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let mut daemon = Daemon::start(&ns, &tmp.path().join("pc"), &config(&log));
    let attackers: Vec<String> = (1..=5000).map(|i| format!("2001:db8:1::{i:x}")).collect();
    let near: Vec<String> = (1..=5000).map(|i| format!("2001:db8:2::{i:x}")).collect();
    let mut who: Vec<(String, usize)> = attackers.iter().map(|a| (a.clone(), 4)).collect();
    who.extend(near.iter().map(|a| (a.clone(), 3)));
    let writer = write_over(&log, storm(&who), 40, Duration::from_secs(4));
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    for round in 0..8 {
        std::thread::sleep(Duration::from_millis(100 + rng.below(600)));
        daemon.kill9();
        eprintln!("round {round}: killed");
        daemon.restart();
    }
    writer.join().expect("writer");
    let want: BTreeSet<String> = attackers.iter().cloned().collect();
    daemon.wait_for("every attacker banned", 60, |d| {
        d.bans().len() >= want.len()
    });
    // Settle: the positions and windows are written within a second of the last line.
    std::thread::sleep(Duration::from_secs(2));
    let engine = daemon_bans(&daemon);
    assert_eq!(engine, want, "the engine's bans");
    let kernel = kernel_set(&ns, "addr6");
    assert_eq!(kernel, want, "the kernel set");
    let db = tmp.path().join("pc/state/state.db");
    let store = portcullis_store::Store::open_read_only(&db).expect("store");
    let now = portcullis_core::Time::from_secs(jiff::Timestamp::now().as_second());
    let stored: BTreeSet<String> = store
        .bans_in_force(now)
        .expect("bans")
        .into_iter()
        .map(|b| b.target.addr().to_string())
        .collect();
    assert_eq!(stored, want, "the store's bans");
    assert!(
        store
            .bans_in_force(now)
            .expect("bans")
            .iter()
            .all(|b| b.ban_no == 1),
        "an attacker banned twice"
    );
    let windows = store.windows("sshd", now).expect("windows");
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for w in &windows {
        let attempts: u32 = w.entries.iter().map(|e| e.attempts).sum();
        counts.insert(w.addr.to_string(), attempts as usize);
    }
    let wrong: Vec<_> = near
        .iter()
        .filter(|a| counts.get(a.as_str()) != Some(&3))
        .take(5)
        .map(|a| (a, counts.get(a.as_str())))
        .collect();
    assert!(
        wrong.is_empty(),
        "near-misses whose window is not exactly their 3 failures: {wrong:?}"
    );
}

/// `nft flush ruleset` twice while a storm of 5000 attackers is being banned: every ban the
/// engine decided is in the kernel at the end, and after each flush the bans decided so far
/// are back within a second or two.
#[test]
fn i11_nft_flush_ruleset_during_a_storm_loses_no_ban() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("flushstorm");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &config(&log));
    let attackers: Vec<(String, usize)> = (1..=5000)
        .map(|i| (format!("2001:db8:3::{i:x}"), 4))
        .collect();
    // Attacker by attacker, so bans flow all along the storm.
    let mut lines = Vec::new();
    for a in &attackers {
        lines.extend(storm(std::slice::from_ref(a)));
    }
    let writer = write_over(&log, lines, 30, Duration::from_secs(3));
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(900));
        let before = daemon_bans(&daemon);
        assert!(ns.exec_succeeds(&["nft", "flush", "ruleset"]), "flush");
        let took = time_until(Duration::from_secs(10), || {
            kernel_set(&ns, "addr6").is_superset(&before)
        })
        .unwrap_or_else(|| panic!("round {round}: bans not back\n{}", daemon.log()));
        eprintln!(
            "flush {round}: the {} bans decided before it back in {took:?}",
            before.len()
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    writer.join().expect("writer");
    daemon.wait_for("every attacker banned", 60, |d| d.bans().len() >= 5000);
    let engine = daemon_bans(&daemon);
    let kernel = time_until(Duration::from_secs(5), || {
        kernel_set(&ns, "addr6") == engine
    });
    assert!(
        kernel.is_some(),
        "kernel and engine disagree: {} vs {}",
        kernel_set(&ns, "addr6").len(),
        engine.len()
    );
}

/// 100 reloads in 10 s under an attack of 10k lines/s: every reload answers, banning never
/// stops (a fresh attacker every 100 ms is banned, each within a bound), and every attack
/// line is counted exactly once across the reloads.
#[test]
fn i11_a_hundred_reloads_under_ten_thousand_lines_a_second_never_stop_banning() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("reloadstorm");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &config(&log));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    // The attack: 100 lines every 10 ms from 254 addresses (banned at once; their lines are
    // still read and counted).
    let attack = {
        let (stop, written, log) = (stop.clone(), written.clone(), log.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .expect("append");
            let mut i = 0u64;
            let t0 = Instant::now();
            let mut tick = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%S+00:00")
                    .to_string();
                let mut text = String::new();
                for _ in 0..100 {
                    text += &format!(
                        "{now} srv sshd[{}]: Failed password for root from 203.0.113.{} port 4242 ssh2\n",
                        10_000 + i % 50_000,
                        1 + i % 254
                    );
                    i += 1;
                }
                f.write_all(text.as_bytes()).expect("append");
                written.fetch_add(100, Ordering::Relaxed);
                tick += 1;
                let next = t0 + Duration::from_millis(10) * tick;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let reloader = {
        let (stop, socket) = (stop.clone(), daemon.socket.clone());
        std::thread::spawn(move || {
            let mut failed = Vec::new();
            let mut slowest = Duration::ZERO;
            for n in 0..100 {
                let t0 = Instant::now();
                let out = std::process::Command::new(crate::e2e::daemon::bin())
                    .args(["reload", "--socket"])
                    .arg(&socket)
                    .output()
                    .expect("reload");
                slowest = slowest.max(t0.elapsed());
                if !out.status.success() {
                    failed.push((n, String::from_utf8_lossy(&out.stderr).into_owned()));
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(t0.elapsed()));
            }
            stop.store(true, Ordering::Relaxed);
            (failed, slowest)
        })
    };
    // Fresh attackers while it goes on: each must be banned.
    let mut latencies = Vec::new();
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) && k < 200 {
        k += 1;
        let a = format!("2001:db8:4::{k:x}");
        crate::faults_e2e::append_failures(&log, std::slice::from_ref(&a), 4);
        let t0 = Instant::now();
        let banned = time_until(Duration::from_secs(10), || {
            ns.exec_succeeds(&[
                "nft",
                "get",
                "element",
                "inet",
                "portcullis",
                "addr6",
                &format!("{{ {a} }}"),
            ])
        });
        let took = banned.unwrap_or_else(|| panic!("{a} not banned during the reloads"));
        latencies.push(took);
        let _ = t0;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (failed, slowest) = reloader.join().expect("reloader");
    attack.join().expect("attack");
    assert!(failed.is_empty(), "reloads failed: {failed:?}");
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{} fresh attackers banned during 100 reloads: p50 {:?}, p99 {:?}, max {:?}; slowest reload {slowest:?}",
        latencies.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    // A hang or a stop in banning shows as seconds; the 20 ms p99 target is bench/latency.py's.
    assert!(latencies.len() >= 20, "too few trials: {}", latencies.len());
    assert!(
        p(1.0) < Duration::from_secs(3),
        "banning stalled: {:?}",
        p(1.0)
    );
    // Every attack line and every fresh attacker's 4 lines counted once.
    let total = written.load(Ordering::Relaxed) + 4 * latencies.len() as u64;
    let attempts = |d: &Daemon| d.status()["jails"][0]["attempts"].as_u64().unwrap_or(0);
    daemon.wait_for("every line counted", 30, |d| attempts(d) >= total);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(attempts(&daemon), total, "lines lost or counted twice");
}
