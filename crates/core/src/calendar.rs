//! The calendar both date engines share: civil (wall-clock) dates and times ([`Civil`]),
//! turned into [`Time`]s in a time zone ([`LocalZone`]) or at a fixed offset
//! ([`time_at_offset`]), and the year of dates written without one ([`YearInference`]).
//!
//! The native parser ([`crate::date::DateParser`]) and the Fail2Ban templates
//! (`portcullis_pcre2::DateDetector`) both go through here, so a syslog date means the same
//! instant whichever engine reads it.
//!
//! Key decision: the proleptic Gregorian day count is hand-written (Howard Hinnant's
//! `days_from_civil`), and jiff is asked only for time-zone rules, whose answer (the offset of
//! a local hour) is cached. Going through jiff's `DateTime::new` and `Offset::to_timestamp`
//! for every line cost 15–20 ns on a 25–50 ns parse (criterion, `benches/date.rs`), so the
//! hot path stays arithmetic. Rare work (zone transitions, the reference's date, formatting)
//! is jiff's.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

use crate::time::Time;

const MICROS: i64 = 1_000_000;
const DAY_SECS: i64 = 86_400;

/// A civil date and time of day (proleptic Gregorian, no zone), to the microsecond. Always
/// checked: the day exists in its month and year, the time in a day (a leap second is the
/// caller's to fold into `:59`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
}

impl Civil {
    /// A checked civil time; `None` for Feb 30, month 13, hour 24, minute or second 60,
    /// a million microseconds.
    pub fn new(
        year: i64,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    ) -> Option<Civil> {
        let ok = day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60
            && micros < 1_000_000;
        ok.then_some(Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        })
    }

    /// A date written without a year (syslog), for [`YearInference`]: `None` unless the day
    /// exists in some year (Feb 29 does). The year is a placeholder until
    /// [`Civil::with_year`] sets it.
    pub fn yearless(
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    ) -> Option<Civil> {
        // 2000 is a leap year, so every day that exists in some year exists in it.
        Civil::new(2000, month, day, hour, minute, second, micros)
    }

    /// The same date and time in `year`; `None` if the day does not exist then (Feb 29).
    pub fn with_year(self, year: i64) -> Option<Civil> {
        (self.day <= days_in_month(year, self.month)).then_some(Civil { year, ..self })
    }

    /// The year.
    pub fn year(&self) -> i64 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The day of the week, 0 for Monday to 6 for Sunday (1970-01-01 was a Thursday).
    pub fn weekday(&self) -> u8 {
        // `rem_euclid(7)` is 0..=6, so the cast is lossless.
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as u8
    }

    /// Seconds since 1970-01-01T00:00:00 of this civil time read as UTC.
    fn utc_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY_SECS
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// This date and hour at `minute`:`second`, as a jiff value (`None` out of jiff's range).
    fn jiff_at(&self, minute: u8, second: u8) -> Option<DateTime> {
        // The fields were checked by `new`, so these casts are lossless.
        DateTime::new(
            i16::try_from(self.year).ok()?,
            self.month as i8,
            self.day as i8,
            self.hour as i8,
            minute as i8,
            second as i8,
            0,
        )
        .ok()
    }
}

impl From<DateTime> for Civil {
    /// jiff's civil time (nanoseconds cut to microseconds).
    fn from(dt: DateTime) -> Civil {
        // jiff's fields are checked and in range, so these casts are lossless.
        Civil {
            year: i64::from(dt.year()),
            month: dt.month() as u8,
            day: dt.day() as u8,
            hour: dt.hour() as u8,
            minute: dt.minute() as u8,
            second: dt.second() as u8,
            micros: (dt.subsec_nanosecond() / 1000) as u32,
        }
    }
}

/// The instant of `c` read at a fixed UTC offset of `offset_secs` seconds east of UTC (a log
/// line's `+01:00`, or Fail2Ban's `logtimezone`).
pub fn time_at_offset(c: &Civil, offset_secs: i32) -> Time {
    Time::from_micros((c.utc_seconds() - i64::from(offset_secs)) * MICROS + i64::from(c.micros))
}

/// A time zone that turns local civil times into instants.
///
/// Times in a gap or fold of the zone follow jiff's "compatible" rule: a time in a gap (the
/// skipped hour of spring) moves forward by the gap's length, a time in a fold (the repeated
/// hour of autumn) takes the earlier, pre-transition offset.
///
/// Keeps a small cache (the UTC offset of the last two local hours seen), so a burst of lines
/// from the same hour costs a few comparisons: use one per source. Never allocates.
#[derive(Clone, Debug)]
pub struct LocalZone {
    tz: TimeZone,
    /// Most recently used first. `hour` is local seconds / 3600; `i64::MIN` marks empty.
    cache: [HourOffset; 2],
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

impl LocalZone {
    /// Local times of `tz`.
    pub fn new(tz: TimeZone) -> LocalZone {
        LocalZone {
            tz,
            cache: [EMPTY; 2],
        }
    }

