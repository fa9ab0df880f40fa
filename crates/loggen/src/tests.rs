//! Whole-generator tests: determinism, exact sizes, and the truth re-derived independently
//! from the written lines by a plain string parser (no code shared with the renderer).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;

use crate::clock::Format;
use crate::generate::{Config, generate};
use crate::rotate::write_rotated;
use crate::truth::Truth;

fn config(lines: u64, attackers: u64, seed: u64) -> Config {
    Config {
        lines,
        attackers,
        seed,
        ..Config::default()
    }
}

fn run(cfg: &Config) -> (String, Truth) {
    let mut out = Vec::new();
    let truth = generate(cfg, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), truth)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Count {
    attempts: u64,
    probes: u64,
    successes: u64,
    users: BTreeSet<String>,
}

/// `… IP port P…` → IP: the token right before the last " port ".
fn addr_before_port(text: &str) -> &str {
    let head = &text[..text.rfind(" port ").unwrap()];
    head.rsplit(' ').next().unwrap()
}

/// Re-derives the truth from the lines, by the counting table, and checks line invariants.
fn recount(log: &str) -> BTreeMap<String, Count> {
    let mut per: BTreeMap<String, Count> = BTreeMap::new();
    // pid -> (address, time of day) of a pam_unix auth failure not yet followed by its
    // Failed line
    let mut pam_open: HashMap<String, (String, i64)> = HashMap::new();
    // pid -> time of day of the first line of an open attempt group
    let mut group_open: HashMap<String, i64> = HashMap::new();
    // (pid, address) -> (a line counted, a user line's credit, time of day of the last
    // line): the per-connection rule (a connection that names a user counts one attempt
    // at least; its first failed try after such a line is that attempt).
    let mut conns: HashMap<(String, String), (bool, bool, i64)> = HashMap::new();
    for line in log.lines() {
        let now = time_of_day(line);
        let (_, rest) = line.split_once(" gate ").unwrap();
        let (tag, msg) = rest.split_once(": ").unwrap();
        let sshd = tag.starts_with("sshd[") || tag.starts_with("sshd-session[");
        if !sshd {
            assert!(
                ["CRON[", "sudo", "systemd-logind[", "kernel"]
                    .iter()
                    .any(|p| tag.starts_with(p)),
                "unexpected program in {line}"
            );
            continue;
        }
        let (times, msg) = match msg.strip_prefix("message repeated ") {
            Some(r) => {
                let (n, inner) = r.split_once(" times: [ ").unwrap();
                (n.parse::<u64>().unwrap(), inner.strip_suffix(']').unwrap())
            }
            None => (1, msg),
        };
        let user_of = |s: &str| s.strip_prefix("invalid user ").unwrap_or(s).to_owned();
        let (addr, user, attempts, probes, success) = if let Some(r) = msg
            .strip_prefix("Failed password for ")
            .or_else(|| msg.strip_prefix("Failed keyboard-interactive/pam for "))
        {
            let (u, tail) = r.rsplit_once(" from ").unwrap();
            let a = addr_before_port(tail).to_owned();
            if times == 1
                && let Some((open, _)) = pam_open.remove(tag)
            {
                assert_eq!(open, a, "pam line and Failed line disagree: {line}");
            }
            if times == 1
                && let Some(since) = group_open.remove(tag)
            {
                let age = (now - since).rem_euclid(86_400);
                assert!(
                    age <= 8,
                    "attempt lines {age} s apart (filters merge within 10 s): {line}"
                );
            }
            (a, Some(user_of(u)), times, 0, false)
        } else if let Some(r) = msg.strip_prefix("Failed none for ") {
            let (u, tail) = r.rsplit_once(" from ").unwrap();
            (
                addr_before_port(tail).to_owned(),
                Some(user_of(u)),
                0,
                times,
                false,
            )
        } else if let Some(r) = msg.strip_prefix("Invalid user ") {
            let (u, tail) = r.rsplit_once(" from ").unwrap();
            (
                addr_before_port(tail).to_owned(),
                Some(u.to_owned()),
                0,
                times,
                false,
            )
        } else if let Some(r) = msg
            .strip_prefix("User ")
            .filter(|r| r.contains(" not allowed because "))
        {
            let head = &r[..r.find(" not allowed because ").unwrap()];
            let (u, a) = head.rsplit_once(" from ").unwrap();
            (a.to_owned(), Some(u.to_owned()), 0, times, false)
        } else if msg.starts_with("Did not receive identification string from ")
            || msg.starts_with("banner exchange: Connection from ")
            || msg.starts_with("Unable to negotiate with ")
            || msg.starts_with("fatal: Timeout before authentication for ")
        {
            (addr_before_port(msg).to_owned(), None, 0, times, false)
        } else if let Some(r) = msg
            .strip_prefix("Connection closed by ")
            .or_else(|| msg.strip_prefix("Connection reset by "))
            .or_else(|| msg.strip_prefix("Disconnected from "))
            .or_else(|| msg.strip_prefix("Received disconnect from "))
            .filter(|_| msg.ends_with(" [preauth]"))
        {
            let a = addr_before_port(r).to_owned();
            let u = r
                .strip_prefix("authenticating user ")
                .or_else(|| r.strip_prefix("invalid user "))
                .map(|x| x[..x.rfind(&format!(" {a} port ")).unwrap()].to_owned());
            (a, u, 0, times, false)
        } else if let Some(r) = msg.strip_prefix("Failed publickey for ") {
            // A key before the accepted one: retracted by the login, counts nothing.
            let (u, tail) = r.rsplit_once(" from ").unwrap();
            (
                addr_before_port(tail).to_owned(),
                Some(u.to_owned()),
                0,
                0,
                false,
            )
        } else if let Some(r) = msg.strip_prefix("Accepted ") {
            // A login retracts the connection's tentative pam_unix failure.
            if let Some((open, _)) = pam_open.remove(tag) {
                group_open.remove(tag);
                assert_eq!(
                    open,
                    addr_before_port(r),
                    "pam line and login disagree: {line}"
                );
            }
            let (_, r) = r.split_once(" for ").unwrap();
            let (u, tail) = r.rsplit_once(" from ").unwrap();
            (
                addr_before_port(tail).to_owned(),
                Some(u.to_owned()),
                0,
                0,
                true,
            )
        } else {
            if msg.starts_with("pam_unix(sshd:auth): ") || msg.starts_with("error: PAM: ") {
                group_open.entry(tag.to_owned()).or_insert(now);
            }
            if let Some(r) = msg.strip_prefix("pam_unix(sshd:auth): authentication failure;") {
                let a = r.split("rhost=").nth(1).unwrap().split(' ').next().unwrap();
                // Tentative: counts nothing until its connection's outcome (the Failed line
                // that follows is the attempt; a login retracts it).
                let st = conns
                    .entry((tag.to_owned(), a.to_owned()))
                    .or_insert((false, false, now));
                if (now - st.2).rem_euclid(86_400) > 120 {
                    *st = (false, false, now);
                }
                st.2 = now;
                let prev = pam_open.insert(tag.to_owned(), (a.to_owned(), now));
                assert!(
                    prev.is_none(),
                    "two pam lines without a Failed line: {line}"
                );
            } else {
                let info = [
                    "pam_unix(sshd:auth): check pass; user unknown",
                    "error: PAM: Authentication failure for ",
                    "PAM ",
                    "error: maximum authentication attempts exceeded for ",
                    "Disconnecting ",
                    "pam_unix(sshd:session): session ",
                    "Received disconnect from ",
                    "Disconnected from user ",
                    "error: kex_exchange_identification: ",
                    "Received signal 15; terminating.",
                    "Server listening on ",
                ];
                assert!(
                    info.iter().any(|p| msg.starts_with(p)),
                    "unclassified sshd line: {line}"
                );
            }
            continue;
        };
        let st = conns
            .entry((tag.to_owned(), addr.clone()))
            .or_insert((false, false, now));
        if (now - st.2).rem_euclid(86_400) > 120 {
            *st = (false, false, now);
        }
        st.2 = now;
        let user_line = probes > 0 && user.is_some() && attempts == 0;
        let (attempts, probes) = if user_line && times == 1 {
            let n = u64::from(!st.0);
            st.1 |= !st.0;
            st.0 = true;
            (n, 0)
        } else if user_line {
            // `message repeated` counts as it is.
            st.0 = true;
            (times, 0)
        } else if attempts > 0 {
            let mut a = attempts;
            if times == 1 && st.1 {
                a -= 1;
                st.1 = false;
            }
            st.0 = true;
            (a, probes)
        } else {
            (attempts, probes)
        };
        let c = per.entry(addr).or_default();
        c.attempts += attempts;
        c.probes += probes;
        c.successes += u64::from(success);
        c.users.extend(user);
    }
    assert!(
        pam_open.is_empty(),
        "pam lines never followed by Failed or Accepted: {pam_open:?}"
    );
    per
}

