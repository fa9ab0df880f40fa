//! The fleet's receiving policy: what this node does with a decision another node (or an
//! admin) published, whatever the sender says. Sans-IO like the rest of the set: `now` is an
//! argument and the verdict is a value.
//!
//! Rules (issue 16; docs/fleet.md):
//! - the local allowlists (with the host's own addresses), `fleet.members`,
//!   `fleet.protected` and the admins' fleet-wide allowlist always win: a report that
//!   touches one of them is ignored, an admin's ban too;
//! - a node's own reports coming back are ignored;
//! - a reported ban is never wider than /24 (IPv4) or /48 (IPv6), lasts at most
//!   `fleet.max_ban` and is never permanent on one node's word: only when
//!   `permanent_after_nodes` distinct nodes reported the address, or an admin published it;
//! - each reporting node is rate-limited (a token bucket of `rate`/s, ten seconds deep);
//! - the same report twice changes nothing (duplicates are idempotent).
//!
//! Received bans are bans of the reserved jail [`FLEET_JAIL`], kept with the orphans (so
//! the kernel, `bans`, `unban` and expiry treat them like any ban), their reporting nodes in
//! [`BanReason::Fleet`]'s `origin`.

use std::collections::HashMap;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::Decision;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason};

use super::{JailSet, in_force};

/// The jail name of bans other nodes reported (reserved: no jail may be called so).
pub const FLEET_JAIL: &str = "fleet";
/// The origin of an admin's decision.
pub const ADMIN_ORIGIN: &str = "admin";
/// The widest reported IPv4 network.
pub const WIDEST_V4: u8 = 24;
/// The widest reported IPv6 network.
pub const WIDEST_V6: u8 = 48;
/// Reporting nodes remembered for rate limiting at most (node names are bound by the
/// server's permissions, so this is only a backstop).
const MAX_BUCKETS: usize = 100_000;
/// Reporting nodes named in one ban's origin at most.
const MAX_ORIGINS: usize = 64;

/// A decision as it arrived from the stream, its origin taken from the subject (which the
/// server's permissions bind to the sender's credentials), never from the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Node `node` banned `target` until `until` (`None`: it says permanently).
    Ban {
        /// The reporting node (subject token).
        node: Box<str>,
        /// What it banned.
        target: IpNet,
        /// Until when, as it says.
        until: Option<Time>,
    },
    /// An admin's ban of `target` (`None`: permanent).
    AdminBan {
        /// What to ban.
        target: IpNet,
        /// Until when.
        until: Option<Time>,
    },
    /// An admin lifts every ban of `target` everywhere.
    AdminUnban {
        /// What to lift.
        target: IpNet,
    },
    /// An admin allows `target` everywhere: its bans go, reports of it are ignored.
    AdminAllow {
        /// What to allow.
        target: IpNet,
    },
}

/// What the policy made of a [`Received`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Put this fleet ban in force (new, or a longer/wider-reported one in place of the old).
    Ban(Ban),
    /// Lift every ban of this target (admin unban).
    Lift(IpNet),
    /// Allow this target fleet-wide (and lift its bans).
    Allow(IpNet),
    /// Nothing to do, and why.
    Ignored(Ignored),
}

/// Why a received decision changed nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// This node's own report, back from the stream.
    Own,
    /// Wider than /24 or /48.
    TooWide,
    /// It touches a local allowlist, the host, a fleet member or a protected address.
    Protected,
    /// It touches the admins' fleet-wide allowlist.
    Allowed,
    /// The reporting node sent more than its rate.
    RateLimited,
    /// The ban it reports is already over.
    Expired,
    /// The ban in force already says as much (a duplicate).
    Duplicate,
}

impl Ignored {
    /// The short name the log and the counters use.
    pub fn kind(self) -> &'static str {
        match self {
            Ignored::Own => "own",
            Ignored::TooWide => "too_wide",
            Ignored::Protected => "protected",
            Ignored::Allowed => "allowed",
            Ignored::RateLimited => "rate_limited",
            Ignored::Expired => "expired",
            Ignored::Duplicate => "duplicate",
        }
    }
}

