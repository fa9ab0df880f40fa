//! Exact attempt counting: several lines that log one authentication attempt count once,
//! and a connection that tried a user name counts at least one attempt.
//!
//! sshd often logs one failed try on two or three lines from the same process:
//! `pam_unix(sshd:auth): authentication failure; … rhost=IP`, then (keyboard-interactive)
//! `error: PAM: Authentication failure for U from IP`, then `Failed password|
//! keyboard-interactive/pam for U from IP port P ssh2`. And a connection that only tries a
//! name (a user-name scanner on a key-only server) logs `Invalid user U from IP port P` and
//! `Connection closed by invalid user U IP port P [preauth]`, or for an existing user just
//! `Connection closed by authenticating user U IP port P [preauth]`. Each rule has a merge
//! role, applied per connection, keyed by (sshd pid, address):
//!
//! - **precursor** (pam_unix, `error: PAM:`): if an attempt is already *pending* on the
//!   connection, the line counts 0; otherwise it opens one (pending) and counts 1 — or 0
//!   when a user line already counted this connection's first attempt (*credit*).
//! - **closer** (`Failed <method>`): if an attempt is pending, 0 and it closes; else, with
//!   credit, 0 and the credit is used; else 1.
//! - **user** (`Invalid user`, `User U … not allowed`, `Failed none`, pre-auth closes naming
//!   a user): 1 if the connection has counted nothing yet (and it leaves the credit), else 0.
//!   So `Invalid user` + `Failed password for invalid user` = 1 and + a second `Failed
//!   password` = 2, a name tried on a key-only server = 1, and the closing line after three
//!   failed passwords = 0: one attempt per connection at least, never one per line.
//! - **tentative** (`pam_unix(sshd:auth): authentication failure`, a valid user's `Failed
//!   publickey|hostbased`): a try that may still end in a login on the same connection —
//!   a pam_unix failure before an LDAP/SSSD module lets the user in, a key offered before
//!   the one that is accepted. It counts 0 and is *held*: a success on the connection
//!   retracts it; any other line of the connection settles it by the rules above (a later
//!   `Failed password` or `error: PAM:` is the attempt, a pre-auth close naming the user
//!   counts the connection's one attempt). A held try whose connection logs nothing more
//!   is released as one attempt when its state expires ([`PENDING_TTL`]) or at the end of
//!   the input ([`Coalescer::finish`]). No real failure waits: `Failed password`, `error:
//!   PAM:`, an invalid user's key count on their own line as before; only the lines that
//!   cannot yet tell a failure from a login's first step do.
//! - **none**: counts 1.
//!
//! Lines without a pid are keyed by the address alone. OpenSSH 10 runs pre-auth in
//! `sshd-auth`, a process of its own: should it log a connection's user line under another
//! pid than the connection's close, the connection counts twice (over by one, never under). Lines that count 0 are still emitted
//! as events (kind unchanged, `count` 0) so their user names are kept. `message repeated N
//! times: [ X ]` lines bypass the coalescer and count N (rsyslog wrote the first X on its
//! own line, and N more are folded into this one).
//!
//! Memory is bounded: a connection's state expires [`PENDING_TTL`] of log time after its
//! last line (no attempt outlives sshd's default `LoginGraceTime` of 120 s; a slow PAM stack
//! such as LDAP can take long, but not longer), and at most [`MAX_PENDING`] connections are
//! kept, oldest dropped first. A dropped state can only make a line count 1 again
//! (over-count by one), never hide an attempt.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::event::Event;
use crate::time::Time;

/// How long a connection's state is kept after its last line, in log time.
pub const PENDING_TTL: Duration = Duration::from_secs(120);
/// Most connections kept at once.
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
    /// Names a user before authentication: the connection's attempt if it makes no other.
    User,
    /// A try a success on the same connection retracts: held until the connection's
    /// outcome.
    Tentative,
}

type Key = (Option<u32>, IpAddr);

/// What is known of one connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Conn {
    /// Log time of its last line.
    seen: Time,
    /// An attempt is open: its closer counts 0.
    pending: bool,
    /// A user line counted the connection's first attempt: the next real one counts 0.
    credit: bool,
    /// Something counted on this connection: user lines count 0.
    counted: bool,
    /// A tentative try waits for the connection's outcome (its event is in `held`).
    held: bool,
}