/// Seconds since midnight of a syslog or RFC 3339 line.
fn time_of_day(line: &str) -> i64 {
    let hms = if line.as_bytes()[4] == b'-' {
        &line[11..19]
    } else {
        &line[7..15]
    };
    let f: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    f[0] * 3600 + f[1] * 60 + f[2]
}

fn assert_consistent(cfg: &Config) -> (String, Truth) {
    let (log, truth) = run(cfg);
    assert_eq!(log.lines().count() as u64, cfg.lines);
    assert_eq!(truth.totals.lines, cfg.lines);
    let recount = recount(&log);
    let from_truth: BTreeMap<String, Count> = truth
        .addresses
        .iter()
        .map(|a| {
            let c = Count {
                attempts: a.attempts,
                probes: a.probes,
                successes: a.successes,
                users: a.users.iter().cloned().collect(),
            };
            (a.addr.clone(), c)
        })
        .collect();
    assert_eq!(
        from_truth.len(),
        truth.addresses.len(),
        "duplicate address in truth"
    );
    for a in &truth.addresses {
        assert!(
            a.users.windows(2).all(|w| w[0] < w[1]),
            "users not sorted: {a:?}"
        );
    }
    for (addr, c) in &recount {
        assert_eq!(from_truth.get(addr), Some(c), "address {addr}");
    }
    assert_eq!(recount.len(), from_truth.len());
    let attackers: HashSet<&str> = truth
        .addresses
        .iter()
        .filter(|a| a.role != "legit")
        .map(|a| a.addr.as_str())
        .collect();
    assert_eq!(attackers.len() as u64, cfg.attackers);
    for injected in &truth.injected {
        assert!(
            !recount.contains_key(injected),
            "{injected} must never be counted"
        );
    }
    let sum = |f: fn(&Count) -> u64| recount.values().map(f).sum::<u64>();
    assert_eq!(truth.totals.attempts, sum(|c| c.attempts));
    assert_eq!(truth.totals.probes, sum(|c| c.probes));
    assert_eq!(truth.totals.successes, sum(|c| c.successes));
    (log, truth)
}

