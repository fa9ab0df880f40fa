//! Issue 11, item 5, "sources heal themselves", for the file tail: its directory removed (or
//! renamed away) and created again, its file system replaced by a fresh mount or remounted
//! read-only and back. The poll fallback and the reader's wait are set to an hour, so only
//! the tail's own watches can wake it: every line written before the fault and after it
//! arrives exactly once, and promptly.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portcullis_sources::{FileTail, FileTailOptions, SourceId};

use crate::util::{Running, assert_exactly_once, opts};

const WAIT: Duration = Duration::from_secs(10);

const HOUR: Duration = Duration::from_secs(3600);

/// The test options without the poll fallback (an hour): what the tail sees, it sees
/// through inotify and the mount table.
fn no_poll() -> FileTailOptions {
    FileTailOptions {
        poll_interval: HOUR,
        ..opts()
    }
}

/// A tail on `log` woken only by its watches: no poll, and each `read_batch` waits an hour
/// (a read_batch that returns on its timeout looks at the path again). Returns once it
/// read `line 99`, the last line of the file the tests start with.
fn follow(log: &Path) -> Running {
    let tail = FileTail::open(SourceId(1), log, None, no_poll()).unwrap();
    let run = Running::start_waiting(tail, HOUR);
    run.wait_seen(99, WAIT);
    run
}

/// Append `line N` for `N` in `from..to`; the file is closed again (a read-only remount
/// refuses files open for writing).
fn append(path: &Path, from: u64, to: u64) {
    let text: String = (from..to).map(|n| format!("line {n} x\n")).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Written in pieces, each waited for: the tail is woken by writes to the file the path
/// names now (its directory is watched), not by a poll.
fn append_in_pieces(run: &Running, path: &Path, next: &mut u64) {
    for _ in 0..5 {
        append(path, *next, *next + 10);
        *next += 10;
        run.wait_seen(*next - 1, WAIT);
    }
}

/// `dir/auth.log` (directories created) with the first 100 lines, followed ([`follow`]).
fn follow_in(dir: &Path) -> (PathBuf, Running) {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("auth.log");
    append(&log, 0, 100);
    let run = follow(&log);
    (log, run)
}

/// The last lines written in pieces, then every line checked: each arrived exactly once (the
/// reader thread panics on a read error, which `stop` reports), and the tail stands at the
/// end of the file the path names now.
fn finish(run: Running, log: &Path, mut next: u64) -> FileTail {
    append_in_pieces(&run, log, &mut next);
    let (tail, lines) = run.stop();
    assert_exactly_once(&lines, next);
    assert_at_end_of(&tail, log);
    tail
}

/// The tail's position is the end of the file the path names now.
fn assert_at_end_of(tail: &FileTail, path: &Path) {
    let m = std::fs::metadata(path).unwrap();
    let pos = tail.position().expect("a position");
    assert_eq!(
        (pos.dev, pos.ino, pos.offset),
        (m.dev(), m.ino(), m.len()),
        "the position is not the end of the live file"
    );
}

#[test]
fn i11_a_log_directory_removed_and_created_again_is_watched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, run) = follow_in(&dir);
    let mut next = 100;
    for _ in 0..3 {
        // Lines the tail may not have read yet when the directory goes: they are in the
        // unlinked file it holds open.
        append(&log, next, next + 50);
        next += 50;
        std::fs::remove_dir_all(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        std::fs::create_dir(&dir).unwrap();
        append(&log, next, next + 50);
        next += 50;
        run.wait_seen(next - 1, WAIT);
        append_in_pieces(&run, &log, &mut next);
    }
    let tail = finish(run, &log, next);
    assert_eq!(tail.stats().rotations, 3);
}

/// `mv log log.old; mkdir log`: the old directory still exists (no IN_IGNORED), so the
/// watch must follow the name, not the inode it was put on.
#[test]
fn i11_a_log_directory_renamed_away_and_created_again_is_watched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, run) = follow_in(&dir);
    append(&log, 100, 150);
    std::fs::rename(&dir, tmp.path().join("log.old")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    append(&log, 150, 200);
    run.wait_seen(199, WAIT);
    finish(run, &log, 200);
}

/// The whole tree above the file goes (`rm -rf a`, then `mkdir -p a/b`): the tail waits on
/// the nearest directory that is left and walks back down as the tree reappears.
#[test]
fn i11_a_removed_directory_tree_is_watched_again_as_it_reappears() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("a");
    let dir = top.join("b");
    let (log, run) = follow_in(&dir);
    std::fs::remove_dir_all(&top).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::create_dir(&top).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::create_dir(&dir).unwrap();
    append(&log, 100, 150);
    run.wait_seen(149, WAIT);
    finish(run, &log, 150);
}

fn mount(args: &[&str], at: &Path) {
    portcullis_testkit::run(Command::new("mount").args(args).arg(at));
}

/// Whether something is mounted at `at` (`/proc/self/mountinfo`, field 5).
fn is_mount_point(at: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = at.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == at))
}

/// A small tmpfs on a directory of its own, holding `auth.log` with `line 0 … line 99`.
/// Every mount stacked there is lazily unmounted on drop, also when the test fails, before
/// the temporary directory goes.
struct Tmpfs {
    mnt: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying so, or failing under `CI=true`) without root and mount(8).
    fn with_log() -> Option<Tmpfs> {
        if !portcullis_testkit::require_root_and(&["mount", "umount"]) {
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let fs = Tmpfs {
            log: mnt.join("auth.log"),
            mnt,
            _tmp: tmp,
        };
        fs.mount_fresh();
        append(&fs.log, 0, 100);
        Some(fs)
    }

    /// Mount another, empty tmpfs over the same place.
    fn mount_fresh(&self) {
        mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], &self.mnt);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..8 {
            if !is_mount_point(&self.mnt) {
                return;
            }
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// `umount -l` of the file system holding the log and a fresh one mounted in its place:
/// no inotify event reaches the old watch (the detached file system lives on while the tail
/// holds its file), so the tail must notice the mount table change and watch the new
/// directory.
#[test]
fn i11_a_file_system_replaced_under_the_log_is_followed_on_the_new_one() {
    let Some(fs) = Tmpfs::with_log() else { return };
    let (mnt, log) = (fs.mnt.clone(), fs.log.clone());
    let old_dev = std::fs::metadata(&log).unwrap().dev();
    let run = follow(&log);
    // Readable through the tail's open file after the unmount: must not be lost.
    append(&log, 100, 150);
    portcullis_testkit::run(Command::new("umount").arg("-l").arg(&mnt));
    fs.mount_fresh();
    append(&log, 150, 200);
    assert_ne!(std::fs::metadata(&log).unwrap().dev(), old_dev);
    run.wait_seen(199, WAIT);
    finish(run, &log, 200);
}

/// `mount -o remount,ro` and back to rw: the file stays readable, nothing is reported,
/// lost or read twice, and writes after the remount are still seen through inotify.
#[test]
fn i11_a_read_only_remount_and_back_loses_nothing() {
    let Some(fs) = Tmpfs::with_log() else { return };
    let (mnt, log) = (fs.mnt.clone(), fs.log.clone());
    let run = follow(&log);
    append(&log, 100, 150);
    mount(&["-o", "remount,ro"], &mnt);
    run.wait_seen(149, WAIT);
    assert!(
        std::fs::OpenOptions::new().append(true).open(&log).is_err(),
        "the file system is read-only"
    );
    std::thread::sleep(Duration::from_millis(300));
    mount(&["-o", "remount,rw"], &mnt);
    finish(run, &log, 150);
}
