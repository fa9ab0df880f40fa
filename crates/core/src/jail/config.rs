//! The settings of one jail, already validated.

use std::time::Duration;

use ipnet::IpNet;

use crate::event::Weight;

/// The settings of one jail. Built by `portcullis-config` from TOML (or a Fail2Ban jail);
/// the engine trusts them (validation happens when the config is read).
#[derive(Clone, Debug, PartialEq)]
pub struct JailConfig {
    /// The jail's name, as shown in `status` and stored with its bans.
    pub name: String,
    /// Weighted attempts within `findtime` that trigger a ban (Fail2Ban's `maxretry`).
    pub maxretry: Weight,
    /// Length of the sliding window.
    pub findtime: Duration,
    /// Duration of an offender's first ban.
    pub bantime: Duration,
    /// Ban n lasts `bantime × factor^(n-1)`; 1.0 disables escalation.
    pub factor: f64,
    /// Upper bound on a temporary ban's duration.
    pub maxtime: Duration,
    /// The n-th ban within `history` is permanent; `None` never bans permanently.
    pub permanent_after: Option<u32>,
    /// How long past bans count toward escalation (offender history decays after this).
    pub history: Duration,
    /// Addresses and networks never banned automatically (and only with `force` by hand).
    pub allowlist: Vec<IpNet>,
    /// Ban the whole IPv6 /`v6_prefix` once `v6_net_threshold` of its addresses are banned;
    /// `None` disables aggregation.
    pub v6_net_threshold: Option<u32>,
    /// Prefix length of the IPv6 network that aggregation bans (64 by default).
    pub v6_prefix: u8,
    /// A success after at least this many failed attempts from the same address raises a
    /// breach alert; `None` disables the alert.
    pub breach_after: Option<u32>,
    /// After a clean success of user U (not preceded by `breach_after` failures), the
    /// address's failures that name U are forgiven for this long, within
    /// `protect_budget`; `None` disables the protection. See the engine's rules.
    pub protect_after_success: Option<Duration>,
    /// How many times `maxretry` of forgiven failures one protection absorbs before the
    /// address is banned anyway (at least 1).
    pub protect_budget: u32,
    /// Raise an alert for every successful root login.
    pub alert_root_login: bool,
    /// The long window for slow brute force: `(slow_maxretry, slow_findtime)`. Weighted
    /// attempts within `slow_findtime` (counted per bucket of `slow_findtime / 48`) that
    /// reaching bans the address; `None` disables it. Meant to be longer and larger than
    /// `(maxretry, findtime)`.
    pub long_window: Option<(Weight, Duration)>,
    /// Distinct user names one address failed with within `findtime` that ban it on
    /// reaching this many (user enumeration with failures that weigh less than one
    /// attempt); `None` disables it. Names a login protection covers do not count.
    pub max_users: Option<u32>,
}

impl JailConfig {
    /// A jail named `name` with the defaults an sshd jail ships with: 5 attempts in 10 min,
    /// 10 min first ban doubling up to 1 week, permanent at the 3rd ban within 7 days,
    /// loopback allowlisted, /64 banned after 4 of its addresses, breach alert after 3
    /// failures, 1 day protection after a clean login (forgiving at most 3 × maxretry of the
    /// logged-in users' failures), 20 attempts in 1 day for slow brute force, 5 distinct
    /// user names within findtime for enumeration.
    pub fn new(name: impl Into<String>) -> JailConfig {
        const MIN: u64 = 60;
        const DAY: u64 = 24 * 60 * MIN;
        JailConfig {
            name: name.into(),
            maxretry: Weight(5 * Weight::ONE.0),
            findtime: Duration::from_secs(10 * MIN),
            bantime: Duration::from_secs(10 * MIN),
            factor: 2.0,
            maxtime: Duration::from_secs(7 * DAY),
            permanent_after: Some(3),
            history: Duration::from_secs(7 * DAY),
            allowlist: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            v6_net_threshold: Some(4),
            v6_prefix: 64,
            breach_after: Some(3),
            protect_after_success: Some(Duration::from_secs(DAY)),
            protect_budget: 3,
            alert_root_login: true,
            long_window: Some((Weight(20 * Weight::ONE.0), Duration::from_secs(DAY))),
            max_users: Some(5),
        }
    }
}
