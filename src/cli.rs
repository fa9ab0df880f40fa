//! Command-line syntax (clap derive).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Intrusion prevention: reads auth logs, bans brute-force addresses in the kernel firewall,
/// and tells you whether anyone got in.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (systemd runs it this way).
    Run(RunArgs),
    /// Replay log files offline through the whole pipeline (log time is the clock).
    Scan(ScanArgs),
    /// Jails, sources and their positions, counts, backend health.
    Status(StatusArgs),
    /// List active bans.
    Bans(BansArgs),
    /// Ban an address or network by hand.
    Ban(BanArgs),
    /// Lift a ban (or all bans).
    Unban(UnbanArgs),
    /// Re-read the configuration; on error the old one keeps running.
    Reload(CtlArgs),
    /// Remove every ban (of one jail, with --jail) from the firewall and the store.
    Flush(FlushArgs),
    /// A live dashboard of the running daemon: attempts per second, failing addresses and
    /// networks, bans with time left, breach alerts, sources; keys ban and unban.
    Top(TopArgs),
    /// What is going on, and did anyone get in? Connections, sessions, logins, attackers,
    /// findings (exit 1 when something is alarming); with ADDR, everything about one address.
    Investigate(Box<InvestigateArgs>),
    /// Is the door open? sshd's effective configuration, password logins (root above all),
    /// Match blocks, key files, limits, and whether portcullis protects sshd: each finding
    /// with the sshd_config line that fixes it and whether it is safe to apply now (exit 1
    /// when something is critical or high).
    Audit(Box<AuditArgs>),
    /// Run a filter over a log file or one line and count matches (like fail2ban-regex).
    TestFilter(crate::test_filter::TestFilterArgs),
    /// Write portcullis TOML for an existing Fail2Ban configuration (jails keep Fail2Ban's
    /// filter files) and report what was not carried over.
    ImportFail2ban(crate::fail2ban_cmd::ImportFail2BanArgs),
    /// Fleet admin (NATS JetStream, docs/fleet.md): create the stream, show it, and unban,
    /// allow or ban an address on every node, with the admin's credentials.
    Fleet(crate::fleet_cmd::FleetArgs),
    /// Write the man pages, shell completions and commented portcullis.toml the package
    /// ships (packaging/build-deb.sh).
    #[command(hide = true)]
    DistFiles(crate::dist_files::DistFilesArgs),
}

