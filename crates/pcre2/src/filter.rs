//! A Fail2Ban filter: `prefregex`, `failregex`, `ignoreregex`, `maxlines`, `datepattern`,
//! multi-line failure ids (`<F-MLFID>`) and their `nofail`/`forget`/`gained` flags.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use portcullis_core::Time;
use portcullis_core::filter::{Captures, Pattern};

use crate::date::{DateDetector, DatePatternError};
use crate::pattern::{
    CompileError, DEFAULT_MATCH_LIMIT, PatternOptions, RegexPattern, SearchError, Spans,
};
use crate::tags::{UseDns, expand_tags, python_to_pcre2};

/// At most this many multi-line failure ids are remembered (Fail2Ban: 100).
const MLFID_CACHE: usize = 100;
/// A line without a date reuses the previous line's date if that is at most this old.
const LAST_DATE_MAX_AGE: Duration = Duration::from_secs(60);

/// The settings of a filter, as read from a `filter.d` file (after interpolation).
#[derive(Clone, Debug)]
pub struct FilterOptions {
    /// Matched first; its `<F-CONTENT>` (if any) is what the failregexes see.
    pub prefregex: Option<String>,
    /// Failure patterns, each with a host (or failure id) tag.
    pub failregex: Vec<String>,
    /// A failure whose lines match one of these is dropped.
    pub ignoreregex: Vec<String>,
    /// Lines buffered for multi-line patterns (`maxlines`, ≥ 1).
    pub maxlines: usize,
    /// `datepattern` (one template per line); `None` = built-in templates.
    pub datepattern: Option<String>,
    /// `logtimezone`: zone of dates that carry none (`None` = local time).
    pub logtimezone: Option<String>,
    /// Whether `<HOST>` may match host names.
    pub usedns: UseDns,
    /// Journal matches (`journalmatch`), kept for the journal source.
    pub journalmatch: Vec<String>,
    /// Backtracking bound per search (see [`crate::DEFAULT_MATCH_LIMIT`]).
    pub match_limit: u32,
    /// Report every failregex that matches a line (Fail2Ban's test mode), not just the first.
    pub check_all: bool,
}

impl Default for FilterOptions {
    fn default() -> FilterOptions {
        FilterOptions {
            prefregex: None,
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            maxlines: 1,
            datepattern: None,
            logtimezone: None,
            usedns: UseDns::default(),
            journalmatch: Vec::new(),
            match_limit: DEFAULT_MATCH_LIMIT,
            check_all: false,
        }
    }
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A regex did not compile.
    #[error("{which}: {source}")]
    Regex {
        /// `failregex[2]`, `prefregex`, …
        which: String,
        /// The engine's complaint.
        #[source]
        source: CompileError,
    },
    /// A failregex names no host, address or failure id (and the prefregex neither).
    #[error("failregex[{0}] has no failure-id group (<HOST>, <ADDR>, <F-ID>, … or <F-MLFID>)")]
    NoFailureId(usize),
    /// No failregex at all.
    #[error("the filter has no failregex")]
    NoFailRegex,
    /// `maxlines` is zero.
    #[error("maxlines must be at least 1")]
    MaxLines,
    /// The date pattern or time zone is unusable.
    #[error(transparent)]
    Date(#[from] DatePatternError),
}

/// A value captured or accumulated for a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Captured text.
    Text(String),
    /// User names seen on one multi-line failure id.
    Users(BTreeSet<String>),
    /// Original log lines that make up the failure.
    Lines(Vec<String>),
    /// An internal marker (pending failure).
    Flag,
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Text(s) => !s.is_empty(),
            Value::Users(u) => !u.is_empty(),
            Value::Lines(l) => !l.is_empty(),
            Value::Flag => true,
        }
    }
}

/// Named values of one failure (groups of the patterns plus `matches`, `users`, …).
pub type Fields = BTreeMap<String, Value>;

/// One failure (or pending/`nofail` match) found in a line.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Index of the failregex that matched.
    pub regex: usize,
    /// The failure id: the normalised address, or the text of `<F-ID>`/host name; `None`
    /// while a multi-line failure is still waiting for its address.
    pub id: Option<String>,
    /// The address when the id is one (what a jail bans).
    pub addr: Option<IpAddr>,
    /// Time of the line, `None` if it had none.
    pub time: Option<Time>,
    /// Captured and accumulated values (`user`, `users`, `matches`, custom `F-` fields).
    pub fields: Fields,
}

impl Failure {
    /// Not a failure: a `<F-NOFAIL>` match or a pending multi-line id.
    pub fn is_nofail(&self) -> bool {
        self.id.is_none() || self.fields.get("nofail").is_some_and(Value::truthy)
    }

