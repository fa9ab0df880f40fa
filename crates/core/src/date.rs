//! Timestamps at the start of log lines.
//!
//! A hand-written byte parser reads the common forms without allocating or calling into a
//! date library; jiff is only asked for time-zone rules, and its answer (the UTC offset of a
//! local hour) is cached, so a burst of lines from the same hour costs a few comparisons.
//!
//! Forms understood (each optionally inside `[…]`):
//! - syslog `Mmm dd HH:MM:SS` / `Mmm  d HH:MM:SS`, optional `.fraction`; no year: see
//!   [`DateParser::parse_prefix`] for how it is inferred;
//! - RFC 3339 / ISO 8601 `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z|±HH:MM|±HHMM|±HH]`; without an
//!   offset the time is local;
//! - epoch `SSSSSSSSSS[.fraction]` (9–11 digits of seconds), 13 digits of milliseconds or
//!   16 digits of microseconds (journal `__REALTIME_TIMESTAMP`);
//! - Common Log Format `dd/Mmm/YYYY:HH:MM:SS[ ±HHMM]` (web servers).

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::time::Time;

const DAY_SECS: i64 = 86_400;
const MICROS: i64 = 1_000_000;

/// Parses the timestamp that starts a log line, in a given time zone.
///
/// Keeps a small cache (the UTC offset of the last two local hours seen), so use one parser
/// per source. Never allocates while parsing.
#[derive(Clone, Debug)]
pub struct DateParser {
    tz: TimeZone,
    /// Most recently used first. `hour` is local seconds / 3600; `i64::MIN` marks empty.
    cache: [HourOffset; 2],
    /// The UTC day of the last `reference` and its (year, month), for year inference: the
    /// reference changes far more slowly than lines arrive.
    reference_day: (i64, i64, u8),
}

/// The UTC offset that holds for every instant of one local hour.
#[derive(Copy, Clone, Debug)]
struct HourOffset {
    hour: i64,
    offset_secs: i32,
}

const EMPTY: HourOffset = HourOffset {
    hour: i64::MIN,
    offset_secs: 0,
};

/// A broken-down date and time as written in the line, already range-checked.
#[derive(Copy, Clone, Debug)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
}

