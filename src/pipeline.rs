//! The offline pipeline shared by `scan` (and later `investigate`): files → filter → jail.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::MultiGzDecoder;
use portcullis_config::{Config, FilterRef, JailSpec};
use portcullis_core::date::DateParser;
use portcullis_core::filter::{Filter, LineMatcher, LineOutcome, Stats};
use portcullis_core::jail::{JailEngine, Restored};
use portcullis_core::{Decision, Event, Time};

/// One jail of the offline pipeline: its filter's matcher and its engine, with log time as
/// the engine's clock.
pub struct JailRunner {
    matcher: LineMatcher,
    engine: JailEngine,
}

impl JailRunner {
    /// A runner for `spec` with a fresh engine (nothing restored).
    pub fn new(spec: &JailSpec, filter: Filter, tz: jiff::tz::TimeZone) -> Result<JailRunner> {
        let matcher = LineMatcher::new(filter, DateParser::new(tz))
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
        self.matcher
            .filter()
            .rules()
            .get(usize::from(idx))
            .map_or("?", |r| &*r.id)
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

/// Compile the filter a jail names: `<filter_dir>/NAME.toml` if it exists, else a built-in.
pub fn resolve_filter(spec: &JailSpec, filter_dir: &Path) -> Result<Filter> {
    let path = spec.filter.user_path(filter_dir);
    if path.exists() || matches!(spec.filter, FilterRef::File(_)) {
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{}: cannot read filter {}", spec.filter_at, path.display())
        })?;
        return Filter::from_toml(&text, &path.display().to_string()).map_err(|e| anyhow!("{e}"));
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
    Filter::from_toml(text, &format!("<built-in {name}>")).map_err(|e| anyhow!("{e}"))
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

/// Build the runners of every enabled jail (or only `only`).
pub fn load_jails(
    config_path: Option<&Path>,
    only: Option<&str>,
    tz: Option<&str>,
) -> Result<Vec<JailRunner>> {
    let config = load_config(config_path)?;
    let tz = time_zone(tz, &config)?;
    if let Some(name) = only {
        if config.jail(name).is_none() {
            let names: Vec<&str> = config.jails.iter().map(|j| j.name.as_str()).collect();
            bail!("no enabled jail {name:?} (enabled: {})", names.join(", "));
        }
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
