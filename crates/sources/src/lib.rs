//! portcullis-sources: the log sources. A file tail that survives rotation, copytruncate and
//! restarts; the systemd journal through a `journalctl -o export` child; and the reader of
//! whole plain or gzip files for `scan`, `investigate` and `test-filter` ([`ReplayReader`]).
//! All split lines the same way (memchr, CR dropped) under one cap, [`MAX_LINE`]. Every source yields [`SourceLine`]s carrying a
//! resume [`Position`]: persisting the position of the last processed line and reopening with
//! it loses nothing and repeats nothing. Sources are blocking (inotify / pipe + poll(2)), one
//! thread each, stopped from outside through a [`StopHandle`] (an eventfd).
#![deny(missing_docs)]

mod error;
pub mod journal;
mod line;
mod regular;
mod replay;
mod split;
mod stop;
mod tail;
mod waiting;
mod watch;

pub use error::{MatchError, OpenError, ReadError};
pub use journal::export::{ExportEntry, ExportParser, ExportStats};
pub use journal::matches::{check_match_tokens, parse_journal_matches};
pub use journal::{
    JournalLocation, JournalOptions, JournalSenders, JournalSource, JournalStart, JournalStats,
    JournalTrust, SSHD_PROGRAMS, Untrusted, journal_fields,
};
pub use line::{
    FilePosition, JournalFields, LineSource, MAX_LINE, Position, ReadStatus, SourceId, SourceLine,
    wall_clock,
};
pub use regular::NotRegularFile;
pub use replay::{ReplayReader, file_reference_time};
pub use stop::StopHandle;
pub use tail::{FileTail, FileTailOptions, StartAt, TailStats};
