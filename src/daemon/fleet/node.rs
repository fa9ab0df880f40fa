//! The daemon's side of the fleet: the link to the task, the receiving policy and what it
//! counts, and the loop's steps that use them (received decisions in, own bans out).

use std::collections::BTreeMap;

use ipnet::IpNet;
use portcullis_config::FleetSettings;
use portcullis_control::Target;
use portcullis_control::data::FleetStatus;
use portcullis_core::Decision;

use super::{FleetLink, Inbound, Report, TaskConfig, shares};
use crate::daemon::Daemon;
use crate::daemon::jail_set::JailInit;
use crate::daemon::jail_set::fleet::{PolicyConfig, ReceivePolicy, Received, Verdict};

/// Received messages the loop applies per select turn at most (then lines and control
/// requests get their turn).
pub const BURST: usize = 1024;

/// The fleet state the daemon holds.
pub struct FleetNode {
    /// The task.
    pub link: FleetLink,
    /// What received decisions do.
    pub policy: ReceivePolicy,
    /// `[fleet]`.
    pub settings: FleetSettings,
    /// This node's name.
    pub node: String,
    /// The last stream sequence applied (stored with the decisions of its burst).
    pub applied_seq: u64,
    /// Whether `applied_seq` is newer than what the store holds.
    pub seq_dirty: bool,
    /// Decisions applied since start.
    pub applied: u64,
    /// Decisions ignored since start, by why.
    pub ignored: BTreeMap<&'static str, u64>,
}

/// The receiving policy's settings: the node, `[fleet]`'s knobs and everything no report
/// may ban (each jail's allowlist, which holds the host's own addresses and loopback, the
/// fleet's members and `fleet.protected`).
pub fn policy_config(fleet: &FleetSettings, node: &str, jails: &[JailInit]) -> PolicyConfig {
    let mut protected: Vec<IpNet> = Vec::new();
    let allow = jails.iter().flat_map(|j| j.config.allowlist.iter());
    for n in allow.chain(&fleet.members).chain(&fleet.protected) {
        if !protected.contains(n) {
            protected.push(*n);
        }
    }
    PolicyConfig {
        node: node.to_owned(),
        max_ban: fleet.max_ban,
        permanent_after_nodes: fleet.permanent_after_nodes,
        rate: fleet.rate,
        protected,
    }
}

impl FleetNode {
    /// Start the fleet task for `settings` as `node`, resuming after `applied_seq`.
    pub fn start(
        settings: FleetSettings,
        node: String,
        jails: &[JailInit],
        allowed: Vec<IpNet>,
        applied_seq: u64,
    ) -> FleetNode {
        let policy = ReceivePolicy::new(policy_config(&settings, &node, jails), allowed);
        let link = FleetLink::start(
            TaskConfig {
                fleet: settings.clone(),
                node: node.clone(),
            },
            applied_seq,
        );
        tracing::info!(
            node = %node,
            servers = ?settings.servers,
            stream = %settings.stream,
            applied_seq,
            "fleet: sharing bans"
        );
        FleetNode {
            link,
            policy,
            settings,
            node,
            applied_seq,
            seq_dirty: false,
            applied: 0,
            ignored: BTreeMap::new(),
        }
    }

    /// What `status` shows.
    pub fn status(&self, bans: u64) -> FleetStatus {
        let s = self.link.state();
        FleetStatus {
            node: self.node.clone(),
            connected: s.connected,
            consuming: s.consuming,
            applied_seq: self.applied_seq,
            published: s.published,
            queued: s.queued as u64,
            dropped: s.dropped + self.link.handover_dropped,
            applied: self.applied,
            ignored: self
                .ignored
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            bans,
            origins: BTreeMap::new(),
            error: s.last_error,
        }
    }
}

