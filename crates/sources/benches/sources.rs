//! Ingest throughput of the sources: tail of a large file, replay, export parsing.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_sources::{
    ExportParser, FileTail, FileTailOptions, LineSource, ReadStatus, ReplayReader, SourceId,
    StartAt,
};

const LINES: u64 = 200_000;

fn auth_log() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let mut data = Vec::new();
    for n in 0..LINES {
        writeln!(
            data,
            "Nov 25 08:{:02}:{:02} host sshd[{}]: Failed password for invalid user admin from 192.0.2.{} port {} ssh2",
            (n / 60) % 60,
            n % 60,
            1000 + n % 5000,
            n % 250,
            30000 + n % 30000
        )
        .unwrap();
    }
    std::fs::write(&path, &data).unwrap();
    (dir, path, data)
}

fn bench(c: &mut Criterion) {
    let (_dir, path, data) = auth_log();
    let mut g = c.benchmark_group("sources");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(LINES));

    g.bench_function("file_tail_200k_lines", |b| {
        b.iter(|| {
            let opts = FileTailOptions {
                start: StartAt::Beginning,
                ..FileTailOptions::default()
            };
            let mut tail = FileTail::open(SourceId(1), &path, None, opts).unwrap();
            let mut out = Vec::with_capacity(8192);
            let mut n = 0u64;
            while n < LINES {
                out.clear();
                let st = tail
                    .read_batch(&mut out, 8192, Duration::from_secs(1))
                    .unwrap();
                assert_eq!(st, ReadStatus::Live);
                n += out.len() as u64;
            }
            n
        })
    });

    g.bench_function("replay_200k_lines", |b| {
        b.iter(|| {
            let mut r = ReplayReader::open(SourceId(1), &path).unwrap();
            let mut out = Vec::with_capacity(8192);
            let mut n = 0u64;
            loop {
                out.clear();
                let st = r.read_batch(&mut out, 8192).unwrap();
                n += out.len() as u64;
                if st == ReadStatus::Finished {
                    break;
                }
            }
            assert_eq!(n, LINES);
        })
    });

    let mut export = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').take(LINES as usize).enumerate() {
        write!(
            export,
            "__CURSOR=s=0123456789abcdef;i={i:x};b=0123;m={i:x};t={i:x};x=0\n__REALTIME_TIMESTAMP={}\n\
             _PID=1234\n_SYSTEMD_UNIT=ssh.service\nSYSLOG_IDENTIFIER=sshd\nMESSAGE=",
            1_764_000_000_000_000u64 + i as u64
        )
        .unwrap();
        export.extend_from_slice(line);
        export.extend_from_slice(b"\n\n");
    }
    g.bench_function("export_parse_200k_entries", |b| {
        b.iter(|| {
            let mut p = ExportParser::new(16 * 1024);
            let mut n = 0u64;
            for chunk in export.chunks(64 * 1024) {
                p.push(chunk);
                while p.next_entry().is_some() {
                    n += 1;
                }
            }
            assert_eq!(n, LINES);
        })
    });
    g.finish();

    // Wake-up latency: a line appended while the reader is blocked in read_batch, until
    // read_batch returns it on the reader thread (inotify → poll → read → split).
    let dir = tempfile::tempdir().unwrap();
    let lpath = dir.path().join("latency.log");
    std::fs::File::create(&lpath).unwrap();
    let mut tail = FileTail::open(
        SourceId(1),
        &lpath,
        None,
        FileTailOptions {
            start: StartAt::Beginning,
            ..FileTailOptions::default()
        },
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<std::time::Instant>();
    let stop = tail.stop_handle();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        loop {
            out.clear();
            match tail
                .read_batch(&mut out, 16, Duration::from_secs(10))
                .unwrap()
            {
                ReadStatus::Stopped => return,
                _ => {
                    if !out.is_empty() {
                        tx.send(std::time::Instant::now()).unwrap();
                    }
                }
            }
        }
    });
    let mut w = std::fs::OpenOptions::new()
        .append(true)
        .open(&lpath)
        .unwrap();
    let mut lat = c.benchmark_group("latency");
    lat.sample_size(200);
    lat.bench_function("append_to_delivery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = std::time::Instant::now();
                w.write_all(
                    b"Nov 25 08:00:00 host sshd[1]: Failed password for root from 192.0.2.1\n",
                )
                .unwrap();
                let t1 = rx.recv().unwrap();
                total += t1 - t0;
            }
            total
        })
    });
    lat.finish();
    stop.stop();
    reader.join().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
