//! Which journal entries to believe: journald vouches for the sender (`_UID`, `_COMM`,
//! `_EXE`, `_SYSTEMD_UNIT` come from the kernel's view of the sending process; a sender
//! cannot set fields that start with `_`), never for what the sender says about itself
//! (`SYSLOG_IDENTIFIER`, `SYSLOG_PID`, `MESSAGE`). Any local user can run
//! `logger -t sshd "Failed password for root from X …"`: only the trusted fields tell that
//! entry from sshd's own.

use super::export::ExportEntry;

/// The OpenSSH programs that write sshd's log messages (9.8+ splits sshd into `sshd`,
/// `sshd-session` and `sshd-auth`).
pub const SSHD_PROGRAMS: &[&str] = &["sshd", "sshd-session", "sshd-auth"];

/// Who may send the entries a journal source delivers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum JournalSenders {
    /// Root only (`_UID=0`).
    Root,
    /// System accounts: `_UID` below 1000 (Debian's `UID_MIN`), so no login user.
    #[default]
    System,
    /// Anyone: no check (journals whose trusted fields were lost, e.g. rewritten by a
    /// relay). Stated in the configuration, never a default.
    Any,
}

/// The rule a journal source applies to each entry.
///
/// 1. The sender's `_UID` must be allowed by [`JournalSenders`] (an entry without `_UID`
///    is not vouched for and fails unless senders are [`JournalSenders::Any`]).
/// 2. An entry that claims to be sshd's (`SYSLOG_IDENTIFIER`, `_COMM` or `_EXE` one of
///    [`SSHD_PROGRAMS`])
///    must come from root, from a process that is one of those programs: its `_COMM` or the
///    file name of its `_EXE`. (`_COMM` alone is not proof: a process may rename itself;
///    root and the name together are.) Unless senders are [`JournalSenders::Any`].
/// 3. And not through an output stream (`_TRANSPORT=stdout`: sshd run with `-e`, logging to
///    stderr). There sshd escapes only what would upset a terminal (`VIS_SAFE`): a newline
///    in a user name goes out raw, journald starts a new entry at it, and the client writes
///    that entry whole (`Failed password for root from 203.0.113.66 …`, sent as sshd).
///    Through syslog(3) (`_TRANSPORT=syslog`, what sshd does without `-e`) every control
///    byte is escaped.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalTrust {
    /// Who may send entries at all.
    pub senders: JournalSenders,
}

/// Why an entry was not believed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// No `_UID`: journald did not vouch for the sender.
    NoSender,
    /// A sender the rule does not allow (a login user's `logger`).
    Sender(u32),
    /// It claims to be sshd's but was not sent by root's sshd.
    NotSshd,
    /// sshd's own installed binary run by this non-root user: the post-login process of a
    /// user's session (it logs that session's disconnect under the user's `_UID`) or a
    /// user's own sshd. Not a forgery — never counted as one nor warned about — and never an
    /// attack line on the system's sshd.
    UserSshd(u32),
    /// sshd's, but from its output stream (`sshd -e`), where the client decides where an
    /// entry starts.
    Stream,
}

impl Untrusted {
    /// Whether this says someone wrote what they are not (counted `untrusted`, warned).
    pub fn is_forgery(self) -> bool {
        !matches!(self, Untrusted::UserSshd(_))
    }
}

/// Directories OpenSSH's programs are installed in; only root can write there, and
/// journald records the resolved path of `_EXE` (a symlink's name never shows).
const SSHD_DIRS: &[&str] = &[
    "/usr/sbin/",
    "/usr/bin/",
    "/sbin/",
    "/usr/lib/openssh/",
    "/usr/libexec/openssh/",
    "/usr/libexec/",
];

/// `_EXE` is one of [`SSHD_PROGRAMS`] in one of [`SSHD_DIRS`].
fn is_installed_sshd(exe: &[u8]) -> bool {
    SSHD_DIRS
        .iter()
        .any(|d| exe.strip_prefix(d.as_bytes()).is_some_and(is_sshd_program))
}

/// The first UID of login users on Debian (`UID_MIN` in `/etc/login.defs`).
const FIRST_LOGIN_UID: u32 = 1000;

