//! The distributed-campaign detector: a learned baseline of the hourly failure count, a
//! CUSUM that brackets the change, and attribution of the coordinated newcomers.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;

use super::{CampaignAlert, CampaignConfig, CampaignKind, secs};
use crate::{Event, EventKind, Time};

/// Largest standardised excess one bin adds to the CUSUM: one hour's spike (a handful of
/// scanners arriving together) can never alarm alone; an attack needs several hours of
/// excess (`threshold / (CAP − drift)` at least).
const Z_CAP: f64 = 4.0;
/// Empty bins closed one by one after a silence; a longer silence closes this many.
const MAX_GAP_BINS: i64 = 24 * 60;
/// User names remembered per address (hashes).
const NAMES_PER_ADDRESS: usize = 3;
/// User names listed in an alert.
const LISTED_USERS: usize = 20;

/// What one address did, as the detector keeps it (about 100 bytes with the map's share).
#[derive(Clone, Debug)]
struct Seen {
    first: Time,
    last: Time,
    failures: u32,
    /// The bin `in_bin` counts for.
    bin: i64,
    in_bin: u32,
    /// The most failures it had in one bin: above the cap, it is a burst, not a campaign's
    /// slow member.
    max_in_bin: u32,
    /// Hashes of the user names it tried (0: empty slot).
    names: [u64; NAMES_PER_ADDRESS],
    /// It logged in successfully: one of the site's users.
    known: bool,
}

/// The detector's model, for `status` and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CusumState {
    /// Bins closed so far.
    pub bins: u64,
    /// Learned mean of the hourly (capped) failure count.
    pub mean: f64,
    /// Learned variance of it (before the floors: at least the mean, at least 1).
    pub var: f64,
    /// The CUSUM now.
    pub sum: f64,
    /// The count of the bin being filled.
    pub current: u32,
    /// Whether it is still learning (no alarms yet).
    pub learning: bool,
}

/// An alarm in progress.
struct Alarm {
    start_bin: i64,
    /// The down-CUSUM of quiet: `max(0, quiet + drift − z)`; the alarm ends when it reaches
    /// half the threshold (about four quiet hours), at the last bin before it began.
    quiet: f64,
    last_up: i64,
    peak: f64,
    reported: HashSet<IpAddr>,
    latest: Option<CampaignAlert>,
}

/// The distributed-campaign detector (see the module doc of `campaign`).
pub struct CampaignDetector {
    cfg: CampaignConfig,
    bin_secs: i64,
    /// Keys user-name hashes: a per-process random SipHash key, so names cannot be chosen
    /// to collide.
    hasher: RandomState,
    seen: HashMap<IpAddr, Seen>,
    /// Display names of the hashes, with when each was last tried (capped).
    names: HashMap<u64, (Box<str>, Time)>,
    /// The bin being filled and its capped failure count.
    bin: Option<i64>,
    count: u32,
    bins: u64,
    mean: f64,
    var: f64,
    sum: f64,
    /// Bin where the CUSUM last left zero, the last bin that pushed it up, its peak since.
    excursion: Option<i64>,
    last_up: i64,
    peak: f64,
    alarm: Option<Alarm>,
    out: Vec<CampaignAlert>,
}

