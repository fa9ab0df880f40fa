//! The syslog header after the timestamp: `host program[pid]: message`.

/// The parts of a syslog line after its timestamp.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Program name (the syslog tag without `[pid]`), e.g. `sshd`, `sshd-session`.
    pub program: &'a [u8],
    /// The pid in `[pid]`, if present and a number.
    pub pid: Option<u32>,
    /// The text after `tag: `.
    pub message: &'a [u8],
}

/// Split `rest` (a line with its timestamp removed) into host, tag and message.
///
/// Accepts `host tag: msg` and, for lines without a host, `tag: msg` (a host name never
/// ends with `:`). The tag is `program[pid]:` or `program:`, with no spaces. `None` when
/// the line has no such header.
#[inline]
pub fn parse_header(rest: &[u8]) -> Option<Header<'_>> {
    let sp = memchr::memchr(b' ', rest)?;
    let first = &rest[..sp];
    if first.last() == Some(&b':') {
        return split_tag(first, &rest[sp + 1..]);
    }
    let after_host = &rest[sp + 1..];
    match memchr::memchr(b' ', after_host) {
        Some(sp2) => split_tag(&after_host[..sp2], &after_host[sp2 + 1..]),
        // `host tag:` with an empty message.
        None => split_tag(after_host, b""),
    }
}

#[inline]
fn split_tag<'a>(tag: &'a [u8], message: &'a [u8]) -> Option<Header<'a>> {
    let tag = tag.strip_suffix(b":")?;
    if tag.is_empty() {
        return None;
    }
    if let Some(inner) = tag.strip_suffix(b"]") {
        let open = memchr::memrchr(b'[', inner)?;
        let pid = parse_u32(&inner[open + 1..]);
        return Some(Header {
            program: &inner[..open],
            pid,
            message,
        });
    }
    Some(Header {
        program: tag,
        pid: None,
        message,
    })
}

/// A decimal `u32` made of 1–10 ASCII digits, `None` otherwise or on overflow.
#[inline]
pub fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_program_pid_message() {
        let h = parse_header(b"web1 sshd[123]: Failed password").unwrap();
        assert_eq!(h.program, b"sshd");
        assert_eq!(h.pid, Some(123));
        assert_eq!(h.message, b"Failed password");
    }

    #[test]
    fn without_pid_or_host() {
        let h = parse_header(b"web1 sshd: hello").unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (&b"sshd"[..], None, &b"hello"[..])
        );
        let h = parse_header(b"sshd-session[9]: hi there").unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (&b"sshd-session"[..], Some(9), &b"hi there"[..])
        );
        let h = parse_header(b"web1 postfix/smtpd[1]: x").unwrap();
        assert_eq!(h.program, b"postfix/smtpd");
    }

    #[test]
    fn rejects_lines_without_a_tag() {
        assert_eq!(parse_header(b"no header here"), None);
        assert_eq!(parse_header(b""), None);
        assert_eq!(parse_header(b"web1 : x"), None);
        assert_eq!(parse_header(b"web1 sshd[x]: m").unwrap().pid, None);
        assert_eq!(
            parse_header(b"web1 sshd[99999999999]: m").unwrap().pid,
            None
        );
    }
}
