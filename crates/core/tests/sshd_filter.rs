//! Corpus tests of the built-in sshd filter through `LineMatcher`: every message form,
//! both program names, syslog and RFC 3339 prefixes and journal records; injection;
//! attempt merging; `message repeated`; odd input; config errors.

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, BadLine, Filter, LineMatcher, LineOutcome, Merge, Record};
use portcullis_core::{Event, EventKind, Time, Weight};

fn sshd() -> Filter {
    static FILTER: std::sync::OnceLock<Filter> = std::sync::OnceLock::new();
    FILTER
        .get_or_init(|| {
            Filter::from_toml(
                filter::builtin("sshd").expect("builtin sshd"),
                "builtin:sshd",
            )
            .expect("compiles")
        })
        .clone()
}

fn matcher() -> LineMatcher {
    LineMatcher::new(sshd(), DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher")
}

/// 2026-11-25T09:00:00Z: "now" for the reader, so `Nov 25` is this year.
fn read_time() -> Time {
    Time::from_secs(1_795_597_200)
}

fn ts(s: &str) -> Time {
    s.parse::<jiff::Timestamp>().expect("timestamp").into()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn feed(m: &mut LineMatcher, line: &str) -> (LineOutcome, Vec<Event>) {
    let mut out = Vec::new();
    let o = m.feed_line(line.as_bytes(), read_time(), &mut out);
    (o, out)
}

fn rule_id(m: &LineMatcher, o: LineOutcome) -> Option<String> {
    match o {
        LineOutcome::Matched { rule } => Some(m.filter().rules()[usize::from(rule)].id.to_string()),
        _ => None,
    }
}

/// (message, rule id, kind, weight in 1/1000, address, user, method)
type Case = (
    &'static str,
    &'static str,
    EventKind,
    u32,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const A: EventKind = EventKind::Attempt;
const P: EventKind = EventKind::Probe;
const I: EventKind = EventKind::Info;
const S: EventKind = EventKind::Success;

const CASES: &[Case] = &[
    // ---- attempts
    (
        "Failed password for root from 192.0.2.1 port 22 ssh2",
        "failed-auth",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        Some("password"),
    ),
    (
        "Failed password for invalid user admin from 192.0.2.1 port 4242 ssh2",
        "failed-auth-invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        Some("password"),
    ),
    (
        "Failed publickey for git from 192.0.2.1 port 4242 ssh2: RSA SHA256:abcDEF+/0123",
        "failed-auth-key",
        A,
        1000,
        "192.0.2.1",
        Some("git"),
        Some("publickey"),
    ),
    (
        "Failed publickey for invalid user git from 2001:db8::7 port 4242 ssh2: ED25519 SHA256:abc",
        "failed-auth-invalid-user",
        A,
        1000,
        "2001:db8::7",
        Some("git"),
        Some("publickey"),
    ),
    (
        "Failed publickey for bob from 192.0.2.1 port 22 ssh2: ED25519-CERT SHA256:abc ID bob@example.org (serial 7) CA ED25519 SHA256:def",
        "failed-auth-key-info",
        A,
        1000,
        "192.0.2.1",
        Some("bob"),
        Some("publickey"),
    ),
    (
        "Failed keyboard-interactive/pam for root from 192.0.2.1 port 22 ssh2",
        "failed-auth",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        Some("keyboard-interactive/pam"),
    ),
    (
        "Failed keyboard-interactive/pam for invalid user oracle from 192.0.2.1 port 22 ssh2",
        "failed-auth-invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("oracle"),
        Some("keyboard-interactive/pam"),
    ),
    (
        "Failed hostbased for bob from 192.0.2.1 port 22 ssh2: ECDSA SHA256:xyz, client user \"bob\", client host \"h1\"",
        "failed-auth-key-info",
        A,
        1000,
        "192.0.2.1",
        Some("bob"),
        Some("hostbased"),
    ),
    (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
        "pam-auth-failure",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7",
        "pam-auth-failure",
        A,
        1000,
        "198.51.100.7",
        None,
        None,
    ),
    (
        "error: PAM: Authentication failure for root from 192.0.2.1",
        "pam-error",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "error: PAM: Authentication failure for illegal user bob from 192.0.2.1",
        "pam-error-illegal-user",
        A,
        1000,
        "192.0.2.1",
        Some("bob"),
        None,
    ),
    (
        "ROOT LOGIN REFUSED FROM 192.0.2.1",
        "root-login-refused",
        A,
        1000,
        "192.0.2.1",
        None,
        None,
    ),
    // ---- probes 0.5
    (
        "Did not receive identification string from 192.0.2.1 port 5555",
        "no-identification",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Did not receive identification string from 192.0.2.1",
        "no-identification",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "banner exchange: Connection from 192.0.2.1 port 5555: invalid format",
        "banner-exchange",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "banner exchange: Connection from 192.0.2.1 port 5555: Connection reset by peer",
        "banner-exchange",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Unable to negotiate with 192.0.2.1 port 5555: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
        "unable-to-negotiate",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Unable to negotiate with 192.0.2.1 port 5555: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]",
        "unable-to-negotiate",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "fatal: Timeout before authentication for 192.0.2.1 port 5555",
        "login-timeout",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Timeout before authentication for 192.0.2.1 port 5555",
        "login-timeout",
        P,
        500,
        "192.0.2.1",
        None,
        None,
    ),
    // ---- probes 0.2
    (
        "drop connection #3 from [192.0.2.1]:5555 on [203.0.113.5]:22 penalty: failed authentication",
        "drop-connection",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "drop connection #0 from [192.0.2.1]:5555 on [203.0.113.5]:22 penalty: connections without attempting authentication",
        "drop-connection",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "drop connection #10 from [2001:db8::9]:5555 on [2001:db8::1]:22 past MaxStartups",
        "drop-connection",
        P,
        200,
        "2001:db8::9",
        None,
        None,
    ),
    (
        "drop connection #10 from [192.0.2.1]:5555 on [203.0.113.5]:22 past Maxstartups",
        "drop-connection",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Failed none for invalid user admin from 192.0.2.1 port 5555 ssh2",
        "failed-none-invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Failed none for root from 192.0.2.1 port 5555 ssh2",
        "failed-none",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "Invalid user admin from 192.0.2.1 port 5555",
        "invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Invalid user admin from 192.0.2.1",
        "invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Invalid user  from 192.0.2.1 port 5555",
        "invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some(""),
        None,
    ),
    (
        "User root from 192.0.2.1 not allowed because not listed in AllowUsers",
        "user-not-allowed",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "User bob from 192.0.2.1 not allowed because none of user's groups are listed in AllowGroups",
        "user-not-allowed",
        A,
        1000,
        "192.0.2.1",
        Some("bob"),
        None,
    ),
    (
        "Connection closed by 192.0.2.1 port 5555 [preauth]",
        "connection-closed-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Connection closed by authenticating user root 192.0.2.1 port 5555 [preauth]",
        "connection-closed-user-preauth",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "Connection closed by invalid user admin 192.0.2.1 port 5555 [preauth]",
        "connection-closed-user-preauth",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Connection closed by 192.0.2.1 [preauth]",
        "connection-closed-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "ROOT LOGIN REFUSED FROM 192.0.2.1 port 5555 [preauth]",
        "root-login-refused",
        A,
        1000,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Connection reset by 192.0.2.1 port 5555 [preauth]",
        "connection-closed-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Connection reset by invalid user admin 192.0.2.1 port 5555 [preauth]",
        "connection-closed-user-preauth",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Disconnected from 192.0.2.1 port 5555 [preauth]",
        "disconnected-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Disconnected from authenticating user root 192.0.2.1 port 5555 [preauth]",
        "disconnected-user-preauth",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "Disconnected from invalid user admin 192.0.2.1 port 5555 [preauth]",
        "disconnected-user-preauth",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Received disconnect from 192.0.2.1 port 5555:11: Bye Bye [preauth]",
        "received-disconnect-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Received disconnect from 192.0.2.1 port 5555:11: Normal Shutdown, Thank you for playing [preauth]",
        "received-disconnect-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "Received disconnect from 192.0.2.1: 11: Bye Bye [preauth]",
        "received-disconnect-preauth",
        P,
        200,
        "192.0.2.1",
        None,
        None,
    ),
    // ---- info
    (
        "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
        "pam-more-failures",
        I,
        0,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1",
        "pam-more-failures",
        I,
        0,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "error: maximum authentication attempts exceeded for root from 192.0.2.1 port 5555 ssh2 [preauth]",
        "max-auth-exceeded",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "error: maximum authentication attempts exceeded for invalid user admin from 192.0.2.1 port 5555 ssh2 [preauth]",
        "max-auth-exceeded-invalid-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Disconnecting invalid user admin 192.0.2.1 port 5555: Too many authentication failures [preauth]",
        "too-many-auth-failures-user",
        A,
        1000,
        "192.0.2.1",
        Some("admin"),
        None,
    ),
    (
        "Disconnecting authenticating user root 192.0.2.1 port 5555: Too many authentication failures [preauth]",
        "too-many-auth-failures-user",
        A,
        1000,
        "192.0.2.1",
        Some("root"),
        None,
    ),
    (
        "Disconnected from user bob 192.0.2.1 port 5555",
        "disconnected-user",
        I,
        0,
        "192.0.2.1",
        Some("bob"),
        None,
    ),
    (
        "Received disconnect from 192.0.2.1 port 5555:11: disconnected by user",
        "received-disconnect",
        I,
        0,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "srclimit_penalise: ipv4: new 192.0.2.1/32 active penalty of 30 seconds for penalty: failed authentication",
        "penalty-new",
        I,
        0,
        "192.0.2.1",
        None,
        None,
    ),
    (
        "srclimit_penalise: 192.0.2.1/32: activating ipv4 penalty of 40 seconds for penalty: failed authentication",
        "penalty-activated",
        I,
        0,
        "192.0.2.1",
        None,
        None,
    ),
    // ---- successes
    (
        "Accepted password for bob from 192.0.2.1 port 5555 ssh2",
        "accepted",
        S,
        0,
        "192.0.2.1",
        Some("bob"),
        Some("password"),
    ),
    (
        "Accepted publickey for bob from 2001:db8::5 port 5555 ssh2: ED25519 SHA256:abc",
        "accepted",
        S,
        0,
        "2001:db8::5",
        Some("bob"),
        Some("publickey"),
    ),
    (
        "Accepted keyboard-interactive/pam for bob from 192.0.2.1 port 5555 ssh2",
        "accepted",
        S,
        0,
        "192.0.2.1",
        Some("bob"),
        Some("keyboard-interactive/pam"),
    ),
    // ---- address forms
    (
        "Failed password for root from fe80::1%eth0 port 22 ssh2",
        "failed-auth",
        A,
        1000,
        "fe80::1",
        Some("root"),
        Some("password"),
    ),
    (
        "Failed password for root from ::ffff:192.0.2.9 port 22 ssh2",
        "failed-auth",
        A,
        1000,
        "192.0.2.9",
        Some("root"),
        Some("password"),
    ),
    (
        "Invalid user admin from 2001:db8:0:0:0:0:0:1 port 22",
        "invalid-user",
        A,
        1000,
        "2001:db8::1",
        Some("admin"),
        None,
    ),
];

/// Lines of sshd that must not produce events.
const NOT_MATCHED: &[&str] = &[
    "Server listening on 0.0.0.0 port 22.",
    "pam_unix(sshd:session): session opened for user bob(uid=1000) by (uid=0)",
    "Received signal 15; terminating.",
    "Disconnecting: Too many authentication failures [preauth]",
    "Postponed publickey for bob from 192.0.2.1 port 5 ssh2 [preauth]",
    "Connection from 192.0.2.1 port 5555 on 203.0.113.5 port 22 rdomain \"\"",
    "error: kex_exchange_identification: Connection closed by remote host",
    "Failed password for root from 192.0.2.1 port 22 ssh2 trailing junk",
    "failed password for root from 192.0.2.1 port 22 ssh2",
];

fn check(case: &Case, o: LineOutcome, events: &[Event], m: &LineMatcher, what: &str) {
    let (msg, id, kind, weight, addr, user, method) = *case;
    assert_eq!(rule_id(m, o).as_deref(), Some(id), "{what}: {msg}");
    assert_eq!(events.len(), 1, "{what}: {msg}");
    let e = &events[0];
    assert_eq!(e.addr, ip(addr), "{what}: {msg}");
    assert_eq!(e.kind, kind, "{what}: {msg}");
    assert_eq!(e.weight, Weight(weight), "{what}: {msg}");
    // A tentative try (pam_unix, a valid user's key) counts when its connection's outcome
    // is known, not on its own line.
    let rule = &m.filter().rules()[usize::from(e.rule)];
    let count = u32::from(rule.merge != Merge::Tentative);
    assert_eq!(e.count, count, "{what}: {msg}");
    assert_eq!(e.user.as_deref(), user, "{what}: {msg}");
    assert_eq!(e.method.as_deref(), method, "{what}: {msg}");
    assert_eq!(e.pid, Some(123), "{what}: {msg}");
}

#[test]
fn every_form_with_syslog_prefix_and_both_program_names() {
    let f = sshd();
    for program in ["sshd", "sshd-session"] {
        for case in CASES {
            let mut m =
                LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
            let line = format!("Nov 25 08:00:01 web1 {program}[123]: {}", case.0);
            let (o, ev) = feed(&mut m, &line);
            check(case, o, &ev, &m, program);
            assert_eq!(ev[0].time, ts("2026-11-25T08:00:01Z"), "{line}");
            assert_eq!(m.stats().no_timestamp, 0);
        }
    }
}

#[test]
fn every_form_with_rfc3339_prefix() {
    let f = sshd();
    for program in ["sshd", "sshd-session"] {
        for case in CASES {
            let mut m =
                LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
            let line = format!(
                "2026-11-25T08:00:01.123456+01:00 web1 {program}[123]: {}",
                case.0
            );
            let (o, ev) = feed(&mut m, &line);
            check(case, o, &ev, &m, program);
            assert_eq!(ev[0].time, ts("2026-11-25T07:00:01.123456Z"), "{line}");
        }
    }
}

/// Issue 12.2: every timestamp and header shape a host writes, for every form: syslog with
/// a one-digit day and one space, `<PRI>` before it, RFC 5424, journalctl `short-full`, and
/// the Solaris/illumos `[ID n facility.level]` tag. Each reads as the same event at the same
/// time; a prefix that is not understood is counted `unparsed`, never dropped silently.
#[test]
fn every_form_with_every_prefix_shape() {
    let f = sshd();
    let shapes: [(&str, &str); 5] = [
        ("Nov 5 08:00:01 web1 {p}[123]: {m}", "2026-11-05T08:00:01Z"),
        (
            "<38>Nov  5 08:00:01 web1 {p}[123]: {m}",
            "2026-11-05T08:00:01Z",
        ),
        (
            "<38>1 2026-11-05T08:00:01.25Z web1 {p} 123 - - {m}",
            "2026-11-05T08:00:01.25Z",
        ),
        (
            "Thu 2026-11-05 08:00:01 UTC web1 {p}[123]: {m}",
            "2026-11-05T08:00:01Z",
        ),
        (
            "Nov  5 08:00:01 web1 {p}[123]: [ID 800047 auth.info] {m}",
            "2026-11-05T08:00:01Z",
        ),
    ];
    for (shape, at) in shapes {
        for program in ["sshd", "sshd-session"] {
            for case in CASES {
                let mut m =
                    LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
                let line = shape.replace("{p}", program).replace("{m}", case.0);
                let (o, ev) = feed(&mut m, &line);
                check(case, o, &ev, &m, &line);
                if !ev.is_empty() {
                    assert_eq!(ev[0].time, ts(at), "{line}");
                }
                assert_eq!(m.stats().unparsed, 0, "{line}");
            }
        }
    }
    let mut m = matcher();
    for line in [
        "Nov 5  08:00:01 web1 sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
        "garbage without any header",
        "",
        "<38>1 2026-11-05T08:00:01Z web1 - 1 - - Failed password for root from 192.0.2.1 port 1 ssh2",
    ] {
        let (o, ev) = feed(&mut m, line);
        assert!(ev.is_empty(), "{line:?}: {o:?}");
    }
    assert_eq!(m.stats().unparsed, 4);
    assert_eq!(m.stats().unmatched, 4);
}

#[test]
fn every_form_as_journal_record() {
    let f = sshd();
    let t = ts("2026-11-25T08:00:01.5Z");
    for program in ["sshd", "sshd-session"] {
        for case in CASES {
            let mut m =
                LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
            let mut ev = Vec::new();
            let rec = Record {
                time: t,
                program: Some(program.as_bytes()),
                pid: Some(123),
                message: case.0.as_bytes(),
            };
            let o = m.feed_record(&rec, &mut ev);
            check(case, o, &ev, &m, program);
            assert_eq!(ev[0].time, t);
        }
    }
}

#[test]
fn crlf_line_ends_are_accepted() {
    let (o, ev) = feed(
        &mut matcher(),
        "Nov 25 08:00:01 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\r",
    );
    assert!(matches!(o, LineOutcome::Matched { .. }));
    assert_eq!(ev[0].addr, ip("192.0.2.1"));
}

#[test]
fn lines_without_timestamp_use_read_time() {
    let mut m = matcher();
    let (o, ev) = feed(
        &mut m,
        "web1 sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2",
    );
    assert!(matches!(o, LineOutcome::Matched { .. }));
    assert_eq!(ev[0].time, read_time());
    let (o, ev) = feed(&mut m, "sshd[124]: Invalid user x from 192.0.2.1 port 22");
    assert!(matches!(o, LineOutcome::Matched { .. }));
    assert_eq!(ev[0].time, read_time());
    assert_eq!(m.stats().no_timestamp, 2);
}

#[test]
fn other_lines_are_unmatched() {
    let mut m = matcher();
    for msg in NOT_MATCHED {
        let (o, ev) = feed(&mut m, &format!("Nov 25 08:00:01 web1 sshd[123]: {msg}"));
        assert_eq!(o, LineOutcome::Unmatched, "{msg}");
        assert!(ev.is_empty());
    }
    // Other programs are rejected before any regex, even with sshd text.
    for line in [
        "Nov 25 08:00:01 web1 CRON[99]: Failed password for root from 192.0.2.1 port 22 ssh2",
        "Nov 25 08:00:01 web1 sshd2[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
        "Nov 25 08:00:01 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=x uid=1 euid=0 tty=/dev/pts/0 ruser=x rhost=  user=x",
        "no header at all",
        "",
    ] {
        let (o, ev) = feed(&mut m, line);
        assert_eq!(o, LineOutcome::Unmatched, "{line}");
        assert!(ev.is_empty());
    }
    let s = m.stats();
    assert_eq!(s.unmatched, (NOT_MATCHED.len() + 5) as u64);
    // Lines without a header are not another program's: their prefix is not understood.
    assert_eq!((s.other_program, s.unparsed), (3, 2));
    assert_eq!(s.matched, 0);
    let mut ev = Vec::new();
    let rec = Record {
        time: read_time(),
        program: Some(b"cron"),
        pid: None,
        message: b"Invalid user x from 192.0.2.1",
    };
    let o = m.feed_record(&rec, &mut ev);
    assert_eq!(o, LineOutcome::Unmatched);
}

/// User names (client-chosen) that try to plant another address.
const INJECTED_USERS: &[&str] = &[
    "root from 6.6.6.6 port 22",
    "root from 6.6.6.6 port 22 ssh2",
    "x from 6.6.6.6",
    "rhost=6.6.6.6",
    "a  user=b rhost=6.6.6.6",
    "6.6.6.6",
    "x 6.6.6.6 port 22 [preauth]",
    "x 6.6.6.6 port 22",
    "x from 6.6.6.6 port 22 ssh2: RSA SHA256:x",
    "x from 6.6.6.6 not allowed because y",
    "x 6.6.6.6 port 22: Too many authentication failures",
    "invalid user x from 6.6.6.6 port 22 ssh2",
    "x from ::ffff:6.6.6.6 port 22",
    "x from [6.6.6.6]:22 on [6.6.6.6]:22",
];

/// sshd formats that carry a user name; `{U}` is replaced.
const USER_TEMPLATES: &[&str] = &[
    "Failed password for {U} from 192.0.2.1 port 22 ssh2",
    "Failed password for invalid user {U} from 192.0.2.1 port 22 ssh2",
    "Failed publickey for {U} from 192.0.2.1 port 22 ssh2: RSA SHA256:abc",
    "Failed x-custom@example.org for {U} from 192.0.2.1 port 22 ssh2",
    "Failed keyboard-interactive/bsdauth for invalid user {U} from 192.0.2.1 port 22 ssh2",
    "error: PAM: User account has expired for {U} from 192.0.2.1",
    "error: PAM: User not known to the underlying authentication module for illegal user {U} from 192.0.2.1",
    "ssh_dispatch_run_fatal: Connection from authenticating user {U} 192.0.2.1 port 22: Broken pipe [preauth]",
    "Partial publickey for {U} from 192.0.2.1 port 22 ssh2: ED25519 SHA256:abc",
    "Failed keyboard-interactive/pam for invalid user {U} from 192.0.2.1 port 22 ssh2",
    "Failed none for invalid user {U} from 192.0.2.1 port 22 ssh2",
    "Invalid user {U} from 192.0.2.1 port 22",
    "Invalid user {U} from 192.0.2.1",
    "User {U} from 192.0.2.1 not allowed because not listed in AllowUsers",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user={U}",
    "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user={U}",
    "error: PAM: Authentication failure for {U} from 192.0.2.1",
    "error: PAM: Authentication failure for illegal user {U} from 192.0.2.1",
    "Connection closed by invalid user {U} 192.0.2.1 port 22 [preauth]",
    "Connection closed by authenticating user {U} 192.0.2.1 port 22 [preauth]",
    "Disconnected from invalid user {U} 192.0.2.1 port 22 [preauth]",
    "Disconnecting invalid user {U} 192.0.2.1 port 22: Too many authentication failures [preauth]",
    "error: maximum authentication attempts exceeded for invalid user {U} from 192.0.2.1 port 22 ssh2 [preauth]",
    "Disconnected from user {U} 192.0.2.1 port 22",
];

#[test]
fn injected_user_names_never_yield_the_injected_address() {
    let f = sshd();
    for tpl in USER_TEMPLATES {
        for user in INJECTED_USERS {
            for header in [
                "Nov 25 08:00:01 web1 sshd[123]: ",
                "2026-11-25T08:00:01+00:00 web1 sshd-session[9]: ",
            ] {
                let mut m =
                    LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
                let line = format!("{header}{}", tpl.replace("{U}", user));
                let (o, ev) = feed(&mut m, &line);
                assert!(
                    matches!(o, LineOutcome::Matched { .. }),
                    "not matched: {line}"
                );
                assert_eq!(ev.len(), 1, "{line}");
                assert_eq!(ev[0].addr, ip("192.0.2.1"), "{line}");
                // `invalid user ` in a name is indistinguishable from sshd's own marker.
                assert!(
                    ev[0]
                        .user
                        .as_deref()
                        .unwrap()
                        .ends_with(user.trim_start_matches("invalid user ")),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn client_chosen_text_after_the_address_cannot_plant_one() {
    // A certificate ID, a hostbased client host and a disconnect reason are client text
    // that sshd logs after the address.
    let lines = [
        "Failed publickey for root from 192.0.2.1 port 22 ssh2: RSA-CERT SHA256:a ID y from 6.6.6.6 port 22 ssh2: RSA SHA256:x ID q (serial 0) CA RSA SHA256:c",
        "Failed publickey for root from 192.0.2.1 port 22 ssh2: RSA-CERT SHA256:a ID y from 6.6.6.6 port 22 ssh2 (serial 0) CA RSA SHA256:c",
        "Failed hostbased for root from 192.0.2.1 port 22 ssh2: RSA SHA256:a, client user \"x\", client host \"y from 6.6.6.6 port 22 ssh2\"",
        "Received disconnect from 192.0.2.1 port 22:11: from 6.6.6.6 port 22 [preauth]",
        "Unable to negotiate with 192.0.2.1 port 22: no matching cipher found. Their offer: x from 6.6.6.6 port 1 [preauth]",
        "banner exchange: Connection from 192.0.2.1 port 22: Connection from 6.6.6.6 port 22: invalid format",
        "Accepted password for root from 6.6.6.6 port 22 from 192.0.2.1 port 22 ssh2",
        "Accepted publickey for root from 192.0.2.1 port 22 ssh2: RSA-CERT SHA256:a ID y from 6.6.6.6 port 22 ssh2: RSA SHA256:x",
        "Failed publickey for x from 6.6.6.6 port 22 ssh2: RSA-CERT SHA256:a ID q (serial 0) CA RSA SHA256:c from 192.0.2.1 port 22 ssh2: RSA-CERT SHA256:a ID q (serial 0) CA RSA SHA256:c",
    ];
    let f = sshd();
    for msg in lines {
        let mut m = LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
        let (_, ev) = feed(&mut m, &format!("Nov 25 08:00:01 web1 sshd[1]: {msg}"));
        for e in &ev {
            assert_eq!(e.addr, ip("192.0.2.1"), "{msg}");
        }
    }
    // The plain certificate and hostbased forms are still recognised.
    let mut m = matcher();
    let (_, ev) = feed(
        &mut m,
        "Nov 25 08:00:01 web1 sshd[1]: Failed publickey for root from 192.0.2.1 port 22 ssh2: RSA-CERT SHA256:a ID alice smith (serial 0) CA RSA SHA256:c",
    );
    assert_eq!(ev.len(), 1);
}

fn total(events: &[Event]) -> u32 {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Attempt)
        .map(|e| e.count)
        .sum()
}

fn feed_all(m: &mut LineMatcher, lines: &[&str]) -> Vec<Event> {
    let mut out = Vec::new();
    for l in lines {
        m.feed_line(l.as_bytes(), read_time(), &mut out);
    }
    out
}

#[test]
fn one_attempt_logged_on_several_lines_counts_once() {
    let pam = "Nov 25 08:00:01 web1 sshd[7]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root";
    let pam_err =
        "Nov 25 08:00:01 web1 sshd[7]: error: PAM: Authentication failure for root from 192.0.2.1";
    let kbd = "Nov 25 08:00:03 web1 sshd[7]: Failed keyboard-interactive/pam for root from 192.0.2.1 port 22 ssh2";
    let pw = "Nov 25 08:00:03 web1 sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2";

    let ev = feed_all(&mut matcher(), &[pam, pam_err, kbd]);
    assert_eq!((ev.len(), total(&ev)), (3, 1));
    assert!(ev.iter().all(|e| e.user.as_deref() == Some("root")));
    let ev = feed_all(&mut matcher(), &[pam, pw]);
    assert_eq!((ev.len(), total(&ev)), (2, 1));
    let ev = feed_all(&mut matcher(), &[pw]);
    assert_eq!(total(&ev), 1);
    // Two tries on one connection: 2.
    let ev = feed_all(&mut matcher(), &[pam, pw, pam, pw]);
    assert_eq!(total(&ev), 2);
    // Two connections interleaved: 2.
    let pam8 = pam.replace("sshd[7]", "sshd[8]");
    let pw8 = pw.replace("sshd[7]", "sshd[8]");
    let ev = feed_all(&mut matcher(), &[pam, &pam8, pw, &pw8]);
    assert_eq!(total(&ev), 2);
    // A closer long after its precursor is a new attempt.
    let late = pw.replace("08:00:03", "08:03:30");
    let ev = feed_all(&mut matcher(), &[pam, &late]);
    assert_eq!(total(&ev), 2);
}

#[test]
fn message_repeated_counts_n_more() {
    let first =
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2";
    let rep = "Nov 25 08:00:09 web1 sshd[7]: message repeated 4 times: [ Failed password for root from 192.0.2.1 port 22 ssh2]";
    let mut m = matcher();
    let ev = feed_all(&mut m, &[first, rep]);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].count, 4);
    assert_eq!(ev[1].time, ts("2026-11-25T08:00:09Z"));
    assert_eq!(total(&ev), 5);
    assert_eq!(m.stats().repeated, 1);
    // Bypasses the coalescer: a pending pam mark does not swallow it.
    let pam = "Nov 25 08:00:01 web1 sshd[7]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root";
    let mut m = matcher();
    let mut ev = feed_all(&mut m, &[pam, rep]);
    assert_eq!(
        total(&ev),
        4,
        "the pam line is held for its connection's outcome"
    );
    m.finish(&mut ev);
    assert_eq!(total(&ev), 5);
    // Works for any rule.
    let (o, ev) = feed(
        &mut matcher(),
        "Nov 25 08:00:09 web1 sshd[7]: message repeated 2 times: [ Invalid user admin from 192.0.2.1 port 5]",
    );
    assert!(matches!(o, LineOutcome::Matched { .. }));
    assert_eq!((ev[0].kind, ev[0].count), (EventKind::Attempt, 2));
}

#[test]
fn message_repeated_edge_cases() {
    let (o, _) = feed(
        &mut matcher(),
        "Nov 25 08:00:09 web1 sshd[7]: message repeated 0 times: [ Failed password for root from 192.0.2.1 port 22 ssh2]",
    );
    assert_eq!(o, LineOutcome::Bad(BadLine::BadRepeatCount));
    // rsyslog cuts the inner message at 800 bytes: a line that long may be cut, so it is not trusted.
    let user = "a".repeat(800);
    let (o, ev) = feed(
        &mut matcher(),
        &format!(
            "Nov 25 08:00:09 web1 sshd[7]: message repeated 2 times: [ Failed password for {user} from 192.0.2.1 port 22 ssh2]"
        ),
    );
    assert_eq!(o, LineOutcome::Bad(BadLine::Truncated));
    assert!(ev.is_empty());
    let (o, _) = feed(
        &mut matcher(),
        "Nov 25 08:00:09 web1 sshd[7]: message repeated 2 times: [ Server listening on :: port 22.]",
    );
    assert_eq!(o, LineOutcome::Unmatched);
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let mut m = matcher();
    let mut line = b"Nov 25 08:00:01 web1 sshd[7]: Failed password for invalid user ".to_vec();
    line.extend_from_slice(b"\xff\xfeadmin");
    line.extend_from_slice(b" from 192.0.2.1 port 22 ssh2");
    let mut ev = Vec::new();
    let o = m.feed_line(&line, read_time(), &mut ev);
    assert!(matches!(o, LineOutcome::Matched { .. }));
    assert_eq!(ev[0].addr, ip("192.0.2.1"));
    assert_eq!(ev[0].user.as_deref(), Some("\u{fffd}\u{fffd}admin"));
    assert_eq!(m.stats().invalid_utf8, 1);
}

#[test]
fn huge_lines_are_counted_not_matched() {
    let mut m = matcher();
    let big_user = "A".repeat(1 << 20);
    let line = format!(
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for {big_user} from 6.6.6.6 port 22 ssh2"
    );
    let (o, ev) = feed(&mut m, &line);
    assert_eq!(o, LineOutcome::Bad(BadLine::Oversized));
    assert!(ev.is_empty());
    // Cut exactly at the cap, the line would read as a complete failure from 6.6.6.6.
    let head = "Nov 25 08:00:01 web1 sshd[7]: Failed password for ";
    let tail = " from 6.6.6.6 port 22 ssh2";
    let pad = "A".repeat(filter::MAX_LINE - head.len() - tail.len());
    let line = format!("{head}{pad}{tail} from 192.0.2.1 port 1 ssh2");
    let (o, ev) = feed(&mut m, &line);
    assert_eq!(o, LineOutcome::Bad(BadLine::Oversized));
    assert!(ev.is_empty());
    let (o, _) = feed(
        &mut m,
        &format!("Nov 25 08:00:01 web1 kernel: {}", "x".repeat(1 << 20)),
    );
    assert_eq!(o, LineOutcome::Unmatched);
    assert_eq!(m.stats().oversized, 2);
    assert_eq!(m.stats().bad, 2);
}

#[test]
fn host_names_are_bad_not_events() {
    let mut m = matcher();
    let (o, ev) = feed(
        &mut m,
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for root from dead:beef:zz port 22 ssh2",
    );
    assert_eq!(o, LineOutcome::Unmatched);
    assert!(ev.is_empty());
    let (o, ev) = feed(
        &mut m,
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for root from 999.1.1.1 port 22 ssh2",
    );
    let LineOutcome::Bad(BadLine::InvalidAddress { rule }) = o else {
        panic!("{o:?}");
    };
    assert_eq!(
        m.filter().rules()[usize::from(rule)].id.as_ref(),
        "failed-auth"
    );
    assert!(ev.is_empty());
}

#[test]
fn stats_count_rules() {
    let mut m = matcher();
    feed_all(
        &mut m,
        &[
            "Nov 25 08:00:01 web1 sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "Nov 25 08:00:02 web1 sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "Nov 25 08:00:02 web1 sshd[7]: Invalid user x from 192.0.2.1 port 22",
            "Nov 25 08:00:02 web1 sshd[7]: Server listening on :: port 22.",
        ],
    );
    let s = m.stats();
    assert_eq!(
        (s.lines, s.matched, s.unmatched, s.bad, s.ignored),
        (4, 3, 1, 0, 0)
    );
    let idx = |id: &str| {
        m.filter()
            .rules()
            .iter()
            .position(|r| &*r.id == id)
            .unwrap()
    };
    assert_eq!(s.rule_hits[idx("failed-auth")], 2);
    assert_eq!(s.rule_hits[idx("invalid-user")], 1);
}

#[test]
fn ignore_patterns_drop_matched_lines() {
    let text = r#"
[filter]
programs = ["sshd"]
[[rule]]
id = "failed"
kind = "attempt"
regex = '^Failed password for <USER> from <HOST> port <PORT> ssh2$'
[[ignore]]
regex = '^Failed password for backup from <HOST> port <PORT> ssh2$'
"#;
    let f = Filter::from_toml(text, "custom.toml").unwrap();
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).unwrap();
    let (o, ev) = feed(
        &mut m,
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for backup from 192.0.2.1 port 22 ssh2",
    );
    assert_eq!(o, LineOutcome::Ignored { rule: 0 });
    assert!(ev.is_empty());
    let (o, _) = feed(
        &mut m,
        "Nov 25 08:00:01 web1 sshd[7]: Failed password for root from 192.0.2.1 port 22 ssh2",
    );
    assert_eq!(o, LineOutcome::Matched { rule: 0 });
    assert_eq!(m.stats().ignored, 1);
}

/// Lines from Fail2Ban's own sshd test log (read from the installed Debian package, not
/// copied): whatever they are, every event's address must appear literally in its line.
#[test]
fn fail2ban_sample_log_never_invents_addresses() {
    let path = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd";
    let Ok(text) = std::fs::read(path) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{path} missing (install fail2ban)"
        );
        eprintln!("SKIPPED: {path} missing (install fail2ban)");
        return;
    };
    let mut m = matcher();
    let mut matched = 0;
    // (pid, address, rule) of the tentative tries held so far: a later line may release
    // one (its connection expired without an outcome), carrying that earlier line's address.
    let mut held = std::collections::HashSet::new();
    for line in text.split(|&b| b == b'\n') {
        if line.starts_with(b"#") {
            continue;
        }
        let mut ev = Vec::new();
        m.feed_line(line, read_time(), &mut ev);
        let s = String::from_utf8_lossy(line);
        for e in &ev {
            matched += 1;
            let a = e.addr.to_string();
            let released = e.count == 1 && held.contains(&(e.pid, e.addr, e.rule));
            assert!(
                released || s.contains(&a) || s.contains(&format!("::ffff:{a}")),
                "{a} not in {s}"
            );
            if m.filter().rules()[usize::from(e.rule)].merge == Merge::Tentative {
                held.insert((e.pid, e.addr, e.rule));
            }
        }
    }
    assert!(matched >= 50, "only {matched} events from {path}");
}

mod mutations {
    use super::*;
    use portcullis_core::event::parse_addr;
    use proptest::prelude::*;

    /// Pieces an attacker would splice into a line.
    const PIECES: &[&str] = &[
        " from 6.6.6.6 port 22",
        " 6.6.6.6 port 22 [preauth]",
        " rhost=6.6.6.6",
        "  user=",
        " ssh2",
        ": RSA SHA256:x",
        " ID x (serial 1) CA RSA SHA256:y",
        "invalid user ",
        " from ",
        "::ffff:6.6.6.6",
        "[6.6.6.6]:22",
        "\u{fffd}",
        " ",
        ":",
    ];

    /// The address is written in the line: literally, or as a token that parses to it
    /// (IPv6 spellings, `::ffff:` mapped, `%zone`).
    fn written_in(line: &str, addr: IpAddr) -> bool {
        line.contains(&addr.to_string())
            || line
                .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '%')))
                .any(|t| parse_addr(t) == Some(addr))
    }

    proptest! {
        /// Splicing attacker-style text anywhere into a real line never makes an event
        /// whose address is not written in the line, and the counters always add up.
        #[test]
        fn spliced_lines_never_invent_addresses(
            case in 0..CASES.len(),
            cuts in proptest::collection::vec((any::<prop::sample::Index>(), 0..PIECES.len()), 1..4),
        ) {
            let msg = CASES[case].0;
            let mut line = msg.to_owned();
            for (at, piece) in &cuts {
                let mut i = at.index(line.len() + 1);
                while !line.is_char_boundary(i) {
                    i -= 1;
                }
                line.insert_str(i, PIECES[*piece]);
            }
            let mut m = matcher();
            let (_, ev) = feed(&mut m, &format!("Nov 25 08:00:01 web1 sshd[1]: {line}"));
            for e in &ev {
                prop_assert!(written_in(&line, e.addr), "{} not in {line:?}", e.addr);
            }
            let s = m.stats();
            prop_assert_eq!(s.lines, s.matched + s.ignored + s.unmatched + s.bad);
        }
    }
}