    /// A captured text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.fields.get(name) {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
}

/// What one line produced.
#[derive(Debug, Default)]
pub struct LineResult {
    /// Failures (and no-fail matches), in failregex order.
    pub failures: Vec<Failure>,
    /// Index of an ignoreregex that dropped a match.
    pub ignored: Option<usize>,
    /// Index of the first failregex that matched, whatever came of it (a failure, a
    /// `nofail` or pending multi-line match, a match an ignoreregex dropped).
    pub matched: Option<usize>,
    /// Searches that failed (match limit); the line still went through the other patterns.
    pub errors: Vec<SearchError>,
}

/// One compiled Fail2Ban pattern with its group names.
#[derive(Clone, Debug)]
struct F2bRegex {
    pattern: RegexPattern,
    /// The pattern as written, with tags (for display).
    source: String,
    /// Named groups by index (shared names: every match hands them out).
    names: Vec<(usize, Arc<str>)>,
    /// `alt_NAME[_N]` groups: (group name, field it stands in for), sorted.
    alts: Vec<(Arc<str>, Arc<str>)>,
    skiplines: Vec<usize>,
    /// Capture buffer reused by every search of this pattern (no allocation per line).
    caps: Spans,
    /// One of these occurs in every match (see [`crate::literal`]); `None` = unknown.
    literals: Option<Vec<String>>,
}

impl F2bRegex {
    fn new(src: &str, dns: UseDns, opts: PatternOptions) -> Result<F2bRegex, CompileError> {
        let expanded = python_to_pcre2(&expand_tags(src, dns));
        let pattern = RegexPattern::with_options(&expanded, opts)?;
        let names: Vec<(usize, Arc<str>)> = pattern
            .capture_names()
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_deref().map(|n| (i, Arc::from(n))))
            .collect();
        let mut alts: Vec<(Arc<str>, Arc<str>)> = names
            .iter()
            .filter_map(|(_, n)| {
                let rest = n.strip_prefix("alt_")?;
                let base = match rest.rsplit_once('_') {
                    Some((b, d)) if !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) => b,
                    _ => rest,
                };
                (!base.is_empty())
                    .then(|| (Arc::clone(n), Arc::from(crate::tags::field_name(base))))
            })
            .collect();
        alts.sort();
        let skiplines = names
            .iter()
            .filter(|(_, n)| n.starts_with("skiplines"))
            .map(|(i, _)| *i)
            .collect();
        let caps = pattern.spans();
        let literals = crate::literal::required_literals(&expanded);
        Ok(F2bRegex {
            pattern,
            source: src.to_owned(),
            names,
            alts,
            skiplines,
            caps,
            literals,
        })
    }

    fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|(_, n)| &**n == name)
    }

    /// The named groups of the last successful search of `buf`, `None` for those that
    /// did not take part.
    fn groups(&self, buf: &str) -> Vec<(Arc<str>, Option<String>)> {
        let caps = &self.caps;
        let mut g: Vec<(Arc<str>, Option<String>)> = self
            .names
            .iter()
            .map(|(i, n)| {
                (
                    Arc::clone(n),
                    caps.get(*i).map(|(a, b)| buf[a..b].to_owned()),
                )
            })
            .collect();
        for (k, n) in &self.alts {
            let v = g.iter().find(|(x, _)| x == k).and_then(|(_, v)| v.clone());
            let Some(v) = v.filter(|v| !v.is_empty()) else {
                continue;
            };
            match g.iter_mut().find(|(x, _)| x == n) {
                Some((_, cur)) if cur.as_deref().is_some_and(|c| !c.is_empty()) => {}
                Some((_, cur)) => *cur = Some(v),
                None => g.push((Arc::clone(n), Some(v))),
            }
        }
        g
    }
}

/// A buffered line: its text without the date, and the whole original line.
#[derive(Clone, Debug)]
struct Line {
    text: String,
    full: String,
}

fn join(lines: &[Line]) -> String {
    let mut s = String::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
    for l in lines {
        s.push_str(&l.text);
        s.push('\n');
    }
    s
}

/// Which buffered lines a match covers: (matched, unmatched) as Fail2Ban splits them.
fn split_lines(
    buf: &str,
    span: (usize, usize),
    org: &[Line],
    skipped: &[String],
) -> (Vec<Line>, Vec<Line>) {
    if org.len() <= 1 {
        return (org.to_vec(), Vec::new());
    }
    let b = buf.as_bytes();
    let upto = (span.0 + 1).min(b.len());
    let line_start = b[..upto]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let from = span.1.saturating_sub(1);
    let line_end = b[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| from + p + 1);
    let c1 = b[..line_start]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .min(org.len());
    let c2 = b[..line_end]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        .clamp(c1, org.len());
    let mut matched = org[c1..c2].to_vec();
    let mut unmatched = org[..c1].to_vec();
    let mut n = 0;
    for s in skipped {
        if let Some(m) = matched[n.min(matched.len())..]
            .iter()
            .position(|l| &l.text == s)
        {
            unmatched.push(matched.remove(n + m));
            n += m;
        }
    }
    unmatched.extend_from_slice(&org[c2..]);
    (matched, unmatched)
}

