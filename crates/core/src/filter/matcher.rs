//! The line entry point: raw syslog lines or journal records in, [`Event`]s out.
//!
//! [`EventMatcher`] is the shape both engines share (this crate's native [`LineMatcher`] and
//! `portcullis-pcre2`'s Fail2Ban matcher). The native matcher is two stages:
//! [`UnmergedMatcher`] (date, header, rules, address; each line on its own, so it may run on
//! worker threads, out of order) and [`AttemptMerger`] (settles how many attempts each event
//! counts for, in log order). [`LineMatcher`] is the two composed.

use std::borrow::Cow;

use super::coalesce::{Coalescer, Merge};
use super::compile::{Filter, MessageMatch, Scratch};
use super::header::{access_time, parse_u32, split_line_rest};
use super::native::RegexPattern;
use super::pattern::Pattern;
use crate::date::DateParser;
use crate::event::{Event, EventKind, parse_addr};
use crate::time::Time;

/// The one long-line cap. Readers keep at most this many bytes of a line (the rest up to the
/// newline is discarded, so memory stays bounded), and a line or journal message of this
/// length or more is counted ([`Stats::oversized`]) and never matched: it may have been cut,
/// and a cut line ends in text a client may have written, so matching it would be unsafe.
pub const MAX_LINE: usize = 16 * 1024;

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
    /// [`MAX_LINE`] bytes or longer (possibly cut by the reader).
    Oversized,
    /// A `message repeated` line whose inner message may have been cut by rsyslog.
    Truncated,
    /// A rule (index `rule`) matched but the address text is not an IP address (e.g. a host
    /// name).
    InvalidAddress {
        /// Index of the rule that matched.
        rule: u16,
    },
    /// `message repeated N times` with N zero or not a number.
    BadRepeatCount,
    /// Rule `rule` matched a message its writer cut (see [`super::cut`]), at an address
    /// client-chosen text may have written: no event.
    Cut {
        /// Index of the rule that matched.
        rule: u16,
    },
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
    /// Of `unmatched`: lines of programs the filter does not read.
    pub other_program: u64,
    /// Of `unmatched`: lines whose prefix (timestamp and `host program[pid]:` header, or
    /// RFC 5424's) is not understood, so no program could be told. Counted, never dropped
    /// silently: `scan` totals, `status`, `test-filter --print-missed`.
    pub unparsed: u64,
    /// Lines for this filter that could not be used (see [`BadLine`]).
    pub bad: u64,
    /// Of `bad`: lines of [`MAX_LINE`] bytes or more.
    pub oversized: u64,
    /// Lines that were not valid UTF-8 (decoded lossily, still matched).
    pub invalid_utf8: u64,
    /// Lines without a recognised timestamp (the read time was used).
    pub no_timestamp: u64,
    /// Matched `message repeated N times` lines.
    pub repeated: u64,
    /// Messages at or past their writer's cut (or file lines at the syslog daemon's), whose
    /// tail may be lost (see [`super::cut`]); the ones a rule matched at an untrusted
    /// address are also `bad`.
    pub cut: u64,
    /// Lines on which a regex search failed (e.g. a backtracking limit); the line still went
    /// through the other patterns.
    pub search_errors: u64,
    /// Matches per rule, indexed like [`Filter::rules`].
    pub rule_hits: Vec<u64>,
}

impl Stats {
    /// Adds `other`'s counts to these (the matchers of several sources or worker threads).
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            lines,
            matched,
            ignored,
            unmatched,
            other_program,
            unparsed,
            bad,
            oversized,
            invalid_utf8,
            no_timestamp,
            repeated,
            cut,
            search_errors,
            rule_hits,
        } = other;
        self.lines += lines;
        self.matched += matched;
        self.ignored += ignored;
        self.unmatched += unmatched;
        self.other_program += other_program;
        self.unparsed += unparsed;
        self.bad += bad;
        self.oversized += oversized;
        self.invalid_utf8 += invalid_utf8;
        self.no_timestamp += no_timestamp;
        self.repeated += repeated;
        self.cut += cut;
        self.search_errors += search_errors;
        if self.rule_hits.len() < rule_hits.len() {
            self.rule_hits.resize(rule_hits.len(), 0);
        }
        for (mine, theirs) in self.rule_hits.iter_mut().zip(rule_hits) {
            *mine += theirs;
        }
    }
}