impl JournalTrust {
    /// Whether `entry` is believed, and why not.
    pub fn check(&self, entry: &ExportEntry) -> Result<(), Untrusted> {
        if self.senders == JournalSenders::Any {
            return Ok(());
        }
        let uid = entry
            .get("_UID")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(Untrusted::NoSender)?;
        if uid != 0 && entry.get("_EXE").is_some_and(is_installed_sshd) {
            return Err(Untrusted::UserSshd(uid));
        }
        let allowed = match self.senders {
            JournalSenders::Root => uid == 0,
            JournalSenders::System => uid < FIRST_LOGIN_UID,
            JournalSenders::Any => true,
        };
        if !allowed {
            return Err(Untrusted::Sender(uid));
        }
        // Looks like sshd's by what it says (the identifier) or by its process name (a
        // symlink named sshd, prctl): Fail2Ban's journalmatch selects `_COMM=sshd`, and its
        // regexes take any tag, so either must be root's sshd.
        let claims_sshd =
            entry.get("SYSLOG_IDENTIFIER").is_some_and(is_sshd_program) || sent_by_sshd(entry);
        if claims_sshd && !(uid == 0 && sent_by_sshd(entry)) {
            return Err(Untrusted::NotSshd);
        }
        if claims_sshd && entry.get("_TRANSPORT") == Some(b"stdout") {
            return Err(Untrusted::Stream);
        }
        Ok(())
    }
}

fn is_sshd_program(name: &[u8]) -> bool {
    SSHD_PROGRAMS.iter().any(|p| p.as_bytes() == name)
}

