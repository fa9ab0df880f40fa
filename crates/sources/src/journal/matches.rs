//! Journal match strings in Fail2Ban's `journalmatch` syntax.

use crate::error::MatchError;

/// Split a `journalmatch` string into journalctl match arguments.
///
/// Tokens are split like a POSIX shell would (whitespace, `'…'`, `"…"`, backslash escapes),
/// as Fail2Ban does. Each token must be `FIELD=value` (FIELD in `[A-Z0-9_]`, so it can never
/// be taken for an option) or `+`, which separates OR-ed groups; matches on different fields
/// inside a group are AND-ed, on the same field OR-ed (journalctl's rules).
///
/// `"_SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd"` →
/// `["_SYSTEMD_UNIT=ssh.service", "+", "SYSLOG_IDENTIFIER=sshd"]`.
pub fn parse_journal_matches(s: &str) -> Result<Vec<String>, MatchError> {
    let tokens = shell_split(s)?;
    check_match_tokens(&tokens)?;
    Ok(tokens)
}

/// Check already split match tokens: each `FIELD=value` or `+`, no empty alternative.
pub fn check_match_tokens(tokens: &[String]) -> Result<(), MatchError> {
    let mut prev_plus = true;
    for t in tokens {
        if t == "+" {
            if prev_plus {
                return Err(MatchError::EmptyAlternative);
            }
            prev_plus = true;
            continue;
        }
        prev_plus = false;
        let valid = match t.split_once('=') {
            Some((field, _)) => {
                !field.is_empty()
                    && field
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            }
            None => false,
        };
        if !valid {
            return Err(MatchError::BadToken(t.clone()));
        }
    }
    if prev_plus && !tokens.is_empty() {
        return Err(MatchError::EmptyAlternative);
    }
    Ok(())
}

fn shell_split(s: &str) -> Result<Vec<String>, MatchError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(MatchError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(MatchError::UnterminatedQuote(s.to_string())),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(MatchError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '\\' => {
                in_token = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_fail2ban() {
        assert_eq!(
            parse_journal_matches("_SYSTEMD_UNIT=sshd.service + _COMM=sshd").unwrap(),
            vec!["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]
        );
        assert_eq!(
            parse_journal_matches(r#"MESSAGE='a b' SYSLOG_IDENTIFIER="x\"y""#).unwrap(),
            vec!["MESSAGE=a b", r#"SYSLOG_IDENTIFIER=x"y"#]
        );
        assert_eq!(parse_journal_matches("  ").unwrap(), Vec::<String>::new());
        assert!(check_match_tokens(&["-fx".to_string()]).is_err());
        assert!(check_match_tokens(&["MESSAGE=it's".to_string()]).is_ok());
    }

    #[test]
    fn rejects_options_and_bad_alternatives() {
        assert!(matches!(
            parse_journal_matches("--file=/etc/shadow"),
            Err(MatchError::BadToken(_))
        ));
        assert!(matches!(
            parse_journal_matches("lower=x"),
            Err(MatchError::BadToken(_))
        ));
        assert_eq!(
            parse_journal_matches("A=1 +"),
            Err(MatchError::EmptyAlternative)
        );
        assert_eq!(
            parse_journal_matches("+ A=1"),
            Err(MatchError::EmptyAlternative)
        );
        assert!(matches!(
            parse_journal_matches("A='x"),
            Err(MatchError::UnterminatedQuote(_))
        ));
    }
}
