//! Notification hooks: alerts (and optionally bans) as JSON to programs and webhooks.
//!
//! Hooks run on a fixed pool of [`WORKERS`] threads behind one bounded queue of runs (one
//! per event and hook), so neither the ban path nor the control socket ever waits for a
//! hook, and a flood of events against a dead receiver costs neither threads nor memory:
//! a run that finds the queue full is dropped and counted (`status`, and a log line at most
//! every [`DROP_LOG_INTERVAL`]). Programs get a fixed argv from the configuration and the
//! event on stdin: no shell, and no log text in argv. A program run is bounded as a whole
//! (writing its stdin included: a program that never reads it cannot hold a worker); it
//! runs in a process group of its own, and on timeout the whole group is killed, so
//! children it left behind go too. A webhook try is bounded by the same timeout.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portcullis_config::{NotifyEvent, NotifySettings};
use portcullis_core::Decision;
use portcullis_core::event::Alert;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};

/// Worker threads running hooks.
pub const WORKERS: usize = 2;
/// At most one "queue full" log line per this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The last bytes of a program's stderr kept for the log.
const STDERR_KEEP: usize = 2048;

/// Counters of the hook runs, for `status`.
#[derive(Debug, Default)]
pub struct HookStats {
    /// Runs that succeeded.
    pub delivered: AtomicU64,
    /// Runs that failed (error, non-zero exit, timeout, every webhook try failed).
    pub failed: AtomicU64,
    /// Runs dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// What one run does.
#[derive(Clone, Debug)]
enum Hook {
    Exec(Arc<[String]>),
    Webhook(Arc<str>),
}

/// One hook run: a hook and the event for it.
struct Run {
    hook: Hook,
    body: Arc<str>,
}

/// The queue the workers take runs from.
struct Queue {
    runs: Mutex<VecDeque<Run>>,
    ready: Condvar,
    capacity: usize,
    /// Set when the daemon stops: workers return, a running program is killed.
    stopping: AtomicBool,
    timeout: Duration,
    retries: u32,
    stats: Arc<HookStats>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Run>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The daemon's handle on the hook workers.
pub struct Notifier {
    queue: Option<Arc<Queue>>,
    hooks: Vec<Hook>,
    events: Vec<NotifyEvent>,
    stats: Arc<HookStats>,
    /// When the last "queue full" line was logged, and the drops since.
    last_drop_log: Option<Instant>,
    unlogged_drops: u64,
}

impl Notifier {
    /// Start the workers (none when no hook is configured).
    pub fn start(settings: &NotifySettings) -> Notifier {
        let stats = Arc::new(HookStats::default());
        let hooks: Vec<Hook> = settings
            .exec
            .iter()
            .map(|argv| Hook::Exec(argv.as_slice().into()))
            .chain(
                settings
                    .webhooks
                    .iter()
                    .map(|u| Hook::Webhook(u.as_str().into())),
            )
            .collect();
        let mut notifier = Notifier {
            queue: None,
            hooks,
            events: settings.events.clone(),
            stats: stats.clone(),
            last_drop_log: None,
            unlogged_drops: 0,
        };
        if notifier.hooks.is_empty() {
            return notifier;
        }
        let queue = Arc::new(Queue {
            runs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity: settings.queue.max(1),
            stopping: AtomicBool::new(false),
            timeout: settings.timeout,
            retries: settings.retries,
            stats,
        });
        let mut started = 0;
        for i in 0..WORKERS {
            let q = queue.clone();
            match std::thread::Builder::new()
                .name(format!("hook-{i}"))
                .spawn(move || work(&q))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!("cannot start hook worker {i}: {e}"),
            }
        }
        if started > 0 {
            notifier.queue = Some(queue);
        }
        notifier
    }

    /// Counters of the runs so far, and how many wait.
    pub fn stats(&self) -> (&HookStats, usize) {
        let waiting = self.queue.as_ref().map_or(0, |q| q.lock().len());
        (&self.stats, waiting)
    }

    /// Queue the hook runs one decision calls for; never blocks.
    pub fn decision(&mut self, d: &Decision) {
        if self.queue.is_none() {
            return;
        }
        let Some((kind, body)) = event_of(d) else {
            return;
        };
        let wanted = self.events.contains(&kind)
            || (kind == NotifyEvent::PermanentBan && self.events.contains(&NotifyEvent::Ban));
        if !wanted {
            return;
        }
        self.enqueue(body);
    }

