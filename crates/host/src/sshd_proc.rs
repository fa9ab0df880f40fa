//! sshd processes and what their titles say about each connection.
//!
//! sshd renames its processes (`setproctitle`) as a connection advances, which `/proc/PID/cmdline`
//! shows:
//!
//! | title | stage |
//! |---|---|
//! | `sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups` | the listener |
//! | `sshd: [accepted]`, `sshd: [net]`, `sshd: unknown [priv]`, `sshd: root [net]`, `sshd: root [preauth]` | before authentication |
//! | `sshd: bob`, `sshd: bob@pts/2`, `sshd: bob@notty` | authenticated |
//!
//! `user [priv]` is the privileged monitor: it keeps that title after the user got in, so a
//! connection counts as authenticated when any process holding its socket has an
//! authenticated title. OpenSSH 9.8+ runs sessions as `sshd-session` (and 10.0+ pre-auth as
//! `sshd-auth`) with the same title shapes.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What an sshd process is doing, from its title.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum SshdRole {
    /// The daemon accepting connections.
    Listener,
    /// Working for a connection that has not authenticated yet.
    PreAuth {
        /// The user name asked for, when the title shows one (`unknown` becomes `None`).
        user: Option<String>,
    },
    /// Working for an authenticated user.
    Session {
        /// The logged-in user.
        user: String,
        /// The terminal(s) (`pts/2`, or `pts/1,pts/3` with several); `None` for `notty` or
        /// before a session channel is opened.
        tty: Option<String>,
    },
    /// An sshd title we do not recognise; kept rather than guessed.
    Other,
}

/// One sshd process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdProcess {
    /// Process id.
    pub pid: u32,
    /// The title (cmdline up to its first NUL). Contains a user name: display escaped.
    pub title: String,
    /// What the title says.
    pub role: SshdRole,
    /// Inodes of the sockets among its open fds: the join key with `/proc/net/tcp`.
    pub socket_inodes: Vec<u64>,
}

/// Why sshd processes could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshdTitleError {
    /// The proc root could not be listed.
    #[error("cannot list {path}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

const PREFIXES: [&str; 3] = ["sshd: ", "sshd-session: ", "sshd-auth: "];

/// Classify a process title; `None` when it is not an sshd process.
pub fn classify_title(title: &str) -> Option<SshdRole> {
    let title = title.trim_end_matches([' ', '\0']);
    let Some(rest) = PREFIXES.iter().find_map(|p| title.strip_prefix(p)) else {
        // No title set: the argv of a freshly started daemon or session binary.
        let argv0 = title.split(' ').next().unwrap_or("");
        let base = argv0.rsplit('/').next().unwrap_or(argv0);
        return match base {
            "sshd" => Some(SshdRole::Listener),
            "sshd-session" | "sshd-auth" => Some(SshdRole::PreAuth { user: None }),
            _ => None,
        };
    };
    let rest = rest.trim();
    if rest.starts_with('/') || rest.contains("[listener]") {
        return Some(SshdRole::Listener);
    }
    for tag in ["[priv]", "[net]", "[preauth]", "[accepted]"] {
        if let Some(user) = rest.strip_suffix(tag) {
            let user = user.trim();
            let user = (!user.is_empty() && user != "unknown").then(|| user.to_owned());
            return Some(SshdRole::PreAuth { user });
        }
    }
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains('[') {
        return Some(SshdRole::Other);
    }
    Some(match rest.rsplit_once('@') {
        Some((user, tty)) => SshdRole::Session {
            user: user.to_owned(),
            tty: (tty != "notty" && !tty.is_empty()).then(|| tty.to_owned()),
        },
        None => SshdRole::Session {
            user: rest.to_owned(),
            tty: None,
        },
    })
}

/// The title of a process from its `cmdline` bytes: up to the first NUL (sshd pads the
/// rewritten argv area with NULs), invalid UTF-8 replaced.
pub fn title_from_cmdline(cmdline: &[u8]) -> String {
    let end = cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(cmdline.len());
    String::from_utf8_lossy(&cmdline[..end])
        .trim_end()
        .to_owned()
}

