//! Lookup cost: a database of 16384 IPv6 /48 and 4096 IPv4 /28 networks (a tree about as
//! deep as GeoLite2's), asked for addresses that hit the per-address cache and for new
//! addresses each time (the cache's worst case), against maxminddb alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_geoip::{GeoIp, Selection};
use portcullis_testkit::mmdb::{self, Entry, Layout};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn entries() -> Vec<Entry> {
    let mut v = Vec::new();
    for i in 0..16_384u32 {
        v.push(Entry {
            net: leak(format!("2001:db8:{:x}::/48", i)),
            country: ["NL", "BR", "JP", "US"][i as usize % 4],
            country_name: "Somewhere",
            asn: 64_500 + i % 500,
            org: "Example Org",
        });
    }
    for i in 0..4096u32 {
        v.push(Entry {
            net: leak(format!(
                "{}.{}.{}.{}/28",
                11 + i / 4096,
                (i / 16) % 256,
                (i % 16) * 16,
                0
            )),
            country: "DE",
            country_name: "Germany",
            asn: 64_999,
            org: "Example Org",
        });
    }
    v
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ipinfo_lite.mmdb");
    mmdb::write(&path, Layout::IpinfoLite, false, &entries());
    let geo = GeoIp::open(&Selection::Files(vec![path.clone()]));
    assert!(geo.take_warnings().is_empty());
    let hot: Vec<IpAddr> = (0..1000u32)
        .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1)))
        .collect();
    let mut g = c.benchmark_group("geoip");
    g.bench_function("cached", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hot.len();
            geo.lookup(hot[i])
        })
    });
    g.bench_function("uncached (new address each time)", |b| {
        let mut n: u32 = 0;
        b.iter(|| {
            n = n.wrapping_add(1);
            let a = IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                (n % 16_384) as u16,
                (n >> 14) as u16,
                0,
                0,
                0,
                n as u16,
            ));
            geo.lookup(a)
        })
    });
    let reader = maxminddb::Reader::open_readfile(&path).expect("open");
    g.bench_function("maxminddb alone (lookup + network, no decode)", |b| {
        let mut n: u32 = 0;
        b.iter(|| {
            n = n.wrapping_add(1);
            let a = IpAddr::V4(Ipv4Addr::new(11, (n % 256) as u8, (n / 256 % 256) as u8, 1));
            reader.lookup(a).map(|r| r.has_data()).unwrap_or(false)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
