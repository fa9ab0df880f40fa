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
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// RFC 3339 in UTC, e.g. `2026-11-25T08:00:00Z` (fractions only when present).
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_secs(10);
        assert_eq!(t.saturating_add(Duration::from_secs(5)), Time::from_secs(15));
        assert_eq!(Time::MAX.saturating_add(Duration::from_secs(1)), Time::MAX);
        assert_eq!(Time::from_secs(1).since(Time::from_secs(3)), Duration::ZERO);
        assert_eq!(Time::from_secs(0).to_string(), "1970-01-01T00:00:00Z");
    }
}