/// Socket inodes among the fds in `fd_dir` (`/proc/PID/fd`); unreadable entries are skipped
/// (a process may exit or close fds while we look).
pub fn socket_inodes(fd_dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(fd_dir) else {
        return Vec::new();
    };
    let mut out: Vec<u64> = entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every sshd process under `proc_root` (normally `/proc`), with its role and sockets.
/// Processes that vanish while we read are skipped.
pub fn sshd_processes(proc_root: &Path) -> Result<Vec<SshdProcess>, SshdTitleError> {
    let entries = std::fs::read_dir(proc_root).map_err(|source| SshdTitleError::Io {
        path: proc_root.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let title = title_from_cmdline(&cmdline);
        let Some(role) = classify_title(&title) else {
            continue;
        };
        out.push(SshdProcess {
            pid,
            title,
            socket_inodes: socket_inodes(&dir.join("fd")),
            role,
        });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(user: Option<&str>) -> Option<SshdRole> {
        Some(SshdRole::PreAuth {
            user: user.map(str::to_owned),
        })
    }

    fn session(user: &str, tty: Option<&str>) -> Option<SshdRole> {
        Some(SshdRole::Session {
            user: user.into(),
            tty: tty.map(str::to_owned),
        })
    }

    #[test]
    fn titles() {
        let cases = [
            ("sshd: bob@pts/2", session("bob", Some("pts/2"))),
            ("sshd: bob@pts/1,pts/3", session("bob", Some("pts/1,pts/3"))),
            ("sshd: bob@notty", session("bob", None)),
            ("sshd: root", session("root", None)),
            ("sshd-session: alice@pts/0", session("alice", Some("pts/0"))),
            ("sshd: bob [priv]", pre(Some("bob"))),
            ("sshd: unknown [priv]", pre(None)),
            ("sshd: root [net]", pre(Some("root"))),
            ("sshd: unknown [net]", pre(None)),
            ("sshd: [net]", pre(None)),
            ("sshd: [accepted]", pre(None)),
            ("sshd: root [preauth]", pre(Some("root"))),
            ("sshd-session: root [priv]", pre(Some("root"))),
            ("sshd-session: [net]", pre(None)),
            ("sshd-auth: admin [net]", pre(Some("admin"))),
            ("/usr/lib/openssh/sshd-session -R", pre(None)),
            (
                "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                Some(SshdRole::Listener),
            ),
            ("/usr/sbin/sshd -D", Some(SshdRole::Listener)),
            ("sshd: something odd here", Some(SshdRole::Other)),
            ("sshd:", None),
            ("bash", None),
            ("sshdx: bob@pts/1", None),
            ("/usr/bin/sshd-keygen", None),
        ];
        for (title, want) in cases {
            assert_eq!(classify_title(title), want, "{title:?}");
        }
    }

    #[test]
    fn cmdline_title_stops_at_nul() {
        assert_eq!(
            title_from_cmdline(b"sshd: bob@pts/2\0\0\0\0"),
            "sshd: bob@pts/2"
        );
        assert_eq!(
            title_from_cmdline(b"/usr/sbin/sshd\0-D\0"),
            "/usr/sbin/sshd"
        );
        assert_eq!(
            title_from_cmdline(b"sshd: root [priv]   "),
            "sshd: root [priv]"
        );
    }

    #[test]
    fn fake_proc_tree() {
        let root = tempfile::tempdir().unwrap();
        let mk = |pid: &str, cmdline: &[u8], sockets: &[u64]| {
            let dir = root.path().join(pid);
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
            for (i, s) in sockets.iter().enumerate() {
                std::os::unix::fs::symlink(
                    format!("socket:[{s}]"),
                    dir.join("fd").join(i.to_string()),
                )
                .unwrap();
            }
            std::os::unix::fs::symlink("/dev/null", dir.join("fd").join("99")).unwrap();
        };
        mk(
            "100",
            b"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups\0",
            &[5],
        );
        mk("200", b"sshd: bob [priv]\0\0\0", &[7, 7]);
        mk("201", b"sshd: bob@pts/0\0", &[7]);
        mk("300", b"bash\0-l\0", &[9]);
        std::fs::create_dir_all(root.path().join("self")).unwrap();
        std::fs::create_dir_all(root.path().join("net")).unwrap();
        let procs = sshd_processes(root.path()).unwrap();
        assert_eq!(
            procs.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [100, 200, 201]
        );
        assert_eq!(procs[1].socket_inodes, [7]);
        assert_eq!(procs[0].role, SshdRole::Listener);
        assert_eq!(procs[2].role, session("bob", Some("pts/0")).unwrap());
    }

    #[test]
    fn live_proc_lists_without_error() {
        let procs = sshd_processes(Path::new("/proc")).unwrap();
        eprintln!("{} sshd processes visible", procs.len());
    }
}