/// A journal record as filters see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `__REALTIME_TIMESTAMP`: the event time.
    pub time: Time,
    /// `SYSLOG_IDENTIFIER`; `None` when the record has none (then the program is not checked:
    /// the source selected the records by its own matches).
    pub program: Option<&'a [u8]>,
    /// The logging process (`_PID`, else `SYSLOG_PID`): merges the lines of one attempt.
    pub pid: Option<u32>,
    /// `MESSAGE`.
    pub message: &'a [u8],
}

impl Record<'_> {
    /// The record as syslog writes the same message, `IDENT[PID]: MSG` (missing parts left
    /// out), so filters written for files read it too. The one rendering of a record.
    pub fn syslog_line(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.message.len() + 32);
        if let Some(id) = self.program {
            v.extend_from_slice(id);
            if let Some(pid) = self.pid {
                v.push(b'[');
                v.extend_from_slice(pid.to_string().as_bytes());
                v.push(b']');
            }
            v.extend_from_slice(b": ");
        }
        v.extend_from_slice(self.message);
        v
    }
}

/// Turns lines and journal records into [`Event`]s: the shape every filter engine has.
///
/// One matcher per source: it keeps that source's state (date cache, attempt merging,
/// multi-line buffers). Events are appended to `out`; the returned [`LineOutcome`] says what
/// became of the line, and [`stats`](Self::stats) counts every outcome, so no line is
/// dropped unseen.
pub trait EventMatcher {
    /// One raw line without its newline (a trailing CR is dropped); `reference` is when it
    /// was read: the time of a line without a timestamp, and what settles the year of a
    /// syslog date.
    fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome;

    /// One journal record; its own time is the event time.
    fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Event>) -> LineOutcome;

    /// Counters so far.
    fn stats(&self) -> &Stats;

    /// The name of rule `rule` (as in [`Event::rule`]) for `--explain` and hit counts; `"?"`
    /// for an index the filter does not have.
    fn rule_name(&self, rule: u16) -> &str;

    /// End of the input (`scan`, `test-filter`): events the matcher still holds back (a
    /// connection's tentative try waiting for its outcome) are appended to `out`. A daemon's
    /// source never ends, so it never calls this: held tries are released by later lines'
    /// log time instead.
    fn finish(&mut self, out: &mut Vec<Event>) {
        let _ = out;
    }
}

/// An event whose attempt count is not settled yet: the output of [`UnmergedMatcher`], to
/// be passed through [`AttemptMerger::settle`] in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmerged {
    /// Everything but `count`, which [`AttemptMerger::settle`] sets.
    event: Event,
    /// `message repeated N times`: N, counted as is.
    repeat: Option<u32>,
    /// The merge role of the rule that matched.
    merge: Merge,
}

/// Settles attempt counts in log order (see [`Coalescer`]): the in-order stage of the
/// native matcher. One per source, fed every [`Unmerged`] of that source in log order.
#[derive(Debug)]
pub struct AttemptMerger {
    coalescer: Coalescer,
}

impl AttemptMerger {
    /// A merger with nothing pending.
    pub fn new() -> AttemptMerger {
        AttemptMerger {
            coalescer: Coalescer::new(),
        }
    }

    /// Pushes the event with its count to `out`: N for `message repeated N times`, else 1
    /// or 0 (0: another line of the same attempt already counted it, or a tentative try
    /// held until its connection's outcome). Before it, any held tries this line's log time
    /// released (their connection expired without an outcome), one attempt each.
    pub fn settle(&mut self, u: Unmerged, out: &mut Vec<Event>) {
        let Unmerged {
            mut event,
            repeat,
            merge,
        } = u;
        event.count = match repeat {
            Some(n) => n,
            None => self
                .coalescer
                .count(merge, event.pid, event.addr, event.time),
        };
        if event.kind == EventKind::Success {
            self.coalescer.retract(event.pid, event.addr);
        } else if merge == Merge::Tentative && repeat.is_none() {
            self.coalescer.hold(&event);
        }
        self.coalescer.take_released(out);
        out.push(event);
    }

    /// End of the input: pushes every held try to `out` as one attempt (see
    /// [`Coalescer::finish`]).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.coalescer.finish(out);
    }
}

impl Default for AttemptMerger {
    fn default() -> AttemptMerger {
        AttemptMerger::new()
    }
}

/// The per-line stage of the native matcher: header and timestamp parsing, rule matching and
/// address validation, each line on its own. It keeps no state between lines that affects
/// results (only a date cache), so a source's lines may be matched by several forks on
/// worker threads, in any order; their outputs then go through one [`AttemptMerger`] in log
/// order, which gives exactly what one [`LineMatcher`] reading in order gives.
#[derive(Debug)]
pub struct UnmergedMatcher<P: Pattern = RegexPattern> {
    filter: Filter<P>,
    dates: DateParser,
    scratch: Scratch<P>,
    stats: Stats,
}

