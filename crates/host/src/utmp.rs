//! utmp, wtmp and btmp: the binary login records, decoded natively.
//!
//! Layout (glibc on x86_64 and aarch64, where `__WORDSIZE_TIME64_COMPAT32` makes the time
//! fields 32-bit so 32- and 64-bit programs share the files), 384 bytes, little-endian:
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | `ut_type` | i16 (+2 bytes padding) |
//! | 4 | `ut_pid` | i32 |
//! | 8 | `ut_line` | char\[32\] (tty, e.g. `pts/2`, `ssh:notty`) |
//! | 40 | `ut_id` | char\[4\] |
//! | 44 | `ut_user` | char\[32\] |
//! | 76 | `ut_host` | char\[256\] |
//! | 332 | `ut_exit` | 2 × i16 |
//! | 336 | `ut_session` | i32 |
//! | 340 | `ut_tv` | i32 seconds, i32 microseconds |
//! | 348 | `ut_addr_v6` | 16 bytes, network order |
//! | 364 | reserved | 20 bytes |
//!
//! The offsets were checked with `offsetof` against `/usr/include/x86_64-linux-gnu/bits/utmp.h`
//! (glibc 2.36). Strings are NUL-padded, not necessarily NUL-terminated.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use portcullis_core::Time;
use portcullis_core::event::{normalize_addr, parse_addr};
use serde::{Deserialize, Serialize};

/// Where glibc keeps the current sessions.
pub const UTMP_PATH: &str = "/var/run/utmp";
/// Where glibc appends logins and logouts (rotated to `wtmp.1`, …).
pub const WTMP_PATH: &str = "/var/log/wtmp";
/// Where failed logins go (root-only, rotated to `btmp.1`, …).
pub const BTMP_PATH: &str = "/var/log/btmp";

/// Size of one `struct utmp` record in bytes.
pub const RECORD_SIZE: usize = 384;

const OFF_PID: usize = 4;
const OFF_LINE: usize = 8;
const OFF_ID: usize = 40;
const OFF_USER: usize = 44;
const OFF_HOST: usize = 76;
const OFF_EXIT: usize = 332;
const OFF_SESSION: usize = 336;
const OFF_TV: usize = 340;
const OFF_ADDR: usize = 348;
const LINE_LEN: usize = 32;
const USER_LEN: usize = 32;
const HOST_LEN: usize = 256;

/// What a record stands for (`ut_type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UtmpKind {
    /// `EMPTY` (0): an unused slot.
    Empty,
    /// `RUN_LVL` (1): a runlevel change; `shutdown` as user marks a shutdown.
    RunLevel,
    /// `BOOT_TIME` (2): the system booted.
    BootTime,
    /// `NEW_TIME` (3): the clock was changed (time after).
    NewTime,
    /// `OLD_TIME` (4): the clock was changed (time before).
    OldTime,
    /// `INIT_PROCESS` (5): spawned by init.
    InitProcess,
    /// `LOGIN_PROCESS` (6): a login prompt; in btmp, a failed login.
    LoginProcess,
    /// `USER_PROCESS` (7): a logged-in session.
    UserProcess,
    /// `DEAD_PROCESS` (8): a session ended.
    DeadProcess,
    /// `ACCOUNTING` (9).
    Accounting,
    /// Any other value, kept so odd files are still shown.
    Other(i16),
}

impl UtmpKind {
    /// The kind for a raw `ut_type`.
    pub fn from_raw(raw: i16) -> UtmpKind {
        match raw {
            0 => UtmpKind::Empty,
            1 => UtmpKind::RunLevel,
            2 => UtmpKind::BootTime,
            3 => UtmpKind::NewTime,
            4 => UtmpKind::OldTime,
            5 => UtmpKind::InitProcess,
            6 => UtmpKind::LoginProcess,
            7 => UtmpKind::UserProcess,
            8 => UtmpKind::DeadProcess,
            9 => UtmpKind::Accounting,
            other => UtmpKind::Other(other),
        }
    }

    /// The raw `ut_type` value.
    pub fn to_raw(self) -> i16 {
        match self {
            UtmpKind::Empty => 0,
            UtmpKind::RunLevel => 1,
            UtmpKind::BootTime => 2,
            UtmpKind::NewTime => 3,
            UtmpKind::OldTime => 4,
            UtmpKind::InitProcess => 5,
            UtmpKind::LoginProcess => 6,
            UtmpKind::UserProcess => 7,
            UtmpKind::DeadProcess => 8,
            UtmpKind::Accounting => 9,
            UtmpKind::Other(raw) => raw,
        }
    }
}

