//! Ground truth: what a correct sshd filter must report for a generated log.
//!
//! Counting table (shared with the filter engine, documented in docs/counting.md):
//! - `attempts`: real failed authentication tries, one per try however many lines log it
//!   (`pam_unix … authentication failure` + `Failed password` = 1; pam_unix + `error: PAM:
//!   Authentication failure` + `Failed keyboard-interactive/pam` = 1; `message repeated N
//!   times: [ Failed … ]` = N more). `Failed none` is not an attempt.
//! - `probes`: one per line of `Did not receive identification string`, `banner exchange`,
//!   `Unable to negotiate`, `Timeout before authentication`, `Failed none`, `Invalid user`,
//!   `User … not allowed because`, `Connection closed/reset by … [preauth]`, `Disconnected
//!   from … [preauth]`, `Received disconnect … [preauth]`.
//! - not counted: `PAM N more authentication failures`, `maximum authentication attempts
//!   exceeded`, `Disconnecting … Too many authentication failures`, post-auth disconnects,
//!   session lines.
//! - `successes`: `Accepted …` lines.

use serde::{Deserialize, Serialize};

/// Everything a correct filter must find in one generated log (or rotated set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The options that produced the log, so a truth file explains itself.
    pub generator: GeneratorInfo,
    /// Sums over the whole log.
    pub totals: Totals,
    /// One entry per address that appears in an sshd line, sorted by first appearance.
    pub addresses: Vec<AddressTruth>,
    /// Attackers that got in: failures followed by an `Accepted` line.
    pub breaches: Vec<Breach>,
    /// Addresses that appear only inside attacker-chosen user names; a correct filter reports
    /// nothing for them.
    pub injected: Vec<String>,
}

/// The generator's options, echoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// Format version of this truth file.
    pub version: u32,
    /// PRNG seed.
    pub seed: u64,
    /// Lines written.
    pub lines: u64,
    /// Distinct attacking addresses requested (all of them appear).
    pub attackers: u64,
    /// Share of attackers that are IPv6.
    pub ipv6_share: f64,
    /// Share of lines from programs other than sshd.
    pub noise_share: f64,
    /// Time of the first line, RFC 3339 UTC.
    pub start: String,
    /// `syslog` or `rfc3339`.
    pub format: String,
    /// Host name in every line.
    pub host: String,
}

/// Sums over the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Lines written.
    pub lines: u64,
    /// Lines written by `sshd` or `sshd-session`.
    pub sshd_lines: u64,
    /// Lines written by `sshd-session` (OpenSSH 9.8+ naming).
    pub sshd_session_lines: u64,
    /// Lines from other programs (cron, sudo, logind, kernel).
    pub noise_lines: u64,
    /// Distinct addresses in `addresses`.
    pub addresses: u64,
    /// Sum of `attempts`.
    pub attempts: u64,
    /// Sum of `probes`.
    pub probes: u64,
    /// Sum of `successes`.
    pub successes: u64,
    /// Lines that mention a failure with an address (`Failed …`, `pam_unix … authentication
    /// failure … rhost=`, `error: PAM: Authentication failure`, `message repeated`): what a
    /// line-counting filter would count, to compare with `attempts`.
    pub failure_lines: u64,
}

/// What a correct filter reports for one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressTruth {
    /// Canonical text (IPv6 per RFC 5952, as `std::net::Ipv6Addr` prints it).
    pub addr: String,
    /// `attacker`, `legit` or `breach`.
    pub role: String,
    /// Real failed authentication tries.
    pub attempts: u64,
    /// Pre-auth probes (scans, disconnects, invalid users).
    pub probes: u64,
    /// `Accepted …` lines.
    pub successes: u64,
    /// Distinct user names in the counted lines of this address, sorted.
    pub users: Vec<String>,
    /// Time of the first sshd line that carries this address (counted or not: pam_unix,
    /// `PAM N more`, post-auth disconnects included), RFC 3339 UTC with microseconds.
    pub first_seen: String,
    /// Time of the last sshd line that carries this address.
    pub last_seen: String,
}

/// An attacker that got in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    /// The attacker.
    pub addr: String,
    /// The account it got into.
    pub user: String,
    /// Its `attempts` before the `Accepted` line (this connection and earlier ones).
    pub failures_before: u64,
    /// Time of the `Accepted` line, RFC 3339 UTC with microseconds.
    pub time: String,
}