/// `_COMM` or the file name of `_EXE` is one of [`SSHD_PROGRAMS`].
fn sent_by_sshd(entry: &ExportEntry) -> bool {
    let comm = entry.get("_COMM").is_some_and(is_sshd_program);
    let exe = entry.get("_EXE").is_some_and(|exe| {
        let name = exe.rsplit(|&c| c == b'/').next().unwrap_or(exe);
        is_sshd_program(name)
    });
    comm || exe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> ExportEntry {
        ExportEntry {
            fields: fields
                .iter()
                .map(|(k, v)| (Box::from(*k), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    const SSHD: &[(&str, &str)] = &[
        ("SYSLOG_IDENTIFIER", "sshd-session"),
        ("_UID", "0"),
        ("_COMM", "sshd-session"),
        ("_EXE", "/usr/lib/openssh/sshd-session"),
        ("_SYSTEMD_UNIT", "ssh.service"),
    ];

    #[test]
    fn sshd_itself_is_believed() {
        let t = JournalTrust::default();
        assert_eq!(t.check(&entry(SSHD)), Ok(()));
        // Older OpenSSH: one binary; a renamed process of the binary still counts by _EXE.
        let e = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "0"),
            ("_COMM", "sshd"),
            ("_EXE", "/usr/sbin/sshd"),
        ]);
        assert_eq!(t.check(&e), Ok(()));
        let e = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "0"),
            ("_COMM", "sshd: root [priv]"),
            ("_EXE", "/usr/sbin/sshd"),
        ]);
        assert_eq!(t.check(&e), Ok(()));
    }

    #[test]
    fn a_users_logger_is_not_sshd() {
        let t = JournalTrust::default();
        let logger = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "1000"),
            ("_COMM", "logger"),
            ("_EXE", "/usr/bin/logger"),
            ("_SYSTEMD_UNIT", "session-3.scope"),
        ]);
        assert_eq!(t.check(&logger), Err(Untrusted::Sender(1000)));
        // A copy of logger named sshd, run by the user: _COMM says sshd, _UID does not.
        let renamed = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "1000"),
            ("_COMM", "sshd"),
            ("_EXE", "/home/eve/sshd"),
        ]);
        assert_eq!(t.check(&renamed), Err(Untrusted::Sender(1000)));
        // A system account (a web application's www-data) is not sshd either.
        let www = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "33"),
            ("_COMM", "logger"),
        ]);
        assert_eq!(t.check(&www), Err(Untrusted::NotSshd));
        // Root's logger claiming sshd: not sent by sshd.
        let root_logger = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "0"),
            ("_COMM", "logger"),
            ("_EXE", "/usr/bin/logger"),
        ]);
        assert_eq!(t.check(&root_logger), Err(Untrusted::NotSshd));
        // No trusted fields at all (a forged export stream, a relay): not vouched for.
        let bare = entry(&[("SYSLOG_IDENTIFIER", "sshd")]);
        assert_eq!(t.check(&bare), Err(Untrusted::NoSender));
    }

    /// `sshd -D -e` (OpenSSH 9.2, in a network namespace) for the user name
    /// `x\nFailed password for root from 203.0.113.66 port 22 ssh2\ny` wrote
    /// `Failed password for invalid user x`, then that line raw, then `y from 192.0.2.2 port
    /// 52670 ssh2\r`: journald makes each an entry, all with sshd's trusted fields.
    #[test]
    fn sshds_output_stream_is_not_believed() {
        let t = JournalTrust::default();
        let mut fields = SSHD.to_vec();
        fields.push(("_TRANSPORT", "syslog"));
        assert_eq!(t.check(&entry(&fields)), Ok(()));
        fields.pop();
        fields.push(("_TRANSPORT", "stdout"));
        assert_eq!(t.check(&entry(&fields)), Err(Untrusted::Stream));
        // Another service's stream keeps the sender rule only.
        let app = entry(&[
            ("SYSLOG_IDENTIFIER", "myapp"),
            ("_UID", "108"),
            ("_COMM", "myapp"),
            ("_TRANSPORT", "stdout"),
        ]);
        assert_eq!(t.check(&app), Ok(()));
    }

    #[test]
    fn a_process_named_sshd_is_sshd_only_if_it_is_roots() {
        let t = JournalTrust::default();
        // www-data runs logger through a symlink named sshd: _COMM says sshd, the
        // identifier is its own. Fail2Ban's `_COMM=sshd` journalmatch would select it.
        let www = entry(&[
            ("SYSLOG_IDENTIFIER", "www-data"),
            ("_UID", "33"),
            ("_COMM", "sshd"),
            ("_EXE", "/usr/bin/logger"),
            ("_SYSTEMD_UNIT", "apache2.service"),
        ]);
        assert_eq!(t.check(&www), Err(Untrusted::NotSshd));
    }

    #[test]
    fn a_sessions_own_sshd_process_is_told_apart_from_a_forgery() {
        let t = JournalTrust::default();
        let session = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "1000"),
            ("_COMM", "sshd"),
            ("_EXE", "/usr/sbin/sshd"),
        ]);
        assert_eq!(t.check(&session), Err(Untrusted::UserSshd(1000)));
        assert!(!Untrusted::UserSshd(1000).is_forgery());
        // The same name from the user's home is a forgery.
        let copy = entry(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_UID", "1000"),
            ("_COMM", "sshd"),
            ("_EXE", "/home/eve/bin/sshd"),
        ]);
        assert_eq!(t.check(&copy), Err(Untrusted::Sender(1000)));
        assert!(Untrusted::Sender(1000).is_forgery());
    }

    #[test]
    fn other_services_need_a_system_sender_and_any_turns_checks_off() {
        let dovecot = |uid: &str| {
            entry(&[
                ("SYSLOG_IDENTIFIER", "dovecot"),
                ("_UID", uid),
                ("_COMM", "log"),
            ])
        };
        let system = JournalTrust::default();
        assert_eq!(system.check(&dovecot("0")), Ok(()));
        assert_eq!(system.check(&dovecot("108")), Ok(()));
        assert_eq!(system.check(&dovecot("1000")), Err(Untrusted::Sender(1000)));
        let root = JournalTrust {
            senders: JournalSenders::Root,
        };
        assert_eq!(root.check(&dovecot("108")), Err(Untrusted::Sender(108)));
        let any = JournalTrust {
            senders: JournalSenders::Any,
        };
        assert_eq!(any.check(&entry(&[("SYSLOG_IDENTIFIER", "sshd")])), Ok(()));
    }
}
