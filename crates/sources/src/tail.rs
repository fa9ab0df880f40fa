//! Following one log file across rotation, truncation and restarts.
//!
//! The tail watches the file's directory with inotify (any event there wakes it) and also
//! wakes every `poll_interval` (NFS, inotify queue overflow, writes to unlinked files). The
//! watch stays on the directory the path names (`watch.rs`): when the directory is removed
//! and created again, renamed away, or another file system is mounted over it, the tail
//! warns once, keeps reading the file it has open to its end and moves on to the new one
//! from 0, as for a rotation. On each wake it reads the current file to EOF, then compares
//! the path's inode (and device) with the one it reads:
//! - same inode, but smaller than our offset or a different first line: truncated
//!   (copytruncate). The copy (`name.1`, recognised by its first-line hash) is read from our
//!   offset to its end, then the file from 0.
//! - another inode: rotated (rename+create or delete+recreate). The old file was already read
//!   to EOF; its partial last line, if any, is delivered as a line; then the new file is read
//!   from 0. The old file stays open for `rotate_grace` after its last growth, so a writer that
//!   reopens late (rsyslog until its HUP) loses nothing; such late lines carry the current
//!   file's position.
//! - no file: keep reading the old one until a new one appears.
//!
//! Limits: content that is rotated away before the tail ever opened it is found only through
//! the `name.N` numbering of rename rotation (plain or `.gz`); a file deleted, or a
//! copytruncate generation copied away, before the tail read its first line cannot be
//! identified and is not read. With `compress` but no `delaycompress`, lines a writer adds to
//! the renamed file after gzip read it exist only in the unlinked inode: kept if the tail had
//! that file open, lost if it lagged more than one rotation behind.
//!
//! Only regular files are read (`regular.rs`: opened non-blocking, checked with fstat): a
//! FIFO, a device such as `/dev/zero` or a directory at the path is refused, reported once by
//! `read_batch`, and the path is tried again on every wake.
//!
//! Rotated files are found by inode (`name.N`, `name-DATE`, any name starting with `name`).
//! On resume, when the file was compressed meanwhile (`compress`, or a second rotation with
//! `delaycompress`), the `.gz` whose decompressed first line matches is read from the stored
//! offset (counted in decompressed bytes); other compression formats are not read. When the finished file sits at
//! `name.N` with N ≥ 2, the newer `name.N-1 … name.1` are read in full before the live
//! file: that covers several rotations while the daemon was down or lagging.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::bufread::MultiGzDecoder;
use portcullis_core::time::Time;

use crate::error::{OpenError, ReadError};
use crate::line::{FilePosition, MAX_LINE, Position, SourceId, SourceLine, wall_clock};
use crate::regular::open_regular;
use crate::split::LineSplitter;
use crate::stop::StopHandle;
use crate::waiting::WaitingSource;
use crate::watch::DirWatcher;

/// Bytes of the first line that the first-line hash covers.
const HASH_CAP: usize = 1024;
/// Suffixes of rotated files that are compressed copies, never read by the tail.
const COMPRESSED: [&str; 6] = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z"];

/// Where to begin when there is no stored position and the file already exists.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// From offset 0: the whole file is new to us.
    Beginning,
    /// After the last complete line: only what is written from now on.
    #[default]
    End,
}

/// Tuning of a [`FileTail`].
#[derive(Clone, Debug)]
pub struct FileTailOptions {
    /// Stat-poll fallback period: bounds the delay on NFS, after an inotify overflow and for
    /// writes to an unlinked file. Idle cost is one stat and one read per period.
    pub poll_interval: Duration,
    /// How long a rotated-away file is still read after its last growth.
    pub rotate_grace: Duration,
    /// Where to start without a stored position (a file that appears later is read from 0).
    pub start: StartAt,
    /// Bytes read per read(2).
    pub read_chunk: usize,
}

