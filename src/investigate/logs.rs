//! Reading the auth logs (files, rotated and gzipped, or the journal) through the same filter
//! as `scan`, into time-ordered [`Observation`]s and, for `investigate ADDR`, the lines about
//! one address.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_core::date::DateParser;
use portcullis_core::{Event, EventKind, Time};
use portcullis_sources::{
    JournalLocation, JournalOptions, JournalSource, JournalStart, LineSource, ReadStatus,
    ReplayReader, SourceId, file_reference_time, parse_journal_matches, wall_clock,
};
use serde::Serialize;

use super::findings::{ObsKind, Observation};
use crate::logfiles::rotation_order;
use crate::offline::OfflineJail;

/// Lines about the investigated address kept at most; later ones are only counted.
pub const MAX_ADDR_LINES: usize = 50_000;
/// Distinct user names shared (interned) at most; further names get their own allocation.
const MAX_INTERNED: usize = 100_000;

/// Where the log lines come from.
#[derive(Clone, Debug)]
pub enum LogInput {
    /// These files (any order; rotated sets are read oldest first).
    Files(Vec<PathBuf>),
    /// The systemd journal's sshd entries.
    Journal(JournalLocation),
}

/// Which events are kept.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Events before this are dropped.
    pub since: Option<Time>,
    /// Events after this are dropped.
    pub until: Option<Time>,
    /// Only events naming this user.
    pub user: Option<String>,
    /// Collect the lines about this address.
    pub target: Option<IpAddr>,
}

impl Query {
    fn in_period(&self, t: Time) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// One source read.
#[derive(Clone, Debug, Serialize)]
pub struct SourceSummary {
    /// File path or `journal`.
    pub name: String,
    /// Lines read.
    pub lines: u64,
    /// Why it could not be read (fully), if so.
    pub error: Option<String>,
}

/// A successful login as the logs tell it.
#[derive(Clone, Debug)]
pub struct LogSuccess {
    /// When.
    pub time: Time,
    /// Who (attacker-influenced text).
    pub user: Option<Arc<str>>,
    /// From where.
    pub addr: IpAddr,
    /// How.
    pub method: Option<Arc<str>>,
    /// Which source said so.
    pub source: Arc<str>,
}

/// A raw line about the investigated address.
#[derive(Clone, Debug, Serialize)]
pub struct AddrLine {
    /// Its time (parsed, or the read time).
    #[serde(with = "portcullis_host::time_serde")]
    pub time: Time,
    /// File path or `journal`.
    #[serde(serialize_with = "str_of")]
    pub source: Arc<str>,
    /// The line as logged (invalid UTF-8 replaced); attacker-influenced.
    pub line: String,
}

fn str_of<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// What the logs said over the period.
#[derive(Debug, Default)]
pub struct LogScan {
    /// Each source read.
    pub sources: Vec<SourceSummary>,
    /// Lines read in all.
    pub lines: u64,
    /// Failures, probes and successes in the period, by time.
    pub observations: Vec<Observation>,
    /// Successes with their method and source, by time.
    pub successes: Vec<LogSuccess>,
    /// Lines about the target, by time (at most [`MAX_ADDR_LINES`]).
    pub addr_lines: Vec<AddrLine>,
    /// Lines about the target beyond [`MAX_ADDR_LINES`].
    pub addr_lines_dropped: u64,
}

/// Reads lines into a [`LogScan`].
struct Reader<'a> {
    runner: &'a mut OfflineJail,
    query: &'a Query,
    dates: DateParser,
    addr_text: Option<AddrText>,
    names: HashSet<Arc<str>>,
    events: Vec<Event>,
    scan: LogScan,
    /// Site-wide detection, fed every event the engine takes (not only the period's).
    site: &'a mut crate::campaigns::OfflineSite,
}

/// One shared copy of `s` (at most [`MAX_INTERNED`] are kept).
fn intern(names: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = names.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    if names.len() < MAX_INTERNED {
        names.insert(a.clone());
    }
    a
}