/// Where the daemon's control socket is, and how to print answers.
#[derive(Debug, Args, Clone)]
pub struct CtlArgs {
    /// Control socket of the daemon.
    #[arg(long, env = "PORTCULLIS_SOCKET", default_value = portcullis_config::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print the daemon's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

// Cloned by the daemon, which reads the configuration again at each reload.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Main configuration file (default: /etc/portcullis/portcullis.toml when it exists,
    /// else the embedded default that protects sshd).
    #[arg(long, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of extra *.toml files read after the main file.
    #[arg(long, env = "PORTCULLIS_CONF_D", value_name = "DIR")]
    pub conf_d: Option<PathBuf>,
    /// Run an existing Fail2Ban configuration directory (e.g. /etc/fail2ban) instead of
    /// portcullis TOML: its enabled jails, filters and ban policy; what is not carried over
    /// is logged as warnings at start (and at each reload, which reads it again).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "conf_d"])]
    pub fail2ban_config: Option<PathBuf>,
    /// State directory (SQLite database); overrides the configuration.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Control socket path; overrides the configuration.
    #[arg(long, env = "PORTCULLIS_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Decide and log, but touch no firewall.
    #[arg(long)]
    pub dry_run: bool,
    /// Run firewall commands through this prefix (e.g. "ip netns exec NAME"), for a
    /// firewall in another network namespace.
    #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
    pub firewall_prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Control socket of the daemon.
    #[arg(long, env = "PORTCULLIS_SOCKET", default_value = portcullis_config::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Seconds between polls of the daemon.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this jail.
    pub jail: Option<String>,
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Args)]
pub struct BansArgs {
    /// Only this jail.
    #[arg(long)]
    pub jail: Option<String>,
    /// Only bans within this network (ADDR or ADDR/PREFIX), e.g. 203.0.113.0/24.
    #[arg(long)]
    pub net: Option<String>,
    /// At most this many, oldest first (the human view says how many more there are).
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// Address or CIDR network.
    pub target: String,
    /// Jail to record the ban in (default: the first jail).
    #[arg(long)]
    pub jail: Option<String>,
    /// Length, e.g. 30m, 12h, 7d (default: the jail's escalation rule).
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "permanent")]
    pub duration: Option<String>,
    /// Ban until unbanned by hand.
    #[arg(long)]
    pub permanent: bool,
    /// Ban even an allowlisted address.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// Address or CIDR network.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub target: Option<String>,
    /// Lift every ban.
    #[arg(long)]
    pub all: bool,
    /// Only in this jail.
    #[arg(long)]
    pub jail: Option<String>,
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Only this jail.
    #[arg(long)]
    pub jail: Option<String>,
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Log files, plain or .gz, in any order; rotated sets are read oldest first.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Configuration file (default: the embedded sshd configuration).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Replay with the jails of a Fail2Ban configuration directory (e.g. /etc/fail2ban).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub fail2ban_config: Option<PathBuf>,
    /// Only run this jail.
    #[arg(long, value_name = "JAIL")]
    pub jail: Option<String>,
    /// Print a JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show every event and decision for one address, with the line that caused it.
    #[arg(long, value_name = "ADDR")]
    pub explain: Option<String>,
    /// Time zone for timestamps without an offset (IANA name; default: the system's).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Rows in the human table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// GeoIP database (.mmdb) to read instead of the configuration's [geoip]; repeat for
    /// several (a country and an ASN database).
    #[arg(long = "geoip", value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InvestigateArgs {
    /// Only this address: every log line about it, attempts per user, bans, connections.
    #[arg(value_name = "ADDR")]
    pub addr: Option<String>,
    /// Start of the period: a duration ago (2h, 7d) or a date (RFC 3339, YYYY-MM-DD,
    /// "YYYY-MM-DD HH:MM").
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// End of the period (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Auth logs to read, plain or .gz, rotated sets oldest first (default:
    /// /var/log/auth.log* or /var/log/secure*, else the journal).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "journal")]
    pub logs: Vec<PathBuf>,
    /// Read sshd's entries from the systemd journal instead of log files.
    #[arg(long)]
    pub journal: bool,
    /// Only events naming this user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Rows per table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// SSH ports to look at (default: from sshd_config, else 22).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Print one JSON document instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Configuration file whose sshd jail filter is used (default: the embedded one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// GeoIP database (.mmdb) to read instead of the configuration's [geoip]; repeat for
    /// several (a country and an ASN database).
    #[arg(long = "geoip", value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
    /// Time zone for timestamps without an offset and for --since/--until dates.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// The daemon's control socket, asked for current bans.
    #[arg(long, env = "PORTCULLIS_SOCKET", default_value = portcullis_config::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// The daemon's state database, read (read-only) for bans when the daemon does not answer.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/lib/portcullis/state.db"
    )]
    pub state_db: PathBuf,
    /// utmp file (tests).
    #[arg(long, hide = true, value_name = "FILE")]
    pub utmp: Option<PathBuf>,
    /// wtmp files, oldest first (tests).
    #[arg(long, hide = true, value_name = "FILE")]
    pub wtmp: Vec<PathBuf>,
    /// btmp files, oldest first (tests).
    #[arg(long, hide = true, value_name = "FILE")]
    pub btmp: Vec<PathBuf>,
    /// proc filesystem (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub proc: Option<PathBuf>,
    /// sshd_config (tests).
    #[arg(long, hide = true, value_name = "FILE")]
    pub sshd_config: Option<PathBuf>,
    /// Read this journal file instead of the system journal (tests; implies --journal).
    #[arg(long, hide = true, value_name = "FILE")]
    pub journal_file: Vec<PathBuf>,
    /// Pretend it is this time (RFC 3339), for reproducible reports (tests).
    #[arg(long, hide = true, value_name = "T")]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print one JSON document (the findings and the facts they were judged on).
    #[arg(long)]
    pub json: bool,
    /// sshd_config to judge, passed to `sshd -T -f` (default: sshd's own, or
    /// ROOT/etc/ssh/sshd_config with --root).
    #[arg(long, value_name = "FILE")]
    pub sshd_config: Option<PathBuf>,
    /// The sshd program asked for its effective configuration.
    #[arg(long, value_name = "FILE", default_value = portcullis_host::sshd_effective::SSHD_PATH)]
    pub sshd: PathBuf,
    /// Read passwd, shadow, home directories, key files and /var/log under this directory
    /// instead of / (a mounted image, a test tree).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The passwd file (default: ROOT/etc/passwd).
    #[arg(long, value_name = "FILE")]
    pub passwd: Option<PathBuf>,
    /// The shadow file (default: ROOT/etc/shadow).
    #[arg(long, value_name = "FILE")]
    pub shadow: Option<PathBuf>,
    /// The client address evaluated as "anyone on the internet" for Match blocks (default:
    /// a documentation address outside the allowlist).
    #[arg(long, value_name = "ADDR")]
    pub remote_addr: Option<IpAddr>,
    /// Auth logs read for the last key login of each account (default: /var/log/auth.log*
    /// or /var/log/secure*, else the journal).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "journal")]
    pub logs: Vec<PathBuf>,
    /// Read sshd's entries from the systemd journal for key logins.
    #[arg(long)]
    pub journal: bool,
    /// portcullis configuration for the allowlist and firewall table (default:
    /// /etc/portcullis/portcullis.toml with conf.d when it exists, else the embedded one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's control socket, asked whether portcullis runs.
    #[arg(long, env = "PORTCULLIS_SOCKET", default_value = portcullis_config::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Run nft/ipset through this prefix (e.g. "ip netns exec NAME") to look for the table.
    #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
    pub firewall_prefix: Option<String>,
    /// Pretend it is this time (RFC 3339), for account expiry (tests).
    #[arg(long, hide = true, value_name = "T")]
    pub now: Option<String>,
    /// proc filesystem, for the sockets listening now (tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub proc: Option<PathBuf>,
    /// wtmp files, oldest first (tests; default ROOT/var/log/wtmp.1 and wtmp).
    #[arg(long, hide = true, value_name = "FILE")]
    pub wtmp: Vec<PathBuf>,
}