    /// Queue the hook runs of a campaign report (`report`: the store's JSON of it), if
    /// hooks want `campaign` events; never blocks.
    pub fn campaign(&mut self, report: &Value) {
        if self.queue.is_none() || !self.events.contains(&NotifyEvent::Campaign) {
            return;
        }
        let mut body = json!({"event": "campaign", "host": hostname()});
        if let (Some(b), Some(r)) = (body.as_object_mut(), report.as_object()) {
            for (k, v) in r {
                b.insert(k.clone(), v.clone());
            }
        }
        self.enqueue(body);
    }

    /// One run per hook of `body`, dropped and counted when the queue is full.
    fn enqueue(&mut self, body: Value) {
        let Some(queue) = &self.queue else { return };
        let body: Arc<str> = body.to_string().into();
        let mut dropped = 0u64;
        {
            let mut runs = queue.lock();
            for hook in &self.hooks {
                if runs.len() >= queue.capacity {
                    dropped += 1;
                    continue;
                }
                runs.push_back(Run {
                    hook: hook.clone(),
                    body: body.clone(),
                });
                queue.ready.notify_one();
            }
        }
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
            self.unlogged_drops += dropped;
            if self
                .last_drop_log
                .is_none_or(|t| t.elapsed() >= DROP_LOG_INTERVAL)
            {
                tracing::warn!(
                    dropped = self.unlogged_drops,
                    total = self.stats.dropped.load(Ordering::Relaxed),
                    capacity = queue.capacity,
                    "notification queue full: hook runs dropped (hooks too slow or dead?)"
                );
                self.last_drop_log = Some(Instant::now());
                self.unlogged_drops = 0;
            }
        }
    }

    /// Stop the workers: queued runs are abandoned, a running program's group is killed
    /// (a webhook request in flight ends with the process). Does not wait.
    pub fn stop(&self) {
        if let Some(q) = &self.queue {
            q.stopping.store(true, Ordering::SeqCst);
            q.lock().clear();
            q.ready.notify_all();
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

/// One worker: take runs until the daemon stops.
fn work(q: &Queue) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(q.timeout))
        .http_status_as_error(true)
        .build()
        .into();
    loop {
        let run = {
            let mut runs = q.lock();
            loop {
                if q.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(r) = runs.pop_front() {
                    break r;
                }
                runs = q.ready.wait(runs).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = match &run.hook {
            Hook::Exec(argv) => run_program(argv, &run.body, q.timeout, &q.stopping),
            Hook::Webhook(url) => post(&agent, url, &run.body, q.retries, &q.stopping),
        };
        match result {
            Ok(()) => {
                q.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                q.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("notification hook failed: {e}");
            }
        }
    }
}

/// Run `argv` with `body` and a newline on its stdin, all within `timeout`.
fn run_program(
    argv: &[String],
    body: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group (pgid = its pid): killed as a whole on timeout.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{program}: cannot start: {e}"))?;
    let outcome = supervise(&mut child, format!("{body}\n").as_bytes(), deadline, stop);
    let failure = match outcome {
        Ok(Some((status, _))) if status.success() => return Ok(()),
        Ok(Some((status, stderr))) => {
            return Err(format!(
                "{program}: {status}: {}",
                String::from_utf8_lossy(&stderr).trim()
            ));
        }
        Ok(None) if stop.load(Ordering::SeqCst) => format!("{program}: the daemon is stopping"),
        Ok(None) => format!("{program}: timed out after {timeout:?}"),
        Err(e) => format!("{program}: {e}"),
    };
    // Timed out, stopping, or supervising failed: the whole group goes.
    let _ = kill_process_group(Pid::from_child(&child), Signal::KILL);
    let _ = child.wait();
    Err(format!("{failure}; its process group was killed"))
}

/// Feed `input` to the child's stdin and collect (the end of) its stderr until it exits;
/// `None` at `deadline` or on stop. Pipes are non-blocking and waited on with poll(2) in
/// short slices, so no write or read can outlast the deadline.
fn supervise(
    child: &mut Child,
    input: &[u8],
    deadline: Instant,
    stop: &AtomicBool,
) -> std::io::Result<Option<(ExitStatus, Vec<u8>)>> {
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(AsFd::as_fd),
        stderr.as_ref().map(AsFd::as_fd),
    ]
    .into_iter()
    .flatten()
    {
        rustix::io::ioctl_fionbio(fd, true)?;
    }
    let mut written = 0usize;
    let mut err_tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(status) = child.try_wait()? {
            // Whatever is already in the pipe, without waiting for children holding it.
            if let Some(e) = stderr.as_mut() {
                while let Ok(n @ 1..) = e.read(&mut buf) {
                    keep_tail(&mut err_tail, buf.get(..n).unwrap_or(&[]));
                }
            }
            return Ok(Some((status, err_tail)));
        }
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let slice = (deadline - now).min(Duration::from_millis(50));
        let ts = Timespec::try_from(slice).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        });
        {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
            if let Some(i) = &stdin {
                fds.push(PollFd::new(i, PollFlags::OUT));
            }
            if let Some(e) = &stderr {
                fds.push(PollFd::new(e, PollFlags::IN));
            }
            if fds.is_empty() {
                std::thread::sleep(slice);
            } else {
                match poll(&mut fds, Some(&ts)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if let Some(i) = stdin.as_mut() {
            match i.write(input.get(written..).unwrap_or(&[])) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                // EPIPE: it closed its stdin; it may still exit fine.
                Err(_) => written = input.len(),
            }
            if written >= input.len() {
                stdin = None; // closed: EOF for the program
            }
        }
        if let Some(e) = stderr.as_mut() {
            match e.read(&mut buf) {
                Ok(0) => stderr = None,
                Ok(n) => keep_tail(&mut err_tail, buf.get(..n).unwrap_or(&[])),
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => stderr = None,
            }
        }
    }
}

fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(more);
    if tail.len() > STDERR_KEEP {
        tail.drain(..tail.len() - STDERR_KEEP);
    }
}

