//! The findings: what in the observations means someone may have got in.
//!
//! Pure logic over a time-ordered list of [`Observation`]s and the sessions open now, so it is
//! tested on scripted histories. Four kinds, most serious first: a success from an address that
//! failed before (likely brute-force success), a session still open from such an address, a
//! root login, and a user logging in from a network never seen for that user in the period.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use portcullis_core::jail::{JailConfig, JailEngine, Restored, SuccessVerdict};
use portcullis_core::{Event, EventKind, Time, Weight};
use portcullis_report_html::{Finding, Severity};
use serde::Serialize;

/// Users named per address in a finding's detail; the rest are counted.
const USERS_IN_DETAIL: usize = 8;
/// Networks remembered per user; a user with more is not checked for new networks (a bound on
/// memory against a flood of logins, and such a user has no "usual" network anyway).
const NETS_PER_USER: usize = 256;

/// One thing the logs (or wtmp/btmp) say about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// When.
    pub time: Time,
    /// The remote address.
    pub addr: IpAddr,
    /// The user named, if any (attacker-chosen for failures).
    pub user: Option<Arc<str>>,
    /// What happened.
    pub kind: ObsKind,
}

/// What an observation says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObsKind {
    /// Failed authentication attempts (`count` of them: `message repeated` lines count more).
    Failure {
        /// Attempts.
        count: u32,
        /// Weight of one (the filter rule's).
        weight: Weight,
    },
    /// Pre-authentication noise (scans, aborted connections).
    Probe {
        /// Occurrences.
        count: u32,
        /// Weight of one (the filter rule's).
        weight: Weight,
    },
    /// A successful login.
    Success {
        /// `password`, `publickey`, … when known.
        method: Option<Arc<str>>,
        /// What the jail's breach rule says of it (the engine's
        /// [`judge_success`](portcullis_core::jail::JailEngine::judge_success)).
        verdict: SuccessVerdict,
    },
}

impl Observation {
    /// The observation as the event a filter would have produced, for an engine.
    pub fn event(&self) -> Event {
        let (kind, weight, count) = match &self.kind {
            ObsKind::Failure { count, weight } => (EventKind::Attempt, *weight, *count),
            ObsKind::Probe { count, weight } => (EventKind::Probe, *weight, *count),
            ObsKind::Success { .. } => (EventKind::Success, Weight::ZERO, 1),
        };
        Event {
            time: self.time,
            addr: self.addr,
            kind,
            weight,
            count,
            user: self.user.as_deref().map(Box::from),
            user_exists: None,
            method: match &self.kind {
                ObsKind::Success { method, .. } => method.as_deref().map(Box::from),
                _ => None,
            },
            pid: None,
            rule: 0,
        }
    }
}

/// Judge every success of `observations` (time-ordered) afresh with the breach rule of a jail
/// configured by `config`, replaying them through a fresh engine: for evidence that did not
/// come through the filter (btmp failures, wtmp logins).
pub fn rejudge(config: &JailConfig, observations: &mut [Observation]) {
    let mut engine = JailEngine::new(config.clone(), Restored::default());
    for ob in observations.iter_mut() {
        let ev = ob.event();
        if let ObsKind::Success { verdict, .. } = &mut ob.kind {
            engine.handle_timeout(ev.time);
            *verdict = engine.judge_success(ev.addr, ev.time);
        }
        engine.handle_event(ev.time, &ev);
        while engine.poll_decision().is_some() {}
    }
}

/// A session or authenticated connection open now, from the host snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSession {
    /// Who is logged in.
    pub user: String,
    /// From where.
    pub addr: IpAddr,
    /// Since when, if known (utmp gives it, a connection does not).
    pub since: Option<Time>,
    /// What shows it: `utmp pts/0 pid 123`, `sshd pid 456`.
    pub evidence: String,
}

/// Which rule raised a finding; a stable name for `--json` readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A successful login from an address with failed attempts before it.
    SuccessAfterFailures,
    /// A session still open from an address with failures or a new network.
    OpenSessionFromSuspect,
    /// A successful root login.
    RootLogin,
    /// A user logged in from a network not seen for that user earlier in the period.
    NewNetwork,
}

/// A finding with the rule that raised it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flagged {
    /// The rule.
    pub kind: FindingKind,
    /// What the report shows.
    #[serde(flatten)]
    pub finding: Finding,
}

