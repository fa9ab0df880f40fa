//! The syslog header around the timestamp: an optional `<PRI>` (and RFC 5424's version)
//! before it, `host program[pid]: message` (BSD, RFC 3164) or `host app procid msgid sd
//! message` (RFC 5424) after it, and the Solaris/illumos `[ID n facility.level]` tag at the
//! start of the message.

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

/// Splits a whole log line: its time (`None` when no known timestamp starts it) and its
/// header (`None` when the prefix is not understood: such lines are counted `unparsed`).
/// Understands `<PRI>` before BSD lines and RFC 5424 (its nil timestamp `-` included).
pub fn split_line<'a>(
    dates: &mut crate::date::DateParser,
    line: &'a [u8],
    reference: crate::time::Time,
) -> (Option<crate::time::Time>, Option<Header<'a>>) {
    let (time, _, header) = split_line_rest(dates, line, reference);
    (time, header)
}

/// [`split_line`], and the text after the timestamp (the whole line when it has none):
/// the message of a `TIME message` line (a service's own log file).
pub fn split_line_rest<'a>(
    dates: &mut crate::date::DateParser,
    line: &'a [u8],
    reference: crate::time::Time,
) -> (Option<crate::time::Time>, &'a [u8], Option<Header<'a>>) {
    let (body, syntax) = strip_priority(line);
    let (time, rest) = match dates.parse_prefix(body, reference) {
        Some((t, n)) => (Some(t), body.get(n..).unwrap_or_default()),
        None => (None, body),
    };
    let header = match syntax {
        Syntax::Bsd => parse_header(rest),
        Syntax::Rfc5424 => match (time, rest.strip_prefix(b"- ")) {
            (Some(_), _) => parse_rfc5424_header(rest),
            (None, Some(after_nil)) => parse_rfc5424_header(after_nil),
            (None, None) => None,
        },
    };
    (time, rest, header)
}

/// The time of a web server access log line (Common/Combined Log Format, nginx's and
/// Apache's default): the bracketed date `[25/Nov/2026:08:00:01 +0000]` that ends right
/// before the first `] "`, i.e. before the quoted request. Fields before it are the
/// client's address, the identd name (`-`) and the HTTP user, which the client chooses;
/// but neither server lets that user hold a `"` (both escape it) nor a `:` (Basic
/// credentials split at the first one), and the date holds both a `:` and, after it, `] "`,
/// so no user name can fake it. `None` when the line has no such date.
pub fn access_time(
    dates: &mut crate::date::DateParser,
    line: &[u8],
    reference: crate::time::Time,
) -> Option<crate::time::Time> {
    /// `dd/Mmm/YYYY:HH:MM:SS ±hhmm`.
    const CLF_LEN: usize = 26;
    let end = memchr::memmem::find(line, b"] \"")?;
    let open = end.checked_sub(CLF_LEN + 1)?;
    if line[open] != b'[' {
        return None;
    }
    let (time, n) = dates.parse_prefix(&line[open..], reference)?;
    (n >= CLF_LEN + 2).then_some(time)
}

/// Which header follows the timestamp.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `host tag: message` (RFC 3164 and what syslog daemons write to files).
    Bsd,
    /// `host app procid msgid structured-data message` (RFC 5424).
    Rfc5424,
}

/// Drops a leading `<PRI>` (1–3 digits) and, for RFC 5424, its version `1 `: the rest
/// starts with the timestamp. Lines without a priority are [`Syntax::Bsd`].
#[inline]
pub fn strip_priority(line: &[u8]) -> (&[u8], Syntax) {
    if line.first() != Some(&b'<') {
        return (line, Syntax::Bsd);
    }
    let digits = line[1..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || line.get(1 + digits) != Some(&b'>') {
        return (line, Syntax::Bsd);
    }
    let rest = &line[2 + digits..];
    match rest.strip_prefix(b"1 ") {
        Some(after) => (after, Syntax::Rfc5424),
        None => (rest, Syntax::Bsd),
    }
}

/// RFC 5424's header after the timestamp: `HOST APP PROCID MSGID SD [MSG]`. A nil (`-`)
/// APP-NAME has no program: `None`. PROCID is the pid when it is a number. SD is `-` or one
/// or more `[…]` elements (`\]` and `\"` escaped inside quoted values); a UTF-8 BOM
/// before the message is dropped.
pub fn parse_rfc5424_header(rest: &[u8]) -> Option<Header<'_>> {
    let mut fields = rest.splitn(5, |&c| c == b' ');
    let (_host, app, procid, _msgid) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if app.is_empty() || app == b"-" {
        return None;
    }
    let after = fields.next()?;
    let sd_end = structured_data_end(after)?;
    let message = match after.get(sd_end) {
        None => &b""[..],
        Some(b' ') => &after[sd_end + 1..],
        Some(_) => return None,
    };
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    Some(Header {
        program: app,
        pid: parse_u32(procid),
        message: strip_solaris_id(message),
    })
}