/// A compiled Fail2Ban filter with its per-source state (line buffer, last date,
/// multi-line failure ids). One per log source.
#[derive(Debug)]
pub struct Fail2BanFilter {
    prefregex: Option<F2bRegex>,
    failregex: Vec<F2bRegex>,
    ignoreregex: Vec<F2bRegex>,
    maxlines: usize,
    check_all: bool,
    dates: DateDetector,
    journalmatch: Vec<String>,
    buffer: Vec<Line>,
    /// Time of the last line that had a date (lines without one reuse it briefly).
    last_date: Option<Time>,
    mlfid: HashMap<String, Fields>,
    mlfid_order: VecDeque<String>,
    /// Required literals of all failregexes in one automaton; `None` when a failregex has
    /// none or `maxlines > 1` (then every pattern is tried on every line).
    prefilter: Option<Prefilter>,
    /// Per failregex: whether its literals occur in the current line (all `true`
    /// without a prefilter). Reused across lines.
    possible: Vec<bool>,
}

/// The failregexes' required literals in one Aho-Corasick automaton: a line in which no
/// literal of a pattern occurs cannot match that pattern, so PCRE2 never sees it.
///
/// The scan is leftmost-longest (which lets the automaton use its SIMD prefilter, unlike
/// an overlapping scan) and restarts one byte after each match start, so it visits every
/// position where some literal starts. All literals starting there are prefixes of the
/// longest one reported, so a match marks the owners of the literal and of its prefixes.
#[derive(Clone, Debug)]
struct Prefilter {
    automaton: AhoCorasick,
    /// Per automaton pattern id: the failregexes owning that literal or one of its
    /// prefixes (equal literals included).
    owners: Vec<Vec<usize>>,
}

impl Prefilter {
    fn new(failregex: &[F2bRegex]) -> Option<Prefilter> {
        let mut literals = Vec::new();
        let mut owner = Vec::new();
        for (i, r) in failregex.iter().enumerate() {
            for l in r.literals.as_ref()? {
                literals.push(l.as_str());
                owner.push(i);
            }
        }
        Prefilter::from_literals(&literals, &owner)
    }

    /// `literals[k]` is required by failregex `owner[k]`.
    fn from_literals(literals: &[&str], owner: &[usize]) -> Option<Prefilter> {
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(literals)
            .ok()?;
        let owners = literals
            .iter()
            .map(|l| {
                let mut o: Vec<usize> = literals
                    .iter()
                    .zip(owner)
                    .filter(|(p, _)| l.starts_with(**p))
                    .map(|(_, &i)| i)
                    .collect();
                o.sort_unstable();
                o.dedup();
                o
            })
            .collect();
        Some(Prefilter { automaton, owners })
    }

    /// Marks in `possible` the failregexes whose literals occur in `text`; whether any.
    fn scan(&self, text: &str, possible: &mut [bool]) -> bool {
        possible.fill(false);
        let mut any = false;
        let mut at = 0;
        while at < text.len() {
            let Some(m) = self.automaton.find(Input::new(text).span(at..text.len())) else {
                break;
            };
            for &i in self
                .owners
                .get(m.pattern().as_usize())
                .map_or(&[][..], Vec::as_slice)
            {
                if let Some(p) = possible.get_mut(i) {
                    *p = true;
                    any = true;
                }
            }
            at = m.start() + 1;
        }
        any
    }
}

