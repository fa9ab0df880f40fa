//! `portcullis run`: the daemon driver.
//!
//! One task owns all state; sources run on their own threads and control requests arrive
//! over a channel, so no lock is ever held around a decision. The policy (which bans exist,
//! what the kernel must hold, what each command does) is the sans-IO [`JailSet`] and the
//! [`commands`]; this loop only does the I/O around them: it reads the sources into the
//! jails' filters, hands their events, expiry deadlines and control commands to the set, and
//! after each burst writes the set's commit — its decisions and the source positions in ONE
//! store transaction (durable first), then ONE firewall batch — answers the client, and
//! sleeps until the next line, control request, the set's deadline or a maintenance tick.
//!
//! Layout: `jail_set` (the policy), `commands/` (one file per control command), `jails`
//! (a jail's filter over its sources), `sources` (reader threads), `control` (the socket),
//! `notify` (hooks), `metrics` (the Prometheus endpoint, fed a snapshot after bursts), `state_dir` (creating or checking the state directory), `clock`
//! (monotonic engine time; wall time only at the edges, so a wall-clock step never disables
//! counting or expires bans early).

mod clock;
mod commands;
mod control;
pub(crate) mod fleet;
pub(crate) mod jail_set;
mod jails;
mod metrics;
mod notify;
mod sources;
mod state_dir;
mod unsaved;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ipnet::IpNet;
use portcullis_config::{Backend, Config, JailSpec, LogFormat};
use portcullis_control::{ErrorBody, ErrorKind, ServerConfig};
use portcullis_core::event::{Alert, Ban, BanReason, UnbanReason};
use portcullis_core::jail::WindowState;
use portcullis_core::{Decision, Event, Time};
use portcullis_firewall::{
    Change, ElementCounts, Firewall, FirewallConfig, KernelEvent, KernelWatch, timeout_at,
};
use portcullis_sources::wall_clock;
use portcullis_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::filters::{CompiledFilter, resolve_filter, time_zone};
use crate::text::chain;
use clock::{DaemonClock, Reading, SystemClock};
use control::{ControlRequest, ControlSocket};
use jail_set::{FirewallWork, JailInit, JailSet};
use jails::LiveJail;
use notify::Notifier;
use sources::{Batch, RunningSource, SourceKey};
use unsaved::Unsaved;

/// How often source positions are written when no decision forces a write.
const POSITION_INTERVAL: Duration = Duration::from_secs(1);
/// Changed jail windows that force a position write before `POSITION_INTERVAL`: what one
/// write carries (its copies of the windows, ~160 bytes each) stays ~10 MB while an attack
/// of a million addresses is read at full speed (issue 13 item 6: memory).
const WINDOW_CHANGES_MAX: usize = 64 * 1024;
/// Line batches (of `sources::BATCH` lines) queued between the readers and the loop: enough
/// to keep the loop busy while a reader wakes, few enough that a reader far ahead of the
/// loop holds ~15 MB of lines, not 60.
const LINE_BATCHES_QUEUED: usize = 16;
/// How often history is pruned and the database tidied.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(300);
/// How soon the next maintenance step runs when one left work (each step is bounded: see
/// `Store::prune` and `Store::maintain`), so a backlog is worked off in small pieces
/// between bursts instead of in one long stall of the ban path.
const MAINTENANCE_AGAIN: Duration = Duration::from_secs(1);
/// How long `status` reuses the firewall's health: listing the kernel sets takes the loop
/// ~10 ms per thousand elements, so a crowd of clients asking `status` would otherwise keep
/// the loop listing instead of banning. Any firewall success or failure renews it at once.
const HEALTH_MAX_AGE: Duration = Duration::from_secs(2);
/// The first and the longest wait before a failing firewall is set up again and the bans in
/// force are re-applied to it (doubling in between).
const FIREWALL_RETRY_FIRST: Duration = Duration::from_secs(1);
const FIREWALL_RETRY_LAST: Duration = Duration::from_secs(30);
/// A ban ending within this is not expected in the kernel any more (its element may have
/// timed out a moment before the engine's expiry).
const EXPIRY_SLACK: Duration = Duration::from_secs(2);

