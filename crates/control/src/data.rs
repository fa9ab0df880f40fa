//! The `data` of successful responses, one shape per command. The daemon builds them, the
//! CLI prints them (human text, or the JSON as is with `--json`). Times are Unix seconds.

use serde::{Deserialize, Serialize};

use crate::protocol::Target;

/// One active ban, as listed by `bans` and returned by `ban`/`unban`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    /// The banned address or network.
    pub target: Target,
    /// The jail holding it.
    pub jail: String,
    /// Start, Unix seconds.
    pub since: i64,
    /// End, Unix seconds; `None` for a permanent ban.
    pub until: Option<i64>,
    /// Which ban of this offender it is (escalation step).
    pub ban_no: u32,
    /// `threshold`, `aggregate`, `manual`, `restored` or `fleet`.
    pub reason: String,
    /// For a ban other fleet nodes reported: the reporting nodes, comma-separated (`admin`:
    /// an admin's decision). Absent for this node's own bans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// `data` of `bans`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BansData {
    /// Active bans, oldest first (the first `limit` of them when one was given).
    pub bans: Vec<BanEntry>,
    /// How many bans matched the request's jail and network, before its limit.
    #[serde(default)]
    pub total: u64,
    /// Country and autonomous system of the listed targets (a network: of its first
    /// address), by target as text; only those a GeoIP database knows.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub origins: std::collections::BTreeMap<String, portcullis_core::origin::Origin>,
}

/// `data.geoip` of `status`: the databases in use and where the banned come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoIpStatus {
    /// The databases asked, `PATH (database_type)`, in order.
    pub databases: Vec<String>,
    /// Databases that could not be used, each naming its file.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Active bans (targets) per country, most first.
    pub bans_by_country: Vec<portcullis_core::origin::OriginCount>,
    /// Active bans per autonomous system, most first.
    pub bans_by_asn: Vec<portcullis_core::origin::OriginCount>,
    /// How many bans those tallies count (at most the first 10000 in force).
    pub counted: u64,
}

/// `data` of `ban`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanData {
    /// The ban now in force.
    pub ban: BanEntry,
    /// What the daemon made of the request, when it is not what was asked (a duration
    /// beyond the kernel's limit became a permanent ban).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `data` of `unban`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbanData {
    /// The bans lifted (empty: there was none; the daemon may answer `not_found` instead).
    pub removed: Vec<BanEntry>,
}

/// `data` of `flush`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushData {
    /// How many bans were removed.
    pub removed: u64,
}

/// `data` of `reload`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadData {
    /// The jails running after the reload.
    pub jails: Vec<String>,
    /// Non-fatal remarks (e.g. a jail disabled because its log is missing).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `data` of `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusData {
    /// Daemon version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Process id, for `kill -HUP`.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// `true` with `--dry-run`: decisions are logged, not applied.
    pub dry_run: bool,
    /// The firewall backend.
    pub backend: BackendStatus,
    /// One entry per jail (only the asked one with `status JAIL`).
    pub jails: Vec<JailStatus>,
    /// Recent alerts (breach, root login), newest first.
    #[serde(default)]
    pub alerts: Vec<AlertEntry>,
    /// The notification hooks' counters.
    #[serde(default)]
    pub hooks: HookStatus,
    /// Whether the state database takes writes.
    #[serde(default)]
    pub store: StoreStatus,
    /// GeoIP, when a database is configured or found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip: Option<Box<GeoIpStatus>>,
    /// Network aggregation, when a rule of `[networks]` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<NetworksStatus>,
    /// The fleet link, when `[fleet]` is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Box<FleetStatus>>,
    /// Site-wide detection: distributed campaigns and user-targeted attacks.
    #[serde(default)]
    pub campaigns: CampaignStatus,
}

/// `data.networks` of `status`: the aggregation rules and the network bans they hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworksStatus {
    /// `3 banned addresses of a /24 (IPv6 /48) ban it; 4 banned networks widen to /16
    /// (IPv6 /40), up to /16 (/32)`, …, as the daemon applies them.
    pub rules: String,
    /// Network bans of the aggregation in force (carved parts counted one by one).
    pub network_bans: u64,
}

