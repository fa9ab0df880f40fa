//! `portcullis investigate [ADDR]`: "what is going on, and did anyone get in?" in one report.
//!
//! The live host (connections to the SSH ports, sessions, wtmp/btmp) comes from
//! `portcullis-host`; the auth logs go through the same filter as `scan` ([`logs`]); the
//! rules that decide what is alarming are pure functions ([`findings`]); [`output`] prints the
//! report for a terminal, as JSON, or as HTML. Exit code 0 = nothing alarming, 1 = findings.

mod bans;
mod findings;
pub(crate) mod logs;
mod output;
mod period;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use portcullis_core::event::parse_addr;
use portcullis_core::jail::{JailConfig, SuccessVerdict};
use portcullis_core::{EventKind, Time, Weight};
use portcullis_host::time_serde;
use portcullis_host::{
    FailedLogin, HostPaths, Login, LoginEnd, RemoteConnections, Session, SshState, pid_alive,
};
use portcullis_report_html::{LoginRow, TimeBucket, UserAttempts};
use portcullis_sources::JournalLocation;
use serde::Serialize;

use crate::cli::InvestigateArgs;
use crate::config::load_offline;
use crate::filters::{resolve_filter, time_zone};
use crate::offline::OfflineJail;
use crate::tally::AddrTally;
use bans::{ActiveBan, BanView, PastBan};
use findings::{Flagged, ObsKind, Observation, OpenSession};
use logs::{AddrLine, LogInput, LogScan, LogSuccess, Query, SourceSummary};

/// A wtmp login and a log's "Accepted" line this close in time (same user and address) are
/// one login.
const SAME_LOGIN_SECS: i64 = 10;
/// Failures before a success that make it a breach when the jail disables its alert.
const DEFAULT_BREACH_AFTER: u32 = 3;
/// The most serious `audit` findings the report shows.
const AUDIT_FINDINGS: usize = 3;

