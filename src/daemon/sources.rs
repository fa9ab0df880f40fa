//! The daemon's log sources: one blocking reader thread per source, sending line batches to
//! the main loop over a bounded channel (back-pressure instead of unbounded memory).

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_config::{JournalSenders, JournalSpec, ServiceSources, SourceSpec};
use portcullis_sources::{
    FilePosition, FileTail, FileTailOptions, JournalLocation, JournalOptions, JournalSource,
    JournalStart, JournalTrust, LineSource, Position, ReadStatus, SourceId, SourceLine, StartAt,
    StopHandle, parse_journal_matches,
};
use portcullis_store::{SourcePosition, Store};
use tokio::sync::mpsc;

/// Lines handed over in one message; bounds latency (the main loop sees a line as soon as
/// the reader wakes) and amortises channel cost under load.
pub const BATCH: usize = 4096;

/// Lines read by one source, for the main loop.
pub struct Batch {
    /// Index into the daemon's source list.
    pub source: usize,
    /// The lines, in order.
    pub lines: Vec<SourceLine>,
}

/// Where a source reads, resolved from the configuration (`auto` made concrete).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A log file followed by name.
    File(PathBuf),
    /// The journal with these journalctl match words and location.
    Journal {
        /// Match words (`FIELD=value`, `+`).
        matches: Vec<String>,
        /// `--directory`.
        directory: Option<PathBuf>,
        /// `--file`.
        file: Option<PathBuf>,
        /// Whose entries are believed (not part of the stored key: trust does not move
        /// the position).
        senders: JournalSenders,
    },
}

impl SourceKey {
    /// The key positions are stored under, also shown by `status`.
    pub fn store_key(&self) -> String {
        match self {
            SourceKey::File(p) => format!("file:{}", p.display()),
            SourceKey::Journal {
                matches,
                directory,
                file,
                ..
            } => {
                let mut k = format!("journal:{}", matches.join(" "));
                if let Some(d) = directory {
                    k += &format!(" --directory={}", d.display());
                }
                if let Some(f) = file {
                    k += &format!(" --file={}", f.display());
                }
                k
            }
        }
    }
}

/// Make a configured source concrete for a jail whose service logs to `service`: `auto`
/// becomes the journal when it holds the service's entries, else the first existing log
/// file of the service (or the first candidate, waited for).
pub fn resolve(spec: &SourceSpec, service: &ServiceSources) -> SourceKey {
    match spec {
        SourceSpec::File { path } => SourceKey::File(path.clone()),
        SourceSpec::Journal(j) => journal_key(j, service),
        SourceSpec::Auto => {
            if journal_has(service) {
                journal_key(&JournalSpec::default(), service)
            } else {
                let path = service
                    .log_files
                    .iter()
                    .find(|p| Path::new(p).exists())
                    .or(service.log_files.first())
                    .copied()
                    .unwrap_or_default();
                SourceKey::File(PathBuf::from(path))
            }
        }
    }
}

fn journal_key(j: &JournalSpec, service: &ServiceSources) -> SourceKey {
    let matches = if j.matches.is_empty() {
        service
            .journal_matches
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        j.matches.clone()
    };
    SourceKey::Journal {
        matches,
        directory: j.directory.clone(),
        file: j.file.clone(),
        senders: j.senders,
    }
}

/// Whether the system journal holds any entry of the service (`journalctl -n 1`), i.e. it
/// logs there. A service without journal matches (it writes its own files) never does.
fn journal_has(service: &ServiceSources) -> bool {
    if service.journal_matches.is_empty() {
        return false;
    }
    let mut cmd = Process::new("journalctl");
    cmd.args(["-q", "--no-pager", "-n", "1", "-o", "cat"])
        .args(service.journal_matches);
    match cmd.output() {
        Ok(out) => out.status.success() && !out.stdout.is_empty(),
        Err(_) => false,
    }
}

/// A running source and what `status` shows of it.
pub struct RunningSource {
    /// What it reads.
    pub key: SourceKey,
    /// Jails fed by it (indices into the daemon's jail list).
    pub jails: Vec<usize>,
    /// Position after the last line the main loop processed (what gets stored).
    pub position: Option<Position>,
    /// Whether `position` changed since it was last stored.
    pub dirty: bool,
    /// Lines read since start.
    pub lines: Arc<AtomicU64>,
    /// Entries read and not delivered: their sender is not vouched for (journal only).
    pub untrusted: Arc<AtomicU64>,
    /// The last read error, until the source delivers lines again.
    pub error: Arc<Mutex<Option<String>>>,
    /// Lines longer than the line cap (their rest discarded), counted by the main loop.
    pub truncated: u64,
    /// From the read of the last processed line to its processing (the main loop's lag).
    pub lag: Duration,
    stop: Option<StopHandle>,
    thread: Option<JoinHandle<()>>,
}

