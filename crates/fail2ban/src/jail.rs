//! Fail2Ban jails (`jail.conf`, `jail.d/*.conf`, `jail.local`, `jail.d/*.local`) turned into
//! portcullis jails, with a [`Report`] of everything that is not carried over exactly.
//!
//! Mapping (each approximation is a report entry naming FILE:LINE):
//! - `filter = NAME[args]` → [`FilterRef::Fail2Ban`] with the arguments, the `logtype`
//!   Fail2Ban derives from the backend, and filter options the jail sets itself
//!   (`failregex`, `usedns`, …; Fail2Ban lets them override the filter's).
//! - `backend` auto/polling/pyinotify/gamin → one file source per `logpath` line (globs
//!   expanded at load); `systemd[journalpath=, journalfiles=]` → a journal source whose
//!   matches are the filter's `journalmatch` lines joined with `+`.
//! - `maxretry`, `findtime`, `bantime` as they are; `bantime < 0` → every ban permanent.
//! - without `bantime.increment`: no escalation (factor 1, maxtime = bantime).
//! - with it: the default formula → factor 2; Fail2Ban's exponential formula → factor
//!   e^`bantime.factor`; `bantime.multipliers` → their growth factor (exact when geometric),
//!   capped at the last multiplier; `bantime.maxtime` → maxtime; history = `dbpurgeage`;
//!   `bantime.rndtime` and `overalljails` are reported.
//! - `recidive` → not a jail; every other jail's `permanent_after` = its `maxretry` and
//!   `history` ≥ its `findtime` (Fail2Ban's 1-week ban becomes permanent).
//! - `ignoreip` → allowlist (loopback always; host names resolved once if asked);
//!   `ignoreself` → the daemon's own-address allowlist; `ignorecommand` → recorded argv,
//!   not run.
//! - `action`/`banaction` nftables-* → nft, iptables-ipset-* and iptables-* → ipset, dummy →
//!   nothing, anything else → reported as not implemented; ports are not restricted.
//! - portcullis extras that change which addresses are banned (IPv6 /64 aggregation,
//!   protection after a clean login) are off in imported jails.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_config::{Backend, Config, FilterRef, JailSpec, JournalSpec, Location, SourceSpec};
use portcullis_core::Weight;
use portcullis_core::jail::JailConfig;

use crate::args::{parse_reference, shell_words, split_references, split_words};
use crate::error::LoadError;
use crate::filter::{FILTER_OPTIONS, FilterDef};
use crate::glob::{glob, has_magic};
use crate::ini::{IniValue, Origin};
use crate::layer::{ConfigSet, Located, Vars, join_lines};
use crate::time::parse_seconds;

/// The Fail2Ban version whose semantics this reader follows (also `%(fail2ban_version)s`).
pub const FAIL2BAN_VERSION: &str = "1.0.2";

/// Jail keys this import reads (everything else a jail sets itself is reported).
const HANDLED_KEYS: &[&str] = &[
    "enabled",
    "filter",
    "backend",
    "logpath",
    "maxretry",
    "findtime",
    "bantime",
    "bantime.increment",
    "bantime.factor",
    "bantime.formula",
    "bantime.multipliers",
    "bantime.maxtime",
    "bantime.rndtime",
    "bantime.overalljails",
    "ignoreip",
    "ignoreself",
    "ignorecommand",
    "action",
    "banaction",
    "banaction_allports",
    "port",
    "protocol",
    "chain",
    "mode",
];

/// Longest ban this import writes when Fail2Ban's would be unbounded (no `bantime.maxtime`).
const UNBOUNDED_BAN: Duration = Duration::from_secs(10 * 365 * 86_400);

/// How much of a Fail2Ban setting made it into the portcullis configuration.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// Dropped: portcullis does not do this (the admin must act).
    NotCarried,
    /// Carried with different but close semantics (explained in the message).
    Approximated,
    /// Carried; the message says how (for the admin's information).
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::NotCarried => "NOT CARRIED",
            Severity::Approximated => "approximated",
            Severity::Note => "note",
        })
    }
}

/// One line of the import report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportEntry {
    /// How much was carried over.
    pub severity: Severity,
    /// The jail concerned (`None`: the whole configuration).
    pub jail: Option<String>,
    /// The Fail2Ban key (`bantime.rndtime`, `action`, …).
    pub key: String,
    /// Where the value was written, when known.
    pub origin: Option<Origin>,
    /// What happened and why, lowercase.
    pub message: String,
}

impl fmt::Display for ReportEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(jail) = &self.jail {
            write!(f, "[{jail}] ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Everything an import did not carry over exactly, and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Entries in the order found (per jail, then global).
    pub entries: Vec<ReportEntry>,
}

impl Report {
    fn push(
        &mut self,
        severity: Severity,
        jail: Option<&str>,
        key: &str,
        origin: Option<&Origin>,
        message: impl Into<String>,
    ) {
        self.entries.push(ReportEntry {
            severity,
            jail: jail.map(str::to_owned),
            key: key.to_owned(),
            origin: origin.cloned(),
            message: message.into(),
        });
    }

