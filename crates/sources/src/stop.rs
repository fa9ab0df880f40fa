//! A sticky stop signal that wakes a source blocked in poll(2).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{EventfdFlags, eventfd};

/// Stops a source from another thread: its current or next `read_batch` returns
/// [`crate::ReadStatus::Stopped`]. Cloneable and sticky (there is no un-stop).
#[derive(Clone, Debug)]
pub struct StopHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Checked first, so a stopped source returns without a syscall.
    flag: AtomicBool,
    /// Becomes readable on stop and stays so (never read), which wakes poll(2).
    fd: OwnedFd,
}

impl StopHandle {
    pub(crate) fn new() -> std::io::Result<StopHandle> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(StopHandle {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                fd,
            }),
        })
    }

    /// Ask the source to stop.
    pub fn stop(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        // A full counter (EAGAIN) still leaves the fd readable, so errors do not matter.
        let _ = rustix::io::write(&self.inner.fd, &1u64.to_ne_bytes());
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}