/// The /24 (IPv4) or /64 (IPv6) an address belongs to: "the same network" for logins.
pub fn network_of(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() { 24 } else { 64 };
    IpNet::new(addr, prefix).map_or_else(|_| IpNet::from(addr), |n| n.trunc())
}

#[derive(Default)]
struct Failures {
    count: u64,
    first: Option<Time>,
    last: Option<Time>,
    users: Vec<Arc<str>>,
    more_users: usize,
}

/// Run every rule; the findings come back most serious first. A success is "after failures"
/// by its verdict (the jail's breach rule, as `scan` and the daemon's live alert judge it):
/// critical when the rule calls it a breach, else (a mistyped password) a low note.
/// `breach_after` is also how many failures in the period make an address suspect for the
/// sessions it still has open.
pub fn analyze(
    observations: &[Observation],
    open: &[OpenSession],
    breach_after: u32,
) -> Vec<Flagged> {
    let breach_after = u64::from(breach_after.max(1));
    let mut failures: HashMap<IpAddr, Failures> = HashMap::new();
    let mut nets: HashMap<Arc<str>, Vec<IpNet>> = HashMap::new();
    let mut out: Vec<Flagged> = Vec::new();
    // (addr, user) -> index of its success-after-failures finding, later logins, the last.
    let mut breach_at: HashMap<(IpAddr, Arc<str>), (usize, u64, Time)> = HashMap::new();
    let mut root_at: HashMap<IpAddr, (usize, u64)> = HashMap::new();
    let mut new_net_seen: HashSet<(Arc<str>, IpNet)> = HashSet::new();
    // Addresses that make an open session suspicious, with why.
    let mut suspects: HashMap<IpAddr, (Severity, String)> = HashMap::new();

    for ob in observations {
        match &ob.kind {
            ObsKind::Failure { count, .. } => {
                let f = failures.entry(ob.addr).or_default();
                f.count += u64::from(*count);
                f.first.get_or_insert(ob.time);
                f.last = Some(ob.time);
                if let Some(u) = &ob.user
                    && !f.users.contains(u)
                {
                    if f.users.len() < USERS_IN_DETAIL {
                        f.users.push(u.clone());
                    } else {
                        f.more_users += 1;
                    }
                }
            }
            ObsKind::Probe { .. } => {}
            ObsKind::Success { method, verdict } => {
                let user: Arc<str> = ob.user.clone().unwrap_or_else(|| Arc::from("?"));
                let how = method
                    .as_deref()
                    .map(|m| format!(" by {m}"))
                    .unwrap_or_default();
                if verdict.failures > 0 {
                    let finding = success_after_failures(ob, &user, &how, *verdict, &failures);
                    match breach_at.entry((ob.addr, user.clone())) {
                        Entry::Occupied(mut e) => {
                            let (i, n, last) = e.get_mut();
                            *n += 1;
                            *last = ob.time;
                            // A later breach outranks an earlier mistyped password.
                            if finding.severity < out[*i].finding.severity {
                                out[*i].finding = finding;
                            }
                        }
                        Entry::Vacant(e) => {
                            e.insert((out.len(), 0, ob.time));
                            out.push(Flagged {
                                kind: FindingKind::SuccessAfterFailures,
                                finding,
                            });
                        }
                    }
                    if verdict.breach {
                        suspects.insert(
                            ob.addr,
                            (
                                Severity::Critical,
                                format!(
                                    "got in after {}",
                                    plural(u64::from(verdict.failures), "failure")
                                ),
                            ),
                        );
                    }
                }
                if &*user == "root" {
                    match root_at.entry(ob.addr) {
                        Entry::Occupied(mut e) => {
                            let (i, n) = e.get_mut();
                            *n += 1;
                            out[*i].finding.detail =
                                format!("{n} root logins, the last{how} at {}", ob.time);
                        }
                        Entry::Vacant(e) => {
                            e.insert((out.len(), 1));
                            out.push(Flagged {
                                kind: FindingKind::RootLogin,
                                finding: Finding {
                                    severity: Severity::High,
                                    title: format!("root login from {}", ob.addr),
                                    addr: Some(ob.addr),
                                    user: Some("root".into()),
                                    failures: failures.get(&ob.addr).map_or(0, |f| f.count),
                                    time: Some(ob.time),
                                    detail: format!("root logged in{how} at {}", ob.time),
                                },
                            });
                        }
                    }
                }
                let net = network_of(ob.addr);
                let known = nets.entry(user.clone()).or_default();
                if !known.is_empty() && !known.contains(&net) && known.len() < NETS_PER_USER {
                    if new_net_seen.insert((user.clone(), net)) {
                        let before: Vec<String> =
                            known.iter().take(5).map(ToString::to_string).collect();
                        out.push(Flagged {
                            kind: FindingKind::NewNetwork,
                            finding: Finding {
                                severity: Severity::High,
                                title: format!("{user} logged in from a new network {net}"),
                                addr: Some(ob.addr),
                                user: Some(user.to_string()),
                                failures: failures.get(&ob.addr).map_or(0, |f| f.count),
                                time: Some(ob.time),
                                detail: format!(
                                    "first login of {user} from {}{how} at {}; earlier logins in \
                                     the period only from {}",
                                    ob.addr,
                                    ob.time,
                                    before.join(", ")
                                ),
                            },
                        });
                    }
                    suspects
                        .entry(ob.addr)
                        .or_insert((Severity::High, format!("new network for {user}")));
                }
                if !known.contains(&net) && known.len() < NETS_PER_USER {
                    known.push(net);
                }
            }
        }
    }
    for (i, n, last) in breach_at.values() {
        if *n > 0 {
            let _ = write!(
                out[*i].finding.detail,
                "; {n} more logins of this user from there, the last at {last}"
            );
        }
    }
    for (addr, f) in &failures {
        if f.count >= breach_after {
            let e = suspects.entry(*addr).or_insert((
                Severity::Critical,
                format!("failed {}", plural(f.count, "time")),
            ));
            if e.0 > Severity::Critical {
                *e = (
                    Severity::Critical,
                    format!("failed {}", plural(f.count, "time")),
                );
            }
        }
    }
    let mut flagged_sessions: HashSet<(IpAddr, &str)> = HashSet::new();
    for s in open {
        let Some((severity, why)) = suspects.get(&s.addr) else {
            continue;
        };
        if !flagged_sessions.insert((s.addr, s.user.as_str())) {
            continue;
        }
        out.push(Flagged {
            kind: FindingKind::OpenSessionFromSuspect,
            finding: Finding {
                severity: *severity,
                title: format!("session of {} still open from {}", s.user, s.addr),
                addr: Some(s.addr),
                user: Some(s.user.clone()),
                failures: failures.get(&s.addr).map_or(0, |f| f.count),
                time: s.since,
                detail: format!("{} ({why})", s.evidence),
            },
        });
    }
    out.sort_by(|a, b| {
        (
            a.finding.severity,
            a.kind,
            std::cmp::Reverse(a.finding.failures),
            a.finding.time,
        )
            .cmp(&(
                b.finding.severity,
                b.kind,
                std::cmp::Reverse(b.finding.failures),
                b.finding.time,
            ))
    });
    out
}