/// One decoded `struct utmp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtmpRecord {
    /// What the record stands for; decides how `logins` pairs it.
    pub kind: UtmpKind,
    /// The session leader's pid; `current_sessions` checks it is alive.
    pub pid: i32,
    /// Terminal line (`pts/2`, `tty1`, `ssh:notty`); pairs logins with logouts in wtmp.
    pub line: String,
    /// Inittab id / line suffix (`ts/2`); informational.
    pub id: String,
    /// User name. In btmp this is whatever the attacker typed: display it escaped.
    pub user: String,
    /// Remote host as the login program wrote it (an address or a name).
    pub host: String,
    /// Remote address from `ut_addr_v6` (IPv4 when only the first word is set, IPv4-mapped
    /// IPv6 turned into IPv4), or, when that is zero, `host` if it parses as an address.
    pub addr: Option<IpAddr>,
    /// When the record was written (`ut_tv`, microsecond precision).
    #[serde(with = "crate::time_serde")]
    pub time: Time,
    /// `ut_session`; informational.
    pub session: i32,
    /// `ut_exit` (termination, exit) of a `DEAD_PROCESS`.
    pub exit: (i16, i16),
}

impl UtmpRecord {
    /// A record as a login program writes it: `user` on `line` from `host` at `time`, `addr`
    /// taken from `host` when that is an address; no id, session or exit status. With
    /// [`encode_record`], the way tests and fixtures write real-format utmp files.
    pub fn new(
        kind: UtmpKind,
        pid: i32,
        line: &str,
        user: &str,
        host: &str,
        time: Time,
    ) -> UtmpRecord {
        UtmpRecord {
            kind,
            pid,
            line: line.into(),
            id: String::new(),
            user: user.into(),
            host: host.into(),
            addr: parse_addr(host),
            time,
            session: 0,
            exit: (0, 0),
        }
    }
}

/// The records of one file plus how much of its tail was unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtmpFile {
    /// The whole records, in file order (chronological for wtmp and btmp).
    pub records: Vec<UtmpRecord>,
    /// Bytes of a truncated last record that were skipped (0 for a clean file). A writer
    /// racing with us or a disk-full leaves such a tail; it is reported, not fatal.
    pub truncated_bytes: usize,
}

/// Why a utmp-format file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UtmpError {
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Read a utmp, wtmp or btmp file. A truncated last record is counted in
/// [`UtmpFile::truncated_bytes`] and skipped.
pub fn read_utmp(path: &Path) -> Result<UtmpFile, UtmpError> {
    let bytes = std::fs::read(path).map_err(|source| UtmpError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_utmp(&bytes))
}

/// Decode the records in `bytes` (the content of a utmp-format file).
pub fn parse_utmp(bytes: &[u8]) -> UtmpFile {
    let chunks = bytes.chunks_exact(RECORD_SIZE);
    let truncated_bytes = chunks.remainder().len();
    UtmpFile {
        records: chunks.map(decode_record).collect(),
        truncated_bytes,
    }
}

fn i16_at(rec: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([rec[off], rec[off + 1]])
}

fn i32_at(rec: &[u8], off: usize) -> i32 {
    i32::from_le_bytes([rec[off], rec[off + 1], rec[off + 2], rec[off + 3]])
}

/// A NUL-padded C string field as text (invalid UTF-8 replaced, not rejected: this is
/// display data).
fn text_at(rec: &[u8], off: usize, len: usize) -> String {
    let field = &rec[off..off + len];
    let end = field.iter().position(|&b| b == 0).unwrap_or(len);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn decode_record(rec: &[u8]) -> UtmpRecord {
    let host = text_at(rec, OFF_HOST, HOST_LEN);
    let mut raw_addr = [0u8; 16];
    raw_addr.copy_from_slice(&rec[OFF_ADDR..OFF_ADDR + 16]);
    let addr = decode_addr(raw_addr).or_else(|| parse_addr(host.trim()));
    // ut_tv.tv_sec is an int32 in the file; read it as unsigned so records written after
    // 2038 by a 64-bit writer still decode (negative times never occur in practice).
    let secs = i64::from(i32_at(rec, OFF_TV) as u32);
    let usecs = i64::from(i32_at(rec, OFF_TV + 4)).clamp(0, 999_999);
    UtmpRecord {
        kind: UtmpKind::from_raw(i16_at(rec, 0)),
        pid: i32_at(rec, OFF_PID),
        line: text_at(rec, OFF_LINE, LINE_LEN),
        id: text_at(rec, OFF_ID, 4),
        user: text_at(rec, OFF_USER, USER_LEN),
        host,
        addr,
        time: Time::from_micros(secs * 1_000_000 + usecs),
        session: i32_at(rec, OFF_SESSION),
        exit: (i16_at(rec, OFF_EXIT), i16_at(rec, OFF_EXIT + 2)),
    }
}

/// `ut_addr_v6` holds the address in network byte order; an IPv4 address fills only the first
/// 32-bit word.
fn decode_addr(raw: [u8; 16]) -> Option<IpAddr> {
    if raw == [0; 16] {
        return None;
    }
    if raw[4..] == [0; 12] {
        return Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])));
    }
    Some(normalize_addr(IpAddr::V6(Ipv6Addr::from(raw))))
}

