//! `portcullis fleet`: the admin's side of fleet mode (docs/fleet.md). It talks to the NATS
//! server directly, with the admin's credentials (only they may publish under
//! `PREFIX.admin.>`), not to the local daemon: `init` creates the stream, `status` shows
//! it, `unban`/`allow`/`ban` publish a decision every node applies.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream;
use clap::{Args, Subcommand};
use ipnet::IpNet;
use portcullis_config::{Config, FleetSettings};
use portcullis_control::Target;
use portcullis_control::data::FleetStatus;

use crate::daemon::fleet::wire;

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The configuration whose [fleet] section names the servers, prefix and stream
    /// (default: /etc/portcullis/portcullis.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A server URL instead of fleet.servers.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The admin's nkey seed file (instead of the node's credentials in the configuration).
    #[arg(long, value_name = "FILE")]
    pub nkey_seed_file: Option<PathBuf>,
    /// The admin's .creds file.
    #[arg(long, value_name = "FILE", conflicts_with = "nkey_seed_file")]
    pub creds_file: Option<PathBuf>,
    #[command(subcommand)]
    pub action: FleetAction,
}

#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// Make an nkey for a node or an admin: the seed goes to FILE (mode 0600, for
    /// fleet.nkey_seed_file or --nkey-seed-file), the public key (U…) is printed, for
    /// `server-config`.
    Keygen {
        /// Where to write the seed (must not exist).
        file: PathBuf,
    },
    /// Print a nats-server configuration with JetStream and the fleet's permissions: each
    /// NODE=PUBKEY may publish only PREFIX.ban.NODE.> (and consume the stream); only the
    /// admin keys may publish PREFIX.admin.> and manage the stream.
    ServerConfig {
        /// A node and its public nkey, NAME=U… (repeat for each node).
        #[arg(long = "node", value_name = "NAME=PUBKEY", required = true)]
        nodes: Vec<String>,
        /// An admin's public nkey (repeat for each admin).
        #[arg(long = "admin", value_name = "PUBKEY", required = true)]
        admins: Vec<String>,
        /// The client port.
        #[arg(long, default_value_t = 4222)]
        port: u16,
        /// JetStream's storage directory.
        #[arg(long, default_value = "/var/lib/nats/jetstream")]
        store_dir: PathBuf,
    },
    /// Create (or update) the stream: every PREFIX.> subject, the last message per subject,
    /// kept as long as the longest ban (of the configuration's jails and fleet.max_ban,
    /// unless --max-age says otherwise).
    Init {
        /// How long messages stay in the stream (default: the longest temporary ban the
        /// configuration gives).
        #[arg(long, value_parser = parse_duration)]
        max_age: Option<Duration>,
    },
    /// The stream: messages, sequences, subjects, consumers.
    Status,
    /// Lift every ban of ADDR on every node.
    Unban {
        /// An address or network.
        target: String,
    },
    /// Allow ADDR on every node: its bans go, reports of it are ignored from now on.
    Allow {
        /// An address or network.
        target: String,
    },
    /// Ban ADDR on every node (permanently unless --duration): an admin's decision, which
    /// each node's allowlists and protected addresses still win over.
    Ban {
        /// An address or network (at most /24 or /48).
        target: String,
        /// How long (e.g. "1d"); permanent without it.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
}

/// Write a new user nkey's seed to `file` (0600, never over an existing file).
fn keygen(file: &std::path::Path) -> Result<ExitCode> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = nkeys::KeyPair::new_user();
    let seed = key.seed().context("cannot encode the seed")?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    writeln!(f, "{seed}").with_context(|| format!("cannot write {}", file.display()))?;
    println!("{}", key.public_key());
    Ok(ExitCode::SUCCESS)
}