/// The "success after failures" finding of success `ob` (as `user`, `how` it logged in).
fn success_after_failures(
    ob: &Observation,
    user: &str,
    how: &str,
    verdict: SuccessVerdict,
    failures: &HashMap<IpAddr, Failures>,
) -> Finding {
    let n = u64::from(verdict.failures);
    let (first, last, users) = match failures.get(&ob.addr) {
        Some(f) => (f.first, f.last, users_text(f)),
        None => (None, None, "none named".to_string()),
    };
    Finding {
        severity: if verdict.breach {
            Severity::Critical
        } else {
            Severity::Low
        },
        title: format!("success after {}", plural(n, "failure")),
        addr: Some(ob.addr),
        user: Some(user.to_string()),
        failures: n,
        time: Some(ob.time),
        detail: format!(
            "login as {user}{how} at {}; {} from {} before it (failures in the period \
             between {} and {}; users tried: {users})",
            ob.time,
            plural(n, "failed attempt"),
            ob.addr,
            first.unwrap_or(ob.time),
            last.unwrap_or(ob.time),
        ),
    }
}

/// `1 failure`, `2 failures`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Whether any finding is critical or high: the exit code 1 case.
pub fn is_alarming(found: &[Flagged]) -> bool {
    found.iter().any(|f| f.finding.severity <= Severity::High)
}

