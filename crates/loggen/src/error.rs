//! Error types, one per operation.

use std::path::PathBuf;

/// Why a `--start` value was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("start time {0:?} is not of the form YYYY-MM-DDTHH:MM:SSZ (UTC)")]
    Format(String),
    /// A field is out of range (month 13, February 30, hour 24 …).
    #[error("start time {0:?} is not a real UTC date and time")]
    OutOfRange(String),
}

/// Why a generator configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Each attacker needs at least one line of its own.
    #[error("{attackers} attackers do not fit in {lines} lines (need at least one line each)")]
    TooManyAttackers {
        /// Requested distinct attackers.
        attackers: u64,
        /// Requested total lines.
        lines: u64,
    },
    /// More distinct addresses than the documentation/benchmark ranges hold.
    #[error("{0} attackers exceed the address space this generator draws from (max 2000000)")]
    AddressSpace(u64),
    /// The lines' times would leave the years 0000–9999 (the generator writes four-digit
    /// years, and jiff's calendar ends in 9999).
    #[error(
        "a log of {lines} lines starting at Unix second {start} may run past year 9999 (or starts before year 0000); choose an earlier --start, fewer --lines or a smaller --mean-gap-ms"
    )]
    TimeRange {
        /// The requested start, Unix seconds.
        start: i64,
        /// Requested total lines.
        lines: u64,
    },
    /// A share outside `0..=1`.
    #[error("{name} must be between 0 and 1, got {value}")]
    Share {
        /// Which option.
        name: &'static str,
        /// The refused value.
        value: f64,
    },
}

/// Why generating a log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The configuration was refused.
    #[error("invalid generator options")]
    Config(#[from] ConfigError),
    /// Writing the log failed.
    #[error("cannot write the log")]
    Write(#[source] std::io::Error),
}

/// Why writing a rotated set of files failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The directory could not be created.
    #[error("cannot create directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Generating failed for another reason than writing a file of the set.
    #[error("cannot generate the rotated set")]
    Generate(#[source] GenerateError),
    /// Creating or writing one file of the set failed.
    #[error("cannot write {path}")]
    File {
        /// The file of the rotated set.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}
