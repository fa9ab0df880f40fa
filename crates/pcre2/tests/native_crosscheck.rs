//! The built-in filters against Fail2Ban's filter of the same name, on Fail2Ban's own
//! sample log (both read from the installed Debian package at test time, never copied):
//! every line of the sample goes through Fail2Ban's filter (our Fail2Ban engine) and through
//! the native filter, and both must flag the same lines with the same hosts. Each deliberate
//! difference is listed, with its reason, next to the filter's test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher};
use portcullis_core::{Event, EventKind};
use portcullis_pcre2::{Fail2BanFilter, load_filter};

mod common;
use common::{LOGS, TEST_NOW, cet, filter_file};

/// Line text -> hosts flagged on it (empty: not flagged).
type Flags = BTreeMap<String, BTreeSet<IpAddr>>;

/// The sample's log lines: every line that is not a comment (annotations included) or empty.
fn sample_lines(name: &str) -> Vec<String> {
    let path = Path::new(LOGS).join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes)
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn fail2ban_flags(name: &str, args: &[(&str, &str)], lines: &[String]) -> Flags {
    let args: Vec<(String, String)> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut o = load_filter(&filter_file(name), &args).unwrap_or_else(|e| panic!("{name}: {e}"));
    o.check_all = true;
    let mut f = Fail2BanFilter::new(&o, cet(), 2005).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut flags = Flags::new();
    for line in lines {
        let r = f.process_line(line, TEST_NOW);
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        let hosts = r
            .failures
            .iter()
            .filter(|x| !x.is_nofail())
            .filter_map(|x| x.addr)
            .collect::<BTreeSet<_>>();
        flags.entry(line.clone()).or_default().extend(hosts);
    }
    flags
}

fn native_flags(name: &str, kinds: &[EventKind], lines: &[String]) -> Flags {
    let text = filter::builtin(name).unwrap_or_else(|| panic!("no built-in {name}"));
    let f = Filter::from_toml(text, &format!("builtin:{name}")).expect("compiles");
    let mut m = LineMatcher::new(f, DateParser::new(cet())).expect("matcher");
    let mut flags = Flags::new();
    for line in lines {
        let mut out: Vec<Event> = Vec::new();
        m.feed_line(line.as_bytes(), TEST_NOW, &mut out);
        let hosts = out
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .map(|e| e.addr)
            .collect::<BTreeSet<_>>();
        flags.entry(line.clone()).or_default().extend(hosts);
    }
    flags
}

/// Compares line by line; `differences` are (a substring of the line, the hosts we flag,
/// why): a listed line must differ exactly so, an unlisted line must agree. Returns (lines
/// Fail2Ban flags, lines we flag).
fn cross_check(
    name: &str,
    args: &[(&str, &str)],
    kinds: &[EventKind],
    differences: &[(&str, &[&str], &str)],
) -> Option<(usize, usize)> {
    cross_check_named(name, name, args, kinds, differences)
}

/// [`cross_check`] of Fail2Ban's filter `name` (and its sample) against the built-in
/// filter `native`.
fn cross_check_named(
    name: &str,
    native: &str,
    args: &[(&str, &str)],
    kinds: &[EventKind],
    differences: &[(&str, &[&str], &str)],
) -> Option<(usize, usize)> {
    if !common::corpus_present() {
        return None;
    }
    let lines = sample_lines(name);
    let theirs = fail2ban_flags(name, args, &lines);
    let ours = native_flags(native, kinds, &lines);
    let mut problems = Vec::new();
    let mut used = vec![false; differences.len()];
    for (line, want) in &theirs {
        let got = &ours[line];
        match differences.iter().position(|(s, _, _)| line.contains(s)) {
            Some(i) => {
                used[i] = true;
                let expected: BTreeSet<IpAddr> = differences[i]
                    .1
                    .iter()
                    .map(|a| a.parse().expect("address"))
                    .collect();
                if *got != expected || got == want {
                    problems.push(format!(
                        "listed difference: Fail2Ban {want:?}, ours {got:?}, listed {expected:?}\n    {line}"
                    ));
                }
            }
            None if got != want => {
                problems.push(format!("Fail2Ban {want:?}, ours {got:?}\n    {line}"));
            }
            None => {}
        }
    }
    for (i, u) in used.iter().enumerate() {
        if !u {
            problems.push(format!("difference {:?} matches no line", differences[i].0));
        }
    }
    let theirs_n = theirs.values().filter(|h| !h.is_empty()).count();
    let ours_n = ours.values().filter(|h| !h.is_empty()).count();
    println!(
        "{name} {args:?}: {} lines, Fail2Ban flags {theirs_n}, native flags {ours_n}, {} listed differences",
        lines.len(),
        differences.len()
    );
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
    assert!(theirs_n > 0, "{name}: Fail2Ban flagged nothing");
    Some((theirs_n, ours_n))
}

