//! sshd's effective configuration, asked from sshd itself (`sshd -T`, and `sshd -T -C
//! user=…,host=…,addr=…` for what `Match` blocks make of one connection), its version, and
//! where in the config files a keyword is set, for `portcullis audit`.
//!
//! Key decision: the settings come from sshd's own parser (`-T`), never from ours, so
//! defaults, `Include`, first-value-wins and `Match` are exactly what the server does. Our
//! reader of the files ([`config_lines`]) only says *where* a keyword is written, so a fix
//! can name the line to change (sshd keeps the first value it reads: a line appended at the
//! end changes nothing).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::sshd_config::{expand_glob, strip_comment};

/// Where Debian installs sshd.
pub const SSHD_PATH: &str = "/usr/sbin/sshd";

/// Why sshd could not tell.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshdError {
    /// The program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran and refused (bad config, no host key, not root, …).
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed, at most 2000 bytes).
        stderr: String,
    },
}

/// sshd's version, from `sshd -V` (`OpenSSH_9.2p1 …`, on stderr).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SshdVersion {
    /// 9 of 9.2.
    pub major: u32,
    /// 2 of 9.2.
    pub minor: u32,
    /// The first line sshd printed.
    pub text: String,
}

impl SshdVersion {
    /// Whether it is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// The connection `sshd -T -C` evaluates `Match` blocks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionSpec {
    /// The user logging in.
    pub user: String,
    /// The client's address (also used as its host name: no DNS is asked).
    pub addr: IpAddr,
    /// The local port connected to (for `Match LocalPort`), if any.
    pub lport: Option<u16>,
}

impl ConnectionSpec {
    /// The `-C` argument; `None` when the user name cannot be written in it (a `,` or `=`
    /// or white space would split the list).
    pub fn arg(&self) -> Option<String> {
        if self.user.is_empty()
            || self
                .user
                .contains(|c: char| c == ',' || c == '=' || c.is_whitespace() || c.is_control())
        {
            return None;
        }
        let mut arg = format!("user={},host={},addr={}", self.user, self.addr, self.addr);
        if let Some(p) = self.lport {
            arg.push_str(&format!(",lport={p}"));
        }
        Some(arg)
    }
}

/// What `sshd -T` printed: lower-case keyword → its values, in order (keywords such as
/// `listenaddress` or `port` come several times).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EffectiveConfig {
    values: BTreeMap<String, Vec<String>>,
}

impl EffectiveConfig {
    /// The first value of `key` (lower case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key`'s value is `yes`.
    pub fn is_yes(&self, key: &str) -> bool {
        self.get(key) == Some("yes")
    }

    /// Set `key` to `value` (tests build configs with it).
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.to_string()]);
        self
    }

    /// Add a value to `key`.
    pub fn push(&mut self, key: &str, value: &str) -> &mut Self {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
        self
    }
}

/// Parse `sshd -T` output: `keyword value…` per line.
pub fn parse_sshd_t(text: &str) -> EffectiveConfig {
    let mut c = EffectiveConfig::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        c.values
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    c
}

fn run(mut cmd: Command) -> Result<std::process::Output, SshdError> {
    let program = PathBuf::from(cmd.get_program());
    cmd.stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| SshdError::Spawn { program, source })
}

