//! The control server: accept, check peer credentials, read bounded request lines, call the
//! daemon's [`Handler`], write responses.
//!
//! A flood of clients, or clients that stall, cannot take the socket away from the operator
//! nor reach the daemon's loop: at most [`MAX_CONNECTIONS`] are served at once, each read and
//! each write has a deadline, and when every slot is taken a connection that has kept the
//! server waiting on its client for [`CLIENT_GRACE`] (idle, half a request, an answer it does
//! not read) is closed to make room. Only when every slot holds a request the daemon is
//! working on is a new connection answered `busy` and closed: nothing ever queues without
//! bound. A connection that got its answer and sent nothing since is the first to go, at
//! once: it has had its turn. The loop hands its answer over and never touches a socket.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::data::Reply;
use crate::protocol::{Command, ErrorBody, ErrorKind, MAX_REQUEST_LINE, Response, decode_request};

/// Who is on the other end of a connection (from `SO_PEERCRED`), for audit logs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid of the connecting process.
    pub uid: u32,
    /// Effective gid of the connecting process.
    pub gid: u32,
    /// Its pid, when the kernel reports it.
    pub pid: Option<i32>,
}

/// The daemon's side: turns one command into a reply. Implement it with `async fn handle`.
pub trait Handler: Send + Sync + 'static {
    /// Carry out `command` for `peer`. Requests on one connection are handled one at a time;
    /// different connections run concurrently.
    fn handle(
        &self,
        peer: Peer,
        command: Command,
    ) -> impl Future<Output = Result<Reply, ErrorBody>> + Send;
}

/// Which peers may use the socket. The socket file is 0600 root already; this is the second
/// lock, and the only one if an operator loosens the file mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Allowed effective uids. Default: root only.
    pub uids: Vec<u32>,
    /// Allowed effective (primary) gids, e.g. an `portcullis-admin` group. Default: none.
    pub gids: Vec<u32>,
}

impl Default for AccessPolicy {
    fn default() -> AccessPolicy {
        AccessPolicy {
            uids: vec![0],
            gids: Vec::new(),
        }
    }
}

impl AccessPolicy {
    /// Whether `peer` may send commands.
    pub fn allows(&self, peer: &Peer) -> bool {
        self.uids.contains(&peer.uid) || self.gids.contains(&peer.gid)
    }
}

/// Connections served at once. Each costs a task, a socket and its buffers (up to one whole
/// answer: a `bans` list of 100k bans is ~13 MB), so this bounds the server's memory and
/// file descriptors (well under systemd's default soft limit of 1024); the CLI holds one
/// connection per command, so 64 is far more than operators and scripts use.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection may keep the server waiting on its client (no complete request
/// line yet, or an answer it does not read) before, when every slot is taken, a new
/// connection gets its slot (one idle after its answer gives way at once). Long enough for a
/// client that writes its request as it connects (the CLI does; one that is slower is told
/// `busy` and the CLI's client tries again), short enough that a crowd of stalled clients
/// never locks the operator out.
pub const CLIENT_GRACE: Duration = Duration::from_millis(250);

/// How long a connection may sit without completing a request line before it is answered
/// `timeout` and closed (when no new connection needed its slot before).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long writing one answer may take before the connection is closed: a client that does
/// not read holds the answer's memory and a slot at most this long. 100k bans (~13 MB) are
/// read by the CLI in well under a second.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an answer still being written may take once the server stops (SIGTERM must
/// end the daemon within seconds, whatever its clients do).
const STOP_WRITE_GRACE: Duration = Duration::from_secs(1);

/// How often the server logs how many connections it refused or closed to make room (one
/// warning per connection would let a flood of clients flood the log too).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Limits of the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Who may connect.
    pub access: AccessPolicy,
    /// Connections served at once ([`MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// How long a connection may wait on its client before a new one may take its slot
    /// ([`CLIENT_GRACE`]).
    pub client_grace: Duration,
    /// How long a connection may sit without completing a request line ([`READ_TIMEOUT`]).
    pub read_timeout: Duration,
    /// How long writing one answer may take ([`WRITE_TIMEOUT`]).
    pub write_timeout: Duration,
    /// Longest request line accepted.
    pub max_line: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            access: AccessPolicy::default(),
            max_connections: MAX_CONNECTIONS,
            client_grace: CLIENT_GRACE,
            read_timeout: READ_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            max_line: MAX_REQUEST_LINE,
        }
    }
}

/// A served connection's place in the [`Slots`].
struct Slot {
    /// Milliseconds after [`Slots::epoch`] since which the connection waits on its client,
    /// or [`ON_DAEMON`] while the daemon works on its request.
    waiting_since: AtomicU64,
    /// Told when a new connection took this slot.
    evicted: Notify,
}

/// [`Slot::waiting_since`] of a connection whose request the daemon is working on: such a
/// connection keeps its slot.
const ON_DAEMON: u64 = u64::MAX;

