//! `portcullis run`: the daemon driver.
//!
//! One task owns all state (jail engines, store, firewall); sources run on their own threads
//! and control requests arrive over a channel, so no lock is ever held around a decision.
//! After each burst of input the loop drains every engine's decisions into ONE store
//! transaction (durable first) and ONE firewall transaction, then sleeps until the next
//! line, control request, ban expiry or maintenance tick.

mod control;
mod jails;
mod notify;
mod sources;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ipnet::IpNet;
use portcullis_config::{Backend, Config};
use portcullis_control::data::{
    AlertEntry, BackendStatus, BanData, BanEntry, BansData, FlushData, ReloadData, Reply,
    SourceStatus, StatusData, UnbanData,
};
use portcullis_control::{ErrorBody, ErrorKind, ServerConfig, Target};
use portcullis_core::event::{Alert, Ban, BanReason, UnbanReason};
use portcullis_core::jail::{Command as JailCommand, CommandError, Restored};
use portcullis_core::{Decision, Event, Time};
use portcullis_firewall::{Change, Firewall, FirewallConfig};
use portcullis_sources::wall_clock;
use portcullis_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::filters::{resolve_filter, time_zone};
use control::{ControlRequest, ControlSocket};
use jails::LiveJail;
use notify::Notifier;
use sources::{Batch, RunningSource, SourceKey};

/// How often source positions are written when no decision forces a write.
const POSITION_INTERVAL: Duration = Duration::from_secs(1);
/// How often history is pruned and the database tidied.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(300);
/// How long an unhealthy firewall waits before the store is re-applied to it.
const FIREWALL_RETRY: Duration = Duration::from_secs(30);

/// Entry point of `portcullis run`.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    if args.fail2ban_config.is_some() {
        // The import report is logged while loading: the subscriber must exist by then
        // (a Fail2Ban configuration has the embedded default's log level).
        init_logging(&Config::embedded_default().map_err(|e| anyhow!("{e}"))?);
    }
    let config = load_config(args)?;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut daemon = Daemon::start(args, config).await?;
        let code = daemon.main_loop().await;
        daemon.stop().await;
        code
    })
}

/// The configuration `run` uses: `--config`, else /etc/portcullis/portcullis.toml when it
/// exists (with its conf.d), else the embedded default; then the command-line overrides.
fn load_config(args: &RunArgs) -> Result<Config> {
    if let Some(dir) = &args.fail2ban_config {
        let mut config = crate::config::load_fail2ban(dir)?;
        if let Some(d) = &args.state_dir {
            config.daemon.state_dir = d.clone();
        }
        if let Some(s) = &args.socket {
            config.daemon.socket = s.clone();
        }
        return Ok(config);
    }
    let default_main = Path::new(portcullis_config::DEFAULT_CONFIG_PATH);
    let main: Option<PathBuf> = args
        .config
        .clone()
        .or_else(|| default_main.exists().then(|| default_main.to_path_buf()));
    let conf_d: Option<PathBuf> = args.conf_d.clone().or_else(|| {
        let d = Path::new(portcullis_config::DEFAULT_CONF_D);
        (args.config.is_none() && d.is_dir()).then(|| d.to_path_buf())
    });
    let mut config =
        Config::load(main.as_deref(), conf_d.as_deref()).map_err(|e| anyhow!("{e}"))?;
    if let Some(d) = &args.state_dir {
        config.daemon.state_dir = d.clone();
    }
    if let Some(s) = &args.socket {
        config.daemon.socket = s.clone();
    }
    Ok(config)
}

/// journald when started by systemd (it sets JOURNAL_STREAM), stderr otherwise; the level
/// from `RUST_LOG` or the configuration.
fn init_logging(config: &Config) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.daemon.log_level.as_str()));
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match journald {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .try_init(),
    };
}

