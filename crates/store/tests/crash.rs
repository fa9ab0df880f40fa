//! Crash safety: a child process commits bans (with their position and a window) in a loop
//! and is killed with SIGKILL at random moments; every reopen must find a sound file whose
//! bans are exactly a prefix of the sequence, containing everything the child reported as
//! committed, with the position and the window of that same prefix.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason, Decision, Weight};
use portcullis_core::jail::{WindowEntry, WindowState};
use portcullis_store::{SourcePosition, Store};

const CHILD_ENV: &str = "PORTCULLIS_STORE_CRASH_CHILD_DB";
const SOURCE: &str = "/var/log/auth.log";

fn nth(n: u64) -> IpNet {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    IpNet::from(IpAddr::V6(Ipv6Addr::from(base + u128::from(n))))
}

fn id_of(net: &IpNet) -> u64 {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    match net.addr() {
        IpAddr::V6(a) => u64::try_from(u128::from(a) - base).unwrap(),
        IpAddr::V4(_) => panic!("unexpected v4 ban"),
    }
}

/// Not a test on its own: the writer process of the crash test (runs only with CHILD_ENV).
#[test]
#[ignore = "child process of kill_9_at_random_moments_leaves_a_committed_prefix"]
fn crash_writer_child() {
    let path = std::env::var(CHILD_ENV).expect("run by the crash test only");
    let mut store = Store::open(&path).unwrap();
    let mut next = store.active_bans(Time::EPOCH).unwrap().len() as u64;
    let mut out = std::io::stdout().lock();
    let mut batch = 1;
    loop {
        // Batches of 1..=7 bans, one transaction each, with the position that "produced" them.
        let ids: Vec<u64> = (next..next + batch).collect();
        let decisions: Vec<Decision> = ids
            .iter()
            .map(|&id| {
                Decision::Ban(Ban {
                    target: nth(id),
                    jail: "sshd".into(),
                    since: Time::from_secs(1_000 + id as i64),
                    until: None,
                    ban_no: 1,
                    reason: BanReason::Manual,
                })
            })
            .collect();
        let pos = SourcePosition::File {
            dev: 1,
            ino: 2,
            offset: next + batch,
            first_line_hash: 3,
        };
        // A window that "counted" every line up to the position: one entry per line.
        let window = WindowState {
            addr: "198.51.100.7".parse().unwrap(),
            entries: (0..next + batch)
                .map(|i| WindowEntry {
                    time: Time::from_secs(i as i64),
                    weight: Weight(1000),
                    attempts: 1,
                })
                .collect(),
            slow: Vec::new(),
            until: Time::from_secs(1 << 40),
        };
        store
            .apply_burst(
                &decisions,
                &[(SOURCE, pos)],
                &[("sshd", window)],
                Time::from_secs(1_000),
            )
            .unwrap();
        for id in ids {
            writeln!(out, "committed {id}").unwrap();
        }
        out.flush().unwrap();
        next += batch;
        batch = batch % 7 + 1;
    }
}

use portcullis_testkit::Xorshift as Rng;

#[test]
fn kill_9_at_random_moments_leaves_a_committed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let mut reported_total = 0u64;
    for round in 0..24 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("committed ") {
                    ids.push(id.parse::<u64>().unwrap());
                    if ids.len() == 1 {
                        let _ = first_tx.send(());
                    }
                }
            }
            ids
        });
        if round % 6 == 5 {
            // Sometimes kill early: during start-up, open or the first commits.
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        } else {
            first_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("child never committed");
            std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let reported = reader.join().unwrap();

        let store = Store::open(&db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), Ok(()), "round {round}");
        let mut ids: Vec<u64> = store
            .active_bans(Time::EPOCH)
            .unwrap()
            .iter()
            .map(|b| id_of(&b.target))
            .collect();
        ids.sort_unstable();
        let m = ids.len() as u64;
        assert!(
            ids.iter().copied().eq(0..m),
            "round {round}: bans are not a prefix: {ids:?}"
        );
        if let Some(&last) = reported.last() {
            assert!(
                m > last,
                "round {round}: reported id {last} lost (db has {m})"
            );
            // At most one batch (<= 7 bans) committed but not yet reported.
            assert!(
                m <= last + 1 + 7,
                "round {round}: db has {m}, last reported {last}"
            );
        }
        assert!(reported.windows(2).all(|w| w[1] == w[0] + 1));
        // Positions commit with the bans they belong to.
        match store.load_position(SOURCE).unwrap() {
            Some(SourcePosition::File { offset, .. }) => assert_eq!(offset, m, "round {round}"),
            None => assert_eq!(m, 0),
            other => panic!("unexpected position {other:?}"),
        }
        assert_eq!(store.history("sshd", Time::EPOCH).unwrap().len() as u64, m);
        // So do the windows: exactly the lines before the position, never one more or less.
        let windows = store.windows("sshd", Time::EPOCH).unwrap();
        let counted = windows.first().map_or(0, |w| w.entries.len() as u64);
        assert_eq!(
            counted, m,
            "round {round}: window out of step with the position"
        );
        reported_total += reported.len() as u64;
        println!("round {round}: {} reported, {m} in the db", reported.len());
    }
    assert!(reported_total > 0);
}
