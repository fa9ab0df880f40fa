//! The tail's inotify watch on its file's directory, kept on the directory the path names
//! *now*: through the directory being removed and created again, renamed away, or covered by
//! another file system.
//!
//! Two watches: the directory (its entries wake the tail) and its nearest existing ancestor
//! (the parent while the directory exists), for the one name under it that leads to the
//! directory. The directory watch moves when the directory stops being the one the path
//! names:
//! - that name is removed, renamed or created in the ancestor. A removed directory gives no
//!   `IN_IGNORED` of its own while the tail's open file (deleted with it) pins it;
//! - `IN_IGNORED` (its file system gone) or `IN_MOVE_SELF` (renamed) on the directory;
//! - a change of the mount table (`/proc/self/mountinfo` polled for `POLLPRI`): after
//!   `umount -l` and a fresh mount at the same place the old watch gets no event at all
//!   (the detached file system lives on while the tail holds its file);
//! - the tail's poll fallback, for anything else.
//!
//! While the directory is missing, the ancestor watch walks back down as the tree
//! reappears, and the path is also looked at again with backoff (50 ms doubling to 5 s): an
//! ancestor removed in turn may give no event either. Each incident is logged once: a
//! warning when the directory goes or is replaced, an info line when it is back.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::error::ReadError;

/// The events on the directory that wake the tail, plus renames of the directory itself.
const DIR_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CREATE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVE_SELF);

/// What the nearest existing ancestor is watched for: the name leading to the directory
/// created, removed or renamed.
const ANCESTOR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::ONLYDIR);

/// Longest wait between the rechecks while the directory cannot be watched.
const MAX_RECHECK: Duration = Duration::from_secs(5);
/// First wait before a recheck.
const MIN_RECHECK: Duration = Duration::from_millis(50);

/// Watches one directory by name; see the module docs.
pub(crate) struct DirWatcher {
    dir: PathBuf,
    inotify: Inotify,
    /// The directory's watch and the `(dev, ino)` it was put on.
    watched: Option<(WatchDescriptor, (u64, u64))>,
    /// The watch on the nearest existing ancestor (the parent, while the directory exists),
    /// its path, and the name under it that leads to the directory.
    ancestor: Option<(WatchDescriptor, PathBuf, OsString)>,
    /// `/proc/self/mountinfo`, which polls `POLLPRI` after every mount table change; `None`
    /// without procfs (then only the rechecks see a remount).
    mounts: Option<File>,
    /// The directory's watch vanished (`IN_IGNORED`) and that is not yet accounted for.
    lost: bool,
    /// The directory's removal was reported: its return is, once.
    gone_reported: bool,
    /// While the directory is not watched: when to look again, and the wait after that.
    recheck: Option<(Instant, Duration)>,
    events: Vec<u8>,
}

impl DirWatcher {
    /// Watch `dir` (or, while it is missing, the way back to it).
    pub(crate) fn new(dir: PathBuf) -> io::Result<DirWatcher> {
        let mut w = DirWatcher {
            dir,
            inotify: Inotify::init()?,
            watched: None,
            ancestor: None,
            mounts: File::open("/proc/self/mountinfo").ok(),
            lost: false,
            gone_reported: false,
            recheck: None,
            events: vec![0; 16 * 1024],
        };
        w.check();
        Ok(w)
    }

    /// Put the watches on the directory the path names now and on its nearest existing
    /// ancestor, if they are not there already.
    pub(crate) fn check(&mut self) {
        // Bounded: a tree created while we look moves the ancestor watch one level per pass.
        for _ in 0..16 {
            match std::fs::metadata(&self.dir) {
                Ok(m) if m.is_dir() => self.watch_dir((m.dev(), m.ino())),
                _ => self.unwatch_missing(),
            }
            if !self.watch_ancestor() {
                break;
            }
        }
        self.recheck = match (&self.watched, self.recheck) {
            (Some(_), _) => None,
            (None, None) => Some((Instant::now() + MIN_RECHECK, MIN_RECHECK * 2)),
            (None, Some(r)) => Some(r),
        };
    }