struct Daemon {
    args_config: RunArgsSnapshot,
    config: Config,
    jails: Vec<LiveJail>,
    sources: Vec<RunningSource>,
    store: Store,
    firewall: Firewall,
    firewall_error: Option<String>,
    firewall_failed_at: Option<Instant>,
    dry_run: bool,
    lines_tx: mpsc::Sender<Batch>,
    lines_rx: mpsc::Receiver<Batch>,
    control_rx: mpsc::Receiver<ControlRequest>,
    control: Option<ControlSocket>,
    notifier: Notifier,
    started: Instant,
    last_positions: Instant,
    events: Vec<Event>,
}

/// The parts of the command line a reload needs again.
struct RunArgsSnapshot {
    config: Option<PathBuf>,
    conf_d: Option<PathBuf>,
    fail2ban_config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    socket: Option<PathBuf>,
}

impl RunArgsSnapshot {
    fn as_args(&self) -> RunArgs {
        RunArgs {
            config: self.config.clone(),
            conf_d: self.conf_d.clone(),
            fail2ban_config: self.fail2ban_config.clone(),
            state_dir: self.state_dir.clone(),
            socket: self.socket.clone(),
            dry_run: false,
            firewall_prefix: None,
        }
    }
}

/// The host's own addresses (`ip -j addr`), allowlisted in every jail so the host never bans
/// itself. Empty (with a warning) if `ip` is unavailable.
fn own_addresses() -> Vec<IpNet> {
    let out = match std::process::Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
    {
        Ok(o) if o.status.success() => o.stdout,
        _ => {
            tracing::warn!(
                "cannot list the host's addresses (ip -j addr); only the configured allowlist applies"
            );
            return Vec::new();
        }
    };
    let Ok(ifaces) = serde_json::from_slice::<Vec<serde_json::Value>>(&out) else {
        return Vec::new();
    };
    ifaces
        .iter()
        .filter_map(|i| i.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| a.get("local")?.as_str()?.parse::<std::net::IpAddr>().ok())
        .map(IpNet::from)
        .collect()
}

/// Build the jails of `config`, keeping the engines of `old` jails of the same name.
/// `preloaded`: the store's active bans when the caller already read them.
fn build_jails(
    config: &Config,
    store: &Store,
    now: Time,
    mut old: Vec<LiveJail>,
    preloaded: Option<&[Ban]>,
) -> Result<Vec<LiveJail>> {
    let tz = time_zone(None, config)?;
    let own = own_addresses();
    // The stored bans, read at most once for all jails (100k rows take ~0.2 s).
    let stored: std::borrow::Cow<'_, [Ban]> = match preloaded {
        Some(b) => std::borrow::Cow::Borrowed(b),
        None => std::borrow::Cow::Owned(store.active_bans(now)?),
    };
    let mut out = Vec::new();
    for spec in &config.jails {
        let mut spec = spec.clone();
        for a in &own {
            if !spec.config.allowlist.iter().any(|n| n.contains(&a.addr())) {
                spec.config.allowlist.push(*a);
            }
        }
        let spec = &spec;
        let filter = resolve_filter(spec, &config.daemon.filter_dir, &tz)?;
        // A jail that stays keeps its engine (windows, bans, history); a changed policy is
        // applied to it in place.
        let kept = old.iter().position(|j| j.spec.name == spec.name);
        let jail = match kept {
            Some(i) => LiveJail::with_engine(spec.clone(), filter, old.swap_remove(i)),
            None => {
                let bans: Vec<Ban> = stored
                    .iter()
                    .filter(|b| *b.jail == *spec.name)
                    .cloned()
                    .collect();
                let history = store.history(&spec.name, now.saturating_sub(spec.config.history))?;
                LiveJail::new(spec.clone(), filter, Restored { bans, history })
            }
        };
        out.push(jail);
    }
    Ok(out)
}