    /// Entries of one severity.
    pub fn with_severity(&self, severity: Severity) -> impl Iterator<Item = &ReportEntry> {
        self.entries.iter().filter(move |e| e.severity == severity)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted: Vec<&ReportEntry> = self.entries.iter().collect();
        sorted.sort_by_key(|e| e.severity);
        for e in sorted {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Choices of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Resolve host names found in `ignoreip` now (system resolver) and allowlist their
    /// addresses; otherwise they are reported as not carried. Fail2Ban resolves them when
    /// it checks an address; portcullis allowlists only addresses, so a name is resolved
    /// once, at load.
    pub resolve_hostnames: bool,
}

/// What happens to a Fail2Ban action in portcullis.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionMapping {
    /// A ban action portcullis's own firewall backend replaces.
    Firewall(Backend),
    /// An action that does nothing (`dummy`).
    Nothing,
    /// Not implemented by portcullis (mail, abuse reports, other firewalls, Python actions).
    NotImplemented,
}

/// One action of a jail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JailAction {
    /// The action's name (`nftables-multiport`, `sendmail-whois`, `smtp.py`).
    pub name: String,
    /// Its `[key=value]` arguments.
    pub args: Vec<(String, String)>,
    /// What portcullis does instead.
    pub mapping: ActionMapping,
}

/// Details of one imported (enabled) jail beyond its [`JailSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedJail {
    /// The jail's name.
    pub name: String,
    /// The filter as Fail2Ban resolves it for this jail (validated at import).
    pub filter: FilterDef,
    /// Fail2Ban's backend name (`auto`, `polling`, `pyinotify`, `systemd`, …).
    pub backend: String,
    /// The actions, each with its mapping.
    pub actions: Vec<JailAction>,
    /// `ignorecommand` split into argv (never run through a shell); portcullis does not
    /// run it (reported).
    pub ignorecommand: Option<Vec<String>>,
}

/// A Fail2Ban configuration in portcullis terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The configuration to run: the embedded default's daemon settings, the firewall
    /// backend Fail2Ban's ban actions map to, and one jail per enabled Fail2Ban jail.
    pub config: Config,
    /// Per-jail details, sorted like `config.jails`.
    pub jails: Vec<ImportedJail>,
    /// What was not carried over exactly.
    pub report: Report,
    /// The Fail2Ban configuration directory.
    pub dir: PathBuf,
}

impl Import {
    /// Read the Fail2Ban configuration under `dir` (normally `/etc/fail2ban`).
    ///
    /// A jail whose configuration Fail2Ban would reject (unknown filter, bad value) is left
    /// out and reported, as Fail2Ban skips it; only an unreadable or unparsable
    /// `jail.conf`/`jail.local` is an error.
    pub fn load(dir: &Path, options: &ImportOptions) -> Result<Import, LoadError> {
        let mut set = ConfigSet::load(dir, "jail")?;
        let synthetic = |text: &str| IniValue {
            text: text.to_owned(),
            origin: Origin {
                file: Arc::from(Path::new("<fail2ban built-in>")),
                line: 0,
            },
            part_lines: vec![0],
        };
        set.set_default("fail2ban_version", synthetic(FAIL2BAN_VERSION));
        set.set_default("fail2ban_confpath", synthetic(&dir.display().to_string()));
        let mut report = Report::default();
        let history = purge_age(dir, &mut report);
        let mut config = Config::embedded_default().map_err(LoadError::Config)?;
        let mut files: Vec<String> = set
            .files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut jails: Vec<(JailSpec, ImportedJail, Option<Recidive>)> = Vec::new();
        let mut disabled = Vec::new();
        let names: Vec<String> = set
            .section_names()
            .filter(|n| *n != "INCLUDES")
            .map(str::to_owned)
            .collect();
        for name in names {
            let reader = JailReader {
                set: &set,
                dir,
                name: &name,
                vars: Vars::new(),
            };
            match reader.import(history, options, &mut report) {
                Ok(Outcome::Disabled) => disabled.push(name),
                Ok(Outcome::Skipped) => {}
                Ok(Outcome::Enabled(spec, details, recidive)) => {
                    for f in &details.filter.files {
                        let f = f.display().to_string();
                        if !files.contains(&f) {
                            files.push(f);
                        }
                    }
                    jails.push((*spec, *details, recidive));
                }
                Err(e) => report.push(
                    Severity::NotCarried,
                    Some(&name),
                    "jail",
                    None,
                    format!("jail left out, as Fail2Ban would skip it: {e}"),
                ),
            }
        }
        apply_recidive(&mut jails, &mut report);
        config.firewall.backend = choose_backend(&jails, &mut report);
        jails.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        disabled.sort();
        if jails.is_empty() {
            report.push(
                Severity::Note,
                None,
                "jails",
                None,
                "no enabled jail: portcullis would run without jails",
            );
        }
        config.jails = jails.iter().map(|j| j.0.clone()).collect();
        config.disabled_jails = disabled;
        config.files = files;
        Ok(Import {
            config,
            jails: jails.into_iter().map(|j| j.1).collect(),
            report,
            dir: dir.to_path_buf(),
        })
    }
}