/// The receiving policy's settings (from `[fleet]`, the jails' allowlists and the host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// This node's name (its own reports are ignored).
    pub node: String,
    /// The longest a reported ban is applied.
    pub max_ban: Duration,
    /// Distinct reporters that make a fleet ban permanent; `None`: admins only.
    pub permanent_after_nodes: Option<u32>,
    /// Reports per second taken from one node.
    pub rate: u32,
    /// What no report may ban: the jails' allowlists (with the host's own addresses), the
    /// fleet's members and `fleet.protected`.
    pub protected: Vec<IpNet>,
}

/// One node's token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Time,
}

/// The receiving policy with its state: the admins' allowlist and the rate buckets.
#[derive(Debug)]
pub struct ReceivePolicy {
    config: PolicyConfig,
    /// The admins' fleet-wide allowlist.
    allowed: Vec<IpNet>,
    /// Per reporting node (names bound by the server's permissions; capped anyway).
    buckets: HashMap<Box<str>, Bucket>,
}

/// Whether two networks share an address.
fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether `target` is wider than a report may be.
pub fn too_wide(target: &IpNet) -> bool {
    match target {
        IpNet::V4(n) => n.prefix_len() < WIDEST_V4,
        IpNet::V6(n) => n.prefix_len() < WIDEST_V6,
    }
}

impl ReceivePolicy {
    /// A policy with `config` and the admins' allowlist `allowed` (from the store).
    pub fn new(config: PolicyConfig, allowed: Vec<IpNet>) -> ReceivePolicy {
        ReceivePolicy {
            config,
            allowed,
            buckets: HashMap::new(),
        }
    }

    /// New settings (a reload); the buckets and the admins' allowlist stay.
    pub fn reconfigure(&mut self, config: PolicyConfig) {
        self.config = config;
    }

    /// The admins' fleet-wide allowlist.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Judge `msg` at `now`; `existing` is the fleet ban of the target in force, if any.
    pub fn judge(&mut self, msg: &Received, existing: Option<&Ban>, now: Time) -> Verdict {
        match msg {
            Received::Ban {
                node,
                target,
                until,
            } => self.judge_report(node, *target, *until, existing, now),
            Received::AdminBan { target, until } => {
                if let Some(why) = self.shielded(target) {
                    return Verdict::Ignored(why);
                }
                if until.is_some_and(|u| u <= now) {
                    return Verdict::Ignored(Ignored::Expired);
                }
                let until = match existing {
                    Some(b) => longer(b.until, *until),
                    None => *until,
                };
                fleet_ban(*target, existing, now, until, ADMIN_ORIGIN.into())
            }
            Received::AdminUnban { target } => Verdict::Lift(*target),
            Received::AdminAllow { target } => {
                if !self.allowed.contains(target) {
                    self.allowed.push(*target);
                }
                Verdict::Allow(*target)
            }
        }
    }

    fn judge_report(
        &mut self,
        node: &str,
        target: IpNet,
        until: Option<Time>,
        existing: Option<&Ban>,
        now: Time,
    ) -> Verdict {
        if node == self.config.node {
            return Verdict::Ignored(Ignored::Own);
        }
        if too_wide(&target) {
            return Verdict::Ignored(Ignored::TooWide);
        }
        if let Some(why) = self.shielded(&target) {
            return Verdict::Ignored(why);
        }
        if !self.take_token(node, now) {
            return Verdict::Ignored(Ignored::RateLimited);
        }
        if until.is_some_and(|u| u <= now) {
            return Verdict::Ignored(Ignored::Expired);
        }
        // Who reported it: those already recorded, then this node.
        let mut origins: Vec<&str> = existing
            .and_then(|b| match &b.reason {
                BanReason::Fleet { origin } => Some(origin.split(',').collect()),
                _ => None,
            })
            .unwrap_or_default();
        origins.retain(|o| !o.is_empty());
        if !origins.contains(&node) && origins.len() < MAX_ORIGINS {
            origins.push(node);
        }
        let reporters = origins.iter().filter(|o| **o != ADMIN_ORIGIN).count();
        let permanent = self
            .config
            .permanent_after_nodes
            .is_some_and(|k| reporters >= k as usize);
        let capped = now.saturating_add(self.config.max_ban);
        let reported = if permanent {
            None
        } else {
            Some(until.map_or(capped, |u| u.min(capped)))
        };
        let until = match existing {
            Some(b) => longer(b.until, reported),
            None => reported,
        };
        fleet_ban(target, existing, now, until, origins.join(",").into())
    }

