//! The journal source on real journal files made by systemd-journal-remote from export input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis_core::time::Time;
use portcullis_sources::{
    JournalLocation, JournalOptions, JournalSource, JournalStart, LineSource, Position, ReadStatus,
    SourceId, SourceLine, parse_journal_matches,
};

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const BASE_US: i64 = 1_764_000_000_000_000;

/// Whether the tools exist; without them the test is skipped loudly, or fails under CI.
fn tools_present() -> bool {
    let ok = Path::new(REMOTE).exists()
        && Command::new("journalctl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "journal tests need journalctl and systemd-journal-remote \
                   (apt-get install systemd-journal-remote)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    }
    ok
}

struct Entry {
    /// The sender as journald saw it: `(_UID, _COMM, _EXE)`; `None` for the service's own
    /// daemon (root, comm and exe named after the identifier).
    sender: Option<(u32, &'static str, &'static str)>,
    /// How it reached journald (`_TRANSPORT`): `syslog` for sshd's syslog(3), `stdout` for
    /// a service's output stream.
    transport: &'static str,
    unit: &'static str,
    ident: &'static str,
    pid: u32,
    message: Vec<u8>,
    /// Seconds after BASE_US.
    at: i64,
}

fn export(entries: &[Entry], seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ts = BASE_US + e.at * 1_000_000;
        let daemon_exe = format!("/usr/sbin/{}", e.ident);
        let (uid, comm, exe) = match e.sender {
            Some((uid, comm, exe)) => (uid, comm, exe),
            None => (0, e.ident, daemon_exe.as_str()),
        };
        out.extend_from_slice(
            format!(
                "__REALTIME_TIMESTAMP={ts}\n__MONOTONIC_TIMESTAMP={}\n\
                 _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=h1\n\
                 _SYSTEMD_UNIT={}\nSYSLOG_IDENTIFIER={}\n_PID={}\n\
                 _UID={uid}\n_COMM={comm}\n_EXE={exe}\n_TRANSPORT={}\n",
                seq + i as u64 + 1,
                e.unit,
                e.ident,
                e.pid,
                e.transport
            )
            .as_bytes(),
        );
        if e.message.contains(&b'\n') || std::str::from_utf8(&e.message).is_err() {
            out.extend_from_slice(b"MESSAGE\n");
            out.extend_from_slice(&(e.message.len() as u64).to_le_bytes());
            out.extend_from_slice(&e.message);
            out.push(b'\n');
        } else {
            out.extend_from_slice(b"MESSAGE=");
            out.extend_from_slice(&e.message);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// A journal file at `target` holding `entries`, written elsewhere then renamed into place so
/// a following journalctl never sees it half-written.
fn make_journal(work: &Path, target: &Path, entries: &[Entry], seq: u64) {
    let input = work.join(format!("in{seq}.export"));
    std::fs::write(&input, export(entries, seq)).unwrap();
    let tmp = work.join(format!("tmp{seq}.journal"));
    let out = Command::new(REMOTE)
        .arg("-o")
        .arg(&tmp)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, target).unwrap();
}

fn sample() -> Vec<Entry> {
    let e = |unit, ident, pid, msg: &[u8], at| Entry {
        sender: None,
        transport: "syslog",
        unit,
        ident,
        pid,
        message: msg.to_vec(),
        at,
    };
    vec![
        e(
            "ssh.service",
            "sshd",
            100,
            b"Failed password for root from 192.0.2.1 port 22 ssh2",
            1,
        ),
        e("cron.service", "CRON", 200, b"session opened", 2),
        e(
            "ssh.service",
            "sshd-session",
            101,
            b"Invalid user \xff\xfeadmin from 192.0.2.2",
            3,
        ),
        e(
            "other.service",
            "sshd-session",
            102,
            b"Failed password for bob from 192.0.2.3",
            4,
        ),
        e("ssh.service", "sshd", 103, b"two\nlines from 192.0.2.4", 5),
        e("nginx.service", "nginx", 300, b"GET /", 6),
        e(
            "ssh.service",
            "sshd",
            104,
            b"Connection closed by 192.0.2.5",
            7,
        ),
    ]
}

fn options(dir: &Path, follow: bool, start: JournalStart) -> JournalOptions {
    JournalOptions {
        location: JournalLocation::Directory(dir.to_path_buf()),
        matches: parse_journal_matches(
            "_SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd-session",
        )
        .unwrap(),
        follow,
        start,
        min_backoff: Duration::from_millis(50),
        ..JournalOptions::default()
    }
}

fn read_all(src: &mut JournalSource, max: usize) -> Vec<SourceLine> {
    let mut all = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < end, "journal source did not finish");
        let mut batch = Vec::new();
        let st = src
            .read_batch(&mut batch, max, Duration::from_secs(5))
            .unwrap();
        assert!(batch.len() <= max);
        all.extend(batch);
        if st == ReadStatus::Finished {
            return all;
        }
    }
}

