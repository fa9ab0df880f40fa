//! The field names of the databases, read into one [`Record`].
//!
//! | layout | country | ASN |
//! |---|---|---|
//! | GeoLite2/GeoIP2 Country and City, DB-IP Lite country and city | `country.iso_code`, `country.names.en` (else `registered_country`) | — |
//! | GeoLite2/GeoIP2 ASN, DB-IP Lite ASN | — | `autonomous_system_number`, `autonomous_system_organization` |
//! | IPinfo Lite (`ipinfo_lite.mmdb`) | `country_code`, `country` (the name) | `asn` (`"AS64500"`), `as_name` |
//! | IPinfo `country_asn.mmdb` | `country` (the code), `country_name` | `asn`, `as_name` |
//!
//! A string `country` is a code when it is two ASCII capitals and there is no
//! `country_code`, else a name.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use portcullis_core::origin::Origin;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// What one database record says, in any of the layouts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Record {
    country: Option<CountryField>,
    registered_country: Option<CountryField>,
    country_code: Option<String>,
    country_name: Option<String>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    asn: Option<AsnField>,
    as_name: Option<String>,
}

/// `country`: a MaxMind map (`iso_code`, `names`) or an IPinfo string.
#[derive(Debug)]
enum CountryField {
    Place {
        iso_code: Option<String>,
        name: Option<String>,
    },
    Text(String),
}

/// `names`: only the English one is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Names {
    en: Option<String>,
}

impl<'de> Deserialize<'de> for CountryField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CountryField, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CountryField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a country map or a country string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CountryField, E> {
                Ok(CountryField::Text(s.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CountryField, A::Error> {
                let (mut iso_code, mut name) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "iso_code" => iso_code = Some(map.next_value::<String>()?),
                        "names" => name = map.next_value::<Names>()?.en,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(CountryField::Place { iso_code, name })
            }
        }
        d.deserialize_any(V)
    }
}

/// `asn`: a number, or IPinfo's `"AS64500"`.
#[derive(Debug)]
struct AsnField(Option<u32>);

impl<'de> Deserialize<'de> for AsnField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AsnField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsnField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number or \"AS<number>\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<AsnField, E> {
                Ok(AsnField(u32::try_from(n).ok()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<AsnField, E> {
                Ok(AsnField(u32::try_from(n).ok()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AsnField, E> {
                let digits = s
                    .strip_prefix("AS")
                    .or_else(|| s.strip_prefix("as"))
                    .unwrap_or(s);
                Ok(AsnField(digits.parse().ok()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The record of `ip` in `reader` and the network it covers; `Ok(None)` when the database
/// has no data for it; `Err` when the database is corrupt where `ip` leads.
pub fn read(
    reader: &maxminddb::Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<(Record, Option<IpNet>)>, String> {
    let found = reader.lookup(ip).map_err(|e| e.to_string())?;
    let Some(rec) = found.decode::<Record>().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let net = found
        .network()
        .ok()
        .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok())
        .map(|n| n.trunc())
        // An IPv4 address answered above the IPv4 subtree has no IPv4 network to name.
        .filter(|n| n.addr().is_ipv4() == ip.is_ipv4());
    Ok(Some((rec, net)))
}

/// Fill what `origin` does not know yet from `rec`.
pub fn merge(origin: &mut Origin, rec: Record) {
    let (mut code, mut name) = (rec.country_code, rec.country_name);
    for field in [rec.country, rec.registered_country].into_iter().flatten() {
        match field {
            CountryField::Place { iso_code, name: n } => {
                code = code.or(iso_code);
                name = name.or(n);
            }
            CountryField::Text(t) if code.is_none() && is_code(&t) => code = Some(t),
            CountryField::Text(t) => name = name.or(Some(t)),
        }
    }
    let asn = rec.autonomous_system_number.or(rec.asn.and_then(|a| a.0));
    let org = rec.autonomous_system_organization.or(rec.as_name);
    fill(&mut origin.country, code.filter(|c| !c.is_empty()));
    fill(&mut origin.country_name, name.filter(|c| !c.is_empty()));
    let org = org.filter(|o| !o.is_empty());
    match (origin.asn, asn) {
        // The organisation goes with its number: never one database's name on another's.
        (None, Some(_)) => {
            origin.asn = asn;
            origin.org = org;
        }
        (None, None) => fill(&mut origin.org, org),
        (Some(_), _) => {}
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn is_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}
