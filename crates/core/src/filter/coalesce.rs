//! Exact attempt counting: several lines that log one authentication attempt count once.
//!
//! sshd often logs one failed try on two or three lines from the same process:
//! `pam_unix(sshd:auth): authentication failure; … rhost=IP`, then (keyboard-interactive)
//! `error: PAM: Authentication failure for U from IP`, then `Failed password|
//! keyboard-interactive/pam for U from IP port P ssh2`. Each rule has a merge role:
//!
//! - **precursor** (pam_unix, `error: PAM:`): if an attempt is already *pending* for the
//!   key, the line counts 0; otherwise it counts 1 and marks the key pending.
//! - **closer** (`Failed <method>`): if the key is pending, the line counts 0 and clears
//!   it; otherwise it counts 1.
//! - **none**: counts 1.
//!
//! The key is (sshd pid, address), or the address alone when the line has no pid. So
//! pam_unix + `error: PAM` + `Failed keyboard-interactive/pam` = 1, pam_unix + `Failed
//! password` = 1, and a lone `Failed password` = 1. Lines that count 0 are still emitted as
//! events (kind unchanged, `count` 0) so their user names are kept. `message repeated N
//! times: [ X ]` lines bypass the coalescer and count N (rsyslog wrote the first X on its
//! own line, and N more are folded into this one).
//!
//! Memory is bounded: a pending mark expires after [`PENDING_TTL`] of log time (sshd
//! usually closes an attempt within its PAM delay, about 2–3 s, but a slow PAM stack such as
//! LDAP can take longer, and no attempt outlives sshd's default `LoginGraceTime` of 120 s,
//! so that is the bound), and at most [`MAX_PENDING`] marks
//! are kept, oldest dropped first. A dropped mark can only make a closer count 1 again
//! (over-count by one), never hide an attempt.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Time;

/// How long a precursor waits for its closer, in log time.
pub const PENDING_TTL: Duration = Duration::from_secs(120);
/// Most pending marks kept at once.
pub const MAX_PENDING: usize = 16 * 1024;

/// The merge role of a rule (see the module docs).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Merge {
    /// Counts on its own.
    #[default]
    None,
    /// Logged before the closing line of the same attempt.
    Precursor,
    /// Closes an attempt.
    Closer,
}

type Key = (Option<u32>, IpAddr);

/// Pending precursor marks, keyed by (pid, address).
///
/// The map uses std's `HashMap` (SipHash with a per-process random key) because the
/// addresses are chosen by attackers: a fixed hash would let them force collisions.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Key → log time the attempt was opened.
    pending: HashMap<Key, Time>,
    /// Insertion order, for expiry and the size cap; entries whose map time differs are
    /// stale and skipped.
    order: VecDeque<(Key, Time)>,
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new() -> Coalescer {
        Coalescer::default()
    }

    /// How many occurrences a line with this merge role counts for (0 or 1).
    pub fn count(&mut self, merge: Merge, pid: Option<u32>, addr: IpAddr, time: Time) -> u32 {
        if merge == Merge::None {
            return 1;
        }
        self.expire(time);
        let key = (pid, addr);
        let pending = match self.pending.get(&key) {
            Some(&t) => time.since(t) <= PENDING_TTL || time < t,
            None => false,
        };
        match (merge, pending) {
            (Merge::Precursor, true) => 0,
            (Merge::Precursor, false) => {
                self.pending.insert(key, time);
                self.order.push_back((key, time));
                self.trim();
                1
            }
            (Merge::Closer, true) => {
                self.pending.remove(&key);
                0
            }
            (Merge::Closer, false) => 1,
            (Merge::None, _) => 1,
        }
    }

    /// Pending marks held now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn expire(&mut self, now: Time) {
        while let Some(&(key, t)) = self.order.front() {
            if now.since(t) <= PENDING_TTL {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&key) == Some(&t) {
                self.pending.remove(&key);
            }
        }
    }

    fn trim(&mut self) {
        while self.pending.len() > MAX_PENDING || self.order.len() > 2 * MAX_PENDING {
            let Some((key, t)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&key) == Some(&t) {
                self.pending.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pam_then_failed_counts_once() {
        let mut c = Coalescer::new();
        let t = Time::from_secs(100);
        assert_eq!(c.count(Merge::Precursor, Some(7), a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::Closer, Some(7), a("192.0.2.1"), t), 0);
        // Next attempt on the same connection counts again.
        assert_eq!(c.count(Merge::Precursor, Some(7), a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::Closer, Some(7), a("192.0.2.1"), t), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn three_lines_of_keyboard_interactive_count_once() {
        let mut c = Coalescer::new();
        let t = Time::from_secs(100);
        let n = c.count(Merge::Precursor, Some(7), a("192.0.2.1"), t)
            + c.count(Merge::Precursor, Some(7), a("192.0.2.1"), t)
            + c.count(Merge::Closer, Some(7), a("192.0.2.1"), t);
        assert_eq!(n, 1);
    }

    #[test]
    fn lone_closer_and_other_keys_count() {
        let mut c = Coalescer::new();
        let t = Time::from_secs(100);
        assert_eq!(c.count(Merge::Closer, Some(7), a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::Precursor, Some(7), a("192.0.2.1"), t), 1);
        // Different pid or address: separate attempts.
        assert_eq!(c.count(Merge::Closer, Some(8), a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::Closer, Some(7), a("192.0.2.2"), t), 1);
        assert_eq!(c.count(Merge::Closer, None, a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::None, Some(7), a("192.0.2.1"), t), 1);
        assert_eq!(c.count(Merge::Closer, Some(7), a("192.0.2.1"), t), 0);
    }

    #[test]
    fn pending_marks_expire_in_log_time() {
        let mut c = Coalescer::new();
        assert_eq!(
            c.count(
                Merge::Precursor,
                Some(7),
                a("192.0.2.1"),
                Time::from_secs(100)
            ),
            1
        );
        assert_eq!(
            c.count(Merge::Closer, Some(7), a("192.0.2.1"), Time::from_secs(221)),
            1
        );
        assert!(c.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut c = Coalescer::new();
        let t = Time::from_secs(100);
        for i in 0..(MAX_PENDING as u32 + 1000) {
            c.count(Merge::Precursor, Some(i), a("192.0.2.1"), t);
        }
        assert!(c.len() <= MAX_PENDING);
        assert!(c.order.len() <= 2 * MAX_PENDING);
    }
}