/// Entry point of `portcullis run`.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    if args.fail2ban_config.is_some() {
        // The import report is logged while loading: the subscriber must exist by then
        // (a Fail2Ban configuration has the embedded default's log level).
        init_logging(&Config::embedded_default().context("the embedded default configuration")?);
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
    let mut config = if let Some(dir) = &args.fail2ban_config {
        crate::config::load_fail2ban(dir)?
    } else {
        let default_main = Path::new(portcullis_config::DEFAULT_CONFIG_PATH);
        let main: Option<PathBuf> = args
            .config
            .clone()
            .or_else(|| default_main.exists().then(|| default_main.to_path_buf()));
        let conf_d: Option<PathBuf> = args.conf_d.clone().or_else(|| {
            let d = Path::new(portcullis_config::DEFAULT_CONF_D);
            (args.config.is_none() && d.is_dir()).then(|| d.to_path_buf())
        });
        Config::load(main.as_deref(), conf_d.as_deref())?
    };
    if let Some(d) = &args.state_dir {
        config.daemon.state_dir = d.clone();
    }
    if let Some(s) = &args.socket {
        config.daemon.socket = s.clone();
    }
    Ok(config)
}
/// journald when started by systemd (it sets JOURNAL_STREAM), stderr otherwise (as text or
/// JSON lines, `daemon.log_format`); the level from `RUST_LOG` or the configuration.
fn init_logging(config: &Config) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.daemon.log_level.as_str()));
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match (journald, config.daemon.log_format) {
        (Some(layer), _) => registry.with(layer).try_init(),
        (None, LogFormat::Json) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .try_init(),
        (None, LogFormat::Text) => registry
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
    /// The command line, read again by every reload.
    args: RunArgs,
    config: Config,
    /// The policy: every jail's engine and the bans of jails no longer configured.
    jails: JailSet,
    /// Each jail's filter over its sources, in the order of `jails`.
    filters: Vec<LiveJail>,
    sources: Vec<RunningSource>,
    store: Store,
    firewall: Firewall,
    /// The last firewall failure with its causes, until a batch or reconcile succeeds
    /// (shown by `status`, reported to the client whose change it hit).
    firewall_error: Option<String>,
    firewall_failed_at: Option<Instant>,
    /// The firewall's health as `status` last listed it, and when (see [`HEALTH_MAX_AGE`]).
    health: Option<(Instant, portcullis_firewall::Health)>,
    /// Firewall failures in a row (the retry backs off with them).
    firewall_failures: u32,
    /// Reports of changes others make to our part of the kernel (`None`: dry run).
    kernel_watch: Option<KernelWatch>,
    lines_tx: mpsc::Sender<Batch>,
    lines_rx: mpsc::Receiver<Batch>,
    control_rx: mpsc::Receiver<ControlRequest>,
    control: Option<ControlSocket>,
    notifier: Notifier,
    started: Instant,
    /// Engine time (monotonic, anchored at the start's wall time) and the wall clock.
    clock: DaemonClock,
    last_positions: Instant,
    /// Reused buffer for one line's events.
    events: Vec<Event>,
    /// Decisions and window changes the store has not made durable yet (it is failing).
    unsaved: Unsaved,
    /// The Prometheus endpoint, when `metrics.enabled`.
    metrics: Option<metrics::Metrics>,
    /// What the metrics count beyond `status`'s counters.
    metrics_counters: metrics::Counters,
    /// The read time of the first line of this burst that gave events (ban latency).
    burst_first_read: Option<Time>,
    /// GeoIP databases (none: lookups answer nothing, at no cost), for `bans` and `status`.
    geo: std::sync::Arc<portcullis_geoip::GeoIp>,
    /// The fleet link and receiving policy, when `[fleet]` is enabled.
    fleet: Option<fleet::node::FleetNode>,
    /// The firewall work since the last kernel sync note went in whole: at the next
    /// position write, read the ruleset generation and record it with the store's bans
    /// version (`Store::note_kernel_sync`), so a restart can trust the kernel sets.
    kernel_sync_due: bool,
}

/// Open the GeoIP databases `[geoip]` names; what cannot be used is logged as a warning
/// naming the file (none configured or found: silent).
pub(crate) fn open_geo(
    settings: &portcullis_config::GeoIpSettings,
) -> std::sync::Arc<portcullis_geoip::GeoIp> {
    let geo = portcullis_geoip::GeoIp::open(&crate::geo::selection(settings, &[]));
    log_geo_warnings(&geo);
    for (path, kind) in geo.paths() {
        tracing::info!(path = %path.display(), kind = %kind, "GeoIP database in use");
    }
    std::sync::Arc::new(geo)
}

/// The aggregation rules of `[networks]`.
pub(crate) fn network_rules(
    n: &portcullis_config::NetworkSettings,
) -> jail_set::networks::NetworkRules {
    jail_set::networks::NetworkRules {
        threshold: n.threshold,
        v4_prefix: n.v4_prefix,
        v6_prefix: n.v6_prefix,
        widen_after: n.widen_after,
        widen_bits: n.widen_bits,
        v4_widest: n.v4_widest,
        v6_widest: n.v6_widest,
        asn_threshold: n.asn_threshold,
        bantime: n.bantime,
    }
}

/// The AS rule's lookup: the ASN databases in use, when the rule is on (without one, the
/// rule is off and the log says so).
pub(crate) fn asn_lookup(
    geo: &std::sync::Arc<portcullis_geoip::GeoIp>,
    n: &portcullis_config::NetworkSettings,
) -> Option<jail_set::networks::AsnLookup> {
    n.asn_threshold?;
    if geo.is_empty() {
        tracing::warn!(
            "networks.asn_threshold is set but no GeoIP database is in use: no aggregation by \
             autonomous system"
        );
        return None;
    }
    let geo = geo.clone();
    Some(std::sync::Arc::new(move |ip| geo.asn_network(ip)))
}

/// Log what `geo` found wrong since the last call.
pub(crate) fn log_geo_warnings(geo: &portcullis_geoip::GeoIp) {
    for w in geo.take_warnings() {
        tracing::warn!("{w}");
    }
}

/// Each jail of `config` with its compiled filter; the host's own addresses join every
/// allowlist. Touches no daemon state (a reload runs it off the loop, which keeps banning).
fn compile_jails(config: &Config) -> Result<Vec<(JailSpec, CompiledFilter)>> {
    let tz = time_zone(None, config)?;
    let own: Vec<IpNet> = match portcullis_host::own_addresses() {
        Ok(addrs) => addrs.into_iter().map(IpNet::from).collect(),
        Err(e) => {
            tracing::warn!(
                "cannot list the host's addresses: {}; only the configured allowlist applies",
                chain(&e)
            );
            Vec::new()
        }
    };
    let mut jails = Vec::new();
    for spec in &config.jails {
        let mut spec = spec.clone();
        for a in &own {
            if !spec.config.allowlist.iter().any(|n| n.contains(&a.addr())) {
                spec.config.allowlist.push(*a);
            }
        }
        let filter = resolve_filter(&spec, &config.daemon.filter_dir, &tz)?;
        jails.push((spec, filter));
    }
    Ok(jails)
}

