//! The built-in FTP server filters (vsftpd, proftpd), from their log formats: each form,
//! the lines they must not count, and client text that imitates the address.

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};
use portcullis_core::{Event, EventKind, Time};

/// 2026-11-25T09:00:00Z.
const NOW: Time = Time::from_secs(1_795_597_200);

/// Every line through one matcher (in order, so lines of one connection merge).
fn events(filter_name: &str, lines: &[&str]) -> Vec<Event> {
    let f = Filter::from_toml(
        filter::builtin(filter_name).expect("builtin"),
        &format!("builtin:{filter_name}"),
    )
    .expect("compiles");
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher");
    let mut out = Vec::new();
    for line in lines {
        m.feed_line(line.as_bytes(), NOW, &mut out);
    }
    m.finish(&mut out);
    out
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// (address, attempts counted) of each event.
fn counted(e: &[Event]) -> Vec<(IpAddr, u32)> {
    e.iter()
        .filter(|e| e.kind == EventKind::Attempt)
        .map(|e| (e.addr, e.count))
        .collect()
}

#[test]
fn vsftpd_own_log_syslog_and_pam() {
    for (line, want, user) in [
        (
            "Wed Nov 25 08:00:01 2026 [pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.1\"",
            "192.0.2.1",
            "bob",
        ),
        (
            "Thu Nov  5 08:00:01 2026 [pid 7] [guest] FAIL LOGIN: Client \"::ffff:198.51.100.2\", \"User is not in the allow user list.\"",
            "198.51.100.2",
            "guest",
        ),
        (
            "Nov 25 08:00:01 ftp1 vsftpd[1234]: [anonymous] FAIL LOGIN: Client \"2001:db8::3\"",
            "2001:db8::3",
            "anonymous",
        ),
    ] {
        let e = events("vsftpd", &[line]);
        assert_eq!(counted(&e), vec![(addr(want), 1)], "{line}");
        assert_eq!(e[0].user.as_deref(), Some(user), "{line}");
    }
    let pam = "Nov 25 08:00:01 ftp1 vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=203.0.113.4  user=bob";
    assert_eq!(
        counted(&events("vsftpd", &[pam])),
        vec![(addr("203.0.113.4"), 1)]
    );
    // One try logged by PAM and by vsftpd through syslog (same process): one attempt.
    let both = [
        "Nov 25 08:00:01 ftp1 vsftpd[99]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=203.0.113.4",
        "Nov 25 08:00:03 ftp1 vsftpd[99]: [bob] FAIL LOGIN: Client \"203.0.113.4\"",
    ];
    let n: u32 = counted(&events("vsftpd", &both)).iter().map(|c| c.1).sum();
    assert_eq!(n, 1);
    for line in [
        "Wed Nov 25 08:00:01 2026 [pid 1234] [bob] OK LOGIN: Client \"192.0.2.1\"",
        "Wed Nov 25 08:00:01 2026 [pid 1234] CONNECT: Client \"192.0.2.1\"",
        "Nov 25 08:00:01 ftp1 logger: [bob] FAIL LOGIN: Client \"192.0.2.1\"",
    ] {
        assert!(counted(&events("vsftpd", &[line])).is_empty(), "{line}");
    }
}

#[test]
fn vsftpd_user_names_never_choose_the_address() {
    for line in [
        "Wed Nov 25 08:00:01 2026 [pid 1] [x] FAIL LOGIN: Client \"203.0.113.66\"] FAIL LOGIN: Client \"192.0.2.10\"",
        "Wed Nov 25 08:00:01 2026 [pid 1] [x] FAIL LOGIN: Client \"203.0.113.66\", \"y] FAIL LOGIN: Client \"192.0.2.10\"",
    ] {
        assert_eq!(
            counted(&events("vsftpd", &[line])),
            vec![(addr("192.0.2.10"), 1)],
            "{line}"
        );
    }
    // A ruser with a space cannot stand in for ` rhost=`: not read at all.
    let pam = "Nov 25 08:00:01 ftp1 vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=x rhost=203.0.113.66 rhost=192.0.2.10";
    assert!(counted(&events("vsftpd", &[pam])).is_empty());
}

#[test]
fn proftpd_system_log_and_syslog() {
    for (line, want) in [
        (
            "2026-11-25 08:00:01,121 ftp1 proftpd[2589] ftp1.example.org (client.example.net[192.0.2.1]): USER bob (Login failed): Incorrect password",
            "192.0.2.1",
        ),
        (
            "Nov 25 08:00:01 ftp1 proftpd[2589]: ftp1.example.org (::ffff:198.51.100.2[::ffff:198.51.100.2]) - USER alice: no such user found from ::ffff:198.51.100.2 [::ffff:198.51.100.2] to ::ffff:192.0.2.200:21",
            "198.51.100.2",
        ),
        (
            "Nov 25 08:00:01 ftp1 proftpd[2589]: ftp1 (2001:db8::3[2001:db8::3]) - SECURITY VIOLATION: root login attempted.",
            "2001:db8::3",
        ),
        (
            "Nov 25 08:00:01 ftp1 proftpd[2589] ftp1 (x[203.0.113.4]): USER bob (Login failed): User in /etc/ftpusers",
            "203.0.113.4",
        ),
    ] {
        assert_eq!(
            counted(&events("proftpd", &[line])),
            vec![(addr(want), 1)],
            "{line}"
        );
    }
    // Three failed tries then the session's summary: three attempts, not four; the
    // summary alone (tries not logged) is one.
    let p = "Nov 25 08:00:0";
    let tries: Vec<String> = (1..=3)
        .map(|i| format!("{p}{i} ftp1 proftpd[77]: ftp1 (x[192.0.2.9]) - USER bob (Login failed): Incorrect password."))
        .chain([format!("{p}4 ftp1 proftpd[77]: ftp1 (x[192.0.2.9]) - Maximum login attempts (3) exceeded")])
        .collect();
    let tries: Vec<&str> = tries.iter().map(String::as_str).collect();
    let n: u32 = counted(&events("proftpd", &tries))
        .iter()
        .map(|c| c.1)
        .sum();
    assert_eq!(n, 3);
    assert_eq!(
        counted(&events("proftpd", &tries[3..])),
        vec![(addr("192.0.2.9"), 1)]
    );
    for line in [
        "Nov 25 08:00:01 ftp1 proftpd[1]: ftp1 (x[192.0.2.1]) - USER bob: Login successful.",
        "Nov 25 08:00:01 ftp1 proftpd[1]: ftp1 (x[192.0.2.1]) - FTP session opened.",
        "Nov 25 08:00:01 ftp1 logger: ftp1 (x[192.0.2.1]) - SECURITY VIOLATION: root login attempted.",
    ] {
        assert!(counted(&events("proftpd", &[line])).is_empty(), "{line}");
    }
}

#[test]
fn proftpd_reads_the_address_from_its_own_prefix() {
    // The user name, and a reverse DNS name with characters a resolver never returns.
    let line = "Nov 25 08:00:01 ftp1 proftpd[1]: ftp1 (x[192.0.2.10]) - USER a (x[203.0.113.66]) - USER b: no such user found from 203.0.113.66 [203.0.113.66] to 192.0.2.200:21";
    assert_eq!(
        counted(&events("proftpd", &[line])),
        vec![(addr("192.0.2.10"), 1)]
    );
    let line = "Nov 25 08:00:01 ftp1 proftpd[1]: ftp1 (a[203.0.113.66]b[192.0.2.10]) - SECURITY VIOLATION: root login attempted.";
    assert!(counted(&events("proftpd", &[line])).is_empty());
}
