//! `[fleet]`: sharing bans with other servers over NATS JetStream (docs/fleet.md).
//!
//! Off by default; with `enabled = false` nothing else in the section is required and the
//! daemon is exactly the one without a fleet. What a node does with a ban another node
//! reports is the receiving policy (`members`, `protected`, `max_ban`,
//! `permanent_after_nodes`, `rate`): it holds whatever the sender says.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::error::ConfigError;
use crate::model::JailSpec;
use crate::raw::{Fleet, Loc, Located};

/// The largest `fleet.queue` (each queued report is one small message).
const MAX_QUEUE: u32 = 1_000_000;

/// The fleet settings (`[fleet]`), resolved and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    /// Whether this node joins a fleet at all.
    pub enabled: bool,
    /// NATS server URLs (`nats://HOST:PORT` or `tls://HOST:PORT`), tried in turn.
    pub servers: Vec<String>,
    /// This node's name in subjects; `None`: the host name (checked by the daemon).
    pub node: Option<String>,
    /// The subject prefix (`<prefix>.ban.<node>.<address-key>`).
    pub prefix: String,
    /// The JetStream stream holding the fleet's subjects.
    pub stream: String,
    /// How this node proves who it is to the server.
    pub credentials: FleetCredentials,
    /// The jails whose bans this node reports; empty: every jail.
    pub jails: Vec<String>,
    /// The fleet's own addresses: never banned from a report.
    pub members: Vec<IpNet>,
    /// Further addresses no report may ban (the admins' networks, say).
    pub protected: Vec<IpNet>,
    /// The longest a ban reported by other nodes is applied.
    pub max_ban: Duration,
    /// How many distinct nodes must report an address before its ban is permanent here;
    /// `None`: only an admin's decision makes a fleet ban permanent.
    pub permanent_after_nodes: Option<u32>,
    /// Reports taken from one node per second (its burst: ten seconds' worth).
    pub rate: u32,
    /// Own reports kept while the broker is unreachable (the oldest go first beyond it).
    pub queue: usize,
}

/// The credentials of `[fleet]`: at most one of the seed and the creds file, plus an
/// optional TLS client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetCredentials {
    /// An nkey seed file (`SU…`), for servers configured with `nkey` users.
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (JWT and seed), for operator/account setups.
    pub creds_file: Option<PathBuf>,
    /// A TLS client certificate (PEM) and its key.
    pub tls_cert: Option<PathBuf>,
    /// The TLS client key (PEM), with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The CA that signed the server's certificate (PEM).
    pub tls_ca: Option<PathBuf>,
}

impl Default for FleetSettings {
    fn default() -> FleetSettings {
        FleetSettings {
            enabled: false,
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            node: None,
            prefix: "portcullis".to_owned(),
            stream: "PORTCULLIS".to_owned(),
            credentials: FleetCredentials::default(),
            jails: Vec::new(),
            members: Vec::new(),
            protected: Vec::new(),
            max_ban: Duration::from_secs(86_400),
            permanent_after_nodes: Some(3),
            rate: 100,
            queue: 10_000,
        }
    }
}

/// Whether `name` is a node name: 1 to 64 ASCII letters, digits, `_` or `-` (one subject
/// token, and no `,`: the store lists reporting nodes comma-separated).
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `prefix` is a subject prefix: tokens of [`valid_node_name`]'s characters joined
/// by `.`.
fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.split('.').all(valid_node_name)
}