/// The jails as the daemon runs them: each one's filter, and what the [`JailSet`] needs of
/// it. The store's history and windows (wall time) are read for the jails `running` does
/// not have yet, and moved onto engine time.
fn live_jails(
    compiled: Vec<(JailSpec, CompiledFilter)>,
    store: &Store,
    now: Reading,
    running: Option<&JailSet>,
) -> Result<(Vec<LiveJail>, Vec<JailInit>)> {
    let mut filters = Vec::new();
    let mut inits = Vec::new();
    for (spec, filter) in compiled {
        // A running jail keeps its own history and windows.
        let (history, windows) = match running.and_then(|r| r.index_of(&spec.name)) {
            Some(_) => (Vec::new(), Vec::new()),
            None => {
                let history = store
                    .history(&spec.name, now.wall.saturating_sub(spec.config.history))
                    .with_context(|| format!("jail {}: cannot read its history", spec.name))?;
                let mut windows = store
                    .windows(&spec.name, now.wall)
                    .with_context(|| format!("jail {}: cannot read its windows", spec.name))?;
                for w in &mut windows {
                    now.window_to_engine(w);
                }
                let history = history
                    .into_iter()
                    .map(|(t, at)| (t, now.engine_of(at)))
                    .collect();
                (history, windows)
            }
        };
        inits.push(JailInit {
            config: spec.config.clone(),
            history,
            windows,
        });
        filters.push(LiveJail::new(spec, filter));
    }
    Ok((filters, inits))
}

/// The sources the jails read, each with the jails it feeds, in first-use order.
fn source_keys(filters: &[LiveJail]) -> Vec<(SourceKey, Vec<usize>)> {
    let mut keys: Vec<(SourceKey, Vec<usize>)> = Vec::new();
    for (j, jail) in filters.iter().enumerate() {
        for spec in &jail.spec.sources {
            let key =
                sources::resolve(spec, &portcullis_config::service_sources(&jail.spec.filter));
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, js)) => js.push(j),
                None => keys.push((key, vec![j])),
            }
        }
    }
    keys
}

