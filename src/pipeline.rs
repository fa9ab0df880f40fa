//! The offline pipeline shared by `scan` and `investigate` (files → filter → jail), and the
//! filter side the daemon shares with it: [`JailFilter`] (what a jail's filter reference
//! resolves to) and [`AnyMatcher`] (a line or journal record → core [`Event`]s, for the
//! native engine and for Fail2Ban filters alike).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::MultiGzDecoder;
use portcullis_config::{Config, FilterRef, JailSpec};
use portcullis_core::date::DateParser;
use portcullis_core::event::normalize_addr;
use portcullis_core::filter::{BadLine, Filter, LineMatcher, LineOutcome, Stats};
use portcullis_core::jail::{JailEngine, Restored};
use portcullis_core::{Decision, Event, EventKind, Time, Weight};
use portcullis_fail2ban::{FilterDef, Import, ImportOptions, Severity};
use portcullis_pcre2::{BuildError, Fail2BanFilter, FilterOptions, LineResult};

/// A jail's filter, compiled once and checked: matchers (one per source) are made from it.
#[derive(Clone, Debug)]
pub enum JailFilter {
    /// A native TOML filter (built-in or file).
    Native(Filter),
    /// A Fail2Ban `filter.d` definition, run by the PCRE2 engine.
    Fail2Ban {
        /// The engine settings read from the definition.
        options: FilterOptions,
        /// Where the definition came from (for errors).
        name: String,
    },
}

impl JailFilter {
    /// A fresh matcher (own date cache, multi-line buffer and counters) for one source.
    pub fn matcher(&self, tz: &jiff::tz::TimeZone) -> Result<AnyMatcher> {
        match self {
            JailFilter::Native(f) => Ok(AnyMatcher::Native(Box::new(
                LineMatcher::new(f.clone(), DateParser::new(tz.clone()))
                    .map_err(|e| anyhow!("{e}"))?,
            ))),
            JailFilter::Fail2Ban { options, name } => Ok(AnyMatcher::Fail2Ban(Box::new(
                Fail2BanMatcher::new(options, name, tz)?,
            ))),
        }
    }
}

/// Turns lines or journal records into events with either engine.
#[derive(Debug)]
pub enum AnyMatcher {
    /// Core's native matcher (rules, attempt merging, weights).
    Native(Box<LineMatcher>),
    /// A Fail2Ban filter.
    Fail2Ban(Box<Fail2BanMatcher>),
}

impl AnyMatcher {
    /// Match one raw log line; `reference` is the read time (year reference and fallback
    /// time).
    pub fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        match self {
            AnyMatcher::Native(m) => m.feed_line(line, reference, out),
            AnyMatcher::Fail2Ban(m) => m.feed_line(line, reference, out),
        }
    }

    /// Match one journal record (`program` = `SYSLOG_IDENTIFIER`, `None` = not checked).
    pub fn feed_record(
        &mut self,
        time: Time,
        program: Option<&str>,
        pid: Option<u32>,
        message: &[u8],
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        match self {
            AnyMatcher::Native(m) => m.feed_record(time, program, pid, message, out),
            AnyMatcher::Fail2Ban(m) => m.feed_record(time, program, pid, message, out),
        }
    }

    /// Line counters.
    pub fn stats(&self) -> &Stats {
        match self {
            AnyMatcher::Native(m) => m.stats(),
            AnyMatcher::Fail2Ban(m) => &m.stats,
        }
    }

    /// The name of rule `idx` (a native rule id, or `failregex[N]`).
    pub fn rule_name(&self, idx: u16) -> &str {
        match self {
            AnyMatcher::Native(m) => m
                .filter()
                .rules()
                .get(usize::from(idx))
                .map_or("?", |r| &*r.id),
            AnyMatcher::Fail2Ban(m) => m
                .rule_names
                .get(usize::from(idx))
                .map_or("?", String::as_str),
        }
    }
}

