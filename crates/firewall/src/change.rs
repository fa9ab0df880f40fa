//! Changes, reports, and the pure planning shared by the backends (no I/O here).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::Decision;

/// One change to the kernel sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Ban `target` (an address as /32 or /128, or a network) for `timeout`, or
    /// permanently when `None`. An existing element gets the new timeout (on kernels that
    /// support updating element timeouts; older kernels keep the old one, and
    /// [`Firewall::reconcile`](crate::Firewall::reconcile) fixes that).
    Add {
        /// What to ban; host bits of a network are cleared.
        target: IpNet,
        /// How long the kernel keeps it; `None` = until removed. Rounded up to whole
        /// seconds; zero means already over and is skipped.
        timeout: Option<Duration>,
    },
    /// Unban `target`. Removing something that is not there is not an error.
    Remove {
        /// What to unban.
        target: IpNet,
    },
}

impl Change {
    /// The address or network this change is about.
    pub fn target(&self) -> IpNet {
        match self {
            Change::Add { target, .. } | Change::Remove { target } => *target,
        }
    }

    /// The firewall change a jail decision calls for, with timeouts counted from `now`
    /// (a ban whose end already passed gives a zero timeout, which `apply` skips).
    /// Alerts need no firewall change.
    pub fn from_decision(decision: &Decision, now: Time) -> Option<Change> {
        match decision {
            Decision::Ban(ban) => Some(Change::Add {
                target: ban.target,
                timeout: timeout_at(ban.until, now),
            }),
            Decision::Unban { target, .. } => Some(Change::Remove { target: *target }),
            Decision::Alert(_) => None,
        }
    }
}

/// The kernel timeout for a ban that ends at `until`, seen at `now`: `None` when
/// permanent, zero when already over (skipped by `apply` and `reconcile`). Use it to turn
/// stored bans into the `desired` list of [`Firewall::reconcile`](crate::Firewall::reconcile).
pub fn timeout_at(until: Option<Time>, now: Time) -> Option<Duration> {
    until.map(|until| until.since(now))
}

/// One element refused by the backend while the rest of the batch went in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The network that was not added.
    pub target: IpNet,
    /// Why.
    pub reason: RejectReason,
}

/// Why an element was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// nftables interval sets cannot hold overlapping networks; this one overlaps a
    /// network already in the set (or added earlier in the same batch). The wider ban
    /// already covers (or is covered by) it.
    Overlaps(IpNet),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Overlaps(other) => write!(f, "overlaps {other}"),
        }
    }
}

/// What one `apply` or `reconcile` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Elements added or refreshed.
    pub added: usize,
    /// Removals carried out (removing an absent element counts; it is a no-op).
    pub removed: usize,
    /// Adds skipped because their timeout was already zero.
    pub skipped_expired: usize,
    /// Bans longer than the backend's largest timeout, put in as permanent elements: the
    /// caller must remove them when they end (the jail engine's expiry unban does).
    pub made_permanent: usize,
    /// Elements the backend refused while the rest went in.
    pub rejected: Vec<Rejected>,
    /// Tool invocations that changed the kernel: 0 (nothing to do), 1, or 2 when the
    /// first nft transaction failed and an exact retry followed.
    pub transactions: u32,
    /// Wall time of the whole operation.
    pub elapsed: Duration,
    /// Why netlink was configured but `nft` carried this out (the socket could not be
    /// opened, the transfer failed, or the kernel refused a batch): the caller logs and
    /// counts it. `None`: netlink did it, or it is not in use.
    pub netlink_fallback: Option<String>,
}

/// Which of our four sets holds an element.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SetKind {
    /// Single IPv4 addresses (hash).
    Addr4,
    /// Single IPv6 addresses (hash).
    Addr6,
    /// IPv4 networks (nft: interval; ipset: hash:net).
    Net4,
    /// IPv6 networks.
    Net6,
}

impl SetKind {
    pub const ALL: [SetKind; 4] = [SetKind::Addr4, SetKind::Addr6, SetKind::Net4, SetKind::Net6];

    pub fn of(target: &IpNet) -> SetKind {
        match target {
            IpNet::V4(n) if n.prefix_len() == 32 => SetKind::Addr4,
            IpNet::V4(_) => SetKind::Net4,
            IpNet::V6(n) if n.prefix_len() == 128 => SetKind::Addr6,
            IpNet::V6(_) => SetKind::Net6,
        }
    }

