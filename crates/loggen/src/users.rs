//! User names the generated traffic uses.

/// How sshd treats a user name, which decides the wording of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Account {
    /// Exists and may log in: `Failed password for root`, pam_unix lines carry `user=`.
    Valid,
    /// Does not exist: `Invalid user X`, `Failed password for invalid user X`.
    Unknown,
    /// Exists but AllowGroups refuses it: `User X from IP not allowed because …`, then sshd
    /// words its failures as `invalid user X`.
    NotAllowed,
}

/// Every user name the generator writes; indexes into this table are what jobs carry.
pub(crate) const USERS: [(&str, Account); 40] = [
    ("root", Account::Valid),
    ("ubuntu", Account::Valid),
    ("test", Account::Valid),
    ("oracle", Account::Valid),
    ("user", Account::Valid),
    ("mysql", Account::Valid),
    ("git", Account::NotAllowed),
    ("postgres", Account::NotAllowed),
    ("ftp", Account::NotAllowed),
    ("admin", Account::Unknown),
    ("support", Account::Unknown),
    ("guest", Account::Unknown),
    ("pi", Account::Unknown),
    ("hadoop", Account::Unknown),
    ("tomcat", Account::Unknown),
    ("nagios", Account::Unknown),
    ("ansible", Account::Unknown),
    ("user1", Account::Unknown),
    ("test1", Account::Unknown),
    ("ubnt", Account::Unknown),
    ("teamspeak", Account::Unknown),
    ("minecraft", Account::Unknown),
    ("steam", Account::Unknown),
    ("sol", Account::Unknown),
    ("elastic", Account::Unknown),
    ("jenkins", Account::Unknown),
    ("dev", Account::Unknown),
    ("administrator", Account::Unknown),
    ("123456", Account::Unknown),
    ("Admin", Account::Unknown),
    ("centos", Account::Unknown),
    ("debian", Account::Unknown),
    ("alice", Account::Valid),
    ("bob", Account::Valid),
    ("carol", Account::Valid),
    ("deploy", Account::Valid),
    // Attacker-chosen names that embed an address (see `addr::INJECTED`): sshd logs them
    // verbatim, so a filter that is not anchored on the text after the name bans the wrong host.
    ("root from 192.0.2.251 port 22", Account::Unknown),
    ("x from 192.0.2.252", Account::Unknown),
    ("admin 2001:db8:1::dead port 22", Account::Unknown),
    ("rhost=192.0.2.251", Account::Unknown),
];

/// Index of `root`, the favourite target.
pub(crate) const ROOT: u16 = 0;
/// Names attackers draw from at random (everything before the legit users).
pub(crate) const ATTACK_POOL: u16 = 32;
/// First of the injection names.
pub(crate) const INJECTION_FIRST: u16 = 36;
/// Valid accounts with weak passwords that breaches get into.
pub(crate) const BREACHABLE: [u16; 3] = [1, 2, 3];

/// Index of a legit user's name in [`USERS`].
pub(crate) fn index_of(name: &str) -> u16 {
    USERS.iter().position(|(n, _)| *n == name).unwrap_or(0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indices_match_their_meaning() {
        assert_eq!(USERS[ROOT as usize].0, "root");
        assert_eq!(USERS[ATTACK_POOL as usize].0, "alice");
        assert!(USERS[INJECTION_FIRST as usize].0.contains(' '));
        assert!(USERS[INJECTION_FIRST as usize - 1].0 == "deploy");
        for b in BREACHABLE {
            assert_eq!(USERS[b as usize].1, Account::Valid);
        }
        assert_eq!(index_of("bob"), 33);
    }
}
