//! Gathering the [`Facts`]: sshd asked with `-T` (per account and per `Match Address`
//! network with `-C`), passwd/shadow and key files read under a root directory, the auth
//! logs read for key logins, the daemon asked over its socket, the firewall looked at with
//! `nft`/`ipset`. Every path and program comes from [`Sources`], so tests point it at their
//! own trees and configs. Nothing here judges.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use ipnet::IpNet;
use portcullis_config::{Backend, Config};
use portcullis_control::data::StatusData;
use portcullis_control::{Client, ClientError, Command};
use portcullis_core::Time;
use portcullis_host::accounts::{
    PASSWD_PATH, PasswordState, SHADOW_PATH, read_passwd, read_shadow,
};
use portcullis_host::key_files::{expand_key_path, inspect_key_file};
use portcullis_host::sshd_effective::{
    ConnectionSpec, EffectiveConfig, MatchTarget, SSHD_PATH, config_lines, effective_config,
    match_targets, sshd_version,
};
use portcullis_sources::JournalLocation;

use super::facts::{
    Account, DaemonState, Facts, FirewallState, KeyLogin, MatchEval, PortcullisFacts, SshdFacts,
};
use crate::cli::AuditArgs;
use crate::filters::{resolve_filter, time_zone};
use crate::investigate::logs::{LogInput, Query, default_log_files, read_logs};
use crate::offline::OfflineJail;
use crate::text::chain;

/// Candidates for "a client anywhere on the internet", first one outside the allowlist wins.
const REMOTE_CANDIDATES: [&str; 3] = ["203.0.113.77", "198.51.100.77", "192.0.2.77"];
/// The user of the global evaluation when sshd insists on a connection to test.
const NO_SUCH_USER: &str = "portcullis-audit-no-such-user";
/// At most this many `sshd -T -C` runs per audit (accounts × Match networks).
const MAX_EVALUATIONS: usize = 400;

/// Where everything is read from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The sshd program.
    pub sshd: PathBuf,
    /// `-f` for sshd; `None`: sshd's default.
    pub sshd_config: Option<PathBuf>,
    /// The passwd file.
    pub passwd: PathBuf,
    /// The shadow file.
    pub shadow: PathBuf,
    /// Home directories and key files are read under this directory.
    pub root: PathBuf,
    /// The address evaluated as "anyone".
    pub remote: Option<IpAddr>,
    /// Logs to read for key logins (`None`: none read).
    pub logs: Option<LogInput>,
    /// Key logins already known (investigate read the logs): skip reading them again.
    pub key_logins: Option<BTreeMap<String, KeyLogin>>,
    /// portcullis' configuration.
    pub config: Config,
    /// Its control socket.
    pub socket: PathBuf,
    /// Words run before `nft`/`ipset` (`ip netns exec NAME`).
    pub firewall_prefix: Vec<String>,
    /// The proc filesystem (listening sockets).
    pub proc_root: PathBuf,
    /// wtmp files, oldest first (missing ones skipped).
    pub wtmp: Vec<PathBuf>,
    /// Now.
    pub now: Time,
}