impl Fail2BanFilter {
    /// Compile a filter. `local` is the zone of dates without one; `ref_year` the year
    /// used to bound 4-digit years in the built-in templates (the current year).
    pub fn new(
        opts: &FilterOptions,
        local: jiff::tz::TimeZone,
        ref_year: i16,
    ) -> Result<Fail2BanFilter, BuildError> {
        if opts.maxlines == 0 {
            return Err(BuildError::MaxLines);
        }
        if opts.failregex.is_empty() {
            return Err(BuildError::NoFailRegex);
        }
        let single = PatternOptions {
            multi_line: false,
            match_limit: opts.match_limit,
        };
        let multi = PatternOptions {
            multi_line: opts.maxlines > 1,
            ..single
        };
        let build = |src: &str, which: String, o: PatternOptions| {
            F2bRegex::new(src, opts.usedns, o).map_err(|source| BuildError::Regex { which, source })
        };
        let prefregex = match opts.prefregex.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => Some(build(p, "prefregex".into(), single)?),
            None => None,
        };
        const IDS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];
        let mut failregex = Vec::new();
        for (i, r) in opts.failregex.iter().enumerate() {
            let r = build(r, format!("failregex[{i}]"), multi)?;
            let has = |x: &F2bRegex| IDS.iter().any(|g| x.has_group(g));
            if !has(&r) && !prefregex.as_ref().is_some_and(has) {
                return Err(BuildError::NoFailureId(i));
            }
            failregex.push(r);
        }
        let ignoreregex = opts
            .ignoreregex
            .iter()
            .enumerate()
            .map(|(i, r)| build(r, format!("ignoreregex[{i}]"), single))
            .collect::<Result<Vec<_>, _>>()?;
        let dates = DateDetector::new(
            opts.datepattern.as_deref(),
            opts.logtimezone.as_deref(),
            local,
            ref_year,
        )?;
        let prefilter = if opts.maxlines == 1 {
            Prefilter::new(&failregex)
        } else {
            None
        };
        let possible = vec![true; failregex.len()];
        Ok(Fail2BanFilter {
            prefilter,
            possible,
            prefregex,
            failregex,
            ignoreregex,
            maxlines: opts.maxlines,
            check_all: opts.check_all,
            dates,
            journalmatch: opts.journalmatch.clone(),
            buffer: Vec::new(),
            last_date: None,
            mlfid: HashMap::new(),
            mlfid_order: VecDeque::new(),
        })
    }

    /// A fresh filter with the same compiled patterns and date templates and no per-source
    /// state (empty line buffer, no last date, no pending multi-line failures): one per
    /// source, without compiling again.
    pub fn fork(&self) -> Fail2BanFilter {
        Fail2BanFilter {
            prefregex: self.prefregex.clone(),
            failregex: self.failregex.clone(),
            ignoreregex: self.ignoreregex.clone(),
            maxlines: self.maxlines,
            check_all: self.check_all,
            dates: self.dates.clone(),
            journalmatch: self.journalmatch.clone(),
            buffer: Vec::new(),
            last_date: None,
            mlfid: HashMap::new(),
            mlfid_order: VecDeque::new(),
            prefilter: self.prefilter.clone(),
            possible: vec![true; self.failregex.len()],
        }
    }

    /// The failregexes as written (with tags).
    pub fn failregex(&self) -> impl Iterator<Item = &str> {
        self.failregex.iter().map(|r| r.source.as_str())
    }

    /// The ignoreregexes as written.
    pub fn ignoreregex(&self) -> impl Iterator<Item = &str> {
        self.ignoreregex.iter().map(|r| r.source.as_str())
    }

    /// The journal matches of the filter.
    pub fn journalmatch(&self) -> &[String] {
        &self.journalmatch
    }

    /// One log line (without its newline): its date is found with the date templates
    /// (`now` settles dates without a year, and is the time of a line whose template
    /// matches no text, `{NONE}`).
    pub fn process_line(&mut self, line: &str, now: Time) -> LineResult {
        let recent = now.saturating_sub(LAST_DATE_MAX_AGE);
        let mut errors = Vec::new();
        let found = match self.dates.find(line, now) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut date = None;
        let mut cut = None;
        if let Some(m) = found {
            let (s, e) = m.span;
            cut = Some((s, e));
            if s < e {
                if let Some(t) = m.time {
                    self.last_date = Some(t);
                    date = Some(t);
                }
            } else {
                date = Some(match self.last_date {
                    Some(t) if t > recent => t,
                    _ => now,
                });
            }
        }
        // The line without its date: what the patterns see.
        let text = match cut {
            Some((s, e)) if s > 0 && s < e => {
                std::borrow::Cow::Owned(format!("{}{}", &line[..s], &line[e..]))
            }
            Some((s, e)) if s < e => std::borrow::Cow::Borrowed(&line[e..]),
            _ => std::borrow::Cow::Borrowed(line),
        };
        if !self.prefilter_passes(&text) {
            return LineResult {
                errors,
                ..LineResult::default()
            };
        }
        let entry = Line {
            text: text.into_owned(),
            full: line.to_owned(),
        };
        if date.is_none()
            && let Some(t) = self.last_date
            && t > recent
        {
            date = Some(t);
        }
        let mut r = self.find_failures(entry, date);
        errors.append(&mut r.errors);
        r.errors = errors;
        r
    }

    /// One message whose time is already known (a journal record): no date parsing.
    pub fn process_message(&mut self, message: &str, time: Time) -> LineResult {
        if !self.prefilter_passes(message) {
            return LineResult::default();
        }
        self.find_failures(
            Line {
                text: message.to_owned(),
                full: message.to_owned(),
            },
            Some(time),
        )
    }

    /// Runs the literal prefilter over `text` (the line without its date) and records
    /// which failregexes may match. `false` = the line cannot produce a failure and needs
    /// no other work: no failregex can match, and no early ignoreregex check applies.
    /// (A pattern skipped this way is also not searched, so a match-limit fault it might
    /// have hit on this line is not reported.)
    fn prefilter_passes(&mut self, text: &str) -> bool {
        let Some(pf) = &self.prefilter else {
            return true;
        };
        let any = pf.scan(text, &mut self.possible);
        any || self.early_ignore()
    }

    /// Fail2Ban checks the ignoreregexes before the failregexes when there are few of
    /// them compared to the failregexes.
    fn early_ignore(&self) -> bool {
        !self.ignoreregex.is_empty() && self.ignoreregex.len() + 2 < self.failregex.len()
    }

    /// Search `buf` with `r`; on a match the spans are in `r.caps`.
    fn search(r: &mut F2bRegex, buf: &str, errors: &mut Vec<SearchError>) -> bool {
        match r.pattern.captures_at(buf, 0, &mut r.caps) {
            Ok(found) => found,
            Err(e) => {
                errors.push(e);
                false
            }
        }
    }

    /// Fail2Ban's ignore check; on a match in multi-line mode the matched lines leave
    /// the buffer.
    fn ignore_line(
        &mut self,
        buf: &str,
        matched: Option<(&[Line], &[Line])>,
        errors: &mut Vec<SearchError>,
    ) -> Option<usize> {
        let own;
        let buf = match matched {
            Some((m, _)) if self.maxlines > 1 => {
                own = join(m);
                own.as_str()
            }
            _ => buf,
        };
        let mut found = None;
        for i in 0..self.ignoreregex.len() {
            if Self::search(&mut self.ignoreregex[i], buf, errors) {
                found = Some(i);
                if (!self.check_all || self.maxlines > 1)
                    && let Some((_, unmatched)) = matched
                {
                    self.buffer = unmatched.to_vec();
                }
                if !self.check_all {
                    break;
                }
            }
        }
        found
    }

    fn find_failures(&mut self, entry: Line, date: Option<Time>) -> LineResult {
        let mut out = LineResult::default();
        let mut errors = Vec::new();
        if self.maxlines > 1 {
            self.buffer.push(entry);
            let excess = self.buffer.len().saturating_sub(self.maxlines);
            self.buffer.drain(..excess);
        } else {
            self.buffer.clear(); // keeps its allocation
            self.buffer.push(entry);
        }
        let mut org = self.buffer.clone();
        // Shared, so that each pattern's search borrows it without copying the text.
        let mut buf: Option<Rc<String>> = Some(Rc::new(join(&org)));

        if self.early_ignore() {
            let b = buf.clone().unwrap_or_default();
            if let Some(i) = self.ignore_line(&b, None, &mut errors) {
                out.ignored = Some(i);
                out.errors = errors;
                return out;
            }
        }

        let mut pre: Vec<(Arc<str>, Option<String>)> = Vec::new();
        if let Some(p) = &mut self.prefregex {
            let b = buf.clone().unwrap_or_default();
            if !Self::search(p, &b, &mut errors) {
                out.errors = errors;
                return out;
            }
            pre = p.groups(&b);
            let content = pre
                .iter()
                .position(|(n, _)| &**n == "content")
                .map(|i| pre.remove(i).1);
            if let Some(Some(c)) = content.filter(|c| c.as_deref().is_some_and(|c| !c.is_empty())) {
                self.buffer.clear();
                self.buffer.push(Line {
                    text: c.clone(),
                    full: c,
                });
                buf = None;
            }
        }

        for idx in 0..self.failregex.len() {
            if !self.possible.get(idx).copied().unwrap_or(true) {
                continue; // none of its required literals is in the line
            }
            let b = match &buf {
                Some(b) => Rc::clone(b),
                None => {
                    let b = Rc::new(join(&self.buffer));
                    buf = Some(Rc::clone(&b));
                    b
                }
            };
            let r = &mut self.failregex[idx];
            if !Self::search(r, &b, &mut errors) {
                continue;
            }
            out.matched.get_or_insert(idx);
            let groups = r.groups(&b);
            let caps = &r.caps;
            let skipped: Vec<String> = r
                .skiplines
                .iter()
                .filter_map(|&i| caps.get(i).map(|(x, y)| b[x..y].to_owned()))
                .flat_map(|s| s.lines().map(str::to_owned).collect::<Vec<_>>())
                .collect();
            let span = caps.get(0).unwrap_or((0, 0));
            let (matched, unmatched) = if org.len() <= 1 {
                // One line: it is the match. Without `check_all` this is the last
                // failregex tried, so the snapshot can be handed over.
                (
                    if self.check_all {
                        org.clone()
                    } else {
                        std::mem::take(&mut org)
                    },
                    Vec::new(),
                )
            } else {
                split_lines(&b, span, &org, &skipped)
            };
            let first_id_group = ["fid", "ip4", "ip6", "dns"].iter().find_map(|g| {
                groups
                    .iter()
                    .find(|(n, v)| &**n == *g && v.is_some())
                    .and_then(|(_, v)| v.clone())
            });

            let ignored = if self.ignoreregex.is_empty() {
                None
            } else {
                self.ignore_line(&b, Some((&matched, &unmatched)), &mut errors)
            };
            if let Some(i) = ignored {
                out.ignored = Some(i);
                buf = None;
                if !self.check_all {
                    break;
                }
                continue;
            }
            if !self.check_all || self.maxlines > 1 {
                self.buffer = unmatched;
                buf = None;
            }
            let mut fail: Fields = BTreeMap::new();
            // The prefregex groups are needed again only when every failregex is tried.
            let pre_groups = if self.check_all {
                pre.clone()
            } else {
                std::mem::take(&mut pre)
            };
            for (k, v) in pre_groups.into_iter().chain(groups) {
                match v {
                    Some(v) => {
                        fail.insert(k.to_string(), Value::Text(v));
                    }
                    None => {
                        fail.remove(&*k);
                    }
                }
            }
            let mlfid = text(&fail, "mlfid").map(str::to_owned);
            let matched_full: Vec<String> = matched.into_iter().map(|l| l.full).collect();
            let mut keep = false;
            if let Some(id) = &mlfid {
                let (merged, k) = self.merge_failure(id, fail, &matched_full);
                fail = merged;
                keep = k;
                if truthy(&fail, "nofail") && !self.check_all {
                    if keep {
                        self.cache_put(id.clone(), fail.clone());
                    }
                    break;
                }
            } else {
                let mut m = match fail.remove("matches") {
                    Some(Value::Lines(l)) => l,
                    _ => Vec::new(),
                };
                m.extend(matched_full);
                fail.insert("matches".into(), Value::Lines(m));
            }
            let fid = text(&fail, "fid").map(str::to_owned);
            let (ip, family, is_dns) = if let Some(ip) = text(&fail, "ip4") {
                (Some(ip.to_owned()), Some(4), false)
            } else if let Some(ip) = text(&fail, "ip6") {
                (Some(ip.to_owned()), Some(6), false)
            } else if let Some(d) = text(&fail, "dns") {
                (Some(d.to_owned()), None, true)
            } else if fid.is_none() && mlfid.is_none() {
                (first_id_group.clone(), None, false)
            } else {
                (fid.clone(), None, false)
            };
            let cidr = text(&fail, "cidr").and_then(|c| c.parse::<u8>().ok());
            let (id, addr) = match ip {
                None => {
                    fail.insert("mlfpending".into(), Value::Flag);
                    (None, None)
                }
                Some(ip) => {
                    let (norm, addr) = if family.is_some() || is_dns {
                        normalize(&ip, cidr, family)
                    } else {
                        (ip.clone(), ip.parse::<IpAddr>().ok())
                    };
                    match &fid {
                        Some(f) if *f != ip => {
                            fail.insert("ip".into(), Value::Text(norm));
                            (Some(f.clone()), addr)
                        }
                        _ => (Some(norm), addr),
                    }
                }
            };
            if let (Some(m), true) = (&mlfid, keep) {
                self.cache_put(m.clone(), fail.clone());
            }
            out.failures.push(Failure {
                regex: idx,
                id,
                addr,
                time: date,
                fields: fail,
            });
            if !self.check_all {
                break;
            }
        }
        out.errors = errors;
        out
    }

    fn cache_put(&mut self, id: String, fields: Fields) {
        if !self.mlfid.contains_key(&id) {
            if self.mlfid.len() >= MLFID_CACHE
                && let Some(old) = self.mlfid_order.pop_front()
            {
                self.mlfid.remove(&old);
            }
            self.mlfid_order.push_back(id.clone());
        }
        self.mlfid.insert(id, fields);
    }

    fn cache_remove(&mut self, id: &str) {
        self.mlfid.remove(id);
        self.mlfid_order.retain(|x| x != id);
    }

    /// Fail2Ban's multi-line merge. Returns the merged failure and whether it stays cached
    /// (the caller then stores it with [`Self::cache_put`]).
    fn merge_failure(&mut self, id: &str, mut fail: Fields, matched: &[String]) -> (Fields, bool) {
        let mut nf = 0u8;
        if truthy(&fail, "mlfgained") {
            nf |= 8 | 1;
            if !truthy(&fail, "nofail")
                && let Some(v) = fail.get("mlfgained").cloned()
            {
                fail.insert("nofail".into(), v);
            }
        } else if truthy(&fail, "nofail") {
            nf |= 1;
        }
        if fail.remove("mlfforget").is_some_and(|v| v.truthy()) {
            nf |= 2;
        }
        let users;
        let keep;
        // Taken out (an empty map stays under the id, keeping its place in the eviction
        // order); the caller stores the merged failure back when it is kept.
        if let Some(mut g) = self.mlfid.get_mut(id).map(std::mem::take) {
            users = update_users(&mut g, text(&fail, "user"));
            if g.remove("nofail").is_some_and(|v| v.truthy()) {
                nf |= 4;
            }
            if g.remove("mlfgained").is_some_and(|v| v.truthy()) {
                nf |= 4;
            }
            if nf & 8 != 0 {
                g.remove("mlfpending");
            }
            if nf & 4 == 0 && !truthy(&g, "mlfpending") {
                g.remove("matches");
            }
            for (k, v) in fail {
                g.insert(k, v);
            }
            fail = g;
            keep = nf & 2 == 0;
            if !keep {
                self.cache_remove(id);
            }
        } else if nf & 2 == 0 {
            let u = text(&fail, "user").map(str::to_owned);
            users = update_users(&mut fail, u.as_deref());
            keep = true;
        } else {
            users = None;
            keep = false;
        }
        if fail.remove("mlfpending").is_some_and(|v| v.truthy()) || users.is_some_and(|n| n > 1) {
            fail.remove("nofail");
            fail.remove("mlfgained");
            nf &= !(8 | 1);
        }
        let lines = |f: &mut Fields, k: &str| match f.remove(k) {
            Some(Value::Lines(l)) => l,
            _ => Vec::new(),
        };
        if nf & 1 == 0 {
            let mut m = lines(&mut fail, "nofail-matches");
            if let Some(Value::Lines(l)) = fail.get("matches") {
                m.extend(l.iter().cloned());
            }
            if nf & 8 == 0 {
                m.extend(matched.iter().cloned());
            }
            fail.insert("matches".into(), Value::Lines(m));
        } else if nf & 3 == 1 {
            let mut m = lines(&mut fail, "nofail-matches");
            m.extend(matched.iter().cloned());
            fail.insert("nofail-matches".into(), Value::Lines(m));
        }
        (fail, keep)
    }
}