    /// The zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The instant of the local time `c`. `None` outside jiff's range (about the years −9999
    /// to 9999), where the zone's rules are unknown.
    pub fn to_time(&mut self, c: &Civil) -> Option<Time> {
        let local = c.utc_seconds();
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
        Some(time_at_offset(c, offset))
    }

    /// The civil time the clocks of this zone show at `t`. `None` outside jiff's range.
    pub fn civil(&self, t: Time) -> Option<Civil> {
        Some(Civil::from(self.tz.to_datetime(t.to_timestamp()?)))
    }

    /// The offset of the whole local hour of `c`, if its start and end have the same
    /// unambiguous offset (no transition inside it; tzdb has no two transitions within one
    /// hour). `None` for hours in a gap or fold, or out of jiff's range.
    fn hour_offset(&self, c: &Civil) -> Option<i32> {
        let start = c.jiff_at(0, 0)?;
        let end = c.jiff_at(59, 59)?;
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

    /// Resolve a local time in an hour with a transition with the compatible rule.
    fn resolve_exact(&self, c: &Civil) -> Option<Time> {
        let dt = c.jiff_at(c.minute, c.second)?;
        let ts = self.tz.to_ambiguous_timestamp(dt).compatible().ok()?;
        Some(Time::from_micros(
            ts.as_second() * MICROS + i64::from(c.micros),
        ))
    }
}

/// Settles the year of a date written without one (syslog's `Mmm dd HH:MM:SS`), for both
/// date engines: the year is the latest one in which the date is at most one day after the
/// reference ("now" for the reader: the wall clock in the daemon, the file's modification
/// time in `scan`).
///
/// This is Fail2Ban's rule (this year, or last year when this year would put the date more
/// than a day in the future; the day of slack absorbs clock skew and zone differences between
/// writer and reader), carried through both ends of the year and leap days:
/// - with a reference of 2027-01-01, `Dec 31 23:59:59` is in 2026;
/// - with a reference of 2026-12-31T23:59:50Z, `Jan  1 00:00:05` (UTC) is in 2027 (Fail2Ban
///   would say 2026: almost a year ago);
/// - `Feb 29` goes back to the last leap year, up to 8 years (2100 is not one); Fail2Ban
///   finds no date in a non-leap year.
///
/// The comparison is between instants, so the zone or offset of the date counts.
///
/// Keeps the reference's UTC date of the last call: the reference changes far more slowly
/// than lines arrive.
#[derive(Clone, Debug)]
pub struct YearInference {
    /// The UTC day number of the last reference (`i64::MIN`: none yet).
    reference_day: i64,
    /// Its year and month, in UTC.
    year: i64,
    month: u8,
}

impl Default for YearInference {
    fn default() -> Self {
        YearInference::new()
    }
}

impl YearInference {
    /// No reference seen yet.
    pub const fn new() -> YearInference {
        YearInference {
            reference_day: i64::MIN,
            year: 1970,
            month: 1,
        }
    }

