//! Hand-written parsers for the hottest sshd messages (the few forms that make up most of
//! an attacked server's log), each exactly equivalent to one built-in rule's regex.
//!
//! A parser is attached to a rule only when the rule's regex text is, byte for byte, the one
//! the parser was written for ([`Form::for_source`]); an edited filter simply runs its regex.
//! Each parser answers [`Parsed::Match`] with the spans the regex would capture,
//! [`Parsed::NoMatch`] only when no parse can exist (the fixed head is missing, or, the
//! parse being forced from the end as below, the fixed tail, port or address is), and
//! [`Parsed::Unknown`] for anything else it is not sure of: then the regex runs. The parser
//! sits on the [`Rule`](super::Rule), so every engine's `Filter<P>` asks it the same way.
//!
//! Why the spans are the regex's: every form is anchored at both ends and ends in fixed text
//! after the address (`from ADDR port N ssh2`, `ADDR port N [preauth]`, `rhost=ADDR`). The
//! address class never holds a space, so, read from the end, the fixed tail, the port digits
//! and the address's own space-free token are all forced: there is exactly one place the
//! address can be, whatever the (attacker-chosen, greedy `.*`) user name before it holds.
//! The user is what lies between the fixed head and the fixed text before the address. The
//! optional alternatives of a form (a port or not, a key suffix or not) exclude each other at
//! the end of the line (a port is digits, an address never is), so no second parse exists.
//! `crates/core/tests/hand_parsers.rs` checks every answer against the regex on generated
//! hostile lines and on the corpora.

use super::compile::{HOST_REGEX, PORT_REGEX, USER_REGEX};

/// What a parser found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The regex matches, with these spans.
    Match(Spans),
    /// The regex cannot match.
    NoMatch,
    /// Not sure: run the regex.
    Unknown,
}

/// Byte spans of the named groups a form has.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Spans {
    /// `<HOST>`.
    pub host: (usize, usize),
    /// `<USER>`, when the form has one and it took part.
    pub user: Option<(usize, usize)>,
    /// `(?P<method>…)`, when the form has one.
    pub method: Option<(usize, usize)>,
}

/// The forms with a hand-written parser.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// `Failed METHOD for [invalid user ]USER from ADDR port N ssh2` (without a key suffix).
    Failed {
        /// The methods the rule's alternation accepts.
        methods: &'static [&'static str],
        /// The rule's fixed `invalid user ` after `for `.
        invalid_user: bool,
    },
    /// `pam_unix(SERVICE:auth): authentication failure; logname=… rhost=ADDR[  user=USER]`.
    PamAuthFailure,
    /// `Invalid user USER from ADDR[ port N]`.
    InvalidUser,
    /// `HEAD (authenticating|invalid) user USER ADDR [port N ][preauth]` (`with_user`) or
    /// `HEAD ADDR [port N ][preauth]`, for the `Connection closed/reset by` and
    /// `Disconnected from` heads.
    Preauth {
        /// The fixed heads (`Connection closed by `, …).
        heads: &'static [&'static str],
        /// The rule names a user.
        with_user: bool,
    },
    /// `[error: ]PAM: Authentication failure for [illegal user ]USER from ADDR`.
    PamError {
        /// The rule's fixed `illegal user ` after `for `.
        illegal_user: bool,
    },
    /// `[error: ]maximum authentication attempts exceeded for [invalid user ]USER from ADDR
    /// port N ssh2[ [preauth]]`.
    MaxAuthTries {
        /// The rule's fixed `invalid user ` after `for `.
        invalid_user: bool,
    },
}

const AUTH_METHODS: &[&str] = &[
    "password",
    "publickey",
    "keyboard-interactive",
    "keyboard-interactive/pam",
    "hostbased",
    "gssapi-with-mic",
];
const KEY_METHODS: &[&str] = &["publickey", "hostbased"];
const CLOSED: &[&str] = &["Connection closed by ", "Connection reset by "];
const DISCONNECTED: &[&str] = &["Disconnected from "];

