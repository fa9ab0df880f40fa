//! A followed path that names something other than a regular file (issue 10, item 6): a FIFO
//! must not block the open, a symlink to `/dev/zero` must not spin; both are refused with an
//! error naming the path and the type, and the path is picked up once it is a regular file.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portcullis_sources::{
    FileTail, LineSource, OpenError, ReadError, ReadStatus, ReplayReader, SourceId, SourceLine,
};
use rustix::fs::Mode;

use crate::util::opts;

/// Run `f` on its own thread; panic if it does not return within `limit` (a FIFO opened
/// without O_NONBLOCK blocks forever: the thread is then left behind).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"))
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(0o600)).unwrap();
}

/// One read_batch; the lines and the result.
fn read_once(
    tail: &mut FileTail,
    wait: Duration,
) -> (Vec<SourceLine>, Result<ReadStatus, ReadError>) {
    let mut out = Vec::new();
    let r = tail.read_batch(&mut out, 1000, wait);
    (out, r)
}

/// The refusal of a non-regular file, once, then quiet reads that wait their timeout (no
/// spinning, no lines).
fn assert_refused_once(tail: &mut FileTail, kind: &str) {
    let (lines, r) = read_once(tail, Duration::from_millis(100));
    assert!(lines.is_empty(), "{} lines read from {kind}", lines.len());
    let e = r.expect_err("the first read reports the refusal");
    let text = format!("{}: {}", e, std::error::Error::source(&e).expect("cause"));
    assert!(
        text.contains(&tail.path().display().to_string()) && text.contains(kind),
        "{text}"
    );
    for _ in 0..3 {
        let t0 = Instant::now();
        let (lines, r) = read_once(tail, Duration::from_millis(300));
        assert!(lines.is_empty(), "{} lines read from {kind}", lines.len());
        assert_eq!(r.expect("reported only once"), ReadStatus::Live);
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "read_batch returned at once: a busy loop"
        );
    }
}

/// Replace what sits at `path` with a regular file holding two lines; the tail reads them.
fn becomes_regular(tail: &mut FileTail, path: &Path) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, b"first\nsecond\n").unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && Instant::now() < end {
        let (lines, r) = read_once(tail, Duration::from_millis(200));
        assert_eq!(r.expect("a regular file reads"), ReadStatus::Live);
        got.extend(lines.into_iter().map(|l| l.bytes));
    }
    assert_eq!(got, [b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_fifo_at_the_followed_path_neither_blocks_nor_is_read_and_a_later_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    mkfifo(&path);
    let p = path.clone();
    let mut tail = within(
        Duration::from_secs(10),
        "FileTail::open on a FIFO",
        move || FileTail::open(SourceId(1), p, None, opts()).expect("opens: the name is followed"),
    );
    assert_refused_once(&mut tail, "a FIFO");
    // A writer on the FIFO changes nothing: it is still not read.
    let fifo_writer = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK,
        Mode::empty(),
    )
    .unwrap();
    rustix::io::write(&fifo_writer, b"forged line\n").unwrap();
    let (lines, r) = read_once(&mut tail, Duration::from_millis(300));
    assert!(lines.is_empty() && r.is_ok());
    drop(fifo_writer);
    becomes_regular(&mut tail, &path);
    // Stopping is prompt.
    tail.stop_handle().stop();
    assert_eq!(
        read_once(&mut tail, Duration::from_secs(5)).1.unwrap(),
        ReadStatus::Stopped
    );
}

#[test]
fn a_symlink_to_dev_zero_is_refused_not_spun_on_and_a_later_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let mut tail = FileTail::open(SourceId(1), &path, None, opts()).unwrap();
    assert_refused_once(&mut tail, "a character device");
    becomes_regular(&mut tail, &path);
}

#[test]
fn a_file_rotated_into_a_fifo_keeps_its_lines_and_the_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    std::fs::write(&path, b"one\n").unwrap();
    let mut tail = FileTail::open(SourceId(1), &path, None, opts()).unwrap();
    let (lines, r) = read_once(&mut tail, Duration::from_millis(200));
    assert_eq!(r.unwrap(), ReadStatus::Live);
    assert_eq!(lines.len(), 1);
    // The writer's last words go to the old file, then the path becomes a FIFO.
    std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
    mkfifo(&path);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("auth.log.1"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"two\n").unwrap();
    let p = path.clone();
    let (lines, errors) = within(
        Duration::from_secs(10),
        "reading past the rotation",
        move || {
            let mut lines = Vec::new();
            let mut errors = Vec::new();
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                let (l, r) = read_once(&mut tail, Duration::from_millis(100));
                lines.extend(l.into_iter().map(|l| l.bytes));
                if let Err(e) = r {
                    errors.push(format!(
                        "{e}: {}",
                        std::error::Error::source(&e).expect("cause")
                    ));
                }
            }
            (lines, errors)
        },
    );
    assert_eq!(lines, [b"two".to_vec()]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&p.display().to_string()) && errors[0].contains("a FIFO"),
        "{errors:?}"
    );
}

#[test]
fn the_offline_reader_refuses_a_fifo_and_dev_zero_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.log");
    mkfifo(&fifo);
    let zero = dir.path().join("zero.log");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (path, kind) in [
        (fifo, "a FIFO"),
        (zero, "a character device"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        let p = path.clone();
        let r = within(Duration::from_secs(10), "ReplayReader::open", move || {
            ReplayReader::open(SourceId(0), &p).map(|_| ())
        });
        let e = r.expect_err("refused");
        assert!(matches!(e, OpenError::Open { .. }), "{e:?}");
        let text = format!("{e}: {}", std::error::Error::source(&e).expect("cause"));
        assert!(
            text.contains(&path.display().to_string()) && text.contains(kind),
            "{text}"
        );
    }
}