/// The fleet's next received message; never, without a fleet.
pub async fn next_inbound(fleet: &mut Option<FleetNode>) -> Option<Inbound> {
    match fleet {
        Some(f) => f.link.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Apply `first` and what else is already waiting (up to [`BURST`]) through the
    /// receiving policy; the burst's commit stores them with the stream sequence.
    pub(in crate::daemon) fn fleet_received(&mut self, first: Inbound) {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(inbound) = next.take() {
            self.fleet_apply(inbound);
            n += 1;
            if n >= BURST {
                break;
            }
            next = self.fleet.as_mut().and_then(|f| f.link.try_recv());
        }
    }

    fn fleet_apply(&mut self, inbound: Inbound) {
        let reading = self.clock.read();
        let now = reading.engine;
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        fleet.applied_seq = fleet.applied_seq.max(inbound.seq);
        fleet.seq_dirty = true;
        let msg = match inbound.msg {
            Ok(m) => m,
            Err(why) => {
                tracing::warn!(
                    seq = inbound.seq,
                    ?why,
                    "fleet: a message not understood, skipped"
                );
                *fleet.ignored.entry("malformed").or_default() += 1;
                return;
            }
        };
        // Wall times as sent, onto engine time.
        let msg = match msg {
            Received::Ban {
                node,
                target,
                until,
            } => Received::Ban {
                node,
                target,
                until: until.map(|u| reading.engine_of(u)),
            },
            Received::AdminBan { target, until } => Received::AdminBan {
                target,
                until: until.map(|u| reading.engine_of(u)),
            },
            other => other,
        };
        let target = match &msg {
            Received::Ban { target, .. }
            | Received::AdminBan { target, .. }
            | Received::AdminUnban { target }
            | Received::AdminAllow { target } => *target,
        };
        let existing = self.jails.fleet_ban_of(target, now).cloned();
        let verdict = fleet.policy.judge(&msg, existing.as_ref(), now);
        match verdict {
            Verdict::Ban(ban) => {
                fleet.applied += 1;
                tracing::info!(seq = inbound.seq, target = %ban.target, origin = ?ban.reason, "fleet: ban received");
                self.jails.put_fleet_ban(ban);
            }
            Verdict::Lift(t) => {
                fleet.applied += 1;
                tracing::warn!(seq = inbound.seq, target = %t, "fleet: an admin lifted every ban of it");
                let _ = crate::daemon::commands::unban::unban(
                    &mut self.jails,
                    now,
                    Some(Target(t)),
                    None,
                    false,
                );
            }
            Verdict::Allow(t) => {
                fleet.applied += 1;
                tracing::warn!(seq = inbound.seq, target = %t, "fleet: an admin allowed it everywhere");
                if let Err(e) = self.store.add_fleet_allow(t, reading.wall) {
                    // In force in memory; a restart before it is written forgets it (the
                    // stream still has it within its retention).
                    tracing::error!(
                        "fleet: cannot store the allowlist entry {t}: {}",
                        crate::text::chain(&e)
                    );
                }
                self.jails.allow_everywhere(t);
                let _ = crate::daemon::commands::unban::unban(
                    &mut self.jails,
                    now,
                    Some(Target(t)),
                    None,
                    false,
                );
            }
            Verdict::Ignored(why) => {
                tracing::debug!(seq = inbound.seq, %target, why = why.kind(), "fleet: ignored");
                *fleet.ignored.entry(why.kind()).or_default() += 1;
            }
        }
    }

    /// Hand this burst's own bans (wall times, durable and applied) to the fleet task.
    pub(in crate::daemon) fn fleet_report(&mut self, decisions: &[Decision]) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        for d in decisions {
            if let Decision::Ban(b) = d
                && shares(&fleet.settings, b)
            {
                fleet.link.report(Report {
                    target: b.target,
                    jail: b.jail.clone(),
                    since: b.since,
                    until: b.until,
                });
            }
        }
    }

    /// The fleet stream's position for this burst's store transaction, when it moved.
    pub(in crate::daemon) fn fleet_position(
        &mut self,
    ) -> Option<(String, portcullis_store::SourcePosition)> {
        let fleet = self.fleet.as_mut()?;
        if !fleet.seq_dirty {
            return None;
        }
        fleet.seq_dirty = false;
        Some((
            super::position_key(&fleet.settings.stream),
            portcullis_store::SourcePosition::Journal {
                cursor: fleet.applied_seq.to_string(),
            },
        ))
    }
}
