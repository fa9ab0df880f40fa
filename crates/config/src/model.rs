//! The resolved configuration: every default applied, every value checked.

use std::fmt;
use std::path::{Path, PathBuf};

use portcullis_core::jail::JailConfig;
use serde::Deserialize;

/// The whole daemon configuration after merging all files.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Paths and process-wide settings.
    pub daemon: DaemonSettings,
    /// How bans reach the kernel.
    pub firewall: FirewallSettings,
    /// Who is told about alerts and bans.
    pub notify: NotifySettings,
    /// The Prometheus `/metrics` endpoint.
    pub metrics: MetricsSettings,
    /// Where GeoIP databases are (`[geoip]`).
    pub geoip: GeoIpSettings,
    /// Network aggregation (`[networks]`).
    pub networks: NetworkSettings,
    /// Sharing bans with other servers (`[fleet]`), off by default.
    pub fleet: crate::fleet::FleetSettings,
    /// Site-wide detection of distributed campaigns and user-targeted attacks
    /// (`[campaign]`, docs/campaigns.md).
    pub campaign: CampaignSettings,
    /// Enabled jails, sorted by name. Each has its own filter, sources and policy.
    pub jails: Vec<JailSpec>,
    /// Names of jails that are configured but have `enabled = false` (shown by `status`).
    pub disabled_jails: Vec<String>,
    /// Every file that contributed, in the order read (first: `<embedded default>`), so
    /// `status` and reload messages can say where the configuration came from.
    pub files: Vec<String>,
}

impl Config {
    /// The enabled jail called `name`.
    pub fn jail(&self, name: &str) -> Option<&JailSpec> {
        self.jails.iter().find(|j| j.name == name)
    }
}

/// One jail: a filter over some sources feeding one jail engine.
#[derive(Clone, Debug, PartialEq)]
pub struct JailSpec {
    /// The jail's name (the `NAME` of `[jail.NAME]`); also `config.name`.
    pub name: String,
    /// The engine's policy, validated.
    pub config: JailConfig,
    /// Which filter turns this jail's lines into events.
    pub filter: FilterRef,
    /// Where the `filter` key was set (or the jail's table, when it defaulted to the jail's
    /// name), so the daemon can report an unknown filter as `FILE:LINE: jail.X.filter: …`.
    pub filter_at: Location,
    /// Where this jail's lines come from; never empty.
    pub sources: Vec<SourceSpec>,
}

/// A place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as in [`crate::ConfigError::Invalid`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Dotted key path, e.g. `jail.sshd.filter`.
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.key)
    }
}

/// A filter as a jail names it. Resolving it is the daemon's job (it knows the built-ins
/// and may read files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterRef {
    /// A name: `<filter_dir>/NAME.toml` if that file exists, else the built-in filter NAME.
    Named(String),
    /// An explicit filter file (the value contained `/` or ended in `.toml`), made absolute
    /// against the directory of the file that named it.
    File(PathBuf),
    /// A Fail2Ban filter, read with Fail2Ban's semantics by `portcullis-fail2ban`
    /// (`FilterDef::load_file(path, args)`: `NAME.conf`, `NAME.d/*.conf`, `NAME.local`,
    /// `NAME.d/*.local` and their includes) and run by the PCRE2 engine. Produced by
    /// `run --fail2ban-config` and `import-fail2ban`; TOML form (written by the import):
    /// `filter = { fail2ban = "/etc/fail2ban/filter.d/sshd.conf", args = { mode = "normal" } }`.
    Fail2Ban {
        /// The filter's `.conf` file.
        path: PathBuf,
        /// The `name[key=value, …]` arguments in order (they override the filter's `[Init]`
        /// and `[Definition]` values), including the `logtype` Fail2Ban derives from the
        /// jail's backend and any filter option the jail itself sets.
        args: Vec<(String, String)>,
    },
}

impl FilterRef {
    /// The user filter file a [`FilterRef::Named`] would load from `filter_dir`, or the path
    /// of a [`FilterRef::File`] or [`FilterRef::Fail2Ban`].
    pub fn user_path(&self, filter_dir: &Path) -> PathBuf {
        match self {
            FilterRef::Named(name) => filter_dir.join(format!("{name}.toml")),
            FilterRef::File(path) => path.clone(),
            FilterRef::Fail2Ban { path, .. } => path.clone(),
        }
    }
}