#[test]
fn same_seed_gives_identical_bytes_and_truth() {
    let cfg = config(20_000, 300, 42);
    let (a, ta) = run(&cfg);
    let (b, tb) = run(&cfg);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    let (c, _) = run(&config(20_000, 300, 43));
    assert_ne!(a, c);
}

#[test]
fn truth_matches_an_independent_recount_default_mix() {
    let (log, truth) = assert_consistent(&config(50_000, 400, 7));
    assert_eq!(truth.breaches.len(), 2);
    for b in &truth.breaches {
        assert!(b.failures_before >= 3, "{b:?}");
        let entry = truth.addresses.iter().find(|a| a.addr == b.addr).unwrap();
        assert_eq!(entry.role, "breach");
        assert!(entry.successes >= 1);
    }
    assert_eq!(truth.injected.len(), 3);
    // The mix has what the brief asks for.
    for needle in [
        "sshd-session[",
        "message repeated ",
        "Failed keyboard-interactive/pam for ",
        "error: PAM: Authentication failure for ",
        "PAM 5 more authentication failures",
        "error: maximum authentication attempts exceeded for ",
        "Too many authentication failures [preauth]",
        "Did not receive identification string",
        "banner exchange: Connection from ",
        "no matching key exchange method found",
        "fatal: Timeout before authentication",
        "Accepted publickey for alice from ",
        ": ED25519 SHA256:",
        "Accepted password for ",
        "session opened for user alice(uid=1000) by (uid=0)",
        "New session ",
        " CRON[",
        " sudo:    alice : ",
        " kernel: [",
        "Failed none for ",
        " not allowed because ",
        "Invalid user root from 192.0.2.251 port 22 from ",
        "Received disconnect from ",
        ":11: Bye Bye [preauth]",
        "Connection reset by ",
        "2001:db8:",
    ] {
        assert!(log.contains(needle), "missing {needle:?}");
    }
    let noise = truth.totals.noise_lines as f64 / truth.totals.lines as f64;
    assert!((0.3..=0.5).contains(&noise), "noise share {noise}");
    assert!(truth.totals.failure_lines > truth.totals.attempts);
}

