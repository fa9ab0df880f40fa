//! Errors of the store.

use std::path::PathBuf;

/// What went wrong in a store operation. The messages name the file and the operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or configured (permissions, not a database, disk full).
    #[error("cannot open state database {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer portcullis; opening it could corrupt it.
    #[error(
        "state database {path} has schema version {found}, newer than version {supported} that \
         this portcullis supports; upgrade portcullis or move the file away"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The file is an SQLite database of some other program.
    #[error("{path} is not a portcullis state database (foreign tables or application id)")]
    Foreign {
        /// The database file.
        path: PathBuf,
    },
    /// A forward migration failed; the file is left at the previous version.
    #[error("cannot migrate state database {path} to schema version {to}")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version the failed step was migrating to.
        to: u32,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A read or write failed.
    #[error("cannot {op} in the state database")]
    Sqlite {
        /// What was being done, e.g. "write bans".
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// Attach the operation to an SQLite error.
pub(crate) trait Context<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

impl StoreError {
    /// Whether the file itself is not a usable portcullis database — corrupt, not SQLite,
    /// or another program's — as opposed to a problem of access, space or version. Such a
    /// file can be moved aside and replaced by a fresh database.
    pub fn is_unusable_file(&self) -> bool {
        let corrupt = |s: &rusqlite::Error| {
            matches!(
                s.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            )
        };
        match self {
            StoreError::Foreign { .. } => true,
            StoreError::Open { source, .. } | StoreError::Migrate { source, .. } => corrupt(source),
            other => std::error::Error::source(other)
                .and_then(|s| s.downcast_ref::<rusqlite::Error>())
                .is_some_and(corrupt),
        }
    }
}
