//! Log line → events with the built-in sshd filter: never panics on any bytes (as a syslog
//! line and as a journal message), the counters add up, and every event's address is
//! written in the line itself (a token of the line parses to it), so nothing is invented.
#![no_main]

use std::sync::OnceLock;

use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use portcullis_core::Time;
use portcullis_core::date::DateParser;
use portcullis_core::event::parse_addr;
use portcullis_core::filter::{Filter, LineMatcher, Record, builtin};

fn sshd() -> &'static Filter {
    static F: OnceLock<Filter> = OnceLock::new();
    F.get_or_init(|| {
        Filter::from_toml(builtin("sshd").expect("builtin"), "builtin:sshd").expect("compiles")
    })
}

fn check(line: &[u8], events: &[portcullis_core::Event]) {
    let text = String::from_utf8_lossy(line);
    let is_addr_char = |c: char| {
        c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '%') || c.is_ascii_alphanumeric()
    };
    for e in events {
        let found = text.contains(&e.addr.to_string())
            || text
                .split(|c: char| !is_addr_char(c))
                .any(|tok| parse_addr(tok) == Some(e.addr));
        assert!(found, "event for {} not written in {text:?}", e.addr);
    }
}

fuzz_target!(|data: &[u8]| {
    let read_time = Time::from_secs(1_795_597_200);
    let mut m = LineMatcher::new(sshd().clone(), DateParser::new(TimeZone::UTC)).expect("matcher");
    let mut out = Vec::new();
    // The input may hold several lines: feed them in order, as a file would.
    for line in data.split(|&b| b == b'\n') {
        out.clear();
        m.feed_line(line, read_time, &mut out);
        check(line, &out);
        out.clear();
        let rec = Record {
            time: read_time,
            program: Some(b"sshd"),
            pid: Some(1),
            message: line,
        };
        m.feed_record(&rec, &mut out);
        check(line, &out);
    }
    let s = m.stats();
    assert_eq!(s.lines, s.matched + s.ignored + s.unmatched + s.bad);
    assert_eq!(s.matched, s.rule_hits.iter().sum::<u64>());
});