    /// The nftables set name (within our table).
    pub fn nft_name(self) -> &'static str {
        match self {
            SetKind::Addr4 => "addr4",
            SetKind::Addr6 => "addr6",
            SetKind::Net4 => "net4",
            SetKind::Net6 => "net6",
        }
    }

    pub fn is_v6(self) -> bool {
        matches!(self, SetKind::Addr6 | SetKind::Net6)
    }

    pub fn is_net(self) -> bool {
        matches!(self, SetKind::Net4 | SetKind::Net6)
    }
}

/// Per-set element counts, for status.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementCounts {
    /// Banned IPv4 addresses.
    pub addr4: usize,
    /// Banned IPv6 addresses.
    pub addr6: usize,
    /// Banned IPv4 networks.
    pub net4: usize,
    /// Banned IPv6 networks.
    pub net6: usize,
}

impl ElementCounts {
    /// Count a listing.
    pub fn of(elements: &[(IpNet, Option<Duration>)]) -> ElementCounts {
        let mut c = ElementCounts::default();
        for (t, _) in elements {
            c.count(t);
        }
        c
    }

    /// Count one more target.
    pub fn count(&mut self, target: &IpNet) {
        *self.get_mut(SetKind::of(target)) += 1;
    }

    /// Whether every set holds at least as many elements as `other`'s.
    pub fn covers(&self, other: &ElementCounts) -> bool {
        self.addr4 >= other.addr4
            && self.addr6 >= other.addr6
            && self.net4 >= other.net4
            && self.net6 >= other.net6
    }

    pub(crate) fn get_mut(&mut self, kind: SetKind) -> &mut usize {
        match kind {
            SetKind::Addr4 => &mut self.addr4,
            SetKind::Addr6 => &mut self.addr6,
            SetKind::Net4 => &mut self.net4,
            SetKind::Net6 => &mut self.net6,
        }
    }

    /// All elements.
    pub fn total(&self) -> usize {
        self.addr4 + self.addr6 + self.net4 + self.net6
    }
}

/// A batch after normalisation: the last change per target wins, host bits cleared,
/// expired adds dropped. `remove` and `add` never share a target unless it is a replace
/// (from reconcile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Targets to make absent.
    pub remove: Vec<IpNet>,
    /// Targets to add with their timeout (`None` = permanent).
    pub add: Vec<(IpNet, Option<Duration>)>,
    /// Adds dropped because their timeout was zero.
    pub skipped_expired: usize,
    /// Adds refused by [`Plan::drop_net_overlaps`].
    pub rejected: Vec<Rejected>,
}

