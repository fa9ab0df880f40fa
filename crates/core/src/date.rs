//! Timestamps at the start of log lines.
//!
//! A hand-written byte parser reads the common forms without allocating; the calendar (date
//! validation, day counts, time-zone rules and the year of year-less dates) is the one in
//! [`crate::calendar`], which the Fail2Ban templates use too.
//!
//! Forms understood (each optionally inside `[…]`):
//! - syslog `Mmm dd HH:MM:SS` / `Mmm  d HH:MM:SS` / `Mmm d HH:MM:SS` (one space, one
//!   digit, as some relays write it), optional `.fraction`; no year: see [`YearInference`]
//!   for how it is inferred;
//! - journalctl `short-full` `Www YYYY-MM-DD HH:MM:SS[.f] ZONE` (`UTC`/`GMT` or a numeric
//!   offset are exact; any other zone name is read as the parser's zone, which is the one
//!   journalctl printed it in when it runs on this host);
//! - RFC 3339 / ISO 8601 `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z|±HH:MM|±HHMM|±HH]`; without an
//!   offset the time is local;
//! - epoch `SSSSSSSSSS[.fraction]` (9–11 digits of seconds), 13 digits of milliseconds or
//!   16 digits of microseconds (journal `__REALTIME_TIMESTAMP`);
//! - Common Log Format `dd/Mmm/YYYY:HH:MM:SS[ ±HHMM]` (web servers).

use jiff::tz::TimeZone;

use crate::calendar::{Civil, LocalZone, YearInference, time_at_offset};
use crate::time::Time;

const MICROS: i64 = 1_000_000;

/// Parses the timestamp that starts a log line, in a given time zone.
///
/// Keeps small caches (the zone's offsets of the last two local hours, the reference's
/// date), so use one parser per source. Never allocates while parsing.
#[derive(Clone, Debug)]
pub struct DateParser {
    zone: LocalZone,
    years: YearInference,
}

/// What the text says before a zone is applied. Dates are checked (no Feb 30).
enum Stamp {
    /// A local time with a year.
    Local(Civil),
    /// A local time without a year (syslog): [`Civil::yearless`].
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
            zone: LocalZone::new(tz),
            years: YearInference::new(),
        }
    }

    /// The zone that zone-less timestamps are read in.
    pub fn time_zone(&self) -> &TimeZone {
        self.zone.time_zone()
    }

    /// Parse a timestamp at the start of `line`. `reference` is "now" for the reader (the
    /// wall clock in the daemon, the file's modification time in `scan`); it settles the year
    /// of year-less syslog dates ([`YearInference`]: the latest year in which the date is at
    /// most one day after `reference`). Returns the instant and how many bytes it took,
    /// including one following space if present; `None` if the line does not start with a
    /// known form or the date does not exist (Feb 30, hour 25).
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
            Stamp::Offset(c, off) => time_at_offset(&c, off),
            Stamp::Local(c) => self.zone.to_time(&c)?,
            Stamp::Yearless(c) => {
                let zone = &mut self.zone;
                self.years.resolve(c, reference, |c| zone.to_time(c))?
            }
        };
        Some((time, end))
    }
}

/// A checked date and time from parsed fields (`None` for Feb 30).
fn civil(year: u32, month: u32, day: u32, hms: (u8, u8, u8), micros: u32) -> Option<Civil> {
    let (hour, minute, second) = hms;
    let (month, day) = (u8::try_from(month).ok()?, u8::try_from(day).ok()?);
    Civil::new(i64::from(year), month, day, hour, minute, second, micros)
}

