//! The TCP ports sshd listens on, from `sshd_config`.
//!
//! `Port N` lines add ports; `ListenAddress host:port` (or `[v6]:port`) listens on that port
//! only, and a `ListenAddress` without a port uses every `Port`. With no `Port` line the port
//! is 22. `Include` (with `*`/`?` globs in the file name, relative paths resolved against the
//! including file's directory, as `/etc/ssh` is for sshd) is followed up to 16 levels deep.
//! `Match` blocks cannot set ports, so they need no special handling.

use std::io;
use std::path::{Path, PathBuf};

/// Where OpenSSH's server config lives.
pub const SSHD_CONFIG_PATH: &str = "/etc/ssh/sshd_config";

/// Why the SSH ports could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshPortsError {
    /// A config file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A `Port` or `ListenAddress` value is not a port.
    #[error("{path}:{line}: bad port in {text:?}")]
    BadPort {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// `Include` nested too deep (a loop).
    #[error("{path}: Include nested deeper than 16 levels")]
    IncludeDepth {
        /// The file at which the limit was hit.
        path: PathBuf,
    },
}

#[derive(Default)]
struct Collected {
    ports: Vec<u16>,
    /// Ports given with a ListenAddress.
    listen_ports: Vec<u16>,
    /// A ListenAddress without a port (uses the Port values).
    listen_without_port: bool,
    any_listen: bool,
}

/// The ports sshd listens on according to the config at `path` and its includes: sorted,
/// unique, never empty (22 by default).
pub fn ssh_ports(path: &Path) -> Result<Vec<u16>, SshPortsError> {
    let mut c = Collected::default();
    read_file(path, 0, &mut c)?;
    Ok(finish(c))
}

/// The same over one config text (no includes are followed); `path` only names errors.
pub fn parse_ssh_ports(text: &str, path: &Path) -> Result<Vec<u16>, SshPortsError> {
    let mut c = Collected::default();
    parse_text(text, path, 0, &mut c)?;
    Ok(finish(c))
}

