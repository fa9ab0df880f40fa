//! Serde for [`Time`] as an RFC 3339 UTC string (`2026-11-25T08:00:00Z`, core's
//! [`Time::rfc3339`]), because the core type carries no serde impl and `--json` readers want
//! dates, not microsecond counts.

use portcullis_core::Time;
use serde::{Deserialize, Deserializer, Serializer};

/// Serialise a [`Time`] as RFC 3339.
pub fn serialize<S: Serializer>(time: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&time.rfc3339())
}

/// Parse an RFC 3339 instant into a [`Time`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

fn parse(text: &str) -> Result<Time, String> {
    let ts: jiff::Timestamp = text
        .parse()
        .map_err(|e| format!("bad time {text:?}: {e}"))?;
    Ok(Time::from(ts))
}

/// The same for `Option<Time>` (`null` when absent).
pub mod option {
    use super::*;

    /// Serialise an optional [`Time`] as RFC 3339 or `null`.
    pub fn serialize<S: Serializer>(time: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.collect_str(&t.rfc3339()),
            None => s.serialize_none(),
        }
    }

    /// Parse an optional RFC 3339 instant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_fraction() {
        let t = Time::from_micros(1_764_057_600_123_456);
        let text = t.to_string();
        assert_eq!(parse(&text), Ok(t));
        assert!(parse("yesterday").is_err());
    }
}