/// The built-in rule texts (`crates/core/filters/sshd.toml`) each form was written for.
const SOURCES: &[(&str, Form)] = &[
    (
        r"^Failed (?P<method>p(?:assword|ublickey)|keyboard-interactive(?:/pam)?|hostbased|gssapi-with-mic) for invalid user <USER> from <HOST> port <PORT> ssh2(?:: [A-Z0-9-]+ [A-Za-z0-9+/=:]+)?$",
        Form::Failed {
            methods: AUTH_METHODS,
            invalid_user: true,
        },
    ),
    (
        r"^Failed (?P<method>publickey|hostbased) for <USER> from <HOST> port <PORT> ssh2(?:: [A-Z0-9-]+ [A-Za-z0-9+/=:]+)?$",
        Form::Failed {
            methods: KEY_METHODS,
            invalid_user: false,
        },
    ),
    (
        r"^Failed (?P<method>p(?:assword|ublickey)|keyboard-interactive(?:/pam)?|hostbased|gssapi-with-mic) for <USER> from <HOST> port <PORT> ssh2(?:: [A-Z0-9-]+ [A-Za-z0-9+/=:]+)?$",
        Form::Failed {
            methods: AUTH_METHODS,
            invalid_user: false,
        },
    ),
    (
        r"^pam_(?:unix|sss)\([a-z0-9_.-]+:auth\): authentication failure; logname=\S* uid=[0-9]* euid=[0-9]* tty=\S* ruser=\S* rhost=<HOST>(?: +user=<USER>)?$",
        Form::PamAuthFailure,
    ),
    (
        r"^Invalid user <USER> from <HOST>(?: port <PORT>)?$",
        Form::InvalidUser,
    ),
    (
        r"^Connection (?:closed|reset) by (?:authenticating|invalid) user <USER> <HOST> (?:port <PORT> )?\[preauth\]$",
        Form::Preauth {
            heads: CLOSED,
            with_user: true,
        },
    ),
    (
        r"^Connection (?:closed|reset) by <HOST> (?:port <PORT> )?\[preauth\]$",
        Form::Preauth {
            heads: CLOSED,
            with_user: false,
        },
    ),
    (
        r"^Disconnected from (?:authenticating|invalid) user <USER> <HOST> (?:port <PORT> )?\[preauth\]$",
        Form::Preauth {
            heads: DISCONNECTED,
            with_user: true,
        },
    ),
    (
        r"^Disconnected from <HOST> (?:port <PORT> )?\[preauth\]$",
        Form::Preauth {
            heads: DISCONNECTED,
            with_user: false,
        },
    ),
    (
        r"^(?:error: )?PAM: Authentication failure for illegal user <USER> from <HOST>$",
        Form::PamError { illegal_user: true },
    ),
    (
        r"^(?:error: )?PAM: Authentication failure for <USER> from <HOST>$",
        Form::PamError {
            illegal_user: false,
        },
    ),
    (
        r"^(?:error: )?maximum authentication attempts exceeded for invalid user <USER> from <HOST> port <PORT> ssh2(?: \[preauth\])?$",
        Form::MaxAuthTries { invalid_user: true },
    ),
    (
        r"^(?:error: )?maximum authentication attempts exceeded for <USER> from <HOST> port <PORT> ssh2(?: \[preauth\])?$",
        Form::MaxAuthTries {
            invalid_user: false,
        },
    ),
];

// The parsers below assume these expansions; a change to them must revisit every parser.
const _: () = {
    assert!(eq(
        HOST_REGEX,
        r"(?P<host>[0-9]+(?:\.[0-9]+){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.\-]+)?)"
    ));
    assert!(eq(USER_REGEX, r"(?P<user>.*)"));
    assert!(eq(PORT_REGEX, r"[0-9]+"));
};

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Form {
    /// The form written for this rule text (before tag expansion), if any.
    pub fn for_source(source: &str) -> Option<Form> {
        SOURCES.iter().find(|(s, _)| *s == source).map(|(_, f)| *f)
    }

    /// The rule texts that have a hand-written parser.
    pub fn sources() -> impl Iterator<Item = &'static str> {
        SOURCES.iter().map(|(s, _)| *s)
    }

    /// Parse `m` (a whole message) as this form's regex would.
    pub fn parse(&self, m: &str) -> Parsed {
        match *self {
            Form::Failed {
                methods,
                invalid_user,
            } => failed(m, methods, invalid_user),
            Form::PamAuthFailure => pam_auth_failure(m),
            Form::InvalidUser => invalid_user_line(m),
            Form::Preauth { heads, with_user } => preauth(m, heads, with_user),
            Form::PamError { illegal_user } => pam_error(m, illegal_user),
            Form::MaxAuthTries { invalid_user } => max_auth_tries(m, invalid_user),
        }
    }
}

