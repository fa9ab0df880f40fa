//! Writing an [`Import`] as portcullis TOML: one `[jail.NAME]` table per imported jail with
//! every policy key spelled out, the filter as
//! `{ fail2ban = "…/filter.d/NAME.conf", args = { … } }`.

use std::fmt::Write as _;

use portcullis_config::{Backend, FilterRef, SourceSpec};

use crate::jail::Import;

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key, quoted unless it is a bare key.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        quote(s)
    }
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

impl Import {
    /// The imported configuration as a portcullis TOML file (to use as
    /// `/etc/portcullis/portcullis.toml` or a `conf.d` file). Report lines that concern a
    /// jail are repeated as comments above its table.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# portcullis configuration imported from the Fail2Ban configuration in {}\n\
             # by `portcullis import-fail2ban`. Jails run Fail2Ban's own filter files (PCRE2\n\
             # engine). Imported jails ban exactly as Fail2Ban would: portcullis's IPv6 /64\n\
             # aggregation and success protection are off; breach alerts stay on.\n",
            self.dir.display()
        );
        let backend = match self.config.firewall.backend {
            Backend::Auto => "auto",
            Backend::Nft => "nft",
            Backend::Ipset => "ipset",
            Backend::None => "none",
        };
        let _ = writeln!(out, "[firewall]\nbackend = {}\n", quote(backend));
        if self.config.jail("sshd").is_none() {
            let _ = writeln!(
                out,
                "# Fail2Ban does not run an sshd jail: turn off portcullis's built-in one.\n\
                 [jail.sshd]\nenabled = false\n"
            );
        }
        for spec in &self.config.jails {
            let c = &spec.config;
            for e in self
                .report
                .entries
                .iter()
                .filter(|e| e.jail.as_deref() == Some(&spec.name))
            {
                let _ = writeln!(out, "# {}", e.to_string().replace('\n', " "));
            }
            let _ = writeln!(out, "[jail.{}]", key(&spec.name));
            let _ = writeln!(out, "enabled = true");
            let filter = match &spec.filter {
                FilterRef::Fail2Ban { path, args } => format!(
                    "{{ fail2ban = {}, args = {{ {} }} }}",
                    quote(&path.display().to_string()),
                    args.iter()
                        .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                FilterRef::Named(name) => quote(name),
                FilterRef::File(path) => quote(&path.display().to_string()),
            };
            let _ = writeln!(out, "filter = {filter}");
            let sources = spec.sources.iter().map(|s| match s {
                SourceSpec::Auto => quote("auto"),
                SourceSpec::File { path } => {
                    format!("{{ file = {} }}", quote(&path.display().to_string()))
                }
                SourceSpec::Journal(j) => {
                    let mut parts = vec![format!(
                        "matches = {}",
                        list(j.matches.iter().map(|m| quote(m)))
                    )];
                    if let Some(d) = &j.directory {
                        parts.push(format!("directory = {}", quote(&d.display().to_string())));
                    }
                    if let Some(f) = &j.file {
                        parts.push(format!("file = {}", quote(&f.display().to_string())));
                    }
                    format!("{{ journal = {{ {} }} }}", parts.join(", "))
                }
            });
            let _ = writeln!(out, "sources = {}", list(sources));
            let maxretry = f64::from(c.maxretry.0) / 1000.0;
            let _ = writeln!(out, "maxretry = {maxretry}");
            let _ = writeln!(out, "findtime = {}", c.findtime.as_secs());
            let _ = writeln!(out, "bantime = {}", c.bantime.as_secs());
            let _ = writeln!(out, "bantime_factor = {:?}", c.factor);
            let _ = writeln!(out, "maxtime = {}", c.maxtime.as_secs());
            match c.permanent_after {
                Some(n) => {
                    let _ = writeln!(out, "permanent_after = {n}");
                }
                None => {
                    let _ = writeln!(out, "permanent_after = false");
                }
            }
            let _ = writeln!(out, "history = {}", c.history.as_secs());
            let _ = writeln!(
                out,
                "allowlist = {}",
                list(c.allowlist.iter().map(|n| quote(&n.to_string())))
            );
            let _ = writeln!(out, "v6_net_threshold = false");
            let _ = writeln!(out, "protect_after_success = false");
            // Fail2Ban has neither signal: the import leaves them off, and says so here so
            // the written file loads into the same jails.
            let _ = match c.long_window {
                None => writeln!(out, "slow_maxretry = false"),
                Some((w, d)) => writeln!(
                    out,
                    "slow_maxretry = {}\nslow_findtime = {}",
                    w.as_attempts(),
                    d.as_secs()
                ),
            };
            let _ = match c.max_users {
                None => writeln!(out, "max_users = false"),
                Some(n) => writeln!(out, "max_users = {n}"),
            };
            let _ = writeln!(out);
        }
        if !self.config.disabled_jails.is_empty() {
            let _ = writeln!(
                out,
                "# Disabled in Fail2Ban (not imported): {}",
                self.config.disabled_jails.join(", ")
            );
        }
        let global: Vec<_> = self
            .report
            .entries
            .iter()
            .filter(|e| {
                e.jail
                    .as_ref()
                    .is_none_or(|j| self.config.jail(j).is_none())
            })
            .collect();
        for e in global {
            let _ = writeln!(out, "# {}", e.to_string().replace('\n', " "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_keys_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(key("mode"), "mode");
        assert_eq!(key("known/x"), "\"known/x\"");
    }
}
