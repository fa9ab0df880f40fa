//! The line entry point: raw syslog lines or journal records in, [`Event`]s out.

use std::borrow::Cow;

use super::coalesce::Coalescer;
use super::compile::{Filter, MessageMatch, Scratch};
use super::header::{parse_header, parse_u32};
use super::pattern::{AnyPattern, Pattern};
use crate::date::DateParser;
use crate::event::{Event, parse_addr};
use crate::time::Time;

/// Bytes of a line that are looked at. Longer lines are counted and never matched: a
/// truncated line could end in text a client wrote, so matching it would be unsafe.
pub const MAX_LINE: usize = 8 * 1024;

/// rsyslog cuts the repeated message at 800 bytes (`[%.800s]`); an inner message that
/// long may be cut and is not matched, for the same reason as [`MAX_LINE`].
const REPEATED_MAX_INNER: usize = 800;

/// What became of one line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    /// A rule matched and an event was emitted.
    Matched {
        /// Index of the rule in [`Filter::rules`].
        rule: u16,
    },
    /// A rule matched but an ignore pattern did too.
    Ignored {
        /// Index of the rule that matched.
        rule: u16,
    },
    /// Not for this filter (other program, no header) or no rule matched.
    Unmatched,
    /// For this filter but unusable.
    Bad(BadLine),
}

/// Why a line was bad.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadLine {
    /// Longer than [`MAX_LINE`].
    Oversized,
    /// A `message repeated` line whose inner message may have been cut by rsyslog.
    Truncated,
    /// A rule matched but the address text is not an IP address (e.g. a host name).
    InvalidAddress,
    /// `message repeated N times` with N zero or not a number.
    BadRepeatCount,
    /// The regex engine failed (e.g. a backtracking limit).
    EngineError,
}

/// Counters, for `scan` totals, `status` and `test-filter`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines (or records) fed.
    pub lines: u64,
    /// Lines that produced an event.
    pub matched: u64,
    /// Lines a rule matched but an ignore pattern dropped.
    pub ignored: u64,
    /// Lines no rule matched (including other programs' lines).
    pub unmatched: u64,
    /// Of `unmatched`: lines of programs the filter does not read, or without a header.
    pub other_program: u64,
    /// Lines for this filter that could not be used (see [`BadLine`]).
    pub bad: u64,
    /// Of `bad`: lines longer than [`MAX_LINE`].
    pub oversized: u64,
    /// Lines that were not valid UTF-8 (decoded lossily, still matched).
    pub invalid_utf8: u64,
    /// Lines without a recognised timestamp (the read time was used).
    pub no_timestamp: u64,
    /// Matched `message repeated N times` lines.
    pub repeated: u64,
    /// Matches per rule, indexed like [`Filter::rules`].
    pub rule_hits: Vec<u64>,
}

/// Turns lines into events with one filter: header and timestamp parsing, rule matching,
/// address validation, attempt merging ([`Coalescer`]) and counting.
///
/// One per source (it holds the date parser's cache and the merge state of that source).
#[derive(Debug)]
pub struct LineMatcher<P: Pattern = AnyPattern> {
    filter: Filter<P>,
    dates: DateParser,
    coalescer: Coalescer,
    scratch: Scratch<P>,
    stats: Stats,
    /// When set, attempt merging is left to the caller (see [`LineMatcher::merge_by_caller`]).
    merge_by_caller: bool,
}

impl<P: Pattern> LineMatcher<P> {
    /// A matcher for `filter`, reading timestamps with `dates`.
    pub fn new(filter: Filter<P>, dates: DateParser) -> Result<LineMatcher<P>, P::Error> {
        let scratch = filter.new_scratch()?;
        let stats = Stats {
            rule_hits: vec![0; filter.rules().len()],
            ..Stats::default()
        };
        Ok(LineMatcher {
            filter,
            dates,
            coalescer: Coalescer::new(),
            scratch,
            stats,
            merge_by_caller: false,
        })
    }

    /// Leave attempt merging ([`Coalescer`]) to the caller, so lines can be matched out of
    /// order (for example chunks of a file on several threads) while counts stay exact.
    ///
    /// Then every event of a line that is not `message repeated` has `count` 0, meaning
    /// "not merged yet": the caller must, in log-file order, replace it by
    /// `coalescer.count(rule.merge, ev.pid, ev.addr, ev.time)` with one [`Coalescer`] per
    /// source and `rule = &filter().rules()[ev.rule]`. A `message repeated N times` event
    /// keeps its count N (always ≥ 1), exactly as without this option.
    pub fn merge_by_caller(mut self) -> LineMatcher<P> {
        self.merge_by_caller = true;
        self
    }

    /// A fresh matcher with the same filter, time zone and merge setting (own counters,
    /// date cache and merge state), e.g. one per worker thread.
    pub fn fork(&self) -> Result<LineMatcher<P>, P::Error>
    where
        P: Clone,
    {
        let mut m = LineMatcher::new(self.filter.clone(), self.dates.clone())?;
        m.merge_by_caller = self.merge_by_caller;
        Ok(m)
    }

