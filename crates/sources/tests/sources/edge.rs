//! Partial lines, long lines, invalid UTF-8, late files, truncation, stopping.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use portcullis_sources::{
    FileTail, FileTailOptions, LineSource, MAX_LINE, ReadStatus, SourceId, SourceLine, StartAt,
};

use crate::util::{file_pos, opts};

fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

fn read(tail: &mut FileTail, wait: Duration) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let st = tail.read_batch(&mut out, 1000, wait).unwrap();
    assert_eq!(st, ReadStatus::Live);
    out
}

fn read_until(tail: &mut FileTail, n: usize) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < end {
        out.extend(read(tail, Duration::from_millis(200)));
    }
    out
}

#[test]
fn partial_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, b"one\ntw");
    let mut tail = FileTail::open(SourceId(2), &p, None, opts()).unwrap();
    let l = read_until(&mut tail, 1);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].bytes, b"one");
    assert_eq!(l[0].source, SourceId(2));
    assert!(read(&mut tail, Duration::from_millis(300)).is_empty());
    append(&p, b"o\r\n");
    let l = read_until(&mut tail, 1);
    assert_eq!(l[0].bytes, b"two");
    assert_eq!(file_pos(&l[0]).offset, 9);
}

#[test]
fn partial_last_line_is_delivered_when_rotated_away() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, b"one\nunfinished");
    let mut tail = FileTail::open(SourceId(1), &p, None, opts()).unwrap();
    assert_eq!(read_until(&mut tail, 1).len(), 1);
    std::fs::rename(&p, dir.path().join("a.log.1")).unwrap();
    append(&p, b"new\n");
    let l = read_until(&mut tail, 2);
    let texts: Vec<&[u8]> = l.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(texts, vec![&b"unfinished"[..], b"new"]);
}

#[test]
fn very_long_line_is_cut_and_the_next_line_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let options = FileTailOptions {
        read_chunk: 4096,
        ..opts()
    };
    let mut tail = FileTail::open(SourceId(1), &p, None, options).unwrap();
    let long = vec![b'x'; 1_000_000];
    append(&p, &long);
    append(&p, b"\nafter\n");
    let l = read_until(&mut tail, 2);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].bytes.len(), MAX_LINE);
    assert!(l[0].cut);
    assert_eq!(file_pos(&l[0]).offset, 1_000_001);
    assert_eq!(l[1].bytes, b"after");
    assert!(!l[1].cut);
    assert_eq!(tail.stats().cut_lines, 1);
}

#[test]
fn invalid_utf8_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, b"user \xff\xfe\xc3( from 192.0.2.7\n\x00nul\n");
    let mut tail = FileTail::open(SourceId(1), &p, None, opts()).unwrap();
    let l = read_until(&mut tail, 2);
    assert_eq!(l[0].bytes, b"user \xff\xfe\xc3( from 192.0.2.7");
    assert_eq!(l[1].bytes, b"\x00nul");
}

#[test]
fn file_appearing_later_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("late.log");
    let options = FileTailOptions {
        // Long poll period: the file must be noticed through inotify.
        poll_interval: Duration::from_secs(30),
        ..opts()
    };
    let mut tail = FileTail::open(SourceId(1), &p, None, options).unwrap();
    assert!(read(&mut tail, Duration::from_millis(200)).is_empty());
    let writer = std::thread::spawn({
        let p = p.clone();
        move || {
            std::thread::sleep(Duration::from_millis(200));
            append(&p, b"first\nsecond\n");
        }
    });
    let start = Instant::now();
    let l = read_until(&mut tail, 2);
    writer.join().unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].bytes, b"first");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn missing_directory_is_picked_up_by_the_poll_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("later");
    let p = sub.join("x.log");
    let options = FileTailOptions {
        poll_interval: Duration::from_millis(200),
        ..opts()
    };
    let mut tail = FileTail::open(SourceId(1), &p, None, options).unwrap();
    std::fs::create_dir(&sub).unwrap();
    append(&p, b"hello\n");
    let l = read_until(&mut tail, 1);
    assert_eq!(l[0].bytes, b"hello");
}

#[test]
fn truncated_file_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, b"aaaaaaaaaa 1\naaaaaaaaaa 2\n");
    let mut tail = FileTail::open(SourceId(1), &p, None, opts()).unwrap();
    assert_eq!(read_until(&mut tail, 2).len(), 2);
    // Truncated in place (no copy), then shorter content.
    std::fs::write(&p, b"b 1\n").unwrap();
    let l = read_until(&mut tail, 1);
    assert_eq!(l[0].bytes, b"b 1");
    // Truncated and regrown past the old offset before the tail looks: caught by the hash.
    std::fs::write(&p, b"c 1 ccccccccccccccccccccccccccccccccccccc\nc 2\n").unwrap();
    let l = read_until(&mut tail, 2);
    let texts: Vec<&[u8]> = l.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(
        texts,
        vec![&b"c 1 ccccccccccccccccccccccccccccccccccccc"[..], b"c 2"]
    );
    assert!(tail.stats().truncations >= 2);
}

#[test]
fn start_at_end_skips_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, b"old 1\nold 2\npart");
    let options = FileTailOptions {
        start: StartAt::End,
        ..opts()
    };
    let mut tail = FileTail::open(SourceId(1), &p, None, options).unwrap();
    append(&p, b"ial\nnew\n");
    let l = read_until(&mut tail, 2);
    let texts: Vec<&[u8]> = l.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(texts, vec![&b"partial"[..], b"new"]);
}

#[test]
fn stop_wakes_a_blocked_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let mut tail = FileTail::open(SourceId(1), &p, None, opts()).unwrap();
    let stop = tail.stop_handle();
    let t = std::thread::spawn(move || {
        let mut out = Vec::new();
        let start = Instant::now();
        let st = tail
            .read_batch(&mut out, 10, Duration::from_secs(60))
            .unwrap();
        (st, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    stop.stop();
    let (st, took) = t.join().unwrap();
    assert_eq!(st, ReadStatus::Stopped);
    assert!(took < Duration::from_secs(5), "{took:?}");
}