impl Sources {
    /// From `audit`'s flags.
    pub fn from_args(args: &AuditArgs) -> Result<Sources> {
        let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let under = |p: &str| root.join(p.trim_start_matches('/'));
        let config = match &args.config {
            Some(p) => Config::load(Some(p), None)?,
            None => {
                let main = Path::new(portcullis_config::DEFAULT_CONFIG_PATH);
                let conf_d = Path::new(portcullis_config::DEFAULT_CONF_D);
                if main.exists() {
                    Config::load(Some(main), conf_d.is_dir().then_some(conf_d))?
                } else {
                    Config::embedded_default()?
                }
            }
        };
        let sshd_config = args.sshd_config.clone().or_else(|| {
            let p = under("etc/ssh/sshd_config");
            (args.root.is_some() && p.exists()).then_some(p)
        });
        let logs = if !args.logs.is_empty() {
            Some(LogInput::Files(args.logs.clone()))
        } else if args.journal {
            Some(LogInput::Journal(JournalLocation::System))
        } else {
            let files = default_log_files(&under("var/log"));
            if !files.is_empty() {
                Some(LogInput::Files(files))
            } else if args.root.is_none() && has_journalctl() {
                Some(LogInput::Journal(JournalLocation::System))
            } else {
                None
            }
        };
        let now = match &args.now {
            Some(t) => Time::from(
                t.parse::<jiff::Timestamp>()
                    .with_context(|| format!("--now {t:?}: not an RFC 3339 time"))?,
            ),
            None => portcullis_sources::wall_clock(),
        };
        let wtmp = if args.wtmp.is_empty() {
            vec![under("var/log/wtmp.1"), under("var/log/wtmp")]
        } else {
            args.wtmp.clone()
        };
        Ok(Sources {
            sshd: args.sshd.clone(),
            sshd_config,
            passwd: args.passwd.clone().unwrap_or_else(|| under(PASSWD_PATH)),
            shadow: args.shadow.clone().unwrap_or_else(|| under(SHADOW_PATH)),
            root,
            remote: args.remote_addr,
            logs,
            key_logins: None,
            config,
            socket: args.socket.clone(),
            firewall_prefix: args
                .firewall_prefix
                .as_deref()
                .map(|w| w.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            proc_root: args.proc.clone().unwrap_or_else(|| PathBuf::from("/proc")),
            wtmp,
            now,
        })
    }

    /// For `investigate`: the live host, its `--sshd-config`, configuration and socket, and
    /// the key logins it already read.
    pub fn for_investigate(
        sshd_config: Option<PathBuf>,
        config: Config,
        socket: PathBuf,
        key_logins: BTreeMap<String, KeyLogin>,
        wtmp: Vec<PathBuf>,
        now: Time,
    ) -> Sources {
        Sources {
            sshd: SSHD_PATH.into(),
            sshd_config,
            passwd: PASSWD_PATH.into(),
            shadow: SHADOW_PATH.into(),
            root: "/".into(),
            remote: None,
            logs: None,
            key_logins: Some(key_logins),
            config,
            socket,
            firewall_prefix: Vec::new(),
            proc_root: "/proc".into(),
            wtmp,
            now,
        }
    }
}

fn has_journalctl() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("journalctl").is_file()))
}

