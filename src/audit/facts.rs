//! What `audit` found out about the host, before any judgement: the input of
//! [`super::judge::judge`], printed as is under `facts` by `--json`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use portcullis_core::Time;
use portcullis_host::accounts::{PasswdEntry, PasswordState, ShadowEntry};
use portcullis_host::key_files::KeyFile;
use portcullis_host::sshd_effective::{ConfigLine, EffectiveConfig, SshdVersion};
use serde::Serialize;

/// Everything gathered.
#[derive(Clone, Debug, Serialize)]
pub struct Facts {
    /// Today, in days since 1970-01-01 (shadow's unit), for expiry.
    pub today: i64,
    /// sshd.
    pub sshd: SshdFacts,
    /// Accounts with a login shell, and root; the others cannot log in at all.
    pub accounts: Vec<Account>,
    /// Accounts skipped because their shell lets nobody in.
    pub no_shell_accounts: usize,
    /// Why `/etc/shadow` could not be read (password states are then unknown).
    pub shadow_error: Option<String>,
    /// portcullis itself.
    pub portcullis: PortcullisFacts,
}

/// sshd's configuration as sshd sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SshdFacts {
    /// The main config file (the `-f` given to sshd, or the default).
    pub config_path: PathBuf,
    /// `sshd -V`, or why it failed.
    #[serde(serialize_with = "ser_result")]
    pub version: Result<SshdVersion, String>,
    /// `sshd -T`, or why it failed.
    #[serde(serialize_with = "ser_result")]
    pub global: Result<EffectiveConfig, String>,
    /// The remote address evaluated as "anyone on the internet" (not allowlisted).
    pub remote: IpAddr,
    /// `sshd -T -C user=U,host=R,addr=R` per account, for `remote`.
    pub per_user: BTreeMap<String, EffectiveConfig>,
    /// Each address a `Match Address` block names, evaluated per account.
    pub match_evals: Vec<MatchEval>,
    /// The setting lines of the config files (for where to fix).
    pub lines: Vec<ConfigLine>,
    /// What `sshd -T -C` could not evaluate.
    pub errors: Vec<String>,
    /// TCP sockets listening now on the ports sshd is configured for (`/proc/net/tcp*` of
    /// audit's own network namespace), or why they could not be read.
    #[serde(serialize_with = "ser_result")]
    pub listening_now: Result<Vec<std::net::SocketAddr>, String>,
}

/// One `Match Address` pattern or `Match LocalPort` port evaluated.
#[derive(Clone, Debug, Serialize)]
pub struct MatchEval {
    /// The `Match` line.
    pub line: ConfigLine,
    /// The address pattern (`192.0.2.0/24`), or `port 2222`.
    pub pattern: String,
    /// The address evaluated for it (`remote` for a `LocalPort` block).
    pub addr: IpAddr,
    /// The local port evaluated, for a `Match LocalPort` block.
    pub lport: Option<u16>,
    /// Per account.
    pub per_user: BTreeMap<String, EffectiveConfig>,
}

/// One account.
#[derive(Clone, Debug, Serialize)]
pub struct Account {
    /// Its passwd line.
    pub passwd: PasswdEntry,
    /// Its shadow line (`None`: none, or shadow unreadable).
    pub shadow: Option<ShadowEntry>,
    /// Its `authorized_keys` files (sshd's `AuthorizedKeysFile` for it).
    pub key_files: Vec<KeyFile>,
    /// The last key login the logs show.
    pub last_key_login: Option<KeyLogin>,
    /// The last remote login wtmp records (it does not say how: key or password).
    pub last_remote_login: Option<KeyLogin>,
}

impl Account {
    /// The login name.
    pub fn name(&self) -> &str {
        &self.passwd.name
    }

    /// The password state; `None` when unknown (shadow unreadable) or no shadow entry.
    pub fn password(&self) -> Option<PasswordState> {
        self.shadow.as_ref().map(|s| s.password)
    }
}

/// A login: an "Accepted publickey for USER" line, or a wtmp record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyLogin {
    /// When.
    #[serde(with = "portcullis_host::time_serde")]
    pub time: Time,
    /// From where.
    pub addr: IpAddr,
    /// The log it is in.
    pub source: String,
}

/// portcullis itself.
#[derive(Clone, Debug, Serialize)]
pub struct PortcullisFacts {
    /// The allowlist of the sshd jail (or every jail's, merged), loopback included.
    pub allowlist: Vec<IpNet>,
    /// The daemon over its control socket.
    pub daemon: DaemonState,
    /// The firewall table or sets.
    pub firewall: FirewallState,
}

/// What the control socket said.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DaemonState {
    /// It answered `status`.
    Running {
        /// Its version.
        version: String,
        /// Decides and logs only.
        dry_run: bool,
        /// Its jails.
        jails: Vec<String>,
        /// Firewall backend name.
        backend: String,
        /// Whether the last firewall transaction succeeded.
        backend_healthy: bool,
        /// Sources of the sshd jails (named `*ssh*`) that report an error: `key: error`.
        #[serde(default)]
        source_errors: Vec<String>,
    },
    /// Nothing listens on the socket.
    NotRunning {
        /// The client's error.
        why: String,
    },
    /// It could not be asked (permission, bad answer).
    Unknown {
        /// Why.
        why: String,
    },
}

/// Whether the kernel has portcullis' table (nftables) or sets (ipset).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FirewallState {
    /// Found.
    Present {
        /// What was found (`nft table inet portcullis`).
        what: String,
    },
    /// Looked for and not there.
    Missing {
        /// What was looked for.
        what: String,
    },
    /// Could not look (no nft/ipset, not root).
    Unknown {
        /// Why.
        why: String,
    },
}

fn ser_result<T: Serialize, S: serde::Serializer>(
    r: &Result<T, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum R<'a, T> {
        Ok(&'a T),
        Error(&'a str),
    }
    match r {
        Ok(v) => R::Ok(v).serialize(s),
        Err(e) => R::<T>::Error(e).serialize(s),
    }
}
