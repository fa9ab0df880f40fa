//! The built-in dovecot filter, from Dovecot's log formats: each form through syslog,
//! kinds and weights, and hostile user names that carry an address.

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};
use portcullis_core::{Event, EventKind, Time};

fn matcher() -> LineMatcher {
    let f = Filter::from_toml(
        filter::builtin("dovecot").expect("builtin"),
        "builtin:dovecot",
    )
    .expect("compiles");
    LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher")
}

/// 2026-11-25T09:00:00Z.
const NOW: Time = Time::from_secs(1_795_597_200);

fn events(line: &str) -> Vec<Event> {
    let mut out = Vec::new();
    matcher().feed_line(line.as_bytes(), NOW, &mut out);
    out
}

fn one(line: &str) -> (EventKind, u32, IpAddr) {
    let e = events(line);
    assert_eq!(e.len(), 1, "{line}: {e:?}");
    (e[0].kind, e[0].weight.0, e[0].addr)
}

const P: &str = "Nov 25 08:00:01 mail dovecot: ";

#[test]
fn every_form() {
    let a = EventKind::Attempt;
    let cases: &[(&str, EventKind, u32, &str)] = &[
        (
            "imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<alice>, method=PLAIN, rip=192.0.2.1, lip=198.51.100.1, TLS, session=<AbC+/d>",
            a,
            1000,
            "192.0.2.1",
        ),
        (
            "pop3-login: Aborted login (auth failed, 1 attempts): user=<bob>, method=PLAIN, rip=2001:db8::7, lip=2001:db8::1",
            a,
            1000,
            "2001:db8::7",
        ),
        (
            "imap-login: Aborted login (tried to use disallowed plaintext auth): user=<x>, rip=192.0.2.2, lip=198.51.100.1, session=<q>",
            a,
            1000,
            "192.0.2.2",
        ),
        (
            "submission-login: Remote closed connection (auth failed, 1 attempts in 2 secs): user=<u>, method=LOGIN, rip=192.0.2.3, lip=198.51.100.1",
            a,
            1000,
            "192.0.2.3",
        ),
        (
            "auth-worker(123): pam(carol,203.0.113.4,<S1d>): pam_authenticate() failed: Authentication failure (password mismatch?)",
            a,
            1000,
            "203.0.113.4",
        ),
        (
            "auth: passwd-file(dave,203.0.113.5): unknown user",
            a,
            1000,
            "203.0.113.5",
        ),
        (
            "auth: sql(eve@example.org,203.0.113.6,<x>): Password mismatch",
            a,
            1000,
            "203.0.113.6",
        ),
        (
            "imap-login: Disconnected (no auth attempts in 3 secs): user=<>, rip=198.51.100.9, lip=198.51.100.1, TLS handshaking: SSL_accept() failed: error:0A00010B:SSL routines::wrong version number",
            EventKind::Probe,
            200,
            "198.51.100.9",
        ),
    ];
    for (msg, kind, w, addr) in cases {
        let line = format!("{P}{msg}");
        assert_eq!(
            one(&line),
            (*kind, *w, addr.parse().expect("address")),
            "{line}"
        );
    }
    let pam = "Nov 25 08:00:01 mail auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=rhost=192.0.2.66 rhost=192.0.2.8  user=root";
    assert_eq!(one(pam), (a, 1000, "192.0.2.8".parse().expect("address")));
}

#[test]
fn hostile_user_names_never_yield_their_address() {
    let lines = [
        format!(
            "{P}imap-login: Disconnected (auth failed, 1 attempts): user=<x>, method=PLAIN, rip=203.0.113.66, lip=1.1.1.1, y>, method=PLAIN, rip=192.0.2.10, lip=198.51.100.1, TLS"
        ),
        format!("{P}auth-worker(1): pam(x,203.0.113.66): unknown user,192.0.2.10): unknown user"),
        format!(
            "{P}auth: ldap(a,203.0.113.66,<b>): Password mismatch) x(c,192.0.2.10): Password mismatch"
        ),
    ];
    for line in &lines {
        let e = events(line);
        assert!(
            e.iter()
                .all(|e| e.addr != "203.0.113.66".parse::<IpAddr>().expect("address")),
            "{line}: {e:?}"
        );
        assert_eq!(e.len(), 1, "{line}: {e:?}");
    }
}

#[test]
fn other_programs_and_lines_are_not_counted() {
    for line in [
        "Nov 25 08:00:01 mail postfix/smtpd[1]: imap-login: Disconnected (auth failed, 1 attempts): rip=192.0.2.1, lip=198.51.100.1",
        "Nov 25 08:00:01 mail dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=192.0.2.1, lip=198.51.100.1, mpid=1, TLS",
        "Nov 25 08:00:01 mail dovecot: imap(alice)<1><x>: Disconnected: Logged out in=1 out=2",
    ] {
        assert!(events(line).is_empty(), "{line}");
    }
}