/// Encode a record in the glibc layout. The inverse of the decoder, for tests and fixtures
/// (strings longer than their field are cut, as login programs do).
pub fn encode_record(rec: &UtmpRecord) -> [u8; RECORD_SIZE] {
    let mut out = [0u8; RECORD_SIZE];
    out[0..2].copy_from_slice(&rec.kind.to_raw().to_le_bytes());
    out[OFF_PID..OFF_PID + 4].copy_from_slice(&rec.pid.to_le_bytes());
    put_text(&mut out, OFF_LINE, LINE_LEN, &rec.line);
    put_text(&mut out, OFF_ID, 4, &rec.id);
    put_text(&mut out, OFF_USER, USER_LEN, &rec.user);
    put_text(&mut out, OFF_HOST, HOST_LEN, &rec.host);
    out[OFF_EXIT..OFF_EXIT + 2].copy_from_slice(&rec.exit.0.to_le_bytes());
    out[OFF_EXIT + 2..OFF_EXIT + 4].copy_from_slice(&rec.exit.1.to_le_bytes());
    out[OFF_SESSION..OFF_SESSION + 4].copy_from_slice(&rec.session.to_le_bytes());
    let secs = rec.time.as_secs() as u32;
    let usecs = rec.time.as_micros().rem_euclid(1_000_000) as i32;
    out[OFF_TV..OFF_TV + 4].copy_from_slice(&secs.to_le_bytes());
    out[OFF_TV + 4..OFF_TV + 8].copy_from_slice(&usecs.to_le_bytes());
    let addr: [u8; 16] = match rec.addr {
        None => [0; 16],
        Some(IpAddr::V4(v4)) => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&v4.octets());
            a
        }
        Some(IpAddr::V6(v6)) => v6.octets(),
    };
    out[OFF_ADDR..OFF_ADDR + 16].copy_from_slice(&addr);
    out
}

fn put_text(out: &mut [u8], off: usize, len: usize, text: &str) {
    let bytes = text.as_bytes();
    let n = bytes.len().min(len);
    out[off..off + n].copy_from_slice(&bytes[..n]);
}

/// Whether process `pid` exists under `proc_root` (normally `/proc`): the liveness check for
/// [`current_sessions`] on a live host.
pub fn pid_alive(proc_root: &Path, pid: i32) -> bool {
    pid > 0 && proc_root.join(pid.to_string()).exists()
}

/// Someone logged in now (a live `USER_PROCESS` in utmp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who. Display escaped.
    pub user: String,
    /// Their terminal (`pts/0`).
    pub line: String,
    /// Remote host as recorded (empty for a local console).
    pub host: String,
    /// Remote address, when the record has one.
    pub addr: Option<IpAddr>,
    /// Login time.
    #[serde(with = "crate::time_serde")]
    pub since: Time,
    /// Session leader pid (the shell or sshd session process).
    pub pid: i32,
}

/// The sessions open now: `USER_PROCESS` records of utmp whose pid `is_alive` says still
/// runs (pass `|pid| pid_alive(Path::new("/proc"), pid)` live, or `|_| true` to trust the
/// file). A stale record, left by a crash, is what the liveness check drops.
pub fn current_sessions(records: &[UtmpRecord], is_alive: impl Fn(i32) -> bool) -> Vec<Session> {
    records
        .iter()
        .filter(|r| r.kind == UtmpKind::UserProcess && !r.user.is_empty() && is_alive(r.pid))
        .map(|r| Session {
            user: r.user.clone(),
            line: r.line.clone(),
            host: r.host.clone(),
            addr: r.addr,
            since: r.time,
            pid: r.pid,
        })
        .collect()
}

