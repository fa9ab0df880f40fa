//! The control server: accept, check peer credentials, read bounded request lines, call the
//! daemon's [`Handler`], write responses.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
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

/// Limits of the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Who may connect.
    pub access: AccessPolicy,
    /// Connections served at once; more are answered `busy` and closed, so a stuck or
    /// malicious client cannot exhaust tasks or file descriptors.
    pub max_connections: usize,
    /// How long a connection may sit without completing a request line (and how long a
    /// response write may take) before it is closed.
    pub read_timeout: Duration,
    /// Longest request line accepted.
    pub max_line: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            access: AccessPolicy::default(),
            max_connections: 16,
            read_timeout: Duration::from_secs(30),
            max_line: MAX_REQUEST_LINE,
        }
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
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        // A fresh socket's send buffer is empty: this small write never blocks.
                        let line = Response::err(0, ErrorKind::Busy, "too many control connections; try again").to_line();
                        let _ = stream.try_write(&line);
                        tracing::warn!("control connection refused: limit reached");
                        continue;
                    };
                    let (handler, config, stop_rx) = (handler.clone(), config.clone(), stop_rx.clone());
                    tasks.spawn(async move {
                        serve_connection(stream, &*handler, &config, stop_rx).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

async fn serve_connection<H: Handler>(
    stream: UnixStream,
    handler: &H,
    config: &ServerConfig,
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
        let _ = tokio::time::timeout(config.read_timeout, write.write_all(&line)).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(config.read_timeout, read_line(&mut reader, &mut line, config.max_line)) => r,
            _ = stop.wait_for(|stopping| *stopping) => return,
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
                    match handler.handle(peer, req.command).await {
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
        match tokio::time::timeout(config.read_timeout, write.write_all(&response.to_line())).await
        {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
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
