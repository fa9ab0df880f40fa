//! The slow signals of one address: the long (bucketed) window and the distinct user names.
//!
//! Both exist to catch what the short window cannot: an attacker who stays under `maxretry`
//! per `findtime` for a whole day, and one who cycles user names with failures that weigh
//! less than one attempt each. Both are bounded per address whatever the attacker sends.

use std::time::Duration;

use super::few::Few;
use crate::time::Time;

/// How many buckets the long window is cut into: its granularity is `long findtime / 48`
/// (30 minutes for a day).
pub(crate) const LONG_BUCKETS: u32 = 48;

/// Buckets one long window holds at most after a prune: the buckets from the cutoff's to the
/// clock's (the last one partial, the first one perhaps rounded up from a remainder).
#[cfg(test)]
pub(crate) const MAX_LONG_BUCKETS: usize = LONG_BUCKETS as usize + 2;

/// The width of one bucket of a long window of length `findtime` (at least 1 µs).
pub(crate) fn bucket_width(findtime: Duration) -> i64 {
    let us = i64::try_from(findtime.as_micros()).unwrap_or(i64::MAX);
    (us / i64::from(LONG_BUCKETS)).max(1)
}

/// The start of the bucket `t` falls in.
pub(crate) fn bucket_start(t: Time, width: i64) -> Time {
    let us = t.as_micros();
    Time::from_micros(us.saturating_sub(us.rem_euclid(width)))
}

/// The weight of one address's failures per bucket of the long window.
///
/// Exact at bucket granularity: a failure at `t` is kept under its bucket's start
/// `s = floor(t / w) × w`, and a bucket stays while `s ≥ bucket_start(clock − findtime)`,
/// so a failure counts for more than `findtime` and at most `findtime + w` after it
/// happened. Events far apart cost one bucket each; a burst costs one bucket in all. The sum
/// is recomputed when asked (at most [`LONG_BUCKETS`] + 2 buckets) rather than stored: 8
/// bytes less per address.
#[derive(Clone, Debug, Default)]
pub(crate) struct LongWindow {
    /// (bucket start, weight), sorted by start, starts distinct.
    buckets: Few<(Time, u32)>,
}

impl LongWindow {
    /// Adds `weight` at `time` into its bucket (`width` µs wide).
    pub(crate) fn insert(&mut self, time: Time, weight: u32, width: i64) {
        self.insert_at(bucket_start(time, width), weight);
    }

    /// Adds `weight` to the bucket starting at `start` (restore: the start as stored).
    pub(crate) fn insert_at(&mut self, start: Time, weight: u32) {
        let buckets = self.buckets.as_mut_slice();
        let at = match buckets.last() {
            Some(&(last, _)) if last >= start => buckets.partition_point(|b| b.0 < start),
            _ => buckets.len(),
        };
        match buckets.get_mut(at) {
            Some(b) if b.0 == start => b.1 = b.1.saturating_add(weight),
            _ => self.buckets.insert(at, (start, weight)),
        }
    }

    /// Drops the buckets that start before the bucket of `cutoff`.
    pub(crate) fn prune(&mut self, cutoff: Time, width: i64) {
        let first = bucket_start(cutoff, width);
        if self.buckets.as_slice().first().is_some_and(|b| b.0 < first) {
            self.buckets.retain(|b| b.0 >= first);
        }
    }

    /// Total weight of the stored buckets (exact only right after `prune`).
    pub(crate) fn sum(&self) -> u64 {
        self.buckets.as_slice().iter().map(|b| u64::from(b.1)).sum()
    }

    /// Total weight of the buckets that `prune(cutoff, width)` would keep.
    pub(crate) fn sum_since(&self, cutoff: Time, width: i64) -> u64 {
        let first = bucket_start(cutoff, width);
        let buckets = self.buckets.as_slice();
        let from = buckets.partition_point(|b| b.0 < first);
        buckets[from..].iter().map(|b| u64::from(b.1)).sum()
    }

    /// The buckets, oldest first: (start, weight).
    pub(crate) fn buckets(&self) -> &[(Time, u32)] {
        self.buckets.as_slice()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.len() == 0
    }
}

/// The distinct user names one address failed with recently, as keyed hashes (never the
/// attacker's text), at most `cap` of them: when full, a new name replaces the one seen
/// longest ago.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserNames {
    /// (hash of the name, latest failure time naming it), in no particular order.
    seen: Few<(u64, Time)>,
}

impl UserNames {
    /// Records a failure naming the user whose hash is `hash` at `time`; returns how many
    /// distinct names are held now.
    pub(crate) fn insert(&mut self, hash: u64, time: Time, cap: usize) -> usize {
        let seen = self.seen.as_mut_slice();
        if let Some(e) = seen.iter_mut().find(|e| e.0 == hash) {
            e.1 = e.1.max(time);
        } else if seen.len() < cap.max(1) {
            self.seen.push((hash, time));
        } else if let Some(oldest) = seen.iter_mut().min_by_key(|e| e.1) {
            *oldest = (hash, time);
        }
        self.seen.len()
    }

    /// Forgets the names last seen before `cutoff`.
    pub(crate) fn prune(&mut self, cutoff: Time) {
        self.seen.retain(|e| e.1 >= cutoff);
    }

    /// How many distinct names are held.
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.seen.len() == 0
    }
}

/// Both slow signals of one address.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlowSignals {
    pub(crate) long: LongWindow,
    pub(crate) users: UserNames,
}