/// POST `body` to `url`, retrying with backoff (1 s, 2 s, … up to 30 s); each try is
/// bounded by the agent's global timeout.
fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &str,
    retries: u32,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut delay = Duration::from_secs(1);
    let mut last = String::new();
    for attempt in 0..=retries {
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("webhook {url}: {e} (try {})", attempt + 1),
        }
        if attempt < retries {
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if stop.load(Ordering::SeqCst) {
                    return Err(last);
                }
                let left = until.saturating_duration_since(Instant::now());
                std::thread::sleep(Duration::from_millis(100).min(left));
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet: it runs no more).
    fn dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        }
    }

    fn wait_dead(pid: u32) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if dead(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_program_gets_the_event_on_stdin_and_its_failure_is_reported() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("got");
        let stop = AtomicBool::new(false);
        let argv = sh(&format!("cat > {}", out.display()));
        run_program(&argv, r#"{"event":"ban"}"#, Duration::from_secs(10), &stop).expect("ok");
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "{\"event\":\"ban\"}\n"
        );
        let e = run_program(
            &sh("echo broken >&2; exit 3"),
            "{}",
            Duration::from_secs(10),
            &stop,
        )
        .expect_err("exit 3");
        assert!(e.contains("exit status: 3") && e.contains("broken"), "{e}");
        let e = run_program(
            &["/nonexistent/hook".to_string()],
            "{}",
            Duration::from_secs(1),
            &stop,
        )
        .expect_err("missing program");
        assert!(e.contains("cannot start"), "{e}");
    }

    #[test]
    fn a_program_that_never_reads_stdin_is_killed_with_its_group_at_the_timeout() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pids = tmp.path().join("pids");
        // A grandchild in the background, then sleep without reading the 4 MiB event: the
        // write to its stdin can never finish.
        let argv = sh(&format!(
            "sleep 300 & echo $! > {p}.g; echo $$ > {p}.c; exec sleep 300",
            p = pids.display()
        ));
        let body = "x".repeat(4 << 20);
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        let e = run_program(&argv, &body, Duration::from_millis(700), &stop).expect_err("timeout");
        let took = t0.elapsed();
        assert!(
            e.contains("timed out") && e.contains("process group was killed"),
            "{e}"
        );
        assert!(took < Duration::from_secs(5), "returned after {took:?}");
        let read_pid = |ext: &str| -> u32 {
            std::fs::read_to_string(format!("{}.{ext}", pids.display()))
                .expect("pid file")
                .trim()
                .parse()
                .expect("pid")
        };
        assert!(wait_dead(read_pid("c")), "the hook survived");
        assert!(wait_dead(read_pid("g")), "the hook's child survived");
    }

    #[test]
    fn stopping_kills_a_running_program() {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            run_program(&sh("exec sleep 300"), "{}", Duration::from_secs(300), &s2)
        });
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        let e = t.join().expect("thread").expect_err("stopped");
        assert!(e.contains("stopping"), "{e}");
    }
}
