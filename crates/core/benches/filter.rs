//! Lines per second through the built-in sshd filter (`LineMatcher::feed_line`): a realistic
//! mix, and each kind of line on its own.
//!
//! `cargo bench -p portcullis-core --bench filter`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use portcullis_core::Time;
use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};

/// sshd lines that produce events.
const SSHD_EVENTS: &[&str] = &[
    "sshd[{P}]: Failed password for root from {A} port {N} ssh2",
    "sshd[{P}]: Failed password for invalid user admin from {A} port {N} ssh2",
    "sshd[{P}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={A}  user=root",
    "sshd[{P}]: Invalid user oracle from {A} port {N}",
    "sshd[{P}]: Connection closed by invalid user oracle {A} port {N} [preauth]",
    "sshd-session[{P}]: Received disconnect from {A} port {N}:11: Bye Bye [preauth]",
    "sshd-session[{P}]: Disconnected from authenticating user root {A} port {N} [preauth]",
    "sshd[{P}]: Accepted publickey for deploy from {A} port {N} ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4",
];

/// sshd lines no rule matches.
const SSHD_OTHER: &[&str] = &[
    "sshd[{P}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    "sshd[{P}]: Connection from {A} port {N} on 203.0.113.5 port 22 rdomain \"\"",
    "sshd[{P}]: Postponed publickey for deploy from {A} port {N} ssh2 [preauth]",
];

/// Other programs' lines.
const NOISE: &[&str] = &[
    "CRON[{P}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "CRON[{P}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "sudo: deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app",
    "systemd[1]: Started session-{N}.scope - Session {N} of User deploy.",
    "systemd-logind[611]: New session {N} of user deploy.",
];

/// Deterministic lines from `templates`: addresses from 198.51.100.0/24 and
/// 2001:db8::/32, pids and ports from a fixed LCG.
fn lines(templates: &[&str], n: usize) -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) as u32;
            let addr = if r.is_multiple_of(5) {
                format!("2001:db8::{:x}", r % 4096)
            } else {
                format!("198.51.100.{}", r % 254 + 1)
            };
            let t = templates[i % templates.len()]
                .replace("{P}", &(1000 + r % 30_000).to_string())
                .replace("{N}", &(1024 + r % 60_000).to_string())
                .replace("{A}", &addr);
            format!("Nov 25 08:{:02}:{:02} web1 {t}", (i / 60) % 60, i % 60)
        })
        .collect()
}

fn run(c: &mut Criterion, name: &str, input: &[String]) {
    let filter = Filter::from_toml(filter::builtin("sshd").expect("builtin"), "builtin:sshd")
        .expect("compiles");
    let mut m = LineMatcher::new(filter, DateParser::new(TimeZone::UTC)).expect("matcher");
    let read_time = Time::from_secs(1_795_597_200);
    let mut out = Vec::with_capacity(16);
    let mut g = c.benchmark_group("filter");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for l in input {
                out.clear();
                black_box(m.feed_line(black_box(l.as_bytes()), read_time, &mut out));
            }
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    // Realistic mix: half sshd events, a fifth other sshd lines, the rest other programs.
    let mut mix = lines(SSHD_EVENTS, 5000);
    mix.extend(lines(SSHD_OTHER, 2000));
    mix.extend(lines(NOISE, 3000));
    let mut x: u64 = 7;
    for i in (1..mix.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        mix.swap(i, (x >> 33) as usize % (i + 1));
    }
    run(c, "mix", &mix);
    run(c, "sshd_events", &lines(SSHD_EVENTS, 4000));
    run(c, "sshd_unmatched", &lines(SSHD_OTHER, 4000));
    run(c, "other_programs", &lines(NOISE, 4000));
}

criterion_group!(benches, bench);
criterion_main!(benches);