/// A Fail2Ban filter behind the same interface as core's `LineMatcher`: every failure is
/// one attempt (weight 1, count 1: Fail2Ban counts matches), an `<F-NOFAIL>` match is
/// information, the user is the failure's `<F-USER>`.
#[derive(Debug)]
pub struct Fail2BanMatcher {
    filter: Fail2BanFilter,
    /// Same counters as the native engine, so `scan`/`status` report both alike.
    stats: Stats,
    /// `failregex[N]`, for `--explain` and hit counts.
    rule_names: Vec<String>,
    /// Which filter (for the match-limit warning).
    name: String,
    /// Searches cut off by the match limit so far (warned about at powers of two, so a
    /// flood of crafted lines cannot flood the log).
    limit_hits: u64,
}

impl Fail2BanMatcher {
    /// Compile `options` (the date templates bound 4-digit years by the current year).
    pub fn new(options: &FilterOptions, name: &str, tz: &jiff::tz::TimeZone) -> Result<Self> {
        let year = tz.to_datetime(jiff::Timestamp::now()).year();
        let filter = Fail2BanFilter::new(options, tz.clone(), year)
            .map_err(|e| anyhow!("Fail2Ban filter {name}: {e}"))?;
        let rule_names: Vec<String> = (0..options.failregex.len())
            .map(|i| format!("failregex[{i}]"))
            .collect();
        let stats = Stats {
            rule_hits: vec![0; rule_names.len()],
            ..Stats::default()
        };
        Ok(Fail2BanMatcher {
            filter,
            stats,
            rule_names,
            name: name.to_owned(),
            limit_hits: 0,
        })
    }

    /// One raw line (dates found by the filter's templates; `reference` settles years and
    /// is the time of lines without a date).
    pub fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        self.stats.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = self.decode(line);
        let result = self.filter.process_line(&text, reference);
        self.events(result, reference, out)
    }

    /// One journal record, rendered as Fail2Ban's systemd backend renders it
    /// (`IDENTIFIER[PID]: MESSAGE`); the record's time is the event time.
    pub fn feed_record(
        &mut self,
        time: Time,
        program: Option<&str>,
        pid: Option<u32>,
        message: &[u8],
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        self.stats.lines += 1;
        let text = self.decode(message);
        let rendered = match (program, pid) {
            (Some(p), Some(pid)) => format!("{p}[{pid}]: {text}"),
            (Some(p), None) => format!("{p}: {text}"),
            _ => text.into_owned(),
        };
        let result = self.filter.process_message(&rendered, time);
        self.events(result, time, out)
    }

    fn decode<'a>(&mut self, bytes: &'a [u8]) -> std::borrow::Cow<'a, str> {
        let text = String::from_utf8_lossy(bytes);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            self.stats.invalid_utf8 += 1;
        }
        text
    }

    fn events(&mut self, result: LineResult, fallback: Time, out: &mut Vec<Event>) -> LineOutcome {
        if !result.errors.is_empty() {
            self.limit_hits += 1;
            if self.limit_hits.is_power_of_two() {
                tracing::warn!(
                    filter = %self.name,
                    searches_cut_off = self.limit_hits,
                    error = %result.errors[0],
                    "Fail2Ban filter: a search was cut off by the match limit (the line is skipped by that regex; the others still ran)"
                );
            }
        }
        let mut first: Option<u16> = None;
        for f in &result.failures {
            // A pending multi-line id or a host name (no address) bans nothing.
            let Some(addr) = f.addr else { continue };
            let rule = u16::try_from(f.regex).unwrap_or(u16::MAX);
            let time = f.time.unwrap_or(fallback);
            let nofail = f.is_nofail();
            out.push(Event {
                time,
                addr: normalize_addr(addr),
                kind: if nofail {
                    EventKind::Info
                } else {
                    EventKind::Attempt
                },
                weight: if nofail { Weight::ZERO } else { Weight::ONE },
                count: 1,
                user: f.text("user").map(Box::from),
                method: None,
                pid: None,
                rule,
            });
            if !nofail && first.is_none() {
                first = Some(rule);
            }
        }
        if let Some(rule) = first {
            self.stats.matched += 1;
            if let Some(h) = self.stats.rule_hits.get_mut(usize::from(rule)) {
                *h += 1;
            }
            return LineOutcome::Matched { rule };
        }
        if result.ignored.is_some() {
            self.stats.ignored += 1;
            return LineOutcome::Ignored { rule: 0 };
        }
        if !result.errors.is_empty() {
            self.stats.bad += 1;
            return LineOutcome::Bad(BadLine::EngineError);
        }
        self.stats.unmatched += 1;
        LineOutcome::Unmatched
    }
}