    /// The filter.
    pub fn filter(&self) -> &Filter<P> {
        &self.filter
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One raw syslog-format line without its newline (a trailing CR is dropped): `TIMESTAMP host program[pid]:
    /// message` (syslog or RFC 3339 timestamp; a line without one gets `read_time`, which
    /// also settles the year of syslog dates). Events are appended to `out`.
    pub fn feed_line(&mut self, line: &[u8], read_time: Time, out: &mut Vec<Event>) -> LineOutcome {
        self.stats.lines += 1;
        // Files written on or copied through Windows end lines with CR LF.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let capped = &line[..line.len().min(MAX_LINE)];
        let (time, rest, dated) = match self.dates.parse_prefix(capped, read_time) {
            Some((t, n)) => (t, capped.get(n..).unwrap_or_default(), true),
            None => (read_time, capped, false),
        };
        let Some(h) = parse_header(rest) else {
            self.stats.other_program += 1;
            return self.unmatched();
        };
        if !self.filter.wants_program(h.program) {
            self.stats.other_program += 1;
            return self.unmatched();
        }
        if !dated {
            self.stats.no_timestamp += 1;
        }
        if line.len() > MAX_LINE {
            self.stats.oversized += 1;
            return self.bad(BadLine::Oversized);
        }
        self.message(time, h.pid, h.message, out)
    }

    /// One journal record: its time (`__REALTIME_TIMESTAMP`), `SYSLOG_IDENTIFIER` (when
    /// `None`, the program is not checked: the source already selected the records), pid
    /// and `MESSAGE`. Events are appended to `out`.
    pub fn feed_record(
        &mut self,
        time: Time,
        program: Option<&str>,
        pid: Option<u32>,
        message: &[u8],
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        self.stats.lines += 1;
        if let Some(p) = program
            && !self.filter.wants_program(p.as_bytes())
        {
            self.stats.other_program += 1;
            return self.unmatched();
        }
        if message.len() > MAX_LINE {
            self.stats.oversized += 1;
            return self.bad(BadLine::Oversized);
        }
        self.message(time, pid, message, out)
    }

    fn message(
        &mut self,
        time: Time,
        pid: Option<u32>,
        raw: &[u8],
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        let text: Cow<'_, str> = match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                self.stats.invalid_utf8 += 1;
                String::from_utf8_lossy(raw)
            }
        };
        let mut message: &str = &text;
        let mut repeat = None;
        if let Some(r) = message.strip_prefix("message repeated ") {
            match split_repeated(r) {
                Some((Some(n), inner)) if inner.len() + 1 < REPEATED_MAX_INNER => {
                    repeat = Some(n);
                    message = inner;
                }
                Some((Some(_), _)) => return self.bad(BadLine::Truncated),
                Some((None, _)) => return self.bad(BadLine::BadRepeatCount),
                None => {}
            }
        }
        let m = match self.filter.match_message(message, &mut self.scratch) {
            Ok(MessageMatch::Matched(m)) => m,
            Ok(MessageMatch::Ignored(rule)) => {
                self.stats.ignored += 1;
                return LineOutcome::Ignored { rule };
            }
            Ok(MessageMatch::None) => return self.unmatched(),
            Err(_) => return self.bad(BadLine::EngineError),
        };
        // Spans come from a byte-oriented engine: slice with `get` (never panics).
        let Some(addr) = message.get(m.host.0..m.host.1).and_then(parse_addr) else {
            return self.bad(BadLine::InvalidAddress);
        };
        let rule = &self.filter.rules()[usize::from(m.rule)];
        let count = match repeat {
            Some(n) => {
                self.stats.repeated += 1;
                n
            }
            None if self.merge_by_caller => 0,
            None => self.coalescer.count(rule.merge, pid, addr, time),
        };
        let field = |span: Option<(usize, usize)>| {
            span.and_then(|(a, b)| message.get(a..b))
                .map(Box::<str>::from)
        };
        out.push(Event {
            time,
            addr,
            kind: rule.kind,
            weight: rule.weight,
            count,
            user: field(m.user),
            method: field(m.method),
            pid,
            rule: m.rule,
        });
        self.stats.matched += 1;
        if let Some(h) = self.stats.rule_hits.get_mut(usize::from(m.rule)) {
            *h += 1;
        }
        LineOutcome::Matched { rule: m.rule }
    }

    fn unmatched(&mut self) -> LineOutcome {
        self.stats.unmatched += 1;
        LineOutcome::Unmatched
    }

    fn bad(&mut self, why: BadLine) -> LineOutcome {
        self.stats.bad += 1;
        LineOutcome::Bad(why)
    }
}

/// `N times: [ X]` → (N, X). `None` if the shape is wrong (then the line is matched as
/// is); `Some((None, _))` if N is not a positive number.
fn split_repeated(r: &str) -> Option<(Option<u32>, &str)> {
    let sp = r.find(' ')?;
    let (digits, rest) = r.split_at(sp);
    let inner = rest.strip_prefix(" times: [")?.strip_suffix(']')?;
    let inner = inner.strip_prefix(' ').unwrap_or(inner);
    let n = parse_u32(digits.as_bytes()).filter(|&n| n > 0);
    Some((n, inner))
}