impl RunningSource {
    /// Open `key` (resuming from the store) and start its reader thread.
    pub fn start(
        idx: usize,
        key: SourceKey,
        jails: Vec<usize>,
        store: &Store,
        tx: mpsc::Sender<Batch>,
    ) -> RunningSource {
        let stored = store.load_position(&key.store_key()).ok().flatten();
        let lines = Arc::new(AtomicU64::new(0));
        let untrusted = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let mut src = RunningSource {
            key: key.clone(),
            jails,
            position: None,
            dirty: false,
            lines: lines.clone(),
            untrusted: untrusted.clone(),
            error: error.clone(),
            truncated: 0,
            lag: Duration::ZERO,
            stop: None,
            thread: None,
        };
        if let SourceKey::File(p) = &key
            && !p.exists()
        {
            tracing::warn!(path = %p.display(), "log file does not exist yet; it is read as soon as it appears");
        }
        let opened: Result<Box<dyn LineSource>> = open(idx, &key, stored);
        match opened {
            Ok(reader) => {
                src.stop = Some(reader.stop_handle());
                let name = format!("source-{idx}");
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || read_loop(idx, reader, tx, &lines, &untrusted, &error));
                match spawned {
                    Ok(t) => src.thread = Some(t),
                    Err(e) => src.set_error(format!("cannot start reader thread: {e}")),
                }
            }
            Err(e) => {
                tracing::error!(source = %key.store_key(), "cannot open source: {e:#}");
                src.set_error(format!("{e:#}"));
            }
        }
        src
    }

    fn set_error(&self, e: String) {
        if let Ok(mut g) = self.error.lock() {
            *g = Some(e);
        }
    }

    /// Ask the reader thread to stop (it returns from its read at once).
    pub fn request_stop(&self) {
        if let Some(s) = &self.stop {
            s.stop();
        }
    }

    /// The reader thread, for the caller to join after [`request_stop`](Self::request_stop).
    pub fn take_thread(&mut self) -> Option<JoinHandle<()>> {
        self.thread.take()
    }

    /// The position as the store keeps it, if one is known.
    pub fn stored_position(&self) -> Option<SourcePosition> {
        match &self.position {
            Some(Position::File(p)) => Some(SourcePosition::File {
                dev: p.dev,
                ino: p.ino,
                offset: p.offset,
                first_line_hash: p.first_line_hash,
            }),
            Some(Position::Journal(c)) => Some(SourcePosition::Journal {
                cursor: c.to_string(),
            }),
            _ => None,
        }
    }

    /// A short human description of the position, for `status`.
    pub fn describe_position(&self) -> String {
        match &self.position {
            Some(Position::File(p)) => format!("offset {} of inode {}", p.offset, p.ino),
            Some(Position::Journal(c)) => format!("cursor {c}"),
            Some(Position::Stream(o)) => format!("offset {o}"),
            None => "no line yet".to_string(),
        }
    }
}

fn open(
    idx: usize,
    key: &SourceKey,
    stored: Option<SourcePosition>,
) -> Result<Box<dyn LineSource>> {
    let id = SourceId(u32::try_from(idx).unwrap_or(u32::MAX));
    match key {
        SourceKey::File(path) => {
            let resume = match stored {
                Some(SourcePosition::File {
                    dev,
                    ino,
                    offset,
                    first_line_hash,
                }) => Some(FilePosition {
                    dev,
                    ino,
                    offset,
                    first_line_hash,
                }),
                _ => None,
            };
            // Without a stored position the whole file is read: events older than findtime
            // do not count, so old lines cannot cause bans, and an attack in progress is seen.
            let options = FileTailOptions {
                start: StartAt::Beginning,
                ..FileTailOptions::default()
            };
            let tail = FileTail::open(id, path, resume, options)
                .with_context(|| format!("cannot follow {}", path.display()))?;
            Ok(Box::new(tail))
        }
        SourceKey::Journal {
            matches,
            directory,
            file,
            senders,
        } => {
            let matches = parse_journal_matches(&matches.join(" ")).context("journal matches")?;
            let location = match (directory, file) {
                (_, Some(f)) => JournalLocation::Files(vec![f.clone()]),
                (Some(d), None) => JournalLocation::Directory(d.clone()),
                (None, None) => JournalLocation::System,
            };
            let start = match stored {
                Some(SourcePosition::Journal { cursor }) => JournalStart::AfterCursor(cursor),
                // The system journal can hold months: start at its end. An explicit journal
                // directory or file is read whole.
                _ if location == JournalLocation::System => JournalStart::End,
                _ => JournalStart::Beginning,
            };
            let options = JournalOptions {
                location,
                matches,
                start,
                trust: JournalTrust {
                    senders: match senders {
                        JournalSenders::Root => portcullis_sources::JournalSenders::Root,
                        JournalSenders::System => portcullis_sources::JournalSenders::System,
                        JournalSenders::Any => portcullis_sources::JournalSenders::Any,
                    },
                },
                ..JournalOptions::default()
            };
            Ok(Box::new(
                JournalSource::spawn(id, options).context("cannot start journalctl")?,
            ))
        }
    }
}

fn read_loop(
    idx: usize,
    mut reader: Box<dyn LineSource>,
    tx: mpsc::Sender<Batch>,
    count: &AtomicU64,
    untrusted: &AtomicU64,
    error: &Mutex<Option<String>>,
) {
    let mut buf: Vec<SourceLine> = Vec::with_capacity(BATCH);
    loop {
        let status = reader.read_batch(&mut buf, BATCH, Duration::from_secs(1));
        untrusted.store(reader.untrusted(), Ordering::Relaxed);
        if !buf.is_empty() {
            count.fetch_add(buf.len() as u64, Ordering::Relaxed);
            let lines = std::mem::replace(&mut buf, Vec::with_capacity(BATCH));
            if tx.blocking_send(Batch { source: idx, lines }).is_err() {
                return; // the daemon is gone
            }
            // Reading again: an earlier error (e.g. the path was not a regular file) is over.
            if let Ok(mut g) = error.lock()
                && g.take().is_some()
            {
                tracing::info!(source = idx, "reading again");
            }
        }
        match status {
            Ok(ReadStatus::Live) => {}
            Ok(ReadStatus::Stopped) | Ok(ReadStatus::Finished) => return,
            Err(e) => {
                let e = crate::text::chain(&e);
                tracing::warn!(source = idx, "read error: {e}");
                if let Ok(mut g) = error.lock() {
                    *g = Some(e);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