#[test]
fn many_distinct_attackers_all_appear_rfc3339_ipv6_heavy() {
    let cfg = Config {
        format: Format::Rfc3339,
        ipv6_share: 0.5,
        ..config(20_000, 5_000, 9)
    };
    let (log, truth) = assert_consistent(&cfg);
    assert!(log.starts_with("2026-11-20T00:00:0"));
    assert!(log.lines().all(|l| l.as_bytes()[26..32] == *b"+00:00"));
    let v6 = truth
        .addresses
        .iter()
        .filter(|a| a.addr.contains(':'))
        .count();
    assert!(v6 > 2_000, "{v6}");
}

#[test]
fn edge_sizes_keep_exact_counts() {
    assert_consistent(&config(10, 10, 1));
    assert_consistent(&config(1, 1, 1));
    assert_consistent(&config(100, 0, 1));
    assert_consistent(&config(2_000, 1, 5));
    let cfg = Config {
        noise_share: 0.0,
        sshd_session_share: 1.0,
        breaches: 0,
        injections: false,
        ..config(3_000, 50, 2)
    };
    let (log, truth) = assert_consistent(&cfg);
    // Only the logind lines of legit sessions come from another program.
    let logind = log
        .lines()
        .filter(|l| l.contains(" systemd-logind["))
        .count() as u64;
    assert_eq!(truth.totals.noise_lines, logind);
    assert!(truth.breaches.is_empty() && truth.injected.is_empty());
    // After the upgrade (at the very start here) only the listener logs as `sshd[`.
    assert!(
        log.lines()
            .filter(|l| l.contains(" sshd["))
            .all(|l| !l.contains(" from "))
    );
    assert_eq!(truth.totals.sshd_session_lines + 3, truth.totals.sshd_lines);
    let (_, empty) = assert_consistent(&config(0, 0, 1));
    assert!(empty.addresses.is_empty());
}

#[test]
fn refuses_impossible_configs() {
    assert!(generate(&config(10, 11, 1), Vec::new()).is_err());
    let bad_share = Config {
        ipv6_share: 1.5,
        ..config(10, 1, 1)
    };
    assert!(generate(&bad_share, Vec::new()).is_err());
    // Times that leave the four-digit years are refused up front, not written wrong.
    for start in [
        crate::clock::FIRST_SECOND - 1,
        crate::clock::parse_start("9999-12-01").unwrap(),
    ] {
        let late = Config {
            start,
            ..config(1_000_000, 1, 1)
        };
        assert!(
            matches!(late.validate(), Err(crate::ConfigError::TimeRange { .. })),
            "{start}"
        );
    }
    let first = Config {
        start: crate::clock::FIRST_SECOND,
        ..config(10, 1, 1)
    };
    assert!(first.validate().is_ok());
}

#[test]
fn year_rolls_over_in_syslog_format() {
    let cfg = Config {
        start: crate::clock::parse_start("2026-12-31T23:55:00Z").unwrap(),
        ..config(5_000, 20, 3)
    };
    let (log, _) = assert_consistent(&cfg);
    assert!(log.starts_with("Dec 31 23:55:"));
    assert!(log.lines().last().unwrap().starts_with("Jan  1 "));
}

#[test]
fn rotated_set_concatenates_to_the_same_log() {
    let cfg = config(12_345, 100, 11);
    let (log, truth) = run(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let (rtruth, set) = write_rotated(&cfg, dir.path(), 4).unwrap();
    assert_eq!(rtruth, truth);
    let names: Vec<String> = set
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["auth.log.3.gz", "auth.log.2.gz", "auth.log.1", "auth.log"]
    );
    let mut joined = String::new();
    for path in &set.files {
        let bytes = std::fs::read(path).unwrap();
        let mut text = String::new();
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = String::from_utf8(bytes).unwrap();
        }
        assert!(text.ends_with('\n'));
        assert!((3_000..=3_087).contains(&text.lines().count()), "{path:?}");
        joined.push_str(&text);
    }
    assert_eq!(joined, log);
}
