//! Site-wide detection in the daemon's policy step: the jails' events feed core's
//! [`SiteWatch`]; its reports are queued for the driver (log, store, hooks, `status`) and,
//! with the ban action on, their new participants are banned through the first feeding
//! jail's engine ([`JailEngine::ban_participant`](portcullis_core::jail::JailEngine::ban_participant)):
//! never an allowlisted address, never one a clean login protects.

use std::time::Duration;

use portcullis_config::CampaignSettings;
use portcullis_core::campaign::{CampaignAlert, CampaignKind, SiteWatch};
use portcullis_core::event::BanReason;
use portcullis_core::jail::ParticipantBan;
use portcullis_core::{Event, Time};

use super::JailSet;

/// The detectors and what they reported.
pub(super) struct Site {
    settings: CampaignSettings,
    watch: SiteWatch,
    /// Reports not yet taken by the driver.
    reports: Vec<CampaignAlert>,
    /// Participants banned, and those the action left alone (allowlisted, protected).
    pub banned: u64,
    pub spared: u64,
}

impl Site {
    fn new(settings: CampaignSettings) -> Site {
        let watch = if settings.enabled {
            SiteWatch::new(Some(settings.campaign.clone()), settings.targeted.clone())
        } else {
            SiteWatch::new(None, None)
        };
        Site {
            settings,
            watch,
            reports: Vec::new(),
            banned: 0,
            spared: 0,
        }
    }
}

/// What `status` shows of the site-wide detection.
#[derive(Clone, Debug, Default)]
pub struct SiteStatus {
    /// Whether any detector runs.
    pub enabled: bool,
    /// Campaigns in progress (their latest report).
    pub active: Vec<CampaignAlert>,
    /// The distributed detector's model: mean and deviation of a bin's count, CUSUM,
    /// still learning.
    pub baseline: Option<(f64, f64, f64, bool)>,
    /// Addresses the detector tracks.
    pub tracked: usize,
    /// Participants banned by the action, and left alone by it (allowlist, protection).
    pub banned: u64,
    /// See `banned`.
    pub spared: u64,
}

impl JailSet {
    /// Take (or retake, after a reload) the `[campaign]` settings. The detectors keep what
    /// they learned when their settings did not change.
    pub fn configure_site(&mut self, settings: &CampaignSettings) {
        if self.site.as_ref().is_some_and(|s| s.settings == *settings) {
            return;
        }
        let mut site = Site::new(settings.clone());
        if let Some(old) = self.site.take() {
            site.banned = old.banned;
            site.spared = old.spared;
        }
        self.site = Some(site);
    }

    /// Feed jail `idx`'s events to the detectors, if that jail feeds them.
    pub(super) fn site_events(&mut self, idx: usize, now: Time, events: &[Event]) {
        let Some(site) = &mut self.site else { return };
        if !site.watch.is_enabled() {
            return;
        }
        let name = self.jails[idx].engine.config().name.as_str();
        if !site.settings.jails.iter().any(|j| j == name) {
            return;
        }
        for ev in events {
            site.watch.handle_event(now, ev);
        }
        self.site_act(now);
    }

    /// Close what the detectors have due at `now`.
    pub(super) fn site_timeout(&mut self, now: Time) {
        let Some(site) = &mut self.site else { return };
        site.watch.handle_timeout(now);
        self.site_act(now);
    }

    /// When the detectors have something due.
    pub(super) fn site_poll_timeout(&self) -> Option<Time> {
        self.site.as_ref().and_then(|s| s.watch.poll_timeout())
    }

    /// The reports made since the last call, oldest first (for the log, the store, hooks).
    pub fn poll_campaigns(&mut self) -> Vec<CampaignAlert> {
        self.site
            .as_mut()
            .map(|s| std::mem::take(&mut s.reports))
            .unwrap_or_default()
    }

    /// What `status` shows.
    pub fn site_status(&self) -> SiteStatus {
        let Some(site) = &self.site else {
            return SiteStatus::default();
        };
        SiteStatus {
            enabled: site.watch.is_enabled(),
            active: site.watch.active(),
            baseline: site.watch.campaign().map(|c| {
                let s = c.state();
                (s.mean, s.var.max(s.mean).max(1.0).sqrt(), s.sum, s.learning)
            }),
            tracked: site.watch.campaign().map_or(0, |c| c.tracked_addresses()),
            banned: site.banned,
            spared: site.spared,
        }
    }

