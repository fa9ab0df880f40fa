//! Binding the control socket path safely (for the daemon; `serve` itself never binds).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The parent directory could not be created.
    #[error("cannot create socket directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Another daemon answers on this socket.
    #[error("another portcullis is already listening on {path}")]
    AlreadyRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket sits at the path; it is left alone.
    #[error("{path} exists and is not a socket; refusing to remove it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A stale socket could not be removed or probed.
    #[error("cannot replace stale socket {path}")]
    Stale {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// `bind`, `chmod` or registering with tokio failed.
    #[error("cannot bind control socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Bind the control socket at `path` (e.g. `/run/portcullis/control.sock`): create a missing
/// parent directory with mode 0755, remove a stale socket (only when nothing accepts on it),
/// bind, and chmod the socket to 0600. Must be called inside a tokio runtime.
pub fn bind_socket(path: impl AsRef<Path>) -> Result<UnixListener, BindError> {
    let path = path.as_ref();
    let owned = || path.to_owned();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|source| BindError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(BindError::AlreadyRunning { path: owned() }),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing stale control socket");
                    std::fs::remove_file(path).map_err(|source| BindError::Stale {
                        path: owned(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(BindError::Stale {
                        path: owned(),
                        source,
                    });
                }
            }
        }
        Ok(_) => return Err(BindError::NotASocket { path: owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BindError::Stale {
                path: owned(),
                source,
            });
        }
    }
    let bind = || -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        UnixListener::from_std(listener)
    };
    bind().map_err(|source| BindError::Bind {
        path: owned(),
        source,
    })
}
