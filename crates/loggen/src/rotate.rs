//! Writing a log as a logrotate-style set (`auth.log.4.gz … auth.log.2.gz auth.log.1
//! auth.log`, i.e. `compress` + `delaycompress`), split at exact line counts.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::RotateError;
use crate::generate::{Config, generate};
use crate::truth::Truth;

/// The files of a rotated set, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedSet {
    /// Paths oldest first (the order `scan` must read them in).
    pub files: Vec<PathBuf>,
}

/// Generates the log of `config` into `dir` as `parts` files (at least 1) named like
/// logrotate names them; the two newest stay plain, older ones are gzip-compressed.
pub fn write_rotated(
    config: &Config,
    dir: &Path,
    parts: u32,
) -> Result<(Truth, RotatedSet), RotateError> {
    std::fs::create_dir_all(dir).map_err(|source| RotateError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let parts = parts.max(1);
    // Oldest first: auth.log.{parts-1}(.gz) … auth.log.1, auth.log.
    let files: Vec<PathBuf> = (0..parts)
        .rev()
        .map(|n| match n {
            0 => dir.join("auth.log"),
            1 => dir.join("auth.log.1"),
            n => dir.join(format!("auth.log.{n}.gz")),
        })
        .collect();
    let mut writer = Rotating {
        files: &files,
        per_part: config.lines.div_ceil(u64::from(parts)).max(1),
        lines_in_part: 0,
        index: 0,
        current: None,
        failed: None,
    };
    let result = generate(config, &mut writer);
    let closed = writer.finish();
    if let Some((path, source)) = writer.failed.take() {
        return Err(RotateError::File { path, source });
    }
    let truth = result.map_err(RotateError::Generate)?;
    closed.map_err(|(path, source)| RotateError::File { path, source })?;
    Ok((truth, RotatedSet { files }))
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn open(path: &Path) -> io::Result<Sink> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        if path.extension().is_some_and(|e| e == "gz") {
            Ok(Sink::Gzip(GzEncoder::new(file, Compression::fast())))
        } else {
            Ok(Sink::Plain(file))
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
        }
    }

    fn close(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// Splits a stream of whole lines over the files of the set.
struct Rotating<'a> {
    files: &'a [PathBuf],
    per_part: u64,
    lines_in_part: u64,
    index: usize,
    current: Option<Sink>,
    /// The first failure, with the file it happened on.
    failed: Option<(PathBuf, io::Error)>,
}

impl Rotating<'_> {
    fn fail(&mut self, e: io::Error) -> io::Error {
        let kind = e.kind();
        let msg = e.to_string();
        let path = self.files.get(self.index).cloned().unwrap_or_default();
        self.failed.get_or_insert((path, e));
        io::Error::new(kind, msg)
    }

    fn sink(&mut self) -> io::Result<&mut Sink> {
        if self.current.is_none() {
            let sink = Sink::open(&self.files[self.index]).map_err(|e| self.fail(e))?;
            self.current = Some(sink);
        }
        self.current
            .as_mut()
            .ok_or_else(|| io::Error::other("no current file"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(sink) = self.current.take() {
            sink.close().map_err(|e| self.fail(e))?;
        }
        self.index += 1;
        self.lines_in_part = 0;
        Ok(())
    }

    /// Closes the last file and creates any file of the set that got no lines.
    fn finish(&mut self) -> Result<(), (PathBuf, io::Error)> {
        loop {
            let path = self.files[self.index].clone();
            let sink = match self.current.take() {
                Some(s) => s,
                None => Sink::open(&path).map_err(|e| (path.clone(), e))?,
            };
            sink.close().map_err(|e| (path, e))?;
            if self.index + 1 >= self.files.len() {
                return Ok(());
            }
            self.index += 1;
        }
    }
}

impl Write for Rotating<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let last = self.index + 1 >= self.files.len();
            if !last && self.lines_in_part >= self.per_part {
                self.rotate()?;
                continue;
            }
            // Take lines up to the end of this part (or everything for the last file).
            let want = if last {
                u64::MAX
            } else {
                self.per_part - self.lines_in_part
            };
            let mut taken = 0u64;
            let mut cut = buf.len();
            for (i, &c) in buf.iter().enumerate() {
                if c == b'\n' {
                    taken += 1;
                    if taken == want {
                        cut = i + 1;
                        break;
                    }
                }
            }
            let (head, tail) = buf.split_at(cut);
            let sink = self.sink()?;
            if let Err(e) = sink.write_all(head) {
                return Err(self.fail(e));
            }
            self.lines_in_part += taken;
            buf = tail;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