/// The end of RFC 5424 STRUCTURED-DATA at the start of `b`: `-`, or `[…]` elements.
fn structured_data_end(b: &[u8]) -> Option<usize> {
    if b.first() == Some(&b'-') {
        return Some(1);
    }
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    (i > 0).then_some(i)
}

/// Drops the Solaris/illumos message tag `[ID 800047 auth.info] ` from the start of a
/// message (it comes before the text sshd wrote).
#[inline]
fn strip_solaris_id(message: &[u8]) -> &[u8] {
    let Some(rest) = message.strip_prefix(b"[ID ") else {
        return message;
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b' ') {
        return message;
    }
    let tag = &rest[digits + 1..];
    let Some(close) = tag.iter().take(40).position(|&c| c == b']') else {
        return message;
    };
    let level = &tag[..close];
    let well_formed = level.contains(&b'.')
        && level
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.');
    match (well_formed, tag.get(close + 1)) {
        (true, Some(b' ')) => &tag[close + 2..],
        (true, None) => b"",
        _ => message,
    }
}

/// ProFTPD's syslog-style log file (its `SystemLog`) writes `proftpd[PID] server (...)`:
/// the tag has no colon. Only that program and a numeric pid are taken so: any other
/// colon-less word stays unparsed.
const COLONLESS_TAGS: &[&[u8]] = &[b"proftpd"];