/// Record one event the engine took (with its breach verdict, for a success) if the query
/// selects it.
fn observe(
    query: &Query,
    names: &mut HashSet<Arc<str>>,
    scan: &mut LogScan,
    source: &Arc<str>,
    ev: &Event,
    verdict: Option<portcullis_core::jail::SuccessVerdict>,
) {
    if !query.in_period(ev.time) {
        return;
    }
    if let Some(u) = &query.user
        && ev.user.as_deref() != Some(u.as_str())
    {
        return;
    }
    let kind = match ev.kind {
        EventKind::Attempt if ev.count > 0 => ObsKind::Failure {
            count: ev.count,
            weight: ev.weight,
        },
        EventKind::Probe if ev.count > 0 => ObsKind::Probe {
            count: ev.count,
            weight: ev.weight,
        },
        EventKind::Success => ObsKind::Success {
            method: ev.method.as_deref().map(|m| intern(names, m)),
            verdict: verdict.unwrap_or_default(),
        },
        _ => return,
    };
    let user = ev.user.as_deref().map(|u| intern(names, u));
    if let ObsKind::Success { method, .. } = &kind {
        scan.successes.push(LogSuccess {
            time: ev.time,
            user: user.clone(),
            addr: ev.addr,
            method: method.clone(),
            source: source.clone(),
        });
    }
    scan.observations.push(Observation {
        time: ev.time,
        addr: ev.addr,
        user,
        kind,
    });
}