/// Per-connection merge state, keyed by (pid, address).
///
/// The map uses std's `HashMap` (SipHash with a per-process random key) because the
/// addresses are chosen by attackers: a fixed hash would let them force collisions.
#[derive(Debug, Default)]
pub struct Coalescer {
    conns: HashMap<Key, Conn>,
    /// Touch order, for expiry and the size cap; entries whose map time differs are stale
    /// and skipped.
    order: VecDeque<(Key, Time)>,
    /// The last tentative event of each connection with `held` set.
    held: HashMap<Key, Event>,
    /// Held tries whose connection expired before its outcome: one attempt each, to be
    /// taken by [`Coalescer::take_released`].
    released: Vec<Event>,
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
        let mut c = match self.conns.get(&key).copied() {
            Some(c) if time.since(c.seen) <= PENDING_TTL || time < c.seen => c,
            Some(c) => {
                // Stale (not swept yet): a new connection on a reused pid.
                self.settle_held(key, c);
                Conn::default()
            }
            None => Conn::default(),
        };
        if merge == Merge::Tentative {
            c.held = true;
            c.seen = c.seen.max(time);
            self.conns.insert(key, c);
            self.order.push_back((key, c.seen));
            self.trim();
            return 0;
        }
        if std::mem::take(&mut c.held) {
            // The connection went on: this line settles the held try (below).
            self.held.remove(&key);
        }
        let n = match merge {
            Merge::Precursor if c.pending => 0,
            Merge::Precursor => {
                c.pending = true;
                u32::from(!std::mem::take(&mut c.credit))
            }
            Merge::Closer if c.pending => {
                c.pending = false;
                0
            }
            Merge::Closer => u32::from(!std::mem::take(&mut c.credit)),
            Merge::User if c.counted => 0,
            Merge::User => {
                c.credit = true;
                1
            }
            Merge::None | Merge::Tentative => 1,
        };
        c.counted = true;
        c.seen = c.seen.max(time);
        self.conns.insert(key, c);
        self.order.push_back((key, c.seen));
        self.trim();
        n
    }

    /// Keeps `event` (a tentative try just counted 0 by [`Coalescer::count`]) until its
    /// connection's outcome.
    pub fn hold(&mut self, event: &Event) {
        let key = (event.pid, event.addr);
        if self.conns.get(&key).is_some_and(|c| c.held) {
            self.held.insert(key, event.clone());
        }
    }

    /// A success on the connection: its held try was a step of the login, not a failure.
    pub fn retract(&mut self, pid: Option<u32>, addr: IpAddr) {
        let key = (pid, addr);
        if let Some(c) = self.conns.get_mut(&key)
            && std::mem::take(&mut c.held)
        {
            self.held.remove(&key);
        }
    }

    /// Moves the held tries released since the last call (their connection expired before
    /// an outcome) to `out`, one attempt each, oldest first.
    pub fn take_released(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.released);
    }

    /// End of the input: every held try is released as one attempt (no line can settle it
    /// any more).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let mut held: Vec<(Key, Conn)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.held)
            .map(|(k, c)| (*k, *c))
            .collect();
        held.sort_by_key(|(_, c)| c.seen);
        for (key, c) in held {
            self.settle_held(key, c);
            if let Some(c) = self.conns.get_mut(&key) {
                c.held = false;
            }
        }
        self.take_released(out);
    }

    /// A connection leaves with `c` as its state: a held try of a connection that counted
    /// nothing is its one attempt.
    fn settle_held(&mut self, key: Key, c: Conn) {
        let Some(mut event) = self.held.remove(&key) else {
            return;
        };
        if c.held && !c.counted {
            event.count = 1;
            self.released.push(event);
        }
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether an attempt is open on any connection.
    pub fn any_pending(&self) -> bool {
        self.conns.values().any(|c| c.pending)
    }

    fn expire(&mut self, now: Time) {
        while let Some(&(key, t)) = self.order.front() {
            if now.since(t) <= PENDING_TTL {
                break;
            }
            self.order.pop_front();
            self.leave(key, t);
        }
    }

    /// Drops connection `key` if `t` is its last touch.
    fn leave(&mut self, key: Key, t: Time) {
        if self.conns.get(&key).map(|c| c.seen) == Some(t)
            && let Some(c) = self.conns.remove(&key)
        {
            self.settle_held(key, c);
        }
    }

    fn trim(&mut self) {
        while self.conns.len() > MAX_PENDING || self.order.len() > 2 * MAX_PENDING {
            let Some((key, t)) = self.order.pop_front() else {
                break;
            };
            self.leave(key, t);
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
        assert!(!c.any_pending());
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
        assert!(!c.any_pending());
    }

    #[test]
    fn a_connection_that_tried_a_name_counts_one_attempt() {
        let t = Time::from_secs(100);
        let ip = a("192.0.2.1");
        // Key-only server: a user-name scanner's connection.
        let mut c = Coalescer::new();
        let n = c.count(Merge::User, Some(7), ip, t) + c.count(Merge::User, Some(7), ip, t);
        assert_eq!(n, 1, "Invalid user + Connection closed by invalid user");
        // Password server: Invalid user + Failed password for invalid user = 1, a second
        // password = 2, the closing line 0.
        let mut c = Coalescer::new();
        let n: u32 = [Merge::User, Merge::Closer, Merge::Closer, Merge::User]
            .into_iter()
            .map(|m| c.count(m, Some(8), ip, t))
            .sum();
        assert_eq!(n, 2);
        // With PAM lines: Invalid user, pam_unix, Failed password = 1.
        let mut c = Coalescer::new();
        let n: u32 = [Merge::User, Merge::Precursor, Merge::Closer]
            .into_iter()
            .map(|m| c.count(m, Some(9), ip, t))
            .sum();
        assert_eq!(n, 1);
        // An existing user's failures, then the close naming them: only the failures.
        let mut c = Coalescer::new();
        let n: u32 = [Merge::Closer, Merge::Closer, Merge::Closer, Merge::User]
            .into_iter()
            .map(|m| c.count(m, Some(10), ip, t))
            .sum();
        assert_eq!(n, 3);
        // Each connection counts on its own.
        let mut c = Coalescer::new();
        let n: u32 = (0..5)
            .map(|pid| c.count(Merge::User, Some(pid), ip, t))
            .sum();
        assert_eq!(n, 5);
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