const ATTEMPT: &[EventKind] = &[EventKind::Attempt];
const COUNTED: &[EventKind] = &[EventKind::Attempt, EventKind::Probe];

// ---------------------------------------------------------------- dovecot

/// Fail2Ban's dovecot filter, in both modes: no differences (Dovecot's own log file tags,
/// `auth-worker(N):`, are read by the header).
const DOVECOT_DIFFS: &[(&str, &[&str], &str)] = &[];

#[test]
fn dovecot_attempts_match_fail2ban_normal_mode() {
    cross_check("dovecot", &[("mode", "normal")], ATTEMPT, DOVECOT_DIFFS);
}

#[test]
fn dovecot_attempts_and_probes_match_fail2ban_aggressive_mode() {
    cross_check("dovecot", &[("mode", "aggressive")], COUNTED, DOVECOT_DIFFS);
}

// ---------------------------------------------------------------- postfix-sasl

/// Fail2Ban's postfix filter in mode = auth (what its postfix-sasl jail uses) reads
/// Fail2Ban's postfix sample. Differences: a multi-instance Postfix (`postfix-incoming/`)
/// names its own syslog programs; the built-in filter lists the default instance's, a
/// second instance needs a filter copy with its names.
const POSTFIX_SASL_DIFFS: &[(&str, &[&str], &str)] = &[(
    "postfix-incoming/smtpd[10752]: warning: unknown[1.1.1.1]: SASL",
    &[],
    "second instance's program name",
)];

#[test]
fn postfix_sasl_matches_fail2ban_postfix_auth_mode() {
    cross_check_named(
        "postfix",
        "postfix-sasl",
        &[("mode", "auth")],
        ATTEMPT,
        POSTFIX_SASL_DIFFS,
    );
}

// ---------------------------------------------------------------- web servers

/// Fail2Ban's nginx-http-auth: one difference, its injection sample, whose user name
/// holds `:`s (`test": password mismatch, client: 127.0.0.1, ...`). nginx cuts the Basic
/// credentials at the first colon, so it never writes such a line (tests/web_e2e.rs
/// sends one to a real nginx); the built-in filter reads the user as colon-free and takes
/// the first `client: `, Fail2Ban the last.
const NGINX_HTTP_AUTH_DIFFS: &[(&str, &[&str], &str)] = &[(
    "*3 user \"test\": password mismatch, client: 127.0.0.1, server: test",
    &["127.0.0.1"],
    "a user name nginx cannot write",
)];

#[test]
fn nginx_http_auth_matches_fail2ban_normal_mode() {
    cross_check(
        "nginx-http-auth",
        &[("mode", "normal")],
        ATTEMPT,
        NGINX_HTTP_AUTH_DIFFS,
    );
}

#[test]
fn nginx_http_auth_matches_fail2ban_aggressive_mode() {
    cross_check(
        "nginx-http-auth",
        &[("mode", "aggressive")],
        COUNTED,
        NGINX_HTTP_AUTH_DIFFS,
    );
}

#[test]
fn nginx_botsearch_matches_fail2ban() {
    cross_check("nginx-botsearch", &[], COUNTED, &[]);
}

/// Fail2Ban's apache-auth (logging = all: its own file and syslog): a second Apache
/// instance's syslog program (`httpd/backend1`) is not in the built-in `programs`, and in
/// mode = aggressive Fail2Ban also counts mod_evasive's denials, which the built-in filter
/// never does (mod_evasive blocks on its own threshold).
const APACHE_AUTH_DIFFS: &[(&str, &[&str], &str)] = &[(
    "httpd/backend1[22034]: [authz_core:error]",
    &[],
    "second instance's program name",
)];

#[test]
fn apache_auth_matches_fail2ban_normal_mode() {
    cross_check(
        "apache-auth",
        &[("mode", "normal"), ("logging", "all")],
        ATTEMPT,
        APACHE_AUTH_DIFFS,
    );
}

#[test]
fn apache_auth_matches_fail2ban_aggressive_mode() {
    let mut diffs = APACHE_AUTH_DIFFS.to_vec();
    diffs.push(("[evasive20:error]", &[], "mod_evasive's own denials"));
    cross_check(
        "apache-auth",
        &[("mode", "aggressive"), ("logging", "all")],
        ATTEMPT,
        &diffs,
    );
}

#[test]
fn apache_badbots_matches_fail2ban() {
    cross_check("apache-badbots", &[], COUNTED, &[]);
}

// ---------------------------------------------------------------- FTP servers

const VSFTPD_DIFFS: &[(&str, &[&str], &str)] = &[];

#[test]
fn vsftpd_matches_fail2ban() {
    cross_check("vsftpd", &[], ATTEMPT, VSFTPD_DIFFS);
}

const PROFTPD_DIFFS: &[(&str, &[&str], &str)] = &[];

#[test]
fn proftpd_matches_fail2ban() {
    cross_check("proftpd", &[], ATTEMPT, PROFTPD_DIFFS);
}
