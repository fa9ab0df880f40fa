//! Where an address comes from: its country and autonomous system, as a GeoIP database
//! told the caller. Plain data here (the lookup is `portcullis-geoip`'s job), so the
//! control protocol, the reports and the policy share one shape.

use serde::{Deserialize, Serialize};

/// The country and network owner of one address; every part optional (a database may
/// know only some of them, and no database may be configured at all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// ISO 3166-1 alpha-2 code (`"DE"`), as the database spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The country's English name, when the database has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The autonomous system's organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl Origin {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.country_name.is_none()
            && self.asn.is_none()
            && self.org.is_none()
    }

    /// The country for a column: the code, else the name, else `-`.
    pub fn country_label(&self) -> &str {
        self.country
            .as_deref()
            .or(self.country_name.as_deref())
            .unwrap_or("-")
    }

    /// The autonomous system for a column: `AS64500 Example Org`, `AS64500`, the
    /// organisation alone, or `-`.
    pub fn asn_label(&self) -> String {
        match (self.asn, self.org.as_deref()) {
            (Some(n), Some(o)) => format!("AS{n} {o}"),
            (Some(n), None) => format!("AS{n}"),
            (None, Some(o)) => o.to_owned(),
            (None, None) => "-".to_owned(),
        }
    }
}

/// One row of a by-country or by-AS tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginCount {
    /// `NL`, or `AS64500 Example`; `unknown` for addresses no database knows, `other` for
    /// the rows beyond the top ones.
    pub label: String,
    /// Addresses.
    pub addresses: u64,
    /// Failed attempts from them (0 where not counted, as for bans).
    pub attempts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fall_back_in_order() {
        let mut o = Origin::default();
        assert!(o.is_empty());
        assert_eq!(o.country_label(), "-");
        assert_eq!(o.asn_label(), "-");
        o.country_name = Some("Germany".into());
        assert_eq!(o.country_label(), "Germany");
        o.country = Some("DE".into());
        assert_eq!(o.country_label(), "DE");
        o.org = Some("Example".into());
        assert_eq!(o.asn_label(), "Example");
        o.asn = Some(64500);
        assert_eq!(o.asn_label(), "AS64500 Example");
        assert!(!o.is_empty());
    }
}
