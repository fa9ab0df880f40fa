//! Shared test plumbing: a tail running on its own thread, collecting lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portcullis_sources::{
    FilePosition, FileTail, FileTailOptions, LineSource, Position, ReadStatus, SourceLine, StartAt,
    StopHandle,
};

pub fn opts() -> FileTailOptions {
    FileTailOptions {
        start: StartAt::Beginning,
        poll_interval: Duration::from_millis(500),
        rotate_grace: Duration::from_millis(300),
        ..FileTailOptions::default()
    }
}

/// A tail on a reader thread; lines land in `lines`.
pub struct Running {
    pub lines: Arc<Mutex<Vec<SourceLine>>>,
    /// Highest `line N` number seen so far (+1), for writers that wait for the reader.
    pub seen: Arc<AtomicU64>,
    stop: StopHandle,
    thread: Option<JoinHandle<FileTail>>,
}

pub fn line_number(l: &SourceLine) -> Option<u64> {
    let s = std::str::from_utf8(&l.bytes).ok()?;
    s.strip_prefix("line ")?.split(' ').next()?.parse().ok()
}

impl Running {
    pub fn start(tail: FileTail) -> Running {
        Running::start_waiting(tail, Duration::from_millis(200))
    }

    /// Like [`Running::start`], each `read_batch` waiting up to `wait`: with a long wait and
    /// a long poll interval the tail is woken only by its watches (and the stop event).
    pub fn start_waiting(mut tail: FileTail, wait: Duration) -> Running {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicU64::new(0));
        let stop = tail.stop_handle();
        let (l2, s2) = (Arc::clone(&lines), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            let mut batch = Vec::new();
            loop {
                batch.clear();
                match tail.read_batch(&mut batch, 4096, wait) {
                    Ok(ReadStatus::Stopped) => return tail,
                    Ok(_) => {}
                    Err(e) => panic!("read_batch: {e}"),
                }
                for l in &batch {
                    if let Some(n) = line_number(l) {
                        s2.fetch_max(n + 1, Ordering::SeqCst);
                    }
                }
                l2.lock().unwrap().extend(batch.drain(..));
            }
        });
        Running {
            lines,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Wait until at least `n` lines arrived (or `limit` passed); returns the count.
    pub fn wait_for(&self, n: usize, limit: Duration) -> usize {
        let end = Instant::now() + limit;
        loop {
            let c = self.count();
            if c >= n || Instant::now() > end {
                return c;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until the `line N` with N ≥ `n` has been seen.
    pub fn wait_seen(&self, n: u64, limit: Duration) {
        let end = Instant::now() + limit;
        while self.seen.load(Ordering::SeqCst) < n + 1 {
            assert!(Instant::now() < end, "reader never reached line {n}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stop the tail and return it with every line it delivered.
    pub fn stop(mut self) -> (FileTail, Vec<SourceLine>) {
        self.stop.stop();
        let tail = self
            .thread
            .take()
            .expect("thread")
            .join()
            .expect("reader thread panicked");
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (tail, lines)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// Every number in `0..total` exactly once.
pub fn assert_exactly_once(lines: &[SourceLine], total: u64) {
    let mut counts = vec![0u32; total as usize];
    for l in lines {
        let n = line_number(l)
            .unwrap_or_else(|| panic!("unexpected line {:?}", String::from_utf8_lossy(&l.bytes)));
        assert!(n < total, "line number {n} out of range");
        counts[n as usize] += 1;
    }
    let missing: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] == 0).collect();
    let dup: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 1).collect();
    assert!(
        missing.is_empty() && dup.is_empty(),
        "{} lines, {} missing (first {:?}), {} duplicated (first {:?})",
        lines.len(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        dup.len(),
        dup.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(lines.len() as u64, total);
}

pub fn file_pos(l: &SourceLine) -> FilePosition {
    match &l.position {
        Position::File(p) => *p,
        other => panic!("not a file position: {other:?}"),
    }
}