/// The fleet link (`[fleet]`) as `status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This node's name in subjects.
    pub node: String,
    /// Whether the client is connected to a server now.
    pub connected: bool,
    /// Whether this node consumes the stream now.
    pub consuming: bool,
    /// The last stream sequence applied (stored with the decisions).
    pub applied_seq: u64,
    /// Own reports published and acknowledged since start.
    pub published: u64,
    /// Own reports waiting for the broker.
    pub queued: u64,
    /// Own reports dropped (queue full) since start.
    pub dropped: u64,
    /// Received decisions applied since start.
    pub applied: u64,
    /// Received decisions ignored since start, by why (`protected`, `rate_limited`, …).
    #[serde(default)]
    pub ignored: std::collections::BTreeMap<String, u64>,
    /// Fleet bans in force here.
    pub bans: u64,
    /// Fleet bans in force here by reporting node (`admin` for admins' decisions); a ban
    /// several nodes reported counts for each.
    #[serde(default)]
    pub origins: std::collections::BTreeMap<String, u64>,
    /// The last error, while something fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Site-wide detection in `status` (docs/campaigns.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignStatus {
    /// Whether a detector runs.
    pub enabled: bool,
    /// The distributed detector's baseline, as text: `mean ± deviation per bin, CUSUM s / h`
    /// (or `learning`).
    #[serde(default)]
    pub baseline: String,
    /// Addresses it tracks.
    #[serde(default)]
    pub tracked_addresses: u64,
    /// Participants banned by the ban action, and those it left alone (allowlisted or
    /// protected by a clean login).
    #[serde(default)]
    pub banned: u64,
    /// See `banned`.
    #[serde(default)]
    pub spared: u64,
    /// Campaigns in progress: their latest report (the store's JSON of it).
    #[serde(default)]
    pub active: Vec<serde_json::Value>,
    /// Campaigns that ended lately (from the store), newest first.
    #[serde(default)]
    pub recent: Vec<serde_json::Value>,
}

/// Health of the state database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Whether the last write succeeded.
    pub healthy: bool,
    /// The last write's error with its causes (SQLite's text), while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds since the first failed write of the outage.
    #[serde(default)]
    pub failing_secs: u64,
    /// Failed writes in the outage.
    #[serde(default)]
    pub failed_writes: u32,
    /// Decisions in force but not yet durable (written when the store recovers, in order).
    #[serde(default)]
    pub unsaved_decisions: u64,
}

/// Counters of the notification hook runs (one run per event and hook) since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStatus {
    /// Runs that succeeded.
    pub delivered: u64,
    /// Runs that failed (error, non-zero exit, timeout, every webhook try failed).
    pub failed: u64,
    /// Runs dropped because the queue was full (the hooks are too slow or dead).
    pub dropped: u64,
    /// Runs waiting for a worker now.
    pub waiting: u64,
}

/// One alert kept by the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEntry {
    /// `breach` or `root_login`.
    pub kind: String,
    /// When it happened, Unix seconds.
    pub time: i64,
    /// The address concerned.
    pub addr: String,
    /// The user, when known (attacker-chosen text: display it escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Failed attempts before a breach.
    #[serde(default)]
    pub failures: u32,
}

/// Health of the firewall backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// `nftables` or `ipset`.
    pub name: String,
    /// Whether the last firewall transaction succeeded.
    pub healthy: bool,
    /// The last error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One jail's counters and sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailStatus {
    /// Jail name.
    pub name: String,
    /// Bans in force now.
    pub active_bans: u64,
    /// Bans decided since start.
    pub total_bans: u64,
    /// Weighted failed attempts seen since start.
    pub attempts: u64,
    /// Addresses with failures in their window now (Fail2Ban's "Currently failed").
    #[serde(default)]
    pub failing: u64,
    /// The targets of the bans in force, when `status JAIL` asked for this jail alone
    /// (Fail2Ban's "Banned IP list"); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banned: Vec<String>,
    /// Bans in force that `banned` leaves out: above 1000 bans it holds only the newest
    /// 100 (page through all with `bans --jail`); 0 when it lists every one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub banned_omitted: u64,
    /// What its filter made of the lines it read since start.
    #[serde(default)]
    pub lines: LineCounts,
    /// Its log sources.
    pub sources: Vec<SourceStatus>,
}