/// How a login from wtmp ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "time")]
pub enum LoginEnd {
    /// No end recorded yet (`still logged in` in `last`; check utmp to be sure).
    Open,
    /// A `DEAD_PROCESS` on the same line closed it.
    #[serde(with = "crate::time_serde")]
    Logout(Time),
    /// The system booted before any logout was written (`crash` in `last`).
    #[serde(with = "crate::time_serde")]
    Crash(Time),
    /// A shutdown record came first (`down` in `last`).
    #[serde(with = "crate::time_serde")]
    Shutdown(Time),
    /// Another login on the same line began without a logout (`gone - no logout`).
    #[serde(with = "crate::time_serde")]
    Gone(Time),
}

/// One login from wtmp, paired with its end, like a line of `last`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// Who. Display escaped.
    pub user: String,
    /// Terminal line.
    pub line: String,
    /// Remote host as recorded.
    pub host: String,
    /// Remote address, when known.
    pub addr: Option<IpAddr>,
    /// Session leader pid.
    pub pid: i32,
    /// When it started.
    #[serde(with = "crate::time_serde")]
    pub start: Time,
    /// How and when it ended.
    pub end: LoginEnd,
}

/// Pair wtmp's login and logout records (in file order) into [`Login`]s, oldest first.
///
/// A `USER_PROCESS` opens a login on its line; the next `DEAD_PROCESS` on that line (or with
/// that pid when the line is empty) closes it; a `BOOT_TIME` closes every open one as a crash,
/// a `RUN_LVL` record of user `shutdown` as a shutdown.
pub fn logins(records: &[UtmpRecord]) -> Vec<Login> {
    let mut out: Vec<Login> = Vec::new();
    // line -> index into `out` of the open login on that line.
    let mut open: HashMap<String, usize> = HashMap::new();
    let key = |r: &UtmpRecord| {
        if r.line.is_empty() {
            format!("\0pid{}", r.pid)
        } else {
            r.line.clone()
        }
    };
    for r in records {
        match r.kind {
            UtmpKind::UserProcess if !r.user.is_empty() => {
                if let Some(prev) = open.remove(&key(r)) {
                    out[prev].end = LoginEnd::Gone(r.time);
                }
                open.insert(key(r), out.len());
                out.push(Login {
                    user: r.user.clone(),
                    line: r.line.clone(),
                    host: r.host.clone(),
                    addr: r.addr,
                    pid: r.pid,
                    start: r.time,
                    end: LoginEnd::Open,
                });
            }
            UtmpKind::DeadProcess => {
                let closed = open.remove(&key(r)).or_else(|| {
                    // Some writers clear ut_line on logout; fall back to the pid.
                    let k = open
                        .iter()
                        .find(|&(_, &i)| out[i].pid == r.pid && r.pid != 0)
                        .map(|(k, _)| k.clone())?;
                    open.remove(&k)
                });
                if let Some(i) = closed {
                    out[i].end = LoginEnd::Logout(r.time);
                }
            }
            UtmpKind::BootTime => {
                for (_, i) in open.drain() {
                    out[i].end = LoginEnd::Crash(r.time);
                }
            }
            UtmpKind::RunLevel if r.user == "shutdown" => {
                for (_, i) in open.drain() {
                    out[i].end = LoginEnd::Shutdown(r.time);
                }
            }
            _ => {}
        }
    }
    out
}

/// One failed login from btmp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLogin {
    /// The user name that was tried: attacker-chosen, display escaped.
    pub user: String,
    /// Terminal line (`ssh:notty` for sshd).
    pub line: String,
    /// Remote host as recorded.
    pub host: String,
    /// Remote address, when known.
    pub addr: Option<IpAddr>,
    /// When.
    #[serde(with = "crate::time_serde")]
    pub time: Time,
    /// The failing process (sshd's session pid).
    pub pid: i32,
}

