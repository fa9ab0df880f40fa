//! [`Fail2BanMatcher`]: a Fail2Ban filter behind core's [`EventMatcher`] shape, so the
//! daemon, `scan`, `investigate` and `test-filter` drive both engines alike.

use std::borrow::Cow;

use portcullis_core::date::DateParser;
use portcullis_core::event::normalize_addr;
use portcullis_core::filter::header::split_line;
use portcullis_core::filter::{BadLine, EventMatcher, LineOutcome, MAX_LINE, Record, Stats, cut};
use portcullis_core::{Event, EventKind, Time, Weight};

use crate::filter::{BuildError, Fail2BanFilter, FilterOptions, LineResult};
use crate::pattern::SearchError;

/// A Fail2Ban filter as an [`EventMatcher`]: every failure is one attempt (weight 1, count
/// 1: Fail2Ban counts matches), an `<F-NOFAIL>` match is information (weight 0), the user is
/// the failure's `<F-USER>`. Lines of [`MAX_LINE`] bytes or more are never matched (they may
/// have been cut), as with the native engine.
///
/// One per source (it holds the filter's multi-line buffer and date cache); make more with
/// [`fork`](Self::fork), which does not compile again.
#[derive(Debug)]
pub struct Fail2BanMatcher {
    filter: Fail2BanFilter,
    /// Which filter (its file), for messages.
    name: String,
    /// Same counters as the native engine, so `scan`/`status` report both alike.
    stats: Stats,
    /// `failregex[N]`, for `--explain` and hit counts.
    rule_names: Vec<String>,
    /// The last such error not yet taken by the caller (for its warning).
    last_error: Option<SearchError>,
    /// Core's line splitter's dates, only to find a line's writer and message and so
    /// whether its writer cut it (see `portcullis_core::filter::cut`).
    cut_dates: DateParser,
}

impl Fail2BanMatcher {
    /// Compile `options` (`name`: which filter, for messages); `local` is the zone of dates
    /// without one, `ref_year` bounds 4-digit years in the built-in date templates (the
    /// current year).
    pub fn new(
        options: &FilterOptions,
        name: &str,
        local: jiff::tz::TimeZone,
        ref_year: i16,
    ) -> Result<Fail2BanMatcher, BuildError> {
        let filter = Fail2BanFilter::new(options, local, ref_year)?;
        Ok(Fail2BanMatcher::with_filter(filter, name.to_owned()))
    }

    fn with_filter(filter: Fail2BanFilter, name: String) -> Fail2BanMatcher {
        let rule_names: Vec<String> = (0..filter.failregex().count())
            .map(|i| format!("failregex[{i}]"))
            .collect();
        let stats = Stats {
            rule_hits: vec![0; rule_names.len()],
            ..Stats::default()
        };
        Fail2BanMatcher {
            filter,
            name,
            stats,
            rule_names,
            last_error: None,
            cut_dates: DateParser::new(jiff::tz::TimeZone::UTC),
        }
    }

    /// A fresh matcher of the same compiled filter (own buffer, dates and counters).
    pub fn fork(&self) -> Fail2BanMatcher {
        Fail2BanMatcher::with_filter(self.filter.fork(), self.name.clone())
    }

    /// Which filter this is (as given to [`new`](Self::new)).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The filter.
    pub fn filter(&self) -> &Fail2BanFilter {
        &self.filter
    }

    /// The last search cut off by the match limit since the previous call, with the number
    /// of lines that had such a search so far (so a caller can warn at powers of two and a
    /// flood of crafted lines cannot flood its log).
    pub fn take_search_error(&mut self) -> Option<(u64, SearchError)> {
        self.last_error
            .take()
            .map(|e| (self.stats.search_errors, e))
    }

    fn decode<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, str> {
        let text = String::from_utf8_lossy(bytes);
        if matches!(text, Cow::Owned(_)) {
            self.stats.invalid_utf8 += 1;
        }
        text
    }

    fn oversized(&mut self) -> LineOutcome {
        self.stats.oversized += 1;
        self.stats.bad += 1;
        LineOutcome::Bad(BadLine::Oversized)
    }