/// One jail of the offline pipeline: its filter's matcher and its engine, with log time as
/// the engine's clock.
pub struct JailRunner {
    matcher: AnyMatcher,
    engine: JailEngine,
}

impl JailRunner {
    /// A runner for `spec` with a fresh engine (nothing restored).
    pub fn new(spec: &JailSpec, filter: JailFilter, tz: jiff::tz::TimeZone) -> Result<JailRunner> {
        let matcher = filter
            .matcher(&tz)
            .map_err(|e| anyhow!("jail {}: {e}", spec.name))?;
        let engine = JailEngine::new(spec.config.clone(), Restored::default());
        Ok(JailRunner { matcher, engine })
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.engine.config().name
    }

    /// The id of rule `idx` of this jail's filter.
    pub fn rule_name(&self, idx: u16) -> &str {
        self.matcher.rule_name(idx)
    }

    /// Match one line; `reference` is the read time (year reference and fallback time).
    pub fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        self.matcher.feed_line(line, reference, out)
    }

    /// Match one journal record (`program` = `SYSLOG_IDENTIFIER`, `None` = not checked).
    pub fn feed_record(
        &mut self,
        time: Time,
        program: Option<&str>,
        pid: Option<u32>,
        message: &[u8],
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        self.matcher.feed_record(time, program, pid, message, out)
    }

    /// Give one event to the engine, at the event's own time (expiring bans that ended
    /// before it first).
    pub fn handle_event(&mut self, ev: &Event) {
        if self.engine.poll_timeout().is_some_and(|t| t <= ev.time) {
            self.engine.handle_timeout(ev.time);
        }
        self.engine.handle_event(ev.time, ev);
    }

    /// The next decision, if any.
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.engine.poll_decision()
    }

    /// Line counters of the filter.
    pub fn stats(&self) -> &Stats {
        self.matcher.stats()
    }

    /// The jail's matcher when its filter is native (`scan` forks it for worker threads).
    pub fn native_matcher(&self) -> Option<&LineMatcher> {
        match &self.matcher {
            AnyMatcher::Native(m) => Some(m),
            AnyMatcher::Fail2Ban(_) => None,
        }
    }
}

/// The configuration `scan`/`investigate` use: the given file (on top of the embedded
/// default), or the embedded default alone.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let config = match path {
        Some(p) => Config::load(Some(p), None),
        None => Config::embedded_default(),
    };
    config.map_err(|e| anyhow!("{e}"))
}

/// An existing Fail2Ban configuration read as Fail2Ban reads it (host names in `ignoreip`
/// resolved once), as a portcullis [`Config`] plus the report of what is not carried over.
fn import_fail2ban(dir: &Path) -> Result<Import> {
    Import::load(
        dir,
        &ImportOptions {
            resolve_hostnames: true,
        },
    )
    .map_err(|e| anyhow!("Fail2Ban configuration {}: {e}", dir.display()))
}

/// `run --fail2ban-config DIR`: the Fail2Ban configuration as a [`Config`]. Everything the
/// import does not carry over exactly (unimplemented actions, approximations) is logged as
/// a warning (notes at info level), at every load (start and reload).
pub fn load_fail2ban_config(dir: &Path) -> Result<Config> {
    let import = import_fail2ban(dir)?;
    for e in &import.report.entries {
        match e.severity {
            Severity::Note => tracing::info!("fail2ban import: {e}"),
            _ => tracing::warn!("fail2ban import: {e}"),
        }
    }
    tracing::info!(
        dir = %dir.display(),
        jails = ?import.config.jails.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        "running the Fail2Ban configuration"
    );
    Ok(import.config)
}

