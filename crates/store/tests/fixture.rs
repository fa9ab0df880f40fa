//! The previous release's state database, opened by today's code (issue 14 item 6: an
//! upgrade while bans are active keeps them). The fixture is SQL text written with the
//! schema and encoding of commit 3232b57 (see its header); each test loads it into a fresh
//! file and opens it with `Store::open`, which migrates it if the schema has moved on since.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use portcullis_core::Time;
use portcullis_core::event::{BanReason, Weight};
use portcullis_store::{SCHEMA_VERSION, SourcePosition, Store};

const PREVIOUS_RELEASE: &str = include_str!("fixtures/state-3232b57-schema3.sql");

/// 2026-12-01T00:00:00Z, the fixture's "now".
const NOW_S: i64 = 1_796_083_200;

fn previous_release_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(PREVIOUS_RELEASE).unwrap();
    drop(conn);
    (dir, path)
}

#[test]
fn every_ban_of_the_previous_release_is_restored_with_its_times() {
    let (_dir, path) = previous_release_file();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), i64::from(SCHEMA_VERSION));
    let now = Time::from_secs(NOW_S);
    let mut bans: Vec<_> = store
        .bans_in_force(now)
        .unwrap()
        .into_iter()
        .map(|b| {
            (
                b.jail.to_string(),
                b.target.to_string(),
                b.since.as_micros(),
                b.until.map(Time::as_micros),
                b.ban_no,
                b.reason,
            )
        })
        .collect();
    bans.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let s = |j: &str, t: &str| (j.to_owned(), t.to_owned());
    let expected = [
        (
            s("sshd", "192.0.2.10/32"),
            1_796_000_000_123_456,
            None,
            3,
            BanReason::Threshold {
                score: Weight(5000),
            },
        ),
        (
            s("sshd", "198.51.100.7/32"),
            1_796_080_000_000_000,
            Some(1_796_090_000_000_000),
            1,
            BanReason::Threshold {
                score: Weight(5000),
            },
        ),
        (
            s("sshd", "198.51.100.99/32"),
            1_796_082_500_000_000,
            Some(1_796_086_100_000_000),
            1,
            BanReason::UserNames { users: 12 },
        ),
        (
            s("sshd", "2001:db8:1::/64"),
            1_795_990_000_000_000,
            None,
            2,
            BanReason::Aggregate { members: 7 },
        ),
        (
            s("sshd", "2001:db8::5/128"),
            1_796_082_000_000_000,
            Some(1_796_686_800_000_000),
            1,
            BanReason::SlowThreshold {
                score: Weight(1200),
            },
        ),
        (
            s("web", "203.0.113.0/24"),
            1_796_070_000_500_000,
            Some(1_796_170_000_500_000),
            1,
            BanReason::Manual,
        ),
    ]
    .map(|((j, t), since, until, no, reason)| (j, t, since, until, no, reason));
    assert_eq!(bans, expected);
    // The one that expired before the upgrade is not in force, and the restore deletes it.
    assert_eq!(store.active_bans(now).unwrap().len(), expected.len());
}

#[test]
fn history_positions_and_windows_of_the_previous_release_survive() {
    let (_dir, path) = previous_release_file();
    let store = Store::open(&path).unwrap();
    let offender: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    let times: Vec<i64> = store
        .history_of(offender)
        .unwrap()
        .into_iter()
        .map(|(_, _, t)| t.as_micros())
        .collect();
    assert_eq!(
        times,
        [1_795_000_000_000_000, 1_795_500_000_000_000, 1_796_000_000_123_456]
    );
    let positions: Vec<_> = store
        .positions()
        .unwrap()
        .into_iter()
        .map(|(k, p, _)| (k, p))
        .collect();
    assert_eq!(
        positions,
        [
            (
                "/var/log/auth.log".to_owned(),
                SourcePosition::File {
                    dev: 2049,
                    ino: 131_075,
                    offset: 48_213,
                    first_line_hash: 6_148_914_691_236_517_205,
                }
            ),
            (
                "journal:sshd".to_owned(),
                SourcePosition::Journal {
                    cursor: "s=0123456789abcdef;i=42".to_owned()
                }
            ),
        ]
    );
    let windows = store.windows("sshd", Time::from_secs(NOW_S)).unwrap();
    assert_eq!(windows.len(), 1);
    let w = &windows[0];
    assert_eq!(w.addr.to_string(), "198.51.100.20");
    let entries: Vec<_> = w
        .entries
        .iter()
        .map(|e| (e.time.as_micros(), e.weight.0, e.attempts))
        .collect();
    assert_eq!(
        entries,
        [
            (1_796_083_000_000_000, 1000, 1),
            (1_796_083_010_000_000, 1000, 1)
        ]
    );
    assert!(w.slow.is_empty());
}

#[test]
fn the_previous_release_file_reopens_unchanged_after_the_upgrade() {
    // Opening twice (upgrade, then a restart) neither loses rows nor re-runs a migration.
    let (_dir, path) = previous_release_file();
    let count = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT count(*) FROM bans", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(count(), 7);
    drop(Store::open(&path).unwrap());
    drop(Store::open(&path).unwrap());
    assert_eq!(count(), 7, "opening deletes nothing, not even expired rows");
}