fn text<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    match f.get(k) {
        Some(Value::Text(s)) => Some(s),
        _ => None,
    }
}

fn truthy(f: &Fields, k: &str) -> bool {
    f.get(k).is_some_and(Value::truthy)
}

/// Adds `user` to the `users` set; returns the set's size when the set exists.
fn update_users(f: &mut Fields, user: Option<&str>) -> Option<usize> {
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        let entry = f
            .entry("users".into())
            .or_insert_with(|| Value::Users(BTreeSet::new()));
        if let Value::Users(s) = entry {
            s.insert(u.to_owned());
            return Some(s.len());
        }
    }
    match f.get("users") {
        Some(Value::Users(s)) => Some(s.len()),
        _ => None,
    }
}

/// The failure id of an address as Fail2Ban prints it: canonical text, IPv4-mapped IPv6
/// as IPv4, a network as `addr/len`; text that is no address is kept as it is.
pub fn normalize(ip: &str, cidr: Option<u8>, family: Option<u8>) -> (String, Option<IpAddr>) {
    let t = ip
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(ip);
    let parsed: Option<IpAddr> = match family {
        Some(4) => t.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        Some(6) => t.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        _ => t.parse().ok(),
    };
    let Some(addr) = parsed else {
        return (ip.to_owned(), None);
    };
    match (addr, cidr) {
        (IpAddr::V4(a), Some(c)) if c < 32 => {
            let m = u32::from(a) & !(u32::MAX.checked_shr(u32::from(c)).unwrap_or(0));
            let n = std::net::Ipv4Addr::from(m);
            (format!("{n}/{c}"), Some(IpAddr::V4(n)))
        }
        (IpAddr::V6(a), Some(c)) if c < 128 => {
            let m = u128::from(a) & !(u128::MAX.checked_shr(u32::from(c)).unwrap_or(0));
            let n = std::net::Ipv6Addr::from(m);
            (format!("{n}/{c}"), Some(IpAddr::V6(n)))
        }
        (IpAddr::V6(a), None) => match a.to_ipv4_mapped() {
            Some(v4) => (v4.to_string(), Some(IpAddr::V4(v4))),
            None => (a.to_string(), Some(addr)),
        },
        _ => (addr.to_string(), Some(addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_filter(o: FilterOptions) -> Fail2BanFilter {
        Fail2BanFilter::new(&o, jiff::tz::TimeZone::UTC, 2005).unwrap()
    }

    #[test]
    fn host_and_user_from_a_simple_filter() {
        let mut f = utc_filter(FilterOptions {
            failregex: vec![
                r"^\s*Failed password for <F-USER>\S+</F-USER> from <HOST> port \d+".into(),
            ],
            usedns: UseDns::No,
            ..FilterOptions::default()
        });
        let r = f.process_line(
            "Jan 10 07:00:01 Failed password for root from ::ffff:192.0.2.7 port 22",
            Time::from_secs(1_124_013_600),
        );
        assert_eq!(r.failures.len(), 1);
        let x = &r.failures[0];
        assert_eq!(x.id.as_deref(), Some("192.0.2.7"));
        assert_eq!(x.text("user"), Some("root"));
        assert_eq!(x.time, Some(Time::from_secs(1_105_340_401)));
    }

    #[test]
    fn ignoreregex_drops_the_match() {
        let mut f = utc_filter(FilterOptions {
            failregex: vec![r"from <HOST>".into()],
            ignoreregex: vec![r"from 192\.0\.2\.1\b".into()],
            usedns: UseDns::No,
            ..FilterOptions::default()
        });
        assert_eq!(
            f.process_line("x from 192.0.2.1", Time::EPOCH).ignored,
            Some(0)
        );
        assert_eq!(
            f.process_line("x from 192.0.2.2", Time::EPOCH)
                .failures
                .len(),
            1
        );
    }

    /// The literal prefilter never changes a result: Fail2Ban's sshd filter (all modes) over
    /// Fail2Ban's own sshd test log gives the same failures with and without it.
    #[test]
    fn prefilter_changes_no_result() {
        let log = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd";
        let filter = std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf");
        let Ok(text) = std::fs::read_to_string(log) else {
            eprintln!("!!! SKIPPED: {log} missing (apt-get install fail2ban) !!!");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{log} missing in CI"
            );
            return;
        };
        let now = Time::from_secs(1_700_000_000);
        for mode in ["normal", "ddos", "extra", "aggressive"] {
            let o = crate::load_filter(filter, &[("mode".into(), mode.into())]).unwrap();
            let mut fast = Fail2BanFilter::new(&o, jiff::tz::TimeZone::UTC, 2026).unwrap();
            let mut slow = Fail2BanFilter::new(&o, jiff::tz::TimeZone::UTC, 2026).unwrap();
            assert!(
                fast.prefilter.is_some(),
                "sshd's failregexes all have literals"
            );
            slow.prefilter = None;
            let (mut hits, mut skipped) = (0, 0);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let a = fast.process_line(line, now);
                let b = slow.process_line(line, now);
                assert_eq!(a.failures, b.failures, "mode {mode}, line {line:?}");
                assert_eq!(a.ignored, b.ignored, "mode {mode}, line {line:?}");
                hits += a.failures.len();
                skipped += usize::from(!fast.possible.iter().any(|p| *p));
            }
            assert!(
                hits > 50 && skipped > 10,
                "mode {mode}: {hits} failures, {skipped} lines skipped"
            );
        }
    }

    #[test]
    fn prefilter_finds_overlapping_and_nested_literals() {
        let lits = ["invalid user ", " user ", "user", "abc", "bcd", "abc"];
        let pf = Prefilter::from_literals(&lits, &[0, 1, 2, 3, 4, 5]).unwrap();
        let mut possible = vec![false; 6];
        let scan = |text: &str, possible: &mut Vec<bool>| {
            pf.scan(text, possible);
            possible.clone()
        };
        assert_eq!(
            scan("for invalid user x", &mut possible),
            [true, true, true, false, false, false]
        );
        assert_eq!(
            scan("xabcd", &mut possible),
            [false, false, false, true, true, true]
        );
        assert_eq!(
            scan("users", &mut possible),
            [false, false, true, false, false, false]
        );
        assert!(!pf.scan("nothing here", &mut possible));
        assert_eq!(possible, [false; 6]);
    }

    #[test]
    fn normalized_ids() {
        assert_eq!(normalize("2001:DB8::1", None, Some(6)).0, "2001:db8::1");
        assert_eq!(normalize("192.0.2.77", Some(24), Some(4)).0, "192.0.2.0/24");
        assert_eq!(normalize("host.example", None, None).0, "host.example");
    }
}