impl Default for FileTailOptions {
    fn default() -> Self {
        FileTailOptions {
            poll_interval: Duration::from_secs(2),
            rotate_grace: Duration::from_secs(5),
            start: StartAt::End,
            read_chunk: 256 * 1024,
        }
    }
}

/// Counters of a [`FileTail`], for `status`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines delivered.
    pub lines: u64,
    /// Lines delivered cut to [`MAX_LINE`].
    pub cut_lines: u64,
    /// Switches to another file (rotation, rotated backlog, queued rotated files).
    pub rotations: u64,
    /// Truncations detected (copytruncate).
    pub truncations: u64,
}

/// A gzip-compressed rotated file, read forward only; offsets are decompressed bytes.
struct GzStream {
    decoder: MultiGzDecoder<BufReader<File>>,
    /// The last decompressed chunk, kept so a batch that stopped mid-chunk can continue.
    chunk: Vec<u8>,
    /// Decompressed offset of `chunk[0]`.
    start: u64,
    eof: bool,
}

impl std::fmt::Debug for GzStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzStream")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl GzStream {
    /// Decompress `file` (a second descriptor of the one [`Tracked`] holds: the same inode,
    /// whatever the path names by now).
    fn new(file: File) -> GzStream {
        GzStream {
            decoder: MultiGzDecoder::new(BufReader::new(file)),
            chunk: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    /// Like `pread`, for offsets at or after the last chunk's start (skipping forward).
    fn read_at(&mut self, dst: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            let end = self.start + self.chunk.len() as u64;
            if offset >= self.start && offset < end {
                let from = (offset - self.start) as usize;
                let src = self.chunk.get(from..).unwrap_or(&[]);
                let n = src.len().min(dst.len());
                dst.get_mut(..n)
                    .unwrap_or(&mut [])
                    .copy_from_slice(src.get(..n).unwrap_or(&[]));
                return Ok(n);
            }
            if offset < self.start {
                return Err(io::Error::other("compressed file read backwards"));
            }
            if self.eof {
                return Ok(0);
            }
            self.chunk.resize(256 * 1024, 0);
            let n = loop {
                match self.decoder.read(&mut self.chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.chunk.clear();
                        return Err(e);
                    }
                }
            };
            self.chunk.truncate(n);
            self.start = end;
            self.eof = n == 0;
        }
    }
}

/// FNV-1a first-line hash of a gzip file's decompressed content.
fn gz_first_line_hash(path: &Path) -> io::Result<u64> {
    let mut head = Vec::with_capacity(HASH_CAP);
    MultiGzDecoder::new(BufReader::new(open_regular(path)?))
        .take(HASH_CAP as u64)
        .read_to_end(&mut head)?;
    Ok(hash_first_line(&head))
}

fn is_gzip_name(p: &Path) -> bool {
    p.as_os_str().as_bytes().ends_with(b".gz")
}

/// One open file being read.
#[derive(Debug)]
struct Tracked {
    file: File,
    /// Set for a gzip-compressed rotated file (resume backlog only); `file` is then the
    /// compressed file, for its inode and links.
    gz: Option<Box<GzStream>>,
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// First-line hash; 0 until the first line is complete.
    hash: u64,
    /// Offset just after the last delivered line: this file's resume position.
    delivered: u64,
    split: LineSplitter,
}

impl Tracked {
    /// Open `path` if it is a regular file ([`open_regular`]).
    fn open(path: &Path, offset: u64, hash: u64) -> io::Result<Tracked> {
        let file = open_regular(path)?;
        let meta = file.metadata()?;
        Ok(Tracked {
            file,
            gz: None,
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            hash,
            delivered: offset,
            split: LineSplitter::new(MAX_LINE, offset),
        })
    }

    /// A gzip-compressed rotated file, to be read from decompressed `offset`.
    fn open_gz(path: &Path, offset: u64, hash: u64) -> io::Result<Tracked> {
        let mut t = Tracked::open(path, offset, hash)?;
        t.gz = Some(Box::new(GzStream::new(t.file.try_clone()?)));
        Ok(t)
    }

