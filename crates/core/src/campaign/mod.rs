//! Site-wide detection: distributed campaigns and user-targeted attacks (issue 15.1, 15.2).
//!
//! Per-address jails are blind to a botnet that spreads its guesses over thousands of
//! addresses, each below any threshold (Javed & Paxson, "Detecting Stealthy, Distributed SSH
//! Brute-Forcing", CCS 2013). [`SiteWatch`] looks at the whole site instead:
//!
//! - [`CampaignDetector`]: the hourly count of failed logins (each address adding at most
//!   `per_address_cap` to an hour, so one loud address cannot pass for a crowd) against a
//!   learned baseline (an exponentially weighted mean and variance of clean hours, a
//!   Gamma-Poisson model: variance at least the mean, so legitimate users' typos and the
//!   internet's usual background are learned, not alarmed on), and a one-sided CUSUM on the
//!   standardised excess that brackets the attack in time: it starts where the sum last
//!   left zero, ends where it returns to zero. The addresses active in that interval that
//!   look coordinated (new to the site, never logged in, few tries each and never a burst,
//!   user names the other newcomers try too) are its participants.
//! - [`TargetedDetector`]: many distinct addresses failing on the same *existing* account
//!   (sshd's words say so: [`Event::user_exists`]) within a window, none of which ever logged
//!   in as it.
//!
//! Both are sans-IO state machines like the jail engine: events and `now` in, alerts out.
//! Attacker text never decides which address is a participant: a participant is always
//! the address of its own failure lines (fixed text in the filter), user names only group
//! them. Memory is bounded by caps in the configs ([`CampaignConfig::max_addresses`],
//! [`CampaignConfig::max_names`], [`TargetedConfig::max_users`],
//! [`TargetedConfig::max_participants`]); see docs/campaigns.md.

mod detector;
mod targeted;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

pub use detector::{CampaignDetector, CusumState};
pub use targeted::TargetedDetector;

use crate::{Event, Time};

/// Knobs of the distributed-campaign detector.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignConfig {
    /// Length of one bin of the failure count (one hour).
    pub bin: Duration,
    /// CUSUM decision threshold `h`, in standard deviations of the hourly count.
    pub threshold: f64,
    /// CUSUM drift `k`: the excess per hour, in standard deviations, that is still normal.
    pub drift: f64,
    /// Hours of learning before any alarm.
    pub learn_bins: u32,
    /// Half-life of the baseline, in bins (one week).
    pub half_life_bins: f64,
    /// At most this many failures of one address count in one bin.
    pub per_address_cap: u32,
    /// At least this many participants for an alert.
    pub min_participants: usize,
    /// A participant failed at most this many times in all.
    pub max_tries: u32,
    /// An address seen within this long before a campaign is not new to the site.
    pub memory: Duration,
    /// Cap of tracked addresses (about 100 bytes each).
    pub max_addresses: usize,
    /// Cap of tracked user names (for the report only; addresses keep hashes).
    pub max_names: usize,
    /// Cap of participants listed in one alert (the count stays exact).
    pub max_listed: usize,
    /// An alarm lasting longer than this ends and the baseline takes the new level.
    pub max_duration: Duration,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            bin: Duration::from_secs(3600),
            threshold: 8.0,
            drift: 1.0,
            learn_bins: 24,
            half_life_bins: 168.0,
            per_address_cap: 3,
            min_participants: 10,
            max_tries: 10,
            memory: Duration::from_secs(14 * 86400),
            max_addresses: 200_000,
            max_names: 2_000,
            max_listed: 50_000,
            max_duration: Duration::from_secs(30 * 86400),
        }
    }
}

/// Knobs of the user-targeted detector.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetedConfig {
    /// Distinct addresses are counted within this window.
    pub window: Duration,
    /// At least this many distinct addresses failing on one existing account: an alert.
    pub min_addresses: usize,
    /// Cap of tracked accounts (only existing ones count, so real sites stay far below).
    pub max_users: usize,
    /// Cap of addresses tracked per account.
    pub max_participants: usize,
    /// Reports of an attack after its first come at most this often (new participants are
    /// gathered in between): 10 s in the daemon, so late joiners are banned soon; the
    /// offline commands, which want only the last report, take longer.
    pub report_every: Duration,
}

impl Default for TargetedConfig {
    fn default() -> Self {
        TargetedConfig {
            window: Duration::from_secs(86400),
            min_addresses: 10,
            max_users: 256,
            max_participants: 4_096,
            report_every: Duration::from_secs(10),
        }
    }
}

/// Which detector raised an alert.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CampaignKind {
    /// A change in the site's failure rate, with its coordinated participants.
    Distributed,
    /// Many addresses on one existing account.
    UserTargeted,
}