impl CampaignDetector {
    /// A detector that has learned nothing yet.
    pub fn new(cfg: CampaignConfig) -> CampaignDetector {
        let bin_secs = secs(cfg.bin).max(1);
        CampaignDetector {
            cfg,
            bin_secs,
            hasher: RandomState::new(),
            seen: HashMap::new(),
            names: HashMap::new(),
            bin: None,
            count: 0,
            bins: 0,
            mean: 0.0,
            var: 0.0,
            sum: 0.0,
            excursion: None,
            last_up: 0,
            peak: 0.0,
            alarm: None,
            out: Vec::new(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &CampaignConfig {
        &self.cfg
    }

    /// The model now.
    pub fn state(&self) -> CusumState {
        CusumState {
            bins: self.bins,
            mean: self.mean,
            var: self.var,
            sum: self.sum,
            current: self.count,
            learning: self.bins < u64::from(self.cfg.learn_bins),
        }
    }

    /// Addresses tracked now (at most about `max_addresses`).
    pub fn tracked_addresses(&self) -> usize {
        self.seen.len()
    }

    /// User names tracked now (at most `max_names`).
    pub fn tracked_names(&self) -> usize {
        self.names.len()
    }

    /// The latest report of the campaign in progress, if it was reported.
    pub fn active(&self) -> Option<CampaignAlert> {
        self.alarm.as_ref().and_then(|a| a.latest.clone())
    }

    /// When the bin being filled closes.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.bin.map(|b| self.bin_start(b + 1))
    }

    /// Take the reports made so far.
    pub fn drain_alerts(&mut self) -> std::vec::Drain<'_, CampaignAlert> {
        self.out.drain(..)
    }

    /// Take one event at `now` (log time offline, engine time in the daemon). Its time
    /// places it in a bin; an event older than the bin being filled counts in that bin.
    pub fn handle_event(&mut self, now: Time, ev: &Event) {
        let t = ev.time;
        let b = self.bin_of(t);
        let _ = now;
        self.advance_to(b);
        let current = self.bin.unwrap_or(b);
        match ev.kind {
            EventKind::Success => {
                if let Some(s) = self.entry(ev.addr, t) {
                    s.known = true;
                }
            }
            // A line that repeats a counted try (count 0) names the same user as the line
            // that counted it: nothing to learn from it.
            EventKind::Attempt if ev.count > 0 => {
                let name = ev.user.as_deref().map(|u| self.remember_name(u, t));
                let cap = self.cfg.per_address_cap;
                let Some(s) = self.entry(ev.addr, t) else {
                    return;
                };
                if let Some(h) = name
                    && !s.names.contains(&h)
                    && let Some(slot) = s.names.iter_mut().find(|n| **n == 0)
                {
                    *slot = h;
                }
                s.failures = s.failures.saturating_add(ev.count);
                if s.bin != current {
                    s.bin = current;
                    s.in_bin = 0;
                }
                let before = s.in_bin;
                s.in_bin = s.in_bin.saturating_add(ev.count);
                s.max_in_bin = s.max_in_bin.max(s.in_bin);
                let added = s.in_bin.min(cap).saturating_sub(before.min(cap));
                self.count = self.count.saturating_add(added);
            }
            EventKind::Attempt | EventKind::Probe | EventKind::Info => {}
        }
    }

    /// Close the bins that ended at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        let b = self.bin_of(now);
        if self.bin.is_some_and(|cur| cur < b) {
            self.advance_to(b);
        }
    }

    /// Close the bin being filled (end of input): an alarm it raises is reported; one in
    /// progress stays active.
    pub fn finish(&mut self, _now: Time) {
        if let Some(b) = self.bin {
            self.advance_to(b + 1);
            self.bin = None;
        }
    }

    // ---- internals ----

    fn bin_of(&self, t: Time) -> i64 {
        t.as_secs().div_euclid(self.bin_secs)
    }

    fn bin_start(&self, b: i64) -> Time {
        Time::from_secs(b.saturating_mul(self.bin_secs))
    }

    /// The tracked entry of `addr`, made if missing (evicting when the cap is passed).
    fn entry(&mut self, addr: IpAddr, t: Time) -> Option<&mut Seen> {
        if !self.seen.contains_key(&addr) && self.seen.len() >= self.cfg.max_addresses {
            self.evict(t);
        }
        let s = self.seen.entry(addr).or_insert(Seen {
            first: t,
            last: t,
            failures: 0,
            bin: i64::MIN,
            in_bin: 0,
            max_in_bin: 0,
            names: [0; NAMES_PER_ADDRESS],
            known: false,
        });
        s.last = s.last.max(t);
        Some(s)
    }

    /// Drop addresses not seen within `memory`, then, if still at the cap, the tenth seen
    /// longest ago.
    fn evict(&mut self, now: Time) {
        let horizon = now.saturating_sub(self.cfg.memory);
        self.seen.retain(|_, s| s.last >= horizon);
        if self.seen.len() >= self.cfg.max_addresses {
            let mut lasts: Vec<Time> = self.seen.values().map(|s| s.last).collect();
            let k = lasts.len() / 10;
            let (_, cutoff, _) = lasts.select_nth_unstable(k);
            let cutoff = *cutoff;
            self.seen.retain(|_, s| s.last > cutoff);
        }
    }

