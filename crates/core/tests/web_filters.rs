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

const NGINX_ERR: &str = "2026/11/25 08:00:01 [error] 1234#1234: *7 ";

#[test]
fn nginx_http_auth_forms() {
    let tail = ", server: example.org, request: \"GET /private/ HTTP/1.1\", host: \"example.org\"";
    let line = |msg: &str, client: &str| format!("{NGINX_ERR}{msg}, client: {client}{tail}");
    let cases = [
        (
            line("user \"bob\": password mismatch", "192.0.2.1"),
            "192.0.2.1",
        ),
        (
            line(
                "user \"alice\" was not found in \"/etc/nginx/htpasswd\"",
                "2001:db8::5",
            ),
            "2001:db8::5",
        ),
        // Through syslog (error_log syslog:server=...): the program is nginx.
        (
            format!(
                "Nov 25 08:00:01 web1 nginx: [error] 1#1: *2 user \"bob\": password mismatch, client: 198.51.100.3{tail}"
            ),
            "198.51.100.3",
        ),
    ];
    let cases: Vec<(&str, &str)> = cases.iter().map(|(l, a)| (l.as_str(), *a)).collect();
    one_each("nginx-http-auth", EventKind::Attempt, 1000, &cases);
    let e = events(
        "nginx-http-auth",
        &line("user \"bob\": password mismatch", "192.0.2.1"),
    );
    assert_eq!(e[0].user.as_deref(), Some("bob"));
    let probe = line(
        "no user/password was provided for basic authentication",
        "192.0.2.9",
    );
    one_each(
        "nginx-http-auth",
        EventKind::Probe,
        200,
        &[(&probe, "192.0.2.9")],
    );
    none_of(
        "nginx-http-auth",
        &[
            // Other errors, other levels, and another program's syslog line.
            &line(
                "open() \"/var/www/x\" failed (2: No such file or directory)",
                "192.0.2.1",
            ),
            &format!(
                "2026/11/25 08:00:01 [warn] 1#1: *7 user \"bob\": password mismatch, client: 192.0.2.1{tail}"
            ),
            &format!(
                "Nov 25 08:00:01 web1 logger: [error] 1#1: *2 user \"bob\": password mismatch, client: 192.0.2.1{tail}"
            ),
        ],
    );
}

#[test]
fn nginx_http_auth_takes_the_first_client_after_a_colon_free_user() {
    // What a client can send: a user name without `:` (nginx splits user:password at the
    // first one), and anything in the request and Host header after the address.
    let hostile = [
        format!(
            "{NGINX_ERR}user \"x, client 203.0.113.66\": password mismatch, client: 192.0.2.10, server: s, request: \"GET /, client: 203.0.113.66, server: x HTTP/1.1\", host: \"a\", client: 203.0.113.66, server: b, request: \"x\""
        ),
        format!(
            "{NGINX_ERR}user \"x\" was not found in \"/etc/nginx/htpasswd\", client: 192.0.2.10, server: s, request: \"GET / HTTP/1.1\", host: \"x\": password mismatch, client: 203.0.113.66, server: y, request: \"z\""
        ),
    ];
    for line in &hostile {
        let e = events("nginx-http-auth", line);
        assert_eq!(e.len(), 1, "{line}");
        assert_eq!(e[0].addr, addr("192.0.2.10"), "{line}");
    }
}