impl<P: Pattern> UnmergedMatcher<P> {
    /// A matcher for `filter`, reading timestamps with `dates`.
    pub fn new(filter: Filter<P>, dates: DateParser) -> Result<UnmergedMatcher<P>, P::Error> {
        let scratch = filter.new_scratch()?;
        let stats = Stats {
            rule_hits: vec![0; filter.rules().len()],
            ..Stats::default()
        };
        Ok(UnmergedMatcher {
            filter,
            dates,
            scratch,
            stats,
        })
    }

    /// A fresh matcher with the same filter and time zone (own counters and date cache),
    /// e.g. one per worker thread.
    pub fn fork(&self) -> Result<UnmergedMatcher<P>, P::Error>
    where
        P: Clone,
    {
        UnmergedMatcher::new(self.filter.clone(), self.dates.clone())
    }

    /// The filter.
    pub fn filter(&self) -> &Filter<P> {
        &self.filter
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// See [`EventMatcher::feed_line`]; the events come out unmerged.
    pub fn feed_line(
        &mut self,
        line: &[u8],
        read_time: Time,
        out: &mut Vec<Unmerged>,
    ) -> LineOutcome {
        self.stats.lines += 1;
        // Files written on or copied through Windows end lines with CR LF.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let capped = &line[..line.len().min(MAX_LINE)];
        let shapes = self.filter.shapes();
        let (time, rest, header) = split_line_rest(&mut self.dates, capped, read_time);
        // A syslog line of a program the filter reads; else, for a filter of a service's
        // own files, the text after the timestamp, or an access log line as a whole.
        let (time, pid, message, program) = match header {
            Some(h) if shapes.syslog && self.filter.wants_program(h.program) => {
                (time, h.pid, h.message, Some(h.program))
            }
            _ if shapes.plain && time.is_some() => (time, None, rest, None),
            _ if shapes.access
                && let Some(t) = access_time(&mut self.dates, capped, read_time) =>
            {
                (Some(t), None, capped, None)
            }
            Some(_) if shapes.syslog => {
                self.stats.other_program += 1;
                return self.unmatched();
            }
            _ => {
                self.stats.unparsed += 1;
                return self.unmatched();
            }
        };
        let dated = time.is_some();
        let time = time.unwrap_or(read_time);
        if !dated {
            self.stats.no_timestamp += 1;
        }
        if line.len() >= MAX_LINE {
            self.stats.oversized += 1;
            return self.bad(BadLine::Oversized);
        }
        self.message(time, pid, message, (program, Some(line.len())), out)
    }

    /// See [`EventMatcher::feed_record`]; the events come out unmerged.
    pub fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Unmerged>) -> LineOutcome {
        self.stats.lines += 1;
        if let Some(p) = record.program
            && !self.filter.wants_program(p)
        {
            self.stats.other_program += 1;
            return self.unmatched();
        }
        if record.message.len() >= MAX_LINE {
            self.stats.oversized += 1;
            return self.bad(BadLine::Oversized);
        }
        self.message(
            record.time,
            record.pid,
            record.message,
            (record.program, None),
            out,
        )
    }

