//! What one file says, before merging: every key optional and spanned, every single value
//! checked while it is deserialized (so its error carries the value's span).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::Weight;
use portcullis_core::time::parse_duration;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use crate::model::{Backend, LogFormat, LogLevel, NotifyEvent, Verdict};

/// Where a merged value came from: the file's index in the layer list and its byte span.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub layer: usize,
    pub span: Range<usize>,
}

/// A merged value and where it was set.
#[derive(Clone, Debug)]
pub(crate) struct Located<T> {
    pub value: T,
    pub at: Loc,
}

impl<T> Located<T> {
    fn new(spanned: Spanned<T>, layer: usize) -> Located<T> {
        let span = spanned.span();
        Located {
            value: spanned.into_inner(),
            at: Loc { layer, span },
        }
    }
}

/// Defines a per-file struct (`$raw`, all keys optional, unknown keys rejected) and its merged
/// counterpart (`$merged`), where a later file's key replaces an earlier one's.
macro_rules! layered {
    ($raw:ident, $merged:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $raw {
            $(pub $field: Option<Spanned<$ty>>,)*
        }

        #[derive(Clone, Debug, Default)]
        pub(crate) struct $merged {
            $(pub $field: Option<Located<$ty>>,)*
        }

        impl $merged {
            pub fn apply(&mut self, raw: $raw, layer: usize) {
                $(if let Some(v) = raw.$field {
                    self.$field = Some(Located::new(v, layer));
                })*
            }
        }
    };
}

layered!(
    RawDaemon,
    Daemon {
        state_dir: String,
        socket: String,
        log_level: LogLevel,
        log_format: LogFormat,
        timezone: String,
        filter_dir: String,
    }
);

layered!(
    RawFirewall,
    Firewall {
        backend: Backend,
        table: String,
        priority: i32,
        verdict: Verdict,
        hook_forward: bool,
        flush_on_stop: bool,
        netlink: bool,
    }
);

layered!(
    RawNotify,
    Notify {
        exec: Vec<Vec<String>>,
        webhooks: Vec<String>,
        events: Vec<NotifyEvent>,
        timeout: PositiveDuration,
        retries: u32,
        queue: u32,
    }
);

layered!(
    RawMetrics,
    Metrics {
        enabled: bool,
        listen: String,
    }
);

layered!(
    RawGeoIp,
    GeoIp {
        databases: GeoIpDatabases,
        directory: String,
    }
);

layered!(
    RawNetworks,
    Networks {
        threshold: CountOrFalse,
        v4_prefix: u8,
        v6_prefix: u8,
        widen_after: CountOrFalse,
        widen_bits: u8,
        v4_widest: u8,
        v6_widest: u8,
        asn_threshold: CountOrFalse,
        bantime: PositiveDuration,
    }
);

/// `geoip.databases`: `"auto"`, `false`, or a non-empty list of file names.
#[derive(Clone, Debug)]
pub(crate) enum GeoIpDatabases {
    Auto,
    Off,
    Files(Vec<String>),
}

impl<'de> Deserialize<'de> for GeoIpDatabases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "expected \"auto\", false, or a list of .mmdb files";
        impl<'de> Visitor<'de> for V {
            type Value = GeoIpDatabases;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\", false, or a list of .mmdb files")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(EXPECTED))
                } else {
                    Ok(GeoIpDatabases::Off)
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if s == "auto" {
                    Ok(GeoIpDatabases::Auto)
                } else {
                    Err(E::custom(format!(
                        "{EXPECTED}, got {s:?} (a single file is written [{s:?}])"
                    )))
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut files = Vec::new();
                while let Some(f) = seq.next_element::<String>()? {
                    if f.trim().is_empty() {
                        return Err(de::Error::custom("an empty file name"));
                    }
                    files.push(f);
                }
                if files.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list: write false to switch GeoIP off, or \"auto\"",
                    ));
                }
                Ok(GeoIpDatabases::Files(files))
            }
        }
        d.deserialize_any(V)
    }
}

layered!(
    RawFleet,
    Fleet {
        enabled: bool,
        servers: Vec<String>,
        node: String,
        prefix: String,
        stream: String,
        nkey_seed_file: String,
        creds_file: String,
        tls_cert: String,
        tls_key: String,
        tls_ca: String,
        jails: Vec<String>,
        members: Vec<Cidr>,
        protected: Vec<Cidr>,
        max_ban: PositiveDuration,
        permanent_after_nodes: CountOrFalse,
        rate: u32,
        queue: u32,
    }
);

