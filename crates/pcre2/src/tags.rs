//! Fail2Ban's regex tags (`<HOST>`, `<F-USER>…</F-USER>`, …) and the Python → PCRE2
//! syntax differences, applied to a pattern before it is compiled.

/// IPv4, optionally written as IPv4-mapped IPv6 (`::ffff:a.b.c.d`); group `ip4`.
const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
/// IPv6 in its usual written forms; group `ip6`.
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
/// A host name; group `dns`.
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
/// A prefix length; group `cidr`.
const CIDR: &str = r"(?P<cidr>\d+)";

/// Whether `<HOST>` may match host names (Fail2Ban's `usedns`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum UseDns {
    /// `<HOST>` matches addresses only; a name in the log never matches.
    No,
    /// `<HOST>` also matches names, which are then looked up (`yes`).
    Yes,
    /// Like `yes`, and a warning is logged per name (Fail2Ban's default).
    #[default]
    Warn,
    /// Names are matched and kept as raw failure ids, never resolved.
    Raw,
}

impl UseDns {
    /// Parse Fail2Ban's `usedns` value (`yes`, `no`, `warn`, `raw`; booleans as yes/no).
    pub fn parse(value: &str) -> Option<UseDns> {
        match value.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Some(UseDns::Yes),
            "no" | "false" | "off" | "0" => Some(UseDns::No),
            "warn" => Some(UseDns::Warn),
            "raw" => Some(UseDns::Raw),
            _ => None,
        }
    }
}

fn addr() -> String {
    format!(r"\[?(?:{IP4}|{IP6})\]?")
}

/// The regex a fixed tag name stands for (both the bare and the `F-…/` spelling).
fn fixed_tag(name: &str, dns: UseDns) -> Option<String> {
    Some(match name {
        "HOST" if dns == UseDns::No => addr(),
        "HOST" => format!("(?:{}|{DNS})", addr()),
        "IP4" | "F-IP4/" => IP4.into(),
        "IP6" | "F-IP6/" => IP6.into(),
        "ADDR" | "F-ADDR/" => addr(),
        "CIDR" | "F-CIDR/" => CIDR.into(),
        "SUBNET" | "F-SUBNET/" => format!(r"\[?(?:{IP4}|{IP6})(?:/{CIDR})?\]?"),
        "DNS" | "F-DNS/" => DNS.into(),
        "F-ID/" => r"(?P<fid>\S+)".into(),
        "F-PORT/" => r"(?P<fport>\w+)".into(),
        _ => return None,
    })
}

/// The group name a custom `F-NAME` tag captures into: lowercase, with `id` → `fid` and
/// `port` → `fport` as in Fail2Ban.
pub fn field_name(tag: &str) -> String {
    let lower = tag.to_ascii_lowercase();
    match lower.as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        _ => lower,
    }
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// A custom field name: `F-` then uppercase letters, digits, `_` or `-`.
fn custom_name(tag: &str) -> Option<&str> {
    let rest = tag.strip_prefix("F-")?;
    (!rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-'))
    .then_some(rest)
}

/// Replace every tag in `regex` by its regex; unknown tags stay literal text.
pub fn expand_tags(regex: &str, dns: UseDns) -> String {
    let mut out = String::with_capacity(regex.len() * 2);
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0u32;
    let mut rest = regex;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        // A tag: `<` `/`? name `/`? `>` with name of word characters and `-`.
        let closing = after.starts_with('/');
        let body_start = usize::from(closing);
        let name_len = after[body_start..]
            .find(|c: char| !is_tag_char(c))
            .unwrap_or(after.len() - body_start);
        let mut end = body_start + name_len;
        let self_closing = after[end..].starts_with('/');
        if self_closing {
            end += 1;
        }
        if name_len == 0 || !after[end..].starts_with('>') {
            out.push('<');
            rest = after;
            continue;
        }
        let tag = &after[..end];
        rest = &after[end + 1..];
        out.push_str(&expand_one(tag, dns, &mut open, &mut skiplines));
    }
    out.push_str(rest);
    out
}

fn expand_one(tag: &str, dns: UseDns, open: &mut Vec<String>, skiplines: &mut u32) -> String {
    if tag == "SKIPLINES" {
        let n = *skiplines;
        *skiplines += 1;
        return format!(r"\n(?P<skiplines{n}>(?:(?:.*\n)*?))");
    }
    if let Some(r) = fixed_tag(tag, dns) {
        return r;
    }
    let (closing, name) = match tag.strip_prefix('/') {
        Some(n) => (true, n),
        None => (false, tag),
    };
    if let Some(field) = custom_name(name) {
        if closing {
            if open.iter().any(|o| o == field) {
                return ")".into();
            }
        } else if !name.ends_with('/') {
            open.push(field.to_owned());
            return format!("(?P<{}>", field_name(field));
        }
    }
    format!("<{tag}>")
}

/// Translate Python `re` syntax that PCRE2 reads differently: `\Z` (end of subject in
/// Python) becomes `\z`. Everything else Fail2Ban's filters use means the same in both.
pub fn python_to_pcre2(regex: &str) -> String {
    let mut out = String::with_capacity(regex.len());
    let mut chars = regex.chars();
    while let Some(c) = chars.next() {
        if c == '(' && chars.as_str().starts_with('?') {
            // Inline flags: PCRE2 has no `u` (always Unicode here), `a` or `L`.
            let rest = &chars.as_str()[1..];
            let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            if n > 0 && matches!(rest.as_bytes().get(n), Some(b')' | b':' | b'-')) {
                out.push_str("(?");
                out.extend(rest[..n].chars().filter(|f| !matches!(f, 'u' | 'a' | 'L')));
                for _ in 0..=n {
                    chars.next();
                }
                if out.ends_with("(?") && chars.as_str().starts_with(')') {
                    out.truncate(out.len() - 2);
                    chars.next();
                }
                continue;
            }
            out.push(c);
        } else if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str(r"\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_follows_usedns() {
        assert!(expand_tags("from <HOST>", UseDns::No).contains("ip6"));
        assert!(!expand_tags("from <HOST>", UseDns::No).contains("dns"));
        assert!(expand_tags("from <HOST>", UseDns::Warn).contains("(?P<dns>"));
    }

    #[test]
    fn custom_fields_open_and_close() {
        assert_eq!(
            expand_tags("<F-USER>.+</F-USER>", UseDns::No),
            "(?P<user>.+)"
        );
        assert_eq!(expand_tags("<F-ID>x</F-ID>", UseDns::No), "(?P<fid>x)");
        assert_eq!(
            expand_tags("a </F-USER> <foo> < x>", UseDns::No),
            "a </F-USER> <foo> < x>"
        );
        assert_eq!(expand_tags("<F-ID/>", UseDns::No), r"(?P<fid>\S+)");
    }

    #[test]
    fn skiplines_are_numbered() {
        let r = expand_tags("a<SKIPLINES>b<SKIPLINES>", UseDns::No);
        assert!(r.contains("skiplines0") && r.contains("skiplines1"));
    }

    #[test]
    fn python_end_anchor() {
        assert_eq!(python_to_pcre2(r"a\Z\\Z"), r"a\z\\Z");
        assert_eq!(
            python_to_pcre2(r"(?iu)x(?u)y(?P<n>z)(?u:w)"),
            r"(?i)xy(?P<n>z)(?:w)"
        );
    }
}