/// Recognise one form at the start of `b`: the stamp and the bytes it spans.
fn parse_stamp(b: &[u8]) -> Option<(Stamp, usize)> {
    let first = *b.first()?;
    if first.is_ascii_digit() {
        match (b.get(2), b.get(4)) {
            (_, Some(b'-')) => parse_iso(b),
            (_, Some(b'/')) => parse_slashed(b),
            (Some(b'/'), _) => parse_clf(b),
            _ => parse_epoch(b),
        }
    } else if first.is_ascii_alphabetic() {
        parse_syslog(b)
            .or_else(|| parse_short_full(b))
            .or_else(|| parse_asctime(b))
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
    // `Mmm dd`, `Mmm  d` (syslog's padding) or `Mmm d` (one space, one digit).
    let (day, at) = match (b.get(4)?, b.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => (d - b'0', 6),
        (d, b' ') if d.is_ascii_digit() => (d - b'0', 5),
        (d1, d2) if d1.is_ascii_digit() && d2.is_ascii_digit() => {
            ((d1 - b'0') * 10 + (d2 - b'0'), 6)
        }
        _ => return None,
    };
    if b.get(at) != Some(&b' ') {
        return None;
    }
    let (hour, minute, second) = hms(b, at + 1)?;
    let (micros, end) = fraction(b, at + 9);
    // Feb 29 passes here; the year inference checks it again in each candidate year.
    let c = Civil::yearless(month, day, hour, minute, second, micros)?;
    Some((Stamp::Yearless(c), end))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.,f][Z|±HH:MM|±HHMM|±HH]`.
fn parse_iso(b: &[u8]) -> Option<(Stamp, usize)> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hms = hms(b, 11)?;
    let (micros, end) = fraction(b, 19);
    let c = civil(year, month, day, hms, micros)?;
    match offset(b, end)? {
        (Some(off), end) => Some((Stamp::Offset(c, off), end)),
        (None, end) => Some((Stamp::Local(c), end)),
    }
}

/// journalctl's `short-full`: `Www YYYY-MM-DD HH:MM:SS[.f] ZONE`. The weekday is checked
/// against the date's own and the zone must be one (`UTC`, `GMT`, `±HHMM`, or 2–5
/// capitals), so a line that merely starts with a word and a date is not taken.
fn parse_short_full(b: &[u8]) -> Option<(Stamp, usize)> {
    let weekday = weekday_from_abbrev(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') || !b.get(4).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let (Stamp::Local(c), end) = parse_iso(&b[4..])? else {
        return None;
    };
    if c.weekday() != weekday {
        return None;
    }
    let end = end + 4;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let zone = end + 1;
    let len = b[zone..]
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-'))
        .count();
    let name = &b[zone..zone + len];
    if len == 0 || b.get(zone + len).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if name.eq_ignore_ascii_case(b"UTC") || name.eq_ignore_ascii_case(b"GMT") {
        return Some((Stamp::Offset(c, 0), zone + len));
    }
    if matches!(name.first(), Some(b'+' | b'-')) {
        return match offset(b, zone)? {
            (Some(off), end) if end == zone + len => Some((Stamp::Offset(c, off), end)),
            _ => None,
        };
    }
    // A zone abbreviation (CET, CEST, EST, AEDT): 2 to 5 capitals; a host name is not one.
    if !(2..=5).contains(&len) || !name.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    Some((Stamp::Local(c), zone + len))
}

/// C's `asctime`/`ctime`: `Www Mmm dd HH:MM:SS[.f] YYYY` (vsftpd's own log, Apache's error
/// log in brackets), the day padded with a space or not. The weekday is checked against
/// the date's own.
fn parse_asctime(b: &[u8]) -> Option<(Stamp, usize)> {
    let weekday = weekday_from_abbrev(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (Stamp::Yearless(c), end) = parse_syslog(&b[4..])? else {
        return None;
    };
    let end = end + 4;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let year = digits(b, end + 1, 4)?;
    if b.get(end + 5).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let c = c.with_year(i64::from(year))?;
    if c.weekday() != weekday {
        return None;
    }
    Some((Stamp::Local(c), end + 5))
}

/// `YYYY/MM/DD HH:MM:SS` (nginx's error log), local time.
fn parse_slashed(b: &[u8]) -> Option<(Stamp, usize)> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'/') || b.get(7) != Some(&b'/') || b.get(10) != Some(&b' ') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hms = hms(b, 11)?;
    let (micros, end) = fraction(b, 19);
    Some((Stamp::Local(civil(year, month, day, hms, micros)?), end))
}

/// `Mon`…`Sun` (any letter case) as 0…6, Monday first.
fn weekday_from_abbrev(b: &[u8]) -> Option<u8> {
    let lower = [b.first()? | 0x20, b.get(1)? | 0x20, b.get(2)? | 0x20];
    Some(match &lower {
        b"mon" => 0,
        b"tue" => 1,
        b"wed" => 2,
        b"thu" => 3,
        b"fri" => 4,
        b"sat" => 5,
        b"sun" => 6,
        _ => return None,
    })
}

/// `dd/Mmm/YYYY:HH:MM:SS[ ±HHMM]` (Apache and nginx access logs).
fn parse_clf(b: &[u8]) -> Option<(Stamp, usize)> {
    let day = digits(b, 0, 2)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let month = month_from_abbrev(b.get(3..6)?)?;
    let year = digits(b, 7, 4)?;
    let hms = hms(b, 12)?;
    let (micros, end) = fraction(b, 20);
    let c = civil(year, u32::from(month), day, hms, micros)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(rfc3339: &str) -> Time {
        rfc3339.parse::<jiff::Timestamp>().unwrap().into()
    }

    /// The zones the tables use.
    #[derive(Copy, Clone, Debug)]
    enum Zone {
        Utc,
        /// Central European time from a POSIX rule: no system tzdb needed.
        Cet,
    }

    fn parser(zone: Zone) -> DateParser {
        DateParser::new(match zone {
            Zone::Utc => TimeZone::UTC,
            Zone::Cet => TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
        })
    }

    const REF: &str = "2026-11-25T12:00:00Z";

    /// (zone, line, reference, instant, bytes taken or `None` for "not checked").
    type Case = (
        Zone,
        &'static str,
        &'static str,
        &'static str,
        Option<usize>,
    );

    #[rustfmt::skip]
    const PARSES: &[Case] = &[
        // Syslog: two-digit and padded days, fractions, end of line (no space to consume).
        (Zone::Utc, "Nov 25 08:00:01 host sshd[1]: x", REF, "2026-11-25T08:00:01Z", Some(16)),
        (Zone::Utc, "Nov  5 08:00:01 host", REF, "2026-11-05T08:00:01Z", Some(16)),
        (Zone::Utc, "Nov 25 08:00:01.250 host", REF, "2026-11-25T08:00:01.25Z", Some(20)),
        (Zone::Utc, "Nov 25 08:00:01", REF, "2026-11-25T08:00:01Z", Some(15)),
        // One space and one digit (some relays), still a date.
        (Zone::Utc, "Nov 2 15:40:14 host sshd[1]: x", REF, "2026-11-02T15:40:14Z", Some(15)),
        (Zone::Utc, "Nov 2 15:40:14.5 host", REF, "2026-11-02T15:40:14.5Z", Some(17)),
        // journalctl -o short-full: UTC exact, a numeric offset exact, a zone name local.
        (Zone::Cet, "Mon 2026-11-02 15:40:14 UTC host sshd[1]: x", REF, "2026-11-02T15:40:14Z", Some(28)),
        (Zone::Cet, "Mon 2026-11-02 15:40:14 CET host", REF, "2026-11-02T14:40:14Z", Some(28)),
        (Zone::Cet, "Wed 2026-07-01 08:00:01 CEST host", REF, "2026-07-01T06:00:01Z", Some(29)),
        (Zone::Utc, "Mon 2026-11-02 15:40:14 +0100 host", REF, "2026-11-02T14:40:14Z", Some(30)),
        (Zone::Utc, "mon 2026-11-02 15:40:14.25 GMT", REF, "2026-11-02T15:40:14.25Z", Some(30)),
        // Syslog in a local zone, winter and summer.
        (Zone::Cet, "Nov 25 08:00:01 h", REF, "2026-11-25T07:00:01Z", None),
        (Zone::Cet, "Jul  1 08:00:01 h", REF, "2026-07-01T06:00:01Z", None),
        // Year rollover: December read in January is last year's.
        (Zone::Utc, "Dec 31 23:59:59 h", "2027-01-01T00:00:10Z", "2026-12-31T23:59:59Z", None),
        // More than one day ahead of the reference: last year; within one day (skew): this.
        (Zone::Utc, "Nov 27 12:00:01 h", REF, "2025-11-27T12:00:01Z", None),
        (Zone::Utc, "Nov 26 11:00:00 h", REF, "2026-11-26T11:00:00Z", None),
        // January read on New Year's Eve is next year's; read mid-year, this year's.
        (Zone::Utc, "Jan  1 00:00:05 h", "2026-12-31T23:59:50Z", "2027-01-01T00:00:05Z", None),
        (Zone::Utc, "Jan  1 00:00:05 h", REF, "2026-01-01T00:00:05Z", None),
        // Local New Year in a zone ahead of UTC.
        (Zone::Cet, "Jan  1 00:20:00 h", "2026-12-31T23:30:00Z", "2026-12-31T23:20:00Z", None),
        // February 29 goes to the last leap year.
        (Zone::Utc, "Feb 29 10:00:00 h", REF, "2024-02-29T10:00:00Z", None),
        (Zone::Utc, "Feb 29 10:00:00 h", "2028-03-01T00:00:00Z", "2028-02-29T10:00:00Z", None),
        // RFC 3339 with fractions and offsets; nanoseconds are cut to microseconds.
        (Zone::Cet, "2026-11-25T08:00:01.123456+01:00 host sshd[1]: x", REF, "2026-11-25T07:00:01.123456Z", Some(33)),
        (Zone::Cet, "2026-11-25T08:00:01Z x", REF, "2026-11-25T08:00:01Z", Some(21)),
        (Zone::Cet, "2026-11-25T08:00:01.5-0530 x", REF, "2026-11-25T13:30:01.5Z", None),
        (Zone::Cet, "2026-11-25T08:00:01+02 x", REF, "2026-11-25T06:00:01Z", None),
        (Zone::Cet, "2026-11-25T08:00:01.123456789Z x", REF, "2026-11-25T08:00:01.123456Z", None),
        // ISO without an offset is local (Python logging's comma fraction too).
        (Zone::Cet, "2026-11-25 08:00:01 x", REF, "2026-11-25T07:00:01Z", Some(20)),
        (Zone::Cet, "2026-07-01 08:00:01.5 x", REF, "2026-07-01T06:00:01.5Z", None),
        (Zone::Cet, "2026-11-25 08:00:01,250 x", REF, "2026-11-25T07:00:01.25Z", None),
        (Zone::Cet, "2026-11-25T08:00:01 x", REF, "2026-11-25T07:00:01Z", None),
        // Epoch seconds (with fractions), milliseconds, microseconds (the instant is the
        // number, whatever the reference).
        (Zone::Utc, "1764057601 x", REF, "2025-11-25T08:00:01Z", Some(11)),
        (Zone::Utc, "1764057601.123456 x", REF, "2025-11-25T08:00:01.123456Z", Some(18)),
        (Zone::Utc, "1764057601.5 x", REF, "2025-11-25T08:00:01.5Z", None),
        (Zone::Utc, "1764057601123 x", REF, "2025-11-25T08:00:01.123Z", None),
        (Zone::Utc, "1764057601123456 x", REF, "2025-11-25T08:00:01.123456Z", None),
        // Bracketed forms, Common Log Format with and without brackets.
        (Zone::Utc, "[2026-11-25 08:00:01] x", REF, "2026-11-25T08:00:01Z", Some(22)),
        (Zone::Utc, "[Nov 25 08:00:01] x", REF, "2026-11-25T08:00:01Z", Some(18)),
        (Zone::Utc, "[1764057601.25] x", REF, "2025-11-25T08:00:01.25Z", None),
        (Zone::Utc, "[25/Nov/2026:08:00:01 +0100] \"GET /\"", REF, "2026-11-25T07:00:01Z", Some(29)),
        (Zone::Utc, "25/Nov/2026:08:00:01 -0200 x", REF, "2026-11-25T10:00:01Z", None),
        // asctime (vsftpd; Apache's error log in brackets, with microseconds): local time,
        // the year its own, the day padded or not.
        (Zone::Cet, "Wed Nov 25 08:00:01 2026 [pid 1] x", REF, "2026-11-25T07:00:01Z", Some(25)),
        (Zone::Utc, "Thu Nov  5 08:00:01 2026 x", REF, "2026-11-05T08:00:01Z", Some(25)),
        (Zone::Utc, "Fri Jan 19 12:20:33 2007 x", REF, "2007-01-19T12:20:33Z", None),
        (Zone::Utc, "[Wed Nov 25 08:00:01.123456 2026] [core:error]", REF, "2026-11-25T08:00:01.123456Z", Some(34)),
        // nginx's error log.
        (Zone::Cet, "2026/11/25 08:00:01 [error] 1#1: x", REF, "2026-11-25T07:00:01Z", Some(20)),
        // DST 2026-03-29: 02:00 CET becomes 03:00 CEST. In the gap, the compatible rule moves
        // the time forward by the gap (02:30 CET).
        (Zone::Cet, "2026-03-29 01:59:59 x", REF, "2026-03-29T00:59:59Z", None),
        (Zone::Cet, "2026-03-29 02:30:00 x", REF, "2026-03-29T01:30:00Z", None),
        (Zone::Cet, "2026-03-29 03:00:00 x", REF, "2026-03-29T01:00:00Z", None),
        (Zone::Cet, "2026-03-29 03:30:00 x", REF, "2026-03-29T01:30:00Z", None),
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; in the fold the earlier instant (CEST).
        (Zone::Cet, "2026-10-25 01:59:59 x", REF, "2026-10-24T23:59:59Z", None),
        (Zone::Cet, "2026-10-25 02:30:00 x", REF, "2026-10-25T00:30:00Z", None),
        (Zone::Cet, "2026-10-25 03:00:00 x", REF, "2026-10-25T02:00:00Z", None),
        // The offset cache must not leak one hour's offset into another across the switch.
        (Zone::Cet, "Mar 29 01:10:00 h", "2026-04-01T00:00:00Z", "2026-03-29T00:10:00Z", None),
        (Zone::Cet, "Mar 29 03:10:00 h", "2026-04-01T00:00:00Z", "2026-03-29T01:10:00Z", None),
        (Zone::Cet, "Mar 29 01:20:00 h", "2026-04-01T00:00:00Z", "2026-03-29T00:20:00Z", None),
        // Year 0 exists (proleptic Gregorian); in CET it starts in year -1 UTC.
        (Zone::Cet, "0000-01-01 00:00:00", "1970-01-01T00:00:00Z", "-000001-12-31T23:00:00Z", None),
    ];

    /// Every case through a fresh parser and through one parser per zone that has seen every
    /// case before it (its caches warm with other hours and references): same answers.
    #[test]
    fn parses_table() {
        let (mut utc, mut cet) = (parser(Zone::Utc), parser(Zone::Cet));
        for &(zone, line, reference, want, len) in PARSES {
            let shared = match zone {
                Zone::Utc => &mut utc,
                Zone::Cet => &mut cet,
            };
            for p in [&mut parser(zone), shared] {
                let got = p.parse_prefix(line.as_bytes(), ts(reference));
                let (time, taken) = got.unwrap_or_else(|| panic!("{line:?}: no date"));
                assert_eq!(time, ts(want), "{line:?} at {reference} in {zone:?}");
                if let Some(len) = len {
                    assert_eq!(taken, len, "{line:?}: bytes taken");
                }
            }
        }
        // What follows the date is the rest of the line.
        assert_eq!(&PARSES[0].1[16..20], "host");
    }

    #[test]
    fn not_dates() {
        let mut p = parser(Zone::Utc);
        for line in [
            // Dates and times that do not exist.
            "Feb 30 10:00:00 h",
            "Nov 31 10:00:00 h",
            "Nov 25 25:00:00 h",
            "Nov 25 10:60:00 h",
            "Nov 25 10:00:61 h",
            "Nov 00 10:00:00 h",
            "2026-02-30 10:00:00 h",
            "2026-13-01 10:00:00 h",
            "2026-00-01 10:00:00 h",
            "2025-02-29 10:00:00 h",
            "2026-11-25 24:00:00 h",
            "2026-11-25T08:00:01+25:00 h",
            "32/Nov/2026:08:00:01 h",
            // Malformed.
            "Foo 25 10:00:00 h",
            "Nov 2  15:40:14 h",
            "Nov 123 15:40:14 h",
            // short-full with the wrong weekday, no zone, or a zone that is not one.
            "Tue 2026-11-02 15:40:14 UTC h",
            "Mon 2026-11-02 15:40:14",
            "Mon 2026-11-02 15:40:14 host",
            "Mon 2026-11-02 15:40:14 UTC1 h",
            "Mon 2026-11-02 15:40:14 +01x h",
            "Mon 2026-11-02T15:40:14Z UTC h",
            // asctime with the wrong weekday, a short year or none; nginx's with a bad day.
            "Thu Nov 25 08:00:01 2026 x",
            "Wed Nov 25 08:00:01 26 x",
            "Wed Nov 25 08:00:01 20261 x",
            "2026/11/31 08:00:01 x",
            "2026/11/25T08:00:01 x",
            "Nov 25 10:00 h",
            "Nov 25 10:00:001 h",
            "2026-11-25X08:00:01 h",
            "2026-11-25T08:00:01Zh",
            "",
            "host sshd[1]: Failed password",
            "-1764057601 x",
            // Unclosed bracket, or a kernel uptime stamp.
            "[2026-11-25 08:00:01 x",
            "[   12.345678] x",
            // Short numbers (pids, counters) are not timestamps.
            "12345 x",
            "17640576011234 x",
            "1764057601x",
        ] {
            assert_eq!(p.parse_prefix(line.as_bytes(), ts(REF)), None, "{line:?}");
        }
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
        for (line, want) in [
            ("Oct 25 02:30:00 h", "2026-10-25T00:30:00Z"),
            ("Mar 29 02:30:00 h", "2026-03-29T01:30:00Z"),
            ("Oct 25 03:30:00 h", "2026-10-25T02:30:00Z"),
        ] {
            assert_eq!(
                p.parse_prefix(line.as_bytes(), ts(REF)).map(|r| r.0),
                Some(ts(want)),
                "{line}"
            );
        }
    }

    #[test]
    fn extreme_references_and_years_never_panic() {
        let mut p = parser(Zone::Cet);
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
    }

    mod props {
        use super::*;
        use jiff::civil::DateTime;
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
                const DAY_SECS: i64 = 86_400;
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                ];
                let line = format!(
                    "{} {:2} {:02}:{:02}:00 host",
                    MONTHS[usize::from(month - 1)], day, hour, minute
                );
                let reference = Time::from_secs(reference_secs);
                let mut p = parser(Zone::Cet);
                match p.parse_prefix(line.as_bytes(), reference) {
                    Some((t, 16)) => {
                        let s = t.as_secs();
                        prop_assert!(s <= reference_secs + DAY_SECS, "{line} -> {t}");
                        // Feb 29 may go back up to 8 years; others less than a year.
                        let back = if month == 2 && day == 29 { 8 * 366 } else { 367 };
                        prop_assert!(s > reference_secs - back * DAY_SECS, "{line} -> {t}");
                    }
                    other => prop_assert!(
                        Civil::yearless(month, day, 0, 0, 0, 0).is_none(),
                        "{line} -> {other:?}"
                    ),
                }
            }
        }
    }
}