#[test]
fn nginx_botsearch_error_and_access_logs() {
    let err = |path: &str, req: &str, client: &str| {
        format!(
            "{NGINX_ERR}open() \"/var/www/html{path}\" failed (2: No such file or directory), client: {client}, server: example.org, request: \"GET {req} HTTP/1.1\", host: \"example.org\""
        )
    };
    let access = |client: &str, req: &str, status: u16| {
        format!(
            "{client} - - [25/Nov/2026:08:00:01 +0000] \"GET {req} HTTP/1.1\" {status} 162 \"-\" \"Mozilla/5.0\""
        )
    };
    let hits = [
        err("/wp-login.php", "/wp-login.php", "192.0.2.1"),
        err(
            "/phpmyadmin/index.php",
            "/phpmyadmin/index.php",
            "192.0.2.2",
        ),
        err("/.env", "/.env", "2001:db8::3"),
        access("198.51.100.4", "/blog/wp-login.php", 404),
        access("198.51.100.5", "//pma/scripts/setup.php", 404),
        access("2001:db8::6", "/cgi-bin/luci", 404),
        access("203.0.113.7", "/.git/config", 404),
    ];
    let want = [
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::3",
        "198.51.100.4",
        "198.51.100.5",
        "2001:db8::6",
        "203.0.113.7",
    ];
    let cases: Vec<(&str, &str)> = hits.iter().map(String::as_str).zip(want).collect();
    one_each("nginx-botsearch", EventKind::Probe, 1000, &cases);
    none_of(
        "nginx-botsearch",
        &[
            // Found (200), a site's own missing files, another error.
            &access("198.51.100.4", "/wp-login.php", 200),
            &access("198.51.100.4", "/favicon.ico", 404),
            &err("/favicon.ico", "/favicon.ico", "192.0.2.1"),
            // A path holding `"` can imitate nginx's text: never read.
            &err(
                "/x\" failed (2: No such file or directory), client: 203.0.113.66, server: a, request: \"GET /wp-login.php",
                "/wp-login.php",
                "192.0.2.1",
            ),
        ],
    );
    // The access log's address is its first field, whatever the user and request say.
    let hostile = "192.0.2.10 - 203.0.113.66 [01/Jan/2020:00:00:00 +0000] \"GET x\" - [25/Nov/2026:08:00:01 +0000] \"GET /wp-login.php HTTP/1.1\" 404 1 \"-\" \"-\"";
    let e = events("nginx-botsearch", hostile);
    assert!(e.iter().all(|e| e.addr == addr("192.0.2.10")), "{e:?}");
}

#[test]
fn apache_auth_forms() {
    let p24 = "[Wed Nov 25 08:00:01.123456 2026] [auth_basic:error] [pid 1234:tid 140000] [client ";
    let cases = [
        (
            format!("{p24}192.0.2.1:50000] AH01618: user bob not found: /private"),
            "192.0.2.1",
        ),
        (
            format!(
                "{p24}192.0.2.2:50000] AH01617: user bob: authentication failure for \"/private\": Password Mismatch"
            ),
            "192.0.2.2",
        ),
        (
            "[Wed Nov 25 08:00:01.1 2026] [auth_digest:error] [pid 1] [client [2001:db8::3]:50000] AH01792: user bob: password mismatch: /digest".to_string(),
            "2001:db8::3",
        ),
        (
            "[Wed Nov 25 08:00:01.1 2026] [authz_core:error] [pid 1] [client 198.51.100.4:1] AH01630: client denied by server configuration: /var/www/.htpasswd".to_string(),
            "198.51.100.4",
        ),
        (
            "[Wed Nov 25 08:00:01 2026] [error] [client 203.0.113.5] user bob not found: /private".to_string(),
            "203.0.113.5",
        ),
        (
            "Nov 25 08:00:01 web1 apache2[1234]: [auth_basic:error] [pid 1234] [client 192.0.2.6:1] AH01618: user x not found: /".to_string(),
            "192.0.2.6",
        ),
    ];
    let cases: Vec<(&str, &str)> = cases.iter().map(|(l, a)| (l.as_str(), *a)).collect();
    one_each("apache-auth", EventKind::Attempt, 1000, &cases);
    none_of(
        "apache-auth",
        &[
            "[Wed Nov 25 08:00:01.1 2026] [evasive20:error] [pid 1] [client 192.0.2.1:1] client denied by server configuration: /",
            "[Wed Nov 25 08:00:01.1 2026] [core:notice] [pid 1] AH00094: Command line: '/usr/sbin/apache2'",
            "[Wed Nov 25 08:00:01.1 2026] [php:error] [pid 1] [client 192.0.2.1:1] PHP Warning: x",
            "Nov 25 08:00:01 web1 logger: [auth_basic:error] [pid 1] [client 192.0.2.1:1] AH01618: user x not found: /",
        ],
    );
    // The user name comes after the address: it cannot move it.
    let hostile = format!(
        "{p24}192.0.2.10:1] AH01618: user x [client 203.0.113.66:1] AH01618: user y not found: /"
    );
    let e = events("apache-auth", &hostile);
    assert_eq!((e.len(), e[0].addr), (1, addr("192.0.2.10")));
}