    /// [`events`](Self::events), but a message its writer cut gives none: a Fail2Ban regex
    /// does not say where client-chosen text stands, so no address in a cut message is
    /// trusted (the line still went through the filter, so multi-line state stays whole).
    fn events_unless_cut(
        &mut self,
        cut: bool,
        result: LineResult,
        fallback: Time,
        out: &mut Vec<Event>,
    ) -> LineOutcome {
        if !cut {
            return self.events(result, fallback, out);
        }
        self.stats.cut += 1;
        let mut dropped = Vec::new();
        match self.events(result, fallback, &mut dropped) {
            LineOutcome::Matched { rule } => {
                self.stats.matched -= 1;
                if let Some(h) = self.stats.rule_hits.get_mut(usize::from(rule)) {
                    *h -= 1;
                }
                self.stats.bad += 1;
                LineOutcome::Bad(BadLine::Cut { rule })
            }
            other => other,
        }
    }

    fn events(&mut self, result: LineResult, fallback: Time, out: &mut Vec<Event>) -> LineOutcome {
        let LineResult {
            failures,
            ignored,
            matched,
            mut errors,
        } = result;
        let searches_failed = !errors.is_empty();
        if searches_failed {
            self.stats.search_errors += 1;
            self.last_error = Some(errors.swap_remove(0));
        }
        // The first failure with an address, and the first failure at all (its id may be a
        // host name, which bans nothing).
        let mut first: Option<u16> = None;
        let mut unusable: Option<u16> = None;
        for f in &failures {
            // A pending multi-line id or a host name (no address) bans nothing.
            let Some(addr) = f.addr else {
                if !f.is_nofail() && unusable.is_none() {
                    unusable = u16::try_from(f.regex).ok();
                }
                continue;
            };
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
                user_exists: None,
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
        if let Some(rule) = unusable {
            self.stats.bad += 1;
            return LineOutcome::Bad(BadLine::InvalidAddress { rule });
        }
        // A failregex matched but gave no failure (an ignoreregex dropped it, a `nofail` or
        // pending multi-line match): fail2ban-regex counts such a line as ignored.
        if ignored.is_some() || matched.is_some() {
            self.stats.ignored += 1;
            let rule = matched.and_then(|m| u16::try_from(m).ok()).unwrap_or(0);
            return LineOutcome::Ignored { rule };
        }
        if searches_failed {
            self.stats.bad += 1;
            return LineOutcome::Bad(BadLine::EngineError);
        }
        self.stats.unmatched += 1;
        LineOutcome::Unmatched
    }
}

impl EventMatcher for Fail2BanMatcher {
    /// Dates are found by the filter's templates; `reference` settles years and is the time
    /// of lines without a date.
    fn feed_line(&mut self, line: &[u8], reference: Time, out: &mut Vec<Event>) -> LineOutcome {
        self.stats.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() >= MAX_LINE {
            return self.oversized();
        }
        let cut = match split_line(&mut self.cut_dates, line, reference).1 {
            Some(h) => cut::is_cut(Some(h.program), h.message.len(), Some(line.len())),
            None => cut::is_cut(None, line.len(), Some(line.len())),
        };
        let text = self.decode(line);
        let result = self.filter.process_line(&text, reference);
        self.events_unless_cut(cut, result, reference, out)
    }