/// The failed logins in btmp records (every non-empty record is one failure).
pub fn failed_logins(records: &[UtmpRecord]) -> Vec<FailedLogin> {
    records
        .iter()
        .filter(|r| r.kind != UtmpKind::Empty)
        .map(|r| FailedLogin {
            user: r.user.clone(),
            line: r.line.clone(),
            host: r.host.clone(),
            addr: r.addr,
            time: r.time,
            pid: r.pid,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use UtmpKind::{BootTime, DeadProcess, Empty, LoginProcess, RunLevel, UserProcess};

    fn rec(kind: UtmpKind, pid: i32, line: &str, user: &str, host: &str, secs: i64) -> UtmpRecord {
        UtmpRecord::new(kind, pid, line, user, host, Time::from_secs(secs))
    }

    fn file(records: &[UtmpRecord]) -> Vec<u8> {
        records.iter().flat_map(encode_record).collect()
    }

    #[test]
    fn layout_offsets_match_glibc() {
        // Hand-placed bytes at the glibc offsets, independent of encode_record.
        let mut raw = [0u8; RECORD_SIZE];
        raw[0] = 7;
        raw[4..8].copy_from_slice(&4242i32.to_le_bytes());
        raw[8..13].copy_from_slice(b"pts/2");
        raw[40..44].copy_from_slice(b"ts/2");
        raw[44..47].copy_from_slice(b"bob");
        raw[76..85].copy_from_slice(b"192.0.2.7");
        raw[332..334].copy_from_slice(&3i16.to_le_bytes());
        raw[334..336].copy_from_slice(&9i16.to_le_bytes());
        raw[336..340].copy_from_slice(&77i32.to_le_bytes());
        raw[340..344].copy_from_slice(&1_764_057_600i32.to_le_bytes());
        raw[344..348].copy_from_slice(&250_000i32.to_le_bytes());
        raw[348..352].copy_from_slice(&[198, 51, 100, 9]);
        let f = parse_utmp(&raw);
        assert_eq!(f.truncated_bytes, 0);
        let r = &f.records[0];
        assert_eq!(r.kind, UtmpKind::UserProcess);
        assert_eq!(r.pid, 4242);
        assert_eq!(r.line, "pts/2");
        assert_eq!(r.id, "ts/2");
        assert_eq!(r.user, "bob");
        assert_eq!(r.host, "192.0.2.7");
        // ut_addr_v6 wins over the host text.
        assert_eq!(r.addr, Some("198.51.100.9".parse().unwrap()));
        assert_eq!(r.exit, (3, 9));
        assert_eq!(r.session, 77);
        assert_eq!(r.time, Time::from_micros(1_764_057_600_250_000));
        assert_eq!(encode_record(r), raw);
    }

    #[test]
    fn round_trip_and_truncated_tail() {
        let mut v6 = rec(UserProcess, 11, "pts/1", "alice", "", 100);
        v6.addr = Some("2001:db8::5".parse().unwrap());
        let mut mapped = rec(LoginProcess, 12, "ssh:notty", "root", "x", 101);
        mapped.addr = Some("::ffff:203.0.113.4".parse().unwrap());
        let full_user = "u".repeat(32);
        let long = rec(LoginProcess, 13, "ssh:notty", &full_user, "", 102);
        let mut bytes = file(&[v6.clone(), mapped, long]);
        bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2, 3]);
        let f = parse_utmp(&bytes);
        assert_eq!(f.truncated_bytes, 7);
        assert_eq!(f.records.len(), 3);
        assert_eq!(f.records[0], v6);
        assert_eq!(f.records[1].addr, Some("203.0.113.4".parse().unwrap()));
        // A 32-byte name fills the field with no NUL and must not spill into ut_host.
        assert_eq!(f.records[2].user, full_user);
        assert_eq!(f.records[2].host, "");
    }

    #[test]
    fn host_text_used_when_addr_field_is_zero() {
        let mut r = rec(LoginProcess, 1, "ssh:notty", "x", "2001:db8::1", 5);
        r.addr = None;
        let f = parse_utmp(&encode_record(&r));
        assert_eq!(f.records[0].addr, Some("2001:db8::1".parse().unwrap()));
        let mut r = rec(LoginProcess, 1, "ssh:notty", "x", "evil.example", 5);
        r.addr = None;
        assert_eq!(parse_utmp(&encode_record(&r)).records[0].addr, None);
    }

    #[test]
    fn hostile_user_name_survives_as_text() {
        let r = rec(LoginProcess, 1, "ssh:notty", "\x1b[31m<b>", "192.0.2.1", 5);
        let f = parse_utmp(&encode_record(&r));
        assert_eq!(f.records[0].user, "\x1b[31m<b>");
        let mut raw = encode_record(&r);
        raw[OFF_USER] = 0xff;
        assert!(parse_utmp(&raw).records[0].user.starts_with('\u{fffd}'));
    }

    #[test]
    fn sessions_respect_liveness() {
        let records = vec![
            rec(BootTime, 0, "~", "reboot", "6.1", 1),
            rec(LoginProcess, 5, "tty1", "LOGIN", "", 2),
            rec(UserProcess, 100, "pts/0", "alice", "192.0.2.1", 3),
            rec(UserProcess, 200, "pts/1", "bob", "2001:db8::2", 4),
            rec(DeadProcess, 300, "pts/2", "", "", 5),
        ];
        let all = current_sessions(&records, |_| true);
        assert_eq!(
            all.iter().map(|s| s.user.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        let live = current_sessions(&records, |pid| pid == 200);
        assert!(pid_alive(Path::new("/proc"), std::process::id() as i32));
        assert!(!pid_alive(Path::new("/proc"), 0));
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].user, "bob");
        assert_eq!(live[0].addr, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(live[0].since, Time::from_secs(4));
    }

    #[test]
    fn logins_pair_like_last() {
        let records = vec![
            rec(BootTime, 0, "~", "reboot", "", 10),
            rec(UserProcess, 100, "pts/0", "alice", "192.0.2.1", 20),
            rec(UserProcess, 101, "pts/1", "bob", "192.0.2.2", 21),
            rec(DeadProcess, 100, "pts/0", "", "", 30),
            rec(UserProcess, 102, "pts/0", "carol", "192.0.2.3", 40),
            rec(UserProcess, 103, "pts/0", "dave", "192.0.2.4", 45),
            rec(RunLevel, 0, "~~", "shutdown", "", 50),
            rec(BootTime, 0, "~", "reboot", "", 60),
            rec(UserProcess, 104, "pts/0", "erin", "192.0.2.5", 70),
            rec(BootTime, 0, "~", "reboot", "", 80),
            rec(UserProcess, 105, "", "frank", "192.0.2.6", 90),
            rec(DeadProcess, 105, "", "", "", 95),
            rec(UserProcess, 106, "pts/3", "grace", "192.0.2.7", 99),
        ];
        let got: Vec<(String, LoginEnd)> = logins(&records)
            .into_iter()
            .map(|l| (l.user, l.end))
            .collect();
        let t = Time::from_secs;
        assert_eq!(
            got,
            vec![
                ("alice".into(), LoginEnd::Logout(t(30))),
                ("bob".into(), LoginEnd::Shutdown(t(50))),
                ("carol".into(), LoginEnd::Gone(t(45))),
                ("dave".into(), LoginEnd::Shutdown(t(50))),
                ("erin".into(), LoginEnd::Crash(t(80))),
                ("frank".into(), LoginEnd::Logout(t(95))),
                ("grace".into(), LoginEnd::Open),
            ]
        );
    }

    #[test]
    fn failed_logins_from_btmp() {
        let records = vec![
            rec(LoginProcess, 7, "ssh:notty", "root", "203.0.113.9", 1),
            rec(Empty, 0, "", "", "", 0),
            rec(LoginProcess, 8, "ssh:notty", "admin", "203.0.113.9", 2),
        ];
        let bytes = file(&records);
        let f = failed_logins(&parse_utmp(&bytes).records);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].user, "admin");
        assert_eq!(f[1].addr, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(f[1].time, Time::from_secs(2));
    }

    #[test]
    fn read_utmp_reports_missing_file() {
        let err = read_utmp(Path::new("/nonexistent/utmp")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/utmp"));
    }

    #[test]
    fn live_files_parse() {
        for path in [
            "/var/run/utmp",
            "/run/utmp",
            "/var/log/wtmp",
            "/var/log/btmp",
        ] {
            let path = Path::new(path);
            if !path.exists() {
                eprintln!("note: {} absent, not checked", path.display());
                continue;
            }
            let f = read_utmp(path).unwrap();
            eprintln!(
                "{}: {} records, {} truncated bytes",
                path.display(),
                f.records.len(),
                f.truncated_bytes
            );
            let _ = logins(&f.records);
            let _ = failed_logins(&f.records);
        }
    }

    #[test]
    fn serde_shape() {
        let r = rec(UserProcess, 1, "pts/0", "a", "192.0.2.1", 1_764_057_600);
        let login = &logins(&[r])[0];
        let json = serde_json::to_value(login).unwrap();
        assert_eq!(json["start"], "2025-11-25T08:00:00Z");
        assert_eq!(json["end"]["kind"], "open");
        let back: Login = serde_json::from_value(json).unwrap();
        assert_eq!(&back, login);
    }
}