/// `dbpurgeage` of `fail2ban.conf` (how long Fail2Ban remembers bans for
/// `bantime.increment`), default 1 day.
fn purge_age(dir: &Path, report: &mut Report) -> Duration {
    let default = Duration::from_secs(86_400);
    let Ok(set) = ConfigSet::load(dir, "fail2ban") else {
        return default;
    };
    let Ok(Some(lines)) = set.get("Definition", "dbpurgeage", &Vars::new()) else {
        return default;
    };
    let text = join_lines(&lines);
    match parse_seconds(&text) {
        Ok(s) if s >= 1.0 => Duration::from_secs_f64(s),
        _ => {
            report.push(
                Severity::Approximated,
                None,
                "dbpurgeage",
                lines.first().map(|l| &l.origin),
                format!("cannot use {text:?}; ban history kept 1 day"),
            );
            default
        }
    }
}

/// What reading one jail section gave.
enum Outcome {
    Disabled,
    /// Left out (reported).
    Skipped,
    Enabled(Box<JailSpec>, Box<ImportedJail>, Option<Recidive>),
}

/// A `recidive` jail's policy, applied to the other jails.
#[derive(Clone, Debug)]
struct Recidive {
    maxretry: u32,
    findtime: Duration,
    permanent: bool,
    bantime: Duration,
    origin: Option<Origin>,
}

/// Reads one jail section.
struct JailReader<'a> {
    set: &'a ConfigSet,
    dir: &'a Path,
    name: &'a str,
    /// `known/<option>` of the jail's filter (Fail2Ban merges them into the jail section).
    vars: Vars,
}

