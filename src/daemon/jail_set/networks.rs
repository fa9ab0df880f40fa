//! Network aggregation, part of the [`JailSet`](super::JailSet) policy (sans-IO like it).
//!
//! Rules:
//! - **Members.** An address counts as a member of its base network (`/v4_prefix`,
//!   `/v6_prefix`) while any jail bans it by itself (a host ban; network bans are not
//!   members). Across jails: a site-wide view.
//! - **Ban.** When a base network has `threshold` members and no network ban of ours covers
//!   it, it is banned for `bantime` ([`BanReason::Network`](portcullis_core::event::BanReason)
//!   with the member count, shown as `network: N members`), in the jail that banned the
//!   member that reached the threshold.
//! - **Widen.** When `widen_after` networks of one level lie inside the network
//!   `widen_bits` wider, that one is banned instead and our bans inside it are lifted
//!   (`superseded`: nft interval sets hold no overlapping elements); up to the caps
//!   `/v4_widest`, `/v6_widest`.
//! - **Autonomous systems.** With an ASN lookup and `asn_threshold`: when that many members
//!   share one AS, each of their AS prefixes (the database's network, never wider than the
//!   caps: a wider one is cut to the cap around the member) is banned the same way.
//! - **Never across the allowlist.** A network holding an allowlisted address (every
//!   jail's allowlist: the host's own addresses are in it), an address under login
//!   protection, or a network ban that is not ours, is carved: its largest sub-networks
//!   holding none of them are banned (at most [`MAX_PARTS`]; more, or none, and nothing
//!   is banned).
//! - **Reversible.** `unban NET` lifts every network ban of ours inside NET (its carved
//!   parts too) and forgets NET's members, so it is banned again only after `threshold`
//!   new member bans. The members' own bans run on and end as they would. When a network
//!   ban ends, the network is counted afresh from the next member ban.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// The policy's knobs (`[networks]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    /// Members that ban a base network; `None`: no prefix aggregation.
    pub threshold: Option<u32>,
    /// IPv4 base prefix.
    pub v4_prefix: u8,
    /// IPv6 base prefix.
    pub v6_prefix: u8,
    /// Banned networks of one level that ban the wider one; `None`: never widen.
    pub widen_after: Option<u32>,
    /// Bits per widening step.
    pub widen_bits: u8,
    /// Widest IPv4 prefix ever banned.
    pub v4_widest: u8,
    /// Widest IPv6 prefix ever banned.
    pub v6_widest: u8,
    /// Members of one AS that ban its prefixes; `None`: off.
    pub asn_threshold: Option<u32>,
    /// Length of a network ban.
    pub bantime: Duration,
}

impl NetworkRules {
    /// Whether any rule can fire.
    pub fn active(&self) -> bool {
        self.threshold.is_some() || self.asn_threshold.is_some()
    }

    fn base(&self, addr: IpAddr) -> IpNet {
        let len = match addr {
            IpAddr::V4(_) => self.v4_prefix,
            IpAddr::V6(_) => self.v6_prefix,
        };
        IpNet::new(addr, len).map_or_else(|_| IpNet::from(addr), |n| n.trunc())
    }

    fn widest(&self, net: &IpNet) -> u8 {
        match net {
            IpNet::V4(_) => self.v4_widest,
            IpNet::V6(_) => self.v6_widest,
        }
    }
}

/// The AS of an address and its database network (GeoIP's `asn_network`).
pub type AsnLookup = Arc<dyn Fn(IpAddr) -> Option<(u32, IpNet)> + Send + Sync>;

/// Carved networks are banned in at most this many parts.
pub const MAX_PARTS: usize = 64;

/// What the policy asks the set to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetAction {
    /// Ban `target` in jail `jail` for the rules' bantime.
    Ban {
        /// Jail index.
        jail: usize,
        /// The network or part.
        target: IpNet,
        /// The network it is (a part of).
        of: IpNet,
        /// Members counted.
        members: u32,
    },
    /// Lift our ban of `target` in jail `jail` (superseded by a wider one).
    Supersede {
        /// Jail index.
        jail: usize,
        /// Our network ban.
        target: IpNet,
    },
}

/// What the policy sees of the world when it decides (read from the jails by the set).
pub struct View<'a> {
    /// Networks never to be banned whole: allowlists, protected addresses, and network bans
    /// that are not ours.
    pub forbidden: &'a [IpNet],
}

/// The policy's state: members per base network and AS, and our network bans.
pub struct Networks {
    rules: Option<NetworkRules>,
    asn: Option<AsnLookup>,
    /// Banned member addresses per base network. Keys and members are attacker-chosen:
    /// std SipHash maps.
    members: HashMap<IpNet, HashSet<IpAddr>>,
    /// Banned members per AS (with an ASN lookup).
    asn_members: HashMap<u32, HashSet<IpAddr>>,
    /// Our network bans in force: target → the jail holding it.
    ours: HashMap<IpNet, usize>,
    /// The networks decided (banned whole or in carved parts) while any part is in force.
    done: HashSet<IpNet>,
}