fn read_until(src: &mut JournalSource, n: usize, limit: Duration) -> Vec<SourceLine> {
    let mut all = Vec::new();
    let end = Instant::now() + limit;
    while all.len() < n && Instant::now() < end {
        let room = n - all.len();
        let st = src
            .read_batch(&mut all, room, Duration::from_millis(200))
            .unwrap();
        assert_eq!(st, ReadStatus::Live);
    }
    all
}

/// Everything a fresh, non-following source on `dir` under `matches` delivers (as text), and
/// the source (for its counters).
fn deliver(dir: &Path, matches: &str) -> (Vec<String>, JournalSource) {
    let o = JournalOptions {
        location: JournalLocation::Directory(dir.to_path_buf()),
        matches: parse_journal_matches(matches).unwrap(),
        follow: false,
        start: JournalStart::Beginning,
        ..JournalOptions::default()
    };
    let mut src = JournalSource::spawn(SourceId(1), o).unwrap();
    let text = read_all(&mut src, 10)
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect();
    (text, src)
}

/// `journalctl -o export` of `dir` under `matches`, to check what the journal itself holds.
fn journal_export(dir: &Path, matches: &[&str]) -> String {
    let out = Command::new("journalctl")
        .arg(format!("--directory={}", dir.display()))
        .args(["-o", "export"])
        .args(matches)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cursor(l: &SourceLine) -> String {
    match &l.position {
        Position::Journal(c) => c.to_string(),
        other => panic!("{other:?}"),
    }
}

fn setup() -> Option<(tempfile::TempDir, PathBuf)> {
    if !tools_present() {
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("journal");
    std::fs::create_dir(&dir).unwrap();
    make_journal(work.path(), &dir.join("a.journal"), &sample(), 0);
    Some((work, dir))
}

#[test]
fn reads_matching_entries_with_metadata() {
    let Some((_work, dir)) = setup() else { return };
    let mut src =
        JournalSource::spawn(SourceId(9), options(&dir, false, JournalStart::Beginning)).unwrap();
    let lines = read_all(&mut src, 2);
    let msgs: Vec<&[u8]> = lines.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(
        msgs,
        vec![
            &b"Failed password for root from 192.0.2.1 port 22 ssh2"[..],
            b"Invalid user \xff\xfeadmin from 192.0.2.2",
            b"Failed password for bob from 192.0.2.3",
            b"two\nlines from 192.0.2.4",
            b"Connection closed by 192.0.2.5",
        ]
    );
    let pids: Vec<Option<u32>> = lines
        .iter()
        .map(|l| l.journal.as_ref().unwrap().pid)
        .collect();
    assert_eq!(
        pids,
        vec![Some(100), Some(101), Some(102), Some(103), Some(104)]
    );
    let times: Vec<Time> = lines
        .iter()
        .map(|l| l.journal.as_ref().unwrap().realtime.unwrap())
        .collect();
    let want: Vec<Time> = [1, 3, 4, 5, 7]
        .iter()
        .map(|s| Time::from_micros(BASE_US + s * 1_000_000))
        .collect();
    assert_eq!(times, want);
    let j = lines[1].journal.as_ref().unwrap();
    assert_eq!(j.identifier.as_deref(), Some(&b"sshd-session"[..]));
    assert_eq!(j.hostname.as_deref(), Some(&b"h1"[..]));
    assert_eq!(
        j.record(&lines[1].bytes, lines[1].read_at).syslog_line(),
        b"sshd-session[101]: Invalid user \xff\xfeadmin from 192.0.2.2".to_vec()
    );
    assert!(lines.iter().all(|l| l.source == SourceId(9)));
    let cursors: std::collections::HashSet<String> = lines.iter().map(cursor).collect();
    assert_eq!(cursors.len(), 5);
    assert_eq!(src.cursor(), Some(cursor(&lines[4]).as_str()));
}

#[test]
fn resume_after_cursor_gives_only_later_entries() {
    let Some((_work, dir)) = setup() else { return };
    let mut first =
        JournalSource::spawn(SourceId(1), options(&dir, false, JournalStart::Beginning)).unwrap();
    let mut got = Vec::new();
    let _ = first
        .read_batch(&mut got, 2, Duration::from_secs(5))
        .unwrap();
    assert_eq!(got.len(), 2);
    let stored = cursor(&got[1]);
    drop(first);
    let mut second = JournalSource::spawn(
        SourceId(1),
        options(&dir, false, JournalStart::AfterCursor(stored)),
    )
    .unwrap();
    let rest = read_all(&mut second, 100);
    let pids: Vec<Option<u32>> = rest
        .iter()
        .map(|l| l.journal.as_ref().unwrap().pid)
        .collect();
    assert_eq!(pids, vec![Some(102), Some(103), Some(104)]);
}

#[test]
fn follow_survives_journalctl_death_and_sees_new_files() {
    let Some((work, dir)) = setup() else { return };
    let mut src =
        JournalSource::spawn(SourceId(1), options(&dir, true, JournalStart::Beginning)).unwrap();
    let first = read_until(&mut src, 5, Duration::from_secs(10));
    assert_eq!(first.len(), 5);
    // Kill the journalctl we started; the source must restart it after the last cursor.
    let pid = src.child_pid().unwrap();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The exit is reported once, then journalctl is restarted after the last cursor.
    let mut none = Vec::new();
    let mut exits = 0;
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        match src.read_batch(&mut none, 10, Duration::from_millis(100)) {
            Ok(st) => assert_eq!(st, ReadStatus::Live),
            Err(portcullis_sources::ReadError::JournalExit { .. }) => exits += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(exits, 1);
    assert!(none.is_empty(), "replayed after restart: {}", none.len());
    let later = vec![
        Entry {
            sender: None,
            transport: "syslog",
            unit: "ssh.service",
            ident: "sshd",
            pid: 500,
            message: b"Failed password for eve from 192.0.2.9".to_vec(),
            at: 20,
        },
        Entry {
            sender: None,
            transport: "syslog",
            unit: "cron.service",
            ident: "CRON",
            pid: 501,
            message: b"not matched".to_vec(),
            at: 21,
        },
    ];
    make_journal(work.path(), &dir.join("b.journal"), &later, 100);
    let new = read_until(&mut src, 1, Duration::from_secs(10));
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].bytes, b"Failed password for eve from 192.0.2.9");
    assert!(src.stats().restarts >= 1);
    assert_ne!(src.child_pid(), Some(pid));
    let stop = src.stop_handle();
    stop.stop();
    let mut out = Vec::new();
    assert_eq!(
        src.read_batch(&mut out, 10, Duration::from_secs(1))
            .unwrap(),
        ReadStatus::Stopped
    );
}

#[test]
fn missing_journalctl_is_an_open_error() {
    let o = JournalOptions {
        journalctl: PathBuf::from("/nonexistent/journalctl"),
        ..JournalOptions::default()
    };
    assert!(matches!(
        JournalSource::spawn(SourceId(1), o),
        Err(portcullis_sources::OpenError::Spawn { .. })
    ));
}

#[test]
fn follow_from_end_skips_existing_entries() {
    let Some((work, dir)) = setup() else { return };
    let mut src =
        JournalSource::spawn(SourceId(1), options(&dir, true, JournalStart::End)).unwrap();
    assert!(read_until(&mut src, 1, Duration::from_millis(800)).is_empty());
    let later = vec![Entry {
        sender: None,
        transport: "syslog",
        unit: "ssh.service",
        ident: "sshd",
        pid: 600,
        message: b"Failed password for mallory from 192.0.2.10".to_vec(),
        at: 30,
    }];
    make_journal(work.path(), &dir.join("c.journal"), &later, 200);
    let new = read_until(&mut src, 1, Duration::from_secs(10));
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].journal.as_ref().unwrap().pid, Some(600));
}

