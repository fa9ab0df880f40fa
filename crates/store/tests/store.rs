//! Round trips, migrations, pruning and maintenance of the state database.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::{Alert, Ban, BanReason, Decision, UnbanReason, Weight};
use portcullis_core::jail::{WindowEntry, WindowState};
use portcullis_store::{Limits, SCHEMA_VERSION, SourcePosition, Store, StoreError};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A distinct /128 in 2001:db8::/32 for each `n`.
fn nth(n: u64) -> IpNet {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    IpNet::from(IpAddr::V6(Ipv6Addr::from(base + u128::from(n))))
}

fn ban(jail: &str, target: IpNet, since: i64, until: Option<i64>, ban_no: u32) -> Ban {
    Ban {
        target,
        jail: jail.into(),
        since: Time::from_secs(since),
        until: until.map(Time::from_secs),
        ban_no,
        reason: BanReason::Threshold {
            score: Weight(5000),
        },
    }
}

fn tmp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    (dir, path)
}

#[test]
fn bans_round_trip_with_every_reason_and_survive_reopen() {
    let (_dir, path) = tmp();
    let mut bans = vec![
        ban("sshd", net("192.0.2.1/32"), 100, Some(700), 1),
        ban("sshd", net("2001:db8::/64"), 101, None, 3),
        ban("web", net("198.51.100.0/24"), 102, Some(10_000), 2),
        ban("web", net("203.0.113.9/32"), 103, None, 1),
    ];
    bans[1].reason = BanReason::Aggregate { members: 7 };
    bans[2].reason = BanReason::Manual;
    bans[3].reason = BanReason::Restored;
    // Sub-second precision is kept.
    bans[0].since = Time::from_micros(100_123_456);
    {
        let mut store = Store::open(&path).unwrap();
        let decisions: Vec<_> = bans.iter().cloned().map(Decision::Ban).collect();
        store.apply(&decisions, Time::from_secs(104)).unwrap();
        assert_eq!(store.active_bans(Time::from_secs(104)).unwrap(), bans);
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.active_bans(Time::from_secs(104)).unwrap(), bans);
    // Expired bans are excluded and deleted.
    let later = store.active_bans(Time::from_secs(700)).unwrap();
    assert_eq!(later, bans[1..].to_vec());
    assert_eq!(store.stats().unwrap().bans, 3);
}

#[test]
fn fleet_bans_keep_their_origin_write_no_history_and_allows_persist() {
    let (_dir, path) = tmp();
    let mut fleet = ban("fleet", net("192.0.2.40/32"), 100, Some(900), 1);
    fleet.reason = BanReason::Fleet {
        origin: "node-a,node-c".into(),
    };
    let own = ban("sshd", net("192.0.2.41/32"), 100, Some(900), 1);
    {
        let mut store = Store::open(&path).unwrap();
        let decisions = [Decision::Ban(fleet.clone()), Decision::Ban(own.clone())];
        store.apply(&decisions, Time::from_secs(101)).unwrap();
        store
            .add_fleet_allow(net("198.51.100.0/24"), Time::from_secs(102))
            .unwrap();
        // Twice: idempotent.
        store
            .add_fleet_allow(net("198.51.100.0/24"), Time::from_secs(103))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let mut bans = store.active_bans(Time::from_secs(104)).unwrap();
    bans.sort_by_key(|a| a.target);
    assert_eq!(bans, vec![fleet, own]);
    // Another node's ban is not an offence of this node's jails.
    assert!(
        store
            .history("fleet", Time::from_secs(0))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.history("sshd", Time::from_secs(0)).unwrap().len(), 1);
    assert_eq!(store.fleet_allows().unwrap(), vec![net("198.51.100.0/24")]);
}

#[test]
fn a_new_ban_replaces_the_active_one_and_unban_deletes() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let t = net("192.0.2.7/32");
    store
        .apply(
            &[Decision::Ban(ban("sshd", t, 10, Some(20), 1))],
            Time::from_secs(10),
        )
        .unwrap();
    store
        .apply(
            &[Decision::Ban(ban("sshd", t, 30, Some(90), 2))],
            Time::from_secs(30),
        )
        .unwrap();
    // Same target in another jail is a separate ban.
    store
        .apply(
            &[Decision::Ban(ban("web", t, 31, None, 1))],
            Time::from_secs(31),
        )
        .unwrap();
    let active = store.active_bans(Time::from_secs(32)).unwrap();
    assert_eq!(
        active,
        vec![ban("sshd", t, 30, Some(90), 2), ban("web", t, 31, None, 1)]
    );
    // One history row per ban decision.
    let hist = store.history("sshd", Time::EPOCH).unwrap();
    assert_eq!(
        hist,
        vec![(t, Time::from_secs(10)), (t, Time::from_secs(30))]
    );
    assert_eq!(
        store.history("sshd", Time::from_secs(11)).unwrap(),
        vec![(t, Time::from_secs(30))]
    );
    assert_eq!(store.history("web", Time::EPOCH).unwrap().len(), 1);

    let unban = Decision::Unban {
        target: t,
        jail: "sshd".into(),
        reason: UnbanReason::Manual,
    };
    store.apply(&[unban], Time::from_secs(33)).unwrap();
    assert_eq!(
        store.active_bans(Time::from_secs(33)).unwrap(),
        vec![ban("web", t, 31, None, 1)]
    );
    // History outlives the unban (escalation needs it).
    assert_eq!(store.history("sshd", Time::EPOCH).unwrap().len(), 2);
}