layered!(
    RawCampaign,
    Campaign {
        enabled: bool,
        jails: Vec<String>,
        bin: PositiveDuration,
        threshold: f64,
        drift: f64,
        learn: PositiveDuration,
        min_participants: u32,
        max_tries: u32,
        max_addresses: u32,
        ban: DurationOrFalse,
        targeted: bool,
        targeted_min_addresses: u32,
        targeted_window: PositiveDuration,
        targeted_ban: DurationOrFalse,
    }
);

layered!(RawJail, Jail {
    enabled: bool,
    filter: RawFilter,
    sources: Vec<RawSource>,
    maxretry: Attempts,
    findtime: PositiveDuration,
    bantime: PositiveDuration,
    bantime_factor: Factor,
    maxtime: PositiveDuration,
    permanent_after: CountOrFalse,
    history: PositiveDuration,
    allowlist: Vec<Cidr>,
    v6_net_threshold: CountOrFalse,
    v6_prefix: V6Prefix,
    breach_after: CountOrFalse,
    protect_after_success: DurationOrFalse,
    protect_budget: ProtectBudget,
    alert_root_login: bool,
    slow_maxretry: AttemptsOrFalse,
    slow_findtime: PositiveDuration,
    max_users: MaxUsers,
});

/// One whole file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub daemon: Option<RawDaemon>,
    pub firewall: Option<RawFirewall>,
    pub notify: Option<RawNotify>,
    pub metrics: Option<RawMetrics>,
    pub geoip: Option<RawGeoIp>,
    pub networks: Option<RawNetworks>,
    pub fleet: Option<RawFleet>,
    pub campaign: Option<RawCampaign>,
    pub defaults: Option<RawJail>,
    pub jail: Option<BTreeMap<String, Spanned<RawJail>>>,
}

/// `maxretry`: a positive number of attempts, decimals allowed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Attempts(pub Weight);

/// A duration longer than zero: `"10m"`, `"1h30m"` or whole seconds.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PositiveDuration(pub Duration);

/// `slow_maxretry`: a positive number of attempts, or `false` (no long window).
#[derive(Copy, Clone, Debug)]
pub(crate) struct AttemptsOrFalse(pub Option<Weight>);

/// `max_users`: 2 to [`MAX_USERS`] distinct user names, or `false`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct MaxUsers(pub Option<u32>);

/// The largest `max_users`: the engine keeps up to this many name hashes per address.
pub(crate) const MAX_USERS: u32 = 64;

/// A positive duration, or `false` to switch the feature off.
#[derive(Copy, Clone, Debug)]
pub(crate) struct DurationOrFalse(pub Option<Duration>);

/// A positive integer, or `false` to switch the feature off.
#[derive(Copy, Clone, Debug)]
pub(crate) struct CountOrFalse(pub Option<u32>);

/// `bantime_factor`: a finite number ≥ 1.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Factor(pub f64);

/// `protect_budget`: a whole multiple of `maxretry`, 1 to 1000.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ProtectBudget(pub u32);

/// `v6_prefix`: 1 to 128.
#[derive(Copy, Clone, Debug)]
pub(crate) struct V6Prefix(pub u8);

/// An allowlist entry: an address (made a /32 or /128) or a CIDR network (host bits
/// cleared).
#[derive(Copy, Clone, Debug)]
pub(crate) struct Cidr(pub IpNet);

/// A journalctl match: `FIELD=value` (FIELD of `A-Z`, `0-9`, `_`) or `+`.
#[derive(Clone, Debug)]
pub(crate) struct JournalMatch(pub String);

/// One entry of `sources`.
#[derive(Clone, Debug)]
pub(crate) enum RawSource {
    Auto,
    File(String),
    Journal(RawJournal),
}

/// `{ journal = { … } }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJournal {
    #[serde(default)]
    pub matches: Vec<JournalMatch>,
    pub directory: Option<String>,
    pub file: Option<String>,
    #[serde(default)]
    pub senders: crate::model::JournalSenders,
}

const DURATION_EXPECTED: &str =
    "a duration such as \"10m\", \"1h30m\", \"7d\" or a number of seconds";

fn duration_from_str<E: de::Error>(s: &str) -> Result<Duration, E> {
    let d = parse_duration(s).map_err(|e| {
        if s.trim_start().starts_with('-') {
            E::custom(format!(
                "{e}; negative durations mean nothing here (for bans that never end use \
                 permanent_after)"
            ))
        } else {
            E::custom(e)
        }
    })?;
    positive(d)
}