impl CampaignKind {
    /// The short name in logs, JSON and the store: `campaign`, `user-targeted`.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignKind::Distributed => "campaign",
            CampaignKind::UserTargeted => "user-targeted",
        }
    }
}

/// One report of a campaign: the first when it is detected, one more whenever participants
/// join, the last when it ends. Every report of one campaign has the same `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignAlert {
    /// Stable id: kind and start time (and, for a targeted attack, a hash of the account).
    pub id: Box<str>,
    /// Which detector.
    pub kind: CampaignKind,
    /// Whether the campaign is over (this is its last report).
    pub ended: bool,
    /// Its first bin (distributed) or the first failure counted (targeted).
    pub start: Time,
    /// The end of its last bin of excess, or its last failure; while active, so far.
    pub end: Time,
    /// When it was first reported: the end of the bin that raised the alarm (distributed),
    /// the failure that made it (targeted). `detected − start` is the detection delay.
    pub detected: Time,
    /// Participants, ascending, at most the configured cap of them.
    pub participants: Vec<IpAddr>,
    /// How many participants there are (even beyond the listed ones).
    pub participant_count: usize,
    /// Participants that joined since this campaign's previous report (for the ban action).
    pub new_participants: Vec<IpAddr>,
    /// User names targeted, most tried first, with how many participants tried each (at
    /// most 20). Attacker text: display it escaped.
    pub users: Vec<(Box<str>, u32)>,
    /// Failed attempts of the participants.
    pub failures: u64,
    /// 0 to 1: how far the change passed the threshold and how much of the newcomers'
    /// traffic the participants are (see docs/campaigns.md).
    pub confidence: f64,
}

/// Both detectors behind one input and one output, for the daemon and the offline commands.
pub struct SiteWatch {
    campaign: Option<CampaignDetector>,
    targeted: Option<TargetedDetector>,
    alerts: VecDeque<CampaignAlert>,
}

impl SiteWatch {
    /// A watch with the detectors whose configs are given (none: it does nothing).
    pub fn new(campaign: Option<CampaignConfig>, targeted: Option<TargetedConfig>) -> SiteWatch {
        SiteWatch {
            campaign: campaign.map(CampaignDetector::new),
            targeted: targeted.map(TargetedDetector::new),
            alerts: VecDeque::new(),
        }
    }

    /// Whether any detector is on.
    pub fn is_enabled(&self) -> bool {
        self.campaign.is_some() || self.targeted.is_some()
    }

    /// The distributed detector, if on.
    pub fn campaign(&self) -> Option<&CampaignDetector> {
        self.campaign.as_ref()
    }

    /// The targeted detector, if on.
    pub fn targeted(&self) -> Option<&TargetedDetector> {
        self.targeted.as_ref()
    }

    /// Take one event (any jail's) at `now`.
    pub fn handle_event(&mut self, now: Time, ev: &Event) {
        if let Some(c) = &mut self.campaign {
            c.handle_event(now, ev);
            self.alerts.extend(c.drain_alerts());
        }
        if let Some(t) = &mut self.targeted {
            t.handle_event(now, ev);
            self.alerts.extend(t.drain_alerts());
        }
    }

    /// Close what is due at `now` (bins, quiet targeted attacks).
    pub fn handle_timeout(&mut self, now: Time) {
        if let Some(c) = &mut self.campaign {
            c.handle_timeout(now);
            self.alerts.extend(c.drain_alerts());
        }
        if let Some(t) = &mut self.targeted {
            t.handle_timeout(now);
            self.alerts.extend(t.drain_alerts());
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do next.
    pub fn poll_timeout(&self) -> Option<Time> {
        let a = self
            .campaign
            .as_ref()
            .and_then(CampaignDetector::poll_timeout);
        let b = self
            .targeted
            .as_ref()
            .and_then(TargetedDetector::poll_timeout);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next alert, oldest first.
    pub fn poll_alert(&mut self) -> Option<CampaignAlert> {
        self.alerts.pop_front()
    }

    /// The campaigns active now (their latest report), for `status`.
    pub fn active(&self) -> Vec<CampaignAlert> {
        let mut out = Vec::new();
        if let Some(c) = &self.campaign {
            out.extend(c.active());
        }
        if let Some(t) = &self.targeted {
            out.extend(t.active());
        }
        out
    }

    /// End every active campaign at `now` (end of input for the offline commands).
    pub fn finish(&mut self, now: Time) {
        if let Some(c) = &mut self.campaign {
            c.finish(now);
            self.alerts.extend(c.drain_alerts());
        }
        if let Some(t) = &mut self.targeted {
            t.finish(now);
            self.alerts.extend(t.drain_alerts());
        }
    }
}

/// FNV-1a of `s`, for stable ids that must not depend on a per-process key.
pub(crate) fn fnv32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Whole seconds of `d` as `i64`, saturating.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