#[test]
fn apache_badbots_agents() {
    let line = |client: &str, agent: &str| {
        format!(
            "{client} - - [25/Nov/2026:08:00:01 +0100] \"GET / HTTP/1.1\" 200 512 \"-\" \"{agent}\""
        )
    };
    let hits = [
        line("192.0.2.1", "Mozilla/5.0 zgrab/0.x"),
        line("2001:db8::2", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None)"),
        line("198.51.100.3", "sqlmap/1.7#stable (https://sqlmap.org)"),
        line("203.0.113.4", "TrackBack/1.02"),
    ];
    let want = ["192.0.2.1", "2001:db8::2", "198.51.100.3", "203.0.113.4"];
    let cases: Vec<(&str, &str)> = hits.iter().map(String::as_str).zip(want).collect();
    one_each("apache-badbots", EventKind::Probe, 1000, &cases);
    let e = events("apache-badbots", &hits[3]);
    assert_eq!(
        e[0].time,
        Time::from_secs(1_795_590_001),
        "the access log's own time"
    );
    none_of(
        "apache-badbots",
        &[
            &line(
                "192.0.2.1",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
            &line("192.0.2.1", "curl/7.88.1"),
            // The agent named in the referer or request only.
            "192.0.2.1 - - [25/Nov/2026:08:00:01 +0100] \"GET /?sqlmap HTTP/1.1\" 200 1 \"zgrab\" \"Mozilla/5.0\"",
        ],
    );
}

#[test]
fn shapes_count_what_they_cannot_read() {
    // An access-only filter: a line with no access log date is unparsed, not dropped.
    let f = Filter::from_toml(filter::builtin("apache-badbots").expect("b"), "b").expect("c");
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("m");
    let mut out = Vec::new();
    for line in [
        "garbage",
        "Nov 25 08:00:01 web1 sshd[1]: x",
        "192.0.2.1 - - [bad] \"GET /\"",
    ] {
        m.feed_line(line.as_bytes(), NOW, &mut out);
    }
    assert_eq!((m.stats().unparsed, m.stats().lines), (3, 3));
    // A plain+syslog filter: a line without a timestamp is not read (here it even looks
    // like a syslog tag, `1#1:`, of a program the filter does not read), and counted.
    let f = Filter::from_toml(filter::builtin("nginx-http-auth").expect("b"), "b").expect("c");
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("m");
    let line = "[error] 1#1: *1 user \"a\": password mismatch, client: 192.0.2.1, server: s, request: \"x\"";
    m.feed_line(line.as_bytes(), NOW, &mut out);
    assert_eq!(m.stats().unparsed + m.stats().other_program, 1);
    assert!(out.is_empty());
}

#[test]
fn shapes_are_checked_when_a_filter_is_loaded() {
    let text =
        "[filter]\nshapes = []\n\n[[rule]]\nid = \"a\"\nkind = \"attempt\"\nregex = '^x <HOST>$'\n";
    let e = Filter::from_toml(text, "mine.toml").expect_err("no shapes");
    assert_eq!((e.line, e.key.as_str()), (2, "filter.shapes"), "{e}");
    let text = "[filter]\nshapes = [\"csv\"]\n\n[[rule]]\nid = \"a\"\nkind = \"attempt\"\nregex = '^x <HOST>$'\n";
    let e = Filter::from_toml(text, "mine.toml").expect_err("unknown shape");
    assert_eq!(e.line, 2, "{e}");
}