impl Daemon {
    async fn start(args: &RunArgs, config: Config) -> Result<Daemon> {
        // Engine time starts at the wall time now: what the store holds needs no moving.
        let clock = DaemonClock::new(SystemClock::new());
        let reading = clock.read();
        let now = reading.engine;
        let state_dir = &config.daemon.state_dir;
        state_dir::prepare(state_dir)?;
        let (mut store, opened) = open_store(&state_dir.join("state.db"), now)?;

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
                netlink: config.firewall.netlink,
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
        // Read once, by `open_store` (1M rows take ~2 s): the engines are restored from it,
        // and the rest are bans of jails no longer configured.
        let stored = match opened {
            Opened::Bans(bans) => bans,
            // The old database is unreadable: what the kernel still holds is what protects
            // the server now. It is written to the fresh store before anything else.
            Opened::MovedAside(aside) => {
                rebuild_from_kernel(&firewall, &mut store, &aside, now).await
            }
        };
        let (filters, mut inits) = live_jails(compile_jails(&config)?, &store, reading, None)?;
        let fleet = start_fleet(&config, &store, &mut inits)?;
        let mut jails = JailSet::new(inits, stored, now);
        let geo = open_geo(&config.geoip);
        jails.set_networks(
            network_rules(&config.networks),
            asn_lookup(&geo, &config.networks),
            now,
        );
        jails.configure_site(&config.campaign);

        let notifier = Notifier::start(&config.notify);
        let (lines_tx, lines_rx) = mpsc::channel(LINE_BATCHES_QUEUED);
        let (control_tx, control_rx) = mpsc::channel(16);
        let mut daemon = Daemon {
            args: args.clone(),
            config,
            jails,
            filters,
            sources: Vec::new(),
            store,
            firewall,
            firewall_error: None,
            firewall_failed_at: None,
            health: None,
            firewall_failures: 0,
            kernel_watch: None,
            lines_tx,
            lines_rx,
            control_rx,
            control: None,
            notifier,
            started: Instant::now(),
            clock,
            last_positions: Instant::now(),
            events: Vec::new(),
            unsaved: Unsaved::default(),
            metrics: None,
            metrics_counters: metrics::Counters::default(),
            burst_first_read: None,
            geo,
            fleet,
            kernel_sync_due: false,
        };
        // Watching first: a flush between the setup and the watch's start is seen too.
        daemon.kernel_watch = daemon.firewall.watch();
        // Read before our setup (itself a transaction): unchanged since the last recorded
        // sync, with the store's bans unchanged too, the sets need not be re-sent.
        let generation = daemon.firewall.generation().await;
        daemon
            .firewall
            .setup()
            .await
            .context("firewall setup failed")?;
        let intact = daemon.kernel_intact(generation).await;
        daemon.reconcile_firewall_at_start(intact).await;
        daemon.start_sources();
        let policy = ServerConfig::default();
        daemon.control = Some(ControlSocket::start(
            &daemon.config.daemon.socket,
            control_tx,
            policy,
        )?);
        if daemon.config.metrics.enabled {
            // Metrics are not protection: a port already taken is an error in the log, and
            // the daemon protects without them.
            match metrics::Metrics::start(&daemon.config.metrics.listen) {
                Ok(mut m) => {
                    tracing::info!(listen = %m.local(), "metrics served at /metrics");
                    // The first scrape already shows the jails and the bans restored.
                    m.publish(metrics::Snapshot::of(&daemon));
                    daemon.metrics = Some(m);
                }
                Err(e) => tracing::error!("no metrics: {e:#}"),
            }
        }
        tracing::info!(
            backend = daemon.firewall.backend_name(),
            jails = ?daemon.jails.names().collect::<Vec<_>>(),
            socket = %daemon.config.daemon.socket.display(),
            "portcullis started"
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        Ok(daemon)
    }

    /// Whether the kernel sets are as the last recorded sync left them: the generation read
    /// before our setup (`before`) is the recorded one, the store's bans did not change
    /// since, and the setup was the only transaction in between (the generation moved by
    /// at most one).
    async fn kernel_intact(&mut self, before: Option<u32>) -> bool {
        let Some(before) = before else {
            return false;
        };
        let after = self.firewall.generation().await;
        let only_setup = after.is_some_and(|a| a == before || a == before.wrapping_add(1));
        match self.store.kernel_in_sync(before) {
            Ok(same) => same && only_setup,
            Err(e) => {
                tracing::warn!("cannot read the kernel sync record: {}", chain(&e));
                false
            }
        }
    }

    /// The reconcile at start: with the kernel sets `intact` (see `kernel_intact`), a
    /// sample of the bans is looked up and nothing is sent when all are there; otherwise
    /// (or when one is missing) the full reconcile.
    async fn reconcile_firewall_at_start(&mut self, intact: bool) {
        if !intact {
            return self.reconcile_firewall().await;
        }
        let now = self.clock.now();
        let desired: Vec<(IpNet, Option<Duration>)> = self
            .jails
            .in_force(now)
            .iter()
            .map(|&(target, until)| (target, timeout_at(until, now)))
            .collect();
        match self.firewall.reconcile_unless_intact(&desired, true).await {
            Ok(None) => {
                tracing::info!(
                    bans = desired.len(),
                    sampled = desired.len().min(portcullis_firewall::INTACT_SAMPLE),
                    "kernel sets intact (ruleset generation and stored bans unchanged): nothing re-sent"
                );
                self.firewall_ok();
                self.kernel_sync_due = true;
            }
            Ok(Some(report)) => {
                tracing::info!(
                    bans = desired.len(),
                    added = report.added,
                    removed = report.removed,
                    "firewall reconciled with the bans in force (a sampled ban was missing)"
                );
                self.netlink_fallback(&report);
                self.firewall_ok();
                self.kernel_sync_due = true;
            }
            Err(e) => self.firewall_failed(format!("reconcile: {}", chain(&e))),
        }
    }

    /// Put the bans in force into the kernel: missing added, stale removed.
    async fn reconcile_firewall(&mut self) {
        let desired = self.jails.in_force(self.clock.now());
        self.reconcile_firewall_to(&desired).await;
    }

    /// Make the kernel sets hold exactly `bans` (target, end).
    async fn reconcile_firewall_to(&mut self, bans: &[(IpNet, Option<Time>)]) {
        let now = self.clock.now();
        let desired: Vec<(IpNet, Option<Duration>)> = bans
            .iter()
            .map(|&(target, until)| (target, timeout_at(until, now)))
            .collect();
        match self.firewall.reconcile(&desired).await {
            Ok(report) => {
                tracing::info!(
                    bans = desired.len(),
                    added = report.added,
                    removed = report.removed,
                    "firewall reconciled with the bans in force"
                );
                self.netlink_fallback(&report);
                self.firewall_ok();
                self.kernel_sync_due = report.rejected.is_empty();
            }
            Err(e) => self.firewall_failed(format!("reconcile: {}", chain(&e))),
        }
    }

    fn firewall_ok(&mut self) {
        self.health = None;
        if self.firewall_failures > 0 {
            tracing::warn!(
                failures = self.firewall_failures,
                "the firewall works again: the bans in force are in the kernel"
            );
        }
        self.firewall_error = None;
        self.firewall_failed_at = None;
        self.firewall_failures = 0;
    }

    /// The bans went in, but through `nft` although netlink is configured: an error in the
    /// log and in the firewall error count (the daemon protects, more slowly).
    fn netlink_fallback(&mut self, report: &portcullis_firewall::ApplyReport) {
        if let Some(why) = &report.netlink_fallback {
            tracing::error!("firewall: netlink failed, nft used instead: {why}");
            self.metrics_counters.firewall_errors += 1;
        }
    }

    fn firewall_failed(&mut self, msg: String) {
        tracing::error!("firewall: {msg}");
        self.kernel_sync_due = false;
        self.metrics_counters.firewall_errors += 1;
        self.health = None;
        self.firewall_error = Some(msg);
        self.firewall_failed_at = Some(Instant::now());
        self.firewall_failures = self.firewall_failures.saturating_add(1);
    }

    /// Whether a failing firewall is due to be set up again: 1 s after the first failure,
    /// doubling to 30 s.
    fn firewall_retry_due(&self) -> bool {
        let wait = FIREWALL_RETRY_FIRST
            .saturating_mul(1 << self.firewall_failures.saturating_sub(1).min(5))
            .min(FIREWALL_RETRY_LAST);
        self.firewall_failed_at.is_some_and(|t| t.elapsed() >= wait)
    }

    /// Set our table (or sets and rules) up again and put every ban in force back: after a
    /// failure, or when the watch saw them go.
    async fn heal_firewall(&mut self) {
        let t0 = Instant::now();
        if let Err(e) = self.firewall.setup().await {
            self.firewall_failed(format!("setup: {}", chain(&e)));
            return;
        }
        self.reconcile_firewall().await;
        if self.firewall_error.is_none() {
            tracing::info!(took_ms = t0.elapsed().as_millis() as u64, "firewall healed");
        }
    }

    /// Put `bans` (target, end) back into the kernel, but those about to end.
    async fn add_back(&mut self, bans: Vec<(IpNet, Option<Time>)>, what: &str) {
        let now = self.clock.now();
        let changes: Vec<Change> = bans
            .into_iter()
            .filter_map(|(target, until)| {
                let timeout = timeout_at(until, now);
                (timeout.is_none_or(|t| t > EXPIRY_SLACK))
                    .then_some(Change::Add { target, timeout })
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        tracing::warn!(bans = changes.len(), "{what}: adding them back");
        match self.firewall.apply(&changes).await {
            Ok(report) => {
                self.netlink_fallback(&report);
                self.firewall_ok();
            }
            Err(e) => self.firewall_failed(format!("adding back: {}", chain(&e))),
        }
    }

    /// What the kernel watch saw (see `portcullis_firewall::KernelWatch`).
    async fn kernel_changed(&mut self, event: KernelEvent) {
        let now = self.clock.now();
        match event {
            KernelEvent::Broken(what) => {
                tracing::warn!(
                    "the kernel lost our {what} (nft flush ruleset, a firewall restart or another tool): setting up again and re-applying every ban"
                );
                self.heal_firewall().await;
            }
            KernelEvent::Unsure(why) => {
                tracing::warn!(
                    "firewall watch: {why}; reconciling the kernel with the bans in force"
                );
                self.heal_firewall().await;
            }
            KernelEvent::Removed(targets) => {
                // Our own unbans are not in force any more; what is, someone else deleted.
                let bans: Vec<(IpNet, Option<Time>)> = targets
                    .into_iter()
                    .filter_map(|t| Some((t, self.jails.longest_ban(t, now)?)))
                    .collect();
                self.add_back(bans, "bans in force were deleted from the kernel sets")
                    .await;
            }
            KernelEvent::NetsRemoved => {
                // Which ranges went is not decoded: add back every network in force (an
                // element already there stays as it is).
                let nets: Vec<(IpNet, Option<Time>)> = self
                    .jails
                    .in_force(now)
                    .into_iter()
                    .filter(|(t, _)| t.prefix_len() < t.max_prefix_len())
                    .collect();
                self.add_back(nets, "network bans were deleted from the kernel sets")
                    .await;
            }
            KernelEvent::Counts(kernel) => {
                let mut expected = ElementCounts::default();
                for (target, until) in self.jails.in_force(now) {
                    if until.is_none_or(|u| u.since(now) > EXPIRY_SLACK) {
                        expected.count(&target);
                    }
                }
                if !kernel.covers(&expected) {
                    tracing::warn!(
                        ?kernel,
                        ?expected,
                        "the kernel sets hold fewer bans than are in force (flushed by another tool?): re-applying every ban"
                    );
                    self.heal_firewall().await;
                }
            }
        }
    }

    /// The answer to a client whose change was recorded: an error while the firewall is
    /// failing.
    fn firewall_result(&self) -> Result<(), ErrorBody> {
        if let Some(f) = self.unsaved.failure() {
            return Err(ErrorBody::new(
                ErrorKind::Internal,
                format!(
                    "in force, but not yet written to the state database: {} (kept in memory, retried until it is written)",
                    f.error
                ),
            ));
        }
        match &self.firewall_error {
            Some(e) => Err(ErrorBody::new(
                ErrorKind::Internal,
                format!(
                    "recorded in the store, but the firewall failed: {e} (retried with backoff, at most every {}s)",
                    FIREWALL_RETRY_LAST.as_secs()
                ),
            )),
            None => Ok(()),
        }
    }

    fn start_sources(&mut self) {
        self.sources = source_keys(&self.filters)
            .into_iter()
            .enumerate()
            .map(|(i, (key, jails))| {
                tracing::info!(source = %key.store_key(), "following");
                RunningSource::start(i, key, jails, &self.store, self.lines_tx.clone())
            })
            .collect();
    }

    /// Stop every source thread. `process`: what they already sent is matched and counted
    /// (a reload: banning goes on); otherwise it is dropped unprocessed (shutdown: fast
    /// under any backlog, and nothing is lost, since a source's position only advances
    /// with the lines processed, so the next start reads them again). Positions are exact
    /// either way.
    async fn stop_sources(&mut self, process: bool) {
        for s in &self.sources {
            s.request_stop();
        }
        // The sources stay in place (their positions advance with the drained batches);
        // only their threads are joined.
        let threads: Vec<_> = self
            .sources
            .iter_mut()
            .filter_map(|s| s.take_thread())
            .collect();
        let mut join = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("a source thread panicked");
                }
            }
        });
        // Drain while joining: a reader blocked on the full channel only sees its stop once
        // its batch is taken (joining first waited for it forever). The lines are processed
        // as usual (each reader sends at most the batch it holds), so nothing is lost and
        // banning goes on during a reload.
        let joined = loop {
            tokio::select! {
                joined = &mut join => break joined,
                Some(batch) = self.lines_rx.recv() => if process { self.process_batch(batch) },
            }
        };
        if let Err(e) = joined {
            tracing::error!("joining the source threads failed: {e}");
        }
        while let Ok(batch) = self.lines_rx.try_recv() {
            if process {
                self.process_batch(batch);
            }
        }
        self.commit(true).await;
    }

    async fn main_loop(&mut self) -> Result<ExitCode> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let watchdog = watchdog_interval();
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        let mut position_tick = tokio::time::interval(POSITION_INTERVAL);
        loop {
            let wait = self.jails.poll_timeout().map(|t| t.since(self.clock.now()));
            tokio::select! {
                biased;
                _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = sighup.recv() => {
                    match commands::reload(self).await {
                        Ok(d) => tracing::info!(jails = ?d.jails, "SIGHUP: configuration reloaded"),
                        Err(e) => tracing::error!("SIGHUP: reload failed, the old configuration stays: {}", e.message),
                    }
                }
                Some(req) = self.control_rx.recv() => {
                    let reply = commands::handle(self, req.command).await;
                    // Handed to the client's connection task, which writes it: the loop
                    // never waits on a client's socket.
                    let _ = req.reply.send(reply);
                    // Lines already queued go next, before another request: a crowd of
                    // clients cannot starve banning (control comes first in this select).
                    self.take_queued_batches(BURST_BATCHES + 1);
                }
                Some(batch) = self.lines_rx.recv() => {
                    self.process_batch(batch);
                    // Take more of what is already queued: one commit for the burst. Bounded
                    // so a signal or a control request waits for at most this much work
                    // (8 batches of 4096 lines) under any backlog.
                    self.take_queued_batches(BURST_BATCHES);
                }
                Some(inbound) = fleet::node::next_inbound(&mut self.fleet) => {
                    self.fleet_received(inbound);
                }
                _ = sleep_for(wait) => self.jails.handle_timeout(self.clock.now()),
                _ = position_tick.tick() => {
                    if self.firewall_retry_due() {
                        // Someone may have deleted our table, or a batch failed halfway: set
                        // it up again, then put the bans in force back.
                        self.heal_firewall().await;
                    }
                }
                Some(event) = next_kernel_event(&mut self.kernel_watch) => {
                    self.kernel_changed(event).await;
                }
                _ = watchdog_tick.tick(), if watchdog.is_some() => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                _ = maintenance.tick() => {
                    if self.maintain() {
                        // A bounded step left work: the next one soon, lines in between.
                        maintenance.reset_after(MAINTENANCE_AGAIN);
                    }
                }
            }
            self.commit(false).await;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Process up to `max` line batches that are already queued (without waiting).
    fn take_queued_batches(&mut self, max: usize) {
        for _ in 0..max {
            match self.lines_rx.try_recv() {
                Ok(b) => self.process_batch(b),
                Err(_) => break,
            }
        }
    }

    /// Run one batch of lines through the filters of the jails that read its source, and
    /// their events into the jails.
    fn process_batch(&mut self, batch: Batch) {
        let now = self.clock.read();
        let Some(src) = self.sources.get_mut(batch.source) else {
            return;
        };
        let jails = src.jails.clone();
        if let Some(last) = batch.lines.last() {
            src.position = Some(last.position.clone());
            src.dirty = true;
            src.lag = now.wall.since(last.read_at);
        }
        for line in &batch.lines {
            src.truncated += u64::from(line.cut);
        }
        for line in &batch.lines {
            for &j in &jails {
                let Some(filter) = self.filters.get_mut(j) else {
                    continue;
                };
                filter.feed(batch.source, line, &mut self.events);
                if !self.events.is_empty() {
                    let first = self.burst_first_read.get_or_insert(line.read_at);
                    *first = (*first).min(line.read_at);
                }
                clock::hand_events(&mut self.jails, j, now, &mut self.events);
            }
        }
    }

    /// Carry out the set's commit: its decisions and the source positions to the store in
    /// one transaction (durable first), then its firewall work in one batch. The jails'
    /// changed windows ride in that transaction exactly when positions do (see
    /// [`JailSet::poll_window_changes`]), so after `kill -9` the stored windows are those of
    /// the lines before the stored positions.
    async fn commit(&mut self, force_positions: bool) {
        let now = self.clock.read();
        let work = self.jails.poll_commit(now.engine).unwrap_or_default();
        // The store, the log and the hooks get wall times (see `clock`).
        let decisions: Vec<Decision> = work
            .decisions
            .iter()
            .map(|d| now.decision_to_wall(d))
            .collect();
        let positions_due = force_positions
            || self.last_positions.elapsed() >= POSITION_INTERVAL
            || self.jails.window_changes_pending() >= WINDOW_CHANGES_MAX;
        let write_due = positions_due || !decisions.is_empty() || !self.unsaved.is_empty();
        if write_due && self.unsaved.may_write(Instant::now()) {
            // Positions and the windows of the lines before them go with every decision not
            // yet durable, in one transaction (see `unsaved`).
            let windows: Vec<(std::sync::Arc<str>, WindowState)> = self
                .jails
                .poll_window_changes()
                .into_iter()
                .map(|(j, mut w)| {
                    now.window_to_wall(&mut w);
                    (j, w)
                })
                .collect();
            // Every decision written so far went into the kernel (the last commit applied
            // them): vouch for it with the generation, in this write.
            if positions_due
                && self.kernel_sync_due
                && self.firewall_error.is_none()
                && self.unsaved.is_empty()
            {
                self.kernel_sync_due = false;
                if let Some(generation) = self.firewall.generation().await {
                    self.store.note_kernel_sync(generation);
                }
            }
            self.unsaved.push(decisions.clone(), windows);
            let mut positions: Vec<(String, portcullis_store::SourcePosition)> = self
                .sources
                .iter_mut()
                .filter(|s| s.dirty)
                .filter_map(|s| {
                    s.dirty = false;
                    s.stored_position().map(|p| (s.key.store_key(), p))
                })
                .collect();
            // The fleet stream's sequence goes with the decisions it caused.
            positions.extend(self.fleet_position());
            if !self.unsaved.is_empty() || !positions.is_empty() || self.store.sync_pending() {
                let (pending, windows) = self.unsaved.pending();
                match self
                    .store
                    .apply_burst(pending, &positions, windows, now.wall)
                {
                    Ok(()) => {
                        let written = pending.len();
                        if let Some(outage) = self.unsaved.written() {
                            tracing::warn!(
                                decisions = written,
                                after_secs = outage.since.elapsed().as_secs(),
                                failed_writes = outage.attempts,
                                "the state database is writable again: every decision kept in memory is written"
                            );
                        }
                    }
                    Err(e) => {
                        let error = chain(&e);
                        // The positions go again with the next write, with the decisions.
                        if let Some(f) = &mut self.fleet {
                            f.seq_dirty = true;
                        }
                        for s in &mut self.sources {
                            let key = s.key.store_key();
                            if positions.iter().any(|(k, _)| *k == key) {
                                s.dirty = true;
                            }
                        }
                        self.metrics_counters.store_errors += 1;
                        let kept = self.unsaved.decision_count();
                        if self.unsaved.failed(error.clone(), Instant::now()) {
                            tracing::error!(
                                decisions_kept = kept,
                                "cannot write to the state database: {error}; the decisions stay in force (memory and kernel) and are retried with backoff; source positions are held until they are written"
                            );
                        } else {
                            tracing::warn!(
                                decisions_kept = kept,
                                "the state database still fails: {error}"
                            );
                        }
                    }
                }
            }
            self.last_positions = Instant::now();
        } else {
            // Not written now (the store is failing and its retry is not due): queued in
            // order. Windows stay in the set until positions are written with them.
            self.unsaved.push(decisions.clone(), Vec::new());
        }
        let first_read = self.burst_first_read.take();
        self.report_campaigns(now);
        if !work.is_empty() {
            self.apply_firewall(work.firewall).await;
            for d in &decisions {
                log_decision(d);
                self.notifier.decision(d);
            }
            // Durable and in the kernel: now the fleet hears of this node's own bans.
            self.fleet_report(&decisions);
        }
        if self.metrics.is_some() {
            if !decisions.is_empty() {
                self.metrics_counters
                    .decisions(&decisions, first_read, wall_clock());
            }
            let force = decisions.iter().any(|d| matches!(d, Decision::Ban(_)));
            if self.metrics.as_ref().is_some_and(|m| m.due(force)) {
                let snap = metrics::Snapshot::of(self);
                if let Some(m) = &mut self.metrics {
                    m.publish(snap);
                }
            }
        }
    }

    /// The site-wide detectors' reports of this burst (their participants' bans are in
    /// its commit): to the log, the store and the hooks, in wall time.
    fn report_campaigns(&mut self, now: clock::Reading) {
        let mut reports = self.jails.poll_campaigns();
        if reports.is_empty() {
            return;
        }
        for a in &mut reports {
            a.start = now.wall_of(a.start);
            a.end = now.wall_of(a.end);
            a.detected = now.wall_of(a.detected);
            log_campaign(a);
        }
        if let Err(e) = self.store.save_campaigns(&reports) {
            // Not protection: the bans went with the commit. Logged, not retried.
            tracing::error!("cannot store campaign reports: {}", chain(&e));
        }
        // Hooks hear of a campaign when it is detected and when it ends; the reports in
        // between (participants joining, at most one a bin or every 10 s) are in the log and
        // the store.
        for a in reports.iter().filter(|a| a.ended || is_first_report(a)) {
            self.notifier.campaign(&portcullis_store::campaign_json(a));
        }
    }

    async fn apply_firewall(&mut self, work: FirewallWork) {
        match work {
            FirewallWork::Nothing => {}
            FirewallWork::Resync(bans) => self.reconcile_firewall_to(&bans).await,
            FirewallWork::Apply(changes) => {
                let now = self.clock.now();
                let changes: Vec<Change> = changes.iter().map(|c| c.at(now)).collect();
                match self.firewall.apply(&changes).await {
                    Ok(report) => {
                        for r in &report.rejected {
                            tracing::error!("firewall refused {}: {:?}", r.target, r.reason);
                        }
                        self.netlink_fallback(&report);
                        self.firewall_ok();
                        self.kernel_sync_due = report.rejected.is_empty();
                    }
                    Err(e) => self.firewall_failed(format!("apply: {}", chain(&e))),
                }
            }
        }
    }

    /// One bounded maintenance step on the loop (the store is single-writer, so a burst
    /// waits for it): prune a batch, vacuum a batch, checkpoint. True when work is left.
    fn maintain(&mut self) -> bool {
        let keep = self
            .filters
            .iter()
            .map(|j| j.spec.config.history)
            .max()
            .unwrap_or(Duration::from_secs(7 * 86400));
        let t0 = Instant::now();
        let pruned_more = match self.store.prune(wall_clock(), keep) {
            Ok(stats) => {
                tracing::debug!(?stats, "store pruned");
                stats.more
            }
            Err(e) => {
                tracing::warn!("store prune failed: {}", chain(&e));
                false
            }
        };
        let vacuum_more = match self.store.maintain() {
            Ok(m) => {
                if m.checkpoint_blocked {
                    // Not retried sooner: a reader may hold its snapshot for hours.
                    tracing::debug!("WAL checkpoint blocked by a reader: retried next period");
                }
                m.more
            }
            Err(e) => {
                tracing::warn!("store maintenance failed: {}", chain(&e));
                false
            }
        };
        tracing::debug!(
            took_ms = t0.elapsed().as_millis() as u64,
            "store maintenance step"
        );
        pruned_more || vacuum_more
    }

    async fn stop(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        self.notifier.stop();
        if let Some(m) = self.metrics.take() {
            m.stop();
        }
        // Requests already queued get an answer, new ones are refused at once: the socket's
        // shutdown waits for the requests in hand, which wait for this loop.
        self.control_rx.close();
        while let Ok(req) = self.control_rx.try_recv() {
            let _ = req.reply.send(Err(ErrorBody::new(
                ErrorKind::Busy,
                "the daemon is shutting down",
            )));
        }
        if let Some(c) = self.control.take() {
            c.shutdown().await;
        }
        self.stop_sources(false).await;
        if let Some(f) = self.fleet.take() {
            f.link.stop();
        }
        if let Err(e) = self
            .firewall
            .teardown(self.config.firewall.flush_on_stop)
            .await
        {
            tracing::warn!("firewall teardown: {}", chain(&e));
        }
        tracing::info!("portcullis stopped");
    }
}