/// Where the regex the engine calls `which` (`failregex[2]`, `prefregex`, …) was written.
fn regex_origin<'a>(def: &'a FilterDef, which: &str) -> Option<&'a portcullis_fail2ban::Origin> {
    let indexed = |prefix: &str, list: &'a [portcullis_fail2ban::Located]| {
        let i: usize = which
            .strip_prefix(prefix)?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        list.get(i).map(|l| &l.origin)
    };
    match which {
        "prefregex" => def.prefregex.as_ref().map(|l| &l.origin),
        _ => indexed("failregex[", &def.failregex)
            .or_else(|| indexed("ignoreregex[", &def.ignoreregex)),
    }
}

/// Compile the filter a jail names: `<filter_dir>/NAME.toml` if it exists, else a built-in;
/// a Fail2Ban filter file through `portcullis-fail2ban`'s reader and the PCRE2 engine.
pub fn resolve_filter(spec: &JailSpec, filter_dir: &Path) -> Result<JailFilter> {
    if let Some(def) = FilterDef::from_ref(&spec.filter) {
        let def = def.map_err(|e| anyhow!("{}: {e}", spec.filter_at))?;
        let options =
            FilterOptions::from_def(&def).map_err(|e| anyhow!("{}: {e}", spec.filter_at))?;
        let name = spec.filter.user_path(filter_dir).display().to_string();
        // Compile now, so a bad regex is a load (or reload) error, not a source error; it
        // names the filter file and line the regex was written on.
        if let Err(e) = Fail2BanFilter::new(&options, jiff::tz::TimeZone::UTC, 2000) {
            let origin = match &e {
                BuildError::Regex { which, .. } => regex_origin(&def, which),
                _ => None,
            };
            let origin = origin.map_or_else(|| name.clone(), |o| o.to_string());
            bail!("{}: Fail2Ban filter {origin}: {e}", spec.filter_at);
        }
        return Ok(JailFilter::Fail2Ban { options, name });
    }
    let path = spec.filter.user_path(filter_dir);
    if path.exists() || matches!(spec.filter, FilterRef::File(_)) {
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{}: cannot read filter {}", spec.filter_at, path.display())
        })?;
        return Filter::from_toml(&text, &path.display().to_string())
            .map(JailFilter::Native)
            .map_err(|e| anyhow!("{e}"));
    }
    let FilterRef::Named(name) = &spec.filter else {
        bail!("{}: no filter {}", spec.filter_at, path.display());
    };
    let text = portcullis_core::filter::builtin(name).ok_or_else(|| {
        anyhow!(
            "{}: unknown filter {name:?} (no {} and no built-in of that name; built-ins: {})",
            spec.filter_at,
            path.display(),
            portcullis_core::filter::BUILTIN_NAMES.join(", ")
        )
    })?;
    Filter::from_toml(text, &format!("<built-in {name}>"))
        .map(JailFilter::Native)
        .map_err(|e| anyhow!("{e}"))
}
/// The zone for zone-less timestamps: `--timezone`, else the config's, else the system's.
pub fn time_zone(flag: Option<&str>, config: &Config) -> Result<jiff::tz::TimeZone> {
    match flag.or(config.daemon.timezone.as_deref()) {
        Some(name) => {
            jiff::tz::TimeZone::get(name).with_context(|| format!("unknown time zone {name:?}"))
        }
        None => Ok(jiff::tz::TimeZone::system()),
    }
}

