//! Small MaxMind-format databases the GeoIP tests write themselves (no data is downloaded),
//! in each layout portcullis reads: GeoLite2/DB-IP country (and city), GeoLite2/DB-IP ASN,
//! IPinfo Lite and IPinfo's older `country_asn`. Networks should come from the
//! documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

use std::path::Path;

use mmdb_writer::{IpVersion, Value, Writer};

/// The layout (field names) of a database.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// GeoLite2-Country: `country { iso_code, names { en } }`, `registered_country`.
    GeoLite2Country,
    /// GeoLite2-City: the country fields plus `city { names }`.
    GeoLite2City,
    /// GeoLite2-ASN: `autonomous_system_number`, `autonomous_system_organization`.
    GeoLite2Asn,
    /// DB-IP Lite country (GeoLite2-compatible field names, its own `database_type`).
    DbIpCountry,
    /// DB-IP Lite ASN.
    DbIpAsn,
    /// IPinfo Lite: `country_code`, `country` (name), `asn` ("AS64500"), `as_name`, …
    IpinfoLite,
    /// IPinfo `country_asn`: `country` (code), `country_name`, `asn`, `as_name`.
    IpinfoCountryAsn,
}

/// One network of a fixture database and what it says.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `ADDR/PREFIX`.
    pub net: &'static str,
    /// ISO code.
    pub country: &'static str,
    /// English country name.
    pub country_name: &'static str,
    /// AS number.
    pub asn: u32,
    /// AS organisation.
    pub org: &'static str,
}

fn names(en: &str) -> Value {
    Value::map([
        ("en", Value::from(en)),
        ("de", Value::from(format!("{en} (de)"))),
    ])
}

fn place(code: &str, name: &str, geoname: u32) -> Value {
    Value::map([
        ("geoname_id", Value::from(geoname)),
        ("iso_code", Value::from(code)),
        ("names", names(name)),
    ])
}

/// The record `layout` stores for `e`.
pub fn record(layout: Layout, e: &Entry) -> Value {
    let country = || {
        [
            ("continent", place("EU", "Europe", 6_255_148)),
            ("country", place(e.country, e.country_name, 1000 + e.asn)),
            (
                "registered_country",
                place(e.country, e.country_name, 1000 + e.asn),
            ),
        ]
    };
    match layout {
        Layout::GeoLite2Country | Layout::DbIpCountry => Value::map(country()),
        Layout::GeoLite2City => {
            let mut fields: Vec<(&str, Value)> = country().into();
            fields.push(("city", Value::map([("names", names("Example City"))])));
            fields.push((
                "location",
                Value::map([
                    ("latitude", Value::from(50.5_f64)),
                    ("longitude", Value::from(8.25_f64)),
                ]),
            ));
            Value::map(fields)
        }
        Layout::GeoLite2Asn | Layout::DbIpAsn => Value::map([
            ("autonomous_system_number", Value::from(e.asn)),
            ("autonomous_system_organization", Value::from(e.org)),
        ]),
        Layout::IpinfoLite => Value::map([
            ("asn", Value::from(format!("AS{}", e.asn))),
            ("as_name", Value::from(e.org)),
            ("as_domain", Value::from("example.net")),
            ("country_code", Value::from(e.country)),
            ("country", Value::from(e.country_name)),
            ("continent_code", Value::from("EU")),
            ("continent", Value::from("Europe")),
        ]),
        Layout::IpinfoCountryAsn => Value::map([
            ("asn", Value::from(format!("AS{}", e.asn))),
            ("as_name", Value::from(e.org)),
            ("as_domain", Value::from("example.net")),
            ("country", Value::from(e.country)),
            ("country_name", Value::from(e.country_name)),
            ("continent", Value::from("EU")),
        ]),
    }
}

/// The `database_type` a real database of `layout` carries.
pub fn database_type(layout: Layout) -> &'static str {
    match layout {
        Layout::GeoLite2Country => "GeoLite2-Country",
        Layout::GeoLite2City => "GeoLite2-City",
        Layout::GeoLite2Asn => "GeoLite2-ASN",
        Layout::DbIpCountry => "DBIP-Country-Lite",
        Layout::DbIpAsn => "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        Layout::IpinfoLite => "ipinfo_lite.mmdb",
        Layout::IpinfoCountryAsn => "ipinfo country_asn.mmdb",
    }
}

/// Write a database of `layout` holding `entries` to `path` (an IPv6 tree with IPv4
/// reachable, as the real ones are; `ipv4_only` writes an IPv4 tree).
pub fn write(path: &Path, layout: Layout, ipv4_only: bool, entries: &[Entry]) {
    let mut w = Writer::builder(database_type(layout))
        .ip_version(if ipv4_only {
            IpVersion::V4
        } else {
            IpVersion::V6
        })
        .build_epoch(std::time::UNIX_EPOCH)
        .build();
    for e in entries {
        let net: mmdb_writer::ipnet::IpNet = e
            .net
            .parse()
            .unwrap_or_else(|err| panic!("fixture network {}: {err}", e.net));
        w.insert_value(net, record(layout, e))
            .unwrap_or_else(|err| panic!("fixture network {}: {err}", e.net));
    }
    let bytes = w
        .to_bytes()
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    std::fs::write(path, bytes).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// Fixture entries over the documentation ranges, IPv4 and IPv6, three countries and ASNs.
pub fn sample_entries() -> Vec<Entry> {
    vec![
        Entry {
            net: "192.0.2.0/24",
            country: "NL",
            country_name: "Netherlands",
            asn: 64_500,
            org: "Example Hosting B.V.",
        },
        Entry {
            net: "198.51.100.0/24",
            country: "BR",
            country_name: "Brazil",
            asn: 64_501,
            org: "Exemplo Telecom <script>",
        },
        Entry {
            net: "203.0.113.0/25",
            country: "JP",
            country_name: "Japan",
            asn: 64_502,
            org: "Rei Networks",
        },
        Entry {
            net: "2001:db8:1::/48",
            country: "NL",
            country_name: "Netherlands",
            asn: 64_500,
            org: "Example Hosting B.V.",
        },
        Entry {
            net: "2001:db8:2::/48",
            country: "US",
            country_name: "United States",
            asn: 64_503,
            org: "Sample Cloud LLC",
        },
    ]
}
