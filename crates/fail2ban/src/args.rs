//! Small Fail2Ban value syntaxes: `name[key=value, key2="v w"]` references (`extractOptions`),
//! lists of such references (`splitWithOptions`), word lists (`splitwords`) and the POSIX
//! shell-word splitting of `journalmatch` (Python's `shlex.split`, never a shell).

/// A filter or action reference: `sshd[mode=aggressive, port="22,2222"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The file name without `.conf` (`sshd`), or `x.py` for a Python action.
    pub name: String,
    /// The arguments in order of appearance (later duplicates win when looked up).
    pub args: Vec<(String, String)>,
}

impl Reference {
    /// The value of argument `key`, the last one if repeated.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse `name[key=value, …]` like Fail2Ban's `extractOptions`: the name runs to the first
/// `[`; values are `"…"`, `'…'` or unquoted up to `,` or `]`; `][` continues the list.
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    let text = text.trim_end();
    let (name, optstr) = match text.find('[') {
        Some(open) => {
            let body = &text[open + 1..];
            let Some(inner) = body.strip_suffix(']') else {
                return Err(format!("unexpected option syntax in {text:?}: missing `]`"));
            };
            (&text[..open], Some(inner))
        }
        None => (text, None),
    };
    if name.trim().is_empty() {
        return Err(format!("unexpected option syntax in {text:?}: empty name"));
    }
    let mut args = Vec::new();
    if let Some(opts) = optstr {
        let mut rest = opts;
        loop {
            let trimmed = rest.trim_start();
            if trimmed.is_empty()
                || trimmed
                    .strip_prefix(',')
                    .is_some_and(|r| r.trim().is_empty())
            {
                break;
            }
            let key_len = trimmed
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .unwrap_or(trimmed.len());
            let (key, after) = trimmed.split_at(key_len);
            let Some(after) = after.strip_prefix('=').filter(|_| !key.is_empty()) else {
                return Err(format!("expected option, wrong syntax at {trimmed:?}"));
            };
            let (value, after) = if let Some(q) = after.strip_prefix('"') {
                let end = q
                    .find('"')
                    .ok_or_else(|| format!("unterminated \" in {after:?}"))?;
                (&q[..end], &q[end + 1..])
            } else if let Some(q) = after.strip_prefix('\'') {
                let end = q
                    .find('\'')
                    .ok_or_else(|| format!("unterminated ' in {after:?}"))?;
                (&q[..end], &q[end + 1..])
            } else {
                let end = after.find([',', ']']).unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            args.push((key.trim().to_owned(), value.trim().to_owned()));
            rest = if after.is_empty() {
                after
            } else if let Some(r) = after.strip_prefix(',') {
                r
            } else if let Some(r) = after
                .strip_prefix(']')
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('['))
            {
                r
            } else {
                return Err(format!("unexpected syntax after option {key:?}: {after:?}"));
            };
        }
    }
    Ok(Reference {
        name: name.to_owned(),
        args,
    })
}

/// Split a list of references (`action = a[x=1]\n  b`) at whitespace outside brackets and
/// quotes, like Fail2Ban's `splitWithOptions`.
pub fn split_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' if depth > 0 => {
                    quote = Some(c);
                    current.push(c);
                }
                '[' => {
                    depth += 1;
                    current.push(c);
                }
                ']' => {
                    depth = depth.saturating_sub(1);
                    current.push(c);
                }
                c if c.is_whitespace() && depth == 0 => {
                    // `name [args]` keeps the space-separated bracket with its name.
                    if !current.is_empty() {
                        out.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            },
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    // Re-attach a bracket written after whitespace (`name [args]`) to its name.
    let mut merged: Vec<String> = Vec::new();
    for item in out {
        match merged.last_mut() {
            Some(last) if item.starts_with('[') && !last.contains('[') => last.push_str(&item),
            _ => merged.push(item),
        }
    }
    merged
}

/// Fail2Ban's `splitwords`: split at spaces, commas and newlines, dropping empty words.
pub fn split_words(text: &str) -> Vec<String> {
    text.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Python's `shlex.split` (POSIX mode, no comments): words separated by whitespace,
/// `'…'` literal, `"…"` with `\\`, `\"`, `\$` and `` \` `` escapes, `\x` outside quotes.
pub fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("no closing quotation in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('\\' | '"' | '$' | '`')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(format!("no escaped character in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("no closing quotation in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => word.push(e),
                    None => return Err(format!("no escaped character in {text:?}")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_with_arguments() {
        let r = parse_reference(r#"sshd[mode=aggressive, port="22,2222", x='a b']"#).expect("ok");
        assert_eq!(r.name, "sshd");
        assert_eq!(r.arg("mode"), Some("aggressive"));
        assert_eq!(r.arg("port"), Some("22,2222"));
        assert_eq!(r.arg("x"), Some("a b"));
        let r = parse_reference("iptables-multiport[name=SSH][port=ssh]").expect("ok");
        assert_eq!(r.args.len(), 2);
        assert_eq!(parse_reference("sshd").expect("ok").args, vec![]);
        assert!(parse_reference("sshd[mode]").is_err());
        assert!(parse_reference("sshd[mode=a").is_err());
    }

    #[test]
    fn reference_lists_split_outside_brackets() {
        let list = split_references("%(a)s\n  nft[name=x, port=\"1 2\"]  mail-whois[dest=root]");
        assert_eq!(
            list,
            [
                "%(a)s",
                "nft[name=x, port=\"1 2\"]",
                "mail-whois[dest=root]"
            ]
        );
    }

    #[test]
    fn words_and_shell_words() {
        assert_eq!(
            split_words("127.0.0.1/8 ::1,10.0.0.1\n host"),
            ["127.0.0.1/8", "::1", "10.0.0.1", "host"]
        );
        assert_eq!(
            shell_words(r#"_SYSTEMD_UNIT=sshd.service + _COMM="ss hd" 'a\b' c\ d"#).expect("ok"),
            [
                "_SYSTEMD_UNIT=sshd.service",
                "+",
                "_COMM=ss hd",
                "a\\b",
                "c d"
            ]
        );
        assert!(shell_words("'open").is_err());
    }
}