/// [`Slot::waiting_since`] of a connection that got its answer and sent nothing since: it
/// has had its turn, so it is the first to make room (no grace).
const ANSWERED: u64 = 0;

/// The served connections, oldest first.
struct Slots {
    max: usize,
    grace: Duration,
    epoch: Instant,
    held: Mutex<Vec<Arc<Slot>>>,
}

/// How a slot was found for a new connection.
enum Admission {
    Free,
    /// The connection that waited longest on its client was told to close.
    Evicted,
}

impl Slots {
    /// Milliseconds since the epoch, never [`ANSWERED`] nor [`ON_DAEMON`].
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(ON_DAEMON - 2)
            .saturating_add(1)
    }

    /// A slot for a new connection, if one is free or held by a connection that waits on
    /// its client after its answer, or for the grace time; `None` when every slot is in use.
    fn admit(self: &Arc<Self>) -> Option<(SlotGuard, Admission)> {
        let now = self.now();
        let grace = u64::try_from(self.grace.as_millis()).unwrap_or(u64::MAX);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mut admission = Admission::Free;
        if held.len() >= self.max {
            let (i, _) = held
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.waiting_since.load(Ordering::Relaxed)))
                .filter(|&(_, since)| {
                    since == ANSWERED || (since != ON_DAEMON && now.saturating_sub(since) >= grace)
                })
                .min_by_key(|&(_, since)| since)?;
            held.remove(i).evicted.notify_one();
            admission = Admission::Evicted;
        }
        let slot = Arc::new(Slot {
            waiting_since: AtomicU64::new(now),
            evicted: Notify::new(),
        });
        held.push(slot.clone());
        Some((
            SlotGuard {
                slots: self.clone(),
                slot,
            },
            admission,
        ))
    }
}

/// A connection's slot: given back when the connection ends.
struct SlotGuard {
    slots: Arc<Slots>,
    slot: Arc<Slot>,
}

impl SlotGuard {
    fn on_client(&self) {
        self.slot
            .waiting_since
            .store(self.slots.now(), Ordering::Relaxed);
    }

    fn answered(&self) {
        self.slot.waiting_since.store(ANSWERED, Ordering::Relaxed);
    }

    fn on_daemon(&self) {
        self.slot.waiting_since.store(ON_DAEMON, Ordering::Relaxed);
    }

    /// Completes when a new connection took this slot.
    async fn evicted(&self) {
        self.slot.evicted.notified().await;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|s| Arc::ptr_eq(s, &self.slot)) {
            held.remove(i);
        }
    }
}

/// Counts refused and evicted connections, logged at most every [`REFUSAL_LOG_INTERVAL`].
#[derive(Default)]
struct RefusalLog {
    refused: u64,
    evicted: u64,
    since: Option<Instant>,
}

impl RefusalLog {
    fn note(&mut self, evicted: bool) {
        if evicted {
            self.evicted += 1;
        } else {
            self.refused += 1;
        }
        if self.since.is_none() {
            // The first of a burst is logged at once, the rest as a count per interval.
            self.flush();
            self.since = Some(Instant::now());
        }
    }

    /// When the counts gathered since the last warning are due, if a burst is open.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.since
            .map(|t| tokio::time::Instant::from_std(t + REFUSAL_LOG_INTERVAL))
    }

    /// Log what was gathered; a quiet interval ends the burst.
    fn tick(&mut self) {
        let quiet = self.refused + self.evicted == 0;
        self.flush();
        self.since = if quiet { None } else { Some(Instant::now()) };
    }

    fn flush(&mut self) {
        if self.refused + self.evicted > 0 {
            tracing::warn!(
                refused_busy = self.refused,
                closed_to_make_room = self.evicted,
                "control connections over the limit"
            );
        }
        self.refused = 0;
        self.evicted = 0;
    }
}

