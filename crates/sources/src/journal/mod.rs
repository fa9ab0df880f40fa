//! Following the systemd journal through a `journalctl -o export` child process.
//!
//! The child's stdout is parsed with [`ExportParser`]; each entry with a `MESSAGE` becomes a
//! line whose position is its `__CURSOR`. If the child dies while following (killed, OOM,
//! journald restarted), its exit is returned once as [`ReadError::JournalExit`] (the daemon
//! logs it as a warning and shows it in `status`), and it is restarted after the cursor of
//! the last *delivered* entry (entries parsed but not yet delivered are dropped and read
//! again), with exponential backoff; restarts are counted ([`JournalStats::restarts`]). A
//! restart after a cursor passes `--no-tail`: `--follow` alone implies `--lines=10`, which
//! also cuts what follows the cursor, and would drop all but ten entries of a backlog.

pub mod export;
pub mod matches;
pub mod trust;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_core::time::Time;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::error::{OpenError, ReadError};
use crate::line::{JournalFields, MAX_LINE, Position, SourceId, SourceLine, wall_clock};
use crate::stop::StopHandle;
use crate::waiting::WaitingSource;
use export::{ExportEntry, ExportParser};
pub use trust::{JournalSenders, JournalTrust, SSHD_PROGRAMS, Untrusted};

/// Which journal files journalctl reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JournalLocation {
    /// The system journal (what plain `journalctl` reads).
    #[default]
    System,
    /// `--directory DIR`: a directory of journal files (containers, tests).
    Directory(PathBuf),
    /// `--file FILE` for each: given journal files.
    Files(Vec<PathBuf>),
}

/// Where reading starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JournalStart {
    /// Only entries added from now on (`-n 0` when following; nothing without follow).
    #[default]
    End,
    /// Every entry in the journal.
    Beginning,
    /// Entries after this stored `__CURSOR` (the resume case).
    AfterCursor(String),
}

/// How to run the journal source.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// The journalctl binary.
    pub journalctl: PathBuf,
    /// Which journal files.
    pub location: JournalLocation,
    /// Match arguments from [`matches::parse_journal_matches`]; empty = every entry.
    pub matches: Vec<String>,
    /// Keep following (`-f`) and restart journalctl if it dies; without it the source
    /// finishes at the end of the journal.
    pub follow: bool,
    /// Where to start.
    pub start: JournalStart,
    /// First restart delay; doubles up to `max_backoff`, resets after a delivered entry.
    pub min_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// Which entries to believe (see [`JournalTrust`]); the others are counted
    /// ([`JournalStats::untrusted`]) and never delivered.
    pub trust: JournalTrust,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            journalctl: PathBuf::from("journalctl"),
            location: JournalLocation::System,
            matches: Vec::new(),
            follow: true,
            start: JournalStart::End,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            trust: JournalTrust::default(),
        }
    }
}

/// Counters of a [`JournalSource`], for `status`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Lines delivered.
    pub lines: u64,
    /// Entries without `MESSAGE`, skipped.
    pub skipped: u64,
    /// journalctl restarts after it died.
    pub restarts: u64,
    /// Garbage resyncs in its output.
    pub resyncs: u64,
    /// Messages cut to [`MAX_LINE`].
    pub cut_lines: u64,
    /// Entries not delivered because journald did not vouch for their sender
    /// ([`JournalTrust`]): a user's `logger -t sshd`, for one.
    pub untrusted: u64,
    /// Entries of sshd's own binary run by a non-root user (a session's logout notices),
    /// not delivered and not forgeries ([`Untrusted::UserSshd`]).
    pub user_sshd: u64,
}