#[test]
fn restored_bans_add_no_history() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let mut b = ban("sshd", net("192.0.2.8/32"), 10, None, 3);
    b.reason = BanReason::Restored;
    store
        .apply(&[Decision::Ban(b.clone())], Time::from_secs(10))
        .unwrap();
    assert_eq!(store.active_bans(Time::from_secs(10)).unwrap(), vec![b]);
    assert!(store.history("sshd", Time::EPOCH).unwrap().is_empty());
}

#[test]
fn one_failing_batch_writes_nothing() {
    // A batch is one transaction: if the commit cannot happen, no decision of it is visible.
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.busy_timeout(Duration::ZERO).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The store waits up to its busy timeout, then fails; run a short version of that.
    let t0 = std::time::Instant::now();
    let res = store.apply(
        &[Decision::Ban(ban("sshd", nth(1), 1, None, 1))],
        Time::from_secs(1),
    );
    assert!(matches!(res, Err(StoreError::Sqlite { .. })), "{res:?}");
    assert!(
        t0.elapsed() >= Duration::from_secs(4),
        "busy timeout not honoured"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(store.active_bans(Time::from_secs(1)).unwrap().is_empty());
}

#[test]
fn remove_ban_and_clear_bans() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let t = net("192.0.2.9/32");
    let other = net("192.0.2.10/32");
    let ds = [
        Decision::Ban(ban("sshd", t, 1, None, 1)),
        Decision::Ban(ban("web", t, 2, None, 1)),
        Decision::Ban(ban("sshd", other, 3, None, 1)),
    ];
    store.apply(&ds, Time::from_secs(3)).unwrap();
    let removed = store.remove_ban(Some("web"), t).unwrap();
    assert_eq!(removed, vec![ban("web", t, 2, None, 1)]);
    assert!(store.remove_ban(Some("web"), t).unwrap().is_empty());
    store
        .apply(
            &[Decision::Ban(ban("web", t, 4, None, 1))],
            Time::from_secs(4),
        )
        .unwrap();
    let removed = store.remove_ban(None, t).unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(
        store.active_bans(Time::from_secs(5)).unwrap(),
        vec![ban("sshd", other, 3, None, 1)]
    );
    assert_eq!(store.forget_history(None, t).unwrap(), 3);
    assert_eq!(
        store.history("sshd", Time::EPOCH).unwrap(),
        vec![(other, Time::from_secs(3))]
    );
    assert_eq!(store.clear_bans().unwrap(), 1);
    assert!(store.active_bans(Time::from_secs(5)).unwrap().is_empty());
}