    /// Why nothing may ban `target`, if something shields it.
    fn shielded(&self, target: &IpNet) -> Option<Ignored> {
        if self.config.protected.iter().any(|p| overlaps(p, target)) {
            return Some(Ignored::Protected);
        }
        if self.allowed.iter().any(|p| overlaps(p, target)) {
            return Some(Ignored::Allowed);
        }
        None
    }

    /// Take one token of `node`'s bucket at `now`.
    fn take_token(&mut self, node: &str, now: Time) -> bool {
        let rate = f64::from(self.config.rate);
        let depth = rate * 10.0;
        if !self.buckets.contains_key(node) && self.buckets.len() >= MAX_BUCKETS {
            // Only ever with a misconfigured server: forget everyone rather than grow.
            self.buckets.clear();
        }
        let b = self.buckets.entry(node.into()).or_insert(Bucket {
            tokens: depth,
            at: now,
        });
        let elapsed = now.since(b.at).as_secs_f64();
        if now > b.at {
            b.at = now;
        }
        b.tokens = (b.tokens + elapsed * rate).min(depth);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The fleet ban of `target` with `until` and `origin`, or a duplicate when `existing`
/// already says exactly that.
fn fleet_ban(
    target: IpNet,
    existing: Option<&Ban>,
    now: Time,
    until: Option<Time>,
    origin: Box<str>,
) -> Verdict {
    if let Some(b) = existing
        && b.until == until
        && matches!(&b.reason, BanReason::Fleet { origin: o } if *o == origin)
    {
        return Verdict::Ignored(Ignored::Duplicate);
    }
    Verdict::Ban(Ban {
        target,
        jail: FLEET_JAIL.into(),
        since: existing.map_or(now, |b| b.since),
        until,
        ban_no: 1,
        reason: BanReason::Fleet { origin },
    })
}

/// The later of two ends, `None` (permanent) being the latest.
fn longer(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    }
}

/// Add `allowed` (the admins' fleet-wide allowlist) to each jail's allowlist in `jails`.
pub fn allow_in(jails: &mut [super::JailInit], allowed: &[IpNet]) {
    for j in jails {
        for n in allowed {
            if !j.config.allowlist.contains(n) {
                j.config.allowlist.push(*n);
            }
        }
    }
}

impl JailSet {
    /// An admin allowed `target` everywhere: every jail's allowlist takes it (its engine
    /// never bans it again; a reload keeps it through [`allow_in`]).
    pub fn allow_everywhere(&mut self, target: IpNet) {
        for j in &mut self.jails {
            if j.engine.config().allowlist.contains(&target) {
                continue;
            }
            let mut config = j.engine.config().clone();
            config.allowlist.push(target);
            j.engine.reconfigure(config);
        }
    }

    /// The fleet ban of exactly `target` in force at `now`.
    pub fn fleet_ban_of(&self, target: IpNet, now: Time) -> Option<&Ban> {
        self.orphans
            .get(&target)?
            .iter()
            .find(|b| &*b.jail == FLEET_JAIL && in_force(b, now))
    }

    /// Put the fleet ban `ban` in force (in place of the target's fleet ban, if any); the
    /// next commit stores it and puts it in the kernel.
    pub fn put_fleet_ban(&mut self, ban: Ban) {
        let bans = self.orphans.entry(ban.target).or_default();
        bans.retain(|b| &*b.jail != FLEET_JAIL);
        bans.push(ban.clone());
        self.record(Decision::Ban(ban));
    }
}

#[cfg(test)]
mod tests;
