//! Rotation while a writer appends at full speed: every line exactly once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_sources::{FileTail, SourceId};

use crate::util::{Running, assert_exactly_once, opts};

#[derive(Copy, Clone, Debug, PartialEq)]
enum Rotation {
    Rename,
    CopyTruncate,
    DeleteRecreate,
}

/// Rotated files kept: more than the rotations of any test, so no line is ever deleted
/// before the reader could see it.
const KEEP: u32 = 64;

fn numbered(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("app.log.{k}"))
}

/// logrotate's numbering: app.log.K → app.log.K+1, newest first.
fn shift(dir: &Path, keep: u32) {
    for k in (1..keep).rev() {
        let from = numbered(dir, k);
        if from.exists() {
            std::fs::rename(&from, numbered(dir, k + 1)).unwrap();
        }
    }
}

fn append(path: &Path) -> BufWriter<File> {
    BufWriter::with_capacity(
        64 * 1024,
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

/// Writes `total` numbered lines as fast as it can, rotating every `per_file` lines.
/// With `wait_reader`, before each rotation it waits until the reader has seen a line of the
/// current file (it never waits for the reader to catch up). Needed for delete+recreate (a
/// file deleted before anyone opened it is gone for everyone) and for copytruncate (a copy of
/// content whose first line the reader never saw cannot be told from older copies).
fn run(kind: Rotation, total: u64, per_file: u64, wait_reader: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    File::create(&path).unwrap();
    let tail = FileTail::open(SourceId(7), &path, None, opts()).unwrap();
    let reader = Running::start(tail);
    let mut w = append(&path);
    let mut first_of_file = 0u64;
    let mut rotations = 0;
    for n in 0..total {
        if n > 0 && n % per_file == 0 {
            w.flush().unwrap();
            if wait_reader {
                reader.wait_seen(first_of_file, Duration::from_secs(60));
            }
            match kind {
                Rotation::Rename => {
                    shift(dir.path(), KEEP);
                    std::fs::rename(&path, numbered(dir.path(), 1)).unwrap();
                    w = append(&path);
                }
                Rotation::CopyTruncate => {
                    // Atomic w.r.t. our own writes: logrotate itself loses lines written
                    // between its copy and its truncate; we do not write in between.
                    shift(dir.path(), KEEP);
                    std::fs::copy(&path, numbered(dir.path(), 1)).unwrap();
                    w.get_ref().set_len(0).unwrap();
                }
                Rotation::DeleteRecreate => {
                    std::fs::remove_file(&path).unwrap();
                    w = append(&path);
                }
            }
            rotations += 1;
            first_of_file = n;
        }
        writeln!(
            w,
            "line {n} sshd[1234]: Failed password for root from 192.0.2.1"
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let got = reader.wait_for(total as usize, Duration::from_secs(60));
    // Give a wrong implementation the chance to deliver duplicates before we count.
    std::thread::sleep(Duration::from_millis(600));
    let (tail, lines) = reader.stop();
    assert!(
        got >= total as usize,
        "{kind:?}: only {got} of {total} lines"
    );
    assert_exactly_once(&lines, total);
    let stats = tail.stats();
    assert_eq!(stats.lines, total);
    match kind {
        // Several truncations seen at once count once, the copies then count as rotations.
        Rotation::CopyTruncate => assert!(stats.truncations >= 1, "{stats:?}"),
        _ => assert!(
            stats.rotations >= 1 && stats.rotations <= rotations,
            "{stats:?}"
        ),
    }
}

#[test]
fn rename_create_at_full_speed() {
    run(Rotation::Rename, 300_000, 50_000, false);
}

#[test]
fn rename_create_many_fast_rotations() {
    // Rotations far faster than any reader: several happen between two reads, and the
    // tail must pick the skipped files up from app.log.N … app.log.1.
    run(Rotation::Rename, 40_000, 2_000, false);
}

#[test]
fn copytruncate_at_full_speed() {
    run(Rotation::CopyTruncate, 300_000, 50_000, true);
}

#[test]
fn copytruncate_many_fast_rotations() {
    run(Rotation::CopyTruncate, 40_000, 2_000, true);
}

#[test]
fn delete_recreate_many_fast_rotations() {
    run(Rotation::DeleteRecreate, 40_000, 2_000, true);
}

#[test]
fn delete_recreate_at_full_speed() {
    run(Rotation::DeleteRecreate, 300_000, 50_000, true);
}

#[test]
fn late_writer_to_the_rotated_file_loses_nothing() {
    // rsyslog keeps writing to the renamed file until logrotate's HUP makes it reopen.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut w = append(&path);
    let tail = FileTail::open(SourceId(1), &path, None, opts()).unwrap();
    let reader = Running::start(tail);
    for n in 0..1000 {
        writeln!(w, "line {n} before").unwrap();
    }
    w.flush().unwrap();
    reader.wait_seen(999, Duration::from_secs(10));
    std::fs::rename(&path, numbered(dir.path(), 1)).unwrap();
    let mut new = append(&path);
    writeln!(new, "line 1000 new file").unwrap();
    new.flush().unwrap();
    reader.wait_seen(1000, Duration::from_secs(10));
    // The tail has switched to the new file; the old writer has not reopened yet.
    for n in 1001..1100 {
        writeln!(w, "line {n} late, to the old file").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    for n in 1100..1200 {
        writeln!(new, "line {n} after reopening").unwrap();
    }
    new.flush().unwrap();
    reader.wait_for(1200, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let (_tail, lines) = reader.stop();
    assert_exactly_once(&lines, 1200);
}