fn finish(c: Collected) -> Vec<u16> {
    let ports = if c.ports.is_empty() {
        vec![22]
    } else {
        c.ports
    };
    let mut out = c.listen_ports;
    if !c.any_listen || c.listen_without_port {
        out.extend(ports);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn read_file(path: &Path, depth: usize, c: &mut Collected) -> Result<(), SshPortsError> {
    if depth > 16 {
        return Err(SshPortsError::IncludeDepth {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| SshPortsError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_text(&text, path, depth + 1, c)
}

fn parse_text(
    text: &str,
    path: &Path,
    depth: usize,
    c: &mut Collected,
) -> Result<(), SshPortsError> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // sshd accepts `Keyword value`, `Keyword=value` and `Keyword = value`.
        let split = line
            .find(|ch: char| ch.is_whitespace() || ch == '=')
            .unwrap_or(line.len());
        let (key, value) = line.split_at(split);
        let value = value.trim_start().trim_start_matches('=').trim();
        let value = strip_comment(value);
        let bad = || SshPortsError::BadPort {
            path: path.to_owned(),
            line: i + 1,
            text: raw.to_owned(),
        };
        match key.to_ascii_lowercase().as_str() {
            "port" => c.ports.push(parse_port(value).ok_or_else(bad)?),
            "listenaddress" => {
                c.any_listen = true;
                // `ListenAddress addr [rdomain name]`: only the first word is the address.
                let addr = value.split_whitespace().next().unwrap_or("");
                match listen_port(addr) {
                    Ok(Some(p)) => c.listen_ports.push(p),
                    Ok(None) => c.listen_without_port = true,
                    Err(()) => return Err(bad()),
                }
            }
            "include" if depth > 0 => {
                for pattern in value.split_whitespace() {
                    let pattern = Path::new(pattern);
                    let full = if pattern.is_absolute() {
                        pattern.to_owned()
                    } else {
                        path.parent().unwrap_or(Path::new("/")).join(pattern)
                    };
                    for file in expand_glob(&full) {
                        read_file(&file, depth, c)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn strip_comment(value: &str) -> &str {
    match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// The port of a ListenAddress value: `host:port`, `[v6]:port`, or none for `host`, `v6`.
fn listen_port(addr: &str) -> Result<Option<u16>, ()> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (_, after) = rest.split_once(']').ok_or(())?;
        return match after.strip_prefix(':') {
            Some(p) => parse_port(p).map(Some).ok_or(()),
            None => Ok(None),
        };
    }
    match addr.matches(':').count() {
        1 => {
            let (_, p) = addr.split_once(':').ok_or(())?;
            parse_port(p).map(Some).ok_or(())
        }
        // Bare IPv6 (several colons) or a host without a port.
        _ => Ok(None),
    }
}

/// Files matching `pattern`, whose last component may hold `*` and `?`; sorted, as glob(3)
/// returns them. A pattern without wildcards is returned as is if the file exists.
pub(crate) fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| !n.starts_with('.') && wildcard(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn wildcard(pat: &[u8], text: &[u8]) -> bool {
    match (pat.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pat[1..], text) || (!text.is_empty() && wildcard(pat, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pat[1..], &text[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&pat[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> Vec<u16> {
        parse_ssh_ports(text, Path::new("t")).unwrap()
    }

    #[test]
    fn default_and_port_lines() {
        assert_eq!(ports(""), [22]);
        assert_eq!(ports("#Port 2222\n"), [22]);
        assert_eq!(
            ports("Port 2222\nport=2200\nPORT = 22 # old\n"),
            [22, 2200, 2222]
        );
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(ports("ListenAddress 192.0.2.1:2022\n"), [2022]);
        assert_eq!(ports("Port 2200\nListenAddress 192.0.2.1\n"), [2200]);
        assert_eq!(
            ports("Port 2200\nListenAddress [2001:db8::1]:3022\nListenAddress 2001:db8::2\n"),
            [2200, 3022]
        );
        assert_eq!(
            ports("ListenAddress [2001:db8::1]:3022 rdomain blue\n"),
            [3022]
        );
        assert_eq!(ports("ListenAddress 0.0.0.0\nListenAddress ::\n"), [22]);
    }

    #[test]
    fn bad_ports_are_errors() {
        for text in [
            "Port ssh\n",
            "Port 0\n",
            "Port 70000\n",
            "ListenAddress 192.0.2.1:x\n",
        ] {
            let err = parse_ssh_ports(text, Path::new("cfg")).unwrap_err();
            assert!(err.to_string().starts_with("cfg:1: bad port"), "{err}");
        }
    }

    #[test]
    fn includes_with_globs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sshd_config.d")).unwrap();
        std::fs::write(
            d.join("sshd_config"),
            "Include sshd_config.d/*.conf\nInclude /nonexistent/*.conf\nPort 2222\n",
        )
        .unwrap();
        std::fs::write(d.join("sshd_config.d/10-extra.conf"), "Port 2200\n").unwrap();
        std::fs::write(
            d.join("sshd_config.d/20-listen.conf"),
            "ListenAddress 192.0.2.1\n",
        )
        .unwrap();
        std::fs::write(d.join("sshd_config.d/ignored.txt"), "Port 9999\n").unwrap();
        assert_eq!(ssh_ports(&d.join("sshd_config")).unwrap(), [2200, 2222]);

        std::fs::write(d.join("loop"), "Include loop\n").unwrap();
        assert!(matches!(
            ssh_ports(&d.join("loop")),
            Err(SshPortsError::IncludeDepth { .. })
        ));
        assert!(matches!(
            ssh_ports(&d.join("missing")),
            Err(SshPortsError::Io { .. })
        ));
    }

    #[test]
    fn globbing() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(wildcard(b"?0-*", b"10-x"));
        assert!(!wildcard(b"*.conf", b"a.conf.bak"));
        assert!(wildcard(b"*", b""));
    }

    #[test]
    fn live_config_if_present() {
        let path = Path::new("/etc/ssh/sshd_config");
        if path.exists() {
            let p = ssh_ports(path).unwrap();
            eprintln!("live sshd ports: {p:?}");
            assert!(!p.is_empty());
        }
    }
}
