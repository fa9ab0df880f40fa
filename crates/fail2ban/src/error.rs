//! Errors of loading Fail2Ban configuration files; each names the file and line.

use std::path::PathBuf;

use crate::ini::{IniError, Origin};

/// Why a Fail2Ban configuration (or one of its files) could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid configparser INI.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// None of `NAME.conf`, `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local` exists.
    #[error("no configuration file for {name:?} under {}", dir.display())]
    NotFound {
        /// What was looked for (`jail`, `filter.d/sshd`).
        name: String,
        /// The base directory.
        dir: PathBuf,
    },
    /// `[INCLUDES]` lead back to a file that is already being included.
    #[error("{origin}: include cycle: {}", chain.join(" -> "))]
    IncludeCycle {
        /// The include line that closes the cycle.
        origin: Origin,
        /// The files, outermost first, ending with the file included again.
        chain: Vec<String>,
    },
    /// `[INCLUDES]` nest deeper than the limit.
    #[error("{origin}: includes nest deeper than {limit} files")]
    IncludeDepth {
        /// The include line that goes too deep.
        origin: Origin,
        /// The limit, [`crate::MAX_INCLUDE_DEPTH`].
        limit: usize,
    },
    /// A value could not be interpolated.
    #[error(transparent)]
    Interpolate(#[from] InterpolateError),
    /// The embedded portcullis default configuration could not be built (a bug).
    #[error("portcullis default configuration: {0}")]
    Config(#[source] portcullis_config::ConfigError),
    /// A value is not what the key needs (a number, a time, a `name[args]` reference).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// Where the value was written.
        origin: Origin,
        /// The key.
        key: String,
        /// What is wrong, lowercase.
        message: String,
    },
}

/// Why `%(name)s` or `<tag>` substitution failed. Displays as `FILE:LINE: KEY: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterpolateError {
    /// References nest deeper than the limit (usually a value that refers to itself).
    #[error("{origin}: {key}: interpolation nested deeper than {limit} levels (a reference loop?)")]
    Depth {
        /// Where the value was written.
        origin: Origin,
        /// The key being read.
        key: String,
        /// The limit, [`crate::MAX_INTERPOLATION_DEPTH`].
        limit: usize,
    },
    /// The interpolated value grows beyond the limit (references that multiply: `a` is
    /// `%(b)s%(b)s…`, `b` is `%(c)s%(c)s…`, …).
    #[error(
        "{origin}: {key}: interpolation expands beyond {limit} bytes (references that multiply?)"
    )]
    TooLarge {
        /// Where the value was written.
        origin: Origin,
        /// The key being read.
        key: String,
        /// The limit, [`crate::MAX_INTERPOLATED_LEN`].
        limit: usize,
    },
    /// Expanding the value means scanning more referenced text than the limit (references
    /// that multiply, even when they expand to little).
    #[error(
        "{origin}: {key}: interpolation expands more than {limit} bytes of referenced values (references that multiply?)"
    )]
    TooMuchWork {
        /// Where the value was written.
        origin: Origin,
        /// The key being read.
        key: String,
        /// The limit, [`crate::MAX_INTERPOLATION_WORK`].
        limit: usize,
    },
    /// `%(name)s` names nothing.
    #[error("{origin}: {key}: bad interpolation: %({reference})s is not defined")]
    Missing {
        /// Where the value was written.
        origin: Origin,
        /// The key being read.
        key: String,
        /// The name inside `%(…)s`.
        reference: String,
    },
    /// A `%` not followed by `%` or `(name)s`.
    #[error("{origin}: {key}: {message}")]
    Syntax {
        /// Where the value was written.
        origin: Origin,
        /// The key being read.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `<tag>` substitution loops (a tag refers to itself, or one tag is replaced more than
    /// Fail2Ban's 25 times).
    #[error("{origin}: {key}: tag <{tag}> refers to itself (recursive tag definitions)")]
    TagRecursion {
        /// Where the value was written.
        origin: Origin,
        /// The key being substituted.
        key: String,
        /// The tag that loops.
        tag: String,
    },
}