    /// The instant of the year-less `date` ([`Civil::yearless`]) in the inferred year.
    /// `instant_of` gives the instant of a candidate (applying the line's zone or offset).
    /// `None` when no year fits (a reference out of jiff's range) or `instant_of` fails.
    pub fn resolve(
        &mut self,
        date: Civil,
        reference: Time,
        mut instant_of: impl FnMut(&Civil) -> Option<Time>,
    ) -> Option<Time> {
        let limit = reference.as_micros().saturating_add(DAY_SECS * MICROS);
        let ref_day = reference.as_secs().div_euclid(DAY_SECS);
        if self.reference_day != ref_day {
            let civil = Civil::from(Offset::UTC.to_datetime(reference.to_timestamp()?));
            self.reference_day = ref_day;
            self.year = civil.year;
            self.month = civil.month;
        }
        let (ref_year, ref_month) = (self.year, self.month);
        // A January date can only belong to next year while the reference is in December
        // (any later year puts it more than a day ahead).
        let first = if date.month == 1 && ref_month == 12 {
            ref_year + 1
        } else {
            ref_year
        };
        // Feb 29 may need to go back up to 8 years (2100 is not a leap year).
        for year in (ref_year - 8..=first).rev() {
            let Some(candidate) = date.with_year(year) else {
                continue;
            };
            let t = instant_of(&candidate)?;
            if t.as_micros() <= limit {
                return Some(t);
            }
        }
        None
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` of `year` (0 for a month that is not 1–12).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(rfc3339: &str) -> Time {
        rfc3339.parse::<jiff::Timestamp>().unwrap().into()
    }

    fn cet() -> LocalZone {
        LocalZone::new(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap())
    }

    fn civil(y: i64, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Civil {
        Civil::new(y, mo, d, h, mi, s, us).unwrap()
    }

    #[test]
    fn checked_civil_times() {
        assert!(Civil::new(2026, 2, 29, 0, 0, 0, 0).is_none());
        assert!(Civil::new(2028, 2, 29, 0, 0, 0, 0).is_some());
        assert!(Civil::new(2026, 13, 1, 0, 0, 0, 0).is_none());
        assert!(Civil::new(2026, 1, 1, 24, 0, 0, 0).is_none());
        assert!(Civil::new(2026, 1, 1, 0, 0, 60, 0).is_none());
        assert!(Civil::new(2026, 1, 1, 0, 0, 0, 1_000_000).is_none());
        let feb29 = Civil::yearless(2, 29, 0, 0, 0, 0).unwrap();
        assert_eq!(feb29.with_year(2027), None);
        assert_eq!(feb29.with_year(2028).map(|c| c.year()), Some(2028));
        assert!(Civil::yearless(2, 30, 0, 0, 0, 0).is_none());
    }

    /// The hand-written day count against jiff's, over ±2000 years.
    #[test]
    fn day_counts_match_jiff() {
        for days in (-730_000..730_000).step_by(997) {
            let date = Offset::UTC
                .to_datetime(jiff::Timestamp::from_second(days * DAY_SECS).unwrap())
                .date();
            let (y, m, d) = (i64::from(date.year()), date.month() as u8, date.day() as u8);
            assert_eq!(days_from_civil(y, m, d), days, "{date}");
            assert_eq!(days_in_month(y, m), date.days_in_month() as u8, "{date}");
        }
    }

    #[test]
    fn offsets_and_zones() {
        let c = civil(2026, 11, 25, 8, 0, 1, 123_456);
        assert_eq!(time_at_offset(&c, 3600), ts("2026-11-25T07:00:01.123456Z"));
        let mut z = cet();
        assert_eq!(z.to_time(&c), Some(ts("2026-11-25T07:00:01.123456Z")));
        // Cached hour, then a summer one, and the way back.
        assert_eq!(
            z.to_time(&civil(2026, 11, 25, 8, 30, 1, 0)),
            Some(ts("2026-11-25T07:30:01Z"))
        );
        let summer = civil(2026, 7, 1, 8, 0, 0, 0);
        assert_eq!(z.to_time(&summer), Some(ts("2026-07-01T06:00:00Z")));
        assert_eq!(z.civil(ts("2026-07-01T06:00:00Z")), Some(summer));
        assert_eq!(z.civil(Time::MAX), None);
        // No zone rules past jiff's range; a fixed offset needs none.
        let far = civil(99_999, 1, 1, 0, 0, 0, 0);
        assert_eq!(z.to_time(&far), None);
        assert!(time_at_offset(&far, 0) > ts("9999-01-01T00:00:00Z"));
    }

    /// The rule through the parser is tested in `date.rs`; here the cases it cannot reach.
    #[test]
    fn year_inference_edges() {
        let utc = |c: &Civil| Some(time_at_offset(c, 0));
        let feb29 = Civil::yearless(2, 29, 10, 0, 0, 0).unwrap();
        let nov26 = Civil::yearless(11, 26, 10, 0, 0, 0).unwrap();
        #[rustfmt::skip]
        let cases = [
            // 2100 is not a leap year: Feb 29 goes back past it, to 2096.
            (feb29, "2101-01-01T00:00:00Z", Some("2096-02-29T10:00:00Z")),
            // The reference's date is cached: a new reference is a new date.
            (nov26, "2026-11-25T12:00:00Z", Some("2026-11-26T10:00:00Z")),
            (nov26, "2026-11-24T12:00:00Z", Some("2025-11-26T10:00:00Z")),
        ];
        let mut shared = YearInference::new();
        for (date, reference, want) in cases {
            for years in [&mut YearInference::new(), &mut shared] {
                let got = years.resolve(date, ts(reference), utc);
                assert_eq!(got, want.map(ts), "{date:?} at {reference}");
            }
        }
        // A reference jiff cannot represent gives no year rather than a wrong one.
        assert_eq!(YearInference::new().resolve(nov26, Time::MAX, utc), None);
    }
}
