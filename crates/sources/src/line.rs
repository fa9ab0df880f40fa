//! The line every source yields, and the resume position it carries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_core::filter::Record;
use portcullis_core::time::Time;

use crate::error::ReadError;
use crate::stop::StopHandle;

/// The one long-line cap (core's [`portcullis_core::filter::MAX_LINE`]): every reader keeps at
/// most this many bytes of a line or journal message and discards the rest up to the newline,
/// so memory stays bounded; filters never match a line this long, since it may have been cut.
pub const MAX_LINE: usize = portcullis_core::filter::MAX_LINE;

/// Which configured source a line came from; chosen by the caller, copied into every line.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u32);

/// Where a file source stands: enough to resume after a restart without loss or repeats.
///
/// `offset` is just after the newline of the line that carries this position, so persisting
/// the position of the last processed line and reopening with it continues with the next line.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FilePosition {
    /// Device of the file the line was read from; with `ino` it finds the file after a rename.
    pub dev: u64,
    /// Inode of the file the line was read from.
    pub ino: u64,
    /// Byte offset just after this line's newline in that file (in decompressed bytes for a
    /// `.gz` rotated file read on resume).
    pub offset: u64,
    /// FNV-1a hash of the file's first line (at most 1 KiB of it); detects copytruncate
    /// followed by regrowth, and inode reuse. 0 means "not known yet" and is never checked.
    pub first_line_hash: u64,
}

/// A resume position, one variant per kind of source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// A tailed file: persist it and pass it to [`crate::FileTail::open`].
    File(FilePosition),
    /// A journal entry's `__CURSOR`: persist it and pass it as
    /// [`crate::JournalStart::AfterCursor`].
    Journal(Arc<str>),
    /// A replayed stream: the offset (in decompressed bytes) just after this line; for
    /// progress reports only, streams are not resumed.
    Stream(u64),
}

/// The fields of a journal entry that matter besides `MESSAGE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalFields {
    /// `SYSLOG_IDENTIFIER` (e.g. `sshd`, `sshd-session`); raw bytes, attacker-free but unchecked.
    pub identifier: Option<Box<[u8]>>,
    /// `_PID`, or `SYSLOG_PID` when `_PID` is absent; merges lines of one attempt.
    pub pid: Option<u32>,
    /// `__REALTIME_TIMESTAMP`: when journald received the entry; the event time.
    pub realtime: Option<Time>,
    /// `_HOSTNAME`, for a syslog-style rendering of the entry.
    pub hostname: Option<Box<[u8]>>,
}

impl JournalFields {
    /// The entry as filters see it, with `message` (its `MESSAGE`); `read_at` is its time
    /// when it has no `__REALTIME_TIMESTAMP`. Render it with
    /// [`Record::syslog_line`](portcullis_core::filter::Record::syslog_line).
    pub fn record<'a>(&'a self, message: &'a [u8], read_at: Time) -> Record<'a> {
        Record {
            time: self.realtime.unwrap_or(read_at),
            program: self.identifier.as_deref(),
            pid: self.pid,
            message,
        }
    }
}

/// One line from a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// The source it came from.
    pub source: SourceId,
    /// The line without its newline (and without a `\r` before it). Invalid UTF-8 is kept as
    /// is: decoding is the filter's business. At most the source's `max_line` bytes.
    pub bytes: Vec<u8>,
    /// True when the line was longer than `max_line` and its rest was discarded.
    pub cut: bool,
    /// Wall-clock time the line was read; the event time for lines without their own date.
    pub read_at: Time,
    /// Resume position after this line.
    pub position: Position,
    /// Journal metadata; `None` for file and stream lines.
    pub journal: Option<Box<JournalFields>>,
}

impl SourceLine {
    /// A line of a file or a stream (no journal metadata).
    pub fn new(
        source: SourceId,
        bytes: Vec<u8>,
        cut: bool,
        read_at: Time,
        position: Position,
    ) -> SourceLine {
        SourceLine {
            source,
            bytes,
            cut,
            read_at,
            position,
            journal: None,
        }
    }
}

/// What a `read_batch` call ended with, besides the lines it appended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum ReadStatus {
    /// The source goes on; call again (lines may or may not have been appended).
    Live,
    /// The source's [`StopHandle`] was triggered; further calls return `Stopped` at once.
    Stopped,
    /// The input ended (replay at end of stream, journal read without follow): no more lines.
    Finished,
}

/// Common interface of the sources, for the daemon's per-source reader thread.
pub trait LineSource: Send {
    /// Append up to `max` lines to `out`, waiting at most `timeout` for the first one.
    fn read_batch(
        &mut self,
        out: &mut Vec<SourceLine>,
        max: usize,
        timeout: Duration,
    ) -> Result<ReadStatus, ReadError>;
    /// A handle that makes a blocked or later `read_batch` return [`ReadStatus::Stopped`].
    fn stop_handle(&self) -> StopHandle;
    /// Entries read but not delivered because nothing vouches for their sender (the
    /// journal's [`JournalTrust`](crate::JournalTrust)); a file cannot tell, so 0.
    fn untrusted(&self) -> u64 {
        0
    }
}

/// The wall clock as a [`Time`]; this crate may read clocks, the core may not.
pub fn wall_clock() -> Time {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Time::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        Err(_) => Time::EPOCH,
    }
}