/// Resolve `[fleet]`; `error` builds a located error, `path` a path relative to its file.
pub(crate) fn resolve(
    f: &Fleet,
    jails: &[JailSpec],
    disabled: &[String],
    error: impl Fn(&Loc, &str, String) -> ConfigError,
    path: impl Fn(&Located<String>) -> PathBuf,
) -> Result<FleetSettings, ConfigError> {
    let d = FleetSettings::default();
    let enabled = f.enabled.as_ref().is_some_and(|e| e.value);
    let servers = f.servers.as_ref().map_or(d.servers, |s| s.value.clone());
    if let Some(s) = &f.servers {
        if s.value.is_empty() {
            return Err(error(
                &s.at,
                "fleet.servers",
                "expected at least one server URL".into(),
            ));
        }
        for (i, url) in s.value.iter().enumerate() {
            let rest = url
                .strip_prefix("nats://")
                .or_else(|| url.strip_prefix("tls://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                return Err(error(
                    &s.at,
                    &format!("fleet.servers[{i}]"),
                    format!("expected nats://HOST:PORT or tls://HOST:PORT, got {url:?}"),
                ));
            }
        }
    }
    let node = match &f.node {
        Some(n) if n.value.is_empty() => None,
        Some(n) if !valid_node_name(&n.value) => {
            return Err(error(
                &n.at,
                "fleet.node",
                format!(
                    "a node name is 1 to 64 letters, digits, '_' or '-', got {:?}",
                    n.value
                ),
            ));
        }
        Some(n) => Some(n.value.clone()),
        None => None,
    };
    let prefix = match &f.prefix {
        Some(p) if !valid_prefix(&p.value) => {
            return Err(error(
                &p.at,
                "fleet.prefix",
                format!(
                    "expected subject tokens of letters, digits, '_' or '-' joined by '.', got {:?}",
                    p.value
                ),
            ));
        }
        Some(p) => p.value.clone(),
        None => d.prefix,
    };
    let stream = match &f.stream {
        Some(s) if !valid_node_name(&s.value) => {
            return Err(error(
                &s.at,
                "fleet.stream",
                format!(
                    "a stream name is 1 to 64 letters, digits, '_' or '-', got {:?}",
                    s.value
                ),
            ));
        }
        Some(s) => s.value.clone(),
        None => d.stream,
    };
    let file = |v: &Option<Located<String>>| {
        v.as_ref()
            .filter(|v| !v.value.is_empty())
            .map(|v| (path(v), v.at.clone()))
    };
    let seed = file(&f.nkey_seed_file);
    let creds = file(&f.creds_file);
    if let (Some(_), Some((_, at))) = (&seed, &creds) {
        return Err(error(
            at,
            "fleet.creds_file",
            "give either nkey_seed_file or creds_file, not both".into(),
        ));
    }
    let (cert, key, ca) = (file(&f.tls_cert), file(&f.tls_key), file(&f.tls_ca));
    match (&cert, &key) {
        (Some((_, at)), None) => {
            return Err(error(
                at,
                "fleet.tls_cert",
                "a client certificate needs its key (fleet.tls_key)".into(),
            ));
        }
        (None, Some((_, at))) => {
            return Err(error(
                at,
                "fleet.tls_key",
                "a client key needs its certificate (fleet.tls_cert)".into(),
            ));
        }
        _ => {}
    }
    let shared = f.jails.as_ref().map_or_else(Vec::new, |j| j.value.clone());
    if let Some(j) = &f.jails {
        for (i, name) in j.value.iter().enumerate() {
            if !jails.iter().any(|s| s.name == *name) && !disabled.contains(name) {
                return Err(error(
                    &j.at,
                    &format!("fleet.jails[{i}]"),
                    format!("no jail {name:?} is configured"),
                ));
            }
        }
    }
    let nets = |v: &Option<Located<Vec<crate::raw::Cidr>>>| {
        v.as_ref()
            .map_or_else(Vec::new, |v| v.value.iter().map(|c| c.0).collect())
    };
    let rate = match &f.rate {
        Some(r) if r.value == 0 => {
            return Err(error(
                &r.at,
                "fleet.rate",
                "expected at least 1 report per second".into(),
            ));
        }
        Some(r) => r.value,
        None => d.rate,
    };
    let queue = match &f.queue {
        Some(q) if q.value == 0 || q.value > MAX_QUEUE => {
            return Err(error(
                &q.at,
                "fleet.queue",
                format!("expected 1 to {MAX_QUEUE} queued reports"),
            ));
        }
        Some(q) => q.value as usize,
        None => d.queue,
    };
    let permanent_after_nodes = match &f.permanent_after_nodes {
        Some(k) if k.value.0 == Some(1) => {
            return Err(error(
                &k.at,
                "fleet.permanent_after_nodes",
                "one node alone never makes a fleet ban permanent: expected 2 or more, or false"
                    .into(),
            ));
        }
        Some(k) => k.value.0,
        None => d.permanent_after_nodes,
    };
    Ok(FleetSettings {
        enabled,
        servers,
        node,
        prefix,
        stream,
        credentials: FleetCredentials {
            nkey_seed_file: seed.map(|(p, _)| p),
            creds_file: creds.map(|(p, _)| p),
            tls_cert: cert.map(|(p, _)| p),
            tls_key: key.map(|(p, _)| p),
            tls_ca: ca.map(|(p, _)| p),
        },
        jails: shared,
        members: nets(&f.members),
        protected: nets(&f.protected),
        max_ban: f.max_ban.as_ref().map_or(d.max_ban, |m| m.value.0),
        permanent_after_nodes,
        rate,
        queue,
    })
}
