//! Opening a log file without trusting what its path names. The path is opened with
//! `O_NONBLOCK` (so a FIFO cannot block `open(2)` until a writer appears) and the type is
//! checked with `fstat` on the opened descriptor (not on the path: no race between the check
//! and the open). Anything but a regular file is refused: a FIFO would block every read, a
//! device such as `/dev/zero` never ends, a directory cannot be read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// What sits at a log path when it is not a regular file; the `source` of the
/// [`io::Error`] (kind `InvalidInput`) that [`open_regular`] returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it is {kind}, not a regular file (only regular files are read)")]
pub struct NotRegularFile {
    /// `a FIFO (named pipe)`, `a character device`, …
    pub kind: &'static str,
}

/// Open `path` for reading if it is a regular file (symlinks followed); see the module docs.
///
/// `O_NONBLOCK` stays set on the returned file: it has no effect on regular files.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let kind = if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "of an unknown type"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        NotRegularFile { kind },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_not_regular(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.is::<NotRegularFile>())
    }

    #[test]
    fn regular_files_open_and_everything_else_is_refused_by_type() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("log");
        std::fs::write(&file, b"x\n").expect("write");
        assert!(open_regular(&file).is_ok());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(
            open_regular(&link).is_ok(),
            "a symlink to a regular file is fine"
        );

        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let e = open_regular(&zero).expect_err("/dev/zero");
        assert!(is_not_regular(&e), "{e}");
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file (only regular files are read)"
        );
        let e = open_regular(dir.path()).expect_err("a directory");
        assert!(e.to_string().contains("a directory"), "{e}");

        // A FIFO without a writer: open(2) would block forever without O_NONBLOCK.
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).expect("mkfifo");
        let e = open_regular(&fifo).expect_err("fifo");
        assert!(e.to_string().contains("a FIFO"), "{e}");

        let e = open_regular(&dir.path().join("missing")).expect_err("missing");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!is_not_regular(&e));
    }
}
