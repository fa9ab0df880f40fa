//! The matcher seam of the binary: a jail's filter reference resolved and compiled once
//! ([`CompiledFilter`]), and [`Matcher`], the one enum over both engines (core's native
//! `LineMatcher`, `portcullis-pcre2`'s `Fail2BanMatcher`), both of core's
//! [`EventMatcher`] shape. The daemon, `scan`, `investigate` and `test-filter` all resolve
//! filters here and match through [`Matcher`].

use std::path::Path;

use anyhow::{Context, Result, bail};
use portcullis_config::{Config, FilterRef, JailSpec};
use portcullis_core::Event;
use portcullis_core::Time;
use portcullis_core::date::DateParser;
use portcullis_core::filter::{EventMatcher, Filter, LineMatcher, LineOutcome, Record, Stats};
use portcullis_fail2ban::FilterDef;
use portcullis_pcre2::{BuildError, Fail2BanMatcher, FilterOptions};
use portcullis_sources::SourceLine;

/// A filter compiled once per configuration load: matchers (one per source) are made from
/// it without compiling again, and a reload compiles each filter once.
#[derive(Debug)]
pub struct CompiledFilter {
    engine: Compiled,
}

#[derive(Debug)]
enum Compiled {
    /// A native TOML filter (built-in or file), with the zone of its dates.
    Native(Filter, jiff::tz::TimeZone),
    /// A Fail2Ban `filter.d` definition on the PCRE2 engine; forked per source.
    Fail2Ban(Box<Fail2BanMatcher>),
}

impl CompiledFilter {
    /// A fresh matcher (own date cache, attempt merging or multi-line buffer, counters) for
    /// one source.
    pub fn matcher(&self) -> Matcher {
        match &self.engine {
            Compiled::Native(f, tz) => Matcher::Native(Box::new(native_matcher(f, tz))),
            Compiled::Fail2Ban(m) => Matcher::Fail2Ban(Box::new(m.fork())),
        }
    }

    /// Whether it is a Fail2Ban filter (on the pcre2 engine).
    pub fn is_fail2ban(&self) -> bool {
        matches!(self.engine, Compiled::Fail2Ban(_))
    }

    /// The rules as `test-filter` lists them: a native rule's id, a Fail2Ban failregex as
    /// written.
    pub fn rule_texts(&self) -> Vec<String> {
        match &self.engine {
            Compiled::Native(f, _) => f.rules().iter().map(|r| r.id.to_string()).collect(),
            Compiled::Fail2Ban(m) => m.filter().failregex().map(str::to_owned).collect(),
        }
    }
}

fn native_matcher(f: &Filter, tz: &jiff::tz::TimeZone) -> LineMatcher {
    match LineMatcher::new(f.clone(), DateParser::new(tz.clone())) {
        Ok(m) => m,
        Err(never) => match never {},
    }
}

/// Lines or journal records to [`Event`]s, with either engine.
#[derive(Debug)]
pub enum Matcher {
    /// Core's native matcher (rules, attempt merging, weights).
    Native(Box<LineMatcher>),
    /// A Fail2Ban filter.
    Fail2Ban(Box<Fail2BanMatcher>),
}

impl Matcher {
    /// One line as a source delivered it: a journal record, or a raw line read at
    /// `line.read_at`.
    pub fn feed_source_line(&mut self, line: &SourceLine, out: &mut Vec<Event>) -> LineOutcome {
        match &line.journal {
            Some(fields) => self.feed_record(&fields.record(&line.bytes, line.read_at), out),
            None => self.feed_line(&line.bytes, line.read_at, out),
        }
    }

    /// The native matcher, when the filter is native (`scan` matches its lines on worker
    /// threads).
    pub fn native(&self) -> Option<&LineMatcher> {
        match self {
            Matcher::Native(m) => Some(m),
            Matcher::Fail2Ban(_) => None,
        }
    }

    /// Warns about a Fail2Ban search cut off by its match limit, at powers of two of the
    /// lines that had one (a flood of crafted lines cannot flood the log).
    fn warn_search_error(&mut self) {
        if let Matcher::Fail2Ban(m) = self
            && let Some((n, e)) = m.take_search_error()
            && n.is_power_of_two()
        {
            tracing::warn!(
                filter = %m.name(),
                searches_cut_off = n,
                error = %e,
                "Fail2Ban filter: a search was cut off by the match limit (the line is skipped by that regex; the others still ran)"
            );
        }
    }
}

impl EventMatcher for Matcher {
    fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        let outcome = match self {
            Matcher::Native(m) => m.feed_line(line, reference, out),
            Matcher::Fail2Ban(m) => m.feed_line(line, reference, out),
        };
        self.warn_search_error();
        outcome
    }

    fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Event>) -> LineOutcome {
        let outcome = match self {
            Matcher::Native(m) => m.feed_record(record, out),
            Matcher::Fail2Ban(m) => m.feed_record(record, out),
        };
        self.warn_search_error();
        outcome
    }

    fn stats(&self) -> &Stats {
        match self {
            Matcher::Native(m) => m.stats(),
            Matcher::Fail2Ban(m) => m.stats(),
        }
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        match self {
            Matcher::Native(m) => m.finish(out),
            Matcher::Fail2Ban(m) => m.finish(out),
        }
    }

    fn rule_name(&self, rule: u16) -> &str {
        match self {
            Matcher::Native(m) => EventMatcher::rule_name(&**m, rule),
            Matcher::Fail2Ban(m) => m.rule_name(rule),
        }
    }
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

/// The year that bounds 4-digit years in Fail2Ban's date templates: this year in `tz`.
fn this_year(tz: &jiff::tz::TimeZone) -> i16 {
    tz.to_datetime(jiff::Timestamp::now()).year()
}