    /// `writer`: the program and, for a file line, the whole line's length (see
    /// [`super::cut`]).
    fn message(
        &mut self,
        time: Time,
        pid: Option<u32>,
        raw: &[u8],
        writer: (Option<&[u8]>, Option<usize>),
        out: &mut Vec<Unmerged>,
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
        let cut = super::cut::is_cut(writer.0, message.len(), writer.1);
        if cut {
            self.stats.cut += 1;
        }
        let m = match self.filter.match_message(message, cut, &mut self.scratch) {
            Ok(MessageMatch::Matched(m)) => m,
            Ok(MessageMatch::Ignored(rule)) => {
                self.stats.ignored += 1;
                return LineOutcome::Ignored { rule };
            }
            Ok(MessageMatch::None) => return self.unmatched(),
            // A cut message names only an address no client text can precede.
            Ok(MessageMatch::Untrusted(rule)) => return self.bad(BadLine::Cut { rule }),
            Err(_) => {
                self.stats.search_errors += 1;
                return self.bad(BadLine::EngineError);
            }
        };
        // Spans come from a byte-oriented engine: slice with `get` (never panics).
        let Some(addr) = message.get(m.host.0..m.host.1).and_then(parse_addr) else {
            return self.bad(BadLine::InvalidAddress { rule: m.rule });
        };
        let rule = &self.filter.rules()[usize::from(m.rule)];
        if repeat.is_some() {
            self.stats.repeated += 1;
        }
        let field = |span: Option<(usize, usize)>| {
            span.and_then(|(a, b)| message.get(a..b))
                .map(Box::<str>::from)
        };
        out.push(Unmerged {
            event: Event {
                time,
                addr,
                kind: rule.kind,
                weight: rule.weight,
                count: 0,
                user: field(m.user),
                user_exists: if rule.account_words {
                    m.user
                        .and_then(|(a, _)| message.get(..a))
                        .map(account_exists_by_words)
                } else {
                    None
                },
                method: field(m.method),
                pid,
                rule: m.rule,
            },
            repeat,
            merge: rule.merge,
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

/// The native engine's matcher: an [`UnmergedMatcher`] and its [`AttemptMerger`], for lines
/// read in order. One per source.
#[derive(Debug)]
pub struct LineMatcher<P: Pattern = RegexPattern> {
    stage: UnmergedMatcher<P>,
    merger: AttemptMerger,
    /// The current line's unmerged events (reused).
    pending: Vec<Unmerged>,
}

impl<P: Pattern> LineMatcher<P> {
    /// A matcher for `filter`, reading timestamps with `dates`.
    pub fn new(filter: Filter<P>, dates: DateParser) -> Result<LineMatcher<P>, P::Error> {
        Ok(LineMatcher {
            stage: UnmergedMatcher::new(filter, dates)?,
            merger: AttemptMerger::new(),
            pending: Vec::new(),
        })
    }

    /// A fresh matcher with the same filter and time zone (own counters, date cache and
    /// merge state).
    pub fn fork(&self) -> Result<LineMatcher<P>, P::Error>
    where
        P: Clone,
    {
        Ok(LineMatcher {
            stage: self.stage.fork()?,
            merger: AttemptMerger::new(),
            pending: Vec::new(),
        })
    }

    /// A fresh per-line stage of this matcher's filter, to run on worker threads (its events
    /// go through an [`AttemptMerger`] in log order).
    pub fn unmerged(&self) -> Result<UnmergedMatcher<P>, P::Error>
    where
        P: Clone,
    {
        self.stage.fork()
    }

    /// The filter.
    pub fn filter(&self) -> &Filter<P> {
        self.stage.filter()
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        self.stage.stats()
    }

    /// See [`EventMatcher::feed_line`].
    pub fn feed_line(&mut self, line: &[u8], read_time: Time, out: &mut Vec<Event>) -> LineOutcome {
        let outcome = self.stage.feed_line(line, read_time, &mut self.pending);
        self.settle(out);
        outcome
    }

    /// See [`EventMatcher::feed_record`].
    pub fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Event>) -> LineOutcome {
        let outcome = self.stage.feed_record(record, &mut self.pending);
        self.settle(out);
        outcome
    }

    fn settle(&mut self, out: &mut Vec<Event>) {
        for u in self.pending.drain(..) {
            self.merger.settle(u, out);
        }
    }

    /// See [`EventMatcher::finish`].
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.merger.finish(out);
    }
}

impl<P: Pattern> EventMatcher for LineMatcher<P> {
    fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        LineMatcher::feed_line(self, line, reference, out)
    }

    fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Event>) -> LineOutcome {
        LineMatcher::feed_record(self, record, out)
    }

    fn stats(&self) -> &Stats {
        LineMatcher::stats(self)
    }

    fn finish(&mut self, out: &mut Vec<Event>) {
        LineMatcher::finish(self, out);
    }

    fn rule_name(&self, rule: u16) -> &str {
        self.filter()
            .rules()
            .get(usize::from(rule))
            .map_or("?", |r| &*r.id)
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

/// Whether sshd's words before a user name (`head`, the message up to the name) say the
/// account exists: `invalid user ` / `illegal user ` (any case) say it does not, anything
/// else a rule marked `account = "sshd"` puts there (`for `, `authenticating user `,
/// `User `) says it does. The words are the rule's fixed text, never the client's: the
/// user name starts where they end.
pub fn account_exists_by_words(head: &str) -> bool {
    let h = head.as_bytes();
    let tail = &h[h.len().saturating_sub(13)..];
    !(tail.eq_ignore_ascii_case(b"invalid user ") || tail.eq_ignore_ascii_case(b"illegal user "))
}