/// The nats-server configuration of the fleet: JetStream on, one nkey user per node bound
/// to its own subjects, admins with the admin subjects and the stream API.
pub fn server_config(
    fleet: &FleetSettings,
    nodes: &[(String, String)],
    admins: &[String],
    port: u16,
    store_dir: &std::path::Path,
) -> Result<String> {
    let key_ok = |k: &str| {
        k.len() == 56 && k.starts_with('U') && k.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let (p, s) = (&fleet.prefix, &fleet.stream);
    let mut out = format!(
        "# nats-server configuration for a portcullis fleet (docs/fleet.md), written by\n\
         # `portcullis fleet server-config`. Prefix {p:?}, stream {s:?}.\n\
         port: {port}\n\
         jetstream {{\n  store_dir: {:?}\n}}\n\n\
         authorization {{\n  users = [\n",
        store_dir.display().to_string()
    );
    for (name, key) in nodes {
        anyhow::ensure!(
            portcullis_config::valid_node_name(name),
            "--node {name}: a node name is 1 to 64 letters, digits, '_' or '-'"
        );
        anyhow::ensure!(
            key_ok(key),
            "--node {name}: {key:?} is no public user nkey (U…)"
        );
        out += &format!(
            "    # node {name}: publishes only its own observations; reads the stream.\n\
             \x20   {{ nkey: {key}, permissions: {{\n\
             \x20     publish: {{ allow: [\"{p}.ban.{name}.>\", \"$JS.API.INFO\", \"$JS.API.STREAM.INFO.{s}\", \"$JS.API.CONSUMER.CREATE.{s}\", \"$JS.API.CONSUMER.CREATE.{s}.>\", \"$JS.API.CONSUMER.MSG.NEXT.{s}.>\", \"$JS.API.CONSUMER.INFO.{s}.>\"] }}\n\
             \x20     subscribe: {{ allow: [\"_INBOX.>\"] }}\n\
             \x20   }} }}\n"
        );
    }
    for key in admins {
        anyhow::ensure!(key_ok(key), "--admin: {key:?} is no public user nkey (U…)");
        out += &format!(
            "    # admin: unban/allow/ban everywhere, and the stream's management.\n\
             \x20   {{ nkey: {key}, permissions: {{\n\
             \x20     publish: {{ allow: [\"{p}.admin.>\", \"$JS.API.>\"] }}\n\
             \x20     subscribe: {{ allow: [\"_INBOX.>\"] }}\n\
             \x20   }} }}\n"
        );
    }
    out += "  ]\n}\n";
    Ok(out)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    portcullis_core::time::parse_duration(s).map_err(|e| e.to_string())
}

/// `portcullis fleet …`.
pub fn run(args: &FleetArgs) -> Result<ExitCode> {
    let (mut fleet, longest) = settings(args)?;
    match &args.action {
        FleetAction::Keygen { file } => return keygen(file),
        FleetAction::ServerConfig {
            nodes,
            admins,
            port,
            store_dir,
        } => {
            let nodes = nodes
                .iter()
                .map(|n| {
                    let (name, key) = n
                        .split_once('=')
                        .with_context(|| format!("--node {n:?}: expected NAME=PUBKEY"))?;
                    Ok((name.to_owned(), key.to_owned()))
                })
                .collect::<Result<Vec<_>>>()?;
            print!(
                "{}",
                server_config(&fleet, &nodes, admins, *port, store_dir)?
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Some(s) = &args.server {
        fleet.servers = vec![s.clone()];
    }
    if args.nkey_seed_file.is_some() || args.creds_file.is_some() {
        fleet.credentials.nkey_seed_file = args.nkey_seed_file.clone();
        fleet.credentials.creds_file = args.creds_file.clone();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(act(&fleet, longest, &args.action))
}

/// `[fleet]` of the configuration, and its longest temporary ban (the stream's default
/// retention: a node that was away for less than that misses nothing).
fn settings(args: &FleetArgs) -> Result<(FleetSettings, Duration)> {
    let default = PathBuf::from(portcullis_config::DEFAULT_CONFIG_PATH);
    let path = args
        .config
        .clone()
        .or_else(|| default.exists().then_some(default));
    let config = Config::load(path.as_deref(), None)?;
    let longest = config
        .jails
        .iter()
        .map(|j| j.config.maxtime)
        .chain([config.fleet.max_ban])
        .max()
        .unwrap_or(config.fleet.max_ban);
    Ok((config.fleet, longest))
}

fn target(s: &str) -> Result<IpNet> {
    Ok(Target::parse(s)
        .map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?
        .0)
}

async fn act(fleet: &FleetSettings, longest: Duration, action: &FleetAction) -> Result<ExitCode> {
    let opts = crate::daemon::fleet::connect_options(fleet, "admin")
        .await?
        .retry_on_initial_connect();
    let client = tokio::time::timeout(Duration::from_secs(10), opts.connect(fleet.servers.clone()))
        .await
        .context("no NATS server answered within 10 s")?
        .context("cannot connect to the NATS server")?;
    let js = jetstream::new(client);
    match action {
        // Answered by `run` without a connection.
        FleetAction::Keygen { .. } | FleetAction::ServerConfig { .. } => {}
        FleetAction::Init { max_age } => {
            let config = jetstream::stream::Config {
                name: fleet.stream.clone(),
                subjects: vec![format!("{}.>", fleet.prefix)],
                max_age: max_age.unwrap_or(longest),
                max_messages_per_subject: 1,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            };
            let info = match js.get_stream(&fleet.stream).await {
                Ok(_) => js
                    .update_stream(config)
                    .await
                    .context("update the stream")?,
                Err(_) => js
                    .create_stream(config)
                    .await
                    .context("create the stream")?
                    .cached_info()
                    .clone(),
            };
            println!(
                "stream {}: subjects {:?}, max age {}s, last message per subject",
                info.config.name,
                info.config.subjects,
                info.config.max_age.as_secs()
            );
        }
        FleetAction::Status => {
            let mut stream = js
                .get_stream(&fleet.stream)
                .await
                .with_context(|| format!("stream {}", fleet.stream))?;
            let info = stream.info().await.context("stream info")?;
            let s = &info.state;
            println!(
                "stream {}: {} messages ({} bytes), sequences {}..{}, {} subjects, {} consumers, max age {}s",
                info.config.name,
                s.messages,
                s.bytes,
                s.first_sequence,
                s.last_sequence,
                s.subjects_count,
                s.consumer_count,
                info.config.max_age.as_secs()
            );
        }
        FleetAction::Unban { target: t } => {
            admin(&js, fleet, "unban", target(t)?, None).await?;
        }
        FleetAction::Allow { target: t } => {
            admin(&js, fleet, "allow", target(t)?, None).await?;
        }
        FleetAction::Ban {
            target: t,
            duration,
        } => {
            let t = target(t)?;
            anyhow::ensure!(
                !crate::daemon::jail_set::fleet::too_wide(&t),
                "{t} is wider than /24 (IPv4) or /48 (IPv6): nodes refuse it"
            );
            let until = duration.map(|d| {
                portcullis_sources::wall_clock()
                    .saturating_add(d)
                    .as_micros()
            });
            admin(&js, fleet, "ban", t, until).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publish one admin decision and wait for the stream's acknowledgement.
async fn admin(
    js: &jetstream::Context,
    fleet: &FleetSettings,
    action: &str,
    target: IpNet,
    until_us: Option<i64>,
) -> Result<()> {
    let subject = wire::admin_subject(&fleet.prefix, action, &target);
    let body = serde_json::to_vec(&wire::Payload {
        until_us,
        jail: None,
        since_us: None,
    })?;
    let ack = js
        .publish(subject.clone(), body.into())
        .await
        .with_context(|| format!("publish {subject}"))?;
    let ack = tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .context("no acknowledgement within 5 s (may these credentials publish admin subjects?)")?
        .with_context(|| format!("publish {subject}"))?;
    println!(
        "{action} {target}: published as {subject}, stream sequence {}",
        ack.sequence
    );
    Ok(())
}

/// The fleet line of `portcullis status`.
pub fn status_line(f: &FleetStatus) -> String {
    let ignored: Vec<String> = f.ignored.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let origins: Vec<String> = f
        .origins
        .iter()
        .map(|(k, v)| format!("{} {v}", crate::text::escape_terminal(k)))
        .collect();
    format!(
        "fleet: node {}, {}, {}, applied through sequence {}; {} fleet bans in force{}; reports: {} published, {} queued, {} dropped; received: {} applied, ignored: {}{}\n",
        f.node,
        if f.connected {
            "connected"
        } else {
            "BROKER UNREACHABLE"
        },
        if f.consuming {
            "consuming"
        } else {
            "not consuming"
        },
        f.applied_seq,
        f.bans,
        if origins.is_empty() {
            String::new()
        } else {
            format!(" (by origin: {})", origins.join(", "))
        },
        f.published,
        f.queued,
        f.dropped,
        f.applied,
        if ignored.is_empty() {
            "none".to_string()
        } else {
            ignored.join(", ")
        },
        f.error
            .as_deref()
            .map(|e| format!("; error: {}", crate::text::escape_terminal(e)))
            .unwrap_or_default()
    )
}
