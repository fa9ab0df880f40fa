//! Nanoseconds per timestamp parse, for each form, in a zone with DST.
//!
//! `cargo bench -p portcullis-core --bench date`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use portcullis_core::Time;
use portcullis_core::date::DateParser;

/// Every form the parser knows, as it starts a real line.
const FORMS: &[(&str, &str)] = &[
    ("syslog", "Nov 25 08:00:01 host sshd[1234]: Failed password"),
    (
        "syslog_padded_day",
        "Nov  5 08:00:01 host sshd[1234]: Failed password",
    ),
    (
        "rfc3339_micros_offset",
        "2026-11-25T08:00:01.123456+01:00 host sshd[1234]: Failed password",
    ),
    (
        "rfc3339_z",
        "2026-11-25T08:00:01Z host sshd[1234]: Failed password",
    ),
    (
        "iso_local",
        "2026-11-25 08:00:01 host sshd[1234]: Failed password",
    ),
    (
        "iso_local_fraction",
        "2026-11-25 08:00:01.123 host sshd[1234]: Failed password",
    ),
    ("epoch_secs", "1764057601 host sshd[1234]: Failed password"),
    (
        "epoch_micros",
        "1764057601.123456 host sshd[1234]: Failed password",
    ),
    (
        "bracketed_iso",
        "[2026-11-25 08:00:01] host sshd[1234]: Failed password",
    ),
    ("clf", "[25/Nov/2026:08:00:01 +0100] \"GET / HTTP/1.1\" 404"),
    ("no_timestamp", "host sshd[1234]: Failed password for root"),
];

fn zone() -> TimeZone {
    // POSIX rule for Central Europe: same DST behaviour as Europe/Berlin, no tzdb needed.
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("valid POSIX TZ string")
}

fn bench_forms(c: &mut Criterion) {
    let reference = Time::from_secs(1_764_072_000); // 2025-11-25T12:00:00Z
    let mut group = c.benchmark_group("date/parse_prefix");
    group.throughput(Throughput::Elements(1));
    for (name, line) in FORMS {
        let mut parser = DateParser::new(zone());
        group.bench_function(*name, |b| {
            b.iter(|| parser.parse_prefix(black_box(line.as_bytes()), black_box(reference)))
        });
    }
    group.finish();

    // Cache misses: every line in a different hour (worst case for the offset cache).
    let lines: Vec<String> = (0..24 * 28)
        .map(|h| format!("Nov {:2} {:02}:17:01 host sshd[1]: x", 1 + h / 24, h % 24))
        .collect();
    let mut parser = DateParser::new(zone());
    let mut i = 0;
    c.bench_function("date/syslog_new_hour_each_line", |b| {
        b.iter(|| {
            i = (i + 1) % lines.len();
            parser.parse_prefix(black_box(lines[i].as_bytes()), reference)
        })
    });
}

criterion_group!(benches, bench_forms);
criterion_main!(benches);