impl Reader<'_> {
    /// Take the events the matcher appended for one line. Every event goes to the jail's
    /// engine, as `scan` gives it (the period and user filters only select what is reported),
    /// so a success is judged by the one breach rule. The engine may take an event one event
    /// late (the log clock holds a time jump until the next event confirms it); each is
    /// observed when the engine took it.
    fn take_events(&mut self, source: &Arc<str>) {
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            let (query, names, scan) = (self.query, &mut self.names, &mut self.scan);
            let site = &mut *self.site;
            self.runner.handle_event(ev, |e, verdict| {
                site.event(0, e);
                observe(query, names, scan, source, e, verdict)
            });
            // Its decisions are not needed: the verdicts are the breach alerts.
            while self.runner.poll_decision().is_some() {}
        }
        self.events = events;
        self.events.clear();
    }

    /// The end of the input: the event the log clock still holds, if any.
    fn finish(&mut self, source: &Arc<str>) {
        self.events.clear();
        self.runner.finish_matching(&mut self.events);
        if !self.events.is_empty() {
            self.take_events(source);
        }
        let (query, names, scan) = (self.query, &mut self.names, &mut self.scan);
        let site = &mut *self.site;
        self.runner.finish(|e, verdict| {
            site.event(0, e);
            observe(query, names, scan, source, e, verdict)
        });
        while self.runner.poll_decision().is_some() {}
    }

    /// Keep `line` if it is about the target. `event_time` is the time of an event of the
    /// line for the target, if any.
    fn keep_if_about(
        &mut self,
        line: &[u8],
        reference: Time,
        source: &Arc<str>,
        event_time: Option<Time>,
    ) {
        let Some(text) = &self.addr_text else {
            return;
        };
        let time = match event_time {
            Some(t) => t,
            None if text.is_in(line) => self
                .dates
                .parse_prefix(line, reference)
                .map_or(reference, |(t, _)| t),
            None => return,
        };
        if !self.query.in_period(time) {
            return;
        }
        if self.scan.addr_lines.len() >= MAX_ADDR_LINES {
            self.scan.addr_lines_dropped += 1;
            return;
        }
        self.scan.addr_lines.push(AddrLine {
            time,
            source: source.clone(),
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }

    fn target_event_time(&self) -> Option<Time> {
        let t = self.query.target?;
        self.events.iter().find(|e| e.addr == t).map(|e| e.time)
    }

    fn file(&mut self, path: &Path) {
        let source: Arc<str> = Arc::from(path.display().to_string());
        let reference = file_reference_time(path);
        self.runner.begin_input(reference);
        let mut lines = 0u64;
        let result = ReplayReader::open(SourceId(0), path).map_err(anyhow::Error::from);
        let result = result.and_then(|mut reader| {
            Ok(reader.for_each_line(|line| {
                lines += 1;
                self.line(line, reference, &source);
            })?)
        });
        self.scan.lines += lines;
        self.scan.sources.push(SourceSummary {
            name: source.to_string(),
            lines,
            error: result.err().map(|e| format!("{e:#}")),
        });
    }

    fn line(&mut self, line: &[u8], reference: Time, source: &Arc<str>) {
        self.events.clear();
        self.runner.feed_line(line, reference, &mut self.events);
        if self.addr_text.is_some() {
            let t = self.target_event_time();
            self.keep_if_about(line, reference, source, t);
        }
        if !self.events.is_empty() {
            self.take_events(source);
        }
    }

    fn journal(&mut self, location: JournalLocation) -> Result<()> {
        let source: Arc<str> = Arc::from("journal");
        let matches = parse_journal_matches(&portcullis_config::SSHD_JOURNAL_MATCHES.join(" "))
            .context("journal matches")?;
        let options = JournalOptions {
            location,
            matches,
            follow: false,
            start: JournalStart::Beginning,
            ..JournalOptions::default()
        };
        let mut journal =
            JournalSource::spawn(SourceId(0), options).context("cannot read the journal")?;
        // No entry is newer than now.
        self.runner.begin_input(wall_clock());
        let mut batch = Vec::new();
        let mut lines = 0u64;
        loop {
            batch.clear();
            let status = journal
                .read_batch(&mut batch, 4096, Duration::from_secs(30))
                .context("reading the journal")?;
            for l in &batch {
                lines += 1;
                let Some(fields) = &l.journal else {
                    continue;
                };
                let record = fields.record(&l.bytes, l.read_at);
                let time = record.time;
                self.events.clear();
                self.runner.feed_source_line(l, &mut self.events);
                if self.addr_text.is_some() {
                    let t = self.target_event_time();
                    let shown = record.syslog_line();
                    // Journal lines carry no date prefix: their time is the entry's.
                    self.keep_if_about(&shown, time, &source, t);
                }
                if !self.events.is_empty() {
                    self.take_events(&source);
                }
            }
            if status != ReadStatus::Live {
                break;
            }
        }
        self.finish(&source);
        self.scan.lines += lines;
        let untrusted = journal.stats().untrusted;
        self.scan.sources.push(SourceSummary {
            name: source.to_string(),
            lines,
            // Not an error of the journal, but the admin must see it: someone wrote
            // entries that claim to be sshd's.
            error: (untrusted > 0).then(|| {
                format!(
                    "{untrusted} entries claim to be sshd's but journald does not vouch for \
                     their sender (a user's logger?): not counted"
                )
            }),
        });
        Ok(())
    }
}

/// Read `input` through `runner`'s filter.
pub fn read_logs(
    input: &LogInput,
    runner: &mut OfflineJail,
    query: &Query,
    tz: jiff::tz::TimeZone,
    site: &mut crate::campaigns::OfflineSite,
) -> Result<LogScan> {
    let mut r = Reader {
        site,
        runner,
        query,
        dates: DateParser::new(tz),
        addr_text: query.target.map(AddrText::new),
        names: HashSet::new(),
        events: Vec::new(),
        scan: LogScan::default(),
    };
    match input {
        LogInput::Files(files) => {
            let mut last: Option<Arc<str>> = None;
            for path in rotation_order(files) {
                r.file(&path);
                last = Some(Arc::from(path.display().to_string()));
            }
            if let Some(source) = last {
                r.finish(&source);
            }
        }
        LogInput::Journal(location) => r.journal(location.clone())?,
    }
    let mut scan = r.scan;
    // Files of different rotation sets may interleave; the rules need time order.
    scan.observations.sort_by_key(|o| o.time);
    scan.successes.sort_by_key(|s| s.time);
    scan.addr_lines.sort_by_key(|l| l.time);
    Ok(scan)
}

/// The default logs: `/var/log/auth.log*` (Debian) or else `/var/log/secure*` (RHEL), every
/// rotated generation included; empty when neither exists.
pub fn default_log_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for base in ["auth.log", "secure"] {
        let mut set: Vec<PathBuf> = names
            .iter()
            .filter(|n| is_generation_of(n, base))
            .map(|n| dir.join(n))
            .collect();
        if !set.is_empty() {
            set.sort();
            return set;
        }
    }
    Vec::new()
}