#[test]
fn journalctl_failure_is_reported_with_its_message() {
    if !tools_present() {
        return;
    }
    let o = JournalOptions {
        location: JournalLocation::Directory(PathBuf::from("/nonexistent/portcullis-test")),
        follow: false,
        start: JournalStart::Beginning,
        ..JournalOptions::default()
    };
    let mut src = JournalSource::spawn(SourceId(1), o).unwrap();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < end, "no error reported");
        match src.read_batch(&mut out, 10, Duration::from_millis(500)) {
            Ok(st) => assert_eq!(st, ReadStatus::Live),
            Err(e) => break e,
        }
    };
    let text = err.to_string();
    assert!(text.starts_with("journalctl exited with"), "{text}");
    assert!(text.contains("/nonexistent/portcullis-test"), "{text}");
    assert!(out.is_empty());
}

#[test]
fn rejected_cursor_falls_back_to_following_from_the_end() {
    let Some((work, dir)) = setup() else { return };
    let mut src = JournalSource::spawn(
        SourceId(1),
        options(&dir, true, JournalStart::AfterCursor("garbage".into())),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut exits = 0;
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        match src.read_batch(&mut out, 10, Duration::from_millis(100)) {
            Ok(st) => assert_eq!(st, ReadStatus::Live),
            Err(portcullis_sources::ReadError::JournalExit { stderr, .. }) => {
                assert!(stderr.contains("cursor"), "{stderr}");
                exits += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(exits, 1);
    assert!(out.is_empty());
    let later = vec![Entry {
        sender: None,
        transport: "syslog",
        unit: "ssh.service",
        ident: "sshd",
        pid: 700,
        message: b"Failed password for trudy from 192.0.2.11".to_vec(),
        at: 40,
    }];
    make_journal(work.path(), &dir.join("d.journal"), &later, 300);
    let new = read_until(&mut src, 1, Duration::from_secs(10));
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].journal.as_ref().unwrap().pid, Some(700));
}

/// Issue 10.2: `SYSLOG_IDENTIFIER` is the sender's word. A local user's `logger -t sshd`
/// (and a copy of logger renamed `sshd`, and root's logger) write entries that claim to be
/// sshd's; in a real journal file their trusted fields (`_UID`, `_COMM`, `_EXE`,
/// `_SYSTEMD_UNIT`) are the logger's. None of them is delivered; each is counted. sshd's
/// own entries, under the sshd matches an admin would configure, still are.
#[test]
fn a_users_logger_is_never_taken_for_sshd() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("journal");
    std::fs::create_dir(&dir).unwrap();
    let forged = |sender, unit, at| Entry {
        sender: Some(sender),
        transport: "syslog",
        unit,
        ident: "sshd",
        pid: 4242,
        message: b"Failed password for root from 203.0.113.66 port 22 ssh2".to_vec(),
        at,
    };
    let real = |ident, at| Entry {
        sender: None,
        transport: "syslog",
        unit: "ssh.service",
        ident,
        pid: 77,
        message: b"Failed password for root from 198.51.100.7 port 22 ssh2".to_vec(),
        at,
    };
    let entries = vec![
        real("sshd", 1),
        forged((1000, "logger", "/usr/bin/logger"), "session-3.scope", 2),
        forged((1000, "sshd", "/home/eve/sshd"), "session-3.scope", 3),
        forged((33, "logger", "/usr/bin/logger"), "apache2.service", 4),
        forged((0, "logger", "/usr/bin/logger"), "cron.service", 5),
        real("sshd-session", 6),
    ];
    make_journal(work.path(), &dir.join("a.journal"), &entries, 0);
    let (text, src) = deliver(
        &dir,
        "SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session",
    );
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text.iter().all(|t| t.contains("198.51.100.7")), "{text:?}");
    assert_eq!(src.stats().untrusted, 4);
    // Checked against the journal itself: the forged entries are there, as the logger's.
    let export = journal_export(&dir, &["SYSLOG_IDENTIFIER=sshd", "_UID=1000"]);
    assert_eq!(export.matches("203.0.113.66").count(), 2, "{export}");
}