/// Gather everything; what cannot be read becomes a warning (or a fact the judgement
/// reports, like sshd failing). Errors only for what makes the audit meaningless.
pub fn gather(src: &Sources) -> Result<(Facts, Vec<String>)> {
    let mut warnings = Vec::new();
    let allowlist = allowlist(&src.config);
    let remote = src.remote.unwrap_or_else(|| {
        REMOTE_CANDIDATES
            .iter()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .find(|a| !allowlist.iter().any(|n| n.contains(a)))
            .unwrap_or(IpAddr::from([203, 0, 113, 77]))
    });

    let passwd = read_passwd(&src.passwd).map_err(|e| anyhow!(chain(&e)))?;
    let (shadow, shadow_error) = match read_shadow(&src.shadow) {
        Ok(s) => (s, None),
        Err(e) => {
            let msg = format!("{}; password states are unknown (run as root)", chain(&e));
            warnings.push(msg.clone());
            (Vec::new(), Some(msg))
        }
    };

    let config_path = src
        .sshd_config
        .clone()
        .unwrap_or_else(|| PathBuf::from(portcullis_host::SSHD_CONFIG_PATH));
    let version = sshd_version(&src.sshd).map_err(|e| chain(&e));
    let lines = config_lines(&config_path);
    let global = match effective_config(&src.sshd, src.sshd_config.as_deref(), None) {
        // A config with `Match LocalPort` is refused without a connection to test: ask for
        // a client at `remote` on sshd's first port, as a user no block names.
        Err(e) if chain(&e).contains("not in connection test specification") => {
            let port = lines
                .iter()
                .find(|l| l.keyword == "port" && l.in_match.is_none())
                .and_then(|l| l.value.parse().ok())
                .unwrap_or(22);
            let spec = ConnectionSpec {
                user: NO_SUCH_USER.into(),
                addr: remote,
                lport: Some(port),
            };
            effective_config(&src.sshd, src.sshd_config.as_deref(), Some(&spec))
        }
        other => other,
    }
    .map_err(|e| {
        let mut msg = chain(&e);
        if !rustix::process::geteuid().is_root() {
            msg.push_str(" (sshd -T reads the host keys: run audit as root)");
        }
        msg
    });

    let mut no_shell = 0;
    let mut accounts: Vec<Account> = Vec::new();
    for p in passwd {
        if p.name != "root" && !p.shell_usable() {
            no_shell += 1;
            continue;
        }
        let shadow = shadow.iter().find(|s| s.name == p.name).cloned();
        accounts.push(Account {
            passwd: p,
            shadow,
            key_files: Vec::new(),
            last_key_login: None,
            last_remote_login: None,
        });
    }

    let mut errors = Vec::new();
    let mut per_user: BTreeMap<String, EffectiveConfig> = BTreeMap::new();
    let mut match_evals = Vec::new();
    let mut runs = 0usize;
    if let Ok(g) = &global {
        // sshd -T -C refuses a config with `Match LocalPort` unless lport is given: connect
        // to sshd's first port unless a block says otherwise.
        let default_port: u16 = g.get("port").and_then(|p| p.parse().ok()).unwrap_or(22);
        let mut eval = |user: &str, addr: IpAddr, lport: Option<u16>, errors: &mut Vec<String>| {
            if runs >= MAX_EVALUATIONS {
                return None;
            }
            runs += 1;
            let spec = ConnectionSpec {
                user: user.to_string(),
                addr,
                lport,
            };
            if spec.arg().is_none() {
                errors.push(format!(
                    "user name {user:?} cannot be evaluated with sshd -C"
                ));
                return None;
            }
            match effective_config(&src.sshd, src.sshd_config.as_deref(), Some(&spec)) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(chain(&e));
                    None
                }
            }
        };
        for a in &accounts {
            if let Some(c) = eval(a.name(), remote, Some(default_port), &mut errors) {
                per_user.insert(a.name().to_string(), c);
            }
        }
        // Match Address networks: the accounts a password could log in (and root).
        let candidates: Vec<&Account> = accounts
            .iter()
            .filter(|a| {
                a.name() == "root" || matches!(a.password(), Some(PasswordState::Usable) | None)
            })
            .collect();
        for (line, target) in match_targets(&lines) {
            let (pattern, addr, lport) = match target {
                MatchTarget::Address(p, a) => (p, a, None),
                MatchTarget::LocalPort(p) => (format!("port {p}"), remote, Some(p)),
            };
            let mut m = MatchEval {
                line,
                pattern,
                addr,
                lport,
                per_user: BTreeMap::new(),
            };
            for a in &candidates {
                if let Some(c) = eval(a.name(), addr, lport, &mut errors) {
                    m.per_user.insert(a.name().to_string(), c);
                }
            }
            match_evals.push(m);
        }
        if runs >= MAX_EVALUATIONS {
            warnings.push(format!(
                "stopped after {MAX_EVALUATIONS} sshd -T evaluations; later accounts and Match \
                 networks were judged by the global configuration"
            ));
        }
    }
    for e in &errors {
        warnings.push(e.clone());
    }

    // Key files, per account's AuthorizedKeysFile.
    for a in &mut accounts {
        let cfg = per_user
            .get(a.name())
            .or(global.as_ref().ok())
            .cloned()
            .unwrap_or_default();
        let patterns = cfg
            .get("authorizedkeysfile")
            .unwrap_or(".ssh/authorized_keys .ssh/authorized_keys2")
            .to_string();
        for pat in patterns.split_whitespace().filter(|p| *p != "none") {
            let path = expand_key_path(pat, a.name(), a.passwd.uid, &a.passwd.home);
            a.key_files.push(inspect_key_file(
                &src.root,
                &path,
                a.passwd.uid,
                &a.passwd.home,
            ));
        }
    }

    // Key logins from the logs.
    let key_logins = match &src.key_logins {
        Some(k) => k.clone(),
        None => match &src.logs {
            Some(input) => match key_logins(input, &src.config) {
                Ok((k, errors)) => {
                    for e in errors {
                        warnings.push(format!("key logins: {e}"));
                    }
                    k
                }
                Err(e) => {
                    warnings.push(format!("key logins not read: {e:#}"));
                    BTreeMap::new()
                }
            },
            None => {
                warnings.push(
                    "no auth log found: key logins unknown (give --logs FILE… or --journal)".into(),
                );
                BTreeMap::new()
            }
        },
    };
    let remote_logins = last_remote_logins(&src.wtmp, &mut warnings);
    for a in &mut accounts {
        a.last_key_login = key_logins.get(a.name()).cloned();
        a.last_remote_login = remote_logins.get(a.name()).cloned();
    }

    let listening_now = match &global {
        Ok(g) => listening_now(&src.proc_root, g),
        Err(_) => Err("sshd's ports are unknown".to_string()),
    };
    let daemon = daemon_state(&src.socket);
    let firewall = firewall_state(src, &daemon);
    let today = src.now.as_secs().div_euclid(86_400);
    Ok((
        Facts {
            today,
            sshd: SshdFacts {
                config_path,
                version,
                global,
                remote,
                per_user,
                match_evals,
                lines,
                errors,
                listening_now,
            },
            accounts,
            no_shell_accounts: no_shell,
            shadow_error,
            portcullis: PortcullisFacts {
                allowlist,
                daemon,
                firewall,
            },
        },
        warnings,
    ))
}