#[test]
fn positions_round_trip_and_commit_with_decisions() {
    let (_dir, path) = tmp();
    let file = SourcePosition::File {
        dev: u64::MAX,
        ino: 1 << 63,
        offset: 123_456,
        first_line_hash: 0xdead_beef_0bad_cafe,
    };
    let journal = SourcePosition::Journal {
        cursor: "s=abc;i=1f;b=def;m=10;t=5f;x=42".into(),
    };
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.load_position("/var/log/auth.log").unwrap(), None);
        store
            .save_positions(
                &[
                    ("/var/log/auth.log", file.clone()),
                    ("journal:sshd", journal.clone()),
                ],
                Time::from_secs(5),
            )
            .unwrap();
        let moved = SourcePosition::File {
            dev: 1,
            ino: 2,
            offset: 999,
            first_line_hash: 3,
        };
        store
            .apply_with_positions(
                &[Decision::Ban(ban("sshd", nth(5), 6, None, 1))],
                &[("/var/log/other.log".to_string(), moved)],
                Time::from_secs(6),
            )
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.load_position("/var/log/auth.log").unwrap(),
        Some(file)
    );
    assert_eq!(store.load_position("journal:sshd").unwrap(), Some(journal));
    let all = store.positions().unwrap();
    let keys: Vec<_> = all.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["/var/log/auth.log", "/var/log/other.log", "journal:sshd"]
    );
    assert_eq!(all[1].2, Time::from_secs(6));
    assert_eq!(store.active_bans(Time::from_secs(6)).unwrap().len(), 1);
    assert!(store.remove_position("journal:sshd").unwrap());
    assert_eq!(store.load_position("journal:sshd").unwrap(), None);
}

#[test]
fn alerts_round_trip_newest_first() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let addr: IpAddr = "203.0.113.5".parse().unwrap();
    let breach = Alert::Breach {
        addr,
        user: Some("root from 6.6.6.6".into()),
        failures: 42,
        time: Time::from_secs(50),
    };
    let root = Alert::RootLogin {
        addr,
        time: Time::from_secs(60),
    };
    store
        .apply(
            &[
                Decision::Alert(breach.clone()),
                Decision::Alert(root.clone()),
            ],
            Time::from_secs(60),
        )
        .unwrap();
    let got: Vec<_> = store
        .recent_alerts(10)
        .unwrap()
        .into_iter()
        .map(|a| a.alert)
        .collect();
    assert_eq!(got, vec![root.clone(), breach]);
    let got: Vec<_> = store
        .recent_alerts(1)
        .unwrap()
        .into_iter()
        .map(|a| a.alert)
        .collect();
    assert_eq!(got, vec![root]);
    // The json column is valid JSON carrying the attacker-chosen user verbatim.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let json: String = conn
        .query_row("SELECT json FROM alerts WHERE kind = 'breach'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["user"], "root from 6.6.6.6");
    assert_eq!(v["failures"], 42);
}

