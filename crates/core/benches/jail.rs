//! Jail engine throughput (events/s) and memory per tracked address.
//!
//! `cargo bench -p portcullis-core --bench jail`
//!
//! - `jail/spread`: 1M events over 100k addresses (IPv4 and IPv6) in random order across
//!   one hour of log time: most addresses stay below `maxretry`, so this is the window path.
//! - `jail/burst`: the same 1M events, but each address sends its 10 attempts in a row:
//!   a ban at the 5th, then 5 ignored events: the ban path.
//! - Before timing, the bench prints the heap the engine holds with 100k addresses tracked
//!   (3 attempts each, all inside the window), measured by a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group};
use portcullis_core::event::{Event, EventKind, Weight};
use portcullis_core::jail::{JailConfig, JailEngine, Restored};
use portcullis_core::time::Time;

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const ADDRESSES: u32 = 100_000;
const EVENTS: u32 = 1_000_000;
/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

/// Address `i`: one in eight is IPv6 (in 2001:db8::/32), the rest IPv4 in 10.0.0.0/8.
fn addr(i: u32) -> IpAddr {
    if i.is_multiple_of(8) {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            (i >> 16) as u16,
            i as u16,
            0,
            0,
            0,
            1,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }
}

fn attempt(addr: IpAddr, time: Time) -> Event {
    Event {
        time,
        addr,
        kind: EventKind::Attempt,
        weight: Weight::ONE,
        count: 1,
        user: None,
        user_exists: None,
        method: None,
        pid: None,
        rule: 0,
    }
}

/// xorshift64*: deterministic, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// 1M events over 100k addresses in random order, one hour of log time.
fn spread() -> Vec<Event> {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    (0..EVENTS)
        .map(|i| {
            let a = (next(&mut rng) % u64::from(ADDRESSES)) as u32;
            let t = Time::from_micros(START * 1_000_000 + i64::from(i) * 3_600);
            attempt(addr(a), t)
        })
        .collect()
}

/// The same count, each address's 10 attempts in a row.
fn burst() -> Vec<Event> {
    (0..EVENTS)
        .map(|i| {
            let t = Time::from_micros(START * 1_000_000 + i64::from(i) * 3_600);
            attempt(addr(i / 10), t)
        })
        .collect()
}

fn config() -> JailConfig {
    JailConfig::new("sshd")
}

/// Feeds `events` (scan-style: `now` is the event time) and drains decisions.
fn run(events: &[Event]) -> (usize, usize) {
    let mut engine = JailEngine::new(config(), Restored::default());
    let mut decisions = 0;
    for e in events {
        engine.handle_event(e.time, e);
        while engine.poll_decision().is_some() {
            decisions += 1;
        }
    }
    (decisions, engine.tracked_addresses())
}

fn memory_report() {
    let before = LIVE.load(Ordering::Relaxed);
    let mut engine = JailEngine::new(config(), Restored::default());
    for round in 0..3 {
        for i in 0..ADDRESSES {
            let t = Time::from_secs(START + i64::from(round));
            engine.handle_event(t, &attempt(addr(i), t));
        }
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "jail memory: {} addresses tracked, 3 attempts each: {:.1} MiB heap ({} bytes/address)",
        engine.tracked_addresses(),
        held as f64 / (1024.0 * 1024.0),
        held / engine.tracked_addresses().max(1),
    );
    drop(engine);
    let events = burst();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (decisions, _) = run(&events);
    eprintln!(
        "jail memory: burst run (100k bans): peak {:.1} MiB heap above the input, {decisions} decisions",
        (PEAK.load(Ordering::Relaxed) - base) as f64 / (1024.0 * 1024.0),
    );
}

fn bench(c: &mut Criterion) {
    memory_report();
    let mut group = c.benchmark_group("jail");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(EVENTS)));
    let events = spread();
    group.bench_function("spread", |b| b.iter(|| black_box(run(black_box(&events)))));
    let events = burst();
    group.bench_function("burst", |b| b.iter(|| black_box(run(black_box(&events)))));
    group.finish();
}

criterion_group!(benches, bench);

/// `JAIL_BENCH_ONCE=spread|burst` runs that workload once and exits (`input` only builds
/// both inputs), for `perf stat`
/// (cycles and instructions do not depend on how loaded the machine is); otherwise the
/// criterion benches run.
fn main() {
    match std::env::var("JAIL_BENCH_ONCE").as_deref() {
        Ok("spread") => {
            let events = spread();
            eprintln!("{:?}", run(&events));
        }
        Ok("burst") => {
            let events = burst();
            eprintln!("{:?}", run(&events));
        }
        // The input alone, to subtract.
        Ok("input") => {
            eprintln!("{}", black_box(spread()).len() + black_box(burst()).len());
        }
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
