//! Cut messages: where a writer or a relay cuts a log message, so that text after the cut is
//! lost, and what may still be trusted in such a message.
//!
//! OpenSSH formats every message into a 1 KiB buffer, vis-encodes it (a control byte or a
//! byte ≥ 0x80 becomes four characters, `\ooo`; messages relayed from the pre-auth child are
//! encoded twice, five) and hands it to syslog with `%.500s`: a message of 500 bytes or more
//! lost its tail, `[preauth]` and the real address included. A client chooses the user name,
//! a certificate's key ID and the hostbased client fields, so in a cut message the text
//! before the cut may be the client's: a forged ` ADDR port 22 [preauth]` ends it exactly
//! where sshd's own text would. "Anchored at `$`" proves nothing there.
//!
//! The rule, for both engines, for files and the journal: a message at or past its writer's
//! cut ([`writer_cut`]), or a file line at or near the syslog daemon's cut
//! ([`SYSLOG_LINE_CUT`], [`SYSLOG_LINE_SLACK`]), is *cut*. In a cut message only an address that no client-chosen
//! text can precede counts (a native rule's `cut_safe`, computed when it is compiled, or
//! stated and argued in the filter), and only when fixed text of the rule follows it inside
//! the message (so the cut did not fall inside the address). Every other match in a cut
//! message gives no event and is counted ([`Stats::cut`](super::Stats::cut)).

/// OpenSSH's `syslog(…, "%.500s", …)`: messages of this many bytes or more were cut.
pub const SSHD_MESSAGE_CUT: usize = 500;

/// rsyslog's default maximum message size (`$MaxMessageSize`, 8 KiB): a message received
/// this long was cut by the syslog daemon, whoever wrote it. (journald keeps syslog messages
/// whole up to far more than [`MAX_LINE`](super::MAX_LINE), and lines past that are never
/// matched.)
pub const SYSLOG_LINE_CUT: usize = 8 * 1024;

/// How much shorter than the datagram rsyslog cut its file line may be: the line drops the
/// datagram's `<PRI>` (up to 5 bytes) and adds a host name (possibly 1), and a template may
/// shorten the timestamp. A file line within this many bytes of [`SYSLOG_LINE_CUT`] counts
/// as cut: a few complete lines lose trust in an address after client text, no cut one
/// keeps it.
pub const SYSLOG_LINE_SLACK: usize = 64;

/// The programs that log through OpenSSH's `log.c` (9.8+ writes as `sshd-session`, and
/// `sshd-auth` in 10.0).
pub const SSHD_WRITERS: &[&str] = &["sshd", "sshd-session", "sshd-auth"];

/// Where `program` (the syslog tag or `SYSLOG_IDENTIFIER`) cuts its messages, if we know.
pub fn writer_cut(program: Option<&[u8]>) -> Option<usize> {
    let p = program?;
    SSHD_WRITERS
        .iter()
        .any(|w| w.as_bytes() == p)
        .then_some(SSHD_MESSAGE_CUT)
}

/// Whether a message of `message_len` bytes from `program`, read from a file line of
/// `line_len` bytes (`None` for a journal record), may have lost its tail.
pub fn is_cut(program: Option<&[u8]>, message_len: usize, line_len: Option<usize>) -> bool {
    writer_cut(program).is_some_and(|c| message_len >= c)
        || line_len.is_some_and(|l| l + SYSLOG_LINE_SLACK >= SYSLOG_LINE_CUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_writers_cut_at_500_others_only_at_the_syslog_cap() {
        for p in SSHD_WRITERS {
            assert!(!is_cut(Some(p.as_bytes()), 499, Some(540)));
            assert!(is_cut(Some(p.as_bytes()), 500, Some(541)));
            assert!(is_cut(Some(p.as_bytes()), 500, None));
        }
        assert!(!is_cut(Some(b"postfix/smtpd"), 4000, Some(4040)));
        assert!(is_cut(Some(b"postfix/smtpd"), 8150, Some(8192)));
        // rsyslog cut the datagram; the file line (no `<PRI>`, a one-letter host) is shorter.
        assert!(is_cut(Some(b"postfix/smtpd"), 8100, Some(8190)));
        assert!(is_cut(None, 8000, Some(8192 - SYSLOG_LINE_SLACK)));
        assert!(!is_cut(None, 8000, Some(8191 - SYSLOG_LINE_SLACK)));
        assert!(!is_cut(Some(b"sshd2"), 600, None));
        assert!(!is_cut(None, 600, None));
    }
}
