//! `bans [--jail J]`: the active bans of every jail (or one), oldest first — also those of
//! jails no longer configured (orphans, and `recovered` after a lost database): every ban
//! the kernel enforces is listed.

use portcullis_control::ErrorBody;
use portcullis_control::data::{BanEntry, BansData};

use super::{ban_entry, selected};
use crate::daemon::jail_set::JailSet;
use portcullis_core::Time;

/// The bans of `jail` (every jail when `None`), in force at `now`, by start then target.
pub fn bans(set: &JailSet, jail: Option<&str>, now: Time) -> Result<BansData, ErrorBody> {
    let orphans = || {
        set.orphans(now)
            .filter(|b| jail.is_none_or(|j| *b.jail == *j))
            .map(ban_entry)
    };
    let configured = match selected(set, jail) {
        Ok(idx) => idx,
        // A jail no longer configured still has the bans it left.
        Err(e) if orphans().next().is_none() => return Err(e),
        Err(_) => Vec::new(),
    };
    let mut bans: Vec<BanEntry> = configured
        .into_iter()
        .flat_map(|i| set.engine(i).active_bans())
        .map(|b| ban_entry(&b))
        .chain(orphans())
        .collect();
    // Keyed once per ban (formatting the address per comparison made a list of 5000 bans
    // cost the loop tens of milliseconds).
    bans.sort_by_cached_key(|b| (b.since, b.target.to_string()));
    Ok(BansData { bans })
}