impl Plan {
    /// Normalise a batch of changes.
    pub fn from_changes(changes: &[Change]) -> Plan {
        let mut last: HashMap<IpNet, usize> = HashMap::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            last.insert(c.target().trunc(), i);
        }
        let mut plan = Plan::default();
        for (i, c) in changes.iter().enumerate() {
            let target = c.target().trunc();
            if last.get(&target) != Some(&i) {
                continue;
            }
            match c {
                Change::Remove { .. } => plan.remove.push(target),
                Change::Add {
                    timeout: Some(t), ..
                } if t.is_zero() => plan.skipped_expired += 1,
                Change::Add { timeout, .. } => plan.add.push((target, *timeout)),
            }
        }
        plan
    }

    /// The changes that turn `current` into `desired`: missing elements added, stale ones
    /// removed, and elements whose timeout differs (permanent vs temporary, or remaining
    /// time off by more than `max(2 s, 1 %)`) replaced. Several desired entries for one
    /// target keep the longest (permanent wins).
    pub fn reconcile(
        current: &HashMap<IpNet, Option<Duration>>,
        desired: &[(IpNet, Option<Duration>)],
    ) -> Plan {
        let mut want: HashMap<IpNet, Option<Duration>> = HashMap::with_capacity(desired.len());
        let mut plan = Plan::default();
        for (target, timeout) in desired {
            if timeout.is_some_and(|t| t.is_zero()) {
                plan.skipped_expired += 1;
                continue;
            }
            let slot = want.entry(target.trunc()).or_insert(*timeout);
            *slot = longest(*slot, *timeout);
        }
        for (target, timeout) in &want {
            match current.get(target) {
                None => plan.add.push((*target, *timeout)),
                Some(have) if !close_enough(*have, *timeout) => {
                    plan.remove.push(*target);
                    plan.add.push((*target, *timeout));
                }
                Some(_) => {}
            }
        }
        for target in current.keys() {
            if !want.contains_key(target) {
                plan.remove.push(*target);
            }
        }
        // Deterministic order: wider networks first, so overlap checks keep the wider ban.
        plan.add.sort_by_key(|(t, _)| (t.prefix_len(), *t));
        plan.remove.sort();
        plan
    }

    /// nftables interval sets refuse overlapping networks, and one refused element fails
    /// the whole transaction. Drop (and report) each network add that overlaps a
    /// different network that stays in the set (`current` minus our removals) or an
    /// earlier add of this batch. Adds are checked in order, so sort wider first to keep
    /// the wider ban.
    pub fn drop_net_overlaps(&mut self, current: &HashMap<IpNet, Option<Duration>>) {
        let removed: std::collections::HashSet<IpNet> = self.remove.iter().copied().collect();
        let mut kept_nets: Vec<IpNet> = current
            .keys()
            .filter(|t| SetKind::of(t).is_net() && !removed.contains(t))
            .copied()
            .collect();
        let mut rejected = Vec::new();
        self.add.retain(|(target, _)| {
            if !SetKind::of(target).is_net() {
                return true;
            }
            if let Some(other) = kept_nets
                .iter()
                .find(|n| *n != target && overlaps(n, target))
            {
                rejected.push(Rejected {
                    target: *target,
                    reason: RejectReason::Overlaps(*other),
                });
                return false;
            }
            if !kept_nets.contains(target) {
                kept_nets.push(*target);
            }
            true
        });
        self.rejected.extend(rejected);
    }

    /// Keep only removals of targets present in `current` (absent ones are no-ops, and
    /// nft fails a transaction that deletes a missing element). Returns how many were
    /// dropped.
    pub fn keep_present_removals(&mut self, current: &HashMap<IpNet, Option<Duration>>) -> usize {
        let before = self.remove.len();
        self.remove.retain(|t| current.contains_key(t));
        before - self.remove.len()
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// The report of this plan carried out in `transactions` tool runs since `started`, with
    /// `made_permanent` bans too long for the backend's timeouts.
    pub fn into_report(
        self,
        transactions: u32,
        made_permanent: usize,
        started: Instant,
    ) -> ApplyReport {
        ApplyReport {
            added: self.add.len(),
            removed: self.remove.len(),
            skipped_expired: self.skipped_expired,
            made_permanent,
            rejected: self.rejected,
            transactions,
            elapsed: started.elapsed(),
            netlink_fallback: None,
        }
    }
}

/// Whether two networks share any address.
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The longer of two ban lengths; `None` (permanent) is the longest.
fn longest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => None,
    }
}

/// Whether a kernel element's remaining time matches the desired one well enough that
/// replacing it would be churn.
fn close_enough(have: Option<Duration>, want: Option<Duration>) -> bool {
    match (have, want) {
        (None, None) => true,
        (Some(h), Some(w)) => {
            let slack = Duration::from_secs(2).max(w / 100);
            h.abs_diff(w) <= slack
        }
        _ => false,
    }
}