/// Issue 12 item 3: a try that a login on the same connection may still follow is held
/// until the connection's outcome. pam_unix failing before an LDAP/SSSD module lets the user
/// in, or a git user's keys offered before the accepted one, are no failed attempts; a real
/// failure is never retracted and counts on its own line, without waiting.
#[test]
fn a_login_on_the_connection_retracts_its_tentative_tries() {
    let l = |pid: u32, t: &str, msg: &str| format!("Nov 25 08:{t} web1 sshd[{pid}]: {msg}");
    let pam = |pid, t| {
        l(
            pid,
            t,
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=carol",
        )
    };
    let key = |pid, t, u: &str| {
        l(
            pid,
            t,
            &format!(
                "Failed publickey for {u} from 192.0.2.1 port 22 ssh2: ED25519 SHA256:AbCdEf0123"
            ),
        )
    };
    let pw = |pid, t| {
        l(
            pid,
            t,
            "Failed password for carol from 192.0.2.1 port 22 ssh2",
        )
    };
    let ok_pw = |pid, t| {
        l(
            pid,
            t,
            "Accepted password for carol from 192.0.2.1 port 22 ssh2",
        )
    };
    let ok_key = |pid, t, u: &str| {
        l(
            pid,
            t,
            &format!(
                "Accepted publickey for {u} from 192.0.2.1 port 22 ssh2: ED25519 SHA256:ZzYyXx9876"
            ),
        )
    };
    let run = |lines: &[String]| -> (Vec<Event>, u32) {
        let mut m = matcher();
        let mut ev = Vec::new();
        for line in lines {
            m.feed_line(line.as_bytes(), read_time(), &mut ev);
        }
        let before = total(&ev);
        m.finish(&mut ev);
        (ev, before)
    };

    // pam_unix fails, SSSD lets carol in: nothing failed.
    let (ev, _) = run(&[pam(7, "00:01"), ok_pw(7, "00:01")]);
    assert_eq!(total(&ev), 0, "{ev:?}");
    // A git user's agent offers three keys before the accepted one: nothing failed.
    let (ev, _) = run(&[
        key(7, "00:01", "git"),
        key(7, "00:01", "git"),
        key(7, "00:01", "git"),
        ok_key(7, "00:02", "git"),
    ]);
    assert_eq!(total(&ev), 0, "{ev:?}");
    // The same keys and no login: the connection's one attempt, counted by the close line
    // that names the user, before the end of the input.
    let closed = l(
        7,
        "00:03",
        "Connection closed by authenticating user git 192.0.2.1 port 22 [preauth]",
    );
    let (ev, before) = run(&[
        key(7, "00:01", "git"),
        key(7, "00:01", "git"),
        key(7, "00:01", "git"),
        closed.clone(),
    ]);
    assert_eq!((before, total(&ev)), (1, 1), "{ev:?}");
    // A key scanner for root: MaxAuthTries keys, then sshd gives up: one attempt.
    let max = l(
        7,
        "00:02",
        "error: maximum authentication attempts exceeded for root from 192.0.2.1 port 22 ssh2 [preauth]",
    );
    let mut lines: Vec<String> = (0..6).map(|_| key(7, "00:01", "root")).collect();
    lines.push(max);
    let (ev, before) = run(&lines);
    assert_eq!((before, total(&ev)), (1, 1), "{ev:?}");
    // pam_unix then the real `Failed password`: one attempt, on the Failed line itself.
    let (ev, _) = run(&[pam(7, "00:01"), pw(7, "00:03")]);
    assert_eq!(
        ev.iter().map(|e| e.count).collect::<Vec<_>>(),
        [0, 1],
        "counted on sshd's own failure line, not later"
    );
    // A real failure before the login stays a failure: typo, then in.
    let (ev, _) = run(&[
        pam(7, "00:01"),
        pw(7, "00:03"),
        pam(7, "00:05"),
        ok_pw(7, "00:05"),
    ]);
    assert_eq!(total(&ev), 1, "{ev:?}");
    // A login on another connection of the same address retracts nothing.
    let (ev, before) = run(&[pam(7, "00:01"), ok_pw(8, "00:01")]);
    assert_eq!((before, total(&ev)), (0, 1), "{ev:?}");
    // A try whose connection logs nothing more is one attempt: at the end of the input, or
    // once its connection's state expires in log time (120 s), before the later line.
    let (ev, before) = run(&[key(7, "00:01", "root")]);
    assert_eq!((before, total(&ev)), (0, 1), "{ev:?}");
    let later = l(
        9,
        "03:00",
        "Failed password for root from 198.51.100.2 port 22 ssh2",
    );
    let (ev, before) = run(&[key(7, "00:01", "root"), later]);
    assert_eq!(before, 2, "{ev:?}");
    assert_eq!(
        ev.iter()
            .map(|e| (e.addr.to_string(), e.count))
            .collect::<Vec<_>>(),
        [
            ("192.0.2.1".to_string(), 0),
            ("192.0.2.1".to_string(), 1),
            ("198.51.100.2".to_string(), 1)
        ]
    );
    assert_eq!(
        ev[1].time,
        ts("2026-11-25T08:00:01Z"),
        "released at its own time"
    );
    // An invalid user's key always fails: counted at once.
    let (ev, before) = run(&[l(
        7,
        "00:01",
        "Failed publickey for invalid user git from 192.0.2.1 port 22 ssh2: ED25519 SHA256:AbCdEf0123",
    )]);
    assert_eq!((before, total(&ev)), (1, 1), "{ev:?}");
}