    /// Take the watch's reports; with the ban action on, ban their new participants.
    fn site_act(&mut self, now: Time) {
        let Some(site) = &mut self.site else { return };
        let mut alerts = Vec::new();
        while let Some(a) = site.watch.poll_alert() {
            alerts.push(a);
        }
        if alerts.is_empty() {
            return;
        }
        let jail = site
            .settings
            .jails
            .iter()
            .find_map(|n| self.jails.iter().position(|j| j.engine.config().name == *n));
        for a in &alerts {
            let ban = match a.kind {
                CampaignKind::Distributed => site.settings.ban,
                CampaignKind::UserTargeted => site.settings.targeted_ban,
            };
            let (Some(duration), Some(idx)) = (ban, jail) else {
                continue;
            };
            let n = u32::try_from(a.participant_count).unwrap_or(u32::MAX);
            let reason = match a.kind {
                CampaignKind::Distributed => BanReason::Campaign { participants: n },
                CampaignKind::UserTargeted => BanReason::Targeted { participants: n },
            };
            for &addr in &a.new_participants {
                match self.jails[idx].engine.ban_participant(
                    now,
                    addr,
                    duration.min(Duration::from_secs(u64::from(u32::MAX))),
                    reason.clone(),
                ) {
                    ParticipantBan::Banned => site.banned += 1,
                    ParticipantBan::AlreadyBanned => {}
                    ParticipantBan::Allowlisted | ParticipantBan::Protected => site.spared += 1,
                }
            }
        }
        site.reports.extend(alerts);
        self.drain();
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use portcullis_config::Config;
    use portcullis_core::jail::JailConfig;
    use portcullis_core::{Decision, Event, EventKind, Time, Weight};

    use super::super::{JailInit, JailSet};

    const T0: i64 = 1_800_000_000;

    fn ev(t: i64, addr: IpAddr, kind: EventKind, user: &str, exists: bool) -> Event {
        Event {
            time: Time::from_secs(T0 + t),
            addr,
            kind,
            weight: Weight::ONE,
            count: 1,
            user: Some(user.into()),
            user_exists: Some(exists),
            method: None,
            pid: None,
            rule: 0,
        }
    }

    /// A user-targeted attack with the ban action on: every participant is banned through
    /// the jail for the configured time, except the allowlisted one and the one a clean
    /// login protects; the report comes out for the driver.
    #[test]
    fn participants_are_banned_except_allowlisted_and_protected() {
        let cfg = Config::from_str_named(
            "[campaign]\ntargeted_ban = \"2h\"\ntargeted_min_addresses = 5\n",
            "c.toml",
        )
        .expect("config");
        let mut jc = JailConfig::new("sshd");
        jc.allowlist.push("192.0.2.7/32".parse().expect("net"));
        let mut set = JailSet::new(
            vec![JailInit {
                config: jc,
                history: Vec::new(),
                windows: Vec::new(),
            }],
            Vec::new(),
            Time::from_secs(T0),
        );
        set.configure_site(&cfg.campaign);
        let protected: IpAddr = "192.0.2.8".parse().expect("addr");
        let login = ev(0, protected, EventKind::Success, "bob", true);
        set.handle_events(0, login.time, &[login]);
        let mut t = 10;
        for i in 1..=9u8 {
            t += 60;
            let addr = IpAddr::from([192, 0, 2, i]);
            let e = ev(t, addr, EventKind::Attempt, "alice", true);
            set.handle_events(0, e.time, &[e]);
        }
        let now = Time::from_secs(T0 + t);
        let reports = set.poll_campaigns();
        assert!(!reports.is_empty(), "reported");
        assert!(reports.iter().all(|r| &*r.users[0].0 == "alice"));
        let commit = set.poll_commit(now).expect("bans");
        let banned: Vec<String> = commit
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Ban(b) => {
                    assert_eq!(b.reason.kind(), "targeted");
                    assert_eq!(
                        b.until.map(|u| u.since(b.since)),
                        Some(Duration::from_secs(7200))
                    );
                    Some(b.target.addr().to_string())
                }
                _ => None,
            })
            .collect();
        assert!(
            !banned.contains(&"192.0.2.7".to_string()),
            "allowlisted: {banned:?}"
        );
        assert!(
            !banned.contains(&"192.0.2.8".to_string()),
            "protected: {banned:?}"
        );
        assert!(banned.contains(&"192.0.2.1".to_string()), "{banned:?}");
        assert_eq!(banned.len(), 7, "{banned:?}");
        let st = set.site_status();
        assert_eq!(
            st.spared, 2,
            "the allowlisted and the protected one were spared"
        );
        assert_eq!(st.banned as usize, banned.len());
        assert!(!st.active.is_empty());
    }
}