    fn remember_name(&mut self, user: &str, t: Time) -> u64 {
        let h = self.hasher.hash_one(user).max(1);
        if let Some(e) = self.names.get_mut(&h) {
            e.1 = t;
            return h;
        }
        if self.names.len() >= self.cfg.max_names {
            let mut times: Vec<Time> = self.names.values().map(|e| e.1).collect();
            let k = times.len() / 2;
            let (_, cutoff, _) = times.select_nth_unstable(k);
            let cutoff = *cutoff;
            self.names.retain(|_, e| e.1 > cutoff);
        }
        if self.names.len() < self.cfg.max_names {
            self.names.insert(h, (user.into(), t));
        }
        h
    }

    /// Close every bin before `b` and make `b` the one being filled.
    fn advance_to(&mut self, b: i64) {
        let Some(cur) = self.bin else {
            self.bin = Some(b);
            return;
        };
        if b <= cur {
            return;
        }
        let count = std::mem::take(&mut self.count);
        self.close_bin(cur, count);
        let first_empty = (cur + 1).max(b - MAX_GAP_BINS);
        for e in first_empty..b {
            self.close_bin(e, 0);
        }
        self.bin = Some(b);
    }

    fn learn(&mut self, x: f64) {
        let decay = 1.0 - 0.5f64.powf(1.0 / self.cfg.half_life_bins.max(1.0));
        // A plain average while young, the exponential one after.
        let a = decay.max(1.0 / (self.bins as f64 + 1.0));
        let delta = x - self.mean;
        self.mean += a * delta;
        self.var = (1.0 - a) * (self.var + a * delta * delta);
    }

    fn sigma(&self) -> f64 {
        self.var.max(self.mean).max(1.0).sqrt()
    }

    fn close_bin(&mut self, b: i64, count: u32) {
        let x = f64::from(count);
        if self.bins < u64::from(self.cfg.learn_bins) {
            self.learn(x);
            self.bins += 1;
            return;
        }
        let z = ((x - self.mean) / self.sigma()).clamp(-Z_CAP, Z_CAP);
        let before = self.sum;
        self.sum = (self.sum + z - self.cfg.drift).max(0.0);
        if before == 0.0 && self.sum > 0.0 {
            self.excursion = Some(b);
            self.peak = 0.0;
        }
        if z > self.cfg.drift {
            self.last_up = b;
        }
        self.peak = self.peak.max(self.sum);
        if self.sum >= self.cfg.threshold && self.alarm.is_none() {
            self.alarm = Some(Alarm {
                start_bin: self.excursion.unwrap_or(b),
                quiet: 0.0,
                last_up: self.last_up,
                peak: self.peak,
                reported: HashSet::new(),
                latest: None,
            });
        }
        let over_long = self.alarm.as_ref().is_some_and(|a| {
            self.bin_start(b + 1).since(self.bin_start(a.start_bin)) > self.cfg.max_duration
        });
        let mut quiet_end = false;
        if let Some(alarm) = &mut self.alarm {
            alarm.quiet = (alarm.quiet + self.cfg.drift - z).max(0.0);
            if alarm.quiet == 0.0 {
                alarm.last_up = b;
            }
            alarm.peak = self.peak;
            quiet_end = alarm.quiet >= self.cfg.threshold / 2.0;
        }
        if self.alarm.is_some() {
            let ended = quiet_end || over_long;
            self.report(b, ended);
            if ended {
                self.alarm = None;
                self.sum = 0.0;
                if over_long {
                    // The new level is the site's normal now.
                    self.mean = x;
                    self.var = x;
                }
            }
        } else {
            self.learn(x);
        }
        if self.sum == 0.0 {
            self.excursion = None;
            self.peak = 0.0;
        }
        self.bins += 1;
        if self.seen.len() > self.cfg.max_addresses {
            self.evict(self.bin_start(b + 1));
        }
    }