/// `base`, `base.N`, `base.N.gz`, `base-YYYYMMDD`, `base-YYYYMMDD.gz`.
fn is_generation_of(name: &str, base: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.is_empty()
        || rest.strip_prefix('.').is_some_and(digits)
        || rest.strip_prefix('-').is_some_and(digits)
}

/// Finds an address as text in a line, as a whole token: `192.0.2.1` is not found in
/// `192.0.2.10` or `10.192.0.2.1`.
pub struct AddrText {
    finder: memchr::memmem::Finder<'static>,
    len: usize,
    v6: bool,
}

impl AddrText {
    /// For `addr` as sshd prints it (IPv6 compressed, lowercase).
    pub fn new(addr: IpAddr) -> AddrText {
        let text = addr.to_string();
        AddrText {
            len: text.len(),
            finder: memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
            v6: addr.is_ipv6(),
        }
    }

    /// Whether `line` holds the address as a token.
    pub fn is_in(&self, line: &[u8]) -> bool {
        let part = |b: u8| {
            if self.v6 {
                b.is_ascii_hexdigit() || b == b':'
            } else {
                b.is_ascii_digit() || b == b'.'
            }
        };
        self.finder.find_iter(line).any(|at| {
            let before_ok = at == 0 || !part(line[at - 1]);
            let end = at + self.len;
            let after_ok = match line.get(end) {
                None => true,
                Some(&b) if self.v6 => !part(b),
                // A sentence-ending dot is fine, a further octet is not.
                Some(&b'.') => !line.get(end + 1).is_some_and(u8::is_ascii_digit),
                Some(&b) => !b.is_ascii_digit(),
            };
            before_ok && after_ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_text_is_matched_as_a_token() {
        let t = AddrText::new("192.0.2.1".parse().unwrap());
        assert!(t.is_in(b"Failed password for root from 192.0.2.1 port 22 ssh2"));
        assert!(t.is_in(b"rhost=192.0.2.1"));
        assert!(t.is_in(b"from ::ffff:192.0.2.1."));
        assert!(!t.is_in(b"from 192.0.2.10 port 22"));
        assert!(!t.is_in(b"from 10.192.0.2.1 port 22"));
        assert!(!t.is_in(b"from 192.0.2.1.5"));
        assert!(t.is_in(b"192.0.2.10 then 192.0.2.1"));
        let t = AddrText::new("2001:db8::1".parse().unwrap());
        assert!(t.is_in(b"from 2001:db8::1 port 5"));
        assert!(t.is_in(b"[2001:db8::1]:22"));
        assert!(!t.is_in(b"from 2001:db8::12 port 5"));
        assert!(!t.is_in(b"from 2001:db8::1:5 port 5"));
    }

    #[test]
    fn default_logs_are_the_auth_log_generations() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "auth.log",
            "auth.log.1",
            "auth.log.2.gz",
            "auth.log-20261101",
            "auth.logger",
            "secure",
            "syslog",
        ] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let names: Vec<String> = default_log_files(d.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "auth.log",
                "auth.log-20261101",
                "auth.log.1",
                "auth.log.2.gz"
            ]
        );
        for n in [
            "auth.log",
            "auth.log.1",
            "auth.log.2.gz",
            "auth.log-20261101",
        ] {
            std::fs::remove_file(d.path().join(n)).unwrap();
        }
        let names: Vec<String> = default_log_files(d.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["secure"]);
    }
}
