//! [`AddrTally`]: what the offline commands (`scan`, `investigate`) count per address.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use portcullis_core::{EventKind, Time};

/// How many distinct user names are kept per address; the rest are only counted.
pub const USERS_PER_ADDR: usize = 16;
/// How many further distinct names are counted (not kept) per address.
pub const MAX_MORE_USERS: usize = 4096;

/// The counts of one address: attempts, probes, successes, when it was first and last seen,
/// and the user names it tried (attacker-chosen text, so bounded: [`USERS_PER_ADDR`] kept,
/// up to [`MAX_MORE_USERS`] more counted). Kept small: 100k addresses must fit in 64 MiB.
#[derive(Debug, Default)]
pub struct AddrTally {
    /// Failed authentication attempts.
    pub attempts: u64,
    /// Pre-authentication probes.
    pub probes: u64,
    /// Successful logins.
    pub successes: u64,
    /// The earliest event time.
    pub first_seen: Option<Time>,
    /// The latest event time.
    pub last_seen: Option<Time>,
    /// The first distinct user names tried.
    users: Vec<Box<str>>,
    /// Keyed hashes of further distinct names (keyed: the names are attacker-chosen), so the
    /// count stays exact for real attacks and bounded for hostile ones. Boxed and allocated
    /// only past the kept names: an empty `HashSet` alone is 48 bytes.
    #[allow(clippy::box_collection)]
    more_users: Option<Box<HashSet<u64>>>,
}

impl AddrTally {
    /// `count` occurrences of an event of `kind` at `time` (a success counts at least one).
    pub fn record(&mut self, kind: EventKind, count: u32, time: Time) {
        let n = u64::from(count);
        match kind {
            EventKind::Attempt => self.attempts += n,
            EventKind::Probe => self.probes += n,
            EventKind::Success => self.successes += n.max(1),
            EventKind::Info => {}
        }
        self.first_seen = Some(self.first_seen.map_or(time, |t| t.min(time)));
        self.last_seen = Some(self.last_seen.map_or(time, |t| t.max(time)));
    }

    /// The address tried user name `user`; `hasher` keys the hashes of names beyond the kept
    /// ones (one per run, shared by all addresses).
    pub fn tried_user(&mut self, user: &str, hasher: &RandomState) {
        if self.users.iter().any(|u| &**u == user) {
            return;
        }
        if self.users.len() < USERS_PER_ADDR {
            self.users.push(Box::from(user));
        } else {
            let set = self.more_users.get_or_insert_with(Default::default);
            if set.len() < MAX_MORE_USERS {
                set.insert(hasher.hash_one(user));
            }
        }
    }

    /// The user names kept, in the order first tried.
    pub fn users(&self) -> &[Box<str>] {
        &self.users
    }

    /// How many further distinct names were tried (up to [`MAX_MORE_USERS`]).
    pub fn more_users(&self) -> usize {
        self.more_users.as_ref().map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_then_counted_then_capped() {
        let hasher = RandomState::new();
        let mut t = AddrTally::default();
        for i in 0..(USERS_PER_ADDR + MAX_MORE_USERS + 100) {
            t.tried_user(&format!("u{i}"), &hasher);
            t.tried_user("u0", &hasher);
        }
        assert_eq!(t.users().len(), USERS_PER_ADDR);
        assert_eq!(&*t.users()[0], "u0");
        assert_eq!(t.more_users(), MAX_MORE_USERS);
    }

    #[test]
    fn counts_and_times() {
        let mut t = AddrTally::default();
        t.record(EventKind::Attempt, 3, Time::from_secs(20));
        t.record(EventKind::Probe, 1, Time::from_secs(10));
        t.record(EventKind::Success, 0, Time::from_secs(30));
        t.record(EventKind::Info, 0, Time::from_secs(5));
        assert_eq!((t.attempts, t.probes, t.successes), (3, 1, 1));
        assert_eq!(t.first_seen, Some(Time::from_secs(5)));
        assert_eq!(t.last_seen, Some(Time::from_secs(30)));
    }
}
