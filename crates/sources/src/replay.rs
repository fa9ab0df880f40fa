//! Lines from any reader (a log file for `scan`, `investigate` and `test-filter`), gzip
//! detected by magic: the one reader of whole files.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use flate2::bufread::MultiGzDecoder;
use portcullis_core::time::Time;

use crate::error::{OpenError, ReadError};
use crate::line::{LineSource, MAX_LINE, Position, ReadStatus, SourceId, SourceLine, wall_clock};
use crate::regular::open_regular;
use crate::split::LineSplitter;
use crate::stop::StopHandle;

/// Reads a plain or gzip-compressed stream to its end. A last line without newline is
/// delivered at the end; lines are cut at the line cap (see [`MAX_LINE`]); a trailing CR is
/// dropped.
///
/// Two ways to read: [`for_each_line`](Self::for_each_line) hands out borrowed slices of its
/// buffer (no per-line copy: the offline commands use it), and the [`LineSource`]
/// interface yields owned [`SourceLine`]s whose position is [`Position::Stream`].
pub struct ReplayReader {
    id: SourceId,
    input: Box<dyn Read + Send>,
    gzip: bool,
    split: LineSplitter,
    buf: Vec<u8>,
    /// Bytes read but not yet split (after a batch filled up mid-buffer).
    unsplit: std::ops::Range<usize>,
    finished: bool,
    stop: StopHandle,
    lines: u64,
}

impl std::fmt::Debug for ReplayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayReader")
            .field("id", &self.id)
            .field("gzip", &self.gzip)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl ReplayReader {
    /// Wrap `reader`; gzip input (magic `1f 8b`, concatenated members allowed) is decompressed.
    pub fn new<R: Read + Send + 'static>(
        id: SourceId,
        reader: R,
    ) -> Result<ReplayReader, OpenError> {
        ReplayReader::with_cap(id, reader, MAX_LINE)
    }

    /// [`new`](Self::new) with another line cap, for tests of the cutting.
    fn with_cap<R: Read + Send + 'static>(
        id: SourceId,
        reader: R,
        max_line: usize,
    ) -> Result<ReplayReader, OpenError> {
        let mut br = BufReader::with_capacity(256 * 1024, reader);
        let gzip = loop {
            match br.fill_buf() {
                Ok(head) => break head.starts_with(&[0x1f, 0x8b]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(OpenError::Input(e)),
            }
        };
        let input: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(br))
        } else {
            Box::new(br)
        };
        Ok(ReplayReader {
            id,
            input,
            gzip,
            split: LineSplitter::new(max_line, 0),
            buf: vec![0; 256 * 1024],
            unsplit: 0..0,
            finished: false,
            stop: StopHandle::new().map_err(OpenError::StopEvent)?,
            lines: 0,
        })
    }

    /// Open a file (plain or .gz, by content) with the line cap [`MAX_LINE`]. Only a regular
    /// file is read: a FIFO, a device such as `/dev/zero` or a directory is refused with
    /// [`OpenError::Open`] whose source is a [`crate::NotRegularFile`] (a FIFO never blocks
    /// the open).
    pub fn open(id: SourceId, path: &Path) -> Result<ReplayReader, OpenError> {
        let f = open_regular(path).map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        ReplayReader::new(id, f)
    }

    /// Call `f` with every line to the end of the input, borrowed from the read buffer (a
    /// line is copied only when it straddles two reads). Returns the lines delivered.
    pub fn for_each_line(&mut self, mut f: impl FnMut(&[u8])) -> Result<u64, ReadError> {
        let before = self.lines;
        loop {
            if !self.unsplit.is_empty() {
                let data = self.buf.get(self.unsplit.clone()).unwrap_or(&[]);
                let mut lines = 0u64;
                self.split.feed(data, usize::MAX, |bytes, _, _| {
                    lines += 1;
                    f(bytes);
                });
                self.lines += lines;
                self.unsplit = 0..0;
            }
            if self.finished {
                return Ok(self.lines - before);
            }
            if let Some((bytes, _, _)) = self.refill()? {
                self.lines += 1;
                f(&bytes);
            }
        }
    }

    /// Read the next buffer of input into `unsplit`. At the end of the input, marks the
    /// reader finished and returns the partial last line (no newline), if any.
    fn refill(&mut self) -> Result<Option<(Vec<u8>, u64, bool)>, ReadError> {
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => {
                    self.finished = true;
                    return Ok(self.split.take_partial());
                }
                Ok(n) => {
                    self.unsplit = 0..n;
                    return Ok(None);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Stream(e)),
            }
        }
    }

    /// Whether the input was gzip.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Lines delivered so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Lines delivered cut to the line cap.
    pub fn cut_lines(&self) -> u64 {
        self.split.cut_lines
    }

    /// A handle that makes the next [`ReplayReader::read_batch`] return `Stopped` (a blocking
    /// read in progress is not interrupted).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Append up to `max` lines to `out`; [`ReadStatus::Finished`] once the input is done.
    pub fn read_batch(
        &mut self,
        out: &mut Vec<SourceLine>,
        max: usize,
    ) -> Result<ReadStatus, ReadError> {
        let start = out.len();
        let now = wall_clock();
        loop {
            if self.stop.is_stopped() {
                return Ok(ReadStatus::Stopped);
            }
            let room = max.saturating_sub(out.len() - start);
            if room == 0 {
                return Ok(ReadStatus::Live);
            }
            if self.unsplit.is_empty() {
                if self.finished {
                    return Ok(if out.len() > start {
                        ReadStatus::Live
                    } else {
                        ReadStatus::Finished
                    });
                }
                if let Some((bytes, end, cut)) = self.refill()? {
                    out.push(self.line(bytes, end, cut, now));
                }
                continue;
            }
            let id = self.id;
            let mut lines = 0u64;
            let data = self.buf.get(self.unsplit.clone()).unwrap_or(&[]);
            let used = self.split.feed(data, room, |bytes, end, cut| {
                lines += 1;
                let position = Position::Stream(end);
                out.push(SourceLine::new(id, bytes.to_vec(), cut, now, position));
            });
            self.lines += lines;
            self.unsplit.start += used;
        }
    }

    fn line(&mut self, bytes: Vec<u8>, end: u64, cut: bool, now: Time) -> SourceLine {
        self.lines += 1;
        SourceLine::new(self.id, bytes, cut, now, Position::Stream(end))
    }
}