    fn read_at(&mut self, dst: &mut [u8], offset: u64) -> io::Result<usize> {
        match &mut self.gz {
            Some(gz) => gz.read_at(dst, offset),
            None => self.file.read_at(dst, offset),
        }
    }

    fn position(&self, offset: u64) -> FilePosition {
        FilePosition {
            dev: self.dev,
            ino: self.ino,
            offset,
            first_line_hash: self.hash,
        }
    }

    /// Whether the file was truncated (or truncated and regrown) under us: shorter than
    /// `min_len`, or its first line changed.
    fn changed(&self, min_len: u64) -> io::Result<bool> {
        if self.gz.is_some() {
            // Compressed rotated files are complete and never written again.
            return Ok(false);
        }
        if self.file.metadata()?.len() < min_len {
            return Ok(true);
        }
        Ok(self.hash != 0 && first_line_hash(&self.file)? != self.hash)
    }
}

#[derive(Debug)]
struct Retired {
    t: Tracked,
    quiet_since: Instant,
}

/// What the path currently names, compared with the file being read.
enum PathState {
    Same,
    Missing,
    Other,
}

/// Follows one log file; see the module docs for the rotation rules.
///
/// Blocking: run it on its own thread and stop it with [`FileTail::stop_handle`].
pub struct FileTail {
    id: SourceId,
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
    options: FileTailOptions,
    current: Option<Tracked>,
    /// Rotated files newer than the one being read, read in full before the live file.
    /// Opened when queued, so later renames (another rotation) cannot mix them up.
    queue: VecDeque<Tracked>,
    retired: Vec<Retired>,
    /// Position of the last line delivered from a current file.
    last_position: Option<FilePosition>,
    /// The inotify watch on the directory the path names now (`watch.rs`).
    watcher: DirWatcher,
    stop: StopHandle,
    buf: Vec<u8>,
    next_tick: Instant,
    /// The last open error of the path (its message), so it is reported once rather than on
    /// every wake.
    open_error: Option<String>,
    stats: TailStats,
}