#[test]
fn prune_drops_old_history_expired_bans_and_old_alerts() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let day = 86_400;
    let mut ds = Vec::new();
    for i in 0..10u64 {
        // bans at day 0..9, each lasting one hour
        let since = i as i64 * day;
        ds.push(Decision::Ban(ban(
            "sshd",
            nth(i),
            since,
            Some(since + 3600),
            1,
        )));
        ds.push(Decision::Alert(Alert::RootLogin {
            addr: "192.0.2.1".parse().unwrap(),
            time: Time::from_secs(since),
        }));
    }
    ds.push(Decision::Ban(ban("sshd", nth(99), 0, None, 4)));
    store.apply(&ds, Time::EPOCH).unwrap();
    let now = Time::from_secs(9 * day);
    let stats = store
        .prune(now, Duration::from_secs(7 * day as u64))
        .unwrap();
    // Bans 0..8 expired (ban 9 runs until 9d+1h); history before day 2 goes (days 0, 1 and
    // the permanent ban's row at day 0); alerts before day 2 go.
    assert_eq!(stats.expired_bans, 9);
    assert_eq!(stats.history_rows, 3);
    assert_eq!(stats.alerts, 2);
    let hist = store.history("sshd", Time::EPOCH).unwrap();
    assert_eq!(hist.len(), 8);
    assert!(hist.iter().all(|(_, t)| *t >= Time::from_secs(2 * day)));
    let active = store.active_bans(now).unwrap();
    assert_eq!(
        active.iter().map(|b| b.target).collect::<Vec<_>>(),
        vec![nth(99), nth(9)]
    );
    assert_eq!(store.recent_alerts(100).unwrap().len(), 8);
    // A second prune finds nothing.
    assert_eq!(
        store
            .prune(now, Duration::from_secs(7 * day as u64))
            .unwrap(),
        Default::default()
    );
}

#[test]
fn maintain_shrinks_the_file_after_a_flush() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let ds: Vec<_> = (0..20_000)
        .map(|i| Decision::Ban(ban("sshd", nth(i), 1, None, 1)))
        .collect();
    store.apply(&ds, Time::from_secs(1)).unwrap();
    store.maintain().unwrap();
    let big = store.stats().unwrap().file_bytes;
    assert!(big > 1_000_000, "{big}");
    store.clear_bans().unwrap();
    store
        .prune(Time::from_secs(10_000_000), Duration::from_secs(1))
        .unwrap();
    store.maintain().unwrap();
    let small = store.stats().unwrap().file_bytes;
    assert!(small < big / 10, "file did not shrink: {big} -> {small}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), small);
    let wal = path.with_extension("db-wal");
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "wal not truncated"
    );
    assert_eq!(store.integrity_check().unwrap(), Ok(()));
}

/// Issue 13 item 4: one prune call deletes at most a batch per kind and says more is due;
/// the history cap keeps the newest rows whatever their age.
#[test]
fn prune_is_bounded_per_call_and_caps_the_history() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    store.set_limits(Limits {
        max_history: 30,
        prune_batch: 10,
        vacuum_pages: 4096,
    });
    let day = 86_400;
    // 25 bans at day 0 expired after an hour (25 old history rows), then 40 bans in force
    // at day 9 (40 fresh history rows: 10 over the cap of 30).
    let mut ds: Vec<_> = (0..25)
        .map(|i| Decision::Ban(ban("sshd", nth(i), 0, Some(3600), 1)))
        .collect();
    ds.extend((100..140).map(|i| Decision::Ban(ban("other", nth(i), 9 * day, None, 1))));
    store.apply(&ds, Time::EPOCH).unwrap();
    let now = Time::from_secs(9 * day + 60);
    let keep = Duration::from_secs(7 * day as u64);
    let steps: Vec<_> = std::iter::repeat_with(|| store.prune(now, keep).unwrap())
        .take(5)
        .map(|p| (p.expired_bans, p.history_rows, p.more))
        .collect();
    // Step 1: 10 expired bans, 10 old rows by age + 10 over the cap (the oldest ids: the
    // remaining old rows are the oldest). Step 2: 10 bans, 10 + 5 rows. Step 3: 5 bans, the
    // last old rows; nothing more is due after it.
    assert_eq!(steps[0], (10, 20, true));
    assert_eq!(steps[1], (10, 15, true));
    assert_eq!((steps[2].0, steps[2].2), (5, false));
    assert!(steps[3..].iter().all(|s| *s == (0, 0, false)), "{steps:?}");
    let stats = store.stats().unwrap();
    assert_eq!((stats.bans, stats.history), (40, 30));
    // The cap kept the newest rows: all of them the fresh jail's, the oldest 10 gone.
    let fresh = store.history("other", Time::EPOCH).unwrap();
    assert_eq!(fresh.len(), 30);
    assert!(store.history("sshd", Time::EPOCH).unwrap().is_empty());
}

