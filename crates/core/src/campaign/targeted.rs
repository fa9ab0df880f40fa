//! The user-targeted detector: many distinct addresses failing on one existing account.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use super::{CampaignAlert, CampaignKind, TargetedConfig, fnv32};
use crate::{Event, EventKind, Time};

/// A login of the account from an address clears that address for this long.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 86400);
/// Logins remembered per account.
const KNOWN_PER_USER: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Try {
    first: Time,
    last: Time,
    failures: u32,
}

struct Attack {
    start: Time,
    reported: HashSet<IpAddr>,
    /// New participants wait for this report time.
    next_report: Time,
    dirty: bool,
    latest: Option<CampaignAlert>,
}

/// One existing account's recent failures and logins.
#[derive(Default)]
struct Track {
    tries: HashMap<IpAddr, Try>,
    /// Failing addresses beyond the per-account cap (counted, not listed).
    overflow: usize,
    known: HashMap<IpAddr, Time>,
    last: Time,
    attack: Option<Attack>,
}

/// The user-targeted detector (see the module doc of `campaign`).
pub struct TargetedDetector {
    cfg: TargetedConfig,
    users: HashMap<Box<str>, Track>,
    out: Vec<CampaignAlert>,
}

impl TargetedDetector {
    /// A detector with no history.
    pub fn new(cfg: TargetedConfig) -> TargetedDetector {
        TargetedDetector {
            cfg,
            users: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &TargetedConfig {
        &self.cfg
    }

    /// Accounts tracked now (at most `max_users`).
    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }

    /// The latest report of every attack in progress.
    pub fn active(&self) -> Vec<CampaignAlert> {
        let mut v: Vec<CampaignAlert> = self
            .users
            .values()
            .filter_map(|t| t.attack.as_ref().and_then(|a| a.latest.clone()))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The earliest report or end due.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.users
            .values()
            .filter_map(|t| {
                let a = t.attack.as_ref()?;
                let end = t.last.saturating_add(self.cfg.window);
                Some(if a.dirty { end.min(a.next_report) } else { end })
            })
            .min()
    }

    /// Take the reports made so far.
    pub fn drain_alerts(&mut self) -> std::vec::Drain<'_, CampaignAlert> {
        self.out.drain(..)
    }

