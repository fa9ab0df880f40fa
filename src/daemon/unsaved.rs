//! What the store has not made durable yet, while its writes fail (disk full, I/O error,
//! read-only file system, a locked database).
//!
//! The rule that keeps a `kill -9` during the outage from losing anything: source positions
//! and windows are only ever written in the same transaction as every decision before them.
//! So while writes fail, decisions queue here in order (they are in force in memory and in
//! the kernel meanwhile), the readers' positions stay unwritten (a restart reads those lines
//! again and decides again), and each retry writes the whole queue with the newest positions
//! and windows. Retries back off from [`FIRST_RETRY`] to [`LAST_RETRY`]; a write that was due
//! anyway (a new decision, the positions' tick) waits for the retry time, so a dead disk costs
//! one attempt per interval, not one per burst. Pure: the caller passes `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::Decision;
use portcullis_core::jail::WindowState;

/// The first retry after a failed write.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between retries.
pub const LAST_RETRY: Duration = Duration::from_secs(10);

/// The queue of writes the store refused, and when to try again.
#[derive(Debug, Default)]
pub struct Unsaved {
    /// Decisions not yet durable, oldest first.
    decisions: Vec<Decision>,
    /// Window changes not yet durable (the newest state of each window).
    windows: Vec<(Arc<str>, WindowState)>,
    failure: Option<Failure>,
}

/// The store is failing.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The last error, with its causes (SQLite's text).
    pub error: String,
    /// When the first write of this outage failed.
    pub since: Instant,
    /// Failed writes in this outage.
    pub attempts: u32,
    /// When the next write may be tried.
    pub retry_at: Instant,
}

impl Unsaved {
    /// Queue a burst's decisions and window changes behind what is already waiting.
    pub fn push(&mut self, decisions: Vec<Decision>, windows: Vec<(Arc<str>, WindowState)>) {
        self.decisions.extend(decisions);
        if self.windows.is_empty() {
            // One poll names each (jail, address) once: nothing to supersede. (At 1M
            // changed windows the map below would cost ~100 MB and a second.)
            self.windows = windows;
        } else if !windows.is_empty() {
            let mut all = std::mem::take(&mut self.windows);
            all.extend(windows);
            self.windows = latest_windows(all);
        }
    }

    /// Whether a write may be tried at `now`: always when the store is healthy, else once
    /// the backoff has passed.
    pub fn may_write(&self, now: Instant) -> bool {
        self.failure.as_ref().is_none_or(|f| now >= f.retry_at)
    }

    /// Whether anything waits to be written.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.windows.is_empty()
    }

    /// What the next write carries: every queued decision, then the windows.
    pub fn pending(&self) -> (&[Decision], &[(Arc<str>, WindowState)]) {
        (&self.decisions, &self.windows)
    }

    /// The write succeeded: the queue is durable. Returns the outage that ended, if any.
    pub fn written(&mut self) -> Option<Failure> {
        // Freed, not cleared: a burst of 1M changed windows would otherwise keep ~100 MB of
        // capacity for good.
        self.decisions = Vec::new();
        self.windows = Vec::new();
        self.failure.take()
    }

    /// The write failed with `error` at `now`: keep the queue and back off. Returns whether
    /// this failure starts an outage (the store was healthy before).
    pub fn failed(&mut self, error: String, now: Instant) -> bool {
        match &mut self.failure {
            Some(f) => {
                f.attempts += 1;
                f.error = error;
                f.retry_at = now + backoff(f.attempts);
                false
            }
            None => {
                self.failure = Some(Failure {
                    error,
                    since: now,
                    attempts: 1,
                    retry_at: now + backoff(1),
                });
                true
            }
        }
    }

    /// The outage in progress, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Decisions waiting to be durable.
    pub fn decision_count(&self) -> usize {
        self.decisions.len()
    }
}

/// The wait after the `attempts`-th failed write in a row: doubling from [`FIRST_RETRY`],
/// at most [`LAST_RETRY`].
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY
        .saturating_mul(1u32 << doublings)
        .min(LAST_RETRY)
}

/// The last state of each (jail, address) of `windows`, in their order: what a retry must
/// write (an earlier state of the same window is superseded).
fn latest_windows(windows: Vec<(Arc<str>, WindowState)>) -> Vec<(Arc<str>, WindowState)> {
    let mut last: HashMap<(Arc<str>, IpAddr), usize> = HashMap::new();
    for (i, (jail, w)) in windows.iter().enumerate() {
        last.insert((jail.clone(), w.addr), i);
    }
    windows
        .into_iter()
        .enumerate()
        .filter(|(i, (jail, w))| last.get(&(jail.clone(), w.addr)) == Some(i))
        .map(|(_, x)| x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::Time;
    use portcullis_core::event::{Ban, BanReason};

    fn ban(addr: &str) -> Decision {
        Decision::Ban(Ban {
            target: addr.parse::<IpAddr>().unwrap().into(),
            jail: "sshd".into(),
            since: Time::from_secs(100),
            until: None,
            ban_no: 1,
            reason: BanReason::Restored,
        })
    }

    fn window(addr: &str, until: i64) -> (Arc<str>, WindowState) {
        let w = WindowState {
            addr: addr.parse().unwrap(),
            entries: Vec::new(),
            slow: Vec::new(),
            until: Time::from_secs(until),
        };
        ("sshd".into(), w)
    }

    #[test]
    fn a_healthy_store_writes_at_once_and_keeps_nothing() {
        let now = Instant::now();
        let mut u = Unsaved::default();
        assert!(u.may_write(now));
        u.push(vec![ban("192.0.2.1")], vec![]);
        assert_eq!(u.pending().0.len(), 1);
        assert!(u.written().is_none());
        assert!(u.is_empty());
    }

    #[test]
    fn failed_writes_keep_every_decision_in_order_until_one_succeeds() {
        let t0 = Instant::now();
        let mut u = Unsaved::default();
        u.push(vec![ban("192.0.2.1")], vec![window("192.0.2.1", 1)]);
        assert!(u.failed("database or disk is full".into(), t0));
        assert!(!u.may_write(t0), "no retry before the backoff");
        u.push(
            vec![ban("192.0.2.2"), ban("192.0.2.3")],
            vec![window("192.0.2.1", 2)],
        );
        let (d, w) = u.pending();
        let order: Vec<String> = d
            .iter()
            .map(|d| match d {
                Decision::Ban(b) => b.target.to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"]);
        assert_eq!(w.len(), 1, "one window, its newest state");
        assert_eq!(w[0].1.until, Time::from_secs(2));
        assert!(!u.failed("still full".into(), t0 + FIRST_RETRY));
        assert_eq!(u.failure().map(|f| f.attempts), Some(2));
        assert_eq!(u.decision_count(), 3);
        let ended = u.written().expect("an outage ended");
        assert_eq!(ended.since, t0);
        assert_eq!(ended.error, "still full");
        assert!(u.is_empty() && u.failure().is_none());
    }

    #[test]
    fn retries_back_off_to_a_bounded_interval() {
        let t0 = Instant::now();
        let mut u = Unsaved::default();
        let mut at = t0;
        let mut waits = Vec::new();
        for _ in 0..12 {
            u.failed("I/O error".into(), at);
            let next = u.failure().unwrap().retry_at;
            assert!(!u.may_write(next - Duration::from_millis(1)));
            assert!(u.may_write(next));
            waits.push(next - at);
            at = next;
        }
        assert_eq!(waits[0], FIRST_RETRY);
        assert_eq!(waits[1], FIRST_RETRY * 2);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), LAST_RETRY);
    }
}
