//! The exact sliding window of one address.

use super::few::Few;
use crate::time::Time;

/// The failures of one address at one event time (equal times are merged).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The event time (never later than the engine clock when it was inserted).
    pub(crate) time: Time,
    /// Weight in thousandths of an attempt (`weight × count`, saturating).
    pub(crate) weight: u32,
    /// Whole failed authentications (kind `Attempt`), for the breach signal.
    pub(crate) attempts: u32,
}

/// The weighted failures of one address whose event time is still inside `findtime`.
///
/// Entries are sorted by event time, so pruning drops a prefix; `sum` is the total weight of
/// what is stored, so the score is O(1) after a prune. Compact on purpose: the engine keeps
/// one per attacking address, and most addresses have one entry in their window, which
/// lives in place (no heap block, no second cache miss per event): 32 bytes in all.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    entries: Few<Entry>,
    sum: u64,
}

impl Window {
    /// Adds `weight` and `attempts` at `time`, keeping entries sorted. Events usually come in
    /// time order (one push); a late one is inserted at its place.
    pub(crate) fn insert(&mut self, time: Time, weight: u32, attempts: u32) {
        let entries = self.entries.as_slice();
        let at = match entries.last() {
            Some(last) if last.time > time => entries.partition_point(|e| e.time < time),
            _ => entries.len(),
        };
        // An entry with the same time is at `at` (late insert) or just before it (append).
        let same = if entries.get(at).is_some_and(|e| e.time == time) {
            Some(at)
        } else if at > 0 && entries[at - 1].time == time {
            Some(at - 1)
        } else {
            None
        };
        match same {
            Some(i) => {
                let e = &mut self.entries.as_mut_slice()[i];
                e.attempts = e.attempts.saturating_add(attempts);
                let merged = e.weight.saturating_add(weight);
                self.sum += u64::from(merged - e.weight);
                e.weight = merged;
            }
            None => {
                self.entries.insert(
                    at,
                    Entry {
                        time,
                        weight,
                        attempts,
                    },
                );
                self.sum += u64::from(weight);
            }
        }
    }

    /// Drops the entries older than `cutoff` (an entry at exactly `cutoff` stays: the window
    /// `[t - findtime, t]` is closed).
    pub(crate) fn prune(&mut self, cutoff: Time) {
        let entries = self.entries.as_slice();
        let old = entries.partition_point(|e| e.time < cutoff);
        if old == 0 {
            return;
        }
        for e in &entries[..old] {
            self.sum -= u64::from(e.weight);
        }
        // Dropping the last entry gives a heap block back: an idle address costs only its
        // map slot, and the sweep removes that too.
        self.entries.remove_front(old);
    }

    /// Total weight of the stored entries (exact only right after `prune`).
    pub(crate) fn sum(&self) -> u64 {
        self.sum
    }

    /// Total weight of the entries at or after `cutoff`, without pruning.
    pub(crate) fn sum_since(&self, cutoff: Time) -> u64 {
        let entries = self.entries.as_slice();
        let from = entries.partition_point(|e| e.time < cutoff);
        entries[from..].iter().map(|e| u64::from(e.weight)).sum()
    }

    /// Failed authentications with an event time in `[from, to]`.
    pub(crate) fn attempts_between(&self, from: Time, to: Time) -> u32 {
        let entries = self.entries.as_slice();
        let start = entries.partition_point(|e| e.time < from);
        entries[start..]
            .iter()
            .take_while(|e| e.time <= to)
            .fold(0u32, |n, e| n.saturating_add(e.attempts))
    }

    /// Whether nothing is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.as_slice().is_empty()
    }

    /// The stored entries, oldest first.
    pub(crate) fn entries(&self) -> &[Entry] {
        self.entries.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time::from_secs(s)
    }

    #[test]
    fn keeps_order_merges_equal_times_and_prunes_a_prefix() {
        let mut w = Window::default();
        w.insert(t(10), 1000, 1);
        w.insert(t(30), 500, 0);
        w.insert(t(20), 1000, 1);
        w.insert(t(20), 200, 0);
        w.insert(t(30), 100, 1);
        let times: Vec<_> = w.entries().iter().map(|e| e.time).collect();
        assert_eq!(times, [t(10), t(20), t(30)]);
        assert_eq!(w.sum(), 2800);
        assert_eq!(w.attempts_between(t(15), t(30)), 2);
        assert_eq!(w.sum_since(t(20)), 1800);
        w.prune(t(20));
        assert_eq!(w.sum(), 1800);
        assert_eq!(w.entries().len(), 2);
        w.prune(t(31));
        assert!(w.is_empty());
        assert_eq!(w.sum(), 0);
    }

    #[test]
    fn one_entry_lives_in_place_and_spills_in_order() {
        let mut w = Window::default();
        w.insert(t(20), 1, 0);
        assert!(matches!(w.entries, Few::One(_)));
        w.insert(t(10), 2, 0);
        assert!(matches!(w.entries, Few::Many(_)));
        w.insert(t(15), 4, 0);
        let got: Vec<_> = w.entries().iter().map(|e| (e.time, e.weight)).collect();
        assert_eq!(got, [(t(10), 2), (t(15), 4), (t(20), 1)]);
        w.prune(t(16));
        assert_eq!(w.sum(), 1);
        assert!(matches!(w.entries, Few::One(_)));
        w.prune(t(21));
        assert!(w.is_empty());
        assert!(matches!(w.entries, Few::Zero));
        w.insert(t(30), 8, 1);
        w.insert(t(40), 8, 1);
        w.prune(t(35));
        assert_eq!(
            w.entries(),
            [Entry {
                time: t(40),
                weight: 8,
                attempts: 1
            }]
        );
        assert_eq!(w.sum(), 8);
    }

    #[test]
    fn stays_small() {
        // 1M tracked addresses must fit in 256 MiB with everything else (issue 13).
        assert!(
            std::mem::size_of::<Window>() <= 32,
            "{}",
            std::mem::size_of::<Window>()
        );
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let mut w = Window::default();
        w.insert(t(1), u32::MAX, u32::MAX);
        w.insert(t(1), 5, 5);
        assert_eq!(w.sum(), u64::from(u32::MAX));
        assert_eq!(w.attempts_between(t(0), t(2)), u32::MAX);
    }
}
