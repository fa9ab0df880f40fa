//! Text for people: safe display of attacker-chosen text (user names, log lines) on a
//! terminal, and errors with their causes.

use std::borrow::Cow;

/// `error: cause: its cause …`: an error with its whole `source()` chain, as anyhow's `{:#}`
/// prints it, for library errors shown outside anyhow (log fields, status texts), so a user
/// sees the cause (`database or disk is full`), not only the outer message.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Escape control characters (including ESC, so no terminal escape sequence survives),
/// backslashes and non-printing Unicode as `\xNN` / `\u{…}`. Plain text comes back borrowed.
pub fn escape_terminal(s: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() || c == '\\' || is_invisible(c);
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() && (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else if c.is_control() || is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters that reorder or hide text (bidi overrides, zero-width marks).
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_shows_every_cause() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot write the store")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("database or disk is full"));
        assert_eq!(
            chain(&e),
            "cannot write the store: database or disk is full"
        );
    }

    #[test]
    fn escapes_terminal_sequences() {
        assert_eq!(escape_terminal("root"), "root");
        assert_eq!(escape_terminal("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_terminal("a\nb\\"), "a\\x0ab\\\\");
        assert_eq!(escape_terminal("x\u{202e}y"), "x\\u{202e}y");
    }
}