/// A freed file gives its pages back a bounded step at a time; `more` says a step is due.
#[test]
fn maintain_vacuums_in_bounded_steps() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let ds: Vec<_> = (0..20_000)
        .map(|i| Decision::Ban(ban("sshd", nth(i), 1, None, 1)))
        .collect();
    store.apply(&ds, Time::from_secs(1)).unwrap();
    store.clear_bans().unwrap();
    store
        .prune(Time::from_secs(10_000_000), Duration::from_secs(1))
        .unwrap();
    store.set_limits(Limits {
        vacuum_pages: 50,
        ..Limits::default()
    });
    let before = store.stats().unwrap().file_bytes;
    let first = store.maintain().unwrap();
    assert!(first.more && !first.checkpoint_blocked, "{first:?}");
    let after = store.stats().unwrap().file_bytes;
    assert_eq!(
        before - after,
        50 * 4096,
        "one step frees exactly its pages"
    );
    let mut steps = 1;
    while store.maintain().unwrap().more {
        steps += 1;
        assert!(steps < 10_000, "never done");
    }
    assert!(steps > 2, "{steps}");
    assert!(store.stats().unwrap().file_bytes < before / 10);
}

/// Fault (issue 13 item 4): an operator's `sqlite3` holds a read snapshot, so the WAL
/// cannot be checkpointed. The step does not wait for it (the ban path would), says so, and
/// bans still flow; once the reader is gone the next step truncates the WAL.
#[test]
fn a_reader_blocks_the_checkpoint_but_not_the_step_nor_the_bans() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    store
        .apply(
            &[Decision::Ban(ban("sshd", nth(1), 1, None, 1))],
            Time::from_secs(1),
        )
        .unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM bans", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let ds: Vec<_> = (10..1010)
        .map(|i| Decision::Ban(ban("sshd", nth(i), 2, None, 1)))
        .collect();
    store.apply(&ds, Time::from_secs(2)).unwrap();
    let t = std::time::Instant::now();
    let m = store.maintain().unwrap();
    assert!(m.checkpoint_blocked, "{m:?}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "waited {:?} for the reader",
        t.elapsed()
    );
    let wal = path.with_extension("db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    // Bans keep flowing while the reader stays.
    store
        .apply(
            &[Decision::Ban(ban("sshd", nth(2), 3, None, 1))],
            Time::from_secs(3),
        )
        .unwrap();
    assert_eq!(store.stats().unwrap().bans, 1002);
    drop(reader);
    let m = store.maintain().unwrap();
    assert!(!m.checkpoint_blocked, "{m:?}");
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "wal not truncated"
    );
    // The busy timeout is back for the ban path: a short-lived writer lock is waited for.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    store
        .apply(
            &[Decision::Ban(ban("sshd", nth(3), 4, None, 1))],
            Time::from_secs(4),
        )
        .unwrap();
    release.join().unwrap();
}

/// Fault: another writer holds the database lock during a step that has pages to free.
/// The step fails at once with the lock named (the daemon logs it and retries next
/// period) instead of stalling the loop for the busy timeout; bans flow after it.
#[test]
fn a_locked_database_fails_the_step_at_once_and_bans_flow_after() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let ds: Vec<_> = (0..5000)
        .map(|i| Decision::Ban(ban("sshd", nth(i), 1, None, 1)))
        .collect();
    store.apply(&ds, Time::from_secs(1)).unwrap();
    store.clear_bans().unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t = std::time::Instant::now();
    let err = store.maintain().unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        t.elapsed()
    );
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.contains("vacuum"), "{text}");
    assert!(text.to_lowercase().contains("locked"), "{text}");
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    store
        .apply(
            &[Decision::Ban(ban("sshd", nth(9), 2, None, 1))],
            Time::from_secs(2),
        )
        .unwrap();
    assert_eq!(store.stats().unwrap().bans, 1);
    assert!(store.maintain().is_ok());
}