/// Compile the filter a jail names (see [`compile_filter`]).
pub fn resolve_filter(
    spec: &JailSpec,
    filter_dir: &Path,
    tz: &jiff::tz::TimeZone,
) -> Result<CompiledFilter> {
    compile_filter(&spec.filter, &spec.filter_at.to_string(), filter_dir, tz)
}

/// Compile `filter`: a name is `<filter_dir>/NAME.toml` if it exists, else a built-in; a
/// Fail2Ban filter file is read through `portcullis-fail2ban`'s reader (once) and compiled
/// by the PCRE2 engine. `at` (the config location that named it) prefixes every error, and
/// a Fail2Ban regex that does not compile is named with the file and line it was written on.
pub fn compile_filter(
    filter: &FilterRef,
    at: &str,
    filter_dir: &Path,
    tz: &jiff::tz::TimeZone,
) -> Result<CompiledFilter> {
    if let Some(def) = FilterDef::from_ref(filter) {
        let def = def.with_context(|| at.to_string())?;
        let options = FilterOptions::from_def(&def).with_context(|| at.to_string())?;
        let name = filter.user_path(filter_dir).display().to_string();
        return match Fail2BanMatcher::new(&options, &name, tz.clone(), this_year(tz)) {
            Ok(m) => Ok(CompiledFilter {
                engine: Compiled::Fail2Ban(Box::new(m)),
            }),
            Err(e) => {
                let origin = match &e {
                    BuildError::Regex { which, .. } => regex_origin(&def, which),
                    _ => None,
                };
                let origin = origin.map_or_else(|| name.clone(), |o| o.to_string());
                Err(anyhow::Error::new(e).context(format!("{at}: Fail2Ban filter {origin}")))
            }
        };
    }
    let native = |f: Filter| CompiledFilter {
        engine: Compiled::Native(f, tz.clone()),
    };
    let path = filter.user_path(filter_dir);
    if path.exists() || matches!(filter, FilterRef::File(_)) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{at}: cannot read filter {}", path.display()))?;
        let f = Filter::from_toml(&text, &path.display().to_string())?;
        return Ok(native(f));
    }
    let FilterRef::Named(name) = filter else {
        bail!("{at}: no filter {}", path.display());
    };
    let Some(text) = portcullis_core::filter::builtin(name) else {
        bail!(
            "{at}: unknown filter {name:?} (no {} and no built-in of that name; built-ins: {})",
            path.display(),
            portcullis_core::filter::BUILTIN_NAMES.join(", ")
        );
    };
    let f = Filter::from_toml(text, &format!("<built-in {name}>"))?;
    Ok(native(f))
}

/// The zone for zone-less timestamps: `flag` (`--timezone`), else the config's, else the
/// system's.
pub fn time_zone(flag: Option<&str>, config: &Config) -> Result<jiff::tz::TimeZone> {
    match flag.or(config.daemon.timezone.as_deref()) {
        Some(name) => {
            jiff::tz::TimeZone::get(name).with_context(|| format!("unknown time zone {name:?}"))
        }
        None => Ok(jiff::tz::TimeZone::system()),
    }
}

/// Every enabled jail of `config` (or only `only`) with its compiled filter, each filter
/// compiled once.
pub fn compile_jails<'a>(
    config: &'a Config,
    only: Option<&str>,
    tz: &jiff::tz::TimeZone,
) -> Result<Vec<(&'a JailSpec, CompiledFilter)>> {
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
        .map(|j| Ok((j, resolve_filter(j, &config.daemon.filter_dir, tz)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(filter: FilterRef) -> JailSpec {
        JailSpec {
            name: "x".into(),
            config: portcullis_core::jail::JailConfig::new("x"),
            filter,
            filter_at: portcullis_config::Location {
                file: "p.toml".into(),
                line: 7,
                key: "jail.x.filter".into(),
            },
            sources: Vec::new(),
        }
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
        let spec = spec(FilterRef::Fail2Ban {
            path: conf.clone(),
            args: Vec::new(),
        });
        let e = resolve_filter(&spec, dir.path(), &jiff::tz::TimeZone::UTC).expect_err("bad regex");
        let want = format!(
            "p.toml:7: jail.x.filter: Fail2Ban filter {}:3: failregex[1]",
            conf.display()
        );
        let shown = format!("{e:#}");
        assert!(shown.starts_with(&want), "{shown}");
        // The engine's own reason is kept in the chain.
        assert!(e.chain().count() >= 2, "{shown}");
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let e = resolve_filter(
            &spec(FilterRef::Named("nosuch".into())),
            Path::new("/nonexistent"),
            &jiff::tz::TimeZone::UTC,
        )
        .expect_err("unknown");
        let shown = format!("{e:#}");
        assert!(
            shown.starts_with("p.toml:7: jail.x.filter: unknown filter"),
            "{shown}"
        );
        assert!(shown.contains("sshd"), "{shown}");
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
        let spec = spec(FilterRef::Fail2Ban {
            path: conf.to_path_buf(),
            args: vec![("logtype".into(), "journal".into())],
        });
        let filter = resolve_filter(&spec, Path::new("/nonexistent"), &jiff::tz::TimeZone::UTC)
            .expect("sshd.conf");
        let mut m = filter.matcher();
        let at = Time::from_secs(1_795_000_000);
        let mut out = Vec::new();
        let outcome = m.feed_record(
            &Record {
                time: at,
                program: Some(b"sshd"),
                pid: Some(4242),
                message: b"Failed password for invalid user admin from 203.0.113.9 port 50000 ssh2",
            },
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
