//! `bans [--jail J] [--net N] [--limit K]`: the active bans of every jail (or one), oldest
//! first — also those of jails no longer configured (orphans, and `recovered` after a lost
//! database): every ban the kernel enforces is listed. With a limit only the oldest K are
//! formatted and sent (a bounded heap: a page of 1M bans costs one pass, not a sort),
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
    // Keys only (no `Ban` built, nothing allocated per ban), and with a limit only the
    // `limit` smallest kept, in a bounded max-heap: a page of 1M bans is one pass over the
    // keys, O(n log limit), without a million-entry vector to select from.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Source {
        Engine(usize),
        Orphan(usize),
    }
    let orphans: Vec<&Ban> = orphans().collect();
    let keys = configured
        .into_iter()
        .flat_map(|i| {
            set.engine(i)
                .ban_keys()
                .filter(|(_, t)| net.is_none_or(|n| n.contains(t)))
                .map(move |k| (k, Source::Engine(i)))
        })
        .chain(
            orphans
                .iter()
                .enumerate()
                .map(|(j, b)| ((b.since, b.target), Source::Orphan(j))),
        );
    let keep = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut total = 0u64;
    let mut page: Vec<((Time, IpNet), Source)> = if keep == usize::MAX {
        let all: Vec<_> = keys.collect();
        total = all.len() as u64;
        all
    } else {
        let mut heap = std::collections::BinaryHeap::with_capacity(keep.min(1 << 16));
        for k in keys {
            total += 1;
            if heap.len() < keep {
                heap.push(k);
            } else if heap.peek().is_some_and(|top| k < *top) {
                heap.pop();
                heap.push(k);
            }
        }
        heap.into_vec()
    };
    page.sort_unstable();
    let bans: Vec<BanEntry> = page
        .iter()
        .filter_map(|&((_, target), from)| match from {
            Source::Engine(i) => set.engine(i).active_ban(target).map(|b| ban_entry(&b)),
            Source::Orphan(j) => orphans.get(j).map(|b| ban_entry(b)),
        })
        .collect();
    Ok(BansData {
        bans,
        total,
        ..BansData::default()
    })
}