/// One source of log lines for a jail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// Let the daemon choose: the journal when it holds entries of the filter's service,
    /// else the service's usual log file (see [`service_sources`]; for sshd:
    /// [`SSHD_LOG_FILES`], first that exists; journal matches [`SSHD_JOURNAL_MATCHES`]).
    Auto,
    /// A log file followed by name (rotation-aware).
    File {
        /// Absolute path.
        path: PathBuf,
    },
    /// The systemd journal.
    Journal(JournalSpec),
}

/// Which journal entries to follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalSpec {
    /// journalctl matches (`FIELD=value`, or `+` between groups); empty means the filter's
    /// default matches (see [`service_sources`]; for sshd: [`SSHD_JOURNAL_MATCHES`]).
    pub matches: Vec<String>,
    /// Read this journal directory instead of the system journal (containers, tests).
    pub directory: Option<PathBuf>,
    /// Read this one journal file (tests).
    pub file: Option<PathBuf>,
    /// Whose entries to believe, by the sender's `_UID` as journald recorded it; entries
    /// claiming to be sshd's must come from root's sshd whatever this says (unless `any`).
    pub senders: JournalSenders,
}

/// `senders` of a journal source: who may write the entries it believes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalSenders {
    /// `_UID=0` only.
    Root,
    /// System accounts (`_UID` below 1000): no login user's `logger`.
    #[default]
    System,
    /// No check, for journals whose trusted fields were lost (say why in a comment).
    Any,
}

/// Log files the daemon tries, in order, for an sshd jail whose source is `auto` and whose
/// journal holds no sshd entries (Debian/Ubuntu, then RHEL/Fedora).
pub const SSHD_LOG_FILES: &[&str] = &["/var/log/auth.log", "/var/log/secure"];

/// Journal matches of sshd: OpenSSH < 9.8 logs as `sshd`, 9.8+ also as `sshd-session`
/// (same field, so journalctl ORs them).
pub const SSHD_JOURNAL_MATCHES: &[&str] =
    &["SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"];

/// Where a service usually logs: what `auto` (and a journal source without matches) means
/// for a jail of that service's built-in filter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ServiceSources {
    /// Log files tried in order when the journal holds none of the service's entries
    /// (Debian/Ubuntu first); the first that exists, else the first (waited for).
    pub log_files: &'static [&'static str],
    /// journalctl matches of the service's entries, by fields journald records itself
    /// where the service runs as a unit (`_SYSTEMD_UNIT`), never text a sender chooses
    /// alone.
    pub journal_matches: &'static [&'static str],
}

/// sshd's sources: [`SSHD_LOG_FILES`], [`SSHD_JOURNAL_MATCHES`].
pub const SSHD_SOURCES: ServiceSources = ServiceSources {
    log_files: SSHD_LOG_FILES,
    journal_matches: SSHD_JOURNAL_MATCHES,
};

/// The default sources of each built-in filter other than sshd, by filter name.
pub const SERVICE_SOURCES: &[(&str, ServiceSources)] = &[
    (
        "dovecot",
        ServiceSources {
            log_files: &["/var/log/mail.log", "/var/log/maillog"],
            journal_matches: &["_SYSTEMD_UNIT=dovecot.service"],
        },
    ),
    (
        "postfix-sasl",
        ServiceSources {
            log_files: &["/var/log/mail.log", "/var/log/maillog"],
            // Debian runs Postfix as postfix@-.service (postfix.service is a wrapper).
            journal_matches: &[
                "_SYSTEMD_UNIT=postfix@-.service",
                "_SYSTEMD_UNIT=postfix.service",
            ],
        },
    ),
    // The web and FTP servers write their own files (nginx and Apache also log their
    // start-up to the journal, which would hide the files from `auto`): files only.
    (
        "nginx-http-auth",
        ServiceSources {
            log_files: &["/var/log/nginx/error.log"],
            journal_matches: &[],
        },
    ),
    (
        "nginx-botsearch",
        ServiceSources {
            log_files: &["/var/log/nginx/error.log"],
            journal_matches: &[],
        },
    ),
    (
        "apache-auth",
        ServiceSources {
            log_files: &["/var/log/apache2/error.log", "/var/log/httpd/error_log"],
            journal_matches: &[],
        },
    ),
    (
        "apache-badbots",
        ServiceSources {
            log_files: &["/var/log/apache2/access.log", "/var/log/httpd/access_log"],
            journal_matches: &[],
        },
    ),
    (
        "vsftpd",
        ServiceSources {
            log_files: &["/var/log/vsftpd.log"],
            journal_matches: &[],
        },
    ),
    (
        "proftpd",
        ServiceSources {
            log_files: &["/var/log/proftpd/proftpd.log"],
            journal_matches: &[],
        },
    ),
];

