//! Escaping of attacker-chosen text for HTML element content and quoted attributes.

use std::fmt::Write;

/// Escape `text` for HTML text and double- or single-quoted attribute values.
///
/// Besides `& < > " '`, characters that could fool a reader are made visible instead of
/// being passed through: terminal escape sequences such as `ESC [ 31 m`
/// become `\x1b[31m`, and a right-to-left override `U+202E` becomes `\u{202e}`.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    push_escaped(&mut out, text);
    out
}

/// [`escape_html`] appending to `out`.
pub(crate) fn push_escaped(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => push_visible(out, c),
        }
    }
}

/// `text` with C0/C1 control characters and DEL written as `\xNN`, and the Unicode
/// bidirectional marks, embeddings, overrides and isolates as `\u{NNNN}`, so what is shown is
/// what was logged. No HTML escaping: apply [`escape_html`] after (it leaves `\` alone).
/// Also the right filter for attacker-chosen text printed on a terminal.
pub fn show_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

fn push_visible(out: &mut String, c: char) {
    match c {
        c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c @ ('\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x\")</script>&"),
            "&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;"
        );
    }

    #[test]
    fn controls_and_bidi_become_visible() {
        assert_eq!(escape_html("\x1b[31mroot\x07"), "\\x1b[31mroot\\x07");
        assert_eq!(
            escape_html("a\nb\tc\u{7f}\u{85}"),
            "a\\x0ab\\x09c\\x7f\\x85"
        );
        assert_eq!(escape_html("adm\u{202e}nimda"), "adm\\u{202e}nimda");
        assert_eq!(escape_html("Zoë 日本"), "Zoë 日本");
        assert_eq!(show_controls("\x1b<x>"), "\\x1b<x>");
        assert_eq!(escape_html(&show_controls("\x1b<")), escape_html("\x1b<"));
    }
}
