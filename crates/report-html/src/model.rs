//! What the report shows. The investigate command fills it from the log pipeline and the host
//! readers; `--json` can print the same value.

use std::net::IpAddr;

use portcullis_core::Time;
use portcullis_host::time_serde;
use portcullis_host::{RemoteConnections, Session};
use serde::{Deserialize, Serialize};

/// Everything on the page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportModel {
    /// Page title and heading (e.g. `portcullis investigate: web1`).
    pub title: String,
    /// The host the report is about, shown in the header.
    pub hostname: String,
    /// When the report was made.
    #[serde(with = "time_serde")]
    pub generated: Time,
    /// Start of the period the logs were read for (`--since`), if bounded.
    #[serde(with = "time_serde::option", default)]
    pub since: Option<Time>,
    /// End of the period (`--until`), if bounded.
    #[serde(with = "time_serde::option", default)]
    pub until: Option<Time>,
    /// Width of each time bucket in seconds (labels the time chart: "per hour").
    pub bucket_secs: u64,
    /// Attempts over time, oldest first, consecutive buckets of `bucket_secs` (empty buckets
    /// included so gaps show). More than 120 are merged pairwise for drawing.
    pub buckets: Vec<TimeBucket>,
    /// Top attacking addresses, most attempts first (the caller applies `--limit`; the chart
    /// shows the first 15, the table all).
    pub top_addrs: Vec<AddrAttempts>,
    /// Most-tried user names, most first (chart shows the first 15).
    pub top_users: Vec<UserAttempts>,
    /// Totals over the period.
    pub totals: Totals,
    /// Findings, most serious first (the caller orders them).
    pub findings: Vec<Finding>,
    /// Who is logged in now (utmp).
    pub sessions: Vec<Session>,
    /// TCP connections to the SSH ports now, by remote address.
    pub connections: Vec<RemoteConnections>,
    /// Recent successful logins (wtmp and logs), newest first.
    pub logins: Vec<LoginRow>,
    /// Attacking addresses per country, most first (empty: no GeoIP database, and the
    /// chart is left out).
    #[serde(default)]
    pub by_country: Vec<OriginBar>,
    /// Attacking addresses per autonomous system, most first (empty: no ASN data).
    #[serde(default)]
    pub by_asn: Vec<OriginBar>,
    /// Site-wide campaigns and user-targeted attacks, by start.
    #[serde(default)]
    pub campaigns: Vec<CampaignRow>,
}

/// One bar of the by-country or by-AS chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginBar {
    /// `NL`, `AS64500 Example Org`, `unknown` or `other`. From a database file: escaped
    /// like any text.
    pub label: String,
    /// Attacking addresses.
    pub addresses: u64,
    /// Their failed attempts.
    pub attempts: u64,
}

/// One campaign in the report's short campaigns section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    /// `campaign` or `user-targeted`.
    pub kind: String,
    /// The campaign's id.
    pub id: String,
    /// Its start.
    #[serde(with = "time_serde")]
    pub start: Time,
    /// Its end (the end of the logs while still active).
    #[serde(with = "time_serde")]
    pub end: Time,
    /// Whether it was still going at the end of the logs.
    pub active: bool,
    /// Participants.
    pub participants: u64,
    /// User names targeted (attacker text: escaped on the page).
    pub users: Vec<String>,
    /// 0 to 1.
    pub confidence: f64,
}

/// One bar of the attempts-over-time chart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBucket {
    /// Start of the bucket.
    #[serde(with = "time_serde")]
    pub start: Time,
    /// Failed attempts in it.
    pub failures: u64,
    /// Successful logins in it.
    pub successes: u64,
}

/// One attacking address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrAttempts {
    /// The address.
    pub addr: IpAddr,
    /// Failed attempts.
    pub attempts: u64,
    /// Successful logins from it (any > 0 next to many attempts is what to look at).
    pub successes: u64,
    /// First event seen from it.
    #[serde(with = "time_serde::option", default)]
    pub first_seen: Option<Time>,
    /// Last event seen from it.
    #[serde(with = "time_serde::option", default)]
    pub last_seen: Option<Time>,
    /// User names it tried (the caller may cut the list). Attacker-chosen.
    pub users: Vec<String>,
    /// Whether portcullis bans it now, if known (`None`: no daemon or store to ask).
    pub banned: Option<bool>,
    /// Country code (or name), when a GeoIP database knows it.
    #[serde(default)]
    pub country: Option<String>,
    /// `AS64500 Example Org`, when an ASN database knows it.
    #[serde(default)]
    pub asn: Option<String>,
}

/// One user name and how often it was tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAttempts {
    /// The name as logged. Attacker-chosen.
    pub user: String,
    /// Failed attempts with it.
    pub attempts: u64,
}

/// Totals over the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Failed attempts.
    pub failures: u64,
    /// Successful logins.
    pub successes: u64,
}

/// How serious a finding is; orders the table and colours its badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone likely got in (success after failures, open session from such an address).
    Critical,
    /// Alarming but not proof (root login, new address for a user).
    High,
    /// Worth a look.
    Medium,
    /// Informational.
    Low,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// Something the admin must look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// One line: "success after 37 failures".
    pub title: String,
    /// The address concerned, if any.
    pub addr: Option<IpAddr>,
    /// The user concerned, if any. Attacker-chosen for failures.
    pub user: Option<String>,
    /// Failures from the address before the event (0 when not relevant).
    pub failures: u64,
    /// When it happened.
    #[serde(with = "time_serde::option", default)]
    pub time: Option<Time>,
    /// Free text: evidence, e.g. the log line (escaped on output).
    pub detail: String,
}

/// One successful login, from wtmp or from the logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRow {
    /// When.
    #[serde(with = "time_serde")]
    pub time: Time,
    /// Who.
    pub user: String,
    /// From where, when known.
    pub addr: Option<IpAddr>,
    /// `password`, `publickey`, … when the log said.
    pub method: Option<String>,
    /// Where this row comes from: `wtmp`, `auth.log`, `journal`.
    pub source: String,
    /// How it ended or other remarks (`still logged in`, `logout 10:22`).
    pub note: String,
}
