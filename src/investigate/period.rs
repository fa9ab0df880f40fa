//! `--since` / `--until`: a duration ago or a date, read with jiff.

use anyhow::{Context, Result, anyhow};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use portcullis_core::Time;
use portcullis_core::time::parse_duration;

/// A point in time from `text`: a duration before `now` (`2h`, `7d`, `1h30m`), an RFC 3339
/// instant, `YYYY-MM-DD` (start of that day in `tz`), or `YYYY-MM-DD HH:MM[:SS]` (also with
/// `T`) in `tz`.
pub fn parse_point(text: &str, now: Time, tz: &TimeZone) -> Result<Time> {
    let text = text.trim();
    if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains('-') {
        let d = parse_duration(text).with_context(|| format!("{text:?}"))?;
        return Ok(now.saturating_sub(d));
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(Time::from_micros(ts.as_microsecond()));
    }
    // DateTime first: jiff's Date parser also accepts a date-time and drops the time.
    let zoned = if let Ok(dt) = text.replacen(' ', "T", 1).parse::<DateTime>() {
        dt.to_zoned_datetime(tz.clone())
    } else if let Ok(date) = text.parse::<Date>() {
        date.to_datetime(jiff::civil::Time::midnight())
            .to_zoned_datetime(tz.clone())
    } else {
        return Err(anyhow!(
            "{text:?} is neither a duration ago (2h, 7d) nor a date (RFC 3339, YYYY-MM-DD, \
             \"YYYY-MM-DD HH:MM\")"
        ));
    };
    let zoned = zoned.with_context(|| format!("{text:?}"))?;
    Ok(Time::from_micros(zoned.timestamp().as_microsecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time::from_micros(s.parse::<jiff::Timestamp>().unwrap().as_microsecond())
    }

    #[test]
    fn durations_dates_and_instants() {
        let now = at("2026-11-25T10:00:00Z");
        let utc = TimeZone::UTC;
        assert_eq!(
            parse_point("2h", now, &utc).unwrap(),
            at("2026-11-25T08:00:00Z")
        );
        assert_eq!(
            parse_point("7d", now, &utc).unwrap(),
            at("2026-11-18T10:00:00Z")
        );
        assert_eq!(
            parse_point("90", now, &utc).unwrap(),
            at("2026-11-25T09:58:30Z")
        );
        assert_eq!(
            parse_point("2026-11-20T01:02:03+02:00", now, &utc).unwrap(),
            at("2026-11-19T23:02:03Z")
        );
        assert_eq!(
            parse_point("2026-11-20", now, &utc).unwrap(),
            at("2026-11-20T00:00:00Z")
        );
        assert_eq!(
            parse_point("2026-11-20 13:45", now, &utc).unwrap(),
            at("2026-11-20T13:45:00Z")
        );
        assert_eq!(
            parse_point("2026-11-20 13:45:10", now, &utc).unwrap(),
            at("2026-11-20T13:45:10Z")
        );
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            parse_point("2026-11-20", now, &paris).unwrap(),
            at("2026-11-19T23:00:00Z")
        );
        for bad in ["yesterday", "2026-13-01", "-2h", "2h fortnights", ""] {
            assert!(parse_point(bad, now, &utc).is_err(), "{bad:?} accepted");
        }
    }
}
