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
use portcullis_core::event::BanReason;
use portcullis_core::jail::Command;
use portcullis_core::{Decision, Time};

use super::{JailSet, in_force};

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
    /// The rules in a sentence, for `status`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(k) = self.threshold {
            parts.push(format!(
                "{k} banned addresses of a /{} (IPv6 /{}) ban it",
                self.v4_prefix, self.v6_prefix
            ));
            if let Some(w) = self.widen_after {
                parts.push(format!(
                    "{w} banned networks widen by {} bits, up to /{} (IPv6 /{})",
                    self.widen_bits, self.v4_widest, self.v6_widest
                ));
            }
        }
        if let Some(k) = self.asn_threshold {
            parts.push(format!("{k} banned addresses of one AS ban its prefixes"));
        }
        format!("{}; for {} s", parts.join("; "), self.bantime.as_secs())
    }

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

    /// The rules in force (none: off).
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

// ---- the JailSet's side: reading the jails, carrying out the actions ----

impl JailSet {
    // ---- network aggregation (rules: `networks.rs`) ----

    /// Aggregate networks by `rules` (off when no rule is on), the AS rule asking `asn`.
    /// The members and our network bans are read from the bans in force, so a restart or
    /// reload resumes where it was.
    pub fn set_networks(&mut self, rules: NetworkRules, asn: Option<AsnLookup>, now: Time) {
        self.networks = Networks::new(rules, asn);
        if !self.networks.enabled() {
            return;
        }
        for (idx, j) in self.jails.iter().enumerate() {
            for b in j.engine.active_bans().filter(|b| in_force(b, now)) {
                if matches!(b.reason, BanReason::Network { .. }) {
                    self.networks.note_restored(b.target, idx);
                } else if is_host(&b.target) {
                    self.networks.note_member(b.target.addr(), true);
                }
            }
        }
    }

    /// Our network bans inside `net` (or `net` itself): `(target, jail index)`.
    pub fn network_bans_within(&self, net: IpNet) -> Vec<(IpNet, usize)> {
        self.networks.ours_within(net)
    }

    /// The rules in force and how many network bans of theirs hold, when a rule is on.
    pub fn network_status(&self) -> Option<(String, usize)> {
        let rules = self.networks.rules()?;
        Some((rules.describe(), self.networks.ours().count()))
    }

    /// Forget the members counted inside `net` (after `unban NET`).
    pub fn forget_network_members(&mut self, net: IpNet) {
        self.networks.forget_within(net);
    }

    pub(super) fn note_for_networks(&mut self, d: &Decision) {
        let (target, jail, ban) = match d {
            Decision::Ban(b) => (b.target, &b.jail, Some(b)),
            Decision::Unban { target, jail, .. } => (*target, jail, None),
            Decision::Alert(_) => return,
        };
        let Some(idx) = self.index_of(jail) else {
            return;
        };
        // A carved part may be one address: our bans are never members.
        match ban {
            Some(b) if matches!(b.reason, BanReason::Network { .. }) => {}
            None if self.networks.is_ours(&target) => self.networks.note_network_gone(target),
            _ if is_host(&target) => self.pending_members.push((target.addr(), idx)),
            _ => {}
        }
    }

    /// Bring the members up to date with the burst's host bans and carry out what the
    /// thresholds call for (network bans, and the lifting of bans a wider one replaces).
    pub(super) fn aggregate(&mut self, now: Time) {
        // Each round's bans are networks (no new members), so two rounds settle; the bound
        // only guards against a bug looping.
        for _ in 0..4 {
            if self.pending_members.is_empty() {
                return;
            }
            let pending = std::mem::take(&mut self.pending_members);
            let mut actions = Vec::new();
            let mut forbidden: Option<Vec<IpNet>> = None;
            for (addr, jail) in pending {
                let banned = self.longest_ban(IpNet::from(addr), now).is_some();
                if !self.networks.note_member(addr, banned) || !self.networks.due(addr) {
                    continue;
                }
                let f = forbidden.get_or_insert_with(|| self.never_whole(now));
                let view = View { forbidden: f };
                for a in self.networks.decide(addr, jail, &view) {
                    // Note planned bans at once, so a later member of this burst does not
                    // plan them again.
                    if let NetAction::Ban {
                        target, jail, of, ..
                    } = a
                    {
                        self.networks.note_network_ban(target, jail, of);
                    }
                    actions.push(a);
                }
            }
            let length = self
                .networks
                .rules()
                .map_or(std::time::Duration::from_secs(86_400), |r| r.bantime);
            for a in actions {
                let done = match a {
                    // A one-address part that is a member: its own ban stays (a network
                    // ban in its place would end, or be lifted, with the network).
                    NetAction::Ban { target, .. }
                        if is_host(&target) && self.longest_ban(target, now).is_some() =>
                    {
                        Err(portcullis_core::jail::CommandError::NotBanned { target })
                    }
                    NetAction::Ban {
                        jail,
                        target,
                        members,
                        ..
                    } => self.jails[jail]
                        .engine
                        .handle_network_ban(now, target, members, length),
                    NetAction::Supersede { jail, target } => self.jails[jail]
                        .engine
                        .handle_command(now, Command::Unban { target }),
                };
                if done.is_err()
                    && let NetAction::Ban { target, .. } = a
                {
                    self.networks.note_network_gone(target);
                }
            }
            self.drain();
        }
    }

    /// What no network ban may cover: every jail's allowlist (with the host's own
    /// addresses), addresses under login protection, and network bans that are not ours
    /// (nft interval sets hold no overlapping elements).
    fn never_whole(&self, now: Time) -> Vec<IpNet> {
        let ours: HashSet<IpNet> = self.networks.ours().map(|(t, _)| t).collect();
        let mut out: Vec<IpNet> = Vec::new();
        for j in &self.jails {
            out.extend(j.engine.config().allowlist.iter().copied());
            out.extend(j.engine.protected_addresses().map(IpNet::from));
            out.extend(
                j.engine
                    .ban_keys()
                    .map(|(_, t)| t)
                    .filter(|t| !is_host(t) && !ours.contains(t)),
            );
        }
        out.extend(
            self.orphans(now)
                .map(|b| b.target)
                .filter(|t| !is_host(t) && !ours.contains(t)),
        );
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Whether `net` is one address (/32, /128).
fn is_host(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

#[cfg(test)]
mod tests;
