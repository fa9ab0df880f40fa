//! Safe display of attacker-chosen text (user names, log lines) on a terminal.

use std::borrow::Cow;

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
    fn escapes_terminal_sequences() {
        assert_eq!(escape_terminal("root"), "root");
        assert_eq!(escape_terminal("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_terminal("a\nb\\"), "a\\x0ab\\\\");
        assert_eq!(escape_terminal("x\u{202e}y"), "x\\u{202e}y");
    }
}