    /// Attribute the participants of the alarm in progress after bin `b` and report them
    /// if there are enough and some are new (or it `ended`).
    fn report(&mut self, b: i64, ended: bool) {
        let Some(alarm) = &self.alarm else { return };
        let start = self.bin_start(alarm.start_bin);
        let end = if ended {
            self.bin_start(alarm.last_up + 1)
        } else {
            self.bin_start(b + 1)
        };
        let newcomer_since = start.saturating_sub(self.cfg.bin);
        let cap = self.cfg.per_address_cap;
        // Newcomers active in the interval that never logged in.
        let newcomers: Vec<(&IpAddr, &Seen)> = self
            .seen
            .iter()
            .filter(|(_, s)| {
                s.last >= start && s.first >= newcomer_since && !s.known && s.failures > 0
            })
            .collect();
        let slow: Vec<&(&IpAddr, &Seen)> = newcomers
            .iter()
            .filter(|(_, s)| s.failures <= self.cfg.max_tries && s.max_in_bin <= cap)
            .collect();
        let mut popularity: HashMap<u64, u32> = HashMap::new();
        for (_, s) in &slow {
            for &h in s.names.iter().filter(|&&h| h != 0) {
                *popularity.entry(h).or_default() += 1;
            }
        }
        let min_pop = (slow.len() / 50).max(2) as u32;
        let popular = |h: &u64| popularity.get(h).is_some_and(|&n| n >= min_pop);
        let mut participants: Vec<IpAddr> = Vec::new();
        let mut failures = 0u64;
        for (addr, s) in &slow {
            let named = s.names.iter().filter(|&&h| h != 0).count();
            let shared = s.names.iter().filter(|h| **h != 0 && popular(h)).count();
            if named > 0 && shared * 2 >= named {
                participants.push(**addr);
                failures += u64::from(s.failures);
            }
        }
        if participants.len() < self.cfg.min_participants && !ended {
            return;
        }
        let bin_end = self.bin_start(b + 1);
        let alarm = self.alarm.as_mut().expect("checked above");
        if participants.len() < self.cfg.min_participants && alarm.latest.is_none() {
            // Ended without ever being a campaign: nothing to say.
            return;
        }
        participants.sort_unstable();
        let new_participants: Vec<IpAddr> = participants
            .iter()
            .filter(|a| !alarm.reported.contains(a))
            .copied()
            .collect();
        if new_participants.is_empty() && !ended && alarm.latest.is_some() {
            return;
        }
        alarm.reported.extend(new_participants.iter().copied());
        // Once reported (and perhaps banned), a participant stays one.
        if alarm.reported.len() > participants.len() {
            let now_in: HashSet<IpAddr> = participants.iter().copied().collect();
            participants.extend(alarm.reported.iter().filter(|a| !now_in.contains(a)));
            participants.sort_unstable();
        }
        let mut users: Vec<(u64, u32)> = popularity
            .iter()
            .filter(|(_, n)| **n >= min_pop)
            .map(|(h, n)| (*h, *n))
            .collect();
        users.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let users: Vec<(Box<str>, u32)> = users
            .into_iter()
            .filter_map(|(h, n)| self.names.get(&h).map(|(name, _)| (name.clone(), n)))
            .take(LISTED_USERS)
            .collect();
        let share = if newcomers.is_empty() {
            0.0
        } else {
            participants.len() as f64 / newcomers.len() as f64
        };
        let confidence =
            ((alarm.peak / (2.0 * self.cfg.threshold)).min(1.0) * share).clamp(0.0, 1.0);
        let participant_count = participants.len();
        participants.truncate(self.cfg.max_listed);
        let detected = alarm.latest.as_ref().map_or(bin_end, |l| l.detected);
        let alert = CampaignAlert {
            id: format!("campaign-{}", start.as_secs()).into(),
            kind: CampaignKind::Distributed,
            ended,
            start,
            end,
            detected,
            participants,
            participant_count,
            new_participants,
            users,
            failures,
            confidence,
        };
        alarm.latest = Some(alert.clone());
        self.out.push(alert);
    }
}