/// Run `investigate`.
pub fn run(args: &InvestigateArgs) -> Result<ExitCode> {
    let config = load_offline(args.config.as_deref())?;
    let tz = time_zone(args.timezone.as_deref(), &config)?;
    let now = match &args.now {
        Some(t) => {
            period::parse_point(t, portcullis_sources::wall_clock(), &tz).context("--now")?
        }
        None => portcullis_sources::wall_clock(),
    };
    let since = args
        .since
        .as_deref()
        .map(|t| period::parse_point(t, now, &tz).context("--since"))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| period::parse_point(t, now, &tz).context("--until"))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        bail!("--since {s} is after --until {u}");
    }
    let target = match &args.addr {
        Some(a) => Some(parse_addr(a).ok_or_else(|| anyhow!("not an IP address: {a:?}"))?),
        None => None,
    };
    let mut warnings = Vec::new();

    let paths = host_paths(args);
    let mut snap = portcullis_host::snapshot(&paths, Some(&args.ports));
    warnings.append(&mut snap.warnings);
    let sessions_from = if paths.utmp.exists() {
        "utmp"
    } else {
        snap.sessions = open_wtmp_sessions(&snap.logins, &paths.proc_root);
        "wtmp"
    };

    let input = log_input(args, &mut warnings)?;
    let spec = config
        .jail("sshd")
        .or_else(|| config.jails.first())
        .ok_or_else(|| {
            anyhow!("the configuration has no jail whose filter could read sshd logs")
        })?;
    let mut runner = OfflineJail::new(spec, &resolve_filter(spec, &config.daemon.filter_dir, &tz)?);
    let breach_after = spec.config.breach_after.unwrap_or(DEFAULT_BREACH_AFTER);
    let query = Query {
        since,
        until,
        user: args.user.clone(),
        target,
    };
    let mut site =
        crate::campaigns::OfflineSite::new(&config.campaign, std::slice::from_ref(&spec.name));
    let scan = logs::read_logs(&input, &mut runner, &query, tz.clone(), &mut site)?;
    // Campaigns that touch the period (all of them without --since/--until).
    let campaigns: Vec<_> = site
        .finish()
        .into_iter()
        .filter(|c| since.is_none_or(|s| c.end >= s) && until.is_none_or(|u| c.start <= u))
        .filter(|c| target.is_none_or(|t| c.participants.contains(&t)))
        .collect();
    let bad_time = runner.bad_time().total();
    if bad_time > 0 {
        warnings.push(format!(
            "{bad_time} log events had an unbelievable time (after their file's last write, a \
             lone jump or far in the past); they were counted but did not move the clock"
        ));
    }
    for s in &scan.sources {
        if let Some(e) = &s.error {
            warnings.push(format!("{}: {e}", s.name));
        }
    }
    if !scan.sources.is_empty() && scan.sources.iter().all(|s| s.error.is_some()) {
        bail!("no log could be read: {}", warnings.join("; "));
    }

    let ban_view = bans::look_up(&args.socket, &args.state_db, now);
    // The exposure of the whole host, not of one address: only in the full report.
    let audit = target.is_none().then(|| {
        let sources = crate::audit::Sources::for_investigate(
            args.sshd_config.clone(),
            config.clone(),
            args.socket.clone(),
            crate::audit::last_key_logins(&scan.successes),
            paths.wtmp.clone(),
            now,
        );
        crate::audit::summary(&sources, AUDIT_FINDINGS)
    });
    // GeoIP: silent and free when no database is configured or found; problems with one
    // are warnings of the report.
    let geo = portcullis_geoip::GeoIp::open(&crate::geo::selection(&config.geoip, &args.geoip));
    let mut report = build(
        Build {
            args,
            now,
            since,
            until,
            target,
            hostname: hostname(&paths.proc_root),
            ports: snap.ports,
            connections: snap.connections,
            sessions: snap.sessions,
            sessions_from,
            wtmp: snap.logins,
            btmp: snap.failed_logins,
            scan,
            jail: spec.config.clone(),
            breach_after,
            bans: ban_view,
            warnings,
            geo: &geo,
        },
        &tz,
    );
    report.audit = audit;
    report.warnings.extend(geo.take_warnings());
    report.campaigns = campaigns;
    if let Some(path) = &args.html {
        std::fs::write(
            path,
            portcullis_report_html::render_html(&output::html_model(&report)),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    output::print(&report, args.json, &tz)?;
    Ok(if !findings::is_alarming(&report.findings) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn host_paths(args: &InvestigateArgs) -> HostPaths {
    let mut p = HostPaths::default();
    if let Some(x) = &args.proc {
        p.proc_root.clone_from(x);
    }
    if let Some(x) = &args.utmp {
        p.utmp.clone_from(x);
    }
    if !args.wtmp.is_empty() {
        p.wtmp.clone_from(&args.wtmp);
    }
    if !args.btmp.is_empty() {
        p.btmp.clone_from(&args.btmp);
    }
    if let Some(x) = &args.sshd_config {
        p.sshd_config.clone_from(x);
    }
    p
}

fn log_input(args: &InvestigateArgs, warnings: &mut Vec<String>) -> Result<LogInput> {
    if !args.journal_file.is_empty() {
        return Ok(LogInput::Journal(JournalLocation::Files(
            args.journal_file.clone(),
        )));
    }
    if args.journal {
        return Ok(LogInput::Journal(JournalLocation::System));
    }
    if !args.logs.is_empty() {
        return Ok(LogInput::Files(args.logs.clone()));
    }
    let files = logs::default_log_files(Path::new("/var/log"));
    if !files.is_empty() {
        return Ok(LogInput::Files(files));
    }
    let has_journalctl = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("journalctl").is_file()));
    if has_journalctl {
        warnings.push("no /var/log/auth.log* or /var/log/secure*: read the journal".into());
        return Ok(LogInput::Journal(JournalLocation::System));
    }
    bail!("no /var/log/auth.log* or /var/log/secure* and no journalctl: give --logs FILE…")
}

/// Sessions from wtmp logins that have no logout and whose process still runs, for hosts
/// without a utmp file.
fn open_wtmp_sessions(logins: &[Login], proc_root: &Path) -> Vec<Session> {
    logins
        .iter()
        .filter(|l| l.end == LoginEnd::Open && pid_alive(proc_root, l.pid))
        .map(|l| Session {
            user: l.user.clone(),
            line: l.line.clone(),
            host: l.host.clone(),
            addr: l.addr,
            since: l.start,
            pid: l.pid,
        })
        .collect()
}

fn hostname(proc_root: &Path) -> String {
    std::fs::read_to_string(proc_root.join("sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The whole report; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When it was made.
    #[serde(with = "time_serde")]
    pub generated: Time,
    /// Host name.
    pub hostname: String,
    /// `--since`.
    #[serde(with = "time_serde::option")]
    pub since: Option<Time>,
    /// `--until`.
    #[serde(with = "time_serde::option")]
    pub until: Option<Time>,
    /// The logs read.
    pub sources: Vec<SourceSummary>,
    /// Counts over the period.
    pub totals: Totals,
    /// Findings, most serious first (about the address only, with ADDR).
    pub findings: Vec<Flagged>,
    /// The live host.
    pub now: Now,
    /// Successful and failed logins.
    pub logins: Logins,
    /// Top addresses by failed attempts.
    pub attackers: Vec<Attacker>,
    /// Where the attacking addresses come from (all of them, not only the top ones), when
    /// a GeoIP database is in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<Origins>,
    /// Most-tried user names.
    pub top_users: Vec<UserAttempts>,
    /// Where ban information came from (`daemon`, `store`, `unknown`) and notes.
    pub bans_from: &'static str,
    /// Everything about the address, with ADDR.
    pub address: Option<AddressReport>,
    /// What could not be read.
    pub warnings: Vec<String>,
    /// Attempts over time, for the HTML chart.
    #[serde(skip)]
    pub buckets: (u64, Vec<TimeBucket>),
    /// The most serious findings of `portcullis audit` (is the door open?), without ADDR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::audit::AuditSummary>,
    /// Site-wide campaigns and user-targeted attacks the logs show (with ADDR: those it
    /// took part in), docs/campaigns.md.
    #[serde(serialize_with = "campaigns_json")]
    pub campaigns: Vec<portcullis_core::campaign::CampaignAlert>,
}

fn campaigns_json<S: serde::Serializer>(
    c: &[portcullis_core::campaign::CampaignAlert],
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::campaigns::json(c), s)
}

/// Counts over the period.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Totals {
    /// Log lines read.
    pub lines: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Pre-auth probes.
    pub probes: u64,
    /// Successful logins.
    pub successes: u64,
    /// Distinct addresses with failures or probes.
    pub attacking_addresses: usize,
}

/// The live host.
#[derive(Debug, Serialize)]
pub struct Now {
    /// SSH ports looked at.
    pub ports: Vec<u16>,
    /// TCP connections to them by remote address.
    pub connections: Vec<RemoteConnections>,
    /// Who is logged in.
    pub sessions: Vec<Session>,
    /// `utmp`, or `wtmp` (open logins whose process runs) when there is no utmp.
    pub sessions_from: &'static str,
}

/// Logins.
#[derive(Debug, Serialize)]
pub struct Logins {
    /// Successful logins (logs and wtmp, one row per login), newest first, up to `--limit`.
    pub successful: Vec<LoginRow>,
    /// All successful logins in the period.
    pub successful_total: usize,
    /// Failed logins from btmp, newest first, up to `--limit`.
    pub failed: Vec<FailedLogin>,
    /// All btmp failures in the period.
    pub failed_total: usize,
}

/// One attacking address.
#[derive(Clone, Debug, Serialize)]
pub struct Attacker {
    /// The address.
    pub addr: IpAddr,
    /// Failed attempts.
    pub attempts: u64,
    /// Probes.
    pub probes: u64,
    /// Successful logins from it.
    pub successes: u64,
    /// First event.
    #[serde(with = "time_serde::option")]
    pub first_seen: Option<Time>,
    /// Last event.
    #[serde(with = "time_serde::option")]
    pub last_seen: Option<Time>,
    /// User names tried (first ones).
    pub users: Vec<String>,
    /// Further distinct names tried.
    pub more_users: usize,
    /// Whether portcullis bans it now (`null`: unknown).
    pub banned: Option<bool>,
    /// Country and autonomous system, when a GeoIP database knows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<portcullis_core::origin::Origin>,
}

/// Attacking addresses by country and by autonomous system.
#[derive(Clone, Debug, Serialize)]
pub struct Origins {
    /// The databases asked, `PATH (database_type)`, in order.
    pub databases: Vec<String>,
    /// Addresses (and their failed attempts) per country, most first.
    pub by_country: Vec<crate::geo::OriginCount>,
    /// Per autonomous system.
    pub by_asn: Vec<crate::geo::OriginCount>,
}

/// `investigate ADDR`.
#[derive(Debug, Serialize)]
pub struct AddressReport {
    /// The address.
    pub addr: IpAddr,
    /// Its counts (zero when the logs never mention it).
    pub summary: Attacker,
    /// Failed attempts per user name, most first.
    pub attempts_per_user: Vec<UserAttempts>,
    /// Whether banned now (`null`: unknown).
    pub banned: Option<bool>,
    /// Bans covering it now.
    pub bans_active: Vec<ActiveBan>,
    /// Past bans from the store.
    pub ban_history: Vec<PastBan>,
    /// Its TCP connections now.
    pub connections: Option<RemoteConnections>,
    /// Its sessions now.
    pub sessions: Vec<Session>,
    /// Its successful logins.
    pub logins: Vec<LoginRow>,
    /// Every log line about it, by time.
    pub lines: Vec<AddrLine>,
    /// Lines beyond the kept maximum.
    pub lines_dropped: u64,
}

struct Build<'a> {
    args: &'a InvestigateArgs,
    now: Time,
    since: Option<Time>,
    until: Option<Time>,
    target: Option<IpAddr>,
    hostname: String,
    ports: Vec<u16>,
    connections: Vec<RemoteConnections>,
    sessions: Vec<Session>,
    sessions_from: &'static str,
    wtmp: Vec<Login>,
    btmp: Vec<FailedLogin>,
    scan: LogScan,
    /// The jail whose filter read the logs: its breach rule judges the evidence.
    jail: JailConfig,
    breach_after: u32,
    bans: BanView,
    warnings: Vec<String>,
    geo: &'a portcullis_geoip::GeoIp,
}