/// `sshd -e` logs to stderr, which systemd hands to journald as a stream: there sshd leaves
/// newlines in a client's text raw (`VIS_SAFE`), so a user name
/// `x\nFailed password for root from 203.0.113.66 port 22 ssh2\ny` becomes three entries —
/// the middle one entirely the client's — each with sshd's own trusted fields (what OpenSSH
/// 9.2 wrote, run that way in a network namespace). None is delivered; each is counted;
/// sshd's syslog(3) entries still are delivered.
#[test]
fn sshds_output_stream_is_never_believed() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("journal");
    std::fs::create_dir(&dir).unwrap();
    let sshd = |transport, message: &str, at| Entry {
        sender: None,
        transport,
        unit: "ssh.service",
        ident: "sshd",
        pid: 91,
        message: message.as_bytes().to_vec(),
        at,
    };
    let entries = vec![
        sshd(
            "syslog",
            "Failed password for root from 198.51.100.7 port 22 ssh2",
            1,
        ),
        sshd("stdout", "Failed password for invalid user x", 2),
        sshd(
            "stdout",
            "Failed password for root from 203.0.113.66 port 22 ssh2",
            2,
        ),
        sshd("stdout", "y from 192.0.2.2 port 52670 ssh2\r", 2),
    ];
    make_journal(work.path(), &dir.join("a.journal"), &entries, 0);
    let (text, src) = deliver(&dir, "_SYSTEMD_UNIT=ssh.service");
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(text[0].contains("198.51.100.7"), "{text:?}");
    assert_eq!(src.stats().untrusted, 3);
    // The journal holds them, as sshd's stream.
    let export = journal_export(&dir, &["_TRANSPORT=stdout", "_COMM=sshd", "_UID=0"]);
    assert_eq!(export.matches("203.0.113.66").count(), 1, "{export}");
}

