//! The values that flow between filters, jails and actions.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::time::Time;

/// How much one occurrence of an event counts toward `maxretry`, in thousandths of an attempt.
///
/// Integers keep the sliding window exact: `0.2 + 0.2 + 0.6` is exactly one attempt.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(pub u32);

impl Weight {
    /// One full authentication attempt.
    pub const ONE: Weight = Weight(1000);
    /// Counts for nothing (informational lines).
    pub const ZERO: Weight = Weight(0);

    /// A weight from a decimal number of attempts (`0.2`, `1`, `2.5`), rounded to 1/1000.
    /// Negative and non-finite inputs give `None`.
    pub fn from_attempts(x: f64) -> Option<Weight> {
        if !x.is_finite() || !(0.0..=4_000_000.0).contains(&x) {
            return None;
        }
        Some(Weight((x * 1000.0).round() as u32))
    }
    /// The weight as a decimal number of attempts.
    pub fn as_attempts(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
    /// `self * n`, saturating.
    pub fn times(self, n: u32) -> Weight {
        Weight(self.0.saturating_mul(n))
    }
}

impl fmt::Debug for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_attempts())
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_attempts())
    }
}

/// What a matched line says about its address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// One failed authentication attempt (a password, key or keyboard-interactive try).
    Attempt,
    /// Pre-authentication noise: a probe, scan or aborted connection. Counted apart from
    /// attempts and usually weighted as a fraction of one.
    Probe,
    /// A successful login.
    Success,
    /// Matched, but says nothing for or against the address (weight zero); kept for
    /// investigation (for example the user name of an attempt already counted).
    Info,
}

impl EventKind {
    /// The lowercase name used in config files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Attempt => "attempt",
            EventKind::Probe => "probe",
            EventKind::Success => "success",
            EventKind::Info => "info",
        }
    }
}

/// One timestamped observation about one address, produced by a filter from a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it happened: the log line's own time, or the time it was read if it had none.
    pub time: Time,
    /// The remote address, normalised by [`normalize_addr`].
    pub addr: IpAddr,
    /// Attempt, probe, success or info.
    pub kind: EventKind,
    /// Weight of one occurrence (see [`Weight`]).
    pub weight: Weight,
    /// How many occurrences this event stands for: `message repeated N times: [ … ]` gives N.
    /// Zero when the line repeats an attempt another line already counted.
    pub count: u32,
    /// The user name the line names, if any. Attacker-chosen text: display it escaped.
    pub user: Option<Box<str>>,
    /// Whether the line says the named account exists on the host (sshd's `for U` /
    /// `authenticating user U`: `Some(true)`; `invalid user U`: `Some(false)`); `None` when
    /// the rule does not tell (its filter's `account` key).
    pub user_exists: Option<bool>,
    /// The authentication method of an attempt or success (`password`, `publickey`, …).
    pub method: Option<Box<str>>,
    /// The logging process id, when known; used to merge lines of one attempt.
    pub pid: Option<u32>,
    /// Index of the filter rule that matched, for `--explain` and hit counts.
    pub rule: u16,
}

impl Event {
    /// The total weight this event adds to its address's window: `weight × count`.
    pub fn total_weight(&self) -> Weight {
        self.weight.times(self.count)
    }
}

/// Normalise an address as it is counted and banned: IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
/// becomes the IPv4 address, so one host is one key.
pub fn normalize_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parse an address as sshd and friends print it: IPv4, IPv6, IPv6 with a `%zone` suffix
/// (dropped), or IPv4-mapped IPv6 (turned into IPv4). Brackets are accepted. `None` for
/// anything else, including host names.
pub fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let text = match text.find('%') {
        Some(i) if text.contains(':') => &text[..i],
        _ => text,
    };
    if let Some(v4) = plain_ipv4(text.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if let Some(v6) = plain_ipv6(text.as_bytes()) {
        return Some(normalize_addr(IpAddr::V6(v6)));
    }
    text.parse::<IpAddr>().ok().map(normalize_addr)
}

/// Fast path of [`parse_addr`] for the common case: four dot-separated decimal octets of
/// 1-3 digits, no leading zero, each at most 255. std's parser accepts every such text with
/// the same value, and anything else is left to it (`None` here means "not sure").
fn plain_ipv4(text: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut v = 0u16;
        for &d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(d - b'0');
        }
        *o = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(std::net::Ipv4Addr::from(octets))
}

