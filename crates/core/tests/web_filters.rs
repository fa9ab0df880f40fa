//! The built-in web server filters (nginx-http-auth, nginx-botsearch, apache-auth,
//! apache-badbots), from nginx's and Apache's log formats: each form, the lines they must
//! not count, and client text that imitates the address.

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};
use portcullis_core::{Event, EventKind, Time};

/// 2026-11-25T09:00:00Z.
const NOW: Time = Time::from_secs(1_795_597_200);

fn events(filter_name: &str, line: &str) -> Vec<Event> {
    let f = Filter::from_toml(
        filter::builtin(filter_name).expect("builtin"),
        &format!("builtin:{filter_name}"),
    )
    .expect("compiles");
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher");
    let mut out = Vec::new();
    m.feed_line(line.as_bytes(), NOW, &mut out);
    out
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Each line yields exactly one event of `kind`, weight `milli` thousandths, at `want`.
fn one_each(filter_name: &str, kind: EventKind, milli: u32, cases: &[(&str, &str)]) {
    for (line, want) in cases {
        let e = events(filter_name, line);
        assert_eq!(e.len(), 1, "{filter_name}: {line}");
        assert_eq!(
            (e[0].kind, e[0].weight.0, e[0].addr),
            (kind, milli, addr(want)),
            "{filter_name}: {line}"
        );
    }
}

fn none_of(filter_name: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            events(filter_name, line).is_empty(),
            "{filter_name}: {line}"
        );
    }
}

#[test]
fn debug_apache() {
    let line = "[Sat Jul 20 21:40:33.803528 2013] [auth_basic:error] [pid 17540:tid 140123095914240] [client 127.0.0.1:51395] AH01618: user wrongusername not found: /basic/file";
    let f = Filter::from_toml(filter::builtin("apache-auth").unwrap(), "x").unwrap();
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
    let mut out = Vec::new();
    let o = m.feed_line(line.as_bytes(), NOW, &mut out);
    panic!("{o:?} {out:?} {:?}", m.stats());
}
