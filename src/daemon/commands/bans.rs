//! `bans [--jail J] [--net N] [--limit K]`: the active bans of every jail (or one), oldest
//! first — also those of jails no longer configured (orphans, and `recovered` after a lost
//! database): every ban the kernel enforces is listed. With a limit only the oldest K are
//! formatted and sent (a partial selection: a page of 1M bans costs one pass, not a sort),
//! with the number that matched.

use portcullis_control::ErrorBody;
use portcullis_control::data::{BanEntry, BansData};

use super::{ban_entry, selected};
use crate::daemon::jail_set::JailSet;
use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_core::event::Ban;

/// The bans of `jail` (every jail when `None`) within `net`, in force at `now`, by start
/// then target; the first `limit` of them.
pub fn bans(
    set: &JailSet,
    jail: Option<&str>,
    net: Option<IpNet>,
    limit: Option<u64>,
    now: Time,
) -> Result<BansData, ErrorBody> {
    let within = |b: &Ban| net.is_none_or(|n| n.contains(&b.target));
    let orphans = || {
        set.orphans(now)
            .filter(|b| jail.is_none_or(|j| *b.jail == *j))
            .filter(|b| within(b))
    };
    let configured = match selected(set, jail) {
        Ok(idx) => idx,
        // A jail no longer configured still has the bans it left.
        Err(e) if orphans().next().is_none() => return Err(e),
        Err(_) => Vec::new(),
    };
    // Keys first (no `Ban` built, nothing allocated per ban): at 1M bans building every
    // `Ban` to keep 100 took most of the answer's time.
    enum From<'a> {
        Engine(usize),
        Orphan(&'a Ban),
    }
    let mut keyed: Vec<((Time, IpNet), From<'_>)> = configured
        .into_iter()
        .flat_map(|i| {
            set.engine(i)
                .ban_keys()
                .filter(|(_, t)| net.is_none_or(|n| n.contains(t)))
                .map(move |k| (k, From::Engine(i)))
        })
        .chain(orphans().map(|b| ((b.since, b.target), From::Orphan(b))))
        .collect();
    let total = keyed.len() as u64;
    let keep = limit.map_or(keyed.len(), |l| usize::try_from(l).unwrap_or(usize::MAX));
    if keep < keyed.len() {
        if keep == 0 {
            keyed.clear();
        } else {
            keyed.select_nth_unstable_by_key(keep - 1, |(k, _)| *k);
            keyed.truncate(keep);
        }
    }
    keyed.sort_unstable_by_key(|(k, _)| *k);
    let bans: Vec<BanEntry> = keyed
        .iter()
        .filter_map(|((_, target), from)| match from {
            From::Engine(i) => set.engine(*i).active_ban(*target).map(|b| ban_entry(&b)),
            From::Orphan(b) => Some(ban_entry(b)),
        })
        .collect();
    Ok(BansData { bans, total })
}