/// The fleet node of `config` (`None` without `[fleet]`): the stored stream sequence to
/// resume after, the admins' allowlist, and the task started (it connects in the
/// background: a broker that is down delays nothing).
fn start_fleet(
    config: &Config,
    store: &Store,
    inits: &mut [JailInit],
) -> Result<Option<fleet::node::FleetNode>> {
    if !config.fleet.enabled {
        return Ok(None);
    }
    let node = fleet::node_name(&config.fleet)?;
    let key = fleet::position_key(&config.fleet.stream);
    let applied = match store
        .load_position(&key)
        .context("cannot read the fleet stream's position")?
    {
        Some(portcullis_store::SourcePosition::Journal { cursor }) => {
            cursor.parse::<u64>().unwrap_or(0)
        }
        _ => 0,
    };
    let allowed = store
        .fleet_allows()
        .context("cannot read the fleet allowlist")?;
    // What admins allowed everywhere, the jails never ban either.
    jail_set::fleet::allow_in(inits, &allowed);
    Ok(Some(fleet::node::FleetNode::start(
        config.fleet.clone(),
        node,
        inits,
        allowed,
        applied,
    )))
}

/// Batches the loop takes after the first before it commits and looks at signals and
/// control requests again.
const BURST_BATCHES: usize = 7;