fn users_text(f: &Failures) -> String {
    let mut s = f.users.iter().map(|u| &**u).collect::<Vec<_>>().join(", ");
    if f.users.is_empty() {
        s.push('-');
    }
    if f.more_users > 0 {
        let _ = write!(s, " and {} more", f.more_users);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn fail(t: i64, a: &str, user: &str) -> Observation {
        Observation {
            time: Time::from_secs(t),
            addr: addr(a),
            user: Some(user.into()),
            kind: ObsKind::Failure {
                count: 1,
                weight: Weight::ONE,
            },
        }
    }
    fn ok(t: i64, a: &str, user: &str) -> Observation {
        Observation {
            time: Time::from_secs(t),
            addr: addr(a),
            user: Some(user.into()),
            kind: ObsKind::Success {
                method: Some("password".into()),
                verdict: SuccessVerdict::default(),
            },
        }
    }
    /// `obs` with every success judged by the breach rule of a default jail whose
    /// `breach_after` is `k`, then analyzed.
    fn analyze_with(obs: &[Observation], open: &[OpenSession], k: u32) -> Vec<Flagged> {
        let mut config = JailConfig::new("sshd");
        config.breach_after = Some(k);
        let mut judged = obs.to_vec();
        rejudge(&config, &mut judged);
        analyze(&judged, open, k)
    }
    fn kinds(f: &[Flagged]) -> Vec<(FindingKind, Option<IpAddr>, Option<&str>)> {
        f.iter()
            .map(|x| (x.kind, x.finding.addr, x.finding.user.as_deref()))
            .collect()
    }

    #[test]
    fn success_after_failures_is_critical_with_the_count_before_it() {
        let mut obs = vec![
            fail(1, "203.0.113.5", "admin"),
            fail(2, "203.0.113.5", "bob"),
            Observation {
                kind: ObsKind::Failure {
                    count: 3,
                    weight: Weight::ONE,
                },
                ..fail(3, "203.0.113.5", "bob")
            },
            ok(10, "203.0.113.5", "bob"),
        ];
        // Failures after the success do not change the count, a repeat login is noted.
        obs.push(fail(11, "203.0.113.5", "bob"));
        obs.push(ok(12, "203.0.113.5", "bob"));
        let f = analyze_with(&obs, &[], 3);
        assert_eq!(
            kinds(&f),
            [(
                FindingKind::SuccessAfterFailures,
                Some(addr("203.0.113.5")),
                Some("bob")
            )]
        );
        let b = &f[0].finding;
        assert_eq!(b.severity, Severity::Critical);
        assert_eq!(b.title, "success after 5 failures");
        assert_eq!(b.failures, 5);
        assert_eq!(b.time, Some(Time::from_secs(10)));
        assert!(b.detail.contains("users tried: admin, bob"), "{}", b.detail);
        assert!(b.detail.contains("1 more logins"), "{}", b.detail);
        // Below the threshold (a mistyped password) it is only a low note.
        assert_eq!(
            analyze_with(&obs, &[], 6)[0].finding.severity,
            Severity::Low
        );
    }

    #[test]
    fn failures_from_another_address_or_after_the_success_do_not_count() {
        let obs = vec![
            fail(1, "203.0.113.5", "bob"),
            ok(2, "198.51.100.7", "bob"),
            ok(3, "198.51.100.7", "alice"),
            fail(4, "198.51.100.7", "alice"),
        ];
        let f = analyze_with(&obs, &[], 1);
        assert!(
            f.iter()
                .all(|x| x.kind != FindingKind::SuccessAfterFailures),
            "{f:?}"
        );
    }

    #[test]
    fn root_logins_one_finding_per_address() {
        let obs = vec![
            ok(1, "192.0.2.10", "root"),
            ok(5, "192.0.2.10", "root"),
            ok(6, "192.0.2.11", "root"),
            ok(7, "192.0.2.10", "alice"),
        ];
        let f = analyze_with(&obs, &[], 1);
        assert_eq!(
            kinds(&f),
            [
                (
                    FindingKind::RootLogin,
                    Some(addr("192.0.2.10")),
                    Some("root")
                ),
                (
                    FindingKind::RootLogin,
                    Some(addr("192.0.2.11")),
                    Some("root")
                ),
            ]
        );
        assert!(
            f[0].finding.detail.starts_with("2 root logins"),
            "{}",
            f[0].finding.detail
        );
        assert_eq!(f[0].finding.severity, Severity::High);
    }

    #[test]
    fn new_network_for_a_user_needs_an_earlier_login_elsewhere() {
        let obs = vec![
            ok(1, "192.0.2.10", "alice"),
            ok(2, "192.0.2.77", "alice"),    // same /24: not new
            ok(3, "2001:db8:1::5", "alice"), // new /64
            ok(4, "2001:db8:1::9", "alice"), // same /64 again: one finding
            ok(5, "2001:db8:2::1", "bob"),   // bob's first login: no baseline
        ];
        let f = analyze_with(&obs, &[], 1);
        assert_eq!(
            kinds(&f),
            [(
                FindingKind::NewNetwork,
                Some(addr("2001:db8:1::5")),
                Some("alice")
            )]
        );
        assert!(
            f[0].finding.title.contains("2001:db8:1::/64"),
            "{}",
            f[0].finding.title
        );
        assert!(
            f[0].finding.detail.contains("192.0.2.0/24"),
            "{}",
            f[0].finding.detail
        );
    }

    #[test]
    fn open_session_from_an_address_that_failed_or_is_new() {
        let obs = vec![
            ok(1, "192.0.2.10", "alice"),
            fail(2, "203.0.113.5", "root"),
            ok(3, "198.51.100.1", "alice"),
        ];
        let sess = |user: &str, a: &str| OpenSession {
            user: user.into(),
            addr: addr(a),
            since: Some(Time::from_secs(9)),
            evidence: "utmp pts/0".into(),
        };
        let open = [
            sess("alice", "192.0.2.10"),   // her usual address: fine
            sess("carol", "203.0.113.5"),  // from an attacker (login not in the logs)
            sess("carol", "203.0.113.5"),  // same session seen twice: one finding
            sess("alice", "198.51.100.1"), // from her new network
        ];
        let f = analyze_with(&obs, &open, 1);
        assert_eq!(
            kinds(&f),
            [
                (
                    FindingKind::OpenSessionFromSuspect,
                    Some(addr("203.0.113.5")),
                    Some("carol")
                ),
                (
                    FindingKind::OpenSessionFromSuspect,
                    Some(addr("198.51.100.1")),
                    Some("alice")
                ),
                (
                    FindingKind::NewNetwork,
                    Some(addr("198.51.100.1")),
                    Some("alice")
                ),
            ]
        );
        assert_eq!(f[0].finding.severity, Severity::Critical);
        assert_eq!(f[1].finding.severity, Severity::High);
        assert!(
            f[0].finding.detail.contains("(failed 1 time)"),
            "{}",
            f[0].finding.detail
        );
    }

    #[test]
    fn most_serious_first_and_nothing_on_a_quiet_history() {
        assert!(
            analyze_with(
                &[ok(1, "192.0.2.1", "alice"), fail(2, "203.0.113.9", "x")],
                &[],
                3
            )
            .is_empty()
        );
        let obs = vec![
            ok(1, "192.0.2.1", "root"),
            fail(2, "203.0.113.9", "root"),
            fail(3, "203.0.113.8", "root"),
            fail(4, "203.0.113.8", "root"),
            ok(5, "203.0.113.9", "root"),
            ok(6, "203.0.113.8", "root"),
        ];
        let f = analyze_with(&obs, &[], 1);
        let order: Vec<_> = f
            .iter()
            .map(|x| (x.kind, x.finding.addr.unwrap().to_string()))
            .collect();
        assert_eq!(
            order[0],
            (FindingKind::SuccessAfterFailures, "203.0.113.8".into())
        );
        assert_eq!(
            order[1],
            (FindingKind::SuccessAfterFailures, "203.0.113.9".into())
        );
        assert_eq!(order[2].0, FindingKind::RootLogin);
        assert_eq!(order.last().unwrap().0, FindingKind::NewNetwork);
    }

    #[test]
    fn a_mistyped_password_is_a_note_and_its_session_not_suspect() {
        let obs = vec![fail(1, "192.0.2.10", "alice"), ok(2, "192.0.2.10", "alice")];
        let open = [OpenSession {
            user: "alice".into(),
            addr: addr("192.0.2.10"),
            since: None,
            evidence: "sshd".into(),
        }];
        let f = analyze_with(&obs, &open, 3);
        assert_eq!(
            kinds(&f),
            [(
                FindingKind::SuccessAfterFailures,
                Some(addr("192.0.2.10")),
                Some("alice")
            )]
        );
        assert_eq!(f[0].finding.severity, Severity::Low);
        assert!(!is_alarming(&f));
        assert!(is_alarming(&analyze_with(&obs, &open, 1)));
    }

    #[test]
    fn networks() {
        assert_eq!(network_of(addr("192.0.2.77")).to_string(), "192.0.2.0/24");
        assert_eq!(
            network_of(addr("2001:db8:1:2:3::4")).to_string(),
            "2001:db8:1:2::/64"
        );
    }
}