impl std::fmt::Debug for FileTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTail")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("current", &self.current.as_ref().map(|t| &t.path))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FileTail {
    /// Start following `path`.
    ///
    /// With `resume` (the position of the last processed line): same inode and first line →
    /// continue at its offset; otherwise the rotated file holding that inode (or, after a
    /// copytruncate, the copy with that first line) is read from the offset first, then any
    /// newer rotated files, then the live file from 0.
    ///
    /// A path that is missing, is not a regular file (a FIFO, a device such as `/dev/zero`, a
    /// directory) or cannot be opened is not an error here: the tail follows the name and
    /// tries it again on every wake, reading it from 0 once it is a regular file; every new
    /// open error but "missing" is returned once by [`FileTail::read_batch`] as
    /// [`ReadError::Open`].
    pub fn open(
        id: SourceId,
        path: impl Into<PathBuf>,
        resume: Option<FilePosition>,
        options: FileTailOptions,
    ) -> Result<FileTail, OpenError> {
        let path: PathBuf = path.into();
        let name = path
            .file_name()
            .ok_or_else(|| OpenError::NotAFile(path.clone()))?
            .to_os_string();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let watcher = DirWatcher::new(dir.clone()).map_err(OpenError::Inotify)?;
        let stop = StopHandle::new().map_err(OpenError::StopEvent)?;
        let mut tail = FileTail {
            id,
            buf: vec![0; options.read_chunk.max(4096)],
            path,
            dir,
            name,
            options,
            current: None,
            queue: VecDeque::new(),
            retired: Vec::new(),
            last_position: None,
            watcher,
            stop,
            next_tick: Instant::now(),
            open_error: None,
            stats: TailStats::default(),
        };
        match resume {
            Some(pos) => tail.resume_from(pos)?,
            None => tail.start_fresh()?,
        }
        Ok(tail)
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters.
    pub fn stats(&self) -> TailStats {
        let cut: u64 = self.current.iter().map(|t| t.split.cut_lines).sum::<u64>()
            + self
                .retired
                .iter()
                .map(|r| r.t.split.cut_lines)
                .sum::<u64>();
        TailStats {
            cut_lines: self.stats.cut_lines + cut,
            ..self.stats
        }
    }

    /// Where the tail stands now (the file being read, after its last delivered line); `None`
    /// before any file was seen.
    pub fn position(&self) -> Option<FilePosition> {
        match &self.current {
            Some(t) => Some(t.position(t.delivered)),
            None => self.last_position,
        }
    }

    /// Sleep until an inotify event, a mount table change, the stop event or `dur`.
    fn wait(&mut self, dur: Duration) -> Result<(), ReadError> {
        self.watcher.wait(self.stop.fd(), dur)
    }

    fn start_fresh(&mut self) -> Result<(), OpenError> {
        match Tracked::open(&self.path, 0, 0) {
            Ok(mut t) => {
                if self.options.start == StartAt::End {
                    let off = last_line_end(&t.file).map_err(|source| OpenError::Open {
                        path: self.path.clone(),
                        source,
                    })?;
                    t.split.reset(off);
                    t.delivered = off;
                }
                t.hash = first_line_hash(&t.file).unwrap_or(0);
                self.current = Some(t);
                Ok(())
            }
            // Not there yet, not a regular file, or not readable: tried again on every wake,
            // the error reported by the first read_batch (open_next).
            Err(_) => Ok(()),
        }
    }

    fn resume_from(&mut self, pos: FilePosition) -> Result<(), OpenError> {
        if let Ok(meta) = std::fs::metadata(&self.path)
            && (meta.dev(), meta.ino()) == (pos.dev, pos.ino)
            && let Ok(t) = Tracked::open(&self.path, pos.offset, pos.first_line_hash)
        {
            let len = t.file.metadata().map(|m| m.len()).unwrap_or(0);
            let same_first = pos.offset == 0
                || pos.first_line_hash == 0
                || first_line_hash(&t.file).ok() == Some(pos.first_line_hash);
            if len >= pos.offset && same_first {
                self.current = Some(t);
                return Ok(());
            }
        }
        if let Some(found) = self
            .find_rotated(&pos)
            .or_else(|| self.find_rotated_gz(&pos))
        {
            tracing::info!(path = %found.path.display(), offset = pos.offset,
                "resuming in the rotated file");
            self.queue_newer(&found);
            self.current = Some(found);
            return Ok(());
        }
        tracing::warn!(path = %self.path.display(),
            "stored position matches no file any more; reading the file from the start");
        if let Ok(t) = Tracked::open(&self.path, 0, 0) {
            self.current = Some(t);
        }
        Ok(())
    }

    /// Rotated siblings of the path: names that start with the file name; compressed ones
    /// only with `compressed` (and then only gzip, the one format read).
    fn siblings(&self, compressed: bool) -> Vec<(PathBuf, std::fs::Metadata)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let prefix = self.name.as_bytes();
        let mut v: Vec<(PathBuf, std::fs::Metadata)> = rd
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.as_bytes();
                n.len() > prefix.len()
                    && n.starts_with(prefix)
                    && (!COMPRESSED.iter().any(|s| n.ends_with(s.as_bytes()))
                        || (compressed && n.ends_with(b".gz")))
            })
            .filter_map(|e| {
                let p = e.path();
                let m = std::fs::metadata(&p).ok()?;
                m.is_file().then_some((p, m))
            })
            .collect();
        // name.1 before name.2 before others: the most recent rotation first.
        v.sort_by_key(|(p, _)| (self.rotation_number(p).unwrap_or(u32::MAX), p.clone()));
        v
    }

    /// `N` when `p` is `<name>.N` or `<name>.N.gz`.
    fn rotation_number(&self, p: &Path) -> Option<u32> {
        let n = p.file_name()?.as_bytes();
        let n = n.strip_suffix(b".gz").unwrap_or(n);
        let rest = n.strip_prefix(self.name.as_bytes())?.strip_prefix(b".")?;
        std::str::from_utf8(rest).ok()?.parse().ok()
    }

    /// The rotated file that continues `pos`: same inode, else (copytruncate) a copy with the
    /// same first line, long enough. Opened at `pos.offset`.
    fn find_rotated(&self, pos: &FilePosition) -> Option<Tracked> {
        let live_ino = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let sibs = self.siblings(false);
        let matches_hash = |p: &Path| -> bool {
            open_regular(p)
                .and_then(|f| first_line_hash(&f))
                .is_ok_and(|h| h == pos.first_line_hash)
        };
        for (p, m) in &sibs {
            if (m.dev(), m.ino()) == (pos.dev, pos.ino)
                && m.len() >= pos.offset
                && (pos.offset == 0 || pos.first_line_hash == 0 || matches_hash(p))
            {
                return Tracked::open(p, pos.offset, pos.first_line_hash).ok();
            }
        }
        if pos.first_line_hash == 0 {
            return None;
        }
        for (p, m) in &sibs {
            if Some((m.dev(), m.ino())) != live_ino
                && (m.dev(), m.ino()) != (pos.dev, pos.ino)
                && m.len() >= pos.offset
                && matches_hash(p)
            {
                return Tracked::open(p, pos.offset, pos.first_line_hash).ok();
            }
        }
        None
    }

    /// Like [`FileTail::find_rotated`] among gzip-compressed siblings (rotation with
    /// `compress` while we were down): same inode (a position read from that .gz), else the
    /// same decompressed first line.
    fn find_rotated_gz(&self, pos: &FilePosition) -> Option<Tracked> {
        let gz: Vec<(PathBuf, std::fs::Metadata)> = self
            .siblings(true)
            .into_iter()
            .filter(|(p, _)| is_gzip_name(p))
            .collect();
        let matches_hash = |p: &Path| gz_first_line_hash(p).is_ok_and(|h| h == pos.first_line_hash);
        let found = gz
            .iter()
            .find(|(p, m)| {
                (m.dev(), m.ino()) == (pos.dev, pos.ino)
                    && (pos.offset == 0 || pos.first_line_hash == 0 || matches_hash(p))
            })
            .or_else(|| {
                (pos.first_line_hash != 0)
                    .then(|| gz.iter().find(|(p, _)| matches_hash(p)))
                    .flatten()
            })?;
        Tracked::open_gz(&found.0, pos.offset, pos.first_line_hash).ok()
    }

    fn numbered(&self, j: u32) -> PathBuf {
        let mut n = self.name.clone();
        n.push(format!(".{j}"));
        self.dir.join(n)
    }

    /// If `done` now sits at `<name>.N` with N ≥ 2, queue `<name>.N-1 … <name>.1`: rotated
    /// after it, not read yet. A rotation may be renaming files while we look (and readdir
    /// may miss a file renamed meanwhile), so the result is accepted only when `done` is
    /// still at `.N` and every queued file still at its name after they were all opened.
    fn queue_newer(&mut self, done: &Tracked) {
        let id = (done.dev, done.ino);
        let mut last: Vec<Tracked> = Vec::new();
        for attempt in 0..50 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let sibs = self.siblings(true);
            // Where `done` is now: by inode, or (compressed since: `compress`, or the next
            // rotation with `delaycompress`) as the .gz with the same first line.
            let at = sibs
                .iter()
                .find(|(_, m)| (m.dev(), m.ino()) == id)
                .or_else(|| {
                    (done.hash != 0 && done.gz.is_none())
                        .then(|| {
                            sibs.iter().find(|(p, _)| {
                                is_gzip_name(p)
                                    && gz_first_line_hash(p).is_ok_and(|h| h == done.hash)
                            })
                        })
                        .flatten()
                })
                .map(|(p, m)| (p.clone(), (m.dev(), m.ino())));
            let Some((at, at_id)) = at else {
                // Deleted for good (no links, no compressed copy): nothing newer can be
                // found by name.
                if done.file.metadata().map(|m| m.nlink()).unwrap_or(0) == 0 && attempt >= 2 {
                    return;
                }
                continue;
            };
            let Some(k) = self.rotation_number(&at) else {
                return;
            };
            let mut opened = Vec::new();
            let mut consistent = true;
            for j in (1..k).rev() {
                let plain = self.numbered(j);
                let mut gz = plain.clone().into_os_string();
                gz.push(".gz");
                let gz = PathBuf::from(gz);
                let t = match Tracked::open(&plain, 0, 0) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Tracked::open_gz(&gz, 0, 0),
                    other => other,
                };
                match t {
                    Ok(t) => opened.push(t),
                    Err(_) => consistent = false,
                }
            }
            let same = |p: &Path, want: (u64, u64)| {
                std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == want)
            };
            consistent = consistent
                && same(&at, at_id)
                && opened
                    .iter()
                    .all(|t| same(&t.path, (t.dev, t.ino)) && (t.dev, t.ino) != id);
            if consistent {
                self.queue.extend(opened);
                return;
            }
            last = opened;
        }
        tracing::warn!(path = %self.path.display(),
            "rotated files keep changing or have gaps; reading what was found");
        self.queue.extend(last);
    }

    fn path_state(&self, cur: &Tracked) -> PathState {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == (cur.dev, cur.ino) => PathState::Same,
            Ok(_) => PathState::Other,
            Err(_) => PathState::Missing,
        }
    }

    fn line(&self, bytes: &[u8], cut: bool, pos: FilePosition, now: Time) -> SourceLine {
        SourceLine::new(self.id, bytes.to_vec(), cut, now, Position::File(pos))
    }

    /// Read everything available (up to `max` lines), following rotations.
    fn pump(&mut self, out: &mut Vec<SourceLine>, max: usize, now: Time) -> Result<(), ReadError> {
        let start = out.len();
        self.pump_retired(out, now)?;
        loop {
            let room = max.saturating_sub(out.len() - start);
            if room == 0 {
                return Ok(());
            }
            let Some(mut cur) = self.current.take() else {
                if !self.open_next()? {
                    return Ok(());
                }
                continue;
            };
            let offset = cur.split.offset();
            let n = match cur.read_at(&mut self.buf, offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let path = cur.path.clone();
                    self.current = Some(cur);
                    return Err(ReadError::Read { path, source });
                }
            };
            if n > 0 {
                if cur.hash == 0 {
                    // From the bytes just read when they hold the first line: hashing the
                    // file again could see newer content (truncated and regrown meanwhile).
                    cur.hash = if offset == 0 {
                        hash_first_line(self.buf.get(..n).unwrap_or(&[]))
                    } else if cur.gz.is_none() {
                        first_line_hash(&cur.file).unwrap_or(0)
                    } else {
                        0
                    };
                } else if cur.changed(offset + n as u64).unwrap_or(false) {
                    // Truncated under us: these bytes may be new content; read the copy.
                    self.on_truncated(cur, out, now);
                    continue;
                }
                let mut emitted = 0usize;
                let id = self.id;
                let (dev, ino, hash) = (cur.dev, cur.ino, cur.hash);
                let mut last_end = None;
                let data = self.buf.get(..n).unwrap_or(&[]);
                cur.split.feed(data, room, |bytes, end, cut| {
                    emitted += 1;
                    last_end = Some(end);
                    let position = Position::File(FilePosition {
                        dev,
                        ino,
                        offset: end,
                        first_line_hash: hash,
                    });
                    out.push(SourceLine::new(id, bytes.to_vec(), cut, now, position));
                });
                if let Some(end) = last_end {
                    cur.delivered = end;
                    self.last_position = Some(cur.position(end));
                }
                self.stats.lines += emitted as u64;
                self.current = Some(cur);
                continue;
            }
            // End of file: truncated, rotated, or just idle?
            if cur.changed(offset).unwrap_or(false) {
                self.on_truncated(cur, out, now);
                continue;
            }
            match self.path_state(&cur) {
                PathState::Same | PathState::Missing => {
                    self.current = Some(cur);
                    return Ok(());
                }
                PathState::Other => self.rotate(cur, out, now),
            }
        }
    }

    /// Lines still written to rotated-away files (writers that reopen late).
    fn pump_retired(&mut self, out: &mut Vec<SourceLine>, now: Time) -> Result<(), ReadError> {
        if self.retired.is_empty() {
            return Ok(());
        }
        let pos = self.position();
        let grace = self.options.rotate_grace;
        let mut retired = std::mem::take(&mut self.retired);
        let id = self.id;
        let mut lines = 0u64;
        retired.retain_mut(|r| {
            loop {
                let off = r.t.split.offset();
                match r.t.read_at(&mut self.buf, off) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        r.quiet_since = Instant::now();
                        let p = pos.unwrap_or(r.t.position(off));
                        let data = self.buf.get(..n).unwrap_or(&[]);
                        r.t.split.feed(data, usize::MAX, |bytes, _end, cut| {
                            lines += 1;
                            let position = Position::File(p);
                            out.push(SourceLine::new(id, bytes.to_vec(), cut, now, position));
                        });
                    }
                }
            }
            if r.quiet_since.elapsed() < grace {
                return true;
            }
            if let Some((bytes, end, cut)) = r.t.split.take_partial() {
                lines += 1;
                let position = Position::File(pos.unwrap_or(r.t.position(end)));
                out.push(SourceLine::new(id, bytes, cut, now, position));
            }
            self.stats.cut_lines += r.t.split.cut_lines;
            false
        });
        self.stats.lines += lines;
        self.retired = retired;
        Ok(())
    }

    /// Deliver `t`'s partial last line as a line of its own (the file is rotated away).
    fn deliver_partial(&mut self, t: &mut Tracked, out: &mut Vec<SourceLine>, now: Time) {
        if let Some((bytes, end, cut)) = t.split.take_partial() {
            t.delivered = end;
            let pos = t.position(end);
            out.push(self.line(&bytes, cut, pos, now));
            self.last_position = Some(pos);
            self.stats.lines += 1;
        }
    }

    /// The file being read was truncated: continue in its copy if there is one, else from 0.
    fn on_truncated(&mut self, mut cur: Tracked, out: &mut Vec<SourceLine>, now: Time) {
        self.stats.truncations += 1;
        let pos = cur.position(cur.split.offset());
        if let Some(mut copy) = self.find_rotated(&pos) {
            tracing::debug!(copy = %copy.path.display(), "truncated; reading the rest from the copy");
            // Keep the partial line: the copy holds the same bytes before our offset.
            std::mem::swap(&mut copy.split, &mut cur.split);
            copy.delivered = cur.delivered;
            self.stats.cut_lines += cur.split.cut_lines;
            self.current = Some(copy);
            return;
        }
        tracing::debug!(path = %cur.path.display(), "truncated; reading from the start");
        self.deliver_partial(&mut cur, out, now);
        cur.split.reset(0);
        cur.delivered = 0;
        cur.hash = 0;
        self.current = Some(cur);
    }

    /// The path now names another file: finish `old` and move on.
    fn rotate(&mut self, mut old: Tracked, out: &mut Vec<SourceLine>, now: Time) {
        self.deliver_partial(&mut old, out, now);
        if self.queue.is_empty() {
            self.queue_newer(&old);
        }
        self.stats.rotations += 1;
        tracing::debug!(from = %old.path.display(), "rotated");
        self.retired.push(Retired {
            t: old,
            quiet_since: Instant::now(),
        });
    }

    /// Open the next queued rotated file, else the path, from offset 0. An open error other
    /// than "missing" is returned when it differs from the last one (the path is tried
    /// again on every call).
    fn open_next(&mut self) -> Result<bool, ReadError> {
        if let Some(t) = self.queue.pop_front() {
            self.current = Some(t);
            return Ok(true);
        }
        match Tracked::open(&self.path, 0, 0) {
            Ok(t) => {
                if self.open_error.take().is_some() {
                    tracing::info!(path = %self.path.display(), "log file can be read again");
                }
                self.current = Some(t);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.open_error = None;
                Ok(false)
            }
            Err(source) => {
                let message = source.to_string();
                if self.open_error.as_ref() == Some(&message) {
                    return Ok(false);
                }
                self.open_error = Some(message);
                Err(ReadError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

/// A [`crate::LineSource`] through the shared loop (`waiting.rs`): `read_batch` returns
/// [`crate::ReadStatus::Live`] (possibly with no lines, on timeout) or
/// [`crate::ReadStatus::Stopped`]; errors leave the tail usable.
impl WaitingSource for FileTail {
    fn stop(&self) -> &StopHandle {
        &self.stop
    }

    fn take_ready(&mut self, out: &mut Vec<SourceLine>, room: usize) -> Result<(), ReadError> {
        self.pump(out, room, wall_clock())
    }

    /// Rescan every `poll_interval` (the fallback for lost inotify events and a directory
    /// that could not be watched), else sleep until an inotify event, the stop event or then.
    fn wait_for_input(&mut self, left: Duration) -> Result<(), ReadError> {
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + self.options.poll_interval;
            self.watcher.check();
            return Ok(());
        }
        self.wait(left.min(self.next_tick - now))
    }
}

/// FNV-1a over the first line (without its newline, at most [`HASH_CAP`] bytes); 0 when the
/// file has no complete first line yet.
pub(crate) fn first_line_hash(file: &File) -> io::Result<u64> {
    let mut buf = [0u8; HASH_CAP];
    let mut got = 0usize;
    while got < HASH_CAP {
        let Some(dst) = buf.get_mut(got..) else { break };
        match file.read_at(dst, got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hash_first_line(buf.get(..got).unwrap_or(&[])))
}

/// The first-line hash of a file starting with `data`; 0 if `data` holds no complete first
/// line (and is shorter than [`HASH_CAP`]).
fn hash_first_line(data: &[u8]) -> u64 {
    let data = data.get(..data.len().min(HASH_CAP)).unwrap_or(data);
    match memchr::memchr(b'\n', data) {
        Some(nl) => fnv1a(data.get(..nl).unwrap_or(&[])),
        None if data.len() == HASH_CAP => fnv1a(data),
        None => 0,
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // 0 means "unknown".
    h.max(1)
}

/// Offset just after the last newline (within the last 64 KiB), for [`StartAt::End`].
fn last_line_end(file: &File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let back = len.min(64 * 1024);
    let mut buf = vec![0u8; back as usize];
    file.read_exact_at(&mut buf, len - back)?;
    Ok(match memchr::memrchr(b'\n', &buf) {
        Some(i) => len - back + i as u64 + 1,
        None if len == back => 0,
        None => len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn first_line_hash_needs_a_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"abc").unwrap();
        assert_eq!(first_line_hash(&File::open(&p).unwrap()).unwrap(), 0);
        f.write_all(b"\nxyz\n").unwrap();
        let h = first_line_hash(&File::open(&p).unwrap()).unwrap();
        assert_eq!(h, fnv1a(b"abc"));
        assert_ne!(h, fnv1a(b"abd"));
    }

    #[test]
    fn last_line_end_skips_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one\ntwo\nthr").unwrap();
        assert_eq!(last_line_end(&File::open(&p).unwrap()).unwrap(), 8);
        std::fs::write(&p, b"partial").unwrap();
        assert_eq!(last_line_end(&File::open(&p).unwrap()).unwrap(), 0);
    }
}