struct Running {
    child: Child,
    stdout: ChildStdout,
    /// Drains stderr; joined after an exit so the error message is complete.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// Follows the journal; blocking, run it on its own thread.
pub struct JournalSource {
    id: SourceId,
    options: JournalOptions,
    running: Option<Running>,
    parser: ExportParser,
    /// Cursor of the last delivered entry: where a restarted journalctl continues.
    cursor: Option<Arc<str>>,
    stop: StopHandle,
    stderr_tail: Arc<Mutex<String>>,
    backoff: Duration,
    restart_at: Option<Instant>,
    finished: bool,
    buf: Vec<u8>,
    stats: JournalStats,
}

impl std::fmt::Debug for JournalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSource")
            .field("id", &self.id)
            .field("cursor", &self.cursor)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl JournalSource {
    /// Start journalctl. Fails if it cannot be started at all (not found, not executable).
    pub fn spawn(id: SourceId, options: JournalOptions) -> Result<JournalSource, OpenError> {
        // Tokens may have been built by hand: check them as the parser would.
        matches::check_match_tokens(&options.matches)?;
        let cursor = match &options.start {
            JournalStart::AfterCursor(c) => Some(Arc::from(c.as_str())),
            _ => None,
        };
        let mut src = JournalSource {
            id,
            parser: ExportParser::new(MAX_LINE),
            backoff: options.min_backoff,
            options,
            running: None,
            cursor,
            stop: StopHandle::new().map_err(OpenError::StopEvent)?,
            stderr_tail: Arc::new(Mutex::new(String::new())),
            restart_at: None,
            finished: false,
            buf: vec![0; 64 * 1024],
            stats: JournalStats::default(),
        };
        let program = src.options.journalctl.clone();
        src.start_child().map_err(|e| match e {
            ReadError::Spawn { program, source } => OpenError::Spawn { program, source },
            other => OpenError::Spawn {
                program,
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        Ok(src)
    }

    /// The cursor of the last delivered entry (the stored start cursor before any).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            resyncs: self.parser.stats().resyncs,
            ..self.stats
        }
    }

    /// The running journalctl's process id (for diagnostics and tests).
    pub fn child_pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// The journalctl arguments for the current state (cursor, options).
    pub fn command_args(&self) -> Vec<String> {
        let o = &self.options;
        let mut args: Vec<String> = vec!["-o".into(), "export".into(), "-q".into()];
        match &o.location {
            JournalLocation::System => {}
            JournalLocation::Directory(d) => {
                args.push(format!("--directory={}", d.display()));
            }
            JournalLocation::Files(fs) => {
                for f in fs {
                    args.push(format!("--file={}", f.display()));
                }
            }
        }
        if o.follow {
            args.push("--follow".into());
        }
        // `--follow` alone means `--lines=10`, which also cuts what follows a cursor: after
        // a restart or a resume, only ten entries of a backlog would be read (journalctl
        // 252). `--no-tail` undoes it.
        match (&self.cursor, &o.start) {
            (Some(c), _) => {
                args.push(format!("--after-cursor={c}"));
                if o.follow {
                    args.push("--no-tail".into());
                }
            }
            (None, JournalStart::Beginning) => {
                if o.follow {
                    args.push("--no-tail".into());
                }
            }
            (None, _) => args.push("--lines=0".into()),
        }
        if !o.matches.is_empty() {
            args.push("--".into());
            args.extend(o.matches.iter().cloned());
        }
        args
    }

    fn start_child(&mut self) -> Result<(), ReadError> {
        let args = self.command_args();
        tracing::debug!(?args, "starting journalctl");
        let mut child = Command::new(&self.options.journalctl)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ReadError::Spawn {
                program: self.options.journalctl.clone(),
                source,
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ReadError::Pipe(std::io::Error::other("no pipes")));
        };
        if let Ok(mut t) = self.stderr_tail.lock() {
            t.clear();
        }
        let tail = Arc::clone(&self.stderr_tail);
        // journalctl's stderr must be drained or it could block; its last line explains exits.
        let stderr_reader = std::thread::Builder::new()
            .name("journalctl-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::warn!(target: "journalctl", "{line}");
                    if let Ok(mut t) = tail.lock() {
                        *t = line;
                    }
                }
            })
            .ok();
        self.parser.reset();
        self.running = Some(Running {
            child,
            stdout,
            stderr_reader,
        });
        Ok(())
    }

    fn stop_child(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }

    fn schedule_restart(&mut self) {
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.options.max_backoff);
        self.parser.reset();
    }

    /// Wait for child output (true), or the stop event / timeout (false).
    fn wait_for_output(&mut self, dur: Duration) -> Result<bool, ReadError> {
        let Some(r) = self.running.as_ref() else {
            return Ok(false);
        };
        let fd = r.stdout.as_fd();
        self.wait_for(Some(fd), dur)
    }

    fn wait_for(
        &self,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
        dur: Duration,
    ) -> Result<bool, ReadError> {
        let ts = Timespec::try_from(dur).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = vec![PollFd::from_borrowed_fd(self.stop.fd(), PollFlags::IN)];
        if let Some(fd) = fd {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(e) => return Err(ReadError::Wait(e.into())),
        }
        Ok(fds.get(1).is_some_and(|f| !f.revents().is_empty()))
    }

    fn deliver(&mut self, entry: ExportEntry, out: &mut Vec<SourceLine>, now: Time) {
        let cursor = entry
            .get("__CURSOR")
            .map(|c| Arc::<str>::from(String::from_utf8_lossy(c).as_ref()));
        let Some(message) = entry.get("MESSAGE") else {
            self.stats.skipped += 1;
            if let Some(c) = cursor {
                // Still advance: a restart need not read this entry again.
                self.cursor = Some(c);
            }
            return;
        };
        let cursor = match cursor.or_else(|| self.cursor.clone()) {
            Some(c) => c,
            None => Arc::from(""),
        };
        if let Err(why) = self.options.trust.check(&entry) {
            if !why.is_forgery() {
                // sshd's own post-login process (a logout notice): not ours to count.
                self.stats.user_sshd += 1;
                self.cursor = Some(cursor);
                return;
            }
            self.stats.untrusted += 1;
            // Powers of two: a flood of forged entries cannot flood the daemon's own log.
            if self.stats.untrusted.is_power_of_two() {
                tracing::warn!(
                    untrusted = self.stats.untrusted,
                    reason = ?why,
                    identifier = %String::from_utf8_lossy(entry.get("SYSLOG_IDENTIFIER").unwrap_or_default()),
                    uid = %String::from_utf8_lossy(entry.get("_UID").unwrap_or(b"?")),
                    comm = %String::from_utf8_lossy(entry.get("_COMM").unwrap_or(b"?")),
                    "journal entry not believed (see reason; not delivered to filters)"
                );
            }
            // Still advance: a restart need not read it again.
            self.cursor = Some(cursor);
            return;
        }
        let fields = journal_fields(&entry);
        let max = MAX_LINE;
        let cut = message.len() > max;
        if cut {
            self.stats.cut_lines += 1;
        }
        let bytes = message.get(..message.len().min(max)).unwrap_or(message);
        out.push(SourceLine {
            source: self.id,
            bytes: bytes.to_vec(),
            cut,
            read_at: now,
            position: Position::Journal(Arc::clone(&cursor)),
            journal: Some(Box::new(fields)),
        });
        self.stats.lines += 1;
        self.cursor = Some(cursor);
        self.backoff = self.options.min_backoff;
    }
}