    /// The record rendered as Fail2Ban's systemd backend renders it (`IDENT[PID]: MESSAGE`);
    /// its time is the event time.
    fn feed_record(&mut self, record: &Record<'_>, out: &mut Vec<Event>) -> LineOutcome {
        self.stats.lines += 1;
        if record.message.len() >= MAX_LINE {
            return self.oversized();
        }
        let cut = cut::is_cut(record.program, record.message.len(), None);
        let rendered = record.syslog_line();
        let text = self.decode(&rendered);
        let result = self.filter.process_message(&text, record.time);
        self.events_unless_cut(cut, result, record.time, out)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn rule_name(&self, rule: u16) -> &str {
        self.rule_names
            .get(usize::from(rule))
            .map_or("?", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::UseDns;

    fn utc_matcher(failregex: &[&str]) -> Fail2BanMatcher {
        let options = FilterOptions {
            failregex: failregex.iter().map(|s| (*s).to_owned()).collect(),
            usedns: UseDns::No,
            ..FilterOptions::default()
        };
        Fail2BanMatcher::new(&options, "test", jiff::tz::TimeZone::UTC, 2026).expect("compiles")
    }

    /// Issue 10.1: a Fail2Ban regex cannot say where client text stands, so a message sshd
    /// cut at 500 bytes names nobody, as a line and as a journal record; one that fits
    /// still does.
    #[test]
    fn an_sshd_message_cut_at_500_bytes_names_nobody() {
        let mut m = utc_matcher(&[
            r"^\s*\S+ sshd\[\d+\]: Connection closed by invalid user .* <HOST> port \d+ \[preauth\]$",
            r"^sshd(?:-session)?\[\d+\]: Connection closed by invalid user .* <HOST> port \d+ \[preauth\]$",
        ]);
        let read = Time::from_secs(1_795_000_000);
        let tail = " 203.0.113.66 port 22 [preauth]";
        let head = "Connection closed by invalid user ";
        let user = "a".repeat(500 - head.len() - tail.len());
        let msg = format!("{head}{user}{tail}");
        assert_eq!(msg.len(), 500);
        let mut out = Vec::new();
        let line = format!("2026-11-17T10:00:00+00:00 srv sshd[7]: {msg}");
        let o = m.feed_line(line.as_bytes(), read, &mut out);
        assert!(matches!(o, LineOutcome::Bad(BadLine::Cut { .. })), "{o:?}");
        let rec = Record {
            time: read,
            program: Some(b"sshd-session"),
            pid: Some(7),
            message: msg.as_bytes(),
        };
        assert!(matches!(
            m.feed_record(&rec, &mut out),
            LineOutcome::Bad(BadLine::Cut { .. })
        ));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!((m.stats().cut, m.stats().matched, m.stats().bad), (2, 0, 2));
        // One byte shorter: whole, and counted.
        let line = format!(
            "2026-11-17T10:00:00+00:00 srv sshd[7]: {head}{}{tail}",
            &user[1..]
        );
        assert!(matches!(
            m.feed_line(line.as_bytes(), read, &mut out),
            LineOutcome::Matched { .. }
        ));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn failures_are_single_attempts_and_nofail_is_info() {
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
        // A nofail match: no failure, and ignored (as fail2ban-regex counts it).
        assert!(
            matches!(outcome, LineOutcome::Ignored { .. }),
            "no failure on this line: {outcome:?}"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, EventKind::Info);
        assert_eq!(out[0].total_weight(), Weight::ZERO);

        out.clear();
        m.feed_line(b"2026-11-17 10:00:02 srv auth: hello", read, &mut out);
        assert!(out.is_empty());
        let st = m.stats();
        assert_eq!(
            (st.lines, st.matched, st.ignored, st.unmatched),
            (3, 1, 1, 1)
        );
        assert_eq!(st.rule_hits, [1, 0]);
        assert_eq!(m.rule_name(1), "failregex[1]");
        assert_eq!(m.rule_name(7), "?");
    }

    #[test]
    fn a_line_at_the_cap_is_never_matched() {
        let mut m = utc_matcher(&[r"^\s*\S+ auth: bad password for \S+ from <HOST>$"]);
        let head = "2026-11-17 10:00:00 srv auth: bad password for ";
        let tail = " from 192.0.2.7";
        let line = format!(
            "{head}{}{tail}",
            "A".repeat(MAX_LINE - head.len() - tail.len())
        );
        assert_eq!(line.len(), MAX_LINE);
        let mut out = Vec::new();
        let o = m.feed_line(line.as_bytes(), Time::from_secs(1_795_000_000), &mut out);
        assert_eq!(o, LineOutcome::Bad(BadLine::Oversized));
        assert!(out.is_empty());
        let short = format!("{head}root{tail}");
        let o = m.feed_line(short.as_bytes(), Time::from_secs(1_795_000_000), &mut out);
        assert_eq!(o, LineOutcome::Matched { rule: 0 });
        assert_eq!((m.stats().oversized, m.stats().bad), (1, 1));
    }

    #[test]
    fn a_fork_has_its_own_state_and_counters() {
        let mut a = utc_matcher(&[r"^\s*\S+ auth: bad password from <HOST>$"]);
        let line = b"2026-11-17 10:00:00 srv auth: bad password from 192.0.2.7";
        let mut out = Vec::new();
        a.feed_line(line, Time::from_secs(1_795_000_000), &mut out);
        let mut b = a.fork();
        assert_eq!(b.stats().lines, 0);
        b.feed_line(line, Time::from_secs(1_795_000_000), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((a.stats().matched, b.stats().matched), (1, 1));
    }
}