/// `<USER>` is `.*`: any byte but a newline.
fn user_ok(b: &[u8]) -> bool {
    memchr::memchr(b'\n', b).is_none()
}

/// The whole of `t` is matched by [`HOST_REGEX`].
fn host_ok(t: &[u8]) -> bool {
    if t.is_empty() {
        return false;
    }
    // `[0-9]+(?:\.[0-9]+){3}`
    let mut groups = 0;
    let mut digits = 0;
    let mut dotted = true;
    for &c in t {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' if digits > 0 => {
                groups += 1;
                digits = 0;
            }
            _ => {
                dotted = false;
                break;
            }
        }
    }
    if dotted && groups == 3 && digits > 0 {
        return true;
    }
    // `[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.\-]+)?`
    let (main, zone) = match memchr::memchr(b'%', t) {
        Some(p) => (&t[..p], Some(&t[p + 1..])),
        None => (t, None),
    };
    main.contains(&b':')
        && main
            .iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b'.' || *c == b':')
        && zone.is_none_or(|z| {
            !z.is_empty()
                && z.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        })
}

/// Where `port N` ends `b[..end]` (`N` at least one digit, `port` after a space): the
/// position of that space.
fn port_before(b: &[u8], end: usize) -> Option<usize> {
    let digits = b[..end]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    b[..end - digits].strip_suffix(b" port ").map(|s| s.len())
}

/// The address token ending at `end`: the space-free run before it, if it is an address.
fn host_before(b: &[u8], end: usize) -> Option<usize> {
    let start = memchr::memrchr(b' ', &b[..end]).map_or(0, |s| s + 1);
    host_ok(&b[start..end]).then_some(start)
}

/// `Failed METHOD for [invalid user ]USER from ADDR port N ssh2`.
fn failed(m: &str, methods: &[&str], invalid_user: bool) -> Parsed {
    let b = m.as_bytes();
    let Some(rest) = b.strip_prefix(b"Failed ") else {
        return Parsed::NoMatch;
    };
    // No method holds a space, so the method is the first word or the regex cannot match.
    let Some(sp) = memchr::memchr(b' ', rest) else {
        return Parsed::NoMatch;
    };
    let method = &rest[..sp];
    if !methods.iter().any(|x| x.as_bytes() == method) {
        return Parsed::NoMatch;
    }
    let head: &[u8] = if invalid_user {
        b" for invalid user "
    } else {
        b" for "
    };
    if !rest[sp..].starts_with(head) {
        return Parsed::NoMatch;
    }
    let user_start = 7 + sp + head.len();
    // Only the form without a key suffix (`ssh2: TYPE KEY` takes the regex).
    let Some(body) = b.strip_suffix(b" ssh2") else {
        return Parsed::Unknown;
    };
    let Some(port) = port_before(b, body.len()) else {
        return Parsed::Unknown;
    };
    let Some(host) = host_before(b, port) else {
        return Parsed::Unknown;
    };
    let Some(from) = b[..host].strip_suffix(b" from ").map(<[u8]>::len) else {
        return Parsed::Unknown;
    };
    if from < user_start || !user_ok(&b[user_start..from]) {
        return Parsed::Unknown;
    }
    Parsed::Match(Spans {
        host: (host, port),
        user: Some((user_start, from)),
        method: Some((7, 7 + sp)),
    })
}

/// `\S*` (unicode off: any byte but ASCII whitespace) up to the next space, then `lit`.
fn field(b: &[u8], at: usize, lit: &[u8], digits_only: bool) -> Option<usize> {
    let run = b[at..]
        .iter()
        .take_while(|c| {
            if digits_only {
                c.is_ascii_digit()
            } else {
                !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
            }
        })
        .count();
    let next = at + run;
    b[next..].starts_with(lit).then_some(next + lit.len())
}

