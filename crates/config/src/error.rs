//! The one error of loading a configuration: a file that cannot be read, or a value that is
//! wrong, named by file, line and key.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A configuration file or the conf.d directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML, has an unknown key, or a value is out of range.
    /// Displays as `FILE:LINE: KEY: MESSAGE`, e.g.
    /// `portcullis.toml:12: jail.sshd.maxretry: expected a positive number of attempts`.
    #[error("{}", Located { file, line: *line, key: key.as_deref(), message })]
    Invalid {
        /// The file (its path as given, or `<embedded default>`).
        file: String,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// Dotted path of the key (`jail.sshd.allowlist[1]`), when known.
        key: Option<String>,
        /// What is wrong, lowercase.
        message: String,
    },
}

impl ConfigError {
    /// The line the error points at, if it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } => None,
        }
    }

    /// The dotted key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => key.as_deref(),
            ConfigError::Read { .. } => None,
        }
    }
}

/// `file:line: key: message`, leaving out the parts that are unknown.
struct Located<'a> {
    file: &'a str,
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}
