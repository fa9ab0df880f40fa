//! Fleet mode: this node's bans published to NATS JetStream, the other nodes' bans received
//! from it (docs/fleet.md).
//!
//! A task of its own beside the daemon loop owns the NATS connection. The loop never waits
//! on it: its own bans go to the task with `try_send` (the task queues them, bounded by
//! `fleet.queue`, oldest dropped first, and publishes them whenever the broker is there),
//! and received decisions come back over a channel the loop selects on like its other
//! inputs. What a received decision does is the pure receiving policy
//! (`jail_set::fleet`); the stream sequence of the last one applied is stored with the
//! decisions in the same store transaction (as the position of the source
//! `fleet:<stream>`), so a restart resumes right after it. Losing the broker changes
//! nothing local: no set is flushed, local jails go on banning, reports wait in the queue.

pub mod node;
pub mod wire;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use ipnet::IpNet;
use portcullis_config::FleetSettings;
use portcullis_core::Time;
use portcullis_core::event::{Ban, BanReason};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream_shim::next;

use crate::daemon::jail_set::fleet::{FLEET_JAIL, Received};
use crate::text::chain;

/// Reports taken from the channel and published per round at most.
const PUBLISH_BATCH: usize = 512;
/// How long a publish waits for the stream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the task retries what failed (consumer, publishing) while the broker is away.
const RETRY: Duration = Duration::from_millis(500);
/// Received messages waiting for the loop at most (the task waits beyond it, the loop never).
const INBOUND: usize = 4096;

/// The store key of the fleet stream's position (the last sequence applied).
pub fn position_key(stream: &str) -> String {
    format!("fleet:{stream}")
}

/// This node's own ban, as it is reported (wall times).
#[derive(Clone, Debug)]
pub struct Report {
    /// What was banned.
    pub target: IpNet,
    /// By which jail.
    pub jail: Box<str>,
    /// Since when (wall time).
    pub since: Time,
    /// Until when (wall time); `None`: permanent.
    pub until: Option<Time>,
}

/// One message from the stream: its sequence and what it says (`Err`: not understood; the
/// sequence still counts as applied).
#[derive(Debug)]
pub struct Inbound {
    /// The stream sequence.
    pub seq: u64,
    /// The decision, wall times as sent.
    pub msg: Result<Received, wire::Malformed>,
}

/// What the task tells `status`.
#[derive(Clone, Debug, Default)]
pub struct LinkState {
    /// Whether the client is connected to a server now.
    pub connected: bool,
    /// Whether the consumer of the stream runs.
    pub consuming: bool,
    /// Own reports published (acknowledged by the stream).
    pub published: u64,
    /// Own reports waiting for the broker.
    pub queued: usize,
    /// Own reports dropped because the queue was full (oldest first).
    pub dropped: u64,
    /// The last sequence handed to the loop.
    pub delivered: u64,
    /// The last error, until something works again.
    pub last_error: Option<String>,
}

/// The settings the task needs, resolved at start.
#[derive(Clone, Debug)]
pub struct TaskConfig {
    /// `[fleet]`.
    pub fleet: FleetSettings,
    /// This node's name.
    pub node: String,
}

/// The daemon's handle on the fleet task.
pub struct FleetLink {
    reports: mpsc::Sender<Report>,
    inbound: mpsc::Receiver<Inbound>,
    state: watch::Receiver<LinkState>,
    task: JoinHandle<()>,
    /// Reports the loop could not hand over (the channel was full: the task is that far
    /// behind).
    pub handover_dropped: u64,
}