impl Daemon {
    async fn start(args: &RunArgs, config: Config) -> Result<Daemon> {
        let now = wall_clock();
        let state_dir = &config.daemon.state_dir;
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
        restrict_mode(state_dir);
        let store =
            Store::open(state_dir.join("state.db")).context("cannot open the state database")?;

        let firewall = if args.dry_run || config.firewall.backend == Backend::None {
            Firewall::dry_run()
        } else {
            let mut fw_config = FirewallConfig {
                table: config.firewall.table.clone(),
                priority: config.firewall.priority,
                verdict: match config.firewall.verdict {
                    portcullis_config::Verdict::Drop => portcullis_firewall::Verdict::Drop,
                    portcullis_config::Verdict::Reject => portcullis_firewall::Verdict::Reject,
                },
                hook_forward: config.firewall.hook_forward,
                ..FirewallConfig::default()
            };
            if let Some(prefix) = &args.firewall_prefix {
                fw_config.command_prefix = prefix.split_whitespace().map(str::to_string).collect();
            }
            match config.firewall.backend {
                Backend::Nft => Firewall::nft(fw_config)?,
                Backend::Ipset => Firewall::ipset(fw_config)?,
                _ => Firewall::detect(fw_config)
                    .await
                    .context("no usable firewall (nft or ipset+iptables)")?,
            }
        };
        // Read once: the engines are restored from it and the kernel is reconciled with it.
        let stored = store.active_bans(now)?;
        let jails = build_jails(&config, &store, now, Vec::new(), Some(&stored))?;

        let notifier = Notifier::start(&config.notify);
        let (lines_tx, lines_rx) = mpsc::channel(64);
        let (control_tx, control_rx) = mpsc::channel(16);
        let mut daemon = Daemon {
            args_config: RunArgsSnapshot {
                config: args.config.clone(),
                conf_d: args.conf_d.clone(),
                fail2ban_config: args.fail2ban_config.clone(),
                state_dir: args.state_dir.clone(),
                socket: args.socket.clone(),
            },
            config,
            jails,
            sources: Vec::new(),
            store,
            firewall,
            firewall_error: None,
            firewall_failed_at: None,
            dry_run: args.dry_run,
            lines_tx,
            lines_rx,
            control_rx,
            control: None,
            notifier,
            started: Instant::now(),
            last_positions: Instant::now(),
            events: Vec::new(),
        };
        daemon
            .firewall
            .setup()
            .await
            .context("firewall setup failed")?;
        daemon.reconcile_firewall_with(&stored).await;
        drop(stored);
        daemon.start_sources();
        let policy = ServerConfig::default();
        daemon.control = Some(ControlSocket::start(
            &daemon.config.daemon.socket,
            control_tx,
            policy,
        )?);
        tracing::info!(
            backend = daemon.firewall.backend_name(),
            jails = ?daemon.jails.iter().map(|j| j.name().to_string()).collect::<Vec<_>>(),
            socket = %daemon.config.daemon.socket.display(),
            "portcullis started"
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        Ok(daemon)
    }

    /// Put the store's active bans into the kernel: missing added, stale removed.
    async fn reconcile_firewall(&mut self) {
        let bans = match self.store.active_bans(wall_clock()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot read bans from the store: {e}");
                return;
            }
        };
        self.reconcile_firewall_with(&bans).await;
    }

    /// Put these bans into the kernel: missing added, stale removed.
    async fn reconcile_firewall_with(&mut self, bans: &[Ban]) {
        let now = wall_clock();
        let mut desired: HashMap<IpNet, Option<Duration>> = HashMap::new();
        for b in bans {
            let remaining = b.until.map(|u| u.since(now));
            let entry = desired.entry(b.target).or_insert(remaining);
            *entry = match (*entry, remaining) {
                (None, _) | (_, None) => None,
                (Some(a), Some(b)) => Some(a.max(b)),
            };
        }
        let desired: Vec<(IpNet, Option<Duration>)> = desired.into_iter().collect();
        match self.firewall.reconcile(&desired).await {
            Ok(report) => {
                tracing::info!(
                    bans = desired.len(),
                    added = report.added,
                    removed = report.removed,
                    "firewall reconciled with the store"
                );
                self.firewall_error = None;
                self.firewall_failed_at = None;
            }
            Err(e) => self.firewall_failed(format!("reconcile: {e}")),
        }
    }

