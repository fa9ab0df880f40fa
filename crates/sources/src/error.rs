//! Errors, one enum per operation: opening a source and reading from it. Messages say what
//! failed; the cause is the error's `source()` (print the chain, e.g. anyhow's `{:#}`).

use std::io;
use std::path::PathBuf;

/// Why a source could not be opened or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// inotify could not be initialised.
    #[error("cannot initialise inotify")]
    Inotify(#[source] io::Error),
    /// The stop eventfd could not be created.
    #[error("cannot create the stop event")]
    StopEvent(#[source] io::Error),
    /// The file exists but cannot be opened or inspected.
    #[error("cannot open {path}", path = path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// journalctl could not be started.
    #[error("cannot start {program}", program = program.display())]
    Spawn {
        /// The journalctl path.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path has no file name (e.g. `/` or `..`).
    #[error("{0} does not name a file")]
    NotAFile(PathBuf),
    /// A journal match is malformed.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// The input stream could not be read while detecting gzip.
    #[error("cannot read the input")]
    Input(#[source] io::Error),
}

/// Why a `read_batch` call failed. The source stays usable: the caller logs and calls again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The followed path names something that cannot be opened or is not a regular file
    /// (see [`crate::NotRegularFile`]). Reported once per distinct error; the path is tried
    /// again on every wake, so it is picked up once it is a readable regular file.
    #[error("cannot open {path}", path = path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("cannot read {path}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Waiting for inotify, the stop event or the child's output failed.
    #[error("cannot wait for input")]
    Wait(#[source] io::Error),
    /// journalctl could not be started; it is retried with backoff on later calls.
    #[error("cannot start {program}", program = program.display())]
    Spawn {
        /// The journalctl path.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// journalctl exited (without follow: unsuccessfully; with follow: at all, and it will be
    /// restarted on the next calls).
    #[error("journalctl exited with {status}: {stderr}")]
    JournalExit {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last line it wrote to stderr.
        stderr: String,
    },
    /// Reading journalctl's output failed.
    #[error("cannot read journalctl output")]
    Pipe(#[source] io::Error),
    /// Reading or decompressing a replayed stream failed.
    #[error("cannot read the input stream")]
    Stream(#[source] io::Error),
}

/// Why a journal match string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatchError {
    /// A quote was not closed.
    #[error("unterminated quote in journal match {0:?}")]
    UnterminatedQuote(String),
    /// A token is neither `FIELD=value` nor `+`.
    #[error("journal match token {0:?} is not FIELD=value or +")]
    BadToken(String),
    /// A `+` at the start, at the end or after another `+`.
    #[error("journal match has an empty alternative around '+'")]
    EmptyAlternative,
}