/// `tag` is `program[pid]:`, `program(id):` (Dovecot's own log file: `auth-worker(22401):`,
/// `auth-worker(default):`), `program:`, or one of [`COLONLESS_TAGS`] with `[pid]` and no
/// colon.
#[inline]
fn split_tag<'a>(tag: &'a [u8], message: &'a [u8]) -> Option<Header<'a>> {
    let message = strip_solaris_id(message);
    let Some(tag) = tag.strip_suffix(b":") else {
        let inner = tag.strip_suffix(b"]")?;
        let open = memchr::memrchr(b'[', inner)?;
        let pid = parse_u32(&inner[open + 1..])?;
        let program = &inner[..open];
        return COLONLESS_TAGS.contains(&program).then_some(Header {
            program,
            pid: Some(pid),
            message,
        });
    };
    if tag.is_empty() {
        return None;
    }
    if let Some(inner) = tag.strip_suffix(b")")
        && let Some(open) = memchr::memchr(b'(', inner)
        && open > 0
    {
        return Some(Header {
            program: &inner[..open],
            pid: parse_u32(&inner[open + 1..]),
            message,
        });
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
    fn priority_and_version() {
        assert_eq!(
            strip_priority(b"<34>1 2026-11-02T15:40:14Z h sshd 1 - - m"),
            (&b"2026-11-02T15:40:14Z h sshd 1 - - m"[..], Syntax::Rfc5424)
        );
        assert_eq!(
            strip_priority(b"<38>Nov  2 15:40:14 h sshd[1]: m"),
            (&b"Nov  2 15:40:14 h sshd[1]: m"[..], Syntax::Bsd)
        );
        for plain in [&b"Nov  2 x"[..], b"<x>1 y", b"<1234>1 y", b"<>1 y", b"<12"] {
            assert_eq!(strip_priority(plain), (plain, Syntax::Bsd));
        }
    }

    #[test]
    fn rfc5424_headers() {
        let h = parse_rfc5424_header(b"web1 sshd 1234 - - Failed password for root").unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (&b"sshd"[..], Some(1234), &b"Failed password for root"[..])
        );
        let h = parse_rfc5424_header(
            b"web1 sshd-session - ID47 [ex@32473 a=\"x\\]y\"][b c=\"d\"] \xEF\xBB\xBFhello",
        )
        .unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (&b"sshd-session"[..], None, &b"hello"[..])
        );
        assert_eq!(
            parse_rfc5424_header(b"web1 sshd 1 - -").unwrap().message,
            b""
        );
        // No app, too few fields, broken structured data.
        assert_eq!(parse_rfc5424_header(b"web1 - 1 - - m"), None);
        assert_eq!(parse_rfc5424_header(b"web1 sshd 1"), None);
        assert_eq!(parse_rfc5424_header(b"web1 sshd 1 - [a b=\"c] m"), None);
        assert_eq!(parse_rfc5424_header(b"web1 sshd 1 - x m"), None);
    }

    #[test]
    fn whole_lines_of_every_syntax() {
        let mut dates = crate::date::DateParser::new(jiff::tz::TimeZone::UTC);
        let reference: crate::time::Time = "2026-11-25T12:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .into();
        for line in [
            &b"Nov  2 15:40:14 web1 sshd[7]: Failed password"[..],
            b"Nov 2 15:40:14 web1 sshd[7]: Failed password",
            b"<38>Nov  2 15:40:14 web1 sshd[7]: Failed password",
            b"<38>1 2026-11-02T15:40:14.003Z web1 sshd 7 - - Failed password",
            b"Mon 2026-11-02 15:40:14 UTC web1 sshd[7]: Failed password",
            b"Nov  2 15:40:14 web1 sshd[7]: [ID 800047 auth.info] Failed password",
        ] {
            let (time, h) = split_line(&mut dates, line, reference);
            let text = String::from_utf8_lossy(line);
            assert_eq!(time.map(|t| t.as_secs()), Some(1_793_634_014), "{text}");
            let h = h.unwrap_or_else(|| panic!("{text}: no header"));
            assert_eq!(
                (h.program, h.pid, h.message),
                (&b"sshd"[..], Some(7), &b"Failed password"[..]),
                "{text}"
            );
        }
        let (time, h) = split_line(&mut dates, b"<38>1 - web1 sshd 7 - - m", reference);
        assert_eq!((time, h.map(|h| h.message)), (None, Some(&b"m"[..])));
        for unparsed in [
            &b"Nov 2  15:40:14 web1 sshd[7]: m"[..],
            b"",
            b"garbage",
            b"<38>1 garbage",
        ] {
            assert_eq!(split_line(&mut dates, unparsed, reference).1, None);
        }
    }

    #[test]
    fn solaris_message_ids() {
        let h = parse_header(b"host sshd[99]: [ID 800047 auth.info] Failed password").unwrap();
        assert_eq!(h.message, b"Failed password");
        // Not the tag: left as it is.
        for m in [
            &b"[ID x auth.info] m"[..],
            b"[ID 1 auth info] m",
            b"[ID 1 auth.info]m",
            b"[ID 1 a\"b.c] m",
        ] {
            let line = [&b"host sshd[1]: "[..], m].concat();
            assert_eq!(parse_header(&line).unwrap().message, m);
        }
    }

    #[test]
    fn proftpd_and_dovecot_own_tags() {
        let h = parse_header(b"ftp1 proftpd[123] ftp1.example (x[192.0.2.1]): USER a").unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (
                &b"proftpd"[..],
                Some(123),
                &b"ftp1.example (x[192.0.2.1]): USER a"[..]
            )
        );
        let h = parse_header(b"auth-worker(22401): Info: sql(a,192.0.2.1): x").unwrap();
        assert_eq!(
            (h.program, h.pid, h.message),
            (
                &b"auth-worker"[..],
                Some(22401),
                &b"Info: sql(a,192.0.2.1): x"[..]
            )
        );
        let h = parse_header(b"auth-worker(default): Info: x").unwrap();
        assert_eq!((h.program, h.pid), (&b"auth-worker"[..], None));
        // Colon-less tags of other programs, or without a numeric pid, are no header.
        assert_eq!(parse_header(b"host sshd[1] Failed password"), None);
        assert_eq!(parse_header(b"host proftpd[x] m"), None);
        assert_eq!(parse_header(b"host proftpd m"), None);
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