    /// Take one event at `now`.
    pub fn handle_event(&mut self, now: Time, ev: &Event) {
        let Some(user) = ev.user.as_deref() else {
            return;
        };
        let t = ev.time;
        match ev.kind {
            EventKind::Success => {
                let Some(track) = self.track(user, t) else {
                    return;
                };
                if track.known.len() >= KNOWN_PER_USER && !track.known.contains_key(&ev.addr) {
                    let oldest = track.known.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a);
                    if let Some(a) = oldest {
                        track.known.remove(&a);
                    }
                }
                track.known.insert(ev.addr, t);
                // The account's own address: its failures were typos.
                if track.tries.remove(&ev.addr).is_some()
                    && let Some(a) = &mut track.attack
                {
                    a.reported.remove(&ev.addr);
                }
            }
            EventKind::Attempt if ev.user_exists == Some(true) && ev.count > 0 => {
                let window = self.cfg.window;
                let (min, cap) = (self.cfg.min_addresses, self.cfg.max_participants);
                let Some(track) = self.track(user, t) else {
                    return;
                };
                if track
                    .known
                    .get(&ev.addr)
                    .is_some_and(|k| t.since(*k) < KNOWN_FOR)
                {
                    return;
                }
                track.last = track.last.max(t);
                let horizon = t.saturating_sub(window);
                if let Some(x) = track.tries.get_mut(&ev.addr) {
                    x.last = x.last.max(t);
                    x.failures = x.failures.saturating_add(ev.count);
                } else if track.tries.len() < cap {
                    track.tries.insert(
                        ev.addr,
                        Try {
                            first: t,
                            last: t,
                            failures: ev.count,
                        },
                    );
                } else {
                    track.overflow += 1;
                    return;
                }
                // Before an alert, the tries older than the window go once there are enough
                // to count (then few are left, so this is cheap); after it, the attack's
                // list only grows.
                if track.attack.is_none() && track.tries.len() >= min {
                    track.tries.retain(|_, x| x.last >= horizon);
                }
                let live = track.tries.len();
                match &mut track.attack {
                    None if live >= min => {
                        let start = track
                            .tries
                            .values()
                            .filter(|x| x.last >= horizon)
                            .map(|x| x.first)
                            .min()
                            .unwrap_or(t);
                        track.attack = Some(Attack {
                            start,
                            reported: HashSet::new(),
                            next_report: now,
                            dirty: true,
                            latest: None,
                        });
                        self.report(user, now, false);
                    }
                    Some(a) if !a.reported.contains(&ev.addr) => {
                        a.dirty = true;
                        if now >= a.next_report {
                            self.report(user, now, false);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Report gathered participants and end attacks quiet for a window.
    pub fn handle_timeout(&mut self, now: Time) {
        let window = self.cfg.window;
        let due: Vec<(Box<str>, bool)> = self
            .users
            .iter()
            .filter_map(|(u, t)| {
                let a = t.attack.as_ref()?;
                let ended = now >= t.last.saturating_add(window);
                (ended || (a.dirty && now >= a.next_report)).then(|| (u.clone(), ended))
            })
            .collect();
        for (user, ended) in due {
            self.report(&user, now, ended);
        }
    }

    /// End of input: report what is gathered; attacks in progress stay active.
    pub fn finish(&mut self, now: Time) {
        let due: Vec<Box<str>> = self
            .users
            .iter()
            .filter(|(_, t)| t.attack.as_ref().is_some_and(|a| a.dirty))
            .map(|(u, _)| u.clone())
            .collect();
        for user in due {
            self.report(&user, now, false);
        }
    }

    /// The track of `user`, made if there is room (evicting the account quiet longest that
    /// is not under attack).
    fn track(&mut self, user: &str, t: Time) -> Option<&mut Track> {
        if !self.users.contains_key(user) && self.users.len() >= self.cfg.max_users {
            let victim = self
                .users
                .iter()
                .filter(|(_, tr)| tr.attack.is_none())
                .min_by_key(|(_, tr)| tr.last)
                .map(|(u, _)| u.clone())?;
            self.users.remove(&victim);
        }
        if !self.users.contains_key(user) {
            self.users.insert(user.into(), Track::default());
        }
        let track = self.users.get_mut(user)?;
        if track.last < t && track.tries.is_empty() {
            track.last = t;
        }
        Some(track)
    }

    fn report(&mut self, user: &str, now: Time, ended: bool) {
        let Some(track) = self.users.get_mut(user) else {
            return;
        };
        let Some(attack) = &mut track.attack else {
            return;
        };
        let mut participants: Vec<IpAddr> = track.tries.keys().copied().collect();
        participants.sort_unstable();
        let new_participants: Vec<IpAddr> = participants
            .iter()
            .filter(|a| !attack.reported.contains(a))
            .copied()
            .collect();
        attack.reported.extend(new_participants.iter().copied());
        attack.dirty = false;
        attack.next_report = now.saturating_add(self.cfg.report_every);
        let failures = track.tries.values().map(|x| u64::from(x.failures)).sum();
        let participant_count = participants.len() + track.overflow;
        let many = participant_count as f64 / self.cfg.min_addresses.max(1) as f64;
        let detected = attack.latest.as_ref().map_or(now, |l| l.detected);
        let alert = CampaignAlert {
            id: format!("user-{}-{:08x}", attack.start.as_secs(), fnv32(user)).into(),
            kind: CampaignKind::UserTargeted,
            ended,
            start: attack.start,
            end: track.last.max(attack.start),
            detected,
            participants,
            participant_count,
            new_participants,
            users: vec![(
                user.into(),
                u32::try_from(participant_count).unwrap_or(u32::MAX),
            )],
            failures,
            confidence: (1.0 - 0.5f64.powf(many)).clamp(0.0, 1.0),
        };
        attack.latest = Some(alert.clone());
        self.out.push(alert);
        if ended {
            track.attack = None;
            track.tries.clear();
            track.overflow = 0;
        }
    }
}