/// The jail name of bans rebuilt from the kernel after the database was lost (the kernel
/// does not say which jail decided them).
const RECOVERED_JAIL: &str = "recovered";

/// What [`open_store`] found besides the open store.
enum Opened {
    /// The bans in force, read once (the read is also the check that the file is usable).
    Bans(Vec<Ban>),
    /// The file was unusable and moved here; the store is a fresh one.
    MovedAside(PathBuf),
}

/// Open the state database and read its bans in force. One that is corrupt or not ours is
/// moved aside (`state.db.corrupt-<unix time>`, with its `-wal`/`-shm`) and a fresh one
/// created, so the daemon starts protecting instead of failing at every restart. A newer
/// portcullis' database, or one we may not read, is an error (moving it would lose data a
/// downgrade could still use).
fn open_store(path: &Path, now: Time) -> Result<(Store, Opened)> {
    let broken = match Store::open(path) {
        Ok(store) => match store.active_bans(now) {
            Ok(bans) => return Ok((store, Opened::Bans(bans))),
            Err(e) if e.is_unusable_file() => e,
            Err(e) => return Err(e).context("cannot read the bans from the state database"),
        },
        Err(e) if e.is_unusable_file() => e,
        Err(e) => return Err(e).context("cannot open the state database"),
    };
    let stamp = jiff::Timestamp::now().as_second();
    let aside = path.with_file_name(format!("state.db.corrupt-{stamp}"));
    for (from, to) in [("", ""), ("-wal", "-wal"), ("-shm", "-shm")] {
        let from = PathBuf::from(format!("{}{from}", path.display()));
        let to = PathBuf::from(format!("{}{to}", aside.display()));
        if from.exists() {
            std::fs::rename(&from, &to).with_context(|| {
                format!(
                    "cannot move the broken state database {} aside",
                    from.display()
                )
            })?;
        }
    }
    tracing::error!(
        error = %chain(&broken),
        moved_to = %aside.display(),
        "THE STATE DATABASE WAS UNREADABLE: moved aside; starting with a fresh one, rebuilt from the kernel's ban sets"
    );
    let store = Store::open(path).context("cannot create a fresh state database")?;
    Ok((store, Opened::MovedAside(aside)))
}