impl Civil {
    /// Seconds since 1970-01-01T00:00:00 of this civil time, as if it were UTC.
    fn local_secs(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY_SECS
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// What the text says before a zone is applied.
enum Stamp {
    /// A local time with a year.
    Local(Civil),
    /// A local time without a year (syslog): the year field is a placeholder.
    Yearless(Civil),
    /// A time with an explicit UTC offset, in seconds east of UTC.
    Offset(Civil, i32),
    /// An instant (epoch forms).
    Instant(Time),
}

impl DateParser {
    /// A parser that reads zone-less timestamps in `tz`.
    pub fn new(tz: jiff::tz::TimeZone) -> DateParser {
        DateParser {
            tz,
            cache: [EMPTY; 2],
            reference_day: (0, 1970, 1),
        }
    }

    /// The zone that zone-less timestamps are read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Parse a timestamp at the start of `line`. `reference` is "now" for the reader (the
    /// wall clock in the daemon, the file's modification time in `scan`); it settles the year
    /// of year-less syslog dates. Returns the instant and how many bytes it took, including
    /// one following space if present; `None` if the line does not start with a known form
    /// or the date does not exist (Feb 30, hour 25).
    ///
    /// Year inference (Fail2Ban's rule, extended to New Year's Eve): the year is the latest
    /// one for which the date is at most one day after `reference`. So with a reference of
    /// 2027-01-01, `Dec 31 23:59:59` is in 2026, and with a reference of 2026-12-31T23:59:50Z,
    /// `Jan  1 00:00:05` (UTC) is in 2027.
    pub fn parse_prefix(&mut self, line: &[u8], reference: Time) -> Option<(Time, usize)> {
        let bracketed = line.first() == Some(&b'[');
        let body = if bracketed { &line[1..] } else { line };
        let (stamp, len) = parse_stamp(body)?;
        let mut end = len + usize::from(bracketed);
        if bracketed {
            if line.get(end) != Some(&b']') {
                return None;
            }
            end += 1;
        }
        match line.get(end) {
            None => {}
            Some(c) if c.is_ascii_alphanumeric() => return None,
            Some(b' ') => end += 1,
            Some(_) => {}
        }
        let time = match stamp {
            Stamp::Instant(t) => t,
            Stamp::Offset(c, off) => {
                Time::from_micros((c.local_secs() - i64::from(off)) * MICROS + i64::from(c.micros))
            }
            Stamp::Local(c) => self.local_to_time(&c)?,
            Stamp::Yearless(c) => self.infer_year(c, reference)?,
        };
        Some((time, end))
    }

    /// The instant of a year-less local date: the latest year in which it is at most one day
    /// after `reference`.
    fn infer_year(&mut self, mut c: Civil, reference: Time) -> Option<Time> {
        let limit = reference.as_micros().saturating_add(DAY_SECS * MICROS);
        let day = reference.as_secs().div_euclid(DAY_SECS);
        if self.reference_day.0 != day {
            let (year, month, _) = civil_from_days(day);
            self.reference_day = (day, year, month);
        }
        let (_, ref_year, ref_month) = self.reference_day;
        // A January date can only belong to next year while the reference is in December.
        let first = if c.month == 1 && ref_month == 12 {
            ref_year + 1
        } else {
            ref_year
        };
        // Feb 29 may need to go back up to 8 years (2100 is not a leap year).
        for year in (ref_year - 8..=first).rev() {
            if c.day > days_in_month(year, c.month) {
                continue;
            }
            c.year = year;
            let t = self.local_to_time(&c)?;
            if t.as_micros() <= limit {
                return Some(t);
            }
        }
        None
    }

    /// Apply the zone to a local time, through the per-hour offset cache.
    fn local_to_time(&mut self, c: &Civil) -> Option<Time> {
        let local = c.local_secs();
        let hour = local.div_euclid(3600);
        let offset = if self.cache[0].hour == hour {
            self.cache[0].offset_secs
        } else if self.cache[1].hour == hour {
            self.cache.swap(0, 1);
            self.cache[0].offset_secs
        } else {
            match self.hour_offset(c) {
                Some(offset_secs) => {
                    self.cache[1] = self.cache[0];
                    self.cache[0] = HourOffset { hour, offset_secs };
                    offset_secs
                }
                // The hour contains a transition: resolve this one time exactly.
                None => return self.resolve_exact(c),
            }
        };
        Some(Time::from_micros(
            (local - i64::from(offset)) * MICROS + i64::from(c.micros),
        ))
    }

    /// The offset of the whole local hour of `c`, if its start and end have the same
    /// unambiguous offset (no transition inside it; tzdb has no two transitions within one
    /// hour). `None` for hours in a gap or fold, or out of jiff's range.
    fn hour_offset(&self, c: &Civil) -> Option<i32> {
        let start = civil_datetime(c, 0, 0)?;
        let end = civil_datetime(c, 59, 59)?;
        match (
            self.tz.to_ambiguous_timestamp(start).offset(),
            self.tz.to_ambiguous_timestamp(end).offset(),
        ) {
            (
                AmbiguousOffset::Unambiguous { offset: a },
                AmbiguousOffset::Unambiguous { offset: b },
            ) if a == b => Some(a.seconds()),
            _ => None,
        }
    }

    /// Resolve a local time in an hour with a transition with jiff's "compatible" rule: a
    /// time in a gap moves forward by the gap's length, a time in a fold takes the earlier
    /// (pre-transition) offset.
    fn resolve_exact(&self, c: &Civil) -> Option<Time> {
        let dt = civil_datetime(c, c.minute, c.second)?;
        let ts = self.tz.to_ambiguous_timestamp(dt).compatible().ok()?;
        Some(Time::from_micros(
            ts.as_second() * MICROS + i64::from(c.micros),
        ))
    }
}

/// `c`'s date and hour with the given minute and second, as a jiff value.
fn civil_datetime(c: &Civil, minute: u8, second: u8) -> Option<DateTime> {
    let year = i16::try_from(c.year).ok()?;
    // Fields were range-checked by the parser, so these casts are lossless.
    DateTime::new(
        year,
        c.month as i8,
        c.day as i8,
        c.hour as i8,
        minute as i8,
        second as i8,
        0,
    )
    .ok()
}

/// Recognise one form at the start of `b`: the stamp and the bytes it spans.
fn parse_stamp(b: &[u8]) -> Option<(Stamp, usize)> {
    let first = *b.first()?;
    if first.is_ascii_digit() {
        match (b.get(2), b.get(4)) {
            (_, Some(b'-')) => parse_iso(b),
            (Some(b'/'), _) => parse_clf(b),
            _ => parse_epoch(b),
        }
    } else if first.is_ascii_alphabetic() {
        parse_syslog(b)
    } else {
        None
    }
}

/// `Mmm dd HH:MM:SS[.f]` or `Mmm  d HH:MM:SS[.f]`.
fn parse_syslog(b: &[u8]) -> Option<(Stamp, usize)> {
    let month = month_from_abbrev(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let day = match (b.get(4)?, b.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => d - b'0',
        (d1, d2) if d1.is_ascii_digit() && d2.is_ascii_digit() => (d1 - b'0') * 10 + (d2 - b'0'),
        _ => return None,
    };
    if b.get(6) != Some(&b' ') {
        return None;
    }
    let (hour, minute, second) = hms(b, 7)?;
    let (micros, end) = fraction(b, 15);
    // Year 2000 is a leap year, so Feb 29 passes here; the year inference checks again.
    if day == 0 || day > days_in_month(2000, month) {
        return None;
    }
    let c = Civil {
        year: 2000,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    Some((Stamp::Yearless(c), end))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.,f][Z|±HH:MM|±HHMM|±HH]`.
fn parse_iso(b: &[u8]) -> Option<(Stamp, usize)> {
    let year = i64::from(digits(b, 0, 4)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)? as u8;
    let day = digits(b, 8, 2)? as u8;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (hour, minute, second) = hms(b, 11)?;
    let (micros, end) = fraction(b, 19);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    match offset(b, end)? {
        (Some(off), end) => Some((Stamp::Offset(c, off), end)),
        (None, end) => Some((Stamp::Local(c), end)),
    }
}

/// `dd/Mmm/YYYY:HH:MM:SS[ ±HHMM]` (Apache and nginx access logs).
fn parse_clf(b: &[u8]) -> Option<(Stamp, usize)> {
    let day = digits(b, 0, 2)? as u8;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let month = month_from_abbrev(b.get(3..6)?)?;
    let year = i64::from(digits(b, 7, 4)?);
    let (hour, minute, second) = hms(b, 12)?;
    let (micros, end) = fraction(b, 20);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    if b.get(end) == Some(&b' ')
        && matches!(b.get(end + 1), Some(b'+' | b'-'))
        && let (Some(off), end) = offset(b, end + 1)?
    {
        return Some((Stamp::Offset(c, off), end));
    }
    Some((Stamp::Local(c), end))
}

/// Seconds (9–11 digits, optional fraction), milliseconds (13) or microseconds (16).
fn parse_epoch(b: &[u8]) -> Option<(Stamp, usize)> {
    let n = b.iter().take(17).take_while(|c| c.is_ascii_digit()).count();
    let mut value: i64 = 0;
    for &c in &b[..n] {
        value = value * 10 + i64::from(c - b'0');
    }
    match n {
        9..=11 => {
            let (micros, end) = fraction(b, n);
            Some((
                Stamp::Instant(Time::from_micros(value * MICROS + i64::from(micros))),
                end,
            ))
        }
        13 if b.get(n) != Some(&b'.') => Some((Stamp::Instant(Time::from_micros(value * 1000)), n)),
        16 if b.get(n) != Some(&b'.') => Some((Stamp::Instant(Time::from_micros(value)), n)),
        _ => None,
    }
}

/// `HH:MM:SS` at `at` (a leap second `:60` reads as `:59`).
fn hms(b: &[u8], at: usize) -> Option<(u8, u8, u8)> {
    let hour = digits(b, at, 2)?;
    let minute = digits(b, at + 3, 2)?;
    let second = digits(b, at + 6, 2)?;
    if b.get(at + 2) != Some(&b':') || b.get(at + 5) != Some(&b':') {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((hour as u8, minute as u8, second.min(59) as u8))
}

/// An optional `.digits` or `,digits` at `at`: microseconds (digits past the sixth are
/// read and dropped) and the end. No separator, or one without digits, is not a fraction.
fn fraction(b: &[u8], at: usize) -> (u32, usize) {
    if !matches!(b.get(at), Some(b'.' | b',')) {
        return (0, at);
    }
    let digits_len = b[at + 1..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits_len == 0 {
        return (0, at);
    }
    let mut micros = 0u32;
    for i in 0..6 {
        let d = match b.get(at + 1 + i) {
            Some(c) if i < digits_len => u32::from(c - b'0'),
            _ => 0,
        };
        micros = micros * 10 + d;
    }
    (micros, at + 1 + digits_len)
}

/// An optional `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH` at `at`: seconds east of UTC (`None`
/// when there is no offset) and the end. The outer `None` is a malformed offset.
fn offset(b: &[u8], at: usize) -> Option<(Option<i32>, usize)> {
    let sign = match b.get(at) {
        Some(b'Z' | b'z') => return Some((Some(0), at + 1)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some((None, at)),
    };
    let hours = digits(b, at + 1, 2)?;
    let (minutes, end) = if b.get(at + 3) == Some(&b':') {
        (digits(b, at + 4, 2)?, at + 6)
    } else if let Some(m) = digits(b, at + 3, 2) {
        (m, at + 5)
    } else {
        (0, at + 3)
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((
        Some(sign * (hours as i32 * 3600 + minutes as i32 * 60)),
        end,
    ))
}

/// `len` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let field = b.get(at..at + len)?;
    let mut value = 0u32;
    for &c in field {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
    }
    Some(value)
}

/// `Jan`…`Dec` (any letter case) as 1…12.
fn month_from_abbrev(b: &[u8]) -> Option<u8> {
    let lower = [b.first()? | 0x20, b.get(1)? | 0x20, b.get(2)? | 0x20];
    Some(match &lower {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(rfc3339: &str) -> Time {
        let t: jiff::Timestamp = rfc3339.parse().unwrap();
        Time::from_micros(t.as_microsecond())
    }

    fn utc() -> DateParser {
        DateParser::new(TimeZone::UTC)
    }

    /// Central European time without needing the system tzdb.
    fn berlin_posix() -> DateParser {
        DateParser::new(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap())
    }

    fn parse(p: &mut DateParser, line: &str, reference: &str) -> Option<(Time, usize)> {
        p.parse_prefix(line.as_bytes(), ts(reference))
    }

    const REF: &str = "2026-11-25T12:00:00Z";

    #[test]
    fn syslog_two_digit_and_padded_day() {
        let mut p = utc();
        let line = "Nov 25 08:00:01 host sshd[1]: x";
        assert_eq!(
            parse(&mut p, line, REF),
            Some((ts("2026-11-25T08:00:01Z"), 16))
        );
        assert_eq!(&line[16..20], "host");
        assert_eq!(
            parse(&mut p, "Nov  5 08:00:01 host", REF),
            Some((ts("2026-11-05T08:00:01Z"), 16))
        );
        assert_eq!(
            parse(&mut p, "Nov 25 08:00:01.250 host", REF),
            Some((ts("2026-11-25T08:00:01.25Z"), 20))
        );
        // End of line, no space to consume.
        assert_eq!(
            parse(&mut p, "Nov 25 08:00:01", REF),
            Some((ts("2026-11-25T08:00:01Z"), 15))
        );
    }

    #[test]
    fn syslog_in_local_zone() {
        let mut p = berlin_posix();
        assert_eq!(
            parse(&mut p, "Nov 25 08:00:01 h", REF).map(|r| r.0),
            Some(ts("2026-11-25T07:00:01Z"))
        );
        assert_eq!(
            parse(&mut p, "Jul  1 08:00:01 h", REF).map(|r| r.0),
            Some(ts("2026-07-01T06:00:01Z"))
        );
    }

    #[test]
    fn year_rollover_december_read_in_january() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "Dec 31 23:59:59 h", "2027-01-01T00:00:10Z").map(|r| r.0),
            Some(ts("2026-12-31T23:59:59Z"))
        );
        // More than one day ahead of the reference: last year.
        assert_eq!(
            parse(&mut p, "Nov 27 12:00:01 h", REF).map(|r| r.0),
            Some(ts("2025-11-27T12:00:01Z"))
        );
        // Within one day ahead (clock skew): this year.
        assert_eq!(
            parse(&mut p, "Nov 26 11:00:00 h", REF).map(|r| r.0),
            Some(ts("2026-11-26T11:00:00Z"))
        );
    }

    #[test]
    fn year_rollover_january_read_on_new_years_eve() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "Jan  1 00:00:05 h", "2026-12-31T23:59:50Z").map(|r| r.0),
            Some(ts("2027-01-01T00:00:05Z"))
        );
        // Same line read mid-year: this January.
        assert_eq!(
            parse(&mut p, "Jan  1 00:00:05 h", REF).map(|r| r.0),
            Some(ts("2026-01-01T00:00:05Z"))
        );
        // Local New Year in a zone ahead of UTC.
        let mut b = berlin_posix();
        assert_eq!(
            parse(&mut b, "Jan  1 00:20:00 h", "2026-12-31T23:30:00Z").map(|r| r.0),
            Some(ts("2026-12-31T23:20:00Z"))
        );
    }

    #[test]
    fn february_29_goes_to_the_last_leap_year() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "Feb 29 10:00:00 h", REF).map(|r| r.0),
            Some(ts("2024-02-29T10:00:00Z"))
        );
        assert_eq!(
            parse(&mut p, "Feb 29 10:00:00 h", "2028-03-01T00:00:00Z").map(|r| r.0),
            Some(ts("2028-02-29T10:00:00Z"))
        );
    }

    #[test]
    fn rfc3339_with_fractions_and_offsets() {
        let mut p = berlin_posix();
        let line = "2026-11-25T08:00:01.123456+01:00 host sshd[1]: x";
        assert_eq!(
            parse(&mut p, line, REF),
            Some((ts("2026-11-25T07:00:01.123456Z"), 33))
        );
        assert_eq!(
            parse(&mut p, "2026-11-25T08:00:01Z x", REF),
            Some((ts("2026-11-25T08:00:01Z"), 21))
        );
        assert_eq!(
            parse(&mut p, "2026-11-25T08:00:01.5-0530 x", REF).map(|r| r.0),
            Some(ts("2026-11-25T13:30:01.5Z"))
        );
        assert_eq!(
            parse(&mut p, "2026-11-25T08:00:01+02 x", REF).map(|r| r.0),
            Some(ts("2026-11-25T06:00:01Z"))
        );
        // Nanoseconds are truncated to microseconds.
        assert_eq!(
            parse(&mut p, "2026-11-25T08:00:01.123456789Z x", REF).map(|r| r.0),
            Some(ts("2026-11-25T08:00:01.123456Z"))
        );
    }

    #[test]
    fn iso_without_offset_is_local() {
        let mut p = berlin_posix();
        assert_eq!(
            parse(&mut p, "2026-11-25 08:00:01 x", REF),
            Some((ts("2026-11-25T07:00:01Z"), 20))
        );
        assert_eq!(
            parse(&mut p, "2026-07-01 08:00:01.5 x", REF).map(|r| r.0),
            Some(ts("2026-07-01T06:00:01.5Z"))
        );
        // Python logging's comma fraction.
        assert_eq!(
            parse(&mut p, "2026-11-25 08:00:01,250 x", REF).map(|r| r.0),
            Some(ts("2026-11-25T07:00:01.25Z"))
        );
        assert_eq!(
            parse(&mut p, "2026-11-25T08:00:01 x", REF).map(|r| r.0),
            Some(ts("2026-11-25T07:00:01Z"))
        );
    }

    #[test]
    fn epoch_forms() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "1764057601 x", REF),
            Some((Time::from_secs(1_764_057_601), 11))
        );
        assert_eq!(
            parse(&mut p, "1764057601.123456 x", REF),
            Some((Time::from_micros(1_764_057_601_123_456), 18))
        );
        assert_eq!(
            parse(&mut p, "1764057601.5 x", REF).map(|r| r.0),
            Some(Time::from_micros(1_764_057_601_500_000))
        );
        assert_eq!(
            parse(&mut p, "1764057601123 x", REF).map(|r| r.0),
            Some(Time::from_micros(1_764_057_601_123_000))
        );
        assert_eq!(
            parse(&mut p, "1764057601123456 x", REF).map(|r| r.0),
            Some(Time::from_micros(1_764_057_601_123_456))
        );
        // Short numbers (pids, counters) are not timestamps.
        assert_eq!(parse(&mut p, "12345 x", REF), None);
        assert_eq!(parse(&mut p, "17640576011234 x", REF), None);
        assert_eq!(parse(&mut p, "1764057601x", REF), None);
    }

    #[test]
    fn bracketed_forms() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "[2026-11-25 08:00:01] x", REF),
            Some((ts("2026-11-25T08:00:01Z"), 22))
        );
        assert_eq!(
            parse(&mut p, "[Nov 25 08:00:01] x", REF),
            Some((ts("2026-11-25T08:00:01Z"), 18))
        );
        assert_eq!(
            parse(&mut p, "[1764057601.25] x", REF).map(|r| r.0),
            Some(Time::from_micros(1_764_057_601_250_000))
        );
        assert_eq!(
            parse(&mut p, "[25/Nov/2026:08:00:01 +0100] \"GET /\"", REF),
            Some((ts("2026-11-25T07:00:01Z"), 29))
        );
        // Unclosed bracket, or a kernel uptime stamp.
        assert_eq!(parse(&mut p, "[2026-11-25 08:00:01 x", REF), None);
        assert_eq!(parse(&mut p, "[   12.345678] x", REF), None);
    }

    #[test]
    fn clf_without_brackets() {
        let mut p = utc();
        assert_eq!(
            parse(&mut p, "25/Nov/2026:08:00:01 -0200 x", REF).map(|r| r.0),
            Some(ts("2026-11-25T10:00:01Z"))
        );
    }

    #[test]
    fn dst_spring_forward_gap_and_autumn_fold() {
        let mut p = berlin_posix();
        // 2026-03-29: 02:00 CET becomes 03:00 CEST.
        for (line, want) in [
            ("2026-03-29 01:59:59 x", "2026-03-29T00:59:59Z"),
            // In the gap: compatible moves it forward by the gap (02:30 CET).
            ("2026-03-29 02:30:00 x", "2026-03-29T01:30:00Z"),
            ("2026-03-29 03:00:00 x", "2026-03-29T01:00:00Z"),
            ("2026-03-29 03:30:00 x", "2026-03-29T01:30:00Z"),
            // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:xx happens twice.
            ("2026-10-25 01:59:59 x", "2026-10-24T23:59:59Z"),
            // In the fold: compatible takes the earlier instant (CEST).
            ("2026-10-25 02:30:00 x", "2026-10-25T00:30:00Z"),
            ("2026-10-25 03:00:00 x", "2026-10-25T02:00:00Z"),
        ] {
            assert_eq!(
                parse(&mut p, line, REF).map(|r| r.0),
                Some(ts(want)),
                "{line}"
            );
        }
        // The cache must not leak one hour's offset into another across the switch.
        let mut q = berlin_posix();
        assert_eq!(
            parse(&mut q, "Mar 29 01:10:00 h", "2026-04-01T00:00:00Z").map(|r| r.0),
            Some(ts("2026-03-29T00:10:00Z"))
        );
        assert_eq!(
            parse(&mut q, "Mar 29 03:10:00 h", "2026-04-01T00:00:00Z").map(|r| r.0),
            Some(ts("2026-03-29T01:10:00Z"))
        );
        assert_eq!(
            parse(&mut q, "Mar 29 01:20:00 h", "2026-04-01T00:00:00Z").map(|r| r.0),
            Some(ts("2026-03-29T00:20:00Z"))
        );
    }

    #[test]
    fn dst_with_system_tzdb_berlin() {
        let Ok(tz) = TimeZone::get("Europe/Berlin") else {
            eprintln!("!!! no tzdb entry for Europe/Berlin; skipping the tzdb DST test");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI needs tzdata"
            );
            return;
        };
        let mut p = DateParser::new(tz);
        assert_eq!(
            parse(&mut p, "Oct 25 02:30:00 h", REF).map(|r| r.0),
            Some(ts("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            parse(&mut p, "Mar 29 02:30:00 h", REF).map(|r| r.0),
            Some(ts("2026-03-29T01:30:00Z"))
        );
        assert_eq!(
            parse(&mut p, "Oct 25 03:30:00 h", REF).map(|r| r.0),
            Some(ts("2026-10-25T02:30:00Z"))
        );
    }

    #[test]
    fn invalid_dates_are_rejected() {
        let mut p = utc();
        for line in [
            "Feb 30 10:00:00 h",
            "Nov 31 10:00:00 h",
            "Nov 25 25:00:00 h",
            "Nov 25 10:60:00 h",
            "Nov 25 10:00:61 h",
            "Nov 00 10:00:00 h",
            "Foo 25 10:00:00 h",
            "Nov 25 10:00 h",
            "Nov 25 10:00:001 h",
            "2026-02-30 10:00:00 h",
            "2026-13-01 10:00:00 h",
            "2026-00-01 10:00:00 h",
            "2025-02-29 10:00:00 h",
            "2026-11-25 24:00:00 h",
            "2026-11-25T08:00:01+25:00 h",
            "2026-11-25X08:00:01 h",
            "2026-11-25T08:00:01Zh",
            "32/Nov/2026:08:00:01 h",
            "",
            "host sshd[1]: Failed password",
            "-1764057601 x",
        ] {
            assert_eq!(parse(&mut p, line, REF), None, "{line:?}");
        }
    }

    #[test]
    fn extreme_references_and_years_never_panic() {
        let mut p = berlin_posix();
        for reference in [Time::from_micros(i64::MIN), Time::EPOCH, Time::MAX] {
            for line in [
                "Jan  1 00:00:00 x",
                "Dec 31 23:59:59 x",
                "Feb 29 00:00:00 x",
                "0000-01-01 00:00:00 x",
                "9999-12-31 23:59:59 x",
                "9999-12-31T23:59:59-23:59 x",
                "99999999999.999999 x",
                "9999999999999999 x",
            ] {
                let _ = p.parse_prefix(line.as_bytes(), reference);
            }
        }
        assert_eq!(
            p.parse_prefix(b"0000-01-01 00:00:00", Time::EPOCH)
                .map(|r| r.0),
            Some(ts("-000001-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn civil_day_counts_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Every local ISO time in a DST zone (2000–2040, including gap and fold hours)
            /// converts exactly as jiff's compatible rule says, through the cache or not.
            #[test]
            fn iso_local_matches_jiff(
                year in 2000i16..2040, month in 1i8..=12, day in 1i8..=28,
                hour in 0i8..24, minute in 0i8..60, second in 0i8..60,
                warm_hour in 0i8..24,
            ) {
                let tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
                let dt = DateTime::new(year, month, day, hour, minute, second, 0).unwrap();
                let want = tz.to_ambiguous_timestamp(dt).compatible().unwrap();
                let mut p = DateParser::new(tz);
                // Fill the cache with a neighbouring hour first.
                let warm = format!("{year:04}-{month:02}-{day:02} {warm_hour:02}:00:00 x");
                let _ = p.parse_prefix(warm.as_bytes(), Time::EPOCH);
                let line = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02} x");
                let got = p.parse_prefix(line.as_bytes(), Time::EPOCH);
                prop_assert_eq!(got, Some((Time::from_secs(want.as_second()), 20)));
            }

            /// A year-less date lands within (reference - 1 year - 1 day, reference + 1 day].
            #[test]
            fn syslog_year_is_near_the_reference(
                reference_secs in 946_684_800i64..2_208_988_800,
                month in 1u8..=12, day in 1u8..=31, hour in 0u8..24, minute in 0u8..60,
            ) {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                ];
                let line = format!(
                    "{} {:2} {:02}:{:02}:00 host",
                    MONTHS[usize::from(month - 1)], day, hour, minute
                );
                let reference = Time::from_secs(reference_secs);
                let mut p = berlin_posix();
                match p.parse_prefix(line.as_bytes(), reference) {
                    Some((t, 16)) => {
                        let s = t.as_secs();
                        prop_assert!(s <= reference_secs + DAY_SECS, "{line} -> {t}");
                        // Feb 29 may go back up to 8 years; others less than a year.
                        let back = if month == 2 && day == 29 { 8 * 366 } else { 367 };
                        prop_assert!(s > reference_secs - back * DAY_SECS, "{line} -> {t}");
                    }
                    other => prop_assert!(
                        day > days_in_month(2000, month),
                        "{line} -> {other:?}"
                    ),
                }
            }
        }
    }
}