impl FleetLink {
    /// Start the task: it connects (and reconnects) in the background, so a broker that is
    /// down at start delays nothing. `applied` is the stored sequence to resume after.
    pub fn start(config: TaskConfig, applied: u64) -> FleetLink {
        let (reports_tx, reports_rx) = mpsc::channel(config.fleet.queue.max(1));
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND);
        let (state_tx, state_rx) = watch::channel(LinkState {
            delivered: applied,
            ..LinkState::default()
        });
        let task = tokio::spawn(run(config, reports_rx, inbound_tx, state_tx, applied));
        FleetLink {
            reports: reports_tx,
            inbound: inbound_rx,
            state: state_rx,
            task,
            handover_dropped: 0,
        }
    }

    /// Hand one own ban to the task (never waits).
    pub fn report(&mut self, report: Report) {
        if self.reports.try_send(report).is_err() {
            self.handover_dropped += 1;
        }
    }

    /// The next received message (for the loop's select).
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.inbound.recv().await
    }

    /// A received message already waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Inbound> {
        self.inbound.try_recv().ok()
    }

    /// What the task last said.
    pub fn state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    /// Stop the task (reports still queued are lost: the stream has the rest).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Whether this node reports bans of `jail` (`fleet.jails`, empty: every jail).
pub fn shares(fleet: &FleetSettings, ban: &Ban) -> bool {
    &*ban.jail != FLEET_JAIL
        && !matches!(ban.reason, BanReason::Restored | BanReason::Fleet { .. })
        && (fleet.jails.is_empty() || fleet.jails.iter().any(|j| **j == *ban.jail))
}

/// This node's name: `fleet.node`, else the host name (which must then be a valid node
/// name).
pub fn node_name(fleet: &FleetSettings) -> Result<String> {
    if let Some(n) = &fleet.node {
        return Ok(n.clone());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("fleet.node is empty and the host name cannot be read")?;
    let host = host.trim().split('.').next().unwrap_or_default().to_owned();
    anyhow::ensure!(
        portcullis_config::valid_node_name(&host),
        "fleet.node is empty and the host name {host:?} is no node name (letters, digits, '_', '-'): set fleet.node"
    );
    Ok(host)
}

/// The connect options of `[fleet]`'s credentials. The client reconnects by itself, forever.
pub async fn connect_options(
    fleet: &FleetSettings,
    name: &str,
) -> Result<async_nats::ConnectOptions> {
    let c = &fleet.credentials;
    let mut opts = if let Some(seed) = &c.nkey_seed_file {
        let text = read_secret(seed)?;
        async_nats::ConnectOptions::with_nkey(text.trim().to_owned())
    } else if let Some(creds) = &c.creds_file {
        async_nats::ConnectOptions::new()
            .credentials_file(creds)
            .await
            .with_context(|| format!("cannot read fleet.creds_file {}", creds.display()))?
    } else {
        async_nats::ConnectOptions::new()
    };
    if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(ca) = &c.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    Ok(opts
        .name(format!("portcullis {name}"))
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).clamp(100, 2000))
        })
        .max_reconnects(None)
        .retry_on_initial_connect())
}

/// A secret file's text (the nkey seed).
fn read_secret(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read fleet.nkey_seed_file {}", path.display()))
}

