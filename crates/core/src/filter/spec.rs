//! The TOML shape of a filter file, as written by people (before compilation).

use serde::Deserialize;
use toml::Spanned;

/// A whole filter file.
///
/// ```toml
/// [filter]
/// programs = ["sshd", "sshd-session"]
///
/// [[rule]]
/// id = "failed-password"
/// kind = "attempt"
/// weight = 1.0
/// merge = "closer"
/// regex = '^Failed (?P<method>password) for <USER> from <HOST> port <PORT> ssh2$'
///
/// [[ignore]]
/// regex = '^Failed password for <USER> from 192\.0\.2\.1 port <PORT> ssh2$'
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Which log lines the filter reads.
    #[serde(default)]
    pub filter: FilterSection,
    /// Rules tried in order; the first whose regex matches decides the line.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
    /// Lines a rule matched but that must not produce an event (checked after a rule matched).
    #[serde(default, rename = "ignore")]
    pub ignores: Vec<IgnoreSpec>,
}

/// The `[filter]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSection {
    /// Human description, shown by `test-filter`.
    #[serde(default)]
    pub description: Option<String>,
    /// Syslog program names (journal `SYSLOG_IDENTIFIER`) whose lines this filter reads;
    /// empty means every program. Checked before any regex runs, so other daemons' lines
    /// cost almost nothing.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Which line shapes the filter reads from files (default `["syslog"]`); see
    /// [`ShapeSpec`]. Journal records are always messages with a program.
    #[serde(default)]
    pub shapes: Option<Spanned<Vec<ShapeSpec>>>,
}

/// The shape of a log file's lines.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeSpec {
    /// `TIME host program[pid]: message` (BSD or RFC 5424 syslog); `programs` applies.
    Syslog,
    /// `TIME message`: a service's own log file (vsftpd's `Wed Nov 25 08:00:01 2026 [pid
    /// 1] ...`, nginx's and Apache's error logs). The message is what follows the
    /// timestamp; there is no program to check, so it is read only from the files the jail
    /// names.
    Plain,
    /// A web server access log (`ADDR - USER [25/Nov/2026:08:00:01 +0000] "GET / ..."`):
    /// the message is the whole line, its time the bracketed date before the request.
    Access,
}

/// One `[[rule]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable name used in stats, `--explain` and error messages.
    pub id: Spanned<String>,
    /// What a match means.
    pub kind: Spanned<KindSpec>,
    /// Attempts one occurrence counts for; defaults to 1 for attempts, 0 otherwise.
    #[serde(default)]
    pub weight: Option<Spanned<f64>>,
    /// How this line merges with other lines logging the same attempt.
    #[serde(default)]
    pub merge: MergeSpec,
    /// The regex, with tags `<HOST>`/`<ADDR>`, `<USER>`, `<PORT>`; anchored with `^…$`.
    pub regex: Spanned<String>,
    /// Whether the address is trusted in a message its writer cut (see
    /// [`cut`](super::cut)); by default computed from the regex (nothing before `<HOST>`
    /// but literal text and digits: no `user` group, no other field). Set it only with the
    /// reason in a comment.
    #[serde(default)]
    pub cut_safe: Option<bool>,
    /// Try this rule only on messages whose writer cut them: the cut form of another rule
    /// (whose tail, needed by its `$`, is gone).
    #[serde(default)]
    pub only_cut: bool,
    /// Whether the line tells if the named account exists: `"sshd"` reads it from sshd's
    /// words just before the user name (`invalid user U` / `illegal user U`: no such
    /// account; `for U`, `authenticating user U`, `User U`: it exists). Absent: unknown.
    #[serde(default)]
    pub account: Option<AccountSpec>,
}

/// The values of a rule's `account` key.
#[derive(Copy, Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AccountSpec {
    /// sshd's words before the user name say it (see [`RuleSpec::account`]).
    Sshd,
}

/// One `[[ignore]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreSpec {
    /// A regex over the message; tags are expanded as in rules.
    pub regex: Spanned<String>,
}

/// Event kind as written in TOML.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindSpec {
    /// A failed authentication attempt.
    Attempt,
    /// Pre-authentication noise.
    Probe,
    /// A successful login.
    Success,
    /// Informational, weight zero.
    Info,
}

/// Merge role of a rule, see [`super::coalesce`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeSpec {
    /// Every match counts on its own.
    #[default]
    None,
    /// Logged before the line that closes an attempt (pam_unix, `error: PAM:`).
    Precursor,
    /// The line that closes an attempt (`Failed password`).
    Closer,
    /// A pre-auth line that names a user (`Invalid user`, `Connection closed by
    /// authenticating user … [preauth]`): the connection's attempt when it makes no other.
    User,
    /// A try a success on the same connection retracts (pam_unix's failure before another
    /// PAM module's success, a valid user's key offered before the accepted one).
    Tentative,
}
