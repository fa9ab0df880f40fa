//! Store throughput: 100k bans in one transaction, restoring 100k bans at start, 100k
//! changed jail windows in one burst (an attack wave from 100k addresses) and restoring
//! them, and the latency of one durable single-ban commit (an fsync; it sits on the ban
//! path).
//!
//! Run: `cargo bench -p portcullis-store` (numbers in target/criterion).

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason, Decision, Weight};
use portcullis_core::jail::{WindowEntry, WindowState};
use portcullis_store::Store;

const N: u64 = 100_000;

fn nth(n: u64) -> IpNet {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    IpNet::from(IpAddr::V6(Ipv6Addr::from(base + u128::from(n))))
}

/// Distinct IPv4 addresses in scattered order, like real attackers (xorshift32 is a
/// permutation of the non-zero u32s, so no repeats); sequential keys would flatter B-trees.
fn scattered_v4(n: u64) -> Vec<IpNet> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            IpNet::from(IpAddr::V4(Ipv4Addr::from(x)))
        })
        .collect()
}

fn bans(n: u64) -> Vec<Decision> {
    scattered_v4(n)
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            Decision::Ban(Ban {
                target,
                jail: "sshd".into(),
                since: Time::from_secs(1_000),
                until: if i % 3 == 0 {
                    None
                } else {
                    Some(Time::from_secs(1_000_000_000_000))
                },
                ban_no: 1 + (i % 3) as u32,
                reason: BanReason::Threshold {
                    score: Weight(5000),
                },
            })
        })
        .collect()
}

/// 100k windows of two entries each (the common size under attack: below maxretry).
fn windows(n: u64) -> Vec<(&'static str, WindowState)> {
    scattered_v4(n)
        .into_iter()
        .map(|net| {
            let entry = |t: i64| WindowEntry {
                time: Time::from_secs(t),
                weight: Weight(1000),
                attempts: 1,
            };
            (
                "sshd",
                WindowState {
                    addr: net.addr(),
                    entries: vec![entry(1_000), entry(1_002)],
                    slow: Vec::new(),
                    until: Time::from_secs(1_602),
                },
            )
        })
        .collect()
}

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state.db")).unwrap();
    (dir, store)
}

fn bench(c: &mut Criterion) {
    let decisions = bans(N);
    let mut g = c.benchmark_group("store");
    g.sample_size(10).measurement_time(Duration::from_secs(20));

    g.bench_function("apply_100k_bans_one_transaction", |b| {
        b.iter_batched(
            fresh,
            |(dir, mut store)| {
                store.apply(&decisions, Time::from_secs(1_000)).unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });

    let (_dir, mut full) = fresh();
    full.apply(&decisions, Time::from_secs(1_000)).unwrap();
    g.bench_function("active_bans_100k_restore", |b| {
        b.iter(|| {
            let v = full.active_bans(Time::from_secs(2_000)).unwrap();
            assert_eq!(v.len() as u64, N);
            black_box(v)
        })
    });

    let wins = windows(N);
    g.bench_function("apply_100k_windows_one_burst", |b| {
        b.iter_batched(
            fresh,
            |(dir, mut store)| {
                store
                    .apply_burst::<&str, &str>(&[], &[], &wins, Time::from_secs(1_002))
                    .unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    // The next burst of the same wave: every row replaced.
    let (_dir3, mut again) = fresh();
    again
        .apply_burst::<&str, &str>(&[], &[], &wins, Time::from_secs(1_002))
        .unwrap();
    g.bench_function("replace_100k_windows_one_burst", |b| {
        b.iter(|| {
            again
                .apply_burst::<&str, &str>(&[], &[], &wins, Time::from_secs(1_003))
                .unwrap();
        })
    });
    g.bench_function("windows_100k_restore", |b| {
        b.iter(|| {
            let v = again.windows("sshd", Time::from_secs(1_100)).unwrap();
            assert_eq!(v.len() as u64, N);
            black_box(v)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("store_single");
    g.sample_size(50);
    let (_dir2, mut one) = fresh();
    let mut i = 0;
    g.bench_function("apply_one_ban_durable", |b| {
        b.iter(|| {
            i += 1;
            let d = [Decision::Ban(Ban {
                target: nth(i),
                jail: "sshd".into(),
                since: Time::from_secs(1_000),
                until: None,
                ban_no: 1,
                reason: BanReason::Manual,
            })];
            one.apply(&d, Time::from_secs(1_000)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