/// A filter's line counters (all its sources together).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCounts {
    /// Lines (or journal records) read.
    pub read: u64,
    /// Lines that gave an event.
    pub matched: u64,
    /// Lines a rule matched and an ignore pattern dropped.
    pub ignored: u64,
    /// Lines no rule matched, including other programs' lines.
    pub unmatched: u64,
    /// Of `unmatched`: lines whose prefix (timestamp and header) was not understood.
    pub unparsed: u64,
    /// Lines for the filter that could not be used (too long, bad address, …).
    pub bad: u64,
    /// Of `bad`: lines of the line cap or longer.
    pub oversized: u64,
    /// Lines without a known timestamp (the read time was used).
    pub no_timestamp: u64,
    /// Messages their writer cut (sshd: 500 bytes): only an address no client-chosen text
    /// can precede was taken from them.
    #[serde(default)]
    pub cut: u64,
}

/// One log source and where it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The file path or journal match.
    pub key: String,
    /// Human-readable position (`offset 1234 of inode 56` or a journal cursor).
    pub position: String,
    /// Lines read since start.
    pub lines: u64,
    /// Journal entries read and not believed (their sender is not vouched for, e.g. a
    /// user's `logger -t sshd`): never matched.
    #[serde(default)]
    pub untrusted: u64,
    /// The last error (not a regular file, permission, journalctl failing), until the
    /// source delivers lines again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `data` of `activity`: what `portcullis top` shows, every list bounded by the request's
/// limit (each with the number there was before it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityData {
    /// The daemon's wall time, Unix seconds: bans' time left is counted from it.
    pub now: i64,
    /// Whole failed attempts handed to the jails since start (all jails): a counter that
    /// only grows, which the client turns into attempts per second.
    pub attempts: u64,
    /// Bans decided since start (all jails).
    pub bans_decided: u64,
    /// The heaviest failing addresses, heaviest first.
    pub failing: Vec<FailingEntry>,
    /// How many (jail, address) pairs have failures in their window now.
    pub failing_total: u64,
    /// The networks (/24 for IPv4, /64 for IPv6) with two or more failing addresses,
    /// heaviest first.
    pub networks: Vec<NetworkEntry>,
    /// The newest active bans, newest first.
    pub bans: Vec<BanEntry>,
    /// How many bans are active (all jails, orphans included).
    pub bans_total: u64,
    /// Recent alerts (breach, root login), newest first.
    pub alerts: Vec<AlertEntry>,
    /// Every log source with its health and how far behind it reads.
    pub sources: Vec<SourceActivity>,
}

/// One address with failures in a jail's window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingEntry {
    /// The jail counting it.
    pub jail: String,
    /// The address.
    pub addr: std::net::IpAddr,
    /// Its weighted failures within `findtime`, in thousandths of an attempt (a full
    /// attempt is 1000; `maxretry = 5` bans at 5000).
    pub weight: u64,
    /// The jail's ban threshold in the same unit (`maxretry` × 1000).
    pub threshold: u64,
}

/// One network and its failing addresses in a jail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEntry {
    /// The jail counting them.
    pub jail: String,
    /// The /24 or /64.
    pub net: Target,
    /// How many of its addresses are failing.
    pub addresses: u64,
    /// Their weights summed, thousandths of an attempt.
    pub weight: u64,
}

/// One log source for `activity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceActivity {
    /// The file path or journal match.
    pub key: String,
    /// The jails it feeds.
    pub jails: Vec<String>,
    /// Lines read since start.
    pub lines: u64,
    /// For a file: bytes written to it that the daemon has not read yet (the file's size
    /// past the position of the last line processed); `None` for the journal or before
    /// the first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// The last error, until the source delivers lines again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A successful answer, typed; serialised as the bare data object (no tag), since the client
/// knows which command it sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// For `status`.
    Status(Box<StatusData>),
    /// For `bans`.
    Bans(BansData),
    /// For `ban`.
    Ban(BanData),
    /// For `unban`.
    Unban(UnbanData),
    /// For `reload`.
    Reload(ReloadData),
    /// For `flush`.
    Flush(FlushData),
    /// For `activity`.
    Activity(ActivityData),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
