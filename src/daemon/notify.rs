//! Notification hooks: alerts (and optionally bans) as JSON to programs and webhooks.
//!
//! Hooks run on their own tasks behind a bounded queue, so a slow or dead receiver never
//! delays a ban; when the queue is full, events are dropped and counted. Programs get a fixed
//! argv from the configuration and the event on stdin: no shell, and no log text in argv.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_config::{NotifyEvent, NotifySettings};
use portcullis_core::Decision;
use portcullis_core::event::Alert;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Events waiting for hooks; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;

/// The daemon's handle on the hook runner.
pub struct Notifier {
    tx: Option<mpsc::Sender<Value>>,
    events: Vec<NotifyEvent>,
    /// Events dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
}

impl Notifier {
    /// Start the runner (nothing runs when no hook is configured).
    pub fn start(settings: &NotifySettings) -> Notifier {
        let dropped = Arc::new(AtomicU64::new(0));
        if settings.exec.is_empty() && settings.webhooks.is_empty() {
            return Notifier {
                tx: None,
                events: Vec::new(),
                dropped,
            };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run_hooks(rx, settings.clone()));
        Notifier {
            tx: Some(tx),
            events: settings.events.clone(),
            dropped,
        }
    }

    /// Queue the hook events one decision calls for.
    pub fn decision(&self, d: &Decision) {
        let Some(tx) = &self.tx else { return };
        let Some((kind, body)) = event_of(d) else {
            return;
        };
        let wanted = self.events.contains(&kind)
            || (kind == NotifyEvent::PermanentBan && self.events.contains(&NotifyEvent::Ban));
        if !wanted {
            return;
        }
        if tx.try_send(body).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("notification queue full: event dropped");
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| String::new(), |h| h.trim().to_string())
}

/// The JSON of a decision's event, if it is one hooks can receive.
pub fn event_of(d: &Decision) -> Option<(NotifyEvent, Value)> {
    let host = hostname();
    match d {
        Decision::Alert(Alert::Breach {
            addr,
            user,
            failures,
            time,
        }) => Some((
            NotifyEvent::Breach,
            json!({"event": "breach", "host": host, "time": time.to_string(), "addr": addr.to_string(),
                   "user": user.as_deref(), "failures": failures}),
        )),
        Decision::Alert(Alert::RootLogin { addr, time }) => Some((
            NotifyEvent::RootLogin,
            json!({"event": "root_login", "host": host, "time": time.to_string(), "addr": addr.to_string(),
                   "user": "root"}),
        )),
        Decision::Ban(b) => {
            let kind = if b.is_permanent() {
                NotifyEvent::PermanentBan
            } else {
                NotifyEvent::Ban
            };
            Some((
                kind,
                json!({"event": kind.as_str(), "host": host, "jail": &*b.jail, "target": b.target.to_string(),
                       "time": b.since.to_string(), "until": b.until.map(|u| u.to_string()),
                       "permanent": b.is_permanent(), "ban_no": b.ban_no}),
            ))
        }
        Decision::Unban { .. } => None,
    }
}

async fn run_hooks(mut rx: mpsc::Receiver<Value>, settings: NotifySettings) {
    while let Some(event) = rx.recv().await {
        let body = event.to_string();
        for argv in &settings.exec {
            run_program(argv, &body, settings.timeout).await;
        }
        for url in &settings.webhooks {
            let url = url.clone();
            let body = body.clone();
            let (timeout, retries) = (settings.timeout, settings.retries);
            // Each webhook on its own task: one slow endpoint does not hold the others.
            tokio::spawn(async move {
                let result =
                    tokio::task::spawn_blocking(move || post(&url, &body, timeout, retries)).await;
                if let Ok(Err(e)) = result {
                    tracing::warn!("webhook failed: {e}");
                }
            });
        }
    }
}

async fn run_program(argv: &[String], body: &str, timeout: Duration) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(program, "notification program failed to start: {e}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => {}
        Ok(Ok(out)) => tracing::warn!(
            program,
            status = %out.status,
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "notification program failed"
        ),
        Ok(Err(e)) => tracing::warn!(program, "notification program: {e}"),
        Err(_) => tracing::warn!(
            program,
            "notification program timed out after {timeout:?}; killed"
        ),
    }
}

fn post(url: &str, body: &str, timeout: Duration, retries: u32) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .into();
    let mut delay = Duration::from_secs(1);
    let mut last = String::new();
    for attempt in 0..=retries {
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{url}: {e} (try {})", attempt + 1),
        }
        if attempt < retries {
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    Err(last)
}