impl JailReader<'_> {
    fn get(&self, key: &str) -> Result<Option<Located>, LoadError> {
        let lines = self.set.get(self.name, key, &self.vars)?;
        Ok(lines.map(|lines| Located {
            text: join_lines(&lines),
            origin: lines
                .first()
                .map(|l| l.origin.clone())
                .unwrap_or_else(synthetic_origin),
        }))
    }

    fn get_lines(&self, key: &str) -> Result<Vec<Located>, LoadError> {
        Ok(self
            .set
            .get(self.name, key, &self.vars)?
            .unwrap_or_default())
    }

    fn invalid(&self, value: &Located, key: &str, message: impl Into<String>) -> LoadError {
        LoadError::Invalid {
            origin: value.origin.clone(),
            key: format!("{}.{key}", self.name),
            message: message.into(),
        }
    }

    fn seconds(&self, key: &str) -> Result<Option<(f64, Located)>, LoadError> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        if v.text.trim().is_empty() {
            return Ok(None);
        }
        let s = parse_seconds(&v.text).map_err(|m| self.invalid(&v, key, m))?;
        Ok(Some((s, v)))
    }

    fn import(
        mut self,
        history: Duration,
        options: &ImportOptions,
        report: &mut Report,
    ) -> Result<Outcome, LoadError> {
        let jail = Some(self.name);
        let enabled = self.get("enabled")?.is_some_and(|v| as_bool(&v.text));
        if !enabled {
            return Ok(Outcome::Disabled);
        }
        // Filter: `name[args]`, loaded as Fail2Ban loads it for this jail's backend.
        let backend_value = self.get("backend")?;
        let backend_ref = match &backend_value {
            Some(v) if !v.text.trim().is_empty() => {
                parse_reference(v.text.trim()).map_err(|m| self.invalid(v, "backend", m))?
            }
            _ => parse_reference("auto").map_err(|m| LoadError::Invalid {
                origin: synthetic_origin(),
                key: "backend".into(),
                message: m,
            })?,
        };
        let backend = backend_ref.name.trim().to_owned();
        let Some(filter_value) = self.get("filter")?.filter(|v| !v.text.trim().is_empty()) else {
            report.push(
                Severity::NotCarried,
                jail,
                "filter",
                None,
                "no filter set: the jail matches nothing (Fail2Ban warns the same); left out",
            );
            return Ok(Outcome::Skipped);
        };
        let filter_ref = parse_reference(filter_value.text.trim())
            .map_err(|m| self.invalid(&filter_value, "filter", m))?;
        let filter_name = filter_ref.name.trim().to_owned();
        let filter_set = ConfigSet::load(self.dir, &format!("filter.d/{filter_name}"))?;
        let mut args = filter_ref.args.clone();
        if let Some(logtype) = FilterDef::auto_logtype(&filter_set, &args, &backend) {
            args.push(("logtype".to_owned(), logtype.to_owned()));
        }
        let first = FilterDef::from_set(&filter_set, &filter_name, &args, None)?;
        for (k, v) in &first.options {
            if !k.starts_with("known/") {
                self.vars.insert(&format!("known/{k}"), v.clone());
            }
        }
        // Filter options the jail sets itself override the filter's.
        for opt in FILTER_OPTIONS {
            if let Some(v) = self.get(opt)? {
                args.retain(|(k, _)| k != opt);
                args.push((opt.to_owned(), v.text));
            }
        }
        let filter = FilterDef::from_set(&filter_set, &filter_name, &args, None)?;
        let filter_path = self
            .dir
            .join("filter.d")
            .join(format!("{filter_name}.conf"));

        // Sources.
        let mut sources = Vec::new();
        match backend.as_str() {
            b if b.starts_with("systemd") => {
                let mut spec = JournalSpec::default();
                for (i, m) in filter.journalmatch.iter().enumerate() {
                    if i > 0 {
                        spec.matches.push("+".to_owned());
                    }
                    spec.matches.extend(m.words.iter().cloned());
                }
                if spec.matches.is_empty() {
                    report.push(
                        Severity::Note,
                        jail,
                        "journalmatch",
                        None,
                        "the filter has no journalmatch: the whole journal is read, as in Fail2Ban",
                    );
                }
                for (k, v) in &backend_ref.args {
                    match k.as_str() {
                        "journalpath" => spec.directory = Some(PathBuf::from(v)),
                        "journalfiles" => {
                            let files = split_words(v);
                            if files.len() > 1 {
                                report.push(
                                    Severity::NotCarried,
                                    jail,
                                    "backend",
                                    backend_value.as_ref().map(|v| &v.origin),
                                    format!("journalfiles: only the first of {files:?} is read"),
                                );
                            }
                            spec.file = files.first().map(PathBuf::from);
                        }
                        other => report.push(
                            Severity::NotCarried,
                            jail,
                            "backend",
                            backend_value.as_ref().map(|v| &v.origin),
                            format!("systemd option {other}={v} is not supported"),
                        ),
                    }
                }
                sources.push(SourceSpec::Journal(spec));
                if self
                    .get("logpath")?
                    .is_some_and(|v| !v.text.trim().is_empty())
                    && self
                        .set
                        .section(self.name)
                        .is_some_and(|s| s.contains("logpath"))
                {
                    report.push(
                        Severity::Note,
                        jail,
                        "logpath",
                        None,
                        "ignored with the systemd backend, as in Fail2Ban",
                    );
                }
            }
            "auto" | "polling" | "pyinotify" | "gamin" => {
                if backend != "auto" {
                    report.push(
                        Severity::Note,
                        jail,
                        "backend",
                        backend_value.as_ref().map(|v| &v.origin),
                        format!(
                            "{backend}: portcullis follows files with inotify (polling as fallback)"
                        ),
                    );
                }
                for line in self.get_lines("logpath")? {
                    let text = line.text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    // Fail2Ban splits `PATH head|tail` at the last space.
                    let (path, tail) = match text.rsplit_once(' ') {
                        Some((p, t)) => (p.trim(), Some(t)),
                        None => (text, None),
                    };
                    if tail == Some("tail") {
                        report.push(
                            Severity::Approximated,
                            jail,
                            "logpath",
                            Some(&line.origin),
                            format!("{path}: `tail` (start at the end) is not an option; portcullis resumes where it stopped and starts new files at the beginning"),
                        );
                    }
                    let found = glob(path);
                    if found.is_empty() {
                        if has_magic(path) {
                            report.push(
                                Severity::NotCarried,
                                jail,
                                "logpath",
                                Some(&line.origin),
                                format!("{path}: the glob matches no file now (it is expanded once, at load)"),
                            );
                        } else {
                            report.push(
                                Severity::Note,
                                jail,
                                "logpath",
                                Some(&line.origin),
                                format!("{path} does not exist now (Fail2Ban refuses to start; portcullis waits for it)"),
                            );
                            sources.push(SourceSpec::File {
                                path: absolute(path),
                            });
                        }
                    } else if has_magic(path) {
                        report.push(
                            Severity::Approximated,
                            jail,
                            "logpath",
                            Some(&line.origin),
                            format!("{path}: glob expanded at load to {} file(s); files created later are not picked up", found.len()),
                        );
                    }
                    for p in found {
                        let spec = SourceSpec::File {
                            path: absolute(&p.display().to_string()),
                        };
                        if !sources.contains(&spec) {
                            sources.push(spec);
                        }
                    }
                }
            }
            other => {
                report.push(
                    Severity::NotCarried,
                    jail,
                    "backend",
                    backend_value.as_ref().map(|v| &v.origin),
                    format!("backend {other:?} is unknown; jail left out"),
                );
                return Ok(Outcome::Skipped);
            }
        }
        if sources.is_empty() {
            report.push(
                Severity::NotCarried,
                jail,
                "logpath",
                None,
                "no log file found: jail left out (Fail2Ban refuses to start it too)",
            );
            return Ok(Outcome::Skipped);
        }

        // Policy.
        let mut config = JailConfig::new(self.name);
        let maxretry_value = self.get("maxretry")?;
        let maxretry = match &maxretry_value {
            Some(v) => v.text.trim().parse::<u32>().map_err(|_| {
                self.invalid(
                    v,
                    "maxretry",
                    format!("expected a whole number, found {:?}", v.text),
                )
            })?,
            None => 3,
        };
        config.maxretry = Weight(maxretry.max(1).saturating_mul(Weight::ONE.0));
        let findtime = match self.seconds("findtime")? {
            Some((s, _)) if s >= 1.0 => Duration::from_secs_f64(s),
            Some((_, v)) => {
                return Err(self.invalid(&v, "findtime", "must be at least one second"));
            }
            None => Duration::from_secs(600),
        };
        config.findtime = findtime;
        self.ban_policy(&mut config, history, report)?;
        // portcullis extras that change which addresses get banned are off, so an imported
        // jail bans exactly as Fail2Ban would.
        config.v6_net_threshold = None;
        config.protect_after_success = None;
        // Nor the slow signals (long window, distinct user names): Fail2Ban has neither, so
        // an imported jail leaves them unset; add slow_maxretry/max_users by hand to get them.
        config.long_window = None;
        config.max_users = None;
        config.allowlist = self.allowlist(options, report)?;

        let ignorecommand = match self.get("ignorecommand")? {
            Some(v) if !v.text.trim().is_empty() => {
                let argv =
                    shell_words(v.text.trim()).map_err(|m| self.invalid(&v, "ignorecommand", m))?;
                report.push(
                    Severity::NotCarried,
                    jail,
                    "ignorecommand",
                    Some(&v.origin),
                    format!("portcullis does not run ignore commands (argv recorded, never a shell: {argv:?}); allowlist the addresses instead"),
                );
                Some(argv)
            }
            _ => None,
        };
        let actions = self.actions(report)?;
        self.report_unhandled(report);

        let recidive = if filter_name == "recidive" {
            Some(Recidive {
                maxretry,
                findtime,
                permanent: config.permanent_after == Some(1),
                bantime: config.bantime,
                origin: Some(filter_value.origin.clone()),
            })
        } else {
            None
        };
        let spec = JailSpec {
            name: self.name.to_owned(),
            config,
            filter: FilterRef::Fail2Ban {
                path: filter_path,
                args: args.clone(),
            },
            filter_at: Location {
                file: filter_value.origin.file.display().to_string(),
                line: filter_value.origin.line,
                key: format!("jail.{}.filter", self.name),
            },
            sources,
        };
        let details = ImportedJail {
            name: self.name.to_owned(),
            filter,
            backend,
            actions,
            ignorecommand,
        };
        Ok(Outcome::Enabled(
            Box::new(spec),
            Box::new(details),
            recidive,
        ))
    }

    /// bantime, bantime.* → bantime, factor, maxtime, permanent_after, history.
    fn ban_policy(
        &self,
        config: &mut JailConfig,
        history: Duration,
        report: &mut Report,
    ) -> Result<(), LoadError> {
        let jail = Some(self.name);
        let (bantime, bantime_value) = match self.seconds("bantime")? {
            Some((s, v)) => (s, Some(v)),
            None => (600.0, None),
        };
        let increment = self
            .get("bantime.increment")?
            .is_some_and(|v| as_bool(&v.text));
        let maxtime = match self.seconds("bantime.maxtime")? {
            Some((s, _)) if s >= 1.0 => Some(Duration::from_secs_f64(s)),
            Some((_, v)) => {
                return Err(self.invalid(&v, "bantime.maxtime", "must be at least one second"));
            }
            None => None,
        };
        config.history = history;
        config.permanent_after = None;
        if bantime < 0.0 {
            // Every ban is permanent.
            config.permanent_after = Some(1);
            config.bantime = UNBOUNDED_BAN;
            config.maxtime = UNBOUNDED_BAN;
            config.factor = 1.0;
            report.push(
                Severity::Note,
                jail,
                "bantime",
                bantime_value.as_ref().map(|v| &v.origin),
                "negative: every ban is permanent (until `portcullis unban`)",
            );
            return Ok(());
        }
        config.bantime = Duration::from_secs_f64(bantime.max(1.0));
        if !increment {
            config.factor = 1.0;
            config.maxtime = config.bantime;
            return Ok(());
        }
        let factor_value = self
            .get("bantime.factor")?
            .filter(|v| !v.text.trim().is_empty());
        let ban_factor = match &factor_value {
            Some(v) => match v.text.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && f > 0.0 => f,
                _ => {
                    // Fail2Ban evaluates it as a Python expression; only numbers are read here.
                    report.push(
                        Severity::Approximated,
                        jail,
                        "bantime.factor",
                        Some(&v.origin),
                        format!("{:?} is not a plain positive number; 1 is used", v.text),
                    );
                    1.0
                }
            },
            None => 1.0,
        };
        let multipliers = self
            .get("bantime.multipliers")?
            .filter(|v| !v.text.trim().is_empty());
        let formula = self
            .get("bantime.formula")?
            .filter(|v| !v.text.trim().is_empty());
        let (factor, cap) = if let Some(m) = &multipliers {
            let values: Vec<f64> = m
                .text
                .split_whitespace()
                .map(|x| {
                    x.parse::<f64>().map_err(|_| {
                        self.invalid(
                            m,
                            "bantime.multipliers",
                            format!("expected whole numbers, found {x:?}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            // Fail2Ban: ban n (n >= 2) lasts bantime × factor × multipliers[min(n-1, last)].
            let (factor, exact) = geometric(&values, ban_factor);
            let last = values.last().copied().unwrap_or(1.0) * ban_factor;
            if !exact {
                report.push(
                    Severity::Approximated,
                    jail,
                    "bantime.multipliers",
                    Some(&m.origin),
                    format!("{:?} is not a geometric series: ban n lasts bantime × {factor:.3}^(n-1), capped at bantime × {last}", m.text),
                );
            }
            (factor, Some(config.bantime.mul_f64(last.max(1.0))))
        } else {
            let text = formula
                .as_ref()
                .map(|f| f.text.split_whitespace().collect::<String>());
            match text.as_deref() {
                None | Some("ban.Time*(1<<(ban.Countifban.Count<20else20))*banFactor") => {
                    if ban_factor != 1.0 {
                        report.push(
                            Severity::Approximated,
                            jail,
                            "bantime.factor",
                            factor_value.as_ref().map(|v| &v.origin),
                            format!("Fail2Ban multiplies every repeated ban by {ban_factor} on top of doubling; portcullis doubles (ban n lasts bantime × 2^(n-1))"),
                        );
                    }
                    (
                        2.0,
                        Some(config.bantime.mul_f64(2f64.powi(20) * ban_factor.max(1.0))),
                    )
                }
                Some("ban.Time*math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)") => {
                    (ban_factor.exp(), None)
                }
                Some(_) => {
                    report.push(
                        Severity::Approximated,
                        jail,
                        "bantime.formula",
                        formula.as_ref().map(|f| &f.origin),
                        "only Fail2Ban's two documented formulas are understood; this one is replaced by doubling (ban n lasts bantime × 2^(n-1))",
                    );
                    (2.0, None)
                }
            }
        };
        config.factor = factor.max(1.0);
        config.maxtime = match (maxtime, cap) {
            (Some(m), Some(c)) => m.min(c),
            (Some(m), None) => m,
            (None, Some(c)) => c.min(UNBOUNDED_BAN),
            (None, None) => UNBOUNDED_BAN,
        }
        .max(config.bantime);
        if maxtime.is_none() {
            report.push(
                Severity::Note,
                jail,
                "bantime.maxtime",
                None,
                format!(
                    "not set: escalated bans are capped at {}s",
                    config.maxtime.as_secs()
                ),
            );
        }
        report.push(
            Severity::Note,
            jail,
            "bantime.increment",
            None,
            format!(
                "bans of an address seen again within dbpurgeage ({}s) escalate",
                history.as_secs()
            ),
        );
        if let Some(v) = self
            .get("bantime.rndtime")?
            .filter(|v| !v.text.trim().is_empty())
        {
            report.push(
                Severity::NotCarried,
                jail,
                "bantime.rndtime",
                Some(&v.origin),
                "portcullis does not add random time to bans",
            );
        }
        if let Some(v) = self
            .get("bantime.overalljails")?
            .filter(|v| as_bool(&v.text))
        {
            report.push(
                Severity::Approximated,
                jail,
                "bantime.overalljails",
                Some(&v.origin),
                "escalation counts this jail's earlier bans of the address, not those of all jails",
            );
        }
        Ok(())
    }

    /// `ignoreip` (+ loopback, which portcullis always allowlists) and `ignoreself`.
    fn allowlist(
        &self,
        options: &ImportOptions,
        report: &mut Report,
    ) -> Result<Vec<IpNet>, LoadError> {
        let jail = Some(self.name);
        let mut list: Vec<IpNet> = JailConfig::new(self.name).allowlist;
        let add = |net: IpNet, list: &mut Vec<IpNet>| {
            let net = net.trunc();
            if !list.contains(&net) {
                list.push(net);
            }
        };
        if let Some(v) = self.get("ignoreip")? {
            for word in split_words(&v.text) {
                if let Ok(addr) = word.parse::<IpAddr>() {
                    add(IpNet::from(addr), &mut list);
                } else if let Ok(net) = word.parse::<IpNet>() {
                    add(net, &mut list);
                } else if word.contains('/') || word.starts_with("file:") {
                    report.push(
                        Severity::NotCarried,
                        jail,
                        "ignoreip",
                        Some(&v.origin),
                        format!("{word:?} is not an address or CIDR network"),
                    );
                } else if options.resolve_hostnames {
                    match (word.as_str(), 0u16).to_socket_addrs() {
                        Ok(addrs) => {
                            let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                            for a in &addrs {
                                add(IpNet::from(*a), &mut list);
                            }
                            report.push(Severity::Approximated, jail, "ignoreip", Some(&v.origin), format!("host name {word} resolved once, at load, to {addrs:?} (Fail2Ban resolves it at each check)"));
                        }
                        Err(e) => report.push(
                            Severity::NotCarried,
                            jail,
                            "ignoreip",
                            Some(&v.origin),
                            format!("host name {word} does not resolve ({e}); not allowlisted"),
                        ),
                    }
                } else {
                    report.push(Severity::NotCarried, jail, "ignoreip", Some(&v.origin), format!("host name {word} not resolved (resolution off); allowlist its addresses instead"));
                }
            }
        }
        let ignoreself = self.get("ignoreself")?;
        if ignoreself.as_ref().is_none_or(|v| as_bool(&v.text)) {
            // The daemon allowlists the host's own addresses itself (as ignoreself does).
        } else if let Some(v) = ignoreself {
            report.push(
                Severity::NotCarried,
                jail,
                "ignoreself",
                Some(&v.origin),
                "false: portcullis always allowlists loopback and the host's own addresses",
            );
        }
        Ok(list)
    }

    /// `action` (usually `%(action_)s` = `%(banaction)s[…]`) mapped to our backends.
    fn actions(&self, report: &mut Report) -> Result<Vec<JailAction>, LoadError> {
        let jail = Some(self.name);
        let Some(value) = self.get("action")? else {
            return Ok(Vec::new());
        };
        let mut actions = Vec::new();
        let mut ports_noted = false;
        for item in split_references(&value.text) {
            let r = parse_reference(&item).map_err(|m| self.invalid(&value, "action", m))?;
            let name = r.name.trim().to_owned();
            let mapping = map_action(&name);
            match &mapping {
                ActionMapping::Firewall(backend) => {
                    let approximated = name.starts_with("iptables") && !name.starts_with("iptables-ipset");
                    report.push(
                        if approximated { Severity::Approximated } else { Severity::Note },
                        jail,
                        "action",
                        Some(&value.origin),
                        format!(
                            "{name}: banned with portcullis's {} backend{}",
                            backend_name(*backend),
                            if approximated { " (one ipset set and one iptables rule instead of a rule per address)" } else { "" }
                        ),
                    );
                    let port = r.arg("port").unwrap_or("");
                    if !ports_noted && !name.ends_with("allports") && !port.is_empty() && port != "0:65535" {
                        ports_noted = true;
                        report.push(Severity::Approximated, jail, "port", Some(&value.origin), format!("port={port}: portcullis drops all traffic from a banned address, not only these ports"));
                    }
                }
                ActionMapping::Nothing => {}
                ActionMapping::NotImplemented => report.push(
                    Severity::NotCarried,
                    jail,
                    "action",
                    Some(&value.origin),
                    format!("{name} is not implemented by portcullis (bans still go to portcullis's firewall; use [notify] hooks for messages)"),
                ),
            }
            actions.push(JailAction {
                name,
                args: r.args,
                mapping,
            });
        }
        Ok(actions)
    }

    /// Keys the jail section sets itself that this import does not read.
    fn report_unhandled(&self, report: &mut Report) {
        let Some(section) = self.set.section(self.name) else {
            return;
        };
        for (key, value) in section.iter() {
            if HANDLED_KEYS.contains(&key)
                || FILTER_OPTIONS.contains(&key)
                || key.starts_with("known/")
            {
                continue;
            }
            report.push(
                Severity::NotCarried,
                Some(self.name),
                key,
                Some(&value.origin),
                "not used by portcullis",
            );
        }
    }
}

/// Python's `_as_bool` for config values.
fn as_bool(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

fn synthetic_origin() -> Origin {
    Origin {
        file: Arc::from(Path::new("<default>")),
        line: 0,
    }
}

fn absolute(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// The growth factor of `multipliers` (ban n ≥ 2 lasts bantime × f × m[n-1]): exact when
/// `f == 1`, `m[0] == 1` and every multiplier up to the last is `r^i`.
fn geometric(m: &[f64], f: f64) -> (f64, bool) {
    if m.len() < 2 {
        return (f.max(1.0), m.first().is_none_or(|&x| x * f == 1.0));
    }
    let ratio = m[1] / m[0].max(1.0);
    let exact = f == 1.0
        && m[0] == 1.0
        && m.iter()
            .enumerate()
            .all(|(i, &x)| (x - ratio.powi(i as i32)).abs() < 1e-9);
    if exact {
        return (ratio, true);
    }
    let last = m[m.len() - 1] * f;
    ((last.max(1.0)).powf(1.0 / (m.len() - 1) as f64), false)
}

/// Fail2Ban action name → what portcullis does.
fn map_action(name: &str) -> ActionMapping {
    match name {
        "nftables" | "nftables-multiport" | "nftables-allports" => {
            ActionMapping::Firewall(Backend::Nft)
        }
        "iptables-ipset"
        | "iptables-ipset-proto4"
        | "iptables-ipset-proto6"
        | "iptables-ipset-proto6-allports" => ActionMapping::Firewall(Backend::Ipset),
        "iptables"
        | "iptables-multiport"
        | "iptables-allports"
        | "iptables-new"
        | "iptables-multiport-log" => ActionMapping::Firewall(Backend::Ipset),
        "dummy" => ActionMapping::Nothing,
        _ => ActionMapping::NotImplemented,
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Auto => "auto",
        Backend::Nft => "nftables",
        Backend::Ipset => "ipset",
        Backend::None => "none",
    }
}

/// One firewall backend for all jails: the one every mapped ban action agrees on, else auto.
fn choose_backend(
    jails: &[(JailSpec, ImportedJail, Option<Recidive>)],
    report: &mut Report,
) -> Backend {
    let mut seen: Vec<Backend> = Vec::new();
    for (_, details, _) in jails {
        for a in &details.actions {
            if let ActionMapping::Firewall(b) = a.mapping
                && !seen.contains(&b)
            {
                seen.push(b);
            }
        }
    }
    match seen.as_slice() {
        [one] => *one,
        [] => Backend::Auto,
        _ => {
            report.push(
                Severity::Approximated,
                None,
                "banaction",
                None,
                "jails use both nftables and iptables actions; portcullis uses one backend for all (auto: nftables when it works)",
            );
            Backend::Auto
        }
    }
}

/// The `recidive` jail reads Fail2Ban's own log (which portcullis does not write): it is
/// not run, and its policy becomes every other jail's escalation: the `maxretry`-th ban of
/// an address within its `findtime` is permanent.
fn apply_recidive(
    jails: &mut Vec<(JailSpec, ImportedJail, Option<Recidive>)>,
    report: &mut Report,
) {
    let Some(index) = jails.iter().position(|j| j.2.is_some()) else {
        return;
    };
    let (spec, _, recidive) = jails.remove(index);
    let Some(r) = recidive else { return };
    let others: Vec<String> = jails.iter().map(|j| j.0.name.clone()).collect();
    for (spec, _, _) in jails.iter_mut() {
        let c = &mut spec.config;
        c.permanent_after = Some(match c.permanent_after {
            Some(p) => p.min(r.maxretry.max(1)),
            None => r.maxretry.max(1),
        });
        c.history = c.history.max(r.findtime);
    }
    let how = if r.permanent {
        "exact for bans within one jail".to_owned()
    } else {
        format!(
            "Fail2Ban's recidive ban lasts {}s; portcullis makes it permanent (until `portcullis unban`)",
            r.bantime.as_secs()
        )
    };
    report.push(
        Severity::Approximated,
        Some(&spec.name),
        "recidive",
        r.origin.as_ref(),
        format!(
            "not run as a jail (it reads fail2ban.log, which portcullis does not write); instead in {others:?} the {}th ban of an address within {}s is permanent; {how}; bans are counted per jail, not across jails",
            r.maxretry,
            r.findtime.as_secs()
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_mapping() {
        assert_eq!(
            map_action("nftables-multiport"),
            ActionMapping::Firewall(Backend::Nft)
        );
        assert_eq!(
            map_action("iptables-ipset-proto6"),
            ActionMapping::Firewall(Backend::Ipset)
        );
        assert_eq!(
            map_action("firewallcmd-ipset"),
            ActionMapping::NotImplemented
        );
        assert_eq!(map_action("sendmail-whois"), ActionMapping::NotImplemented);
        assert_eq!(map_action("dummy"), ActionMapping::Nothing);
    }

    #[test]
    fn multipliers_are_geometric_or_approximated() {
        assert_eq!(
            geometric(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0], 1.0),
            (2.0, true)
        );
        let (f, exact) = geometric(&[1.0, 5.0, 30.0, 60.0, 300.0, 720.0, 1440.0, 2880.0], 1.0);
        assert!(!exact);
        assert!((f - 2880f64.powf(1.0 / 7.0)).abs() < 1e-9);
    }
}
