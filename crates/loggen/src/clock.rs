//! The two timestamp prefixes (classic syslog and RFC 3339) and the `--start` value, on jiff.
//!
//! jiff, not portcullis-core, does the calendar (see the crate doc for why). The generator
//! must format a million timestamps a second, so the text of the current second is cached
//! and rebuilt only when the second changes.

use std::io::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::Offset;

use crate::error::StartError;

/// The earliest Unix second the generator writes: 0000-01-01T00:00:00Z (four-digit years).
pub(crate) const FIRST_SECOND: i64 = -62_167_219_200;
/// The last Unix second the generator writes (the end of jiff's range, in year 9999).
pub(crate) fn last_second() -> i64 {
    Timestamp::MAX.as_second()
}

/// Parses the `--start` value: `YYYY-MM-DDTHH:MM:SSZ` (also `+00:00`, or a bare date).
pub fn parse_start(text: &str) -> Result<i64, StartError> {
    let bad = || StartError::Format(text.to_owned());
    let out_of_range = || StartError::OutOfRange(text.to_owned());
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Result<i16, StartError> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part
            .iter()
            .fold(0i16, |acc, c| acc * 10 + i16::from(c - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let (hour, minute, second) = if b.len() == 10 {
        (0, 0, 0)
    } else {
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
            return Err(bad());
        }
        let rest = &text[19.min(text.len())..];
        if b.get(16) != Some(&b':') || !matches!(rest, "Z" | "z" | "+00:00" | "") {
            return Err(bad());
        }
        (num(11, 2)?, num(14, 2)?, num(17, 2)?)
    };
    // Two-digit fields fit in i8; jiff checks the ranges (month 13, Feb 30, hour 24, :60).
    let date = Date::new(year, month as i8, day as i8).map_err(|_| out_of_range())?;
    let dt = jiff::civil::DateTime::new(
        date.year(),
        date.month(),
        date.day(),
        hour as i8,
        minute as i8,
        second as i8,
        0,
    )
    .map_err(|_| out_of_range())?;
    Offset::UTC
        .to_timestamp(dt)
        .map(|ts| ts.as_second())
        .map_err(|_| out_of_range())
}

/// Formats a Unix second as RFC 3339 UTC (`2026-11-20T00:00:00Z`), for the truth file.
/// Seconds jiff cannot represent (the configuration check keeps them out) print as numbers.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |ts| ts.to_string())
}

/// Pushes `n` as decimal with at least `width` digits (zero padded).
pub(crate) fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = tmp.len() - i;
    for _ in digits..width {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Which timestamp prefix the generated lines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// `Nov 20 00:00:01 host prog[pid]: msg` (no year, no zone: classic rsyslog/sysklogd).
    #[default]
    Syslog,
    /// `2026-11-20T00:00:01.123456+00:00 host prog[pid]: msg` (rsyslog high precision).
    Rfc3339,
}

impl Format {
    /// The strftime pattern of the prefix up to and including the seconds.
    fn pattern(self) -> &'static str {
        match self {
            // `%e`: the day padded with a space, as syslog writes it (`Nov  5`).
            Format::Syslog => "%b %e %H:%M:%S",
            Format::Rfc3339 => "%Y-%m-%dT%H:%M:%S",
        }
    }
}

/// Caches the text of the current second so each line only copies bytes.
#[derive(Debug)]
pub(crate) struct Stamp {
    format: Format,
    second: i64,
    /// The prefix up to and including the seconds (`Nov 20 00:00:01` or `2026-11-20T00:00:01`).
    text: Vec<u8>,
}

impl Stamp {
    pub(crate) fn new(format: Format) -> Self {
        Stamp {
            format,
            second: i64::MIN,
            text: Vec::with_capacity(32),
        }
    }

    /// Appends the timestamp for `micros` (Unix microseconds) followed by one space. The
    /// configuration check keeps the times within [`FIRST_SECOND`]..=[`last_second`]; a
    /// second outside (never written) would be clamped to that range.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, micros: i64) {
        let second = micros.div_euclid(1_000_000);
        if second != self.second {
            self.second = second;
            self.text.clear();
            let ts = Timestamp::from_second(second.clamp(FIRST_SECOND, last_second()))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let dt = Offset::UTC.to_datetime(ts);
            // Writing to a Vec cannot fail, and every pattern field exists for a datetime.
            let _ = write!(self.text, "{}", dt.strftime(self.format.pattern()));
        }
        out.extend_from_slice(&self.text);
        if self.format == Format::Rfc3339 {
            out.push(b'.');
            push_padded(out, micros.rem_euclid(1_000_000) as u64, 6);
            out.extend_from_slice(b"+00:00");
        }
        out.push(b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_values_and_truth_times() {
        let s = parse_start("2026-11-20T00:00:00Z").unwrap();
        assert_eq!(s, 1_795_132_800);
        assert_eq!(rfc3339_utc(s), "2026-11-20T00:00:00Z");
        let leap = parse_start("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(rfc3339_utc(leap + 1), "2024-03-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(parse_start("2026-12-31").unwrap() + 86_400),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(parse_start("0000-01-01").unwrap(), FIRST_SECOND);
        assert_eq!(parse_start("1970-01-01 00:00:00").unwrap(), 0);
    }

    #[test]
    fn parse_start_rejects_garbage_and_impossible_dates() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T00:60:00Z",
            "2026-11-20T00:00:60Z",
            "2026-11-20T00:00:00+02:00",
            "20x6-11-20",
            "2026-11-20T00:00",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_start("2026-02-30"),
            Err(StartError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_start("2026-2-3"),
            Err(StartError::Format(_))
        ));
        assert!(parse_start("2026-11-20T00:00:00+00:00").is_ok());
    }

    #[test]
    fn stamps_in_both_formats() {
        let start = parse_start("2026-11-05T07:08:09Z").unwrap() * 1_000_000 + 42;
        let mut out = Vec::new();
        Stamp::new(Format::Syslog).push(&mut out, start);
        assert_eq!(out, b"Nov  5 07:08:09 ");
        out.clear();
        let mut s = Stamp::new(Format::Syslog);
        s.push(&mut out, start + 20 * 86_400_000_000);
        assert_eq!(out, b"Nov 25 07:08:09 ");
        out.clear();
        let mut s = Stamp::new(Format::Rfc3339);
        s.push(&mut out, start);
        s.push(&mut out, start + 1_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-05T07:08:09.000042+00:00 2026-11-05T07:08:10.000042+00:00 "
        );
        out = Vec::new();
        Stamp::new(Format::Rfc3339).push(&mut out, FIRST_SECOND * 1_000_000);
        assert_eq!(out, b"0000-01-01T00:00:00.000000+00:00 ");
    }
}