#[derive(Default)]
struct Agg {
    tally: AddrTally,
    /// Attempts per user name, for the investigated address only.
    per_user: Option<HashMap<Arc<str>, u64>>,
}

fn build(b: Build<'_>, tz: &jiff::tz::TimeZone) -> Report {
    let args = b.args;
    let in_period = |t: Time| b.since.is_none_or(|s| t >= s) && b.until.is_none_or(|u| t <= u);
    let user_ok = |u: &str| args.user.as_deref().is_none_or(|w| w == u);
    let limit = |n: usize| {
        if args.limit == 0 {
            n
        } else {
            args.limit.min(n)
        }
    };

    let LogScan {
        sources,
        lines,
        mut observations,
        successes,
        addr_lines,
        addr_lines_dropped,
    } = b.scan;
    let log_failures = observations
        .iter()
        .any(|o| matches!(o.kind, ObsKind::Failure { .. }));

    // Login rows: every log success, then wtmp logins merged into the row of the same login.
    let mut rows: Vec<LoginRow> = successes.iter().map(log_row).collect();
    let wtmp: Vec<&Login> = b
        .wtmp
        .iter()
        .filter(|l| in_period(l.start) && user_ok(&l.user))
        .collect();
    let mut extra: Vec<Observation> = Vec::new();
    for l in wtmp {
        match same_login(&successes, l) {
            Some(i) => {
                rows[i].source.push_str("+wtmp");
                rows[i].note = end_note(&l.end, tz);
            }
            None => {
                rows.push(LoginRow {
                    time: l.start,
                    user: l.user.clone(),
                    addr: l.addr,
                    method: None,
                    source: "wtmp".into(),
                    note: end_note(&l.end, tz),
                });
                if let Some(addr) = l.addr {
                    extra.push(Observation {
                        time: l.start,
                        addr,
                        user: Some(Arc::from(l.user.as_str())),
                        kind: ObsKind::Success {
                            method: None,
                            verdict: SuccessVerdict::default(),
                        },
                    });
                }
            }
        }
    }
    let btmp: Vec<&FailedLogin> = b
        .btmp
        .iter()
        .filter(|f| in_period(f.time) && user_ok(&f.user))
        .collect();
    if !log_failures {
        // No failure in the logs (none read, or rotated away): btmp is the best evidence.
        for f in &btmp {
            if let Some(addr) = f.addr {
                extra.push(Observation {
                    time: f.time,
                    addr,
                    user: Some(Arc::from(f.user.as_str())),
                    kind: ObsKind::Failure {
                        count: 1,
                        weight: Weight::ONE,
                    },
                });
            }
        }
    }
    if !extra.is_empty() {
        observations.extend(extra);
        observations.sort_by_key(|o| o.time);
        // wtmp logins and btmp failures did not go through the filter and its engine: judge
        // every success again with the same rule over the whole evidence.
        findings::rejudge(&b.jail, &mut observations);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.time));

    // Per address, per user, over time.
    let mut aggs: HashMap<IpAddr, Agg> = HashMap::new();
    let mut per_user: HashMap<Arc<str>, u64> = HashMap::new();
    let mut minutes: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut totals = Totals {
        lines,
        ..Totals::default()
    };
    let hasher = std::collections::hash_map::RandomState::new();
    for o in &observations {
        let a = aggs.entry(o.addr).or_default();
        let minute = o.time.as_secs().div_euclid(60);
        match &o.kind {
            ObsKind::Failure { count, .. } => {
                let n = u64::from(*count);
                a.tally.record(EventKind::Attempt, *count, o.time);
                totals.failures += n;
                minutes.entry(minute).or_default().0 += n;
                if let Some(u) = &o.user {
                    *per_user.entry(u.clone()).or_default() += n;
                    if Some(o.addr) == b.target {
                        *a.per_user
                            .get_or_insert_with(HashMap::new)
                            .entry(u.clone())
                            .or_default() += n;
                    }
                    a.tally.tried_user(u, &hasher);
                }
            }
            ObsKind::Probe { count, .. } => {
                a.tally.record(EventKind::Probe, *count, o.time);
                totals.probes += u64::from(*count);
            }
            ObsKind::Success { .. } => {
                a.tally.record(EventKind::Success, 1, o.time);
                totals.successes += 1;
                minutes.entry(minute).or_default().1 += 1;
            }
        }
    }
    totals.attacking_addresses = aggs
        .values()
        .filter(|a| a.tally.attempts + a.tally.probes > 0)
        .count();

    let attacker = |addr: IpAddr, a: &Agg| Attacker {
        addr,
        attempts: a.tally.attempts,
        probes: a.tally.probes,
        successes: a.tally.successes,
        first_seen: a.tally.first_seen,
        last_seen: a.tally.last_seen,
        users: a.tally.users().iter().map(|u| u.to_string()).collect(),
        more_users: a.tally.more_users(),
        banned: b.bans.banned(addr),
        origin: b.geo.lookup(addr),
    };
    let mut ranked: Vec<(&IpAddr, &Agg)> =
        aggs.iter().filter(|(_, a)| a.tally.attempts > 0).collect();
    ranked.sort_by(|x, y| {
        (y.1.tally.attempts, y.1.tally.probes, x.0).cmp(&(
            x.1.tally.attempts,
            x.1.tally.probes,
            y.0,
        ))
    });
    let attackers: Vec<Attacker> = ranked
        .iter()
        .take(limit(ranked.len()))
        .map(|(addr, a)| attacker(**addr, a))
        .collect();
    let top_users = top_counts(per_user, limit(usize::MAX));
    let origins = (!b.geo.is_empty()).then(|| {
        let found: Vec<_> = ranked
            .iter()
            .map(|(addr, a)| (b.geo.lookup(**addr), a.tally.attempts))
            .collect();
        let (by_country, by_asn) =
            crate::geo::tally(found.iter().map(|(o, n)| (o.as_ref(), *n)), 15);
        Origins {
            databases: b
                .geo
                .paths()
                .into_iter()
                .map(|(p, kind)| format!("{} ({kind})", p.display()))
                .collect(),
            by_country,
            by_asn,
        }
    });

    let mut open: Vec<OpenSession> = b
        .sessions
        .iter()
        .filter_map(|s| {
            Some(OpenSession {
                user: s.user.clone(),
                addr: s.addr?,
                since: Some(s.since),
                evidence: format!("{} session on {} (pid {})", b.sessions_from, s.line, s.pid),
            })
        })
        .collect();
    for g in &b.connections {
        for c in &g.connections {
            if let SshState::Authenticated { user, tty } = &c.ssh {
                open.push(OpenSession {
                    user: user.clone(),
                    addr: g.addr,
                    since: None,
                    evidence: format!(
                        "authenticated SSH connection ({}, sshd pids {:?})",
                        tty.as_deref().unwrap_or("no tty"),
                        c.pids
                    ),
                });
            }
        }
    }
    let mut found = findings::analyze(&observations, &open, b.breach_after);
    if let Some(t) = b.target {
        found.retain(|f| f.finding.addr == Some(t));
    }

    let address = b.target.map(|t| {
        let empty = Agg::default();
        let a = aggs.get(&t).unwrap_or(&empty);
        AddressReport {
            addr: t,
            summary: attacker(t, a),
            attempts_per_user: top_counts(a.per_user.clone().unwrap_or_default(), usize::MAX),
            banned: b.bans.banned(t),
            bans_active: b.bans.covering(t),
            ban_history: bans::history(&args.state_db, t).unwrap_or_default(),
            connections: b.connections.iter().find(|g| g.addr == t).cloned(),
            sessions: b
                .sessions
                .iter()
                .filter(|s| s.addr == Some(t))
                .cloned()
                .collect(),
            logins: rows.iter().filter(|r| r.addr == Some(t)).cloned().collect(),
            lines: addr_lines,
            lines_dropped: addr_lines_dropped,
        }
    });

    let mut warnings = b.warnings;
    if b.bans.from == "unknown" {
        warnings.push(format!("ban state unknown ({})", b.bans.notes.join("; ")));
    }
    let successful_total = rows.len();
    rows.truncate(limit(rows.len()));
    let failed_total = btmp.len();
    let failed: Vec<FailedLogin> = btmp
        .iter()
        .rev()
        .take(limit(btmp.len()))
        .map(|f| (*f).clone())
        .collect();
    Report {
        generated: b.now,
        hostname: b.hostname,
        since: b.since,
        until: b.until,
        sources,
        totals,
        findings: found,
        now: Now {
            ports: b.ports,
            connections: b.connections,
            sessions: b.sessions,
            sessions_from: b.sessions_from,
        },
        logins: Logins {
            successful: rows,
            successful_total,
            failed,
            failed_total,
        },
        attackers,
        origins,
        top_users,
        bans_from: b.bans.from,
        address,
        warnings,
        campaigns: Vec::new(),
        buckets: buckets(&minutes, b.since, b.until),
        audit: None,
    }
}