    fn watch_dir(&mut self, id: (u64, u64)) {
        if self.watched.as_ref().is_some_and(|(_, have)| *have == id) {
            return;
        }
        let mut replaced = std::mem::take(&mut self.lost);
        if let Some((wd, _)) = self.watched.take() {
            // On the old directory (renamed away, or covered by a mount): not ours any more.
            let _ = self.inotify.watches().remove(wd);
            replaced = true;
        }
        match self.inotify.watches().add(&self.dir, DIR_MASK) {
            Ok(wd) => {
                self.watched = Some((wd, id));
                if std::mem::take(&mut self.gone_reported) {
                    tracing::info!(dir = %self.dir.display(), "log directory is back; watching it");
                } else if replaced {
                    tracing::warn!(dir = %self.dir.display(),
                        "log directory was replaced (created again, or another file system mounted on it); watching the new one");
                }
            }
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e,
                    "cannot watch directory; relying on the poll fallback");
            }
        }
    }

    /// The directory is missing: drop its watch (a removed directory that the tail's open
    /// file still pins gets no `IN_IGNORED` until that file is closed) and report it once.
    fn unwatch_missing(&mut self) {
        let had = self.watched.is_some() || std::mem::take(&mut self.lost);
        if let Some((wd, _)) = self.watched.take() {
            let _ = self.inotify.watches().remove(wd);
        }
        // Missing from the start is no incident: the tail waits for the name anyway.
        if had && !self.gone_reported {
            tracing::warn!(dir = %self.dir.display(),
                "log directory removed; its last file is still read, and the directory is watched for until it is back");
            self.gone_reported = true;
        }
    }

    /// Watch the nearest existing ancestor of the directory for the name that leads to it
    /// being created, removed or renamed. True when the caller must look again: that name
    /// appeared between the look and the watch (no event will tell), or the ancestor went.
    fn watch_ancestor(&mut self) -> bool {
        let mut child = self.dir.as_path();
        let ancestor = loop {
            let parent = match child.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => return false,
            };
            if parent.is_dir() {
                break parent;
            }
            if parent == child {
                return false;
            }
            child = parent;
        };
        let Some(name) = child.file_name() else {
            return false;
        };
        if self
            .ancestor
            .as_ref()
            .is_none_or(|(_, p, n)| p != ancestor || n != name)
        {
            if let Some((wd, ..)) = self.ancestor.take() {
                let _ = self.inotify.watches().remove(wd);
            }
            match self.inotify.watches().add(ancestor, ANCESTOR_MASK) {
                Ok(wd) => {
                    self.ancestor = Some((wd, ancestor.to_path_buf(), name.to_os_string()));
                }
                // Removed between the look and the watch: look again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
                Err(e) => {
                    tracing::debug!(dir = %ancestor.display(), error = %e,
                        "cannot watch directory; relying on the poll fallback");
                    return false;
                }
            }
        }
        self.watched.is_none() && child.exists()
    }

    /// Sleep until an inotify event, a mount table change, `stop` or `dur`; moves the watch
    /// when an event says the directory changed.
    pub(crate) fn wait(&mut self, stop: BorrowedFd<'_>, dur: Duration) -> Result<(), ReadError> {
        let dur = match self.recheck {
            Some((at, _)) => dur.min(at.saturating_duration_since(Instant::now())),
            None => dur,
        };
        let ts = Timespec::try_from(dur).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let (events, mounts) = {
            let mut fds = vec![
                PollFd::new(&self.inotify, PollFlags::IN),
                PollFd::from_borrowed_fd(stop, PollFlags::IN),
            ];
            if let Some(m) = &self.mounts {
                fds.push(PollFd::new(m, PollFlags::PRI));
            }
            match poll(&mut fds, Some(&ts)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(ReadError::Wait(e.into())),
            }
            let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
            (ready(0), ready(2))
        };
        let mut moved = mounts || (events && self.read_events()?);
        // Without a directory watch (missing, or a removed ancestor that gives no event):
        // look again with backoff.
        if let Some((at, next)) = self.recheck
            && Instant::now() >= at
        {
            self.recheck = Some((Instant::now() + next, (next * 2).min(MAX_RECHECK)));
            moved = true;
        }
        if moved {
            self.check();
        }
        Ok(())
    }

    /// Read the pending inotify events; true when one says the directory may have changed.
    fn read_events(&mut self) -> Result<bool, ReadError> {
        let mut moved = false;
        loop {
            match self.inotify.read_events(&mut self.events) {
                Ok(evs) => {
                    for ev in evs {
                        let on_dir = self.watched.as_ref().is_some_and(|(wd, _)| *wd == ev.wd);
                        let on_ancestor =
                            self.ancestor.as_ref().is_some_and(|(wd, ..)| *wd == ev.wd);
                        let leads_here = self
                            .ancestor
                            .as_ref()
                            .is_some_and(|(_, _, name)| ev.name == Some(name.as_os_str()));
                        if on_dir && ev.mask.contains(EventMask::IGNORED) {
                            // The kernel dropped it: nothing to remove.
                            self.watched = None;
                            self.lost = true;
                        }
                        if on_ancestor && ev.mask.contains(EventMask::IGNORED) {
                            self.ancestor = None;
                        }
                        moved |= (on_ancestor
                            && (leads_here || ev.mask.contains(EventMask::IGNORED)))
                            || (on_dir
                                && ev.mask.intersects(
                                    EventMask::IGNORED | EventMask::MOVE_SELF | EventMask::UNMOUNT,
                                ))
                            || ev.mask.contains(EventMask::Q_OVERFLOW);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Wait(e)),
            }
        }
    }
}