impl Networks {
    /// No aggregation.
    pub fn off() -> Networks {
        Networks {
            rules: None,
            asn: None,
            members: HashMap::new(),
            asn_members: HashMap::new(),
            ours: HashMap::new(),
            done: HashSet::new(),
        }
    }

    /// Aggregation by `rules` (inactive rules: none), with `asn` for the AS rule.
    pub fn new(rules: NetworkRules, asn: Option<AsnLookup>) -> Networks {
        Networks {
            rules: rules.active().then_some(rules),
            asn,
            ..Networks::off()
        }
    }

    /// Whether any rule is on.
    pub fn enabled(&self) -> bool {
        self.rules.is_some()
    }

    /// The rules in force.
    pub fn rules(&self) -> Option<&NetworkRules> {
        self.rules.as_ref()
    }

    /// Our network bans in force.
    pub fn ours(&self) -> impl Iterator<Item = (IpNet, usize)> + '_ {
        self.ours.iter().map(|(t, j)| (*t, *j))
    }

    /// A network ban of ours (`target`, in `jail`) is in force (decided now, or restored),
    /// as (part of) the network `of`.
    pub fn note_network_ban(&mut self, target: IpNet, jail: usize, of: IpNet) {
        self.ours.insert(target, jail);
        self.done.insert(of);
    }

    /// A network ban restored from the store: (part of) its base network, or itself.
    pub fn note_restored(&mut self, target: IpNet, jail: usize) {
        let of = self
            .rules
            .as_ref()
            .map(|r| r.base(target.addr()))
            .filter(|b| b.contains(&target))
            .unwrap_or(target);
        self.note_network_ban(target, jail, of);
    }

    /// Whether `target` is a network ban of ours (a carved part may be one address).
    pub fn is_ours(&self, target: &IpNet) -> bool {
        self.ours.contains_key(target)
    }

    /// No jail bans network `target` any more.
    pub fn note_network_gone(&mut self, target: IpNet) {
        if self.ours.remove(&target).is_some() {
            let ours = &self.ours;
            self.done.retain(|d| ours.keys().any(|o| d.contains(o)));
        }
    }

    /// `addr` is banned by itself in some jail now (`banned`) or in none. Returns whether
    /// it newly became a member (the thresholds are then worth checking).
    pub fn note_member(&mut self, addr: IpAddr, banned: bool) -> bool {
        let Some(rules) = &self.rules else {
            return false;
        };
        let base = rules.base(addr);
        let asn = self.asn.as_ref().and_then(|f| f(addr)).map(|(a, _)| a);
        if banned {
            let new = self.members.entry(base).or_default().insert(addr);
            if let Some(a) = asn {
                self.asn_members.entry(a).or_default().insert(addr);
            }
            new
        } else {
            if let Some(m) = self.members.get_mut(&base) {
                m.remove(&addr);
                if m.is_empty() {
                    self.members.remove(&base);
                }
            }
            if let Some(a) = asn
                && let Some(m) = self.asn_members.get_mut(&a)
            {
                m.remove(&addr);
                if m.is_empty() {
                    self.asn_members.remove(&a);
                }
            }
            false
        }
    }

    /// Forget the members inside `net` (after `unban NET`): it is counted afresh.
    pub fn forget_within(&mut self, net: IpNet) {
        self.members
            .retain(|base, _| !(net.contains(base) || base.contains(&net)));
        for m in self.asn_members.values_mut() {
            m.retain(|a| !net.contains(a));
        }
        self.asn_members.retain(|_, m| !m.is_empty());
    }

    /// Our network bans inside `net` (or `net` itself).
    pub fn ours_within(&self, net: IpNet) -> Vec<(IpNet, usize)> {
        let mut v: Vec<(IpNet, usize)> = self
            .ours
            .iter()
            .filter(|(t, _)| net.contains(*t))
            .map(|(t, j)| (*t, *j))
            .collect();
        v.sort();
        v
    }

    /// Whether a threshold may fire for the new member `addr` (cheap: the caller reads the
    /// world for [`decide`](Self::decide) only then).
    pub fn due(&self, addr: IpAddr) -> bool {
        let Some(rules) = &self.rules else {
            return false;
        };
        let prefix = rules.threshold.is_some_and(|k| {
            let base = rules.base(addr);
            self.members.get(&base).map_or(0, HashSet::len) >= k as usize && !self.covered(&base)
        });
        let asn = match (rules.asn_threshold, &self.asn) {
            (Some(k), Some(lookup)) => lookup(addr).is_some_and(|(a, _)| {
                self.asn_members.get(&a).map_or(0, HashSet::len) >= k as usize
            }),
            _ => false,
        };
        prefix || asn
    }

    /// Whether a ban of ours covers all of `net` (or `net` was decided, and banned in
    /// parts around what it may not cover).
    fn covered(&self, net: &IpNet) -> bool {
        self.ours.keys().any(|o| o.contains(net)) || self.done.iter().any(|d| d.contains(net))
    }

    /// What the thresholds call for now that `addr` (banned in `jail`) became a member.
    pub fn decide(&self, addr: IpAddr, jail: usize, view: &View<'_>) -> Vec<NetAction> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(k) = rules.threshold {
            let base = rules.base(addr);
            let n = self.members.get(&base).map_or(0, HashSet::len);
            if n >= k as usize && !self.covered(&base) {
                self.ban(base, n, jail, view, &mut out);
                self.widen(base, jail, view, &mut out);
            }
        }
        if let (Some(k), Some(lookup)) = (rules.asn_threshold, &self.asn)
            && let Some((asn, _)) = lookup(addr)
        {
            let members = self.asn_members.get(&asn);
            let n = members.map_or(0, HashSet::len);
            if n >= k as usize {
                let mut prefixes: Vec<IpNet> = members
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        let (_, net) = lookup(*m)?;
                        let cap = rules.widest(&net);
                        Some(if net.prefix_len() < cap {
                            IpNet::new(*m, cap).ok()?.trunc()
                        } else {
                            net
                        })
                    })
                    .collect();
                prefixes.sort();
                prefixes.dedup();
                for p in prefixes {
                    let planned = out.iter().any(|a| match a {
                        NetAction::Ban { target, .. } => target.contains(&p) || p.contains(target),
                        NetAction::Supersede { .. } => false,
                    });
                    if !planned && !self.covered(&p) {
                        self.ban(p, n, jail, view, &mut out);
                    }
                }
            }
        }
        out
    }

    /// Ban `net` (carved around `view.forbidden`), superseding our bans inside it.
    fn ban(
        &self,
        net: IpNet,
        members: usize,
        jail: usize,
        view: &View<'_>,
        out: &mut Vec<NetAction>,
    ) {
        let Some(parts) = carve(net, view.forbidden) else {
            return;
        };
        for (t, j) in self.ours_within(net) {
            if !parts.contains(&t) {
                out.push(NetAction::Supersede { jail: j, target: t });
            }
        }
        let members = u32::try_from(members).unwrap_or(u32::MAX);
        out.extend(parts.into_iter().map(|target| NetAction::Ban {
            jail,
            target,
            of: net,
            members,
        }));
    }

    /// After `net` was banned: the wider networks, step by step, while each holds
    /// `widen_after` banned networks of the level below.
    fn widen(&self, mut net: IpNet, jail: usize, view: &View<'_>, out: &mut Vec<NetAction>) {
        let Some(rules) = &self.rules else { return };
        let Some(k) = rules.widen_after else { return };
        loop {
            let level = net.prefix_len();
            let wider_len = level
                .saturating_sub(rules.widen_bits)
                .max(rules.widest(&net));
            if wider_len >= level {
                return;
            }
            let Ok(wider) = IpNet::new(net.addr(), wider_len).map(|n| n.trunc()) else {
                return;
            };
            // Distinct networks of this level, banned (whole or in parts) by us or planned.
            let planned = out.iter().filter_map(|a| match a {
                NetAction::Ban { target, .. } => Some(*target),
                NetAction::Supersede { .. } => None,
            });
            let mut levels: HashSet<IpNet> = HashSet::new();
            for t in self.ours.keys().copied().chain(planned) {
                if wider.contains(&t)
                    && t.prefix_len() >= level
                    && let Ok(n) = IpNet::new(t.addr(), level)
                {
                    levels.insert(n.trunc());
                }
            }
            if levels.len() < k as usize || self.covered(&wider) {
                return;
            }
            let members: usize = self
                .members
                .iter()
                .filter(|(b, _)| wider.contains(*b))
                .map(|(_, m)| m.len())
                .sum();
            // Planned bans inside `wider` are dropped (the wider one replaces them).
            out.retain(|a| !matches!(a, NetAction::Ban { target, .. } if wider.contains(target)));
            self.ban(wider, members, jail, view, out);
            net = wider;
        }
    }
}

/// `net` minus every network of `forbidden`: `Some([net])` when none overlaps, the largest
/// sub-networks holding none of them otherwise, `None` when nothing is left or more than
/// [`MAX_PARTS`] parts would be needed.
pub fn carve(net: IpNet, forbidden: &[IpNet]) -> Option<Vec<IpNet>> {
    fn go(net: IpNet, forbidden: &[IpNet], out: &mut Vec<IpNet>) -> bool {
        let hits: Vec<IpNet> = forbidden
            .iter()
            .filter(|f| f.contains(&net.network()) || net.contains(*f))
            .copied()
            .collect();
        if hits.is_empty() {
            out.push(net);
            return out.len() <= MAX_PARTS;
        }
        if hits.iter().any(|f| f.contains(&net)) {
            return true;
        }
        let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
            return true;
        };
        for half in halves {
            if !go(half, &hits, out) {
                return false;
            }
        }
        true
    }
    let mut out = Vec::new();
    (go(net, forbidden, &mut out) && !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