fn parse_num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// The metadata of an entry that the pipeline uses.
pub fn journal_fields(entry: &ExportEntry) -> JournalFields {
    JournalFields {
        identifier: entry.get("SYSLOG_IDENTIFIER").map(Box::from),
        pid: entry
            .get("_PID")
            .and_then(parse_num)
            .or_else(|| entry.get("SYSLOG_PID").and_then(parse_num)),
        realtime: entry
            .get("__REALTIME_TIMESTAMP")
            .and_then(parse_num::<i64>)
            .map(Time::from_micros),
        hostname: entry.get("_HOSTNAME").map(Box::from),
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        self.stop_child();
    }
}

/// A [`crate::LineSource`] through the shared loop (`waiting.rs`). When following, a journalctl
/// exit is returned once as [`ReadError::JournalExit`]; later calls restart it (after the last
/// delivered cursor) with backoff.
impl WaitingSource for JournalSource {
    fn stop(&self) -> &StopHandle {
        &self.stop
    }

    fn untrusted(&self) -> u64 {
        self.stats.untrusted
    }

    fn on_stop(&mut self) {
        self.stop_child();
    }

    /// Entries already parsed come first.
    fn take_ready(&mut self, out: &mut Vec<SourceLine>, room: usize) -> Result<(), ReadError> {
        let now = wall_clock();
        // Counted in lines, not entries: an entry without a message yields none.
        let end = out.len() + room;
        while out.len() < end {
            let Some(entry) = self.parser.next_entry() else {
                break;
            };
            self.deliver(entry, out, now);
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.finished
    }

    /// (Re)start journalctl when it is not running (after its backoff), else wait for its
    /// output and parse what it wrote; an exit ends the input unless following.
    fn wait_for_input(&mut self, left: Duration) -> Result<(), ReadError> {
        if self.running.is_none() {
            if let Some(at) = self.restart_at {
                let wait = at.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    self.wait_for(None, wait.min(left))?;
                    return Ok(());
                }
            }
            self.restart_at = None;
            self.stats.restarts += 1;
            if let Err(e) = self.start_child() {
                self.schedule_restart();
                return Err(e);
            }
            return Ok(());
        }
        if !self.wait_for_output(left)? {
            return Ok(());
        }
        let n = match self.running.as_mut().map(|r| r.stdout.read(&mut self.buf)) {
            Some(Ok(n)) => n,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
            Some(Err(e)) => {
                self.stop_child();
                self.schedule_restart();
                return Err(ReadError::Pipe(e));
            }
            None => return Ok(()),
        };
        if n > 0 {
            self.parser.push(self.buf.get(..n).unwrap_or(&[]));
            return Ok(());
        }
        // EOF: journalctl exited.
        let status = self.running.take().and_then(|mut r| {
            let status = r.child.wait().ok();
            if let Some(t) = r.stderr_reader.take() {
                let _ = t.join();
            }
            status
        });
        let stderr = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        if self.options.follow {
            if self.cursor.is_some() && stderr.contains("cursor") {
                // A stored cursor journalctl cannot parse would fail every restart.
                tracing::warn!(%stderr, "journal cursor rejected; following from the end");
                self.cursor = None;
            }
            self.schedule_restart();
            return match status {
                // Reported so the daemon can show it; the next calls restart journalctl.
                Some(status) => Err(ReadError::JournalExit { status, stderr }),
                None => Ok(()),
            };
        }
        self.finished = true;
        match status {
            Some(s) if !s.success() => Err(ReadError::JournalExit { status: s, stderr }),
            _ => Ok(()),
        }
    }
}
