//! The `campaigns` part of `status`: the site-wide detectors' state, the campaigns in
//! progress (from the policy step) and those that ended lately (from the store).

use portcullis_control::data::CampaignStatus;

use crate::daemon::Daemon;
use crate::text::chain;

/// Ended campaigns `status` lists.
const RECENT: usize = 10;

pub(super) fn status(d: &Daemon) -> CampaignStatus {
    let s = d.jails.site_status();
    let r = d.clock.read();
    let active = s
        .active
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.start = r.wall_of(a.start);
            a.end = r.wall_of(a.end);
            a.detected = r.wall_of(a.detected);
            portcullis_store::campaign_json(&a)
        })
        .collect();
    let recent = match d.store.recent_campaigns(RECENT + s.active.len()) {
        Ok(rows) => rows
            .into_iter()
            .filter(|c| c.ended)
            .take(RECENT)
            .map(|c| c.json)
            .collect(),
        Err(e) => {
            tracing::warn!("status: cannot read campaigns: {}", chain(&e));
            Vec::new()
        }
    };
    let bin = d.config.campaign.campaign.bin;
    CampaignStatus {
        enabled: s.enabled,
        baseline: match s.baseline {
            None => String::new(),
            Some((_, _, _, true)) => "learning".to_owned(),
            Some((mean, sd, sum, false)) => format!(
                "{mean:.1} ± {sd:.1} failures per {}, CUSUM {sum:.1} / {}",
                humantime_secs(bin.as_secs()),
                d.config.campaign.campaign.threshold
            ),
        },
        tracked_addresses: s.tracked as u64,
        banned: s.banned,
        spared: s.spared,
        active,
        recent,
    }
}

fn humantime_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