/// sshd's words say whether the named account exists (the user-targeted detector counts
/// only existing ones); a user name that imitates the words changes nothing.
#[test]
fn account_existence_is_read_from_sshds_words() {
    let cases: &[(&str, Option<bool>)] = &[
        (
            "Failed password for root from 192.0.2.1 port 22 ssh2",
            Some(true),
        ),
        (
            "Failed password for invalid user bob from 192.0.2.1 port 22 ssh2",
            Some(false),
        ),
        ("Invalid user bob from 192.0.2.1 port 22", Some(false)),
        (
            "Connection closed by authenticating user alice 192.0.2.1 port 22 [preauth]",
            Some(true),
        ),
        (
            "Connection closed by invalid user alice 192.0.2.1 port 22 [preauth]",
            Some(false),
        ),
        (
            "User alice from 192.0.2.1 not allowed because not listed in AllowUsers",
            Some(true),
        ),
        (
            "Failed password for invalid user invalid user x from 192.0.2.1 port 22 ssh2",
            Some(false),
        ),
        (
            "Failed none for invalid user for x from 192.0.2.1 port 22 ssh2",
            Some(false),
        ),
        (
            "Accepted password for alice from 192.0.2.1 port 22 ssh2",
            Some(true),
        ),
        (
            "Did not receive identification string from 192.0.2.1 port 22",
            None,
        ),
    ];
    for (msg, want) in cases {
        let mut m = matcher();
        let mut out = Vec::new();
        let line = format!("Nov 25 08:00:00 gate sshd[42]: {msg}");
        m.feed_line(line.as_bytes(), read_time(), &mut out);
        m.finish(&mut out);
        let ev = out.first().unwrap_or_else(|| panic!("no event: {msg}"));
        assert_eq!(ev.user_exists, *want, "{msg}");
    }
}