/// Every table's and index's SQL, by name.
fn schema(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT sql FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|r| r.unwrap().unwrap_or_default())
        .collect()
}

#[test]
fn fresh_file_is_current_wal_full_and_reopen_is_idempotent() {
    let (_dir, path) = tmp();
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), i64::from(SCHEMA_VERSION));
        store
            .apply(
                &[Decision::Ban(ban("sshd", nth(1), 1, None, 1))],
                Time::from_secs(1),
            )
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let av: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(av, 2, "auto_vacuum should be INCREMENTAL");
    let schema_before = schema(&conn);
    drop(conn);
    for _ in 0..3 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), i64::from(SCHEMA_VERSION));
        assert_eq!(store.active_bans(Time::from_secs(2)).unwrap().len(), 1);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema_before, schema(&conn));
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let (_dir, path) = tmp();
    Store::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // One past this build's version, whatever it is now.
    let future = SCHEMA_VERSION + 1;
    conn.execute_batch(&format!(
        "PRAGMA user_version = {future}; CREATE TABLE from_the_future (x);"
    ))
    .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::TooNew {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (i64::from(future), SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("schema version {future}")) && msg.contains("newer"),
        "{msg}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, i64::from(future));
}

#[test]
fn a_foreign_database_is_refused() {
    let (_dir, path) = tmp();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE bans (jail, ip, timeofban)")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Foreign { .. })
    ));
    let (_dir2, path2) = tmp();
    let conn = rusqlite::Connection::open(&path2).unwrap();
    conn.execute_batch("PRAGMA application_id = 1234").unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path2),
        Err(StoreError::Foreign { .. })
    ));
}

#[test]
fn an_unopenable_path_is_an_open_error() {
    let err = Store::open("/nonexistent-dir-portcullis/state.db").unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent-dir-portcullis/state.db")
    );
}

#[test]
fn the_store_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let (_dir, path) = tmp();
    let store = Store::open(&path).unwrap();
    assert_send(&store);
    let handle = std::thread::spawn(move || store.active_bans(Time::EPOCH).unwrap().len());
    assert_eq!(handle.join().unwrap(), 0);
}

