//! `bans [--jail J]`: the active bans of every configured jail (or one), oldest first.

use portcullis_control::ErrorBody;
use portcullis_control::data::{BanEntry, BansData};

use super::{ban_entry, selected};
use crate::daemon::jail_set::JailSet;

/// The bans of `jail` (every configured jail when `None`), by start then target.
pub fn bans(set: &JailSet, jail: Option<&str>) -> Result<BansData, ErrorBody> {
    let mut bans: Vec<BanEntry> = selected(set, jail)?
        .into_iter()
        .flat_map(|i| set.engine(i).active_bans())
        .map(|b| ban_entry(&b))
        .collect();
    bans.sort_by_key(|b| (b.since, b.target.to_string()));
    Ok(BansData { bans })
}
