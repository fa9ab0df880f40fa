//! Where generated addresses come from.
//!
//! Only ranges reserved for documentation and benchmarking appear: 192.0.2.0/24,
//! 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737) first, then 198.18.0.0/15 (RFC 2544) when
//! more distinct IPv4 attackers are asked for, and 2001:db8::/32 (RFC 3849) for IPv6.
//! Attackers are distinct by construction (bijective permutations of an index), never by
//! retrying random draws, so 100k attackers cost 100k steps.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::rng::{Rng, mix64};

/// Addresses that appear only inside attacker-chosen user names (injection attempts); a
/// correct filter never reports them.
pub(crate) const INJECTED: [&str; 3] = ["192.0.2.251", "192.0.2.252", "2001:db8:1::dead"];

/// Legitimate users and their fixed client addresses.
pub(crate) const LEGIT: [(&str, u32, &str); 5] = [
    ("alice", 1000, "192.0.2.10"),
    ("alice", 1000, "2001:db8:1::10"),
    ("bob", 1001, "192.0.2.11"),
    ("carol", 1002, "192.0.2.12"),
    ("deploy", 1003, "192.0.2.13"),
];

/// Usable hosts of the three RFC 5737 /24s minus the reserved 192.0.2.1–19 and .250–254.
fn doc_pool() -> Vec<Ipv4Addr> {
    let mut pool = Vec::with_capacity(762);
    for host in 20..250u8 {
        pool.push(Ipv4Addr::new(192, 0, 2, host));
    }
    for host in 1..=254u8 {
        pool.push(Ipv4Addr::new(198, 51, 100, host));
        pool.push(Ipv4Addr::new(203, 0, 113, host));
    }
    pool
}

/// Hosts of 198.18.0.0/15 without the network and broadcast addresses.
const BENCH_LEN: u64 = (1 << 17) - 2;

fn bench_addr(index: u64) -> Ipv4Addr {
    let v = 0xC612_0000u32 + 1 + index as u32; // 198.18.0.1 + index
    Ipv4Addr::from(v)
}

/// `x -> (a*x + b) mod n`, a bijection on `0..n` when `gcd(a, n) == 1`.
#[derive(Debug, Clone, Copy)]
struct Affine {
    a: u64,
    b: u64,
    n: u64,
}

impl Affine {
    fn new(n: u64, rng: &mut Rng) -> Self {
        let mut a = rng.range(n / 3 + 1, n.max(2) * 2 / 3 + 1) | 1;
        while gcd(a, n) != 1 {
            a += 2;
        }
        Affine {
            a,
            b: rng.below(n.max(1)),
            n,
        }
    }

    fn apply(self, x: u64) -> u64 {
        ((u128::from(self.a) * u128::from(x) + u128::from(self.b)) % u128::from(self.n)) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The largest number of attackers this generator can place.
pub(crate) const MAX_ATTACKERS: u64 = 2_000_000;

/// Builds the text of `count` distinct attacker addresses; a share `ipv6_share` is IPv6.
///
/// Small sets stay inside the RFC 5737 ranges; IPv6 attackers come in clusters of up to three
/// per /64 (as hosting providers hand them out), so /64 aggregation has something to find.
pub(crate) fn attackers(count: u64, ipv6_share: f64, rng: &mut Rng) -> Vec<Box<str>> {
    let doc = doc_pool();
    let doc_perm = Affine::new(doc.len() as u64, rng);
    let bench_perm = Affine::new(BENCH_LEN, rng);
    let v6_key = rng.next_u64();
    let v4_capacity = doc.len() as u64 + BENCH_LEN;
    let mut out = Vec::with_capacity(count as usize);
    let (mut v4, mut v6) = (0u64, 0u64);
    for _ in 0..count {
        let want_v6 = rng.chance(ipv6_share) || v4 >= v4_capacity;
        if want_v6 {
            out.push(v6_addr(v6, v6_key).to_string().into_boxed_str());
            v6 += 1;
        } else {
            let addr = if v4 < doc.len() as u64 {
                doc[doc_perm.apply(v4) as usize]
            } else {
                bench_addr(bench_perm.apply(v4 - doc.len() as u64))
            };
            out.push(addr.to_string().into_boxed_str());
            v4 += 1;
        }
    }
    out
}

/// IPv6 attacker `i`: 2001:db8:hhhh:hhhh::/64 chosen by a bijection of `i / 3` (the top
/// hextet has its high bit set, so it never meets the reserved 2001:db8:1::/48), and an
/// interface id from a bijection of `i`.
fn v6_addr(i: u64, key: u64) -> Ipv6Addr {
    let group = (i / 3) & 0x7FFF_FFFF;
    let prefix = (group.wrapping_mul(0x2545_F491) ^ (key >> 33)) & 0x7FFF_FFFF;
    let iid = mix64(i ^ key);
    Ipv6Addr::new(
        0x2001,
        0x0db8,
        0x8000 | (prefix >> 16) as u16,
        prefix as u16,
        (iid >> 48) as u16,
        (iid >> 32) as u16,
        (iid >> 16) as u16,
        iid as u16,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

    fn in_allowed_ranges(text: &str) -> bool {
        match text.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => {
                let o = a.octets();
                (o[0..3] == [192, 0, 2] && o[3] >= 20 && o[3] < 250)
                    || o[0..3] == [198, 51, 100]
                    || o[0..3] == [203, 0, 113]
                    || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
            }
            IpAddr::V6(a) => {
                let s = a.segments();
                s[0] == 0x2001 && s[1] == 0x0db8 && s[2] & 0x8000 != 0
            }
        }
    }

    #[test]
    fn many_attackers_are_distinct_and_in_reserved_ranges() {
        let mut rng = Rng::new(3);
        let list = attackers(150_000, 0.2, &mut rng);
        let set: HashSet<&str> = list.iter().map(|s| &**s).collect();
        assert_eq!(set.len(), list.len());
        assert!(list.iter().all(|a| in_allowed_ranges(a)));
        let v6 = list.iter().filter(|a| a.contains(':')).count();
        assert!((25_000..35_000).contains(&v6), "{v6}");
    }

    #[test]
    fn small_sets_stay_in_rfc5737() {
        let mut rng = Rng::new(9);
        let list = attackers(300, 0.0, &mut rng);
        assert!(
            list.iter()
                .all(|a| !a.starts_with("198.18.") && !a.starts_with("198.19."))
        );
        assert_eq!(list.iter().collect::<HashSet<_>>().len(), 300);
    }

    #[test]
    fn ipv4_overflow_spills_into_ipv6() {
        let mut rng = Rng::new(1);
        let list = attackers(BENCH_LEN + 800, 0.0, &mut rng);
        assert!(list.iter().any(|a| a.contains(':')));
        assert_eq!(list.iter().collect::<HashSet<_>>().len(), list.len());
    }
}
