//! Stop, log (and rotate) while stopped, reopen with the stored position: exactly the missing
//! lines, once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use portcullis_sources::{FilePosition, FileTail, LineSource, ReadStatus, SourceId, SourceLine};

use crate::util::{assert_exactly_once, file_pos, opts};

fn write_lines(path: &Path, range: std::ops::Range<u64>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in range {
        writeln!(f, "line {n} x").unwrap();
    }
}

/// Read until `n` lines arrived; returns them.
fn read_n(tail: &mut FileTail, n: usize) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "got {} of {n}",
            out.len()
        );
        let max = n - out.len();
        let st = tail
            .read_batch(&mut out, max, Duration::from_millis(200))
            .unwrap();
        assert_eq!(st, ReadStatus::Live);
    }
    assert_eq!(out.len(), n, "read_batch must respect max");
    out
}

/// Nothing more arrives within a short wait.
fn assert_quiet(tail: &mut FileTail) {
    let mut out = Vec::new();
    let _ = tail
        .read_batch(&mut out, 100, Duration::from_millis(700))
        .unwrap();
    assert!(out.is_empty(), "unexpected lines: {}", out.len());
}

/// Read 400 of 1000, persist, stop; then `while_down` changes the files; then resume.
fn scenario(while_down: impl FnOnce(&Path, &Path), total: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    write_lines(&path, 0..1000);
    let mut tail = FileTail::open(SourceId(1), &path, None, opts()).unwrap();
    let first = read_n(&mut tail, 400);
    let stored: FilePosition = file_pos(first.last().unwrap());
    drop(tail);
    while_down(dir.path(), &path);
    let mut tail = FileTail::open(SourceId(1), &path, Some(stored), opts()).unwrap();
    let rest = read_n(&mut tail, (total - 400) as usize);
    assert_quiet(&mut tail);
    let mut all = first;
    all.extend(rest);
    assert_exactly_once(&all, total);
}

#[test]
fn resume_same_file() {
    scenario(|_, p| write_lines(p, 1000..1500), 1500);
}

#[test]
fn resume_after_rename_rotation() {
    scenario(
        |dir, p| {
            write_lines(p, 1000..1200);
            std::fs::rename(p, dir.join("auth.log.1")).unwrap();
            write_lines(p, 1200..1300);
        },
        1300,
    );
}

#[test]
fn resume_after_two_rename_rotations() {
    scenario(
        |dir, p| {
            write_lines(p, 1000..1200);
            std::fs::rename(p, dir.join("auth.log.1")).unwrap();
            write_lines(p, 1200..1300);
            std::fs::rename(dir.join("auth.log.1"), dir.join("auth.log.2")).unwrap();
            std::fs::rename(p, dir.join("auth.log.1")).unwrap();
            write_lines(p, 1300..1350);
        },
        1350,
    );
}

#[test]
fn resume_after_copytruncate() {
    scenario(
        |dir, p| {
            write_lines(p, 1000..1200);
            std::fs::copy(p, dir.join("auth.log.1")).unwrap();
            OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(0)
                .unwrap();
            write_lines(p, 1200..1300);
        },
        1300,
    );
}

#[test]
fn resume_after_rotation_with_dateext_name() {
    scenario(
        |dir, p| {
            write_lines(p, 1000..1100);
            std::fs::rename(p, dir.join("auth.log-20261125")).unwrap();
            File::create(p).unwrap();
            write_lines(p, 1100..1120);
        },
        1120,
    );
}

fn gzip_away(plain: &Path) {
    let data = std::fs::read(plain).unwrap();
    let mut gz_name = plain.as_os_str().to_owned();
    gz_name.push(".gz");
    let mut enc = flate2::write::GzEncoder::new(
        File::create(Path::new(&gz_name)).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(plain).unwrap();
}

#[test]
fn resume_after_rotation_with_compress() {
    // logrotate `compress` without `delaycompress`: auth.log.1.gz right away.
    scenario(
        |dir, p| {
            write_lines(p, 1000..1200);
            let r1 = dir.join("auth.log.1");
            std::fs::rename(p, &r1).unwrap();
            gzip_away(&r1);
            write_lines(p, 1200..1300);
        },
        1300,
    );
}

#[test]
fn resume_after_two_rotations_with_delaycompress() {
    // Debian's default: the second rotation compresses the file we were reading.
    scenario(
        |dir, p| {
            write_lines(p, 1000..1200);
            let (r1, r2) = (dir.join("auth.log.1"), dir.join("auth.log.2"));
            std::fs::rename(p, &r1).unwrap();
            write_lines(p, 1200..1300);
            std::fs::rename(&r1, &r2).unwrap();
            gzip_away(&r2);
            std::fs::rename(p, &r1).unwrap();
            write_lines(p, 1300..1350);
        },
        1350,
    );
}

#[test]
fn resume_after_three_compressed_rotations() {
    scenario(
        |dir, p| {
            write_lines(p, 1000..1100);
            let n = |k: u32| dir.join(format!("auth.log.{k}"));
            let gz = |k: u32| dir.join(format!("auth.log.{k}.gz"));
            for (k, range) in [(1u32, 1100..1150), (2, 1150..1160), (3, 1160..1170)] {
                // Shift the compressed ones, rotate, compress.
                for j in (1..k).rev() {
                    std::fs::rename(gz(j), gz(j + 1)).unwrap();
                }
                std::fs::rename(p, n(1)).unwrap();
                gzip_away(&n(1));
                write_lines(p, range);
            }
        },
        1170,
    );
}

#[test]
fn resume_position_is_after_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    std::fs::write(&path, b"line 0 a\nline 1 bb\n").unwrap();
    let mut tail = FileTail::open(SourceId(1), &path, None, opts()).unwrap();
    let lines = read_n(&mut tail, 2);
    let p0 = file_pos(&lines[0]);
    let p1 = file_pos(&lines[1]);
    assert_eq!((p0.offset, p1.offset), (9, 19));
    assert_eq!(tail.position(), Some(p1));
    assert_ne!(p0.first_line_hash, 0);
    // Resuming at the first line's position yields exactly the second line.
    let mut again = FileTail::open(SourceId(1), &path, Some(p0), opts()).unwrap();
    let l = read_n(&mut again, 1);
    assert_eq!(l[0].bytes, b"line 1 bb");
}