/// The fleet task: connect, consume the stream from `applied`, publish own reports.
async fn run(
    config: TaskConfig,
    mut reports: mpsc::Receiver<Report>,
    inbound: mpsc::Sender<Inbound>,
    state_tx: watch::Sender<LinkState>,
    applied: u64,
) {
    let mut state = LinkState {
        delivered: applied,
        ..LinkState::default()
    };
    let cap = config.fleet.queue.max(1);
    let mut queue: VecDeque<Report> = VecDeque::new();
    let opts = match connect_options(&config.fleet, &config.node).await {
        Ok(o) => o,
        Err(e) => {
            // The configuration was checked; a file that went away since is an error in the
            // log and `status`, and local protection goes on.
            let msg = format!("{e:#}");
            tracing::error!("fleet: {msg}; not connecting");
            state.last_error = Some(msg);
            let _ = state_tx.send(state.clone());
            while let Some(r) = reports.recv().await {
                push(&mut queue, r, cap, &mut state);
                let _ = state_tx.send(state.clone());
            }
            return;
        }
    };
    // Every (re)connection is seen, however briefly the link was down: the consumer is
    // made again after each one.
    let (events_tx, mut events) = mpsc::channel::<async_nats::Event>(64);
    let opts = opts.event_callback(move |ev| {
        let tx = events_tx.clone();
        async move {
            let _ = tx.try_send(ev);
        }
    });
    let client = match opts.connect(config.fleet.servers.clone()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("fleet: cannot connect: {}", chain(&e));
            return;
        }
    };
    let js = jetstream::new(client.clone());
    let mut consumer: Option<jetstream::consumer::pull::Ordered> = None;
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let prefix = config.fleet.prefix.clone();
    loop {
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if connected != state.connected {
            state.connected = connected;
            // A new connection gets a new consumer, right after the last sequence handed
            // on (the old one may be gone with a restarted server).
            consumer = None;
            if connected {
                tracing::info!("fleet: connected to the broker");
            } else {
                tracing::warn!(
                    "fleet: the broker is unreachable; local protection goes on, own reports are queued"
                );
            }
        }
        state.consuming = consumer.is_some();
        state.queued = queue.len();
        let _ = state_tx.send(state.clone());
        tokio::select! {
            r = reports.recv() => {
                let Some(r) = r else { return };
                push(&mut queue, r, cap, &mut state);
                while let Ok(r) = reports.try_recv() {
                    push(&mut queue, r, cap, &mut state);
                }
                if connected {
                    publish(&js, &config, &mut queue, &mut state).await;
                }
            }
            m = next(&mut consumer) => match m {
                Some(Ok(msg)) => {
                    let Ok(info) = msg.info() else { continue };
                    let seq = info.stream_sequence;
                    if seq <= state.delivered {
                        continue; // a redelivery after a consumer reset: applied already
                    }
                    state.delivered = seq;
                    let decoded = wire::decode(&prefix, msg.subject.as_str(), &msg.payload);
                    if inbound.send(Inbound { seq, msg: decoded }).await.is_err() {
                        return; // the daemon is stopping
                    }
                }
                Some(Err(e)) => {
                    let msg = chain(&e);
                    tracing::warn!("fleet: the stream consumer failed: {msg}; recreated");
                    state.last_error = Some(format!("consumer: {msg}"));
                    consumer = None;
                }
                None => consumer = None,
            },
            Some(ev) = events.recv() => match ev {
                async_nats::Event::Connected | async_nats::Event::Disconnected => consumer = None,
                async_nats::Event::ServerError(e) => {
                    // A permissions violation lands here: this node's credentials do not
                    // allow what it tried (a misconfigured server or prefix).
                    tracing::warn!("fleet: the server says: {e}");
                    state.last_error = Some(format!("server: {e}"));
                }
                _ => {}
            },
            _ = retry.tick() => {
                if !connected {
                    continue;
                }
                if consumer.is_none() {
                    match open_consumer(&js, &config.fleet.stream, &prefix, &mut state).await {
                        Ok(c) => {
                            state.last_error = None;
                            consumer = Some(c);
                        }
                        Err(e) => {
                            let msg = format!("{e:#}");
                            if state.last_error.as_deref() != Some(msg.as_str()) {
                                tracing::warn!("fleet: cannot consume the stream: {msg}");
                            }
                            state.last_error = Some(msg);
                        }
                    }
                }
                if !queue.is_empty() {
                    publish(&js, &config, &mut queue, &mut state).await;
                }
            }
        }
    }
}

/// Queue `r`, dropping the oldest beyond `cap`.
fn push(queue: &mut VecDeque<Report>, r: Report, cap: usize, state: &mut LinkState) {
    if queue.len() >= cap {
        queue.pop_front();
        state.dropped += 1;
    }
    queue.push_back(r);
}