/// Build the runners of every enabled jail (or only `only`) of the TOML configuration
/// `config_path`, or of the Fail2Ban configuration `fail2ban_dir` when given.
pub fn load_jails(
    config_path: Option<&Path>,
    fail2ban_dir: Option<&Path>,
    only: Option<&str>,
    tz: Option<&str>,
) -> Result<Vec<JailRunner>> {
    let config = match fail2ban_dir {
        Some(dir) => {
            // `scan` has no log subscriber: what is not carried over goes to stderr.
            let import = import_fail2ban(dir)?;
            for e in import.report.with_severity(Severity::NotCarried) {
                eprintln!("fail2ban import: {e}");
            }
            for e in import.report.with_severity(Severity::Approximated) {
                eprintln!("fail2ban import: {e}");
            }
            import.config
        }
        None => load_config(config_path)?,
    };
    let tz = time_zone(tz, &config)?;
    if let Some(name) = only
        && config.jail(name).is_none()
    {
        let names: Vec<&str> = config.jails.iter().map(|j| j.name.as_str()).collect();
        bail!("no enabled jail {name:?} (enabled: {})", names.join(", "));
    }
    config
        .jails
        .iter()
        .filter(|j| only.is_none_or(|n| n == j.name))
        .map(|j| JailRunner::new(j, resolve_filter(j, &config.daemon.filter_dir)?, tz.clone()))
        .collect()
}

/// Lines longer than this are cut (the rest up to the newline is skipped).
pub const MAX_LINE: usize = 64 * 1024;

/// Call `f` with every line of `path` (without its newline), decompressing gzip by magic
/// number. A final line without newline is delivered too.
pub fn for_each_line(path: &Path, mut f: impl FnMut(&[u8])) -> Result<()> {
    let file = File::open(path).with_context(|| "cannot open")?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let is_gz = reader.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b]))?;
    if is_gz {
        let gz = BufReader::with_capacity(256 * 1024, MultiGzDecoder::new(reader));
        lines_of(gz, &mut f).context("gzip")
    } else {
        lines_of(reader, &mut f)
    }
}

fn lines_of(mut r: impl BufRead, f: &mut impl FnMut(&[u8])) -> Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if !carry.is_empty() && !skipping {
                f(&carry);
            }
            return Ok(());
        }
        let len = buf.len();
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
            let end = start + nl;
            if skipping {
                skipping = false;
            } else if carry.is_empty() {
                f(&buf[start..end]);
            } else {
                let room = MAX_LINE.saturating_sub(carry.len());
                carry.extend_from_slice(&buf[start..end.min(start + room)]);
                f(&carry);
                carry.clear();
            }
            start = end + 1;
        }
        if start < len && !skipping {
            let room = MAX_LINE.saturating_sub(carry.len());
            let take = (len - start).min(room);
            carry.extend_from_slice(&buf[start..start + take]);
            if carry.len() >= MAX_LINE {
                f(&carry);
                carry.clear();
                skipping = true;
            }
        }
        r.consume(len);
    }
}