#[test]
fn read_only_open_lists_bans_and_history_without_writing() {
    let (_dir, path) = tmp();
    assert!(
        Store::open_read_only(&path).is_err(),
        "a missing file is not created"
    );
    assert!(!path.exists());
    {
        let mut store = Store::open(&path).unwrap();
        let decisions = vec![
            Decision::Ban(ban("sshd", net("192.0.2.7/32"), 100, Some(200), 1)),
            Decision::Ban(ban("sshd", net("192.0.2.0/24"), 150, None, 1)),
            Decision::Ban(ban("web", net("198.51.100.1/32"), 160, Some(500), 1)),
        ];
        store.apply(&decisions, Time::from_secs(160)).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let store = Store::open_read_only(&path).unwrap();
    let now = Time::from_secs(300);
    let in_force: Vec<String> = store
        .bans_in_force(now)
        .unwrap()
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    assert_eq!(in_force, ["192.0.2.0/24", "198.51.100.1/32"]);
    let history = store.history_of("192.0.2.7".parse().unwrap()).unwrap();
    let targets: Vec<String> = history.iter().map(|h| h.1.to_string()).collect();
    assert_eq!(targets, ["192.0.2.7/32", "192.0.2.0/24"]);
    assert_eq!(history[0].2, Time::from_secs(100));
    // The expired ban is still in the file: nothing was deleted.
    assert_eq!(store.stats().unwrap().bans, 3);
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

fn window(addr: &str, times: &[i64], findtime: i64) -> WindowState {
    WindowState {
        addr: addr.parse().unwrap(),
        entries: times
            .iter()
            .map(|&t| WindowEntry {
                time: Time::from_secs(t),
                weight: Weight(500),
                attempts: u32::from(t % 2 == 0),
            })
            .collect(),
        slow: Vec::new(),
        until: Time::from_secs(times.last().copied().unwrap_or(0) + findtime),
    }
}

#[test]
fn windows_round_trip_replace_delete_and_prune() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let a = window("198.51.100.1", &[100, 101, 150], 600);
    let mut b = window("2001:db8::7", &[120], 600);
    // A long window's buckets ride in their own column.
    b.slow = vec![
        WindowEntry {
            time: Time::from_secs(0),
            weight: Weight(3000),
            attempts: 0,
        },
        WindowEntry {
            time: Time::from_secs(100),
            weight: Weight(1000),
            attempts: 0,
        },
    ];
    let other = window("198.51.100.1", &[130], 60);
    store
        .apply_burst::<&str, &str>(
            &[],
            &[],
            &[
                ("sshd", a.clone()),
                ("sshd", b.clone()),
                ("web", other.clone()),
            ],
            Time::from_secs(200),
        )
        .unwrap();
    drop(store);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.windows("sshd", Time::from_secs(200)).unwrap(),
        [a, b.clone()]
    );
    assert_eq!(store.windows("web", Time::from_secs(189)).unwrap(), [other]);
    // Ran out (130 + 60): not read, then pruned.
    assert!(
        store
            .windows("web", Time::from_secs(190))
            .unwrap()
            .is_empty()
    );
    // A later state replaces the row; an empty one deletes it.
    let a2 = window("198.51.100.1", &[150, 160], 600);
    let gone = WindowState {
        addr: "2001:db8::7".parse().unwrap(),
        entries: Vec::new(),
        slow: Vec::new(),
        until: Time::EPOCH,
    };
    store
        .apply_burst::<&str, &str>(
            &[],
            &[],
            &[("sshd", a2.clone()), ("sshd", gone)],
            Time::from_secs(210),
        )
        .unwrap();
    assert_eq!(store.windows("sshd", Time::from_secs(210)).unwrap(), [a2]);
    assert_eq!(store.stats().unwrap().windows, 2, "sshd's a2 and web's");
    let pruned = store
        .prune(Time::from_secs(300), std::time::Duration::from_secs(86400))
        .unwrap();
    assert_eq!(pruned.windows, 1);
    assert_eq!(store.stats().unwrap().windows, 1);
    // An unreadable row is skipped, not fatal.
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO windows (jail, addr, entries, until_us) VALUES ('sshd', 'x', x'0102', 9e15)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.windows("sshd", Time::from_secs(210)).unwrap().len(),
        1
    );
}

/// What the migrations after version 3 added, undone, so a test can make the file an
/// older version wrote (each later migration adds its own undo here).
const UNDO_LATER: &str = "ALTER TABLE bans DROP COLUMN origin; DROP TABLE fleet_allow; DROP TABLE kernel_sync; \
     DROP TABLE campaigns";

#[test]
fn a_version_1_file_migrates_to_windows_and_keeps_its_bans() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    store
        .apply(
            &[Decision::Ban(ban("sshd", nth(1), 10, None, 1))],
            Time::from_secs(10),
        )
        .unwrap();
    drop(store);
    // Make it the file version 1 wrote: no windows table.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "DROP TABLE windows; {UNDO_LATER}; PRAGMA user_version = 1;"
    ))
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), i64::from(SCHEMA_VERSION));
    assert_eq!(store.active_bans(Time::from_secs(20)).unwrap().len(), 1);
    assert!(store.windows("sshd", Time::EPOCH).unwrap().is_empty());
}

#[test]
fn a_version_2_window_row_reads_with_an_empty_long_window() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let a = window("198.51.100.1", &[100, 101], 600);
    store
        .apply_burst::<&str, &str>(&[], &[], &[("sshd", a.clone())], Time::from_secs(110))
        .unwrap();
    drop(store);
    // The file version 2 wrote: no slow column.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "ALTER TABLE windows DROP COLUMN slow; {UNDO_LATER}; PRAGMA user_version = 2;"
    ))
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), i64::from(SCHEMA_VERSION));
    assert_eq!(store.windows("sshd", Time::from_secs(110)).unwrap(), [a]);
}

