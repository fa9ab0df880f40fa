//! Wall-clock instants as plain integers, so the core never reads a clock.

use std::fmt;
use std::time::Duration;

/// A wall-clock instant: microseconds since the Unix epoch, UTC.
///
/// Why not `Instant`: bans outlive restarts, `scan` runs on log time, and tests use a fake
/// clock, so every instant here is a value the caller chose.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(i64);

impl Time {
    /// The Unix epoch.
    pub const EPOCH: Time = Time(0);
    /// The largest representable instant; used as "never".
    pub const MAX: Time = Time(i64::MAX);

    /// An instant from microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Time {
        Time(us)
    }
    /// An instant from whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Time {
        Time(s.saturating_mul(1_000_000))
    }
    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    /// Whole seconds since the epoch (rounded toward negative infinity).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    /// `self + d`, saturating at [`Time::MAX`].
    pub fn saturating_add(self, d: Duration) -> Time {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Time(self.0.saturating_add(us))
    }
    /// `self - d`, saturating at `i64::MIN`.
    pub fn saturating_sub(self, d: Duration) -> Time {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Time(self.0.saturating_sub(us))
    }
    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// The same instant as a jiff timestamp; `None` outside jiff's range (about the years
    /// −9999 to 9999), e.g. for [`Time::MAX`].
    pub fn to_timestamp(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_microsecond(self.0).ok()
    }

    /// RFC 3339 in UTC, e.g. `2026-11-25T08:00:00Z`, with a fraction (`.25`, `.123456`) only
    /// when the instant has one: the machine-readable form (`--json`, reports, the store's
    /// text). The same text as [`Display`](fmt::Display). Outside jiff's range: `@<micros>us`.
    pub fn rfc3339(self) -> Rfc3339 {
        Rfc3339(self)
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC, e.g. `2026-11-25 08:00:00`: the form for tables read by
    /// people. The fraction is cut (not rounded), and no zone is printed, so say "UTC" where
    /// the reader cannot know. Outside jiff's range: the [`Time::rfc3339`] fallback.
    pub fn short_utc(self) -> ShortTime<'static> {
        ShortTime {
            time: self,
            zone: None,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` as the clocks in `zone` show this instant (the fraction cut, no
    /// zone or offset printed), e.g. `2026-11-25 09:00:00` in Europe/Berlin for
    /// `2026-11-25T08:00:00Z`. Outside jiff's range: the [`Time::rfc3339`] fallback.
    pub fn short_in(self, zone: &jiff::tz::TimeZone) -> ShortTime<'_> {
        ShortTime {
            time: self,
            zone: Some(zone),
        }
    }
}

impl From<jiff::Timestamp> for Time {
    /// The instant in whole microseconds (jiff's `as_microsecond`: nanoseconds dropped).
    fn from(ts: jiff::Timestamp) -> Time {
        Time(ts.as_microsecond())
    }
}

/// [`Time::rfc3339`]: RFC 3339 in UTC.
#[derive(Copy, Clone, Debug)]
pub struct Rfc3339(Time);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.to_timestamp() {
            Some(ts) => write!(f, "{ts}"),
            None => write!(f, "@{}us", self.0.0),
        }
    }
}

/// [`Time::short_utc`] and [`Time::short_in`]: `YYYY-MM-DD HH:MM:SS` in UTC or a zone.
#[derive(Copy, Clone, Debug)]
pub struct ShortTime<'z> {
    time: Time,
    /// `None` = UTC.
    zone: Option<&'z jiff::tz::TimeZone>,
}

impl fmt::Display for ShortTime<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHORT: &str = "%Y-%m-%d %H:%M:%S";
        // Padded, so table columns (`{:<20}`) line up.
        let text = match (self.time.to_timestamp(), self.zone) {
            (None, _) => self.time.rfc3339().to_string(),
            (Some(ts), None) => ts.strftime(SHORT).to_string(),
            (Some(ts), Some(zone)) => zone.to_datetime(ts).strftime(SHORT).to_string(),
        };
        f.pad(&text)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// RFC 3339 in UTC, e.g. `2026-11-25T08:00:00Z` (fractions only when present): see
/// [`Time::rfc3339`].
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.rfc3339(), f)
    }
}

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing but blanks.
    #[error("empty duration")]
    Empty,
    /// A character where a number was expected (this includes a leading `-`).
    #[error("expected a number at {found:?} (durations look like 90, 10m, 1h30m, 7d, 1w)")]
    ExpectedNumber {
        /// The rest of the text from the offending character.
        found: String,
    },
    /// A number followed by an unknown unit.
    #[error("unknown duration unit {unit:?} (use s, m, h, d, w, mo or y)")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// The total does not fit in 64-bit seconds.
    #[error("duration too large")]
    Overflow,
}

/// Parse a configuration duration: a sequence of `<number><unit>` parts, optionally separated
/// by blanks, summed (`1h30m`, `1h 30m`); a bare number is seconds (`90`).
///
/// Units: `s`/`sec`/`second(s)`, `m`/`min`/`minute(s)`, `h`/`hour(s)`, `d`/`day(s)`,
/// `w`/`week(s)`, `mo`/`month(s)` (30 days), `y`/`year(s)` (365 days); letter case is ignored.
/// Numbers are whole (`1.5h` is an error; write `1h30m`). Negative values are not durations:
/// Fail2Ban's `-1` ("forever") gives an error, and the caller decides what it means.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut parts = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(DurationError::ExpectedNumber {
                found: text[start..].to_string(),
            });
        }
        let number: u64 = text[start..i]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &text[unit_start..i];
        let scale = unit_seconds(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
        })?;
        total = number
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or(DurationError::Overflow)?;
        parts += 1;
    }
    if parts == 0 {
        return Err(DurationError::Empty);
    }
    Ok(Duration::from_secs(total))
}

/// Seconds in one `unit` (empty = seconds).
fn unit_seconds(unit: &str) -> Option<u64> {
    const DAY: u64 = 86_400;
    let lower = unit.to_ascii_lowercase();
    Some(match lower.as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7 * DAY,
        "mo" | "month" | "months" => 30 * DAY,
        "y" | "year" | "years" => 365 * DAY,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("90"), Ok(s(90)));
        assert_eq!(parse_duration("10m"), Ok(s(600)));
        assert_eq!(parse_duration("1h"), Ok(s(3600)));
        assert_eq!(parse_duration("7d"), Ok(s(7 * 86_400)));
        assert_eq!(parse_duration("1w"), Ok(s(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        assert_eq!(parse_duration(" 1h 30m 15s "), Ok(s(5415)));
        assert_eq!(parse_duration("2 hours"), Ok(s(7200)));
        assert_eq!(parse_duration("1mo"), Ok(s(30 * 86_400)));
        assert_eq!(parse_duration("1Y"), Ok(s(365 * 86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_errors() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("-1"),
            Err(DurationError::ExpectedNumber { .. })
        ));
        assert!(matches!(
            parse_duration("h"),
            Err(DurationError::ExpectedNumber { .. })
        ));
        assert!(matches!(
            parse_duration("1.5h"),
            Err(DurationError::ExpectedNumber { .. })
        ));
        assert_eq!(
            parse_duration("10x"),
            Err(DurationError::UnknownUnit { unit: "x".into() })
        );
        assert_eq!(
            parse_duration("99999999999999999999"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("999999999999999y"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_secs(10);
        assert_eq!(
            t.saturating_add(Duration::from_secs(5)),
            Time::from_secs(15)
        );
        assert_eq!(Time::MAX.saturating_add(Duration::from_secs(1)), Time::MAX);
        assert_eq!(Time::from_secs(1).since(Time::from_secs(3)), Duration::ZERO);
        assert_eq!(Time::from_secs(0).to_string(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn formats_name_their_zone() {
        let berlin = jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let t = Time::from_micros(1_795_593_600_250_000); // 2026-11-25T08:00:00.25Z
        for (got, want) in [
            (t.to_string(), "2026-11-25T08:00:00.25Z"),
            (t.rfc3339().to_string(), "2026-11-25T08:00:00.25Z"),
            (
                Time::from_secs(1_795_593_600).to_string(),
                "2026-11-25T08:00:00Z",
            ),
            (t.short_utc().to_string(), "2026-11-25 08:00:00"),
            (t.short_in(&berlin).to_string(), "2026-11-25 09:00:00"),
            (Time::MAX.to_string(), "@9223372036854775807us"),
            (Time::MAX.short_utc().to_string(), "@9223372036854775807us"),
        ] {
            assert_eq!(got, want);
        }
        let ts: jiff::Timestamp = "2026-11-25T08:00:00.123456789Z".parse().unwrap();
        assert_eq!(Time::from(ts), Time::from_micros(1_795_593_600_123_456));
        assert_eq!(
            Time::from(ts).to_timestamp().map(|t| t.as_microsecond()),
            Some(1_795_593_600_123_456)
        );
    }
}
