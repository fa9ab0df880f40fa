//! Local accounts from `/etc/passwd` and `/etc/shadow`, for `portcullis audit`: who could log
//! in with a password.
//!
//! The password hash itself is never kept: a shadow entry is classified at parse time
//! ([`PasswordState`]) and only the class leaves this module. Malformed lines (and NIS `+`/`-`
//! entries) are skipped, as the C library does for lines it cannot split.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where the accounts live.
pub const PASSWD_PATH: &str = "/etc/passwd";
/// Where the password hashes live (root-readable only).
pub const SHADOW_PATH: &str = "/etc/shadow";

/// Why an account file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}")]
pub struct AccountsError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// One `/etc/passwd` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell (empty means `/bin/sh` to login programs).
    pub shell: String,
}

impl PasswdEntry {
    /// Whether the shell lets someone in: not `nologin`, `false` or `true` (empty is `/bin/sh`).
    pub fn shell_usable(&self) -> bool {
        let base = self.shell.rsplit('/').next().unwrap_or("");
        !matches!(
            base,
            "nologin" | "false" | "true" | "sync" | "halt" | "shutdown"
        )
    }
}

/// What a shadow password field allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordState {
    /// A hash: a password logs in.
    Usable,
    /// Empty: no password at all is needed where empty passwords are allowed.
    Empty,
    /// Starts with `!` or `*` (`passwd -l`, `*` for system accounts): no password matches.
    Locked,
}

/// One `/etc/shadow` line, without the hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShadowEntry {
    /// Login name.
    pub name: String,
    /// What the password field allows.
    pub password: PasswordState,
    /// Day of the last change (days since 1970-01-01); `Some(0)` forces a change at login.
    pub last_change: Option<i64>,
    /// Maximum password age in days.
    pub max_days: Option<i64>,
    /// Days after the password expired during which it still logs in (to be changed).
    pub inactive_days: Option<i64>,
    /// Day the account expires (days since 1970-01-01).
    pub expire_day: Option<i64>,
}

impl ShadowEntry {
    /// Whether the account itself has expired on `today` (days since the epoch).
    pub fn account_expired(&self, today: i64) -> bool {
        self.expire_day.is_some_and(|d| today >= d)
    }

    /// Whether the password has expired and its grace (inactive) period is over on `today`,
    /// so the password no longer logs in. Without an inactive period an expired password
    /// still logs in (and must be changed at once).
    pub fn password_dead(&self, today: i64) -> bool {
        match (self.last_change, self.max_days, self.inactive_days) {
            (Some(last), Some(max), Some(inactive)) if last > 0 && max < 99_999 => {
                today >= last.saturating_add(max).saturating_add(inactive)
            }
            _ => false,
        }
    }
}

/// The password state of a shadow field.
pub fn classify_password(field: &str) -> PasswordState {
    if field.is_empty() {
        PasswordState::Empty
    } else if field.starts_with('!') || field.starts_with('*') {
        PasswordState::Locked
    } else {
        PasswordState::Usable
    }
}

/// Parse `/etc/passwd` text.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            if line.starts_with(['+', '-', '#']) {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 7 || f[0].is_empty() {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: PathBuf::from(f[5]),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parse `/etc/shadow` text (the hashes are classified and dropped).
pub fn parse_shadow(text: &str) -> Vec<ShadowEntry> {
    let num = |s: &str| s.parse::<i64>().ok();
    text.lines()
        .filter_map(|line| {
            if line.starts_with(['+', '-', '#']) {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 8 || f[0].is_empty() {
                return None;
            }
            Some(ShadowEntry {
                name: f[0].to_string(),
                password: classify_password(f[1]),
                last_change: num(f[2]),
                max_days: num(f[4]),
                inactive_days: num(f[6]),
                expire_day: num(f[7]),
            })
        })
        .collect()
}

fn read(path: &Path) -> Result<String, AccountsError> {
    std::fs::read_to_string(path).map_err(|source| AccountsError {
        path: path.to_owned(),
        source,
    })
}

/// Read and parse a passwd file.
pub fn read_passwd(path: &Path) -> Result<Vec<PasswdEntry>, AccountsError> {
    Ok(parse_passwd(&read(path)?))
}

/// Read and parse a shadow file.
pub fn read_shadow(path: &Path) -> Result<Vec<ShadowEntry>, AccountsError> {
    Ok(parse_shadow(&read(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n\
             daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             +nisuser::::::\n\
             broken:x:zz:0::/:/bin/sh\n\
             short:x:1\n\
             alice:x:1000:1000:Alice,,,:/home/alice:\n",
        );
        let names: Vec<&str> = p.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "alice"]);
        assert!(p[0].shell_usable());
        assert!(!p[1].shell_usable());
        assert!(p[2].shell_usable(), "empty shell is /bin/sh");
        assert_eq!(p[2].home, Path::new("/home/alice"));
    }

    #[test]
    fn shadow_states_and_ageing() {
        let s = parse_shadow(
            "root:$y$j9T$abc$def:20000:0:99999:7:::\n\
             daemon:*:20000:0:99999:7:::\n\
             locked:!$6$x$y:20000:0:99999:7:::\n\
             nopw::20000:0:99999:7:::\n\
             expired:$6$a$b:20000:0:99999:7::20100:\n\
             aged:$6$a$b:20000:0:30:7:5::\n",
        );
        let states: Vec<PasswordState> = s.iter().map(|e| e.password).collect();
        use PasswordState::*;
        assert_eq!(states, [Usable, Locked, Locked, Empty, Usable, Usable]);
        assert!(!s[4].account_expired(20099));
        assert!(s[4].account_expired(20100));
        assert!(!s[5].password_dead(20034));
        assert!(s[5].password_dead(20035));
        assert!(!s[0].password_dead(90000), "99999 = never expires");
    }
}