/// Create the ordered consumer: right after the last sequence delivered, or a
/// last-per-subject snapshot when the stream no longer holds what follows it (trimmed past
/// it, or a new stream).
async fn open_consumer(
    js: &jetstream::Context,
    stream: &str,
    prefix: &str,
    state: &mut LinkState,
) -> Result<jetstream::consumer::pull::Ordered> {
    let mut s = js
        .get_stream(stream)
        .await
        .with_context(|| format!("stream {stream}"))?;
    let info = s.info().await.context("stream info")?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let deliver_policy = if state.delivered > last {
        tracing::warn!(
            applied = state.delivered,
            last,
            "fleet: the stream is behind what this node applied (a new stream?): taking its last-per-subject snapshot"
        );
        state.delivered = 0;
        DeliverPolicy::LastPerSubject
    } else if state.delivered == 0 || state.delivered + 1 < first {
        if state.delivered > 0 {
            tracing::warn!(
                applied = state.delivered,
                first,
                "fleet: the stream was trimmed past what this node applied: taking its last-per-subject snapshot"
            );
        }
        DeliverPolicy::LastPerSubject
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: state.delivered + 1,
        }
    };
    tracing::info!(?deliver_policy, first, last, "fleet: consuming the stream");
    let consumer = s
        .create_consumer(OrderedConfig {
            deliver_policy,
            // The fleet's subjects (the server wants a filter for last-per-subject).
            filter_subject: format!("{prefix}.>"),
            ..OrderedConfig::default()
        })
        .await
        .context("create the consumer")?;
    consumer.messages().await.context("consume")
}

/// Publish up to [`PUBLISH_BATCH`] queued reports, then wait for their acknowledgements; the
/// acknowledged ones leave the queue (the rest stay, in order, for the next round).
async fn publish(
    js: &jetstream::Context,
    config: &TaskConfig,
    queue: &mut VecDeque<Report>,
    state: &mut LinkState,
) {
    while !queue.is_empty() {
        let mut acks = Vec::new();
        for r in queue.iter().take(PUBLISH_BATCH) {
            let subject = wire::ban_subject(&config.fleet.prefix, &config.node, &r.target);
            let body = wire::Payload {
                until_us: r.until.map(Time::as_micros),
                jail: Some(r.jail.to_string()),
                since_us: Some(r.since.as_micros()),
            };
            let Ok(body) = serde_json::to_vec(&body) else {
                break;
            };
            match js.publish(subject, body.into()).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    state.last_error = Some(format!("publish: {}", chain(&e)));
                    break;
                }
            }
        }
        let mut done = 0;
        for ack in acks {
            match tokio::time::timeout(ACK_TIMEOUT, ack).await {
                Ok(Ok(_)) => done += 1,
                Ok(Err(e)) => {
                    state.last_error = Some(format!("publish: {}", chain(&e)));
                    break;
                }
                Err(_) => {
                    state.last_error = Some("publish: no acknowledgement in time".into());
                    break;
                }
            }
        }
        queue.drain(..done);
        state.published += done as u64;
        if done == 0 {
            return;
        }
    }
}

/// A tiny `StreamExt::next` over an optional stream (pending forever without one).
mod tokio_stream_shim {
    use futures_util::StreamExt;

    pub async fn next<S: futures_util::Stream + Unpin>(s: &mut Option<S>) -> Option<S::Item> {
        match s {
            Some(s) => s.next().await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(jail: &str, reason: BanReason) -> Ban {
        Ban {
            target: "192.0.2.1/32".parse().expect("net"),
            jail: jail.into(),
            since: Time::from_secs(0),
            until: None,
            ban_no: 1,
            reason,
        }
    }

    #[test]
    fn only_own_new_bans_of_shared_jails_are_reported() {
        let mut f = FleetSettings::default();
        assert!(shares(&f, &ban("sshd", BanReason::Manual)));
        assert!(shares(&f, &ban("web", BanReason::Manual)));
        // Restored at start (reported when they were decided) and received ones: never.
        assert!(!shares(&f, &ban("sshd", BanReason::Restored)));
        assert!(!shares(
            &f,
            &ban("fleet", BanReason::Fleet { origin: "a".into() })
        ));
        f.jails = vec!["sshd".into()];
        assert!(shares(&f, &ban("sshd", BanReason::Manual)));
        assert!(!shares(&f, &ban("web", BanReason::Manual)));
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut q = VecDeque::new();
        let mut st = LinkState::default();
        for i in 0..5u8 {
            let r = Report {
                target: IpNet::from(std::net::IpAddr::from([192, 0, 2, i])),
                jail: "sshd".into(),
                since: Time::from_secs(0),
                until: None,
            };
            push(&mut q, r, 3, &mut st);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(st.dropped, 2);
        assert_eq!(q[0].target.to_string(), "192.0.2.2/32");
    }
}
