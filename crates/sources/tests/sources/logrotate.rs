//! The tail under the real logrotate binary and a syslog-like writer that reopens its file
//! only when told (as rsyslog does on logrotate's HUP), writing at full speed meanwhile.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_sources::{FileTail, SourceId};

use crate::util::{Running, assert_exactly_once, opts};

const LOGROTATE: &str = "/usr/sbin/logrotate";
/// Lines the writer writes in all (bounded: it writes as fast as it can).
const TOTAL: u64 = 300_000;
const ROTATIONS: u64 = 6;

fn logrotate_present() -> bool {
    if Path::new(LOGROTATE).exists() {
        return true;
    }
    let msg = "logrotate tests need /usr/sbin/logrotate (apt-get install logrotate)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    false
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum Mode {
    /// `create` + `delaycompress` + `compress`: rename, new file, the writer reopens on "HUP".
    CreateDelayCompress,
    /// `create` + `compress` (no delaycompress): the renamed file is compressed at once, so
    /// the writer must reopen before writing again (postrotate): lines written to the old
    /// file after its compression would survive only in the unlinked inode, which a lagging
    /// tail never opened. That is why Debian uses delaycompress.
    CreateCompress,
    /// `copytruncate`.
    CopyTruncate,
}

struct Writer {
    /// Held by the writer while it writes a batch; logrotate runs under it for copytruncate,
    /// so no line falls between its copy and its truncate (a loss logrotate itself causes).
    pause: Arc<Mutex<()>>,
    hup: Arc<AtomicBool>,
    /// logrotate runs completed; the writer waits at each rotation point until the rotation
    /// happened, so every generation gets lines (it would otherwise outrun logrotate).
    rotated: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

fn open_append(p: &Path) -> BufWriter<File> {
    BufWriter::with_capacity(
        64 * 1024,
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap(),
    )
}

fn start_writer(path: PathBuf) -> Writer {
    let pause = Arc::new(Mutex::new(()));
    let hup = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let rotated = Arc::new(AtomicU64::new(0));
    let (p2, h2, w2, r2) = (
        Arc::clone(&pause),
        Arc::clone(&hup),
        Arc::clone(&written),
        Arc::clone(&rotated),
    );
    let thread = std::thread::spawn(move || {
        let mut w = open_append(&path);
        let mut n = 0u64;
        while n < TOTAL {
            let done = r2.load(Ordering::SeqCst);
            if done < ROTATIONS && n >= checkpoint(done + 1) {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            {
                let _g = p2.lock().unwrap();
                if h2.swap(false, Ordering::SeqCst) {
                    w = open_append(&path);
                }
                for _ in 0..500 {
                    writeln!(
                        w,
                        "line {n} host sshd[42]: Failed password for root from 192.0.2.1"
                    )
                    .unwrap();
                    n += 1;
                }
                w.flush().unwrap();
                w2.store(n, Ordering::SeqCst);
            }
        }
    });
    Writer {
        pause,
        hup,
        rotated,
        written,
        thread,
    }
}

/// Where the `r`-th rotation happens, in lines written.
fn checkpoint(r: u64) -> u64 {
    r * TOTAL / (ROTATIONS + 1)
}

fn run(mode: Mode) {
    if !logrotate_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    File::create(&path).unwrap();
    let conf = dir.path().join("logrotate.conf");
    let options = match mode {
        Mode::CreateDelayCompress => "create\n    compress\n    delaycompress",
        Mode::CreateCompress => "create\n    compress",
        Mode::CopyTruncate => "copytruncate\n    nocompress",
    };
    std::fs::write(
        &conf,
        format!(
            "{} {{\n    rotate 100\n    missingok\n    {options}\n}}\n",
            path.display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");

    let reader = Running::start(FileTail::open(SourceId(1), &path, None, opts()).unwrap());
    let writer = start_writer(path.clone());
    let mut generation_start = 0u64;
    for r in 1..=ROTATIONS {
        // Rotate at evenly spaced points of the writer's progress.
        while writer.written.load(Ordering::SeqCst) < checkpoint(r) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if mode == Mode::CopyTruncate {
            // A copy of content whose first line the tail never saw cannot be identified.
            reader.wait_seen(generation_start.min(TOTAL - 1), Duration::from_secs(30));
        }
        let out = {
            let _g = (mode != Mode::CreateDelayCompress).then(|| writer.pause.lock().unwrap());
            generation_start = writer.written.load(Ordering::SeqCst);
            let out = Command::new(LOGROTATE)
                .arg("-f")
                .arg("-s")
                .arg(&state)
                .arg(&conf)
                .output()
                .unwrap();
            if mode == Mode::CreateCompress {
                writer.hup.store(true, Ordering::SeqCst);
            }
            out
        };
        assert!(
            out.status.success(),
            "logrotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        writer.rotated.store(r, Ordering::SeqCst);
        if mode == Mode::CreateDelayCompress {
            // The writer keeps writing to the rotated file until it is "HUP"ed.
            std::thread::sleep(Duration::from_millis(3));
            writer.hup.store(true, Ordering::SeqCst);
        }
    }
    writer.thread.join().unwrap();
    let total = writer.written.load(Ordering::SeqCst);
    assert_eq!(total, TOTAL);
    reader.wait_for(total as usize, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(600));
    let (tail, lines) = reader.stop();
    let rotated = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(rotated >= 6, "logrotate did not rotate: {rotated} files");
    assert_exactly_once(&lines, total);
    eprintln!("{mode:?}: {total} lines, {:?}", tail.stats());
}

#[test]
fn logrotate_create_delaycompress() {
    run(Mode::CreateDelayCompress);
}

#[test]
fn logrotate_create_compress() {
    run(Mode::CreateCompress);
}

#[test]
fn logrotate_copytruncate() {
    run(Mode::CopyTruncate);
}