/// Fast path of [`parse_addr`] for IPv6 written as hex groups only (1-4 hex digits each,
/// eight of them, or at most seven around one `::`), no embedded IPv4 and no zone. std's
/// parser accepts every such text with the same value (its own rules: `::` stands for at
/// least one group); anything else is left to it (`None` here means "not sure").
fn plain_ipv6(text: &[u8]) -> Option<std::net::Ipv6Addr> {
    if text.len() < 2 || text.len() > 39 {
        return None;
    }
    let mut groups = [0u16; 8];
    let mut n = 0usize;
    // Index in `groups` where the `::` is, once seen.
    let mut gap: Option<usize> = None;
    let mut i = 0usize;
    if text.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if i == text.len() {
            return Some(std::net::Ipv6Addr::UNSPECIFIED);
        }
    }
    loop {
        let start = i;
        let mut v = 0u16;
        while let Some(d) = text.get(i).and_then(|&c| char::from(c).to_digit(16)) {
            if i - start == 4 {
                return None;
            }
            v = (v << 4) | u16::try_from(d).ok()?;
            i += 1;
        }
        if i == start || n == 8 {
            return None;
        }
        groups[n] = v;
        n += 1;
        if i == text.len() {
            break;
        }
        if text[i] != b':' {
            return None;
        }
        i += 1;
        if text.get(i) == Some(&b':') {
            if gap.is_some() {
                return None;
            }
            gap = Some(n);
            i += 1;
            if i == text.len() {
                break;
            }
        } else if i == text.len() {
            return None;
        }
    }
    match gap {
        None if n == 8 => Some(std::net::Ipv6Addr::from(groups)),
        Some(at) if n <= 7 => {
            let mut out = [0u16; 8];
            out[..at].copy_from_slice(&groups[..at]);
            let tail = n - at;
            out[8 - tail..].copy_from_slice(&groups[at..n]);
            Some(std::net::Ipv6Addr::from(out))
        }
        _ => None,
    }
}

/// Why a ban happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanReason {
    /// The weighted attempts in the window reached `maxretry`.
    Threshold {
        /// Weighted attempts in the window when the ban was decided.
        score: Weight,
    },
    /// The weighted attempts in the long window (slow brute force) reached
    /// `slow_maxretry`.
    SlowThreshold {
        /// Weighted attempts in the long window when the ban was decided.
        score: Weight,
    },
    /// The address failed with `max_users` distinct user names within `findtime`.
    UserNames {
        /// Distinct user names counted when the ban was decided.
        users: u32,
    },
    /// Enough addresses of one IPv6 network were banned that the network itself is.
    Aggregate {
        /// How many member addresses were banned.
        members: u32,
    },
    /// Enough addresses of one network (or autonomous system) were banned, across the
    /// jails, that the daemon's network aggregation banned the network (or a part of it
    /// that holds no allowlisted address).
    Network {
        /// How many member addresses were banned.
        members: u32,
    },
    /// A participant of a distributed campaign (site-wide detection, `crate::campaign`).
    Campaign {
        /// Participants of the campaign when it was decided.
        participants: u32,
    },
    /// A participant of a user-targeted attack (many addresses on one existing account).
    Targeted {
        /// Participants of the attack when it was decided.
        participants: u32,
    },
    /// An administrator asked for it.
    Manual,
    /// Restored from the store at start.
    Restored,
    /// Other fleet nodes reported it (`portcullis run` with `[fleet]`): `origin` names them,
    /// comma-separated, first reporter first, or `admin` for an admin's decision.
    Fleet {
        /// The reporting nodes.
        origin: Box<str>,
    },
}

impl BanReason {
    /// The reason's short name as `bans` and the log show it: `threshold`, `slow`
    /// (the long window), `users` (distinct user names), `aggregate`, `network`, `campaign`,
    /// `targeted` (site-wide detection), `manual`, `restored`, `fleet`.
    pub fn kind(&self) -> &'static str {
        match self {
            BanReason::Threshold { .. } => "threshold",
            BanReason::SlowThreshold { .. } => "slow",
            BanReason::UserNames { .. } => "users",
            BanReason::Aggregate { .. } => "aggregate",
            BanReason::Network { .. } => "network",
            BanReason::Campaign { .. } => "campaign",
            BanReason::Targeted { .. } => "targeted",
            BanReason::Manual => "manual",
            BanReason::Restored => "restored",
            BanReason::Fleet { .. } => "fleet",
        }
    }
}

/// One ban: what, since when, until when, and which ban of this offender it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The banned address (as a /32 or /128) or network.
    pub target: IpNet,
    /// Name of the jail that decided it.
    pub jail: Box<str>,
    /// When the ban started.
    pub since: Time,
    /// When it ends; `None` means permanent (until an administrator unbans).
    pub until: Option<Time>,
    /// 1 for the first ban of this offender within the history period, 2 for the next, …
    pub ban_no: u32,
    /// Why.
    pub reason: BanReason,
}

impl Ban {
    /// Whether the ban has no end.
    pub fn is_permanent(&self) -> bool {
        self.until.is_none()
    }
}

/// Why a ban ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnbanReason {
    /// Its time ran out.
    Expired,
    /// An administrator lifted it.
    Manual,
    /// A wider network ban replaced it.
    Superseded,
}

