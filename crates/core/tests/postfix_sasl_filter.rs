//! The built-in postfix-sasl filter, from Postfix smtpd's log format: each form, the
//! lines it must not count, and hostile text around the address.

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};
use portcullis_core::{Event, EventKind, Time};

/// 2026-11-25T09:00:00Z.
const NOW: Time = Time::from_secs(1_795_597_200);

fn events(line: &str) -> Vec<Event> {
    let f = Filter::from_toml(
        filter::builtin("postfix-sasl").expect("builtin"),
        "builtin:postfix-sasl",
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

#[test]
fn every_form_is_one_attempt() {
    for (line, want) in [
        (
            "Nov 25 08:00:01 mail postfix/smtpd[123]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
            "192.0.2.1",
        ),
        (
            "Nov 25 08:00:01 mail postfix/submission/smtpd[123]: warning: host.example.org[198.51.100.2]: SASL PLAIN authentication failed: authentication failure",
            "198.51.100.2",
        ),
        (
            "Nov 25 08:00:01 mail postfix/smtps/smtpd[123]: warning: unknown[2001:db8::3]: SASL login authentication failed:",
            "2001:db8::3",
        ),
        (
            "2026-11-25T08:00:01.123456+00:00 mail postfix/smtpd[123]: warning: unknown[203.0.113.4]:51234: SASL CRAM-MD5 authentication failed: PDc3OTEwNT",
            "203.0.113.4",
        ),
    ] {
        let e = events(line);
        assert_eq!(e.len(), 1, "{line}");
        assert_eq!(
            (e[0].kind, e[0].weight.0, e[0].addr),
            (EventKind::Attempt, 1000, addr(want)),
            "{line}"
        );
    }
}

#[test]
fn server_faults_and_other_lines_are_not_counted() {
    for line in [
        "Nov 25 08:00:01 mail postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: Connection lost to authentication server",
        "Nov 25 08:00:01 mail postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL CRAM-MD5 authentication failed: Invalid authentication mechanism",
        "Nov 25 08:00:01 mail postfix/smtpd[1]: connect from unknown[192.0.2.1]",
        "Nov 25 08:00:01 mail postfix/smtpd[1]: disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3",
        // Another program writing Postfix's text (any local user can).
        "Nov 25 08:00:01 mail logger: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x",
    ] {
        assert!(events(line).is_empty(), "{line}");
    }
}

#[test]
fn hostile_text_never_yields_its_address() {
    // The reason after the address, and a bracket smuggled into the host name.
    let lines = [
        "Nov 25 08:00:01 mail postfix/smtpd[1]: warning: unknown[192.0.2.10]: SASL LOGIN authentication failed: unknown[203.0.113.66]: SASL LOGIN authentication failed:",
        "Nov 25 08:00:01 mail postfix/smtpd[1]: warning: x[203.0.113.66]y[192.0.2.10]: SASL LOGIN authentication failed: z",
    ];
    let e = events(lines[0]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].addr, addr("192.0.2.10"));
    // Not a form Postfix writes: no event at all, rather than either address.
    assert!(events(lines[1]).is_empty(), "{}", lines[1]);
}