#[test]
fn the_kernel_sync_holds_until_a_ban_changes_and_survives_reopen() {
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let b = ban("sshd", net("192.0.2.1/32"), 10, Some(1000), 1);
    store
        .apply(&[Decision::Ban(b.clone())], Time::from_secs(10))
        .unwrap();
    // Nothing recorded yet: never in sync.
    assert!(!store.kernel_in_sync(7).unwrap());
    store.note_kernel_sync(7);
    assert!(store.sync_pending());
    // Recorded by the next write, even one without decisions.
    store
        .apply_burst::<&str, &str>(&[], &[], &[], Time::from_secs(11))
        .unwrap();
    assert!(!store.sync_pending());
    assert!(store.kernel_in_sync(7).unwrap());
    assert!(!store.kernel_in_sync(8).unwrap(), "another generation");
    drop(store);
    let mut store = Store::open(&path).unwrap();
    assert!(store.kernel_in_sync(7).unwrap(), "kept across a restart");
    // A decision written after the sync (the kill came before the kernel got it): out of sync.
    let b2 = ban("sshd", net("192.0.2.2/32"), 12, Some(1000), 1);
    store
        .apply(&[Decision::Ban(b2)], Time::from_secs(12))
        .unwrap();
    assert!(!store.kernel_in_sync(7).unwrap());
    // A sync noted after it vouches for it; an unban command then breaks it again.
    store.note_kernel_sync(9);
    store
        .apply_burst::<&str, &str>(&[], &[], &[], Time::from_secs(13))
        .unwrap();
    assert!(store.kernel_in_sync(9).unwrap());
    store.remove_ban(None, b.target).unwrap();
    assert!(!store.kernel_in_sync(9).unwrap());
    store.note_kernel_sync(10);
    store
        .apply_burst::<&str, &str>(&[], &[], &[], Time::from_secs(14))
        .unwrap();
    assert!(store.kernel_in_sync(10).unwrap());
    store.clear_bans().unwrap();
    assert!(!store.kernel_in_sync(10).unwrap());
    // Pruning expired rows is not a change the kernel lacks (it drops expired elements).
    store.note_kernel_sync(11);
    let b3 = ban("sshd", net("192.0.2.3/32"), 14, Some(15), 1);
    store
        .apply(&[Decision::Ban(b3)], Time::from_secs(14))
        .unwrap();
    store.note_kernel_sync(12);
    store
        .apply_burst::<&str, &str>(&[], &[], &[], Time::from_secs(15))
        .unwrap();
    store
        .prune(Time::from_secs(100), Duration::from_secs(3600))
        .unwrap();
    assert!(store.kernel_in_sync(12).unwrap());
}

#[test]
fn campaigns_keep_their_latest_report() {
    use portcullis_core::campaign::{CampaignAlert, CampaignKind};
    let (_dir, path) = tmp();
    let mut store = Store::open(&path).unwrap();
    let mut a = CampaignAlert {
        id: "campaign-100".into(),
        kind: CampaignKind::Distributed,
        ended: false,
        start: Time::from_secs(100),
        end: Time::from_secs(3700),
        detected: Time::from_secs(3700),
        participants: vec!["192.0.2.1".parse().unwrap()],
        participant_count: 1,
        new_participants: vec!["192.0.2.1".parse().unwrap()],
        users: vec![("root\"\n".into(), 1)],
        failures: 2,
        confidence: 0.5,
    };
    store.save_campaigns(std::slice::from_ref(&a)).unwrap();
    a.ended = true;
    a.participant_count = 2;
    a.participants.push("192.0.2.2".parse().unwrap());
    store.save_campaigns(&[a]).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let rows = store.recent_campaigns(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].ended);
    assert_eq!(rows[0].participants, 2);
    assert_eq!(rows[0].json["users"][0]["user"], "root\"\n");
    assert_eq!(rows[0].json["participants"][1], "192.0.2.2");
}