/// The year reference for year-less syslog dates: the file's modification time (no line in a
/// file is newer than its last write), or now if unknown.
pub fn file_reference_time(path: &Path) -> Time {
    let t = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Time::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_pcre2::UseDns;

    fn utc_matcher(failregex: &[&str]) -> AnyMatcher {
        let options = FilterOptions {
            failregex: failregex.iter().map(|s| (*s).to_owned()).collect(),
            usedns: UseDns::No,
            ..FilterOptions::default()
        };
        JailFilter::Fail2Ban {
            options,
            name: "test".into(),
        }
        .matcher(&jiff::tz::TimeZone::UTC)
        .expect("compiles")
    }

    #[test]
    fn fail2ban_failures_are_single_attempts_and_nofail_is_info() {
        let mut m = utc_matcher(&[
            r"^\s*\S+ auth: bad password for <F-USER>\S+</F-USER> from <HOST>$",
            r"^\s*\S+ auth: <F-NOFAIL>connect</F-NOFAIL> from <HOST>$",
        ]);
        let read = Time::from_secs(1_795_000_000); // 2026-11-17
        let mut out = Vec::new();
        let outcome = m.feed_line(
            b"2026-11-17 10:00:00 srv auth: bad password for root from ::ffff:192.0.2.7",
            read,
            &mut out,
        );
        assert_eq!(outcome, LineOutcome::Matched { rule: 0 });
        assert_eq!(out.len(), 1);
        let ev = &out[0];
        assert_eq!(ev.kind, EventKind::Attempt);
        assert_eq!((ev.weight, ev.count), (Weight::ONE, 1));
        assert_eq!(
            ev.addr,
            "192.0.2.7".parse::<std::net::IpAddr>().expect("ip")
        );
        assert_eq!(ev.user.as_deref(), Some("root"));
        // 2026-11-17 10:00:00 UTC, from the line, not the read time.
        assert_eq!(ev.time, Time::from_secs(1_794_909_600));

        out.clear();
        let outcome = m.feed_line(
            b"2026-11-17 10:00:01 srv auth: connect from 198.51.100.3",
            read,
            &mut out,
        );
        assert_eq!(outcome, LineOutcome::Unmatched, "no failure on this line");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, EventKind::Info);
        assert_eq!(out[0].total_weight(), Weight::ZERO);

        out.clear();
        m.feed_line(b"2026-11-17 10:00:02 srv auth: hello", read, &mut out);
        assert!(out.is_empty());
        let st = m.stats();
        assert_eq!((st.lines, st.matched, st.unmatched), (3, 1, 2));
        assert_eq!(st.rule_hits, [1, 0]);
        assert_eq!(m.rule_name(1), "failregex[1]");
    }

    #[test]
    fn a_bad_fail2ban_regex_names_the_jail_key_and_the_filter_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("broken.conf");
        std::fs::write(
            &conf,
            "[Definition]\nfailregex = ^ok from <HOST>$\n            ^(unclosed <HOST>\n",
        )
        .expect("write");
        let spec = JailSpec {
            name: "x".into(),
            config: portcullis_core::jail::JailConfig::new("x"),
            filter: FilterRef::Fail2Ban {
                path: conf.clone(),
                args: Vec::new(),
            },
            filter_at: portcullis_config::Location {
                file: "p.toml".into(),
                line: 7,
                key: "jail.x.filter".into(),
            },
            sources: Vec::new(),
        };
        let e = resolve_filter(&spec, dir.path())
            .expect_err("bad regex")
            .to_string();
        let want = format!(
            "p.toml:7: jail.x.filter: Fail2Ban filter {}:3: failregex[1]",
            conf.display()
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn fail2ban_journal_records_are_rendered_as_fail2ban_does() {
        let conf = Path::new("/etc/fail2ban/filter.d/sshd.conf");
        if !conf.is_file() {
            let msg = "FAIL2BAN NOT INSTALLED: /etc/fail2ban/filter.d/sshd.conf missing";
            eprintln!("{msg}");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            return;
        }
        let spec = JailSpec {
            name: "sshd".into(),
            config: portcullis_core::jail::JailConfig::new("sshd"),
            filter: FilterRef::Fail2Ban {
                path: conf.to_path_buf(),
                args: vec![("logtype".into(), "journal".into())],
            },
            filter_at: portcullis_config::Location {
                file: "t.toml".into(),
                line: 1,
                key: "jail.sshd.filter".into(),
            },
            sources: Vec::new(),
        };
        let filter = resolve_filter(&spec, Path::new("/nonexistent")).expect("sshd.conf");
        let mut m = filter.matcher(&jiff::tz::TimeZone::UTC).expect("matcher");
        let at = Time::from_secs(1_795_000_000);
        let mut out = Vec::new();
        let outcome = m.feed_record(
            at,
            Some("sshd"),
            Some(4242),
            b"Failed password for invalid user admin from 203.0.113.9 port 50000 ssh2",
            &mut out,
        );
        assert!(
            matches!(outcome, LineOutcome::Matched { .. }),
            "{outcome:?}"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].time, at);
        assert_eq!(out[0].addr.to_string(), "203.0.113.9");
        assert_eq!(out[0].user.as_deref(), Some("admin"));
    }
}