impl SlowSignals {
    pub(crate) fn is_empty(&self) -> bool {
        self.long.is_empty() && self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(s: i64) -> Time {
        Time::from_secs(s)
    }

    #[test]
    fn one_bucket_and_one_name_live_in_place_and_cost_a_vec() {
        assert_eq!(
            std::mem::size_of::<SlowSignals>(),
            2 * std::mem::size_of::<Vec<(Time, u32)>>()
        );
        let mut s = SlowSignals::default();
        s.long.insert(t(10), 1000, 1_000_000);
        s.users.insert(7, t(10), 5);
        assert!(matches!(s.long.buckets, Few::One(_)));
        assert!(matches!(s.users.seen, Few::One(_)));
        s.long.insert(t(12), 1000, 1_000_000);
        s.long.insert(t(11), 500, 1_000_000);
        assert_eq!(
            s.long.buckets(),
            [(t(10), 1000), (t(11), 500), (t(12), 1000)]
        );
        s.long.prune(t(12), 1_000_000);
        assert!(matches!(s.long.buckets, Few::One((b, 1000)) if b == t(12)));
        assert_eq!(s.long.sum(), 1000);
    }

    #[test]
    fn a_burst_is_one_bucket_and_buckets_leave_whole() {
        let width = bucket_width(Duration::from_secs(4800)); // 100 s buckets
        assert_eq!(width, 100_000_000);
        let mut w = LongWindow::default();
        for s in 200..260 {
            w.insert(t(s), 1000, width);
        }
        w.insert(t(350), 500, width);
        w.insert(t(120), 1, width);
        assert_eq!(w.buckets(), [(t(100), 1), (t(200), 60_000), (t(300), 500)]);
        assert_eq!(w.sum(), 60_501);
        // The cutoff 199 s is in bucket 100: everything stays.
        w.prune(t(199), width);
        assert_eq!(w.sum(), 60_501);
        w.prune(t(200), width);
        assert_eq!(w.sum(), 60_500);
        assert_eq!(w.sum_since(t(399), width), 500);
        w.prune(t(400), width);
        assert!(w.is_empty());
    }

    #[test]
    fn user_names_are_capped_and_replace_the_oldest() {
        let mut u = UserNames::default();
        assert_eq!(u.insert(1, t(10), 3), 1);
        assert_eq!(u.insert(1, t(20), 3), 1);
        assert_eq!(u.insert(2, t(5), 3), 2);
        assert_eq!(u.insert(3, t(30), 3), 3);
        // Full: 4 replaces 2 (seen at 5 s, the oldest).
        assert_eq!(u.insert(4, t(40), 3), 3);
        u.prune(t(21));
        assert_eq!(u.len(), 2);
        u.prune(t(41));
        assert!(u.is_empty());
    }

    proptest! {
        /// For random failures and clock moves, the bucketed sum equals a naive
        /// recomputation at bucket granularity over every failure ever inserted, and the
        /// window never holds more than `MAX_LONG_BUCKETS` buckets after a prune.
        #[test]
        fn bucketed_sum_equals_naive_recomputation(
            findtime in 1u64..100_000,
            ops in proptest::collection::vec((0i64..5_000, -3_000i64..10, 0u32..3_000), 1..200),
        ) {
            let findtime = Duration::from_secs(findtime);
            let width = bucket_width(findtime);
            let mut w = LongWindow::default();
            let mut all: Vec<(Time, u32)> = Vec::new();
            let mut clock = t(0);
            for (step, lag, weight) in ops {
                clock = Time::from_micros(clock.as_micros() + step * 1_000_000);
                let cutoff = clock.saturating_sub(findtime);
                // As the engine does: a failure older than the window is not inserted, one
                // from the future counts at the clock.
                let time = Time::from_micros(clock.as_micros() + lag * 1_000_000).min(clock);
                if time >= cutoff {
                    w.insert(time, weight, width);
                    all.push((time, weight));
                }
                w.prune(cutoff, width);
                let first = bucket_start(cutoff, width);
                let naive: u64 = all
                    .iter()
                    .filter(|(tt, _)| bucket_start(*tt, width) >= first)
                    .map(|(_, wt)| u64::from(*wt))
                    .sum();
                prop_assert_eq!(w.sum(), naive);
                prop_assert_eq!(w.sum_since(cutoff, width), naive);
                prop_assert!(w.buckets().len() <= MAX_LONG_BUCKETS, "{}", w.buckets().len());
                prop_assert!(w.buckets().windows(2).all(|p| p[0].0 < p[1].0));
                // Exact at bucket granularity: every failure counted is at most
                // findtime + one bucket old, every one dropped is more than findtime old.
                for (tt, _) in &all {
                    let kept = bucket_start(*tt, width) >= first;
                    let age = clock.as_micros() - tt.as_micros();
                    let ft = i64::try_from(findtime.as_micros()).unwrap();
                    if kept {
                        prop_assert!(age <= ft + width);
                    } else {
                        prop_assert!(age > ft);
                    }
                }
            }
        }

        /// However many names an address tries, at most `cap` hashes are kept.
        #[test]
        fn user_names_stay_bounded(
            cap in 1usize..10,
            names in proptest::collection::vec((0u64..50, 0i64..100), 0..300),
        ) {
            let mut u = UserNames::default();
            for (h, s) in names {
                let n = u.insert(h, t(s), cap);
                prop_assert!(n <= cap);
                prop_assert_eq!(n, u.len());
            }
        }
    }
}