/// The default sources of a jail's filter: its service's ([`SERVICE_SOURCES`]) for a
/// built-in name, sshd's for any other filter (a user filter names no service).
pub fn service_sources(filter: &FilterRef) -> ServiceSources {
    match filter {
        FilterRef::Named(name) => SERVICE_SOURCES
            .iter()
            .find(|(n, _)| n == name)
            .map_or(SSHD_SOURCES, |(_, s)| *s),
        _ => SSHD_SOURCES,
    }
}

/// Paths and process-wide settings (`[daemon]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Directory of the SQLite state (`state.db`).
    pub state_dir: PathBuf,
    /// Control socket path.
    pub socket: PathBuf,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// How log records are written when not sent to journald.
    pub log_format: LogFormat,
    /// IANA zone for zone-less log timestamps (checked to exist at load); `None` means the
    /// system zone.
    pub timezone: Option<String>,
    /// Directory of user filter files (see [`FilterRef::Named`]).
    pub filter_dir: PathBuf,
}

/// How the daemon writes its log records on stderr (`daemon.log_format`); under systemd
/// they go to journald with structured fields either way.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per record (the default).
    #[default]
    Text,
    /// One JSON object per line (time, level, message, fields), for log shippers.
    Json,
}

/// Log verbosity (`daemon.log_level`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Bans, unbans, start and stop (the default).
    Info,
    /// Every matched line.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The lowercase name, as `tracing`'s env filter takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// How bans reach the kernel (`[firewall]`). Field names match
/// `portcullis_firewall::FirewallConfig` where they overlap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallSettings {
    /// Which backend.
    pub backend: Backend,
    /// nftables table (family inet) and ipset name prefix; checked: letters, digits, `_`,
    /// `-`, at most 20 characters.
    pub table: String,
    /// nftables base chain priority.
    pub priority: i32,
    /// What happens to a banned packet.
    pub verdict: Verdict,
    /// Also filter the forward hook.
    pub hook_forward: bool,
    /// Empty the sets when the daemon stops (default: bans stay).
    pub flush_on_stop: bool,
    /// nftables: write and read ban set elements over netlink (default); `false`: through
    /// the `nft` CLI, which is also the fallback when netlink fails.
    pub netlink: bool,
}

/// Firewall backend (`firewall.backend`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// nftables when `nft` works, else ipset+iptables.
    Auto,
    /// nftables.
    Nft,
    /// ipset + iptables/ip6tables.
    Ipset,
    /// Touch no firewall (decide and log only).
    None,
}

/// What happens to a packet from a banned address (`firewall.verdict`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Discard silently.
    Drop,
    /// Answer with ICMP port unreachable.
    Reject,
}

/// `[campaign]`: the site-wide detectors and their optional ban action.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignSettings {
    /// Whether the site-wide detectors run at all (`campaign.enabled`).
    pub enabled: bool,
    /// The jails whose events feed the detectors; participants are banned in the first.
    /// Jails of this list that are not running are skipped.
    pub jails: Vec<String>,
    /// The distributed detector's knobs.
    pub campaign: portcullis_core::campaign::CampaignConfig,
    /// Ban a campaign's participants for this long (`campaign.ban`; `None`: alerts only).
    pub ban: Option<std::time::Duration>,
    /// The user-targeted detector's knobs, `None` when `campaign.targeted = false`.
    pub targeted: Option<portcullis_core::campaign::TargetedConfig>,
    /// Ban a user-targeted attack's participants for this long (`campaign.targeted_ban`).
    pub targeted_ban: Option<std::time::Duration>,
}

/// The Prometheus endpoint (`[metrics]`), off by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether the daemon serves `GET /metrics`.
    pub enabled: bool,
    /// Where it listens.
    pub listen: MetricsListen,
}