fn duration_from_int<E: de::Error>(secs: i64) -> Result<Duration, E> {
    let secs = u64::try_from(secs).map_err(|_| {
        E::custom(format!(
            "expected {DURATION_EXPECTED}, got {secs} (for bans that never end use \
             permanent_after)"
        ))
    })?;
    positive(Duration::from_secs(secs))
}

fn positive<E: de::Error>(d: Duration) -> Result<Duration, E> {
    if d.is_zero() {
        Err(E::custom("expected a duration longer than zero"))
    } else {
        Ok(d)
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PositiveDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                duration_from_str(s).map(PositiveDuration)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                duration_from_int(v).map(PositiveDuration)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for DurationOrFalse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationOrFalse;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{DURATION_EXPECTED}, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(format!("expected {DURATION_EXPECTED}, or false")))
                } else {
                    Ok(DurationOrFalse(None))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                duration_from_str(s).map(|d| DurationOrFalse(Some(d)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                duration_from_int(v).map(|d| DurationOrFalse(Some(d)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for CountOrFalse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "expected a positive integer, or false";
        impl Visitor<'_> for V {
            type Value = CountOrFalse;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(EXPECTED))
                } else {
                    Ok(CountOrFalse(None))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u32::try_from(v) {
                    Ok(n) if n > 0 => Ok(CountOrFalse(Some(n))),
                    _ => Err(E::custom(format!("{EXPECTED}, got {v}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for AttemptsOrFalse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "expected a positive number of attempts, or false";
        impl Visitor<'_> for V {
            type Value = AttemptsOrFalse;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number of attempts, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(EXPECTED))
                } else {
                    Ok(AttemptsOrFalse(None))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                match Weight::from_attempts(v) {
                    Some(w) if w > Weight::ZERO => Ok(AttemptsOrFalse(Some(w))),
                    _ => Err(E::custom(format!("{EXPECTED} (at most 4000000), got {v}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for MaxUsers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MaxUsers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from 2 to {MAX_USERS}, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom(format!(
                        "expected a whole number from 2 to {MAX_USERS}, or false"
                    )))
                } else {
                    Ok(MaxUsers(None))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u32::try_from(v) {
                    Ok(n) if (2..=MAX_USERS).contains(&n) => Ok(MaxUsers(Some(n))),
                    _ => Err(E::custom(format!(
                        "expected a whole number from 2 to {MAX_USERS} (distinct user names \
                         within findtime), or false, got {v}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Attempts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Attempts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number of attempts")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                match Weight::from_attempts(v) {
                    Some(w) if w > Weight::ZERO => Ok(Attempts(w)),
                    _ => Err(E::custom(format!(
                        "expected a positive number of attempts (at most 4000000), got {v}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Factor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number >= 1")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && (1.0..=1000.0).contains(&v) {
                    Ok(Factor(v))
                } else {
                    Err(E::custom(format!(
                        "expected a number from 1 to 1000 (1 disables escalation), got {v}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes `$ty` from one kind of TOML value through `$visit`, so that a rejected value
/// is reported inside the deserializer and gets its own span (an error raised after a plain
/// `String::deserialize` would get the span of the enclosing array or table).
macro_rules! checked_value {
    ($ty:ident, $expecting:expr, $visit:ident($arg:ident: $argty:ty) $body:block) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn $visit<E: de::Error>(self, $arg: $argty) -> Result<$ty, E> {
                        let result: Result<$ty, String> = $body;
                        result.map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

checked_value!(V6Prefix, "an IPv6 prefix length from 1 to 128", visit_i64(v: i64) {
    match u8::try_from(v) {
        Ok(p) if (1..=128).contains(&p) => Ok(V6Prefix(p)),
        _ => Err(format!("expected an IPv6 prefix length from 1 to 128, got {v}")),
    }
});

checked_value!(ProtectBudget, "a whole number from 1 to 1000", visit_i64(v: i64) {
    match u32::try_from(v) {
        Ok(n) if (1..=1000).contains(&n) => Ok(ProtectBudget(n)),
        _ => Err(format!(
            "expected a whole number from 1 to 1000 (times maxretry), got {v}; \
             protect_after_success = false switches the protection off"
        )),
    }
});

checked_value!(Cidr, "an IP address or CIDR network", visit_str(s: &str) {
    let text = s.trim();
    let net = if text.contains('/') {
        text.parse::<IpNet>().ok().map(|n| n.trunc())
    } else {
        text.parse::<std::net::IpAddr>().ok().map(IpNet::from)
    };
    net.map(Cidr).ok_or_else(|| {
        format!(
            "expected an IP address or CIDR network such as 192.0.2.0/24 or 2001:db8::/32, \
             got {s:?}"
        )
    })
});

checked_value!(JournalMatch, "a journal match FIELD=value or \"+\"", visit_str(s: &str) {
    let valid = s == "+"
        || s.split_once('=').is_some_and(|(field, value)| {
            !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && !value.contains(['\n', '\0'])
        });
    if valid {
        Ok(JournalMatch(s.to_owned()))
    } else {
        Err(format!(
            "expected a journal match FIELD=value (FIELD in A-Z, 0-9, _) or \"+\", got {s:?}"
        ))
    }
});

/// A jail's `filter`: a name or path, or a Fail2Ban filter file with its arguments.
#[derive(Clone, Debug)]
pub(crate) enum RawFilter {
    /// `filter = "sshd"` or `filter = "/path/f.toml"`.
    Name(String),
    /// `filter = { fail2ban = "/etc/fail2ban/filter.d/sshd.conf", args = { mode = "aggressive" } }`.
    Fail2Ban {
        path: String,
        /// In the order the TOML reader yields them (by key; Fail2Ban's result does not
        /// depend on the order of distinct arguments).
        args: Vec<(String, String)>,
    },
}

const FILTER_EXPECTED: &str = "a filter name, a path to a .toml file, or \
     { fail2ban = \"/etc/fail2ban/filter.d/NAME.conf\", args = { key = \"value\" } }";

impl<'de> Deserialize<'de> for RawFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFilter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(FILTER_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawFilter::Name(s.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut path: Option<String> = None;
                let mut args: Option<FilterArgs> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "fail2ban" if path.is_none() => {
                            let p = map.next_value::<String>()?;
                            if p.trim().is_empty() {
                                return Err(de::Error::custom(
                                    "expected the path of a Fail2Ban filter file (filter.d/NAME.conf), got an empty string",
                                ));
                            }
                            path = Some(p);
                        }
                        "args" if args.is_none() => args = Some(map.next_value::<FilterArgs>()?),
                        "fail2ban" | "args" => {
                            return Err(de::Error::custom(format!("duplicate key `{key}`")));
                        }
                        other => {
                            return Err(de::Error::unknown_field(other, &["fail2ban", "args"]));
                        }
                    }
                }
                let path = path.ok_or_else(|| {
                    de::Error::custom(format!(
                        "a filter table needs `fail2ban = \"PATH\"` (expected {FILTER_EXPECTED})"
                    ))
                })?;
                Ok(RawFilter::Fail2Ban {
                    path,
                    args: args.map_or_else(Vec::new, |a| a.0),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `args = { key = value, … }` of a Fail2Ban filter: Fail2Ban's `name[key=value]`
/// arguments; numbers and booleans are taken as their text.
#[derive(Clone, Debug)]
struct FilterArgs(Vec<(String, String)>);

/// One argument value as Fail2Ban's text.
struct ArgValue(String);

impl<'de> Deserialize<'de> for ArgValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ArgValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean argument value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ArgValue(s.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ArgValue(if v { "true" } else { "false" }.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FilterArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FilterArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of Fail2Ban filter arguments, e.g. { mode = \"aggressive\" }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<ArgValue>()?;
                    out.push((key, value.0));
                }
                Ok(FilterArgs(out))
            }
        }
        d.deserialize_any(V)
    }
}

const SOURCE_EXPECTED: &str = "\"auto\", { file = \"/path\" } or { journal = { matches = [...] } }";

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SOURCE_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if s == "auto" {
                    Ok(RawSource::Auto)
                } else {
                    Err(E::custom(format!(
                        "expected {SOURCE_EXPECTED}, got {s:?} (a file is {{ file = {s:?} }})"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(format!("expected {SOURCE_EXPECTED}")));
                };
                let source = match key.as_str() {
                    "file" => RawSource::File(map.next_value::<String>()?),
                    "journal" => RawSource::Journal(map.next_value::<RawJournal>()?),
                    other => return Err(de::Error::unknown_field(other, &["file", "journal"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "unexpected key `{extra}`: a source is either a file or a journal"
                    )));
                }
                Ok(source)
            }
        }
        d.deserialize_any(V)
    }
}
