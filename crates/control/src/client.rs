//! The synchronous client used by the CLI.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::protocol::{Command, ErrorKind, MAX_RESPONSE_LINE, Request, Response, decode_response};

/// How long [`Client::request`] waits for an answer by default. A `flush` of 100k bans
/// takes about a second; a minute leaves ample room without hanging a script forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Client::request`] keeps trying while the daemon answers `busy` (every
/// connection slot holds a request it is working on): a moment of overload should not fail
/// an operator's command, a daemon that stays overloaded is reported. 15 s: a flood of 250
/// root clients asking back to back on a loaded 2-core machine kept the CLI out for 5-7 s
/// (slots are won, not queued for).
pub const BUSY_RETRY: Duration = Duration::from_secs(15);

/// Open the socket at `path` with `timeout` for reads and writes.
fn open(path: &Path, timeout: Duration) -> Result<UnixStream, ClientError> {
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            let path = path.to_owned();
            return Err(match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning { path, source: e }
                }
                io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                    path,
                    detail: e.to_string(),
                },
                _ => ClientError::Connect { path, source: e },
            });
        }
    };
    stream
        .set_read_timeout(Some(timeout))
        .map_err(ClientError::Io)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(ClientError::Io)?;
    Ok(stream)
}

/// Why talking to the daemon failed. The CLI maps these to messages and exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No daemon listens on the socket (no file, or a stale one).
    #[error("portcullis is not running (nothing listening on {path})")]
    NotRunning {
        /// The socket path tried.
        path: PathBuf,
        /// `ENOENT` or `ECONNREFUSED`.
        #[source]
        source: io::Error,
    },
    /// The socket file or the daemon refused this user.
    #[error("permission denied on {path}: {detail} (run as root)")]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
        /// The OS or daemon message.
        detail: String,
    },
    /// Connecting failed for another reason.
    #[error("cannot connect to {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("the daemon did not answer within {0:?}")]
    Timeout(Duration),
    /// The daemon closed the connection without answering.
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// Reading or writing the socket failed.
    #[error("control socket i/o failed")]
    Io(#[source] io::Error),
    /// The answer was not a valid response to this request.
    #[error("invalid response from the daemon: {0}")]
    Protocol(String),
}

/// A connection to the daemon. Requests are sent one at a time; ids count from 1.
#[derive(Debug)]
pub struct Client {
    /// Buffered read side; the inner stream is also the write side.
    reader: BufReader<UnixStream>,
    /// The socket path, for messages.
    path: PathBuf,
    /// Id of the next request.
    next_id: u64,
    /// Read/write timeout.
    timeout: Duration,
}

impl Client {
    /// Connect to the daemon's socket with [`DEFAULT_TIMEOUT`].
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        Client::connect_with_timeout(path, DEFAULT_TIMEOUT)
    }

    /// Connect with a read/write timeout per request.
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let path = path.as_ref().to_owned();
        let timeout = timeout.max(Duration::from_millis(1));
        let stream = open(&path, timeout)?;
        Ok(Client {
            reader: BufReader::new(stream),
            path,
            next_id: 1,
            timeout,
        })
    }

    /// Send `command` and wait for its response. Error responses from the daemon come back
    /// as `Ok(response)` with `result: Err(..)`, except `permission_denied`, which becomes
    /// [`ClientError::PermissionDenied`]. A connection the server turned away as `busy` (it
    /// read nothing of the request) is opened again and the request sent again, with
    /// backoff, for up to [`BUSY_RETRY`]; after that the `busy` answer is returned.
    pub fn request(&mut self, command: Command) -> Result<Response, ClientError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let response = self.request_once(&command)?;
            let busy =
                response.id == 0 && matches!(&response.result, Err(e) if e.kind == ErrorKind::Busy);
            if !busy || started.elapsed() + pause > BUSY_RETRY {
                return Ok(response);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
            self.reader = BufReader::new(open(&self.path, self.timeout)?);
        }
    }

    fn request_once(&mut self, command: &Command) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = Request {
            id,
            command: command.clone(),
        }
        .to_line();
        // If the daemon refused us it has already written its answer and closed; the write
        // may then fail with EPIPE, but the answer is still there to read.
        let write_err = self.reader.get_mut().write_all(&line).err();
        let response = match self.read_response() {
            Ok(r) => r,
            Err(e) => {
                return Err(match (write_err, e) {
                    (Some(w), ClientError::Closed) => ClientError::Io(w),
                    (_, e) => e,
                });
            }
        };
        if let Err(e) = &response.result
            && e.kind == ErrorKind::PermissionDenied
        {
            return Err(ClientError::PermissionDenied {
                path: self.path.clone(),
                detail: e.message.clone(),
            });
        }
        if response.id != id && response.id != 0 {
            return Err(ClientError::Protocol(format!(
                "answer to request {} instead of {id}",
                response.id
            )));
        }
        Ok(response)
    }

    fn read_response(&mut self) -> Result<Response, ClientError> {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_RESPONSE_LINE).unwrap_or(u64::MAX) + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    ClientError::Timeout(self.timeout)
                }
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ClientError::Closed,
                _ => ClientError::Io(e),
            })?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        if line.last() != Some(&b'\n') {
            return Err(if line.len() > MAX_RESPONSE_LINE {
                ClientError::Protocol(format!("response longer than {MAX_RESPONSE_LINE} bytes"))
            } else {
                ClientError::Closed
            });
        }
        decode_response(&line).map_err(|e| ClientError::Protocol(e.0))
    }
}