/// The bans the kernel sets still hold (with their remaining time), written to the fresh
/// store as bans of [`RECOVERED_JAIL`], after the database was moved to `aside`.
async fn rebuild_from_kernel(
    firewall: &Firewall,
    store: &mut Store,
    aside: &Path,
    now: Time,
) -> Vec<Ban> {
    let listed = match firewall.list().await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(
                "cannot list the kernel's ban sets to rebuild the state ({}); starting with none",
                chain(&e)
            );
            Vec::new()
        }
    };
    let bans: Vec<Ban> = listed
        .into_iter()
        .map(|(target, left)| Ban {
            target,
            jail: RECOVERED_JAIL.into(),
            since: now,
            until: left.map(|d| now.saturating_add(d)),
            ban_no: 1,
            reason: BanReason::Restored,
        })
        .collect();
    let decisions: Vec<Decision> = bans.iter().cloned().map(Decision::Ban).collect();
    if let Err(e) = store.apply(&decisions, now) {
        tracing::error!(
            "cannot write the rebuilt bans to the fresh state database: {}",
            chain(&e)
        );
    }
    tracing::warn!(
        bans = bans.len(),
        old_database = %aside.display(),
        "state rebuilt from the kernel: these bans keep their remaining time (history and windows of the old database are lost)"
    );
    bans
}