fn log_row(s: &LogSuccess) -> LoginRow {
    LoginRow {
        time: s.time,
        user: s.user.as_deref().unwrap_or("?").to_string(),
        addr: Some(s.addr),
        method: s.method.as_deref().map(str::to_string),
        source: Path::new(&*s.source).file_name().map_or_else(
            || s.source.to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        note: String::new(),
    }
}

/// The log success that is the same login as wtmp's `l`, if any.
fn same_login(successes: &[LogSuccess], l: &Login) -> Option<usize> {
    let lo = l
        .start
        .saturating_sub(std::time::Duration::from_secs(SAME_LOGIN_SECS as u64));
    let start = successes.partition_point(|s| s.time < lo);
    successes[start..]
        .iter()
        .take_while(|s| s.time.as_secs() <= l.start.as_secs() + SAME_LOGIN_SECS)
        .position(|s| Some(s.addr) == l.addr && s.user.as_deref() == Some(l.user.as_str()))
        .map(|i| start + i)
}

fn end_note(end: &LoginEnd, tz: &jiff::tz::TimeZone) -> String {
    match end {
        LoginEnd::Open => "still logged in".into(),
        LoginEnd::Logout(t) => format!("logout {}", t.short_in(tz)),
        LoginEnd::Crash(t) => format!("crash {}", t.short_in(tz)),
        LoginEnd::Shutdown(t) => format!("down {}", t.short_in(tz)),
        LoginEnd::Gone(t) => format!("gone - no logout {}", t.short_in(tz)),
    }
}

fn top_counts(counts: HashMap<Arc<str>, u64>, n: usize) -> Vec<UserAttempts> {
    let mut v: Vec<(Arc<str>, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .take(n)
        .map(|(user, attempts)| UserAttempts {
            user: user.to_string(),
            attempts,
        })
        .collect()
}

/// Bucket widths the time chart may use, in seconds.
const BUCKET_WIDTHS: &[u64] = &[60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400];
/// At most this many buckets.
const MAX_BUCKETS: u64 = 120;

/// Per-minute counts into consecutive buckets covering the period (or the data).
fn buckets(
    minutes: &BTreeMap<i64, (u64, u64)>,
    since: Option<Time>,
    until: Option<Time>,
) -> (u64, Vec<TimeBucket>) {
    let first = since
        .map(|t| t.as_secs().div_euclid(60))
        .or_else(|| minutes.keys().next().copied());
    let last = until
        .map(|t| t.as_secs().div_euclid(60))
        .or_else(|| minutes.keys().next_back().copied());
    let (Some(first), Some(last)) = (first, last) else {
        return (3600, Vec::new());
    };
    let span = u64::try_from(last.saturating_sub(first)).unwrap_or(0) * 60 + 60;
    let width = BUCKET_WIDTHS
        .iter()
        .copied()
        .find(|w| span.div_ceil(*w) <= MAX_BUCKETS)
        .unwrap_or_else(|| span.div_ceil(MAX_BUCKETS).max(1));
    let w = i64::try_from(width).unwrap_or(i64::MAX);
    let start = (first * 60).div_euclid(w) * w;
    let n = usize::try_from(((last * 60).div_euclid(w) * w - start) / w + 1).unwrap_or(1);
    let mut out: Vec<TimeBucket> = (0..n)
        .map(|i| TimeBucket {
            start: Time::from_secs(start + i64::try_from(i).unwrap_or(0) * w),
            failures: 0,
            successes: 0,
        })
        .collect();
    for (m, (f, s)) in minutes.range(first..=last) {
        let i = usize::try_from((m * 60 - start) / w).unwrap_or(0);
        if let Some(b) = out.get_mut(i) {
            b.failures += f;
            b.successes += s;
        }
    }
    (width, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_span_with_at_most_120() {
        let mut m = BTreeMap::new();
        m.insert(100, (3, 0));
        m.insert(160, (1, 1));
        let (w, b) = buckets(&m, None, None);
        assert_eq!(w, 60);
        assert_eq!(b.len(), 61);
        assert_eq!((b[0].failures, b[60].failures, b[60].successes), (3, 1, 1));
        let (w, b) = buckets(
            &m,
            Some(Time::from_secs(0)),
            Some(Time::from_secs(7 * 86_400)),
        );
        assert_eq!(w, 3 * 3600);
        assert!(b.len() <= 120);
        assert_eq!(b.iter().map(|x| x.failures).sum::<u64>(), 4);
        assert_eq!(buckets(&BTreeMap::new(), None, None).1.len(), 0);
    }
}