/// Where the metrics endpoint listens (`metrics.listen`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    /// A TCP address and port (`"127.0.0.1:9191"`, `"[::1]:9191"`).
    Tcp(std::net::SocketAddr),
    /// A Unix socket (`"unix:/run/portcullis/metrics.sock"`), created with mode 0660.
    Unix(PathBuf),
}

impl MetricsListen {
    /// `"ADDR:PORT"` or `"unix:/ABSOLUTE/PATH"`; the error says what was expected.
    pub fn parse(s: &str) -> Result<MetricsListen, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "expected an absolute socket path after \"unix:\", got {s:?}"
                ));
            }
            return Ok(MetricsListen::Unix(PathBuf::from(path)));
        }
        s.parse().map(MetricsListen::Tcp).map_err(|_| {
            format!(
                "expected \"ADDRESS:PORT\" (such as \"127.0.0.1:9191\" or \"[::1]:9191\") or \
                 \"unix:/PATH\", got {s:?}"
            )
        })
    }
}

impl fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsListen::Tcp(a) => write!(f, "{a}"),
            MetricsListen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Notification hooks (`[notify]`): programs run with a fixed argv and webhooks, each given
/// the event as JSON. Log text never becomes an argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// Programs to run, each a full argv (`argv[0]` an absolute path); the event JSON is on
    /// stdin. Never run through a shell.
    pub exec: Vec<Vec<String>>,
    /// URLs that receive an HTTP POST of the event JSON.
    pub webhooks: Vec<String>,
    /// Which events are sent.
    pub events: Vec<NotifyEvent>,
    /// Upper bound on one program run (writing its stdin included) or one HTTP request.
    pub timeout: std::time::Duration,
    /// Further tries of a failed webhook (with backoff).
    pub retries: u32,
    /// Hook runs (one per event and hook) that may wait for the hook workers; beyond this,
    /// new ones are dropped and counted.
    pub queue: usize,
}

/// Kinds of events hooks can receive (`notify.events`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A successful login after failed attempts from the same address.
    Breach,
    /// A successful root login.
    RootLogin,
    /// Every ban.
    Ban,
    /// Permanent bans only.
    PermanentBan,
    /// Reports of site-wide campaigns and user-targeted attacks (`[campaign]`).
    Campaign,
}

impl NotifyEvent {
    /// The name used in config and in the event JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Breach => "breach",
            NotifyEvent::RootLogin => "root_login",
            NotifyEvent::Ban => "ban",
            NotifyEvent::PermanentBan => "permanent_ban",
            NotifyEvent::Campaign => "campaign",
        }
    }
}

/// GeoIP databases (`[geoip]`): country and autonomous system of addresses in `scan`,
/// `investigate`, `status` and `bans`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoIpSettings {
    /// Where databases are looked for (`"auto"`) and relative names are resolved.
    pub directory: PathBuf,
    /// Which databases.
    pub databases: GeoIpDatabases,
}

/// `geoip.databases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoIpDatabases {
    /// Every known file name present in `directory` (none: silently no GeoIP).
    Auto,
    /// No GeoIP.
    Off,
    /// These files, in order (relative names joined to `directory`); a missing one is a
    /// warning naming it.
    Files(Vec<PathBuf>),
}

/// Network aggregation (`[networks]`): ban a network once enough of its addresses are
/// banned, widen by policy, and optionally by autonomous system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Banned addresses of one network (`v4_prefix`/`v6_prefix`) that ban it; `None`: off.
    pub threshold: Option<u32>,
    /// The IPv4 network first banned (`/24`).
    pub v4_prefix: u8,
    /// The IPv6 network first banned (`/48`).
    pub v6_prefix: u8,
    /// Banned networks inside one `widen_bits` wider network that ban the wider one;
    /// `None`: never widen.
    pub widen_after: Option<u32>,
    /// How many bits wider each step is.
    pub widen_bits: u8,
    /// The widest IPv4 network ever banned (a cap: `/16`).
    pub v4_widest: u8,
    /// The widest IPv6 network ever banned.
    pub v6_widest: u8,
    /// Banned addresses of one autonomous system that ban the system's prefixes holding
    /// them (needs an ASN database); `None`: off.
    pub asn_threshold: Option<u32>,
    /// How long a network ban lasts.
    pub bantime: std::time::Duration,
}