/// Serve `listener` until `shutdown` completes, then stop accepting, let connections finish
/// the request in hand, and return. Accept errors (e.g. `EMFILE`) are logged and retried
/// after a short pause; they never end the server.
pub async fn serve<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let slots = Arc::new(Slots {
        max: config.max_connections.max(1),
        grace: config.client_grace,
        epoch: Instant::now(),
        held: Mutex::new(Vec::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = sleep_until(refusals.due()) => refusals.tick(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some((slot, admission)) = slots.admit() else {
                        // A fresh socket's send buffer is empty: this small write never blocks.
                        let line = Response::err(0, ErrorKind::Busy, "too many control connections; try again").to_line();
                        let _ = stream.try_write(&line);
                        refusals.note(false);
                        continue;
                    };
                    if let Admission::Evicted = admission {
                        refusals.note(true);
                    }
                    let (handler, config, stop_rx) = (handler.clone(), config.clone(), stop_rx.clone());
                    tasks.spawn(async move {
                        serve_connection(stream, &*handler, &config, &slot, stop_rx).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    refusals.flush();
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// The line written to a connection closed to make room for a new one (if its socket
/// takes it; one that does not read may not see it).
fn evicted_line() -> Vec<u8> {
    Response::err(
        0,
        ErrorKind::Busy,
        "closed: the server needed this idle connection's slot",
    )
    .to_line()
}

async fn serve_connection<H: Handler>(
    stream: UnixStream,
    handler: &H,
    config: &ServerConfig,
    slot: &SlotGuard,
    mut stop: watch::Receiver<bool>,
) {
    let peer = match stream.peer_cred() {
        Ok(c) => Peer {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "control connection without peer credentials; closed");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    if !config.access.allows(&peer) {
        tracing::warn!(
            uid = peer.uid,
            gid = peer.gid,
            pid = peer.pid,
            "control connection refused: permission denied"
        );
        let msg = format!(
            "permission denied: uid {} is not allowed to control portcullis",
            peer.uid
        );
        let line = Response::err(0, ErrorKind::PermissionDenied, msg).to_line();
        let _ = tokio::time::timeout(config.write_timeout, write.write_all(&line)).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(config.read_timeout, read_line(&mut reader, &mut line, config.max_line)) => r,
            () = stopped(&mut stop) => return,
            () = slot.evicted() => {
                let _ = write.try_write(&evicted_line());
                return;
            }
        };
        let response = match read {
            Err(_elapsed) => {
                let line = Response::err(
                    0,
                    ErrorKind::Timeout,
                    "no complete request within the read timeout",
                )
                .to_line();
                let _ = tokio::time::timeout(Duration::from_secs(1), write.write_all(&line)).await;
                return;
            }
            Ok(Err(_)) | Ok(Ok(LineRead::Eof)) => return,
            Ok(Ok(LineRead::TooLong)) => Response::err(
                0,
                ErrorKind::LineTooLong,
                format!("request longer than {} bytes", config.max_line),
            ),
            Ok(Ok(LineRead::Line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Ok(LineRead::Line)) => match decode_request(&line) {
                Err(e) => e.to_response(),
                Ok(req) => {
                    tracing::debug!(
                        uid = peer.uid,
                        id = req.id,
                        cmd = req.command.name(),
                        "control request"
                    );
                    // The request is the daemon's now: this connection keeps its slot.
                    slot.on_daemon();
                    let reply = handler.handle(peer, req.command).await;
                    slot.on_client();
                    match reply {
                        Ok(reply) => match serde_json::to_value(&reply) {
                            Ok(data) => Response::ok(req.id, data),
                            Err(e) => Response::err(
                                req.id,
                                ErrorKind::Internal,
                                format!("cannot encode reply: {e}"),
                            ),
                        },
                        Err(e) => Response {
                            id: req.id,
                            result: Err(e),
                        },
                    }
                }
            },
        };
        let bytes = response.to_line();
        drop(response);
        // The answer goes out from this task, never from the daemon's loop: a client that
        // does not read holds its slot (until a new connection needs it) and the answer's
        // memory for at most the write timeout.
        let answer = tokio::time::timeout(config.write_timeout, write.write_all(&bytes));
        tokio::pin!(answer);
        let written = tokio::select! {
            biased;
            w = &mut answer => w,
            () = slot.evicted() => return,
            // Stopping: the answer gets a last moment, so the daemon's exit is not held up
            // by a client that does not read.
            () = stopped(&mut stop) => match tokio::time::timeout(STOP_WRITE_GRACE, &mut answer).await {
                Ok(w) => w,
                Err(_) => return,
            },
        };
        match written {
            Ok(Ok(())) => slot.answered(),
            _ => return,
        }
    }
}

/// Sleep until `at`, forever when `None`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Completes once the server stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the server is gone: stopped too.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

enum LineRead {
    /// `buf` holds one line without its newline (or the unterminated tail before EOF).
    Line,
    /// The line exceeded the limit; it was read up to its newline and thrown away.
    TooLong,
    /// End of stream with nothing pending.
    Eof,
}

/// Read one `\n`-terminated line into `buf`, holding at most `max` bytes of it in memory.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (part, used, done) = match memchr_newline(chunk) {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn line_reader_bounds_memory_and_resyncs() {
        let input = format!("{}\nshort\n{}\ntail", "x".repeat(100), "y".repeat(5));
        let mut r = BufReader::with_capacity(7, input.as_bytes());
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::TooLong
        ));
        assert!(buf.len() <= 10);
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"short");
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"yyyyy");
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"tail");
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Eof
        ));
    }

    #[test]
    fn default_policy_is_root_only() {
        let p = AccessPolicy::default();
        assert!(p.allows(&Peer {
            uid: 0,
            gid: 0,
            pid: None
        }));
        assert!(!p.allows(&Peer {
            uid: 1000,
            gid: 0,
            pid: None
        }));
        let p = AccessPolicy {
            uids: vec![0],
            gids: vec![4],
        };
        assert!(p.allows(&Peer {
            uid: 1000,
            gid: 4,
            pid: None
        }));
    }
}