fn command_text(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `sshd -T [-f config] [-C spec]`.
pub fn effective_config(
    sshd: &Path,
    config: Option<&Path>,
    conn: Option<&ConnectionSpec>,
) -> Result<EffectiveConfig, SshdError> {
    let mut cmd = Command::new(sshd);
    cmd.arg("-T");
    if let Some(c) = config {
        cmd.arg("-f").arg(c);
    }
    if let Some(arg) = conn.and_then(ConnectionSpec::arg) {
        cmd.arg("-C").arg(arg);
    }
    let text = command_text(&cmd);
    let out = run(cmd)?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.len() > 2000 {
            let mut cut = 2000;
            while !stderr.is_char_boundary(cut) {
                cut -= 1;
            }
            stderr.truncate(cut);
        }
        return Err(SshdError::Failed {
            command: text,
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok(parse_sshd_t(&String::from_utf8_lossy(&out.stdout)))
}

/// `sshd -V`: the version line. sshd before 7.x has no `-V` and prints its usage with the
/// version on stderr, which reads the same.
pub fn sshd_version(sshd: &Path) -> Result<SshdVersion, SshdError> {
    let mut cmd = Command::new(sshd);
    cmd.arg("-V");
    let text = command_text(&cmd);
    let out = run(cmd)?;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    parse_version(&all).ok_or_else(|| SshdError::Failed {
        command: text,
        status: out.status.to_string(),
        stderr: all.trim().chars().take(500).collect(),
    })
}

/// The version in `OpenSSH_9.2p1 Debian-2, OpenSSL …`.
pub fn parse_version(text: &str) -> Option<SshdVersion> {
    let line = text.lines().find(|l| l.contains("OpenSSH_"))?;
    let rest = &line[line.find("OpenSSH_")? + "OpenSSH_".len()..];
    let (major, rest) = rest.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(SshdVersion {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        text: line.trim().to_string(),
    })
}

/// One line of the config files that sets a keyword.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigLine {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The keyword, lower case.
    pub keyword: String,
    /// Its value as written.
    pub value: String,
    /// The `Match` line (its criteria) this line is under, if any.
    pub in_match: Option<String>,
}

impl ConfigLine {
    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Every setting line of the config at `path` and its `Include`s, in the order sshd reads
/// them (an `Include` is read where it stands). Unreadable included files are skipped: sshd
/// itself (`-T`) reports them. `Match` lines are returned too (keyword `match`).
pub fn config_lines(path: &Path) -> Vec<ConfigLine> {
    let mut out = Vec::new();
    let mut in_match = None;
    read_lines(path, 0, &mut in_match, &mut out);
    out
}

fn read_lines(path: &Path, depth: usize, in_match: &mut Option<String>, out: &mut Vec<ConfigLine>) {
    if depth > 16 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    // An included file starts outside any Match block only if it is included outside one.
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let split = line
            .find(|ch: char| ch.is_whitespace() || ch == '=')
            .unwrap_or(line.len());
        let (key, value) = line.split_at(split);
        let value = strip_comment(value.trim_start().trim_start_matches('=').trim());
        let key = key.to_ascii_lowercase();
        if key == "include" {
            for pattern in value.split_whitespace() {
                let pattern = Path::new(pattern);
                let full = if pattern.is_absolute() {
                    pattern.to_owned()
                } else {
                    // sshd resolves relative includes against /etc/ssh; the including
                    // file's directory is that for the live config and right for test trees.
                    path.parent().unwrap_or(Path::new("/")).join(pattern)
                };
                for file in expand_glob(&full) {
                    read_lines(&file, depth + 1, in_match, out);
                }
            }
            continue;
        }
        if key == "match" {
            *in_match = if value.eq_ignore_ascii_case("all") {
                None
            } else {
                Some(value.to_string())
            };
        }
        out.push(ConfigLine {
            file: path.to_owned(),
            line: i + 1,
            keyword: key,
            value: value.to_string(),
            in_match: in_match.clone(),
        });
    }
}

/// What a `Match` block was written for, to evaluate with `-C`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum MatchTarget {
    /// One address inside a `Match Address` pattern (a CIDR's first host, a wildcard's
    /// `*`/`?` read as `1`), with the pattern.
    Address(String, IpAddr),
    /// A `Match LocalPort` port.
    LocalPort(u16),
}

/// For each pattern of `Match … Address PATTERNS` and `Match … LocalPort PORTS` lines, what
/// to evaluate, with the `Match` line. Negated patterns are skipped.
pub fn match_targets(lines: &[ConfigLine]) -> Vec<(ConfigLine, MatchTarget)> {
    let mut out = Vec::new();
    for l in lines.iter().filter(|l| l.keyword == "match") {
        let words: Vec<&str> = l.value.split_whitespace().collect();
        for pair in words.windows(2) {
            let address = pair[0].eq_ignore_ascii_case("address");
            let port = pair[0].eq_ignore_ascii_case("localport");
            if !address && !port {
                continue;
            }
            for pat in pair[1].split(',').filter(|p| !p.starts_with('!')) {
                if address {
                    if let Some(a) = representative(pat) {
                        out.push((l.clone(), MatchTarget::Address(pat.to_string(), a)));
                    }
                } else if let Ok(p) = pat.parse::<u16>() {
                    out.push((l.clone(), MatchTarget::LocalPort(p)));
                }
            }
        }
    }
    out
}

fn representative(pattern: &str) -> Option<IpAddr> {
    if let Some((addr, len)) = pattern.split_once('/') {
        let addr: IpAddr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let net = ipnet::IpNet::new(addr, len).ok()?.trunc();
        let first = net.hosts().next().unwrap_or(net.addr());
        return Some(first);
    }
    let text: String = pattern
        .chars()
        .map(|c| if c == '*' || c == '?' { '1' } else { c })
        .collect();
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sshd_t() {
        let c = parse_sshd_t(
            "port 22\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\n\
             permitrootlogin without-password\nauthorizedkeysfile .ssh/authorized_keys .ssh/ak2\n",
        );
        assert_eq!(c.get("port"), Some("22"));
        assert_eq!(c.all("listenaddress").len(), 2);
        assert_eq!(c.get("permitrootlogin"), Some("without-password"));
        assert_eq!(
            c.get("authorizedkeysfile"),
            Some(".ssh/authorized_keys .ssh/ak2")
        );
        assert!(c.get("nothing").is_none());
    }

    #[test]
    fn versions() {
        let v =
            parse_version("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024\n").unwrap();
        assert_eq!((v.major, v.minor), (9, 2));
        assert!(!v.at_least(9, 8));
        assert!(
            parse_version("OpenSSH_10.0, OpenSSL")
                .unwrap()
                .at_least(9, 8)
        );
        assert!(parse_version("unknown option -- V\nusage: sshd").is_none());
    }

    #[test]
    fn spec_refuses_names_that_split() {
        let spec = |u: &str| ConnectionSpec {
            user: u.into(),
            addr: "203.0.113.9".parse().unwrap(),
            lport: None,
        };
        assert_eq!(
            spec("root").arg().unwrap(),
            "user=root,host=203.0.113.9,addr=203.0.113.9"
        );
        assert!(spec("a,user=root").arg().is_none());
        let with_port = ConnectionSpec {
            lport: Some(2222),
            ..spec("root")
        };
        assert!(with_port.arg().unwrap().ends_with(",lport=2222"));
        assert!(spec("a b").arg().is_none());
    }

    #[test]
    fn lines_and_match_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sshd_config.d")).unwrap();
        std::fs::write(
            d.join("sshd_config"),
            "Include sshd_config.d/*.conf\nPasswordAuthentication no # x\n\
             Match Address 192.0.2.0/24,!192.0.2.7,10.1.*.*\n  PasswordAuthentication yes\n\
             Match all\nMaxAuthTries 3\nMatch LocalPort 2222,!22 User x\n",
        )
        .unwrap();
        std::fs::write(
            d.join("sshd_config.d/50-cloud.conf"),
            "PasswordAuthentication=yes\n",
        )
        .unwrap();
        let lines = config_lines(&d.join("sshd_config"));
        let pa: Vec<(String, &str, bool)> = lines
            .iter()
            .filter(|l| l.keyword == "passwordauthentication")
            .map(|l| {
                (
                    l.file.file_name().unwrap().to_string_lossy().into_owned(),
                    l.value.as_str(),
                    l.in_match.is_some(),
                )
            })
            .collect();
        assert_eq!(
            pa,
            [
                ("50-cloud.conf".into(), "yes", false),
                ("sshd_config".into(), "no", false),
                ("sshd_config".into(), "yes", true),
            ]
        );
        let mat = lines.iter().find(|l| l.keyword == "maxauthtries").unwrap();
        assert_eq!((mat.line, mat.in_match.is_none()), (6, true));
        let targets: Vec<MatchTarget> = match_targets(&lines).into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            targets,
            [
                MatchTarget::Address("192.0.2.0/24".into(), "192.0.2.1".parse().unwrap()),
                MatchTarget::Address("10.1.*.*".into(), "10.1.1.1".parse().unwrap()),
                MatchTarget::LocalPort(2222),
            ]
        );
    }
}