/// Something the admin should know about now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    /// A successful login from an address that failed many times just before: a likely
    /// brute-force success.
    Breach {
        /// The address that got in.
        addr: IpAddr,
        /// The user it logged in as, if the line named one.
        user: Option<Box<str>>,
        /// Failed attempts (whole) from that address before the success.
        failures: u32,
        /// When the success happened.
        time: Time,
    },
    /// A successful login as root.
    RootLogin {
        /// The address root logged in from.
        addr: IpAddr,
        /// When.
        time: Time,
    },
}

/// What a jail engine wants done. The caller applies decisions to firewall and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Put this ban in the firewall and the store.
    Ban(Ban),
    /// Remove this address or network.
    Unban {
        /// What to remove.
        target: IpNet,
        /// Name of the jail that held it.
        jail: Box<str>,
        /// Why.
        reason: UnbanReason,
    },
    /// Tell someone.
    Alert(Alert),
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_ipv4_agrees_with_std() {
        let mut cases: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.04",
            "1.2.3.0",
            "1.2.3.255",
            "1.2.3.2555",
            "+1.2.3.4",
            "1.2.3.4 ",
            "a.b.c.d",
            "",
            "1.2.3.-4",
            "192.0.2.1",
            "000.1.1.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for a in [
            "0", "9", "10", "99", "100", "199", "249", "250", "255", "256", "299", "999", "00",
            "007",
        ] {
            cases.push(format!("{a}.1.{a}.{a}"));
        }
        for c in &cases {
            let std = c.parse::<std::net::Ipv4Addr>().ok();
            let fast = plain_ipv4(c.as_bytes());
            assert!(
                fast.is_none() || fast == std,
                "{c:?}: fast {fast:?}, std {std:?}"
            );
            if std.is_some() && !c.is_empty() {
                assert_eq!(fast, std, "{c:?}: a plain address takes the fast path");
            }
        }
    }

    #[test]
    fn plain_ipv6_agrees_with_std() {
        for c in [
            "::",
            "::1",
            "1::",
            "1::2",
            "2001:db8::1",
            "2001:db8:d93d:2471:fa8c:1611:7f85:97e9",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "1:2:3:4::5:6:7:8",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            ":::",
            "1:::2",
            "1::2::3",
            ":1::",
            "1:",
            ":1",
            "12345::",
            "0000:0000::0001",
            "ABCD::ef",
            "1:2:3:4:5:6:7",
            "::ffff:c000:201",
            "::ffff:1.2.3.4",
            "g::1",
            "1::2%eth0",
            "",
        ] {
            let std = c.parse::<std::net::Ipv6Addr>().ok();
            let fast = plain_ipv6(c.as_bytes());
            assert!(
                fast.is_none() || fast == std,
                "{c:?}: fast {fast:?}, std {std:?}"
            );
            if std.is_some() && !c.contains('.') {
                assert_eq!(fast, std, "{c:?}: hex-only addresses take the fast path");
            }
        }
        assert_eq!(
            parse_addr("::ffff:c000:201"),
            Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))),
            "mapped addresses are still normalised"
        );
    }

    proptest::proptest! {
        #[test]
        fn plain_ipv6_never_disagrees(s in "[0-9a-fA-F:]{0,41}") {
            let std = s.parse::<std::net::Ipv6Addr>().ok();
            let fast = plain_ipv6(s.as_bytes());
            proptest::prop_assert!(fast.is_none() || fast == std);
            proptest::prop_assert_eq!(fast.is_some(), std.is_some());
        }

        #[test]
        fn plain_ipv6_reads_every_written_address(g in proptest::array::uniform8(proptest::prelude::any::<u16>()), zeros in 0usize..8, at in 0usize..8) {
            let mut g = g;
            for x in g.iter_mut().skip(at).take(zeros) {
                *x = 0;
            }
            let addr = std::net::Ipv6Addr::from(g);
            let full = g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":");
            for text in [addr.to_string(), full] {
                if text.contains('.') {
                    continue;
                }
                proptest::prop_assert_eq!(plain_ipv6(text.as_bytes()), Some(addr), "{}", text);
            }
        }

        #[test]
        fn plain_ipv4_never_disagrees(s in "[0-9.]{0,17}") {
            let std = s.parse::<std::net::Ipv4Addr>().ok();
            let fast = plain_ipv4(s.as_bytes());
            proptest::prop_assert!(fast.is_none() || fast == std);
            proptest::prop_assert_eq!(fast.is_some(), std.is_some());
        }
    }

    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(parse_addr("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_addr("::ffff:192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_addr("fe80::1%eth0"), "fe80::1".parse().ok());
        assert_eq!(parse_addr("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_addr("example.com"), None);
        assert_eq!(parse_addr("1.2.3"), None);
    }

    #[test]
    fn weights_are_exact() {
        let w = Weight::from_attempts(0.2).unwrap();
        assert_eq!(w.times(5), Weight::ONE);
        assert_eq!(Weight::from_attempts(-1.0), None);
        assert_eq!(Weight::from_attempts(f64::NAN), None);
    }
}