    fn firewall_failed(&mut self, msg: String) {
        tracing::error!("firewall: {msg}");
        self.firewall_error = Some(msg);
        self.firewall_failed_at = Some(Instant::now());
    }

    fn start_sources(&mut self) {
        let mut keys: Vec<(SourceKey, Vec<usize>)> = Vec::new();
        for (j, jail) in self.jails.iter().enumerate() {
            for spec in &jail.spec.sources {
                let key = sources::resolve(spec);
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, js)) => js.push(j),
                    None => keys.push((key, vec![j])),
                }
            }
        }
        self.sources = keys
            .into_iter()
            .enumerate()
            .map(|(i, (key, jails))| {
                tracing::info!(source = %key.store_key(), "following");
                RunningSource::start(i, key, jails, &self.store, self.lines_tx.clone())
            })
            .collect();
    }

    /// Stop every source thread and process what they already sent, so positions are exact.
    async fn stop_sources(&mut self) {
        for s in &self.sources {
            s.request_stop();
        }
        let mut sources = std::mem::take(&mut self.sources);
        let joined = tokio::task::spawn_blocking(move || {
            for s in &mut sources {
                s.join();
            }
            sources
        })
        .await;
        match joined {
            Ok(s) => self.sources = s,
            Err(e) => tracing::error!("source thread panicked: {e}"),
        }
        while let Ok(batch) = self.lines_rx.try_recv() {
            self.process_batch(batch);
        }
        self.commit(true).await;
    }

    async fn main_loop(&mut self) -> Result<ExitCode> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        let mut position_tick = tokio::time::interval(POSITION_INTERVAL);
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = sighup.recv() => {
                    match self.reload().await {
                        Ok(d) => tracing::info!(jails = ?d.jails, "SIGHUP: configuration reloaded"),
                        Err(e) => tracing::error!("SIGHUP: reload failed, the old configuration stays: {}", e.message),
                    }
                }
                Some(req) = self.control_rx.recv() => {
                    let reply = self.handle_control(req.command).await;
                    let _ = req.reply.send(reply);
                }
                Some(batch) = self.lines_rx.recv() => {
                    self.process_batch(batch);
                    // Take whatever else is already queued: one commit for the burst.
                    for _ in 0..64 {
                        match self.lines_rx.try_recv() {
                            Ok(b) => self.process_batch(b),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(deadline) => {
                    let now = wall_clock();
                    for j in &mut self.jails {
                        j.engine.handle_timeout(now);
                    }
                }
                _ = position_tick.tick() => {
                    if self.firewall_failed_at.is_some_and(|t| t.elapsed() >= FIREWALL_RETRY) {
                        // Someone may have deleted our table: set it up again, then put the
                        // store's bans back.
                        if let Err(e) = self.firewall.setup().await {
                            self.firewall_failed(format!("setup: {e}"));
                        } else {
                            self.reconcile_firewall().await;
                        }
                    }
                }
                _ = watchdog_tick.tick(), if watchdog.is_some() => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                _ = maintenance.tick() => self.maintain(),
            }
            self.commit(false).await;
        }
        Ok(ExitCode::SUCCESS)
    }

    fn next_deadline(&self) -> Option<Time> {
        self.jails
            .iter()
            .filter_map(|j| j.engine.poll_timeout())
            .min()
    }

    fn process_batch(&mut self, batch: Batch) {
        let now = wall_clock();
        let Some(src) = self.sources.get_mut(batch.source) else {
            return;
        };
        let jails = src.jails.clone();
        if let Some(last) = batch.lines.last() {
            src.position = Some(last.position.clone());
            src.dirty = true;
        }
        for line in &batch.lines {
            for &j in &jails {
                if let Some(jail) = self.jails.get_mut(j)
                    && let Err(e) = jail.feed(batch.source, line, now, &mut self.events)
                {
                    tracing::error!("{e:#}");
                }
            }
        }
    }

    /// Drain every engine's decisions: store first (durable), then the firewall, in one
    /// transaction each. Positions ride along in the store transaction.
    async fn commit(&mut self, force_positions: bool) {
        let now = wall_clock();
        let mut decisions: Vec<Decision> = Vec::new();
        for j in &mut self.jails {
            while let Some(d) = j.engine.poll_decision() {
                if matches!(d, Decision::Ban(_)) {
                    j.total_bans += 1;
                }
                decisions.push(d);
            }
        }
        let positions_due = force_positions || self.last_positions.elapsed() >= POSITION_INTERVAL;
        let positions: Vec<(String, portcullis_store::SourcePosition)> =
            if positions_due || !decisions.is_empty() {
                self.sources
                    .iter_mut()
                    .filter(|s| s.dirty)
                    .filter_map(|s| {
                        s.dirty = false;
                        s.stored_position().map(|p| (s.key.store_key(), p))
                    })
                    .collect()
            } else {
                Vec::new()
            };
        if decisions.is_empty() && positions.is_empty() {
            return;
        }
        if let Err(e) = self.store.apply_with_positions(&decisions, &positions, now) {
            tracing::error!("cannot write decisions to the store: {e}");
        }
        self.last_positions = Instant::now();
        self.apply_firewall(&decisions, now).await;
        for d in &decisions {
            log_decision(d);
            self.notifier.decision(d);
        }
    }

    async fn apply_firewall(&mut self, decisions: &[Decision], now: Time) {
        let mut changes: Vec<Change> = Vec::new();
        for d in decisions {
            match d {
                Decision::Ban(ban) => {
                    // Another jail may ban the same target for longer: the kernel element
                    // carries the longest.
                    let timeout = self.effective_until(ban.target).map(|u| u.since(now));
                    let timeout = match (ban.until, timeout) {
                        (None, _) => None,
                        (Some(_), t) => t.or(ban.until.map(|u| u.since(now))),
                    };
                    changes.push(Change::Add {
                        target: ban.target,
                        timeout,
                    });
                }
                Decision::Unban { target, .. } => {
                    if self
                        .jails
                        .iter()
                        .any(|j| j.engine.active_ban(*target).is_some())
                    {
                        continue; // still banned by another jail
                    }
                    changes.push(Change::Remove { target: *target });
                }
                Decision::Alert(_) => {}
            }
        }
        if changes.is_empty() {
            return;
        }
        match self.firewall.apply(&changes).await {
            Ok(report) => {
                for r in &report.rejected {
                    tracing::error!("firewall refused {}: {:?}", r.target, r.reason);
                }
                self.firewall_error = None;
                self.firewall_failed_at = None;
            }
            Err(e) => self.firewall_failed(format!("apply: {e}")),
        }
    }

    /// The latest end among the jails' bans of `target` (`Some(None)` would be permanent;
    /// flattened: `None` = permanent or not banned, checked by the caller).
    fn effective_until(&self, target: IpNet) -> Option<Time> {
        let mut best: Option<Time> = None;
        for j in &self.jails {
            if let Some(b) = j.engine.active_ban(target) {
                match b.until {
                    None => return None,
                    Some(u) => best = Some(best.map_or(u, |x: Time| x.max(u))),
                }
            }
        }
        best
    }

    fn maintain(&mut self) {
        let keep = self
            .jails
            .iter()
            .map(|j| j.spec.config.history)
            .max()
            .unwrap_or(Duration::from_secs(7 * 86400));
        match self.store.prune(wall_clock(), keep) {
            Ok(stats) => tracing::debug!(?stats, "store pruned"),
            Err(e) => tracing::warn!("store prune failed: {e}"),
        }
        if let Err(e) = self.store.maintain() {
            tracing::warn!("store maintenance failed: {e}");
        }
    }

    async fn reload(&mut self) -> Result<ReloadData, ErrorBody> {
        let failed = |e: anyhow::Error| ErrorBody::new(ErrorKind::ReloadFailed, format!("{e:#}"));
        let config = load_config(&self.args_config.as_args()).map_err(failed)?;
        // Compile everything before touching the running state: errors leave it as it is.
        let tz = time_zone(None, &config).map_err(failed)?;
        for spec in &config.jails {
            resolve_filter(spec, &config.daemon.filter_dir, &tz).map_err(failed)?;
        }
        let mut warnings = Vec::new();
        if config.firewall != self.config.firewall {
            warnings.push(
                "firewall settings changed: they take effect at the next restart".to_string(),
            );
        }
        if config.daemon.socket != self.config.daemon.socket
            || config.daemon.state_dir != self.config.daemon.state_dir
        {
            warnings
                .push("state_dir/socket changed: they take effect at the next restart".to_string());
        }
        self.stop_sources().await;
        let old = std::mem::take(&mut self.jails);
        let now = wall_clock();
        match build_jails(&config, &self.store, now, old, None) {
            Ok(j) => self.jails = j,
            Err(e) => {
                // Cannot happen after the checks above short of a store failure; keep going
                // with what the store restores.
                tracing::error!("reload: {e:#}");
                return Err(failed(e));
            }
        }
        let socket = self.config.daemon.socket.clone();
        let state_dir = self.config.daemon.state_dir.clone();
        let firewall = self.config.firewall.clone();
        self.config = config;
        self.config.daemon.socket = socket;
        self.config.daemon.state_dir = state_dir;
        self.config.firewall = firewall;
        self.start_sources();
        Ok(ReloadData {
            jails: self.jails.iter().map(|j| j.name().to_string()).collect(),
            warnings,
        })
    }

    async fn handle_control(
        &mut self,
        command: portcullis_control::Command,
    ) -> Result<Reply, ErrorBody> {
        use portcullis_control::Command as C;
        let now = wall_clock();
        match command {
            C::Status { jail } => self.status(jail.as_deref()).await.map(Reply::Status),
            C::Bans { jail } => {
                self.check_jail(jail.as_deref())?;
                let mut bans: Vec<BanEntry> = self
                    .jails
                    .iter()
                    .filter(|j| jail.as_deref().is_none_or(|n| n == j.name()))
                    .flat_map(|j| j.engine.active_bans().collect::<Vec<_>>())
                    .map(|b| ban_entry(&b))
                    .collect();
                bans.sort_by_key(|b| (b.since, b.target.to_string()));
                Ok(Reply::Bans(BansData { bans }))
            }
            C::Ban {
                target,
                jail,
                duration,
                permanent,
                force,
            } => {
                let idx = self.jail_index(jail.as_deref())?;
                let cmd = JailCommand::Ban {
                    target: target.0,
                    duration: duration.map(Duration::from_secs),
                    permanent,
                    force,
                };
                self.jails[idx]
                    .engine
                    .handle_command(now, cmd)
                    .map_err(command_error)?;
                let ban = self.jails[idx]
                    .engine
                    .active_ban(target.0.trunc())
                    .ok_or_else(|| ErrorBody::new(ErrorKind::Internal, "ban not recorded"))?;
                self.commit(false).await;
                self.firewall_result()?;
                Ok(Reply::Ban(BanData {
                    ban: ban_entry(&ban),
                }))
            }
            C::Unban { target, jail, all } => {
                self.check_jail(jail.as_deref())?;
                let mut removed = Vec::new();
                for j in self
                    .jails
                    .iter_mut()
                    .filter(|j| jail.as_deref().is_none_or(|n| n == j.name()))
                {
                    let before: Vec<Ban> = j.engine.active_bans().collect();
                    let result = match (&target, all) {
                        (_, true) => j.engine.handle_command(now, JailCommand::UnbanAll),
                        (Some(t), false) => j
                            .engine
                            .handle_command(now, JailCommand::Unban { target: t.0 }),
                        (None, false) => Err(CommandError::NotBanned {
                            target: IpNet::from(std::net::IpAddr::from([0, 0, 0, 0])),
                        }),
                    };
                    if result.is_ok() {
                        removed.extend(
                            before
                                .iter()
                                .filter(|b| j.engine.active_ban(b.target).is_none())
                                .map(ban_entry),
                        );
                    }
                }
                // Bans the store holds for jails no longer configured.
                if let Some(t) = &target
                    && removed.is_empty()
                    && let Ok(gone) = self.store.remove_ban(jail.as_deref(), t.0)
                    && !gone.is_empty()
                {
                    let _ = self.firewall.apply(&[Change::Remove { target: t.0 }]).await;
                    removed.extend(gone.iter().map(ban_entry));
                }
                self.commit(false).await;
                if removed.is_empty() {
                    let what = target.map_or("anything".to_string(), |t| t.to_string());
                    return Err(ErrorBody::new(
                        ErrorKind::NotFound,
                        format!("{what} is not banned"),
                    ));
                }
                self.firewall_result()?;
                Ok(Reply::Unban(UnbanData { removed }))
            }
            C::Flush { jail } => {
                self.check_jail(jail.as_deref())?;
                let mut removed = 0u64;
                for j in self
                    .jails
                    .iter_mut()
                    .filter(|j| jail.as_deref().is_none_or(|n| n == j.name()))
                {
                    removed += j.engine.ban_count() as u64;
                    let _ = j.engine.handle_command(now, JailCommand::UnbanAll);
                    let _ = j.engine.handle_command(now, JailCommand::Flush);
                }
                self.commit(false).await;
                if jail.is_none() {
                    // Also whatever the store holds for jails no longer configured.
                    let _ = self.store.clear_bans();
                    self.reconcile_firewall().await;
                }
                self.firewall_result()?;
                Ok(Reply::Flush(FlushData { removed }))
            }
            C::Reload => self.reload().await.map(Reply::Reload),
        }
    }

    fn firewall_result(&self) -> Result<(), ErrorBody> {
        match &self.firewall_error {
            Some(e) => Err(ErrorBody::new(
                ErrorKind::Internal,
                format!(
                    "recorded in the store, but the firewall failed: {e} (retried every {}s)",
                    FIREWALL_RETRY.as_secs()
                ),
            )),
            None => Ok(()),
        }
    }

    fn check_jail(&self, jail: Option<&str>) -> Result<(), ErrorBody> {
        match jail {
            Some(name) if !self.jails.iter().any(|j| j.name() == name) => Err(ErrorBody::new(
                ErrorKind::NotFound,
                format!("no jail {name:?}"),
            )),
            _ => Ok(()),
        }
    }

    fn jail_index(&self, jail: Option<&str>) -> Result<usize, ErrorBody> {
        self.check_jail(jail)?;
        match jail {
            Some(name) => self.jails.iter().position(|j| j.name() == name),
            None => (!self.jails.is_empty()).then_some(0),
        }
        .ok_or_else(|| ErrorBody::new(ErrorKind::NotFound, "no jail configured"))
    }

    async fn status(&self, jail: Option<&str>) -> Result<StatusData, ErrorBody> {
        self.check_jail(jail)?;
        let health = self.firewall.health().await;
        let error = self.firewall_error.clone().or(health.last_error.clone());
        let jails = self
            .jails
            .iter()
            .enumerate()
            .filter(|(_, j)| jail.is_none_or(|n| n == j.name()))
            .map(|(idx, j)| portcullis_control::data::JailStatus {
                name: j.name().to_string(),
                active_bans: j.engine.ban_count() as u64,
                total_bans: j.total_bans,
                attempts: j.attempts,
                sources: self
                    .sources
                    .iter()
                    .filter(|s| s.jails.contains(&idx))
                    .map(|s| SourceStatus {
                        key: s.key.store_key(),
                        position: s.describe_position(),
                        lines: s.lines.load(Ordering::Relaxed),
                        error: s.error.lock().ok().and_then(|g| g.clone()),
                    })
                    .collect(),
            })
            .collect();
        Ok(StatusData {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            dry_run: self.dry_run,
            backend: BackendStatus {
                name: health.backend.to_string(),
                healthy: error.is_none() && health.counts.is_some(),
                error,
            },
            jails,
            alerts: self.recent_alerts(),
        })
    }

    fn recent_alerts(&self) -> Vec<AlertEntry> {
        let alerts = match self.store.recent_alerts(20) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("cannot read alerts: {e}");
                return Vec::new();
            }
        };
        alerts
            .into_iter()
            .map(|a| match a.alert {
                Alert::Breach {
                    addr,
                    user,
                    failures,
                    time,
                } => AlertEntry {
                    kind: "breach".into(),
                    time: time.as_secs(),
                    addr: addr.to_string(),
                    user: user.map(|u| u.to_string()),
                    failures,
                },
                Alert::RootLogin { addr, time } => AlertEntry {
                    kind: "root_login".into(),
                    time: time.as_secs(),
                    addr: addr.to_string(),
                    user: Some("root".into()),
                    failures: 0,
                },
            })
            .collect()
    }

    async fn stop(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if let Some(c) = self.control.take() {
            c.shutdown().await;
        }
        self.stop_sources().await;
        if let Err(e) = self
            .firewall
            .teardown(self.config.firewall.flush_on_stop)
            .await
        {
            tracing::warn!("firewall teardown: {e}");
        }
        tracing::info!("portcullis stopped");
    }
}

