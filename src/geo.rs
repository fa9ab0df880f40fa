//! GeoIP for the commands: which databases a configuration (or `--geoip`) names, and the
//! by-country and by-AS tallies `scan`, `investigate` and `status` show.

use std::collections::HashMap;
use std::path::PathBuf;

use portcullis_config::{GeoIpDatabases, GeoIpSettings};
use portcullis_core::origin::Origin;
use portcullis_geoip::{GeoIp, Selection};

/// The databases of `settings`, or `files` when any are given (`--geoip`).
pub fn selection(settings: &GeoIpSettings, files: &[PathBuf]) -> Selection {
    if !files.is_empty() {
        return Selection::Files(files.to_vec());
    }
    match &settings.databases {
        GeoIpDatabases::Auto => Selection::Discover(settings.directory.clone()),
        GeoIpDatabases::Off => Selection::Off,
        GeoIpDatabases::Files(f) => Selection::Files(f.clone()),
    }
}

/// Open for an offline command: warnings go to stderr (those commands have no log).
pub fn open_offline(settings: &GeoIpSettings, files: &[PathBuf]) -> GeoIp {
    let geo = GeoIp::open(&selection(settings, files));
    warn_offline(&geo);
    geo
}

/// Print the warnings `geo` has gathered (databases that would not open, or turned out
/// corrupt during lookups) on stderr.
pub fn warn_offline(geo: &GeoIp) {
    for w in geo.take_warnings() {
        eprintln!("portcullis: {w}");
    }
}

pub use portcullis_core::origin::OriginCount;

/// By-country and by-AS tallies of `(origin, attempts)` per address, most addresses first
/// (then most attempts, then label), at most `top` rows each (the rest summed into
/// `other`).
pub fn tally<'a>(
    rows: impl IntoIterator<Item = (Option<&'a Origin>, u64)>,
    top: usize,
) -> (Vec<OriginCount>, Vec<OriginCount>) {
    let mut countries: HashMap<String, (u64, u64)> = HashMap::new();
    let mut systems: HashMap<String, (u64, u64)> = HashMap::new();
    for (origin, attempts) in rows {
        let (c, a) = match origin {
            Some(o) => (
                o.country.clone().or_else(|| o.country_name.clone()),
                (o.asn.is_some() || o.org.is_some()).then(|| o.asn_label()),
            ),
            None => (None, None),
        };
        for (map, key) in [(&mut countries, c), (&mut systems, a)] {
            let e = map
                .entry(key.unwrap_or_else(|| "unknown".into()))
                .or_default();
            e.0 += 1;
            e.1 += attempts;
        }
    }
    (ranked(countries, top), ranked(systems, top))
}

fn ranked(map: HashMap<String, (u64, u64)>, top: usize) -> Vec<OriginCount> {
    let mut rows: Vec<OriginCount> = map
        .into_iter()
        .map(|(label, (addresses, attempts))| OriginCount {
            label,
            addresses,
            attempts,
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.addresses, b.attempts, &a.label).cmp(&(a.addresses, a.attempts, &b.label))
    });
    if rows.len() > top {
        let rest = rows.split_off(top);
        rows.push(OriginCount {
            label: "other".into(),
            addresses: rest.iter().map(|r| r.addresses).sum(),
            attempts: rest.iter().map(|r| r.attempts).sum(),
        });
    }
    rows
}

/// `NL 12 (340), BR 3 (20), …` for a one-line summary.
pub fn summary_line(rows: &[OriginCount]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} ({})",
                crate::text::escape_terminal(&r.label),
                r.addresses,
                r.attempts
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(c: &str, asn: u32) -> Origin {
        Origin {
            country: Some(c.into()),
            asn: Some(asn),
            org: Some(format!("Org{asn}")),
            ..Origin::default()
        }
    }

    #[test]
    fn tallies_rank_by_addresses_and_fold_the_rest() {
        let (nl, br, jp) = (o("NL", 1), o("BR", 2), o("JP", 3));
        let rows = vec![
            (Some(&nl), 10),
            (Some(&nl), 5),
            (Some(&br), 100),
            (Some(&jp), 1),
            (None, 7),
        ];
        let (c, a) = tally(rows, 2);
        assert_eq!(
            c[0],
            OriginCount {
                label: "NL".into(),
                addresses: 2,
                attempts: 15
            }
        );
        assert_eq!(c[1].label, "BR");
        assert_eq!(
            c[2],
            OriginCount {
                label: "other".into(),
                addresses: 2,
                attempts: 8
            }
        );
        assert_eq!(a[0].label, "AS1 Org1");
        assert_eq!(summary_line(&c[..1]), "NL 2 (15)");
    }
}