fn log_decision(d: &Decision) {
    match d {
        Decision::Ban(b) => match b.until {
            None => {
                tracing::warn!(jail = %b.jail, target = %b.target, ban_no = b.ban_no, reason = b.reason.kind(), "PERMANENT ban")
            }
            Some(u) => {
                tracing::info!(jail = %b.jail, target = %b.target, ban_no = b.ban_no, reason = b.reason.kind(), secs = u.since(b.since).as_secs(), "ban")
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

/// Whether `a` is its campaign's first report (every participant is new in it).
fn is_first_report(a: &portcullis_core::campaign::CampaignAlert) -> bool {
    a.new_participants.len() >= a.participants.len()
}

/// One log line per campaign report (journald's fields: `id`, `kind`, …): a warning when
/// it is detected and when it ends, information when participants join.
fn log_campaign(a: &portcullis_core::campaign::CampaignAlert) {
    let users: Vec<String> = a
        .users
        .iter()
        .take(5)
        .map(|(u, _)| crate::text::escape_terminal(u).into_owned())
        .collect();
    let what = match (a.kind, a.ended) {
        (portcullis_core::campaign::CampaignKind::Distributed, false) => {
            "CAMPAIGN: distributed attack in progress"
        }
        (portcullis_core::campaign::CampaignKind::Distributed, true) => "campaign ended",
        (portcullis_core::campaign::CampaignKind::UserTargeted, false) => {
            "CAMPAIGN: many addresses on one existing account"
        }
        (portcullis_core::campaign::CampaignKind::UserTargeted, true) => {
            "user-targeted attack ended"
        }
    };
    if a.ended || is_first_report(a) {
        tracing::warn!(
            id = %a.id,
            kind = a.kind.as_str(),
            start = %a.start,
            end = %a.end,
            participants = a.participant_count,
            joined = a.new_participants.len(),
            users = ?users,
            confidence = format!("{:.2}", a.confidence),
            "{what}"
        );
    } else {
        tracing::info!(
            id = %a.id,
            kind = a.kind.as_str(),
            participants = a.participant_count,
            joined = a.new_participants.len(),
            "campaign: participants joined"
        );
    }
}

/// The watch's next report; never, without a watch.
async fn next_kernel_event(watch: &mut Option<KernelWatch>) -> Option<KernelEvent> {
    match watch {
        Some(w) => w.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleep for `wait` (a deadline on engine time minus engine time now; tokio's timer is
/// monotonic too), forever when `None`.
async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending::<()>().await,
    }
}

/// How often the loop tells systemd it is alive (`WATCHDOG=1`): half of `WatchdogSec=`, or
/// `None` without a watchdog. The main loop pings between its steps; so does a reload while
/// it waits for the new configuration to compile (it goes on serving lines meanwhile, and
/// on a slow machine a compile can outlast `WatchdogSec=`, seen under qemu TCG: the daemon
/// was killed as hung in the middle of a reload).
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}
