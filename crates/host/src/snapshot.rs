//! Everything `investigate` reads from the live host in one call, tolerant of what a host
//! lacks (no utmp under systemd-only setups, btmp readable by root only, IPv6 disabled).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::net::{RemoteConnections, connections_to_ports};
use crate::sshd_config::{SSHD_CONFIG_PATH, ssh_ports};
use crate::utmp::{
    BTMP_PATH, FailedLogin, Login, Session, UTMP_PATH, WTMP_PATH, current_sessions, failed_logins,
    logins, pid_alive, read_utmp,
};

/// Where to read; [`HostPaths::default`] is the live system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    /// The proc filesystem (`/proc`): TCP tables, sshd titles, liveness of session pids.
    pub proc_root: PathBuf,
    /// Current sessions file.
    pub utmp: PathBuf,
    /// Login history files, oldest first (`wtmp.1` before `wtmp`); missing ones are skipped.
    pub wtmp: Vec<PathBuf>,
    /// Failed-login files, oldest first; missing or unreadable ones give a warning.
    pub btmp: Vec<PathBuf>,
    /// sshd's config, for the ports when none are given.
    pub sshd_config: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc_root: "/proc".into(),
            utmp: UTMP_PATH.into(),
            wtmp: vec![format!("{WTMP_PATH}.1").into(), WTMP_PATH.into()],
            btmp: vec![format!("{BTMP_PATH}.1").into(), BTMP_PATH.into()],
            sshd_config: SSHD_CONFIG_PATH.into(),
        }
    }
}

/// What the host shows now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostSnapshot {
    /// The SSH ports looked at (given, or from sshd_config, or 22).
    pub ports: Vec<u16>,
    /// Connections to those ports by remote address, most first.
    pub connections: Vec<RemoteConnections>,
    /// Sessions open now (utmp records whose process is alive).
    pub sessions: Vec<Session>,
    /// Logins from wtmp, oldest first.
    pub logins: Vec<Login>,
    /// Failed logins from btmp, oldest first.
    pub failed_logins: Vec<FailedLogin>,
    /// What could not be read and why, for the report (never fatal).
    pub warnings: Vec<String>,
}

/// Read everything, collecting problems as warnings. `ports` overrides sshd_config (`--port`).
pub fn snapshot(paths: &HostPaths, ports: Option<&[u16]>) -> HostSnapshot {
    let mut snap = HostSnapshot::default();
    snap.ports = match ports {
        Some(p) if !p.is_empty() => p.to_vec(),
        _ => match ssh_ports(&paths.sshd_config) {
            Ok(p) => p,
            Err(e) => {
                snap.warnings
                    .push(format!("{}; assuming port 22", chain(&e)));
                vec![22]
            }
        },
    };
    match connections_to_ports(&paths.proc_root, &snap.ports) {
        Ok(c) => snap.connections = c,
        Err(e) => snap.warnings.push(chain(&e)),
    }
    match read_utmp(&paths.utmp) {
        Ok(f) => {
            note_truncated(&mut snap.warnings, &paths.utmp, f.truncated_bytes);
            snap.sessions = current_sessions(&f.records, |pid| pid_alive(&paths.proc_root, pid));
        }
        Err(e) => snap.warnings.push(chain(&e)),
    }
    let mut wtmp = Vec::new();
    for path in paths.wtmp.iter().filter(|p| p.exists()) {
        match read_utmp(path) {
            Ok(f) => {
                note_truncated(&mut snap.warnings, path, f.truncated_bytes);
                wtmp.extend(f.records);
            }
            Err(e) => snap.warnings.push(chain(&e)),
        }
    }
    snap.logins = logins(&wtmp);
    for path in paths.btmp.iter().filter(|p| p.exists()) {
        match read_utmp(path) {
            Ok(f) => {
                note_truncated(&mut snap.warnings, path, f.truncated_bytes);
                snap.failed_logins.extend(failed_logins(&f.records));
            }
            Err(e) => snap.warnings.push(chain(&e)),
        }
    }
    snap
}

fn note_truncated(warnings: &mut Vec<String>, path: &Path, bytes: usize) {
    if bytes > 0 {
        warnings.push(format!(
            "{}: last record truncated ({bytes} bytes skipped)",
            path.display()
        ));
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use portcullis_core::Time;

    use super::*;
    use crate::utmp::{UtmpKind, UtmpRecord, encode_record};

    fn rec(kind: UtmpKind, pid: i32, line: &str, user: &str, secs: i64) -> Vec<u8> {
        let time = Time::from_secs(secs);
        encode_record(&UtmpRecord::new(kind, pid, line, user, "192.0.2.9", time)).to_vec()
    }

    #[test]
    fn fixture_host() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("proc/net")).unwrap();
        std::fs::create_dir_all(p.join("proc/4242")).unwrap();
        std::fs::write(
            p.join("proc/net/tcp"),
            "  sl  local_address rem_address   st\n",
        )
        .unwrap();
        let mut utmp = rec(UtmpKind::UserProcess, 4242, "pts/0", "alice", 10);
        utmp.extend(rec(UtmpKind::UserProcess, 999_999, "pts/1", "stale", 11));
        std::fs::write(p.join("utmp"), &utmp).unwrap();
        let mut old = rec(UtmpKind::UserProcess, 7, "pts/3", "bob", 1);
        old.extend(rec(UtmpKind::DeadProcess, 7, "pts/3", "", 2));
        std::fs::write(p.join("wtmp.1"), &old).unwrap();
        let mut wtmp = rec(UtmpKind::UserProcess, 4242, "pts/0", "alice", 10);
        wtmp.extend([1, 2, 3]);
        std::fs::write(p.join("wtmp"), &wtmp).unwrap();
        std::fs::write(
            p.join("btmp"),
            rec(UtmpKind::LoginProcess, 8, "ssh:notty", "<x>", 5),
        )
        .unwrap();
        std::fs::write(p.join("sshd_config"), "Port 2222\n").unwrap();
        let paths = HostPaths {
            proc_root: p.join("proc"),
            utmp: p.join("utmp"),
            wtmp: vec![p.join("wtmp.1"), p.join("wtmp")],
            btmp: vec![p.join("btmp.1"), p.join("btmp")],
            sshd_config: p.join("sshd_config"),
        };
        let s = snapshot(&paths, None);
        assert_eq!(s.ports, [2222]);
        assert_eq!(s.sessions.len(), 1);
        assert_eq!(s.sessions[0].user, "alice");
        assert_eq!(
            s.logins.iter().map(|l| l.user.as_str()).collect::<Vec<_>>(),
            ["bob", "alice"]
        );
        assert_eq!(s.failed_logins.len(), 1);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("3 bytes skipped"));

        assert_eq!(snapshot(&paths, Some(&[22, 2200])).ports, [22, 2200]);
        std::fs::remove_file(p.join("utmp")).unwrap();
        std::fs::remove_file(p.join("sshd_config")).unwrap();
        let s = snapshot(&paths, None);
        assert_eq!(s.ports, [22]);
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("assuming port 22"));
        assert!(s.warnings[1].contains("utmp"));
    }

    #[test]
    fn live_host() {
        let s = snapshot(&HostPaths::default(), None);
        eprintln!(
            "live: ports {:?}, {} connection groups, {} sessions, {} logins, {} failed, warnings {:?}",
            s.ports,
            s.connections.len(),
            s.sessions.len(),
            s.logins.len(),
            s.failed_logins.len(),
            s.warnings
        );
        assert!(!s.ports.is_empty());
    }
}