/// Issue 11.5: journalctl SIGKILLed again and again while journal files keep arriving (half
/// the time after being stopped for a while, so entries pile up behind the cursor). Each
/// death is reported once (the daemon logs it as a warning), the child is restarted after
/// the cursor of the last delivered entry with backoff, every restart is counted, and every
/// entry is delivered exactly once.
#[test]
fn i11_journalctl_killed_repeatedly_while_entries_arrive_delivers_each_once() {
    let Some((work, dir)) = setup() else { return };
    const FILES: u64 = 12;
    const PER_FILE: u64 = 25;
    const KILLS: u32 = 6;
    let (work_path, dir_path) = (work.path().to_path_buf(), dir.clone());
    let writer = std::thread::spawn(move || {
        for k in 0..FILES {
            let entries: Vec<Entry> = (0..PER_FILE)
                .map(|i| {
                    let n = k * PER_FILE + i;
                    Entry {
                        sender: None,
                        transport: "syslog",
                        unit: "ssh.service",
                        ident: "sshd",
                        pid: 1000 + n as u32,
                        message: format!("entry {n}").into_bytes(),
                        at: 100 + n as i64,
                    }
                })
                .collect();
            let target = dir_path.join(format!("w{k}.journal"));
            make_journal(&work_path, &target, &entries, 1000 * (k + 1));
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let mut src =
        JournalSource::spawn(SourceId(1), options(&dir, true, JournalStart::Beginning)).unwrap();
    let total = 5 + (FILES * PER_FILE) as usize;
    let mut lines: Vec<SourceLine> = Vec::new();
    let (mut kills, mut exits) = (0u32, 0u32);
    let mut killed_pid = None;
    let mut next_kill = Instant::now() + Duration::from_millis(200);
    let end = Instant::now() + Duration::from_secs(30);
    while lines.len() < total || kills < KILLS || exits < kills || !writer.is_finished() {
        if Instant::now() >= end {
            let got: std::collections::HashSet<Vec<u8>> =
                lines.iter().map(|l| l.bytes.clone()).collect();
            let missing: Vec<u64> = (0..FILES * PER_FILE)
                .filter(|n| !got.contains(format!("entry {n}").as_bytes()))
                .collect();
            panic!(
                "{} of {total} entries, {kills} kills, {exits} exits; missing {missing:?}; \
                 journalctl {:?}",
                lines.len(),
                src.command_args()
            );
        }
        match src.read_batch(&mut lines, 7, Duration::from_millis(50)) {
            Ok(st) => assert_eq!(st, ReadStatus::Live),
            Err(portcullis_sources::ReadError::JournalExit { .. }) => exits += 1,
            Err(e) => panic!("{e}"),
        }
        if kills < KILLS
            && Instant::now() >= next_kill
            && let Some(pid) = src.child_pid()
            && Some(pid) != killed_pid
        {
            // Stopped first while files keep arriving, so the restarted journalctl has a
            // backlog of more than ten entries after the cursor to catch up on.
            let signal = |sig: &str| {
                let sent = Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success());
            };
            if kills % 2 == 0 {
                signal("-STOP");
                std::thread::sleep(Duration::from_millis(400));
            }
            signal("-9");
            killed_pid = Some(pid);
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(300);
        }
    }
    writer.join().unwrap();
    // Anything still coming would be a duplicate.
    let extra = read_until(&mut src, 1, Duration::from_millis(800));
    assert!(extra.is_empty(), "read twice: {}", extra.len());
    let mut seen = std::collections::HashMap::<Vec<u8>, u32>::new();
    for l in &lines {
        *seen.entry(l.bytes.clone()).or_default() += 1;
    }
    let twice: Vec<_> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    for n in 0..FILES * PER_FILE {
        let m = format!("entry {n}").into_bytes();
        assert!(seen.contains_key(&m), "entry {n} lost");
    }
    assert_eq!(lines.len(), total);
    assert_eq!(exits, KILLS, "each death reported once");
    assert_eq!(src.stats().restarts, u64::from(KILLS));
}

/// Issue 11.5: following from a stored cursor (a daemon restart, or journalctl restarted)
/// reads the whole backlog after it. `journalctl --follow` alone implies `--lines=10`, which
/// also cut what follows `--after-cursor`: all but ten entries of a backlog were lost.
#[test]
fn i11_following_from_a_cursor_reads_the_whole_backlog() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("journal");
    std::fs::create_dir(&dir).unwrap();
    let entries: Vec<Entry> = (0..40)
        .map(|n| Entry {
            sender: None,
            transport: "syslog",
            unit: "ssh.service",
            ident: "sshd",
            pid: 2000 + n,
            message: format!("entry {n}").into_bytes(),
            at: i64::from(n),
        })
        .collect();
    make_journal(work.path(), &dir.join("a.journal"), &entries, 0);
    let (all, _) = deliver(&dir, "_SYSTEMD_UNIT=ssh.service");
    assert_eq!(all.len(), 40);
    let mut first =
        JournalSource::spawn(SourceId(1), options(&dir, false, JournalStart::Beginning)).unwrap();
    let mut got = Vec::new();
    let _ = first
        .read_batch(&mut got, 5, Duration::from_secs(5))
        .unwrap();
    assert_eq!(got.len(), 5);
    drop(first);
    let mut src = JournalSource::spawn(
        SourceId(1),
        options(&dir, true, JournalStart::AfterCursor(cursor(&got[4]))),
    )
    .unwrap();
    let rest = read_until(&mut src, 35, Duration::from_secs(10));
    let text: Vec<String> = rest
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect();
    let want: Vec<String> = (5..40).map(|n| format!("entry {n}")).collect();
    assert_eq!(text, want);
    assert!(read_until(&mut src, 1, Duration::from_millis(500)).is_empty());
}