/// Whole seconds for a kernel timeout: rounded up, at least 1.
pub(crate) fn timeout_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::event::{Ban, BanReason, UnbanReason};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn last_change_per_target_wins_and_host_bits_are_cleared() {
        let plan = Plan::from_changes(&[
            Change::Add {
                target: net("192.0.2.2/32"),
                timeout: secs(5),
            },
            Change::Remove {
                target: net("192.0.2.2/32"),
            },
            Change::Add {
                target: net("198.51.100.7/24"),
                timeout: None,
            },
            Change::Add {
                target: net("203.0.113.1/32"),
                timeout: Some(Duration::ZERO),
            },
        ]);
        assert_eq!(plan.remove, vec![net("192.0.2.2/32")]);
        assert_eq!(plan.add, vec![(net("198.51.100.0/24"), None)]);
        assert_eq!(plan.skipped_expired, 1);
    }

    #[test]
    fn reconcile_adds_removes_and_replaces() {
        let current: HashMap<IpNet, Option<Duration>> = [
            (net("192.0.2.1/32"), secs(100)), // stays (close enough)
            (net("192.0.2.2/32"), None),      // stale
            (net("192.0.2.3/32"), secs(100)), // should become permanent
            (net("192.0.2.4/32"), secs(10)),  // should become longer
        ]
        .into_iter()
        .collect();
        let desired = vec![
            (net("192.0.2.1/32"), secs(101)),
            (net("192.0.2.3/32"), None),
            (net("192.0.2.4/32"), secs(1000)),
            (net("192.0.2.5/32"), secs(50)),
            (net("192.0.2.5/32"), None), // duplicate: permanent wins
            (net("192.0.2.6/32"), Some(Duration::ZERO)),
        ];
        let plan = Plan::reconcile(&current, &desired);
        let mut removes = plan.remove.clone();
        removes.sort();
        assert_eq!(
            removes,
            vec![
                net("192.0.2.2/32"),
                net("192.0.2.3/32"),
                net("192.0.2.4/32")
            ]
        );
        let mut adds = plan.add.clone();
        adds.sort();
        assert_eq!(
            adds,
            vec![
                (net("192.0.2.3/32"), None),
                (net("192.0.2.4/32"), secs(1000)),
                (net("192.0.2.5/32"), None),
            ]
        );
        assert_eq!(plan.skipped_expired, 1);
        assert!(
            Plan::reconcile(
                &current,
                &[
                    (net("192.0.2.1/32"), secs(100)),
                    (net("192.0.2.2/32"), None),
                    (net("192.0.2.3/32"), secs(99)),
                    (net("192.0.2.4/32"), secs(11)),
                ]
            )
            .is_empty()
        );
    }

    #[test]
    fn overlapping_nets_are_rejected_wider_first() {
        let current: HashMap<IpNet, Option<Duration>> = [
            (net("198.51.100.0/25"), None),
            (net("203.0.113.0/24"), None),
        ]
        .into_iter()
        .collect();
        let mut plan = Plan::reconcile(
            &current,
            &[
                (net("203.0.113.0/24"), None),
                (net("198.51.100.0/24"), None),
                (net("198.51.100.128/26"), None),
                (net("192.0.2.7/32"), None),
            ],
        );
        // 198.51.100.0/25 is stale and removed, so the /24 fits; the /26 overlaps the /24.
        plan.drop_net_overlaps(&current);
        let adds: Vec<IpNet> = plan.add.iter().map(|(t, _)| *t).collect();
        assert_eq!(adds, vec![net("198.51.100.0/24"), net("192.0.2.7/32")]);
        assert_eq!(
            plan.rejected,
            vec![Rejected {
                target: net("198.51.100.128/26"),
                reason: RejectReason::Overlaps(net("198.51.100.0/24")),
            }]
        );
    }

    #[test]
    fn absent_removals_are_dropped() {
        let current: HashMap<IpNet, Option<Duration>> =
            [(net("192.0.2.1/32"), None)].into_iter().collect();
        let mut plan = Plan::from_changes(&[
            Change::Remove {
                target: net("192.0.2.1/32"),
            },
            Change::Remove {
                target: net("192.0.2.9/32"),
            },
        ]);
        assert_eq!(plan.keep_present_removals(&current), 1);
        assert_eq!(plan.remove, vec![net("192.0.2.1/32")]);
    }

    #[test]
    fn decisions_become_changes() {
        let now = Time::from_secs(1000);
        let ban = Ban {
            target: net("192.0.2.2/32"),
            jail: "sshd".into(),
            since: now,
            until: Some(Time::from_secs(1600)),
            ban_no: 1,
            reason: BanReason::Manual,
        };
        assert_eq!(
            Change::from_decision(&Decision::Ban(ban.clone()), now),
            Some(Change::Add {
                target: net("192.0.2.2/32"),
                timeout: secs(600)
            })
        );
        let late = Change::from_decision(&Decision::Ban(ban), Time::from_secs(2000));
        assert_eq!(
            late,
            Some(Change::Add {
                target: net("192.0.2.2/32"),
                timeout: Some(Duration::ZERO)
            })
        );
        let unban = Decision::Unban {
            target: net("2001:db8::/64"),
            jail: "sshd".into(),
            reason: UnbanReason::Manual,
        };
        assert_eq!(
            Change::from_decision(&unban, now),
            Some(Change::Remove {
                target: net("2001:db8::/64")
            })
        );
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_millis(3000)), 3);
        assert_eq!(timeout_secs(Duration::from_millis(3001)), 4);
    }

    #[test]
    fn set_kinds() {
        assert_eq!(SetKind::of(&net("192.0.2.1/32")), SetKind::Addr4);
        assert_eq!(SetKind::of(&net("192.0.2.0/24")), SetKind::Net4);
        assert_eq!(SetKind::of(&net("2001:db8::1/128")), SetKind::Addr6);
        assert_eq!(SetKind::of(&net("2001:db8::/64")), SetKind::Net6);
    }
}
