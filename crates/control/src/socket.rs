//! Binding the control socket path safely (for the daemon; `serve` itself never binds).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The parent directory could not be created or inspected.
    #[error("cannot create or inspect socket directory {path}")]
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
    /// The socket's directory could be changed by someone else (not owned by root or by us,
    /// or writable by group or others): they could replace the socket, or swap in a symlink
    /// between `bind` and `chmod`. It is left as it is.
    #[error(
        "refusing to put the control socket in {path}: it is owned by uid {uid} with mode \
         {mode:04o}; the directory must be owned by root and not writable by group or others",
        path = path.display()
    )]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link sits at the socket path; it is neither followed nor removed.
    #[error("{path} is a symbolic link; refusing to bind through it or remove it", path = path.display())]
    Symlink {
        /// The path.
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
/// parent directory with mode 0755, refuse a directory someone else could change (owned by
/// another user than root and us, or group/world-writable: [`BindError::UnsafeDir`]) and a
/// symbolic link at the path ([`BindError::Symlink`]), remove a stale socket (only when
/// nothing accepts on it), bind, and chmod the socket to 0600. Must be called inside a tokio
/// runtime.
///
/// Only the socket's own directory is checked (after following symlinks), not its
/// ancestors: a directory nobody else can write is enough to keep the name from being
/// swapped between `bind` and `chmod`.
pub fn bind_socket(path: impl AsRef<Path>) -> Result<UnixListener, BindError> {
    let path = path.as_ref();
    let owned = || path.to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|source| BindError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
    }
    let dir = std::fs::metadata(parent).map_err(|source| BindError::CreateDir {
        path: parent.to_owned(),
        source,
    })?;
    let me = rustix::process::geteuid().as_raw();
    if (dir.uid() != 0 && dir.uid() != me) || dir.mode() & 0o022 != 0 {
        return Err(BindError::UnsafeDir {
            path: parent.to_owned(),
            uid: dir.uid(),
            mode: dir.mode() & 0o7777,
        });
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(BindError::Symlink { path: owned() });
        }
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
