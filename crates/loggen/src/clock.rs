//! Calendar arithmetic and the two timestamp prefixes (classic syslog and RFC 3339).
//!
//! Hand-written (Howard Hinnant's days/civil algorithms) because the generator only needs UTC
//! and must format a million timestamps a second: the text of the current second is cached
//! and rebuilt only when the second changes.

use crate::error::StartError;

/// Month abbreviations as syslog writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A civil UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil UTC date and time of a Unix second.
pub(crate) fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: (sod / 60 % 60) as u32,
        second: (sod % 60) as u32,
    }
}

/// Parses the `--start` value: `YYYY-MM-DDTHH:MM:SSZ` (also `+00:00`, or a bare date).
pub fn parse_start(text: &str) -> Result<i64, StartError> {
    let bad = || StartError::Format(text.to_owned());
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Result<u32, StartError> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part
            .iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')))
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
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(StartError::OutOfRange(text.to_owned()));
    }
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_unix(days * 86_400).day != day {
        return Err(StartError::OutOfRange(text.to_owned()));
    }
    Ok(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// Formats a Unix second as RFC 3339 UTC (`2026-11-20T00:00:00Z`), for the truth file.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
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

    /// Appends the timestamp for `micros` (Unix microseconds) followed by one space.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, micros: i64) {
        let second = micros.div_euclid(1_000_000);
        if second != self.second {
            self.second = second;
            self.text.clear();
            let c = civil_from_unix(second);
            match self.format {
                Format::Syslog => {
                    self.text
                        .extend_from_slice(MONTHS[(c.month - 1) as usize].as_bytes());
                    self.text.push(b' ');
                    if c.day < 10 {
                        self.text.push(b' ');
                    }
                    push_padded(&mut self.text, u64::from(c.day), 1);
                    self.text.push(b' ');
                }
                Format::Rfc3339 => {
                    push_padded(&mut self.text, c.year.max(0) as u64, 4);
                    self.text.push(b'-');
                    push_padded(&mut self.text, u64::from(c.month), 2);
                    self.text.push(b'-');
                    push_padded(&mut self.text, u64::from(c.day), 2);
                    self.text.push(b'T');
                }
            }
            push_padded(&mut self.text, u64::from(c.hour), 2);
            self.text.push(b':');
            push_padded(&mut self.text, u64::from(c.minute), 2);
            self.text.push(b':');
            push_padded(&mut self.text, u64::from(c.second), 2);
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
    fn civil_round_trips_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let s = parse_start("2026-11-20T00:00:00Z").unwrap();
        assert_eq!(s, 1_795_132_800);
        assert_eq!(rfc3339_utc(s), "2026-11-20T00:00:00Z");
        let leap = parse_start("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(rfc3339_utc(leap + 1), "2024-03-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(parse_start("2026-12-31").unwrap() + 86_400),
            "2027-01-01T00:00:00Z"
        );
    }

    #[test]
    fn parse_start_rejects_garbage_and_impossible_dates() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T00:00:00+02:00",
            "20x6-11-20",
            "2026-11-20T00:00",
        ] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
        assert!(parse_start("2026-11-20T00:00:00+00:00").is_ok());
    }

    #[test]
    fn stamps_in_both_formats() {
        let start = parse_start("2026-11-05T07:08:09Z").unwrap() * 1_000_000 + 42;
        let mut out = Vec::new();
        Stamp::new(Format::Syslog).push(&mut out, start);
        assert_eq!(out, b"Nov  5 07:08:09 ");
        out.clear();
        let mut s = Stamp::new(Format::Rfc3339);
        s.push(&mut out, start);
        s.push(&mut out, start + 1_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-05T07:08:09.000042+00:00 2026-11-05T07:08:10.000042+00:00 "
        );
    }
}
