//! A small HTTP/1.1 responder for `GET /metrics` on TCP or a Unix socket: one request per
//! connection, the request head bounded ([`MAX_HEAD`]) and read under a deadline
//! ([`READ_TIMEOUT`]), the answer written under one ([`WRITE_TIMEOUT`]), at most
//! [`MAX_CONNECTIONS`] at once (more wait in the kernel's backlog). No HTTP library: the
//! one request it answers does not need one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_config::MetricsListen;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// How long a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The running server; dropping it does not stop it, [`stop`](Self::stop) does.
pub struct MetricsServer {
    task: JoinHandle<()>,
    unix_path: Option<PathBuf>,
    /// Where it listens, for the log (a TCP port 0 resolved).
    pub local: String,
}

impl MetricsServer {
    /// Bind `listen` and serve `registry` from a task of the current runtime.
    pub fn start(listen: &MetricsListen, registry: Arc<Registry>) -> Result<MetricsServer> {
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        match listen {
            MetricsListen::Tcp(addr) => {
                let std = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("metrics: cannot listen on {addr}"))?;
                std.set_nonblocking(true)?;
                let listener = TcpListener::from_std(std)?;
                let local = listener.local_addr()?.to_string();
                let task = tokio::spawn(async move {
                    loop {
                        let Ok(permit) = limit.clone().acquire_owned().await else {
                            return;
                        };
                        match listener.accept().await {
                            Ok((conn, _)) => {
                                let r = registry.clone();
                                tokio::spawn(async move {
                                    serve(conn, &r).await;
                                    drop(permit);
                                });
                            }
                            Err(e) => accept_failed(&e).await,
                        }
                    }
                });
                Ok(MetricsServer {
                    task,
                    unix_path: None,
                    local,
                })
            }
            MetricsListen::Unix(path) => {
                let listener = bind_unix(path)?;
                let task = tokio::spawn(async move {
                    loop {
                        let Ok(permit) = limit.clone().acquire_owned().await else {
                            return;
                        };
                        match listener.accept().await {
                            Ok((conn, _)) => {
                                let r = registry.clone();
                                tokio::spawn(async move {
                                    serve(conn, &r).await;
                                    drop(permit);
                                });
                            }
                            Err(e) => accept_failed(&e).await,
                        }
                    }
                });
                Ok(MetricsServer {
                    task,
                    unix_path: Some(path.clone()),
                    local: format!("unix:{}", path.display()),
                })
            }
        }
    }

    /// Stop accepting; a Unix socket's file is removed.
    pub fn stop(self) {
        self.task.abort();
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Out of file descriptors and the like: say so, and do not spin.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!("metrics: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A Unix socket at `path` (a stale socket file is replaced, anything else is an error),
/// mode 0660.
fn bind_unix(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "metrics: {} exists and is not a socket; not replacing it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("metrics: cannot remove the old {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("metrics: cannot create {}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("metrics: cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("metrics: cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics` (or `HEAD`: the same head, no body).
    Metrics { head_only: bool },
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    Bad,
}

/// Read the request line of `head` (the bytes up to the blank line).
pub fn parse_request(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with(b"HTTP/1.") {
        return Request::Bad;
    }
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Request::MethodNotAllowed,
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path == b"/metrics" {
        Request::Metrics { head_only }
    } else {
        Request::NotFound
    }
}

/// Read the head (up to the blank line), at most `MAX_HEAD` bytes: `Err` with the status
/// to answer when it is too long or cut short.
async fn read_head<S: AsyncRead + Unpin>(conn: &mut S) -> Result<Vec<u8>, &'static str> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await.map_err(|_| "")?;
        if n == 0 {
            return Err("");
        }
        head.extend_from_slice(&buf[..n]);
        if memchr::memmem::find(&head, b"\r\n\r\n").is_some()
            || memchr::memmem::find(&head, b"\n\n").is_some()
        {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err("431 Request Header Fields Too Large");
        }
    }
}

/// Answer one connection.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(conn: S, registry: &Registry) {
    serve_within(conn, registry, READ_TIMEOUT).await;
}

/// Answer one connection whose request head must arrive within `read_timeout`.
pub async fn serve_within<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    registry: &Registry,
    read_timeout: Duration,
) {
    let head = match tokio::time::timeout(read_timeout, read_head(&mut conn)).await {
        Ok(Ok(h)) => h,
        Ok(Err(status)) if !status.is_empty() => {
            let _ = respond(&mut conn, status, "text/plain", b"", false).await;
            return;
        }
        // Timed out, cut short or failed: nothing to answer.
        _ => return,
    };
    let _ = match parse_request(&head) {
        Request::Metrics { head_only } => {
            let body = super::encode(registry);
            respond(
                &mut conn,
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body.as_bytes(),
                head_only,
            )
            .await
        }
        Request::NotFound => {
            respond(
                &mut conn,
                "404 Not Found",
                "text/plain",
                b"only /metrics\n",
                false,
            )
            .await
        }
        Request::MethodNotAllowed => {
            respond(
                &mut conn,
                "405 Method Not Allowed",
                "text/plain",
                b"GET /metrics\n",
                false,
            )
            .await
        }
        Request::Bad => respond(&mut conn, "400 Bad Request", "text/plain", b"", false).await,
    };
}

async fn respond<S: AsyncWrite + Unpin>(
    conn: &mut S,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    );
    let write = async {
        conn.write_all(head.as_bytes()).await?;
        if !head_only {
            conn.write_all(body).await?;
        }
        conn.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
