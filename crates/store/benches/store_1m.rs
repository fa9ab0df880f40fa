//! The store at scale (issue 13 item 4): `STORE_N` active bans (default 1M) written in bursts
//! of `STORE_BURST` (default 10k) with their history rows, as the daemon writes them (one
//! transaction per burst, prepared statements); then what a start reads (`active_bans`,
//! `history`), the database size, `prune` of a full history period and `maintain` (each in
//! the daemon's loop, so its time is how long a concurrent burst waits), and the query plans
//! of the statements the daemon runs.
//!
//! Run: `cargo bench -p portcullis-store --bench store_1m` (prints a table; no criterion:
//! one pass at 1M takes about a minute, and the spread across bursts is the result).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // bench code: a panic is the failure report

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason, Decision, Weight};
use portcullis_store::Store;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Distinct addresses of 2001:db8::/32 in scattered order (xorshift64 is a permutation of
/// the non-zero u64s, so no repeats; sequential keys would flatter the B-trees).
fn addresses(n: usize) -> Vec<IpNet> {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IpNet::from(IpAddr::V6(Ipv6Addr::from(base | u128::from(x))))
        })
        .collect()
}

fn ban(target: IpNet, since: Time, i: usize) -> Decision {
    Decision::Ban(Ban {
        target,
        jail: "sshd".into(),
        since,
        until: if i.is_multiple_of(10) {
            None
        } else {
            Some(since.saturating_add(Duration::from_secs(30 * 86400)))
        },
        ban_no: 1 + (i % 3) as u32,
        reason: BanReason::Threshold {
            score: Weight(5000),
        },
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let n = v.len();
    format!(
        "min {:.1} ms, median {:.1} ms, p99 {:.1} ms, max {:.1} ms ({n} bursts)",
        ms(v[0]),
        ms(v[n / 2]),
        ms(v[(n * 99 / 100).min(n - 1)]),
        ms(v[n - 1])
    )
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    let n = env("STORE_N", 1_000_000);
    let burst = env("STORE_BURST", 10_000).max(1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let mut store = Store::open(&db).unwrap();
    let day = Duration::from_secs(86400);
    let keep = Duration::from_secs(7 * 86400);
    let t0 = Time::from_secs(1_800_000_000);
    let targets = addresses(n);

    println!("store at scale: {n} bans in bursts of {burst}, with history");
    // Week 1: every address banned once (history rows that a later prune removes).
    let mut bursts = Vec::new();
    for (c, chunk) in targets.chunks(burst).enumerate() {
        let since = t0.saturating_add(Duration::from_secs(c as u64));
        let d: Vec<Decision> = chunk
            .iter()
            .enumerate()
            .map(|(i, &t)| ban(t, since, i))
            .collect();
        let s = Instant::now();
        store.apply(&d, since).unwrap();
        bursts.push(s.elapsed());
    }
    println!("write 1 (fresh file)        : {}", summary(bursts));
    println!(
        "size after write 1          : db {:.1} MiB, wal {:.1} MiB",
        file_size(&db) as f64 / 1048576.0,
        file_size(&wal) as f64 / 1048576.0
    );
    // Week 2 (8 days later): every address banned again: bans replaced, history doubles.
    let t1 = t0.saturating_add(day * 8);
    let mut bursts = Vec::new();
    for (c, chunk) in targets.chunks(burst).enumerate() {
        let since = t1.saturating_add(Duration::from_secs(c as u64));
        let d: Vec<Decision> = chunk
            .iter()
            .enumerate()
            .map(|(i, &t)| ban(t, since, i))
            .collect();
        let s = Instant::now();
        store.apply(&d, since).unwrap();
        bursts.push(s.elapsed());
    }
    println!("write 2 (replace, 2× hist.) : {}", summary(bursts));
    let stats = store.stats().unwrap();
    println!(
        "rows                        : bans {}, history {}; db {:.1} MiB, wal {:.1} MiB",
        stats.bans,
        stats.history,
        file_size(&db) as f64 / 1048576.0,
        file_size(&wal) as f64 / 1048576.0
    );

    let now = t1.saturating_add(day);
    let s = Instant::now();
    let in_force = store.bans_in_force(now).unwrap();
    println!(
        "bans_in_force (start)       : {:.0} ms for {}",
        ms(s.elapsed()),
        in_force.len()
    );
    drop(in_force);
    let s = Instant::now();
    let hist = store.history("sshd", now.saturating_sub(keep)).unwrap();
    println!(
        "history within 7 d (start)  : {:.0} ms for {}",
        ms(s.elapsed()),
        hist.len()
    );
    drop(hist);

    // A reopen, as a restart does it (open + migrate check).
    drop(store);
    let s = Instant::now();
    let mut store = Store::open(&db).unwrap();
    let open = s.elapsed();
    let s = Instant::now();
    let n_active = store.active_bans(now).unwrap().len();
    println!(
        "reopen + active_bans        : open {:.1} ms, read {:.0} ms for {n_active}",
        ms(open),
        ms(s.elapsed())
    );

    // Prune week 1's history, then maintain, each as the daemon's tick runs them, with a
    // ban burst right after: the loop is single-writer, so a tick delays the next burst by
    // its whole time.
    let mut ticks = Vec::new();
    let mut history_left = store.stats().unwrap().history;
    let mut tick_no = 0u64;
    loop {
        let s = Instant::now();
        let p = store.prune(now, keep).unwrap();
        let prune = s.elapsed();
        let s = Instant::now();
        store.maintain().unwrap();
        let maintain = s.elapsed();
        let st = store.stats().unwrap();
        ticks.push((prune, maintain, p.history_rows, st.history));
        tick_no += 1;
        if st.history == history_left || tick_no > 1000 {
            break;
        }
        history_left = st.history;
    }
    for (i, (p, m, removed, left)) in ticks.iter().enumerate().take(3) {
        println!(
            "tick {i}: prune {:.0} ms ({removed} history rows, {left} left), maintain {:.0} ms",
            ms(*p),
            ms(*m)
        );
    }
    let worst = ticks.iter().map(|t| t.0 + t.1).max().unwrap_or_default();
    println!(
        "maintenance ticks to steady : {} (worst tick {:.0} ms: the longest a burst waits)",
        ticks.len(),
        ms(worst)
    );
    println!(
        "size after prune+maintain   : db {:.1} MiB, wal {:.1} MiB",
        file_size(&db) as f64 / 1048576.0,
        file_size(&wal) as f64 / 1048576.0
    );
    let since = now;
    let d: Vec<Decision> = addresses(n + burst)[n..]
        .iter()
        .enumerate()
        .map(|(i, &t)| ban(t, since, i))
        .collect();
    let s = Instant::now();
    store.apply(&d, since).unwrap();
    println!(
        "burst after maintenance     : {:.1} ms for {}",
        ms(s.elapsed()),
        d.len()
    );
    drop(store);

    // Query plans of what the daemon runs at this size.
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (what, sql) in [
        (
            "bans_in_force",
            "SELECT * FROM bans WHERE until_us IS NULL OR until_us > 1 ORDER BY since_us, jail, target",
        ),
        (
            "prune bans",
            "DELETE FROM bans WHERE until_us IS NOT NULL AND until_us <= 1",
        ),
        ("prune history", "DELETE FROM history WHERE time_us < 1"),
        (
            "history (start)",
            "SELECT target, time_us FROM history WHERE jail = 'sshd' AND time_us >= 1 ORDER BY time_us, id",
        ),
        (
            "unban",
            "DELETE FROM bans WHERE jail = 'sshd' AND target = 'x'",
        ),
        ("unban (any jail)", "DELETE FROM bans WHERE target = 'x'"),
        (
            "forget history",
            "DELETE FROM history WHERE jail = 'sshd' AND target = 'x'",
        ),
        (
            "windows (start)",
            "SELECT addr FROM windows WHERE jail = 'sshd' AND until_us > 1 ORDER BY addr",
        ),
        ("prune windows", "DELETE FROM windows WHERE until_us <= 1"),
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        println!("plan {what:<16}: {}", plan.join(" / "));
    }
}
