//! Errors of loading Fail2Ban configuration files.

use std::path::PathBuf;

use crate::ini::IniError;

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
}
