//! [`AddrTable`]: per-address state, one table, compact at a million addresses.
//!
//! A `HashMap<IpAddr, V>` pays for its slots twice over at scale: hashbrown grows at 7/8
//! load by doubling, so 1M addresses sit in 2^21 slots of `key + value` bytes, all of them
//! touched (resident). Here the hash table holds only a 16-byte key and a 4-byte index
//! (2^21 × 21 bytes ≈ 44 MB at 1M) and the values live densely in one `Vec` (a removal
//! moves the last one into the hole), whose unused capacity is never touched and so
//! costs no resident memory. Keys are attacker-chosen: the table keeps std's SipHash with
//! a per-process random key (see `docs/counting.md`, and the HashDoS note in the engine).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// An address as 16 bytes: IPv4 as its IPv4-mapped IPv6 form. The engine keys only
/// normalised addresses (a mapped IPv6 address is turned into IPv4 first), so this is
/// one-to-one.
type Key = [u8; 16];

fn key(addr: &IpAddr) -> Key {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn addr(key: &Key) -> IpAddr {
    Ipv6Addr::from(*key).to_canonical()
}

/// A map from (normalised) addresses to `V`: an index of positions plus a dense `Vec`.
/// Iteration order is the insertion order perturbed by removals: callers that need a
/// reproducible order sort.
#[derive(Clone, Debug)]
pub(crate) struct AddrTable<V> {
    index: HashMap<Key, u32>,
    slots: Vec<(Key, V)>,
}

impl<V> Default for AddrTable<V> {
    fn default() -> AddrTable<V> {
        AddrTable {
            index: HashMap::new(),
            slots: Vec::new(),
        }
    }
}

impl<V> AddrTable<V> {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The position of `addr`'s value, for [`at`](Self::at) / [`at_mut`](Self::at_mut).
    pub(crate) fn find(&self, addr: &IpAddr) -> Option<usize> {
        self.index.get(&key(addr)).map(|&i| i as usize)
    }

    pub(crate) fn at(&self, i: usize) -> &V {
        &self.slots[i].1
    }

    pub(crate) fn at_mut(&mut self, i: usize) -> &mut V {
        &mut self.slots[i].1
    }

    pub(crate) fn get(&self, addr: &IpAddr) -> Option<&V> {
        self.find(addr).map(|i| self.at(i))
    }

    pub(crate) fn get_mut(&mut self, addr: &IpAddr) -> Option<&mut V> {
        self.find(addr).map(|i| self.at_mut(i))
    }

    /// Adds `value` for `addr`, which must not be in the table; returns its position.
    pub(crate) fn push_new(&mut self, addr: &IpAddr, value: V) -> usize {
        let k = key(addr);
        let i = self.slots.len();
        // 2^32 addresses would take hundreds of GB first: the index never overflows.
        let pos = u32::try_from(i).unwrap_or(u32::MAX);
        debug_assert!(!self.index.contains_key(&k), "{addr}");
        self.index.insert(k, pos);
        self.slots.push((k, value));
        i
    }

    /// The value of `addr`, created with `make` if there is none.
    pub(crate) fn get_or_insert_with(&mut self, addr: &IpAddr, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(addr) {
            Some(i) => i,
            None => self.push_new(addr, make()),
        };
        self.at_mut(i)
    }

    /// Removes `addr`'s value (the last value moves into its place).
    pub(crate) fn remove(&mut self, addr: &IpAddr) -> Option<V> {
        let i = self.index.remove(&key(addr))? as usize;
        Some(self.remove_at(i))
    }

    fn remove_at(&mut self, i: usize) -> V {
        let (_, value) = self.slots.swap_remove(i);
        if let Some((moved, _)) = self.slots.get(i)
            && let Some(pos) = self.index.get_mut(moved)
        {
            *pos = u32::try_from(i).unwrap_or(u32::MAX);
        }
        value
    }

    /// Keeps the values `keep` says yes to (it may change them).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(IpAddr, &mut V) -> bool) {
        let mut i = 0;
        while i < self.slots.len() {
            let (k, v) = &mut self.slots[i];
            if keep(addr(k), v) {
                i += 1;
            } else {
                let k = *k;
                self.index.remove(&k);
                self.remove_at(i);
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpAddr, &V)> + '_ {
        self.slots.iter().map(|(k, v)| (addr(k), v))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (IpAddr, &mut V)> + '_ {
        self.slots.iter_mut().map(|(k, v)| (addr(k), v))
    }

    /// Gives memory back after an attack wave: a table that once held 1M addresses keeps
    /// its capacity until told otherwise.
    pub(crate) fn shrink_if_sparse(&mut self) {
        if self.slots.capacity() > 4 * self.slots.len() + 1024 {
            self.slots.shrink_to_fit();
        }
        if self.index.capacity() > 4 * self.index.len() + 1024 {
            self.index.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keys_round_trip_for_both_families() {
        for a in [
            "192.0.2.1",
            "0.0.0.0",
            "2001:db8::1",
            "::",
            "::1",
            "::192.0.2.1",
        ] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(addr(&key(&a)), a);
        }
    }

    proptest! {
        /// Any sequence of inserts, removals and retains leaves the table equal to a
        /// BTreeMap that did the same, with every index pointing at its own slot.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..4, 0u32..64, any::<u16>()), 0..400)) {
            let mut t: AddrTable<u16> = AddrTable::default();
            let mut m: BTreeMap<IpAddr, u16> = BTreeMap::new();
            for (op, a, v) in ops {
                let a = if a % 2 == 0 {
                    IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0200 + a))
                } else {
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(a)))
                };
                match op {
                    0 => {
                        *t.get_or_insert_with(&a, || 0) = v;
                        m.insert(a, v);
                    }
                    1 => prop_assert_eq!(t.remove(&a), m.remove(&a)),
                    2 => {
                        t.retain(|_, x| *x % 3 != v % 3);
                        m.retain(|_, x| *x % 3 != v % 3);
                    }
                    _ => {
                        if let Some(x) = t.get_mut(&a) {
                            *x = x.wrapping_add(v);
                        }
                        if let Some(x) = m.get_mut(&a) {
                            *x = x.wrapping_add(v);
                        }
                    }
                }
                prop_assert_eq!(t.len(), m.len());
                let mut got: Vec<(IpAddr, u16)> = t.iter().map(|(a, v)| (a, *v)).collect();
                got.sort();
                let want: Vec<(IpAddr, u16)> = m.iter().map(|(a, v)| (*a, *v)).collect();
                prop_assert_eq!(got, want);
                for (a, v) in &m {
                    prop_assert_eq!(t.get(a), Some(v));
                }
            }
        }
    }
}