/// The sshd jail's allowlist, or every jail's when none is called sshd.
fn allowlist(config: &Config) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = match config.jail("sshd") {
        Some(j) => j.config.allowlist.clone(),
        None => config
            .jails
            .iter()
            .flat_map(|j| j.config.allowlist.iter().copied())
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// The last key login per user in `input`, through the sshd jail's filter (journal records
/// are believed only when journald vouches for sshd, as everywhere).
/// Also the sources that could not be read, as `name: error`.
pub fn key_logins(
    input: &LogInput,
    config: &Config,
) -> Result<(BTreeMap<String, KeyLogin>, Vec<String>)> {
    let tz = time_zone(None, config)?;
    let spec = config
        .jail("sshd")
        .or_else(|| config.jails.first())
        .ok_or_else(|| anyhow!("the configuration has no jail to read sshd logs with"))?;
    let mut runner = OfflineJail::new(spec, &resolve_filter(spec, &config.daemon.filter_dir, &tz)?);
    // Key logins only: no jail feeds the site-wide detectors here.
    let mut site = crate::campaigns::OfflineSite::new(&config.campaign, &[]);
    let scan = read_logs(input, &mut runner, &Query::default(), tz, &mut site)?;
    let errors = scan
        .sources
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.name)))
        .collect();
    Ok((last_key_logins(&scan.successes), errors))
}

/// The last `publickey` success per user.
pub fn last_key_logins(
    successes: &[crate::investigate::logs::LogSuccess],
) -> BTreeMap<String, KeyLogin> {
    let mut out: BTreeMap<String, KeyLogin> = BTreeMap::new();
    for s in successes {
        if s.method.as_deref() != Some("publickey") {
            continue;
        }
        let Some(user) = &s.user else { continue };
        let login = KeyLogin {
            time: s.time,
            addr: s.addr,
            source: s.source.to_string(),
        };
        match out.get(&**user) {
            Some(old) if old.time >= s.time => {}
            _ => {
                out.insert(user.to_string(), login);
            }
        }
    }
    out
}

/// Listening TCP sockets on the ports of `cfg`'s `port` and `listenaddress` values.
fn listening_now(
    proc_root: &Path,
    cfg: &EffectiveConfig,
) -> Result<Vec<std::net::SocketAddr>, String> {
    let mut ports: Vec<u16> = cfg
        .all("port")
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    ports.extend(
        cfg.all("listenaddress")
            .iter()
            .filter_map(|l| l.rsplit(':').next().and_then(|p| p.parse::<u16>().ok())),
    );
    let sockets = portcullis_host::read_proc_net_tcp(proc_root).map_err(|e| chain(&e))?;
    let mut out: Vec<std::net::SocketAddr> = sockets
        .into_iter()
        .filter(|s| s.state == portcullis_host::TcpState::Listen && ports.contains(&s.local.port()))
        .map(|s| s.local)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The last login with a remote address per user in the wtmp files (missing files skipped,
/// unreadable ones warned about).
fn last_remote_logins(files: &[PathBuf], warnings: &mut Vec<String>) -> BTreeMap<String, KeyLogin> {
    let mut records = Vec::new();
    for f in files.iter().filter(|f| f.exists()) {
        match portcullis_host::read_utmp(f) {
            Ok(u) => records.extend(u.records),
            Err(e) => warnings.push(chain(&e)),
        }
    }
    let mut out: BTreeMap<String, KeyLogin> = BTreeMap::new();
    for l in portcullis_host::logins(&records) {
        let Some(addr) = l.addr else { continue };
        if addr.is_loopback() {
            continue;
        }
        if out.get(&l.user).is_none_or(|old| old.time <= l.start) {
            out.insert(
                l.user.clone(),
                KeyLogin {
                    time: l.start,
                    addr,
                    source: "wtmp".into(),
                },
            );
        }
    }
    out
}

fn daemon_state(socket: &Path) -> DaemonState {
    let mut client = match Client::connect_with_timeout(socket, Duration::from_secs(3)) {
        Ok(c) => c,
        Err(e @ ClientError::NotRunning { .. }) => {
            return DaemonState::NotRunning { why: chain(&e) };
        }
        Err(e) => return DaemonState::Unknown { why: chain(&e) },
    };
    let response = match client.request(Command::Status { jail: None }) {
        Ok(r) => r,
        Err(e) => return DaemonState::Unknown { why: chain(&e) },
    };
    match response.data_as::<StatusData>() {
        Ok(d) => DaemonState::Running {
            version: d.version,
            dry_run: d.dry_run,
            source_errors: d
                .jails
                .iter()
                .filter(|j| j.name.contains("ssh"))
                .flat_map(|j| {
                    j.sources
                        .iter()
                        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.key)))
                })
                .collect(),
            jails: d.jails.into_iter().map(|j| j.name).collect(),
            backend: d.backend.name,
            backend_healthy: d.backend.healthy,
        },
        Err(e) => DaemonState::Unknown { why: e.message },
    }
}