/// `pam_(unix|sss)(SERVICE:auth): authentication failure; logname=… rhost=ADDR[ +user=USER]`.
fn pam_auth_failure(m: &str) -> Parsed {
    let b = m.as_bytes();
    let Some(rest) = b
        .strip_prefix(b"pam_unix(")
        .or_else(|| b.strip_prefix(b"pam_sss("))
    else {
        return Parsed::NoMatch;
    };
    let service = rest
        .iter()
        .take_while(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
        .count();
    const MID: &[u8] = b":auth): authentication failure; logname=";
    if service == 0 || !rest[service..].starts_with(MID) {
        return Parsed::NoMatch;
    }
    let at = b.len() - rest.len() + service + MID.len();
    let parse = || {
        let at = field(b, at, b" uid=", false)?;
        let at = field(b, at, b" euid=", true)?;
        let at = field(b, at, b" tty=", true)?;
        let at = field(b, at, b" ruser=", false)?;
        field(b, at, b" rhost=", false)
    };
    let Some(host) = parse() else {
        return Parsed::Unknown;
    };
    let end = memchr::memchr(b' ', &b[host..]).map_or(b.len(), |e| host + e);
    if !host_ok(&b[host..end]) {
        return Parsed::Unknown;
    }
    if end == b.len() {
        return Parsed::Match(Spans {
            host: (host, end),
            user: None,
            method: None,
        });
    }
    let spaces = b[end..].iter().take_while(|&&c| c == b' ').count();
    let Some(user) = b[end + spaces..].strip_prefix(b"user=") else {
        return Parsed::Unknown;
    };
    if !user_ok(user) {
        return Parsed::Unknown;
    }
    Parsed::Match(Spans {
        host: (host, end),
        user: Some((b.len() - user.len(), b.len())),
        method: None,
    })
}

/// `Invalid user USER from ADDR[ port N]`.
fn invalid_user_line(m: &str) -> Parsed {
    let b = m.as_bytes();
    const HEAD: &[u8] = b"Invalid user ";
    if !b.starts_with(HEAD) {
        return Parsed::NoMatch;
    }
    // A port is digits, an address never is: with a trailing `port N` only that parse
    // exists, and the address is the space-free word before it (or before the end), right
    // after ` from `. Any of these missing, no other parse exists either.
    let end = port_before(b, b.len()).unwrap_or(b.len());
    let Some(host) = host_before(b, end) else {
        return Parsed::NoMatch;
    };
    let Some(from) = b[..host].strip_suffix(b" from ").map(<[u8]>::len) else {
        return Parsed::NoMatch;
    };
    if from < HEAD.len() || !user_ok(&b[HEAD.len()..from]) {
        return Parsed::NoMatch;
    }
    Parsed::Match(Spans {
        host: (host, end),
        user: Some((HEAD.len(), from)),
        method: None,
    })
}

/// The message after an optional `error: ` (the prefix and `head` exclude each other, so
/// this is the only split), then `head`; the position after it.
fn after_head(b: &[u8], head: &[u8]) -> Option<usize> {
    let at = if b.starts_with(b"error: ") { 7 } else { 0 };
    b[at..].starts_with(head).then_some(at + head.len())
}

/// `[error: ]PAM: Authentication failure for [illegal user ]USER from ADDR`: the address is
/// the space-free word at the end, forced; the user what lies between the head and the
/// ` from ` before it.
fn pam_error(m: &str, illegal_user: bool) -> Parsed {
    let b = m.as_bytes();
    let head: &[u8] = if illegal_user {
        b"PAM: Authentication failure for illegal user "
    } else {
        b"PAM: Authentication failure for "
    };
    let Some(user_start) = after_head(b, head) else {
        return Parsed::NoMatch;
    };
    let Some(host) = host_before(b, b.len()) else {
        return Parsed::Unknown;
    };
    let Some(from) = b[..host].strip_suffix(b" from ").map(<[u8]>::len) else {
        return Parsed::Unknown;
    };
    if from < user_start || !user_ok(&b[user_start..from]) {
        return Parsed::Unknown;
    }
    Parsed::Match(Spans {
        host: (host, b.len()),
        user: Some((user_start, from)),
        method: None,
    })
}

/// `[error: ]maximum authentication attempts exceeded for [invalid user ]USER from ADDR port
/// N ssh2[ [preauth]]`: a line ending in `]` can only end in the optional ` [preauth]`, one
/// ending in `ssh2` only without it; then forced from the end as `Failed`.
fn max_auth_tries(m: &str, invalid_user: bool) -> Parsed {
    let b = m.as_bytes();
    let head: &[u8] = if invalid_user {
        b"maximum authentication attempts exceeded for invalid user "
    } else {
        b"maximum authentication attempts exceeded for "
    };
    let Some(user_start) = after_head(b, head) else {
        return Parsed::NoMatch;
    };
    let body = b.strip_suffix(b" [preauth]").unwrap_or(b);
    let Some(body) = body.strip_suffix(b" ssh2") else {
        return Parsed::Unknown;
    };
    let Some(port) = port_before(b, body.len()) else {
        return Parsed::Unknown;
    };
    let Some(host) = host_before(b, port) else {
        return Parsed::Unknown;
    };
    let Some(from) = b[..host].strip_suffix(b" from ").map(<[u8]>::len) else {
        return Parsed::Unknown;
    };
    if from < user_start || !user_ok(&b[user_start..from]) {
        return Parsed::Unknown;
    }
    Parsed::Match(Spans {
        host: (host, port),
        user: Some((user_start, from)),
        method: None,
    })
}

/// `HEAD[(authenticating|invalid) user USER ]ADDR [port N ][preauth]`.
fn preauth(m: &str, heads: &[&str], with_user: bool) -> Parsed {
    let b = m.as_bytes();
    let Some(head) = heads.iter().find(|h| b.starts_with(h.as_bytes())) else {
        return Parsed::NoMatch;
    };
    let mut start = head.len();
    if with_user {
        let rest = &b[start..];
        let Some(r) = rest
            .strip_prefix(b"authenticating user ")
            .or_else(|| rest.strip_prefix(b"invalid user "))
        else {
            return Parsed::NoMatch;
        };
        start = b.len() - r.len();
    }
    // The same forcing as in `Invalid user`: the fixed tail, then the port (digits are never
    // an address), then the space-free address word; with one missing no parse exists.
    let Some(body) = b.strip_suffix(b" [preauth]") else {
        return Parsed::NoMatch;
    };
    let end = port_before(b, body.len()).unwrap_or(body.len());
    let Some(host) = host_before(b, end) else {
        return Parsed::NoMatch;
    };
    if !with_user {
        return if host == start {
            Parsed::Match(Spans {
                host: (host, end),
                user: None,
                method: None,
            })
        } else {
            Parsed::NoMatch
        };
    }
    // `<USER> <HOST>`: the user ends at the space before the address.
    let Some(user_end) = host.checked_sub(1) else {
        return Parsed::NoMatch;
    };
    if user_end < start || !user_ok(&b[start..user_end]) {
        return Parsed::NoMatch;
    }
    Parsed::Match(Spans {
        host: (host, end),
        user: Some((start, user_end)),
        method: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "1.2.3.4",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            ":",
        ] {
            assert!(host_ok(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "1.2.3",
            "1.2.3.4.5",
            "22",
            "host",
            "1..2.3",
            "fe80::1%",
            "a:b%e%f",
        ] {
            assert!(!host_ok(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn the_last_from_counts() {
        let m =
            "Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 1.2.3.4 port 5 ssh2";
        let f = Form::for_source(SOURCES[0].0).unwrap();
        let Parsed::Match(s) = f.parse(m) else {
            panic!()
        };
        assert_eq!(&m[s.host.0..s.host.1], "1.2.3.4");
        assert_eq!(
            &m[s.user.unwrap().0..s.user.unwrap().1],
            "x from 6.6.6.6 port 22 ssh2"
        );
    }
}
