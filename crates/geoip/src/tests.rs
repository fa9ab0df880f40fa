use super::*;
use portcullis_testkit::mmdb::{self, Layout};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn open(files: &[&Path]) -> GeoIp {
    GeoIp::open(&Selection::Files(
        files.iter().map(|p| p.to_path_buf()).collect(),
    ))
}

#[test]
fn every_layout_reads_country_and_asn_for_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let entries = mmdb::sample_entries();
    let cases = [
        (Layout::GeoLite2Country, true, false),
        (Layout::GeoLite2City, true, false),
        (Layout::DbIpCountry, true, false),
        (Layout::GeoLite2Asn, false, true),
        (Layout::DbIpAsn, false, true),
        (Layout::IpinfoLite, true, true),
        (Layout::IpinfoCountryAsn, true, true),
    ];
    for (layout, has_country, has_asn) in cases {
        let path = dir.path().join(format!("{layout:?}.mmdb"));
        mmdb::write(&path, layout, false, &entries);
        let g = open(&[&path]);
        assert!(g.take_warnings().is_empty(), "{layout:?}");
        for (addr, code, name, asn, org) in [
            (
                "192.0.2.7",
                "NL",
                "Netherlands",
                64_500,
                "Example Hosting B.V.",
            ),
            (
                "2001:db8:2::9",
                "US",
                "United States",
                64_503,
                "Sample Cloud LLC",
            ),
            // IPv4-mapped IPv6 is the IPv4 address.
            (
                "::ffff:198.51.100.1",
                "BR",
                "Brazil",
                64_501,
                "Exemplo Telecom <script>",
            ),
        ] {
            let o = g
                .lookup(ip(addr))
                .unwrap_or_else(|| panic!("{layout:?} {addr}"));
            if has_country {
                assert_eq!(o.country.as_deref(), Some(code), "{layout:?} {addr}");
                assert_eq!(o.country_name.as_deref(), Some(name), "{layout:?} {addr}");
            } else {
                assert_eq!(o.country, None, "{layout:?}");
            }
            if has_asn {
                assert_eq!(o.asn, Some(asn), "{layout:?} {addr}");
                assert_eq!(o.org.as_deref(), Some(org), "{layout:?} {addr}");
            } else {
                assert_eq!((o.asn, o.org.as_deref()), (None, None), "{layout:?}");
            }
        }
        // Outside every network: nothing, and no warning.
        assert_eq!(g.lookup(ip("203.0.113.200")), None, "{layout:?}");
        assert_eq!(g.lookup(ip("2001:db8:3::1")), None, "{layout:?}");
        assert!(g.take_warnings().is_empty(), "{layout:?}");
    }
}

#[test]
fn a_country_and_an_asn_database_together_answer_both_and_the_asn_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("GeoLite2-Country.mmdb");
    let a = dir.path().join("GeoLite2-ASN.mmdb");
    mmdb::write(&c, Layout::GeoLite2Country, false, &mmdb::sample_entries());
    mmdb::write(&a, Layout::GeoLite2Asn, false, &mmdb::sample_entries());
    // Discovered in the directory, in KNOWN_FILES order.
    let g = GeoIp::open(&Selection::Discover(dir.path().to_path_buf()));
    assert_eq!(g.paths().len(), 2);
    let o = g.lookup(ip("203.0.113.5")).unwrap();
    assert_eq!(o.country.as_deref(), Some("JP"));
    assert_eq!(o.asn, Some(64_502));
    assert_eq!(o.asn_label(), "AS64502 Rei Networks");
    assert_eq!(
        g.asn_network(ip("203.0.113.5")),
        Some((64_502, "203.0.113.0/25".parse().unwrap()))
    );
    assert_eq!(
        g.asn_network(ip("2001:db8:1::5")),
        Some((64_500, "2001:db8:1::/48".parse().unwrap()))
    );
}

#[test]
fn an_ipv4_only_database_is_not_asked_about_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v4.mmdb");
    mmdb::write(
        &p,
        Layout::GeoLite2Country,
        true,
        &mmdb::sample_entries()[..3],
    );
    let g = open(&[&p]);
    assert_eq!(
        g.lookup(ip("192.0.2.1")).unwrap().country.as_deref(),
        Some("NL")
    );
    assert_eq!(g.lookup(ip("2001:db8:1::1")), None);
    assert!(g.take_warnings().is_empty());
}

#[test]
fn nothing_configured_or_found_is_silent() {
    let g = GeoIp::open(&Selection::Off);
    assert!(g.is_empty());
    assert_eq!(g.lookup(ip("192.0.2.1")), None);
    assert!(g.take_warnings().is_empty());
    let empty = tempfile::tempdir().unwrap();
    let g = GeoIp::open(&Selection::Discover(empty.path().to_path_buf()));
    assert!(g.is_empty());
    assert!(g.take_warnings().is_empty());
    let g = GeoIp::open(&Selection::Discover(empty.path().join("no-such-dir")));
    assert!(g.take_warnings().is_empty());
}

#[test]
fn missing_corrupt_and_truncated_databases_are_warnings_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mmdb");
    mmdb::write(&good, Layout::IpinfoLite, false, &mmdb::sample_entries());
    let missing = dir.path().join("GeoLite2-ASN.mmdb");
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind database\n").unwrap();
    let truncated = dir.path().join("truncated.mmdb");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let g = open(&[&missing, &garbage, &truncated, &good]);
    let warnings = g.take_warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (w, p) in warnings.iter().zip([&missing, &garbage, &truncated]) {
        assert!(w.contains(&p.display().to_string()), "{w}");
    }
    // The good one still answers.
    assert_eq!(g.lookup(ip("192.0.2.1")).unwrap().asn, Some(64_500));
    assert_eq!(g.paths().len(), 1);
}

#[test]
fn a_data_section_corrupted_after_the_tree_is_a_warning_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mmdb");
    mmdb::write(
        &good,
        Layout::GeoLite2Country,
        false,
        &mmdb::sample_entries(),
    );
    let mut bytes = std::fs::read(&good).unwrap();
    // Overwrite everything between the search tree and the metadata with 0xff: every
    // record decodes as garbage (or points out of bounds) while the metadata still reads.
    let marker = b"\xab\xcd\xefMaxMind.com";
    let meta = bytes
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    let data_start = meta.saturating_sub(400).max(meta / 2);
    for b in &mut bytes[data_start..meta] {
        *b = 0xff;
    }
    let bad = dir.path().join("bad.mmdb");
    std::fs::write(&bad, &bytes).unwrap();
    let g = open(&[&bad]);
    let mut warned = g.take_warnings();
    for a in [
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "2001:db8:1::1",
        "2001:db8:2::1",
    ] {
        let _ = g.lookup(ip(a));
        warned.extend(g.take_warnings());
    }
    assert!(!warned.is_empty(), "no warning for a corrupt data section");
    assert!(warned.iter().all(|w| w.contains("bad.mmdb")), "{warned:?}");
}

#[test]
fn the_cache_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.mmdb");
    mmdb::write(&p, Layout::GeoLite2Country, false, &mmdb::sample_entries());
    let g = open(&[&p]);
    for i in 0..(CACHE_ENTRIES as u32 + 100) {
        let a = IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0001_u128 << 80 | u128::from(i),
        ));
        assert_eq!(g.lookup(a).unwrap().country.as_deref(), Some("NL"));
        assert!(lock(&g.cache).len() <= CACHE_ENTRIES);
    }
}