/// The year reference for the year-less syslog dates of a whole file: its modification time
/// (no line in a file is newer than its last write), or now if unknown.
pub fn file_reference_time(path: &Path) -> Time {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(wall_clock, |d| {
            Time::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        })
}

impl LineSource for ReplayReader {
    /// `timeout` is ignored: a replay never waits for input that is not there.
    fn read_batch(
        &mut self,
        out: &mut Vec<SourceLine>,
        max: usize,
        _timeout: Duration,
    ) -> Result<ReadStatus, ReadError> {
        ReplayReader::read_batch(self, out, max)
    }
    fn stop_handle(&self) -> StopHandle {
        ReplayReader::stop_handle(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn all(r: &mut ReplayReader, max: usize) -> Vec<(Vec<u8>, Position)> {
        let mut out = Vec::new();
        loop {
            let mut batch = Vec::new();
            let st = r.read_batch(&mut batch, max).unwrap();
            assert!(batch.len() <= max);
            out.extend(batch.into_iter().map(|l| (l.bytes, l.position)));
            if st == ReadStatus::Finished {
                return out;
            }
        }
    }

    #[test]
    fn plain_and_gzip_give_the_same_lines() {
        let mut text = Vec::new();
        for i in 0..10_000 {
            writeln!(text, "line {i} \u{e9}").unwrap();
        }
        text.extend_from_slice(b"\xff no newline at end");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&text[..5000]).unwrap();
        let mut gz_bytes = gz.finish().unwrap();
        // A second gzip member, as `cat a.gz b.gz` gives.
        let mut gz2 = GzEncoder::new(Vec::new(), Compression::fast());
        gz2.write_all(&text[5000..]).unwrap();
        gz_bytes.extend(gz2.finish().unwrap());

        let mut plain =
            ReplayReader::with_cap(SourceId(1), std::io::Cursor::new(text.clone()), 64).unwrap();
        let mut zipped =
            ReplayReader::with_cap(SourceId(1), std::io::Cursor::new(gz_bytes), 64).unwrap();
        assert!(!plain.is_gzip());
        assert!(zipped.is_gzip());
        let a = all(&mut plain, 333);
        let b = all(&mut zipped, 1000);
        assert_eq!(a.len(), 10_001);
        assert_eq!(a, b);
        assert_eq!(a[0].0, "line 0 \u{e9}".as_bytes());
        assert_eq!(a[10_000].0, b"\xff no newline at end".to_vec());
        assert_eq!(a[10_000].1, Position::Stream(text.len() as u64));

        // The borrowing reader gives the same lines, from plain and gzip input alike.
        for input in [text.clone(), {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(&text).unwrap();
            gz.finish().unwrap()
        }] {
            let mut r =
                ReplayReader::with_cap(SourceId(1), std::io::Cursor::new(input), 64).unwrap();
            let mut lines = Vec::new();
            let n = r.for_each_line(|l| lines.push(l.to_vec())).unwrap();
            assert_eq!(n, 10_001);
            let want: Vec<Vec<u8>> = a.iter().map(|(l, _)| l.clone()).collect();
            assert_eq!(lines, want);
        }
    }

    #[test]
    fn long_lines_are_cut_at_the_cap_and_cr_dropped() {
        let mut text = b"short\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 300));
        text.extend_from_slice(b"\nnext\n");
        let mut r = ReplayReader::with_cap(SourceId(1), std::io::Cursor::new(text), 100).unwrap();
        let mut lines = Vec::new();
        r.for_each_line(|l| lines.push(l.to_vec())).unwrap();
        assert_eq!(
            lines,
            [b"short".to_vec(), vec![b'x'; 100], b"next".to_vec()]
        );
        assert_eq!(r.cut_lines(), 1);
    }
}