fn firewall_state(src: &Sources, daemon: &DaemonState) -> FirewallState {
    let table = &src.config.firewall.table;
    let backend = match daemon {
        DaemonState::Running { backend, .. } => backend.as_str(),
        _ => match src.config.firewall.backend {
            Backend::Nft | Backend::Auto => "nftables",
            Backend::Ipset => "ipset",
            Backend::None => "none",
        },
    };
    let run = |argv: &[&str]| {
        let mut words: Vec<&str> = src.firewall_prefix.iter().map(String::as_str).collect();
        words.extend_from_slice(argv);
        let (prog, rest) = words.split_first()?;
        Some(Process::new(prog).args(rest).output())
    };
    match backend {
        "none" => FirewallState::Unknown {
            why: "firewall.backend = none: portcullis touches no firewall".into(),
        },
        "ipset" => {
            let what = format!("ipset sets {table}4/{table}6");
            match run(&["ipset", "list", "-n"]) {
                Some(Ok(o)) if o.status.success() => {
                    let text = String::from_utf8_lossy(&o.stdout);
                    if text.lines().any(|l| l == format!("{table}4")) {
                        FirewallState::Present { what }
                    } else {
                        FirewallState::Missing { what }
                    }
                }
                Some(Ok(o)) => FirewallState::Unknown {
                    why: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                },
                Some(Err(e)) => FirewallState::Unknown {
                    why: format!("cannot run ipset: {e}"),
                },
                None => FirewallState::Unknown {
                    why: "empty firewall prefix".into(),
                },
            }
        }
        _ => {
            let what = format!("nft table inet {table}");
            match run(&["nft", "list", "table", "inet", table]) {
                Some(Ok(o)) if o.status.success() => FirewallState::Present { what },
                Some(Ok(o)) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    if err.contains("No such file or directory") {
                        FirewallState::Missing { what }
                    } else {
                        FirewallState::Unknown {
                            why: err.trim().chars().take(300).collect(),
                        }
                    }
                }
                Some(Err(e)) => FirewallState::Unknown {
                    why: format!("cannot run nft: {e}"),
                },
                None => FirewallState::Unknown {
                    why: "empty firewall prefix".into(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::investigate::logs::LogSuccess;

    fn success(secs: i64, user: &str, method: &str, addr: &str) -> LogSuccess {
        LogSuccess {
            time: Time::from_secs(secs),
            user: Some(Arc::from(user)),
            addr: addr.parse().unwrap(),
            method: Some(Arc::from(method)),
            source: Arc::from("/var/log/auth.log"),
        }
    }

    #[test]
    fn the_last_key_login_per_user() {
        let k = last_key_logins(&[
            success(100, "root", "publickey", "192.0.2.1"),
            success(300, "root", "password", "192.0.2.9"),
            success(200, "root", "publickey", "192.0.2.2"),
            success(50, "alice", "publickey", "192.0.2.3"),
            success(400, "bob", "keyboard-interactive/pam", "192.0.2.4"),
        ]);
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k["root"].time, Time::from_secs(200));
        assert_eq!(k["root"].addr, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(k["alice"].source, "/var/log/auth.log");
    }

    #[test]
    fn the_allowlist_is_the_sshd_jails() {
        let config = Config::embedded_default().unwrap();
        let a = allowlist(&config);
        assert!(
            a.iter()
                .any(|n| n.contains(&"127.0.0.1".parse::<IpAddr>().unwrap()))
        );
    }
}
