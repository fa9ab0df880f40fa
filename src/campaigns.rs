//! Site-wide detection for the offline commands (`scan`, `investigate`): the jails' events
//! in log time through core's `SiteWatch`, each campaign's latest report kept.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use portcullis_config::CampaignSettings;
use portcullis_core::campaign::{CampaignAlert, SiteWatch};
use portcullis_core::{Event, Time};
use serde_json::Value;

use crate::text::escape_terminal;

/// The detectors over an offline run.
pub struct OfflineSite {
    watch: SiteWatch,
    /// Per jail index: whether its events feed the detectors.
    feeds: Vec<bool>,
    latest: BTreeMap<Box<str>, CampaignAlert>,
    last: Option<Time>,
}

impl OfflineSite {
    /// The detectors of the configuration's `[campaign]` (the embedded default's with
    /// Fail2Ban files), fed by those of `jails` it names.
    pub fn load(config: Option<&Path>, fail2ban: Option<&Path>, jails: &[String]) -> Result<Self> {
        let settings = match fail2ban {
            Some(_) => crate::config::load_offline(None)?.campaign,
            None => crate::config::load_offline(config)?.campaign,
        };
        Ok(OfflineSite::new(&settings, jails))
    }

    /// The detectors of `settings`, fed by those of `jails` it names.
    pub fn new(settings: &CampaignSettings, jails: &[String]) -> Self {
        // Only each campaign's last report is shown: fewer intermediate ones.
        let targeted = settings.targeted.clone().map(|mut t| {
            t.report_every = t.report_every.max(std::time::Duration::from_secs(3600));
            t
        });
        let watch = if settings.enabled {
            SiteWatch::new(Some(settings.campaign.clone()), targeted)
        } else {
            SiteWatch::new(None, None)
        };
        OfflineSite {
            watch,
            feeds: jails
                .iter()
                .map(|j| settings.jails.iter().any(|s| s == j))
                .collect(),
            latest: BTreeMap::new(),
            last: None,
        }
    }

    /// One event jail `jail`'s engine took, at its time.
    pub fn event(&mut self, jail: usize, ev: &Event) {
        if !self.feeds.get(jail).copied().unwrap_or(false) {
            return;
        }
        let now = self.last.map_or(ev.time, |l| l.max(ev.time));
        self.last = Some(now);
        self.watch.handle_event(now, ev);
        self.take();
    }

    fn take(&mut self) {
        while let Some(a) = self.watch.poll_alert() {
            self.latest.insert(a.id.clone(), a);
        }
    }

    /// End of input: every campaign's latest report, by start (those still active at the
    /// end of the logs have `ended: false`).
    pub fn finish(mut self) -> Vec<CampaignAlert> {
        if let Some(t) = self.last {
            self.watch.handle_timeout(t);
            self.watch.finish(t);
        }
        self.take();
        for a in self.watch.active() {
            self.latest.insert(a.id.clone(), a);
        }
        let mut v: Vec<CampaignAlert> = self.latest.into_values().collect();
        v.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        v
    }
}

/// The reports as JSON (the store's form).
pub fn json(list: &[CampaignAlert]) -> Value {
    Value::Array(list.iter().map(portcullis_store::campaign_json).collect())
}

/// One line per report, for the text outputs; user names escaped.
pub fn human_lines(list: &[CampaignAlert]) -> Vec<String> {
    list.iter()
        .map(|a| {
            let users: Vec<String> = a
                .users
                .iter()
                .take(5)
                .map(|(u, n)| format!("{} ({n})", escape_terminal(u)))
                .collect();
            format!(
                "{} {} {} .. {}{}: {} participants, {} failures, users {}, confidence {:.2}",
                a.kind.as_str(),
                a.id,
                a.start.short_utc(),
                a.end.short_utc(),
                if a.ended { "" } else { " (still active)" },
                a.participant_count,
                a.failures,
                if users.is_empty() {
                    "-".to_owned()
                } else {
                    users.join(", ")
                },
                a.confidence
            )
        })
        .collect()
}