fn command_error(e: CommandError) -> ErrorBody {
    match e {
        CommandError::Allowlisted { .. } => ErrorBody::new(ErrorKind::Allowlisted, e.to_string()),
        CommandError::NotBanned { .. } => ErrorBody::new(ErrorKind::NotFound, e.to_string()),
        _ => ErrorBody::new(ErrorKind::Other, e.to_string()),
    }
}

fn ban_entry(b: &Ban) -> BanEntry {
    BanEntry {
        target: Target(b.target),
        jail: b.jail.to_string(),
        since: b.since.as_secs(),
        until: b.until.map(Time::as_secs),
        ban_no: b.ban_no,
        reason: match b.reason {
            BanReason::Threshold { .. } => "threshold",
            BanReason::Aggregate { .. } => "aggregate",
            BanReason::Manual => "manual",
            BanReason::Restored => "restored",
        }
        .to_string(),
    }
}

fn log_decision(d: &Decision) {
    match d {
        Decision::Ban(b) => match b.until {
            None => {
                tracing::warn!(jail = %b.jail, target = %b.target, ban_no = b.ban_no, "PERMANENT ban")
            }
            Some(u) => {
                tracing::info!(jail = %b.jail, target = %b.target, ban_no = b.ban_no, secs = u.since(b.since).as_secs(), "ban")
            }
        },
        Decision::Unban {
            target,
            jail,
            reason,
        } => {
            let reason = match reason {
                UnbanReason::Expired => "expired",
                UnbanReason::Manual => "manual",
                UnbanReason::Superseded => "superseded by a network ban",
            };
            tracing::info!(%jail, %target, reason, "unban");
        }
        Decision::Alert(Alert::Breach {
            addr,
            user,
            failures,
            time,
        }) => {
            tracing::warn!(%addr, user = ?user, failures, %time, "BREACH: successful login after failed attempts");
        }
        Decision::Alert(Alert::RootLogin { addr, time }) => {
            tracing::warn!(%addr, %time, "root login");
        }
    }
}

async fn sleep_until(deadline: Option<Time>) {
    match deadline {
        Some(t) => {
            let wait = t.since(wall_clock());
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Make the state directory private (bans and logins are sensitive).
fn restrict_mode(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}
