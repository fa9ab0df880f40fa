//! The embedded default read as documentation: its sections, keys and the comments above
//! them. The Debian package's commented `/etc/portcullis/portcullis.toml` and the
//! `portcullis.toml(5)` man page are both made from it, so neither can drift from the
//! default the binary runs on.

use crate::DEFAULT_CONFIG;

/// The embedded default, split into its opening comment, sections and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDoc {
    /// The file's opening comment block (comment markers removed), one string per line.
    pub preamble: Vec<String>,
    /// The `[tables]`, in file order.
    pub sections: Vec<DocSection>,
}

/// One `[table]` of the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSection {
    /// The table name, e.g. `daemon` or `jail.sshd`.
    pub name: String,
    /// The comment lines directly above the `[table]` line.
    pub doc: Vec<String>,
    /// Keys and comment paragraphs of the table, in file order.
    pub items: Vec<DocItem>,
}

/// A key of a section, or a comment paragraph standing alone (followed by a blank line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocItem {
    /// `key = value`, with the comment lines directly above it.
    Key {
        /// The key as written.
        key: String,
        /// The value as written (TOML text).
        value: String,
        /// The comment lines above it (markers removed).
        doc: Vec<String>,
    },
    /// Comment lines followed by a blank line or the end of the file.
    Note(Vec<String>),
}

/// The comment text of a `#` line: the marker and one following space removed.
fn comment_text(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('#')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

impl ConfigDoc {
    /// The embedded default's documentation.
    pub fn embedded() -> ConfigDoc {
        ConfigDoc::parse(DEFAULT_CONFIG)
    }

    /// Read a default-shaped file: comment lines document the `[table]` or `key = value`
    /// line right below them; a blank line ends a comment paragraph. Every key sits on one
    /// line (the default is written that way, and a test holds it to it).
    pub fn parse(text: &str) -> ConfigDoc {
        let mut preamble = Vec::new();
        let mut sections: Vec<DocSection> = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut in_preamble = true;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(c) = comment_text(trimmed) {
                pending.push(c.trim_end().to_owned());
                continue;
            }
            if trimmed.is_empty() {
                if in_preamble {
                    preamble = std::mem::take(&mut pending);
                    in_preamble = false;
                } else if !pending.is_empty() {
                    let note = DocItem::Note(std::mem::take(&mut pending));
                    if let Some(section) = sections.last_mut() {
                        section.items.push(note);
                    }
                }
                continue;
            }
            in_preamble = false;
            if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                sections.push(DocSection {
                    name: name.trim().to_owned(),
                    doc: std::mem::take(&mut pending),
                    items: Vec::new(),
                });
            } else if let Some((key, value)) = trimmed.split_once('=') {
                let item = DocItem::Key {
                    key: key.trim().to_owned(),
                    value: value.trim().to_owned(),
                    doc: std::mem::take(&mut pending),
                };
                if let Some(section) = sections.last_mut() {
                    section.items.push(item);
                }
            }
        }
        if !pending.is_empty()
            && let Some(section) = sections.last_mut()
        {
            section.items.push(DocItem::Note(pending));
        }
        ConfigDoc { preamble, sections }
    }

    /// Every `(table, key, value)` of the default, in file order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.sections.iter().flat_map(|s| {
            s.items.iter().filter_map(move |item| match item {
                DocItem::Key { key, value, .. } => {
                    Some((s.name.as_str(), key.as_str(), value.as_str()))
                }
                DocItem::Note(_) => None,
            })
        })
    }

    /// The commented `/etc/portcullis/portcullis.toml` the package installs: every table and
    /// key of the default, commented out with a bare `#` (documentation keeps `# `), so the
    /// file changes nothing until the admin removes the `#` of a table line and a key.
    pub fn commented_conffile(&self) -> String {
        let mut out = String::from(CONFFILE_HEADER);
        let comment = |out: &mut String, lines: &[String]| {
            for l in lines {
                if l.is_empty() {
                    out.push_str("#\n");
                } else {
                    out.push_str("# ");
                    out.push_str(l);
                    out.push('\n');
                }
            }
        };
        for section in &self.sections {
            out.push('\n');
            comment(&mut out, &section.doc);
            out.push_str(&format!("#[{}]\n", section.name));
            for item in &section.items {
                match item {
                    DocItem::Key { key, value, doc } => {
                        comment(&mut out, doc);
                        out.push_str(&format!("#{key} = {value}\n"));
                    }
                    DocItem::Note(lines) => {
                        comment(&mut out, lines);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }
}

const CONFFILE_HEADER: &str = "\
# /etc/portcullis/portcullis.toml — the main configuration file of portcullis.
#
# The daemon always starts from its embedded default configuration, then reads this file,
# then /etc/portcullis/conf.d/*.toml in file-name order; a later file overrides an earlier
# one key by key. Below is every table and key of the embedded default, with its default
# value, commented out: this file changes nothing as installed. To change a value, remove
# the '#' in front of its [table] line and of the key. Local changes are kept when the
# package is upgraded (this file is a conffile); drop-in files in conf.d/ are an
# alternative that never conflicts with a new version of this file.
#
# Reload after editing: systemctl reload portcullis (a broken file is refused, naming the
# file, line and key, and the running configuration stays). See portcullis.toml(5).
#
# Durations are a number of seconds (90) or a string of <number><unit> parts:
# \"90s\", \"10m\", \"1h30m\", \"7d\", \"1w\" (units s, m, h, d, w, mo = 30 days, y = 365 days).
# Keys that accept `false` switch the feature off.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    /// Every (table, key) of a TOML text, dotted, in sorted order.
    fn toml_keys(text: &str) -> Vec<String> {
        fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in table {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Table(t) => walk(&name, t, out),
                    _ => out.push(name),
                }
            }
        }
        let table: toml::Table = toml::from_str(text).expect("valid TOML");
        let mut out = Vec::new();
        walk("", &table, &mut out);
        out.sort();
        out
    }

    #[test]
    fn every_key_of_the_default_is_documented_once() {
        let doc = ConfigDoc::embedded();
        let mut ours: Vec<String> = doc.keys().map(|(s, k, _)| format!("{s}.{k}")).collect();
        ours.sort();
        assert_eq!(ours, toml_keys(DEFAULT_CONFIG));
        // And every key has a comment of its own or shares its table's (jail sections).
        for section in &doc.sections {
            for item in &section.items {
                if let DocItem::Key { key, doc, .. } = item
                    && section.name.starts_with("daemon")
                {
                    assert!(!doc.is_empty(), "daemon.{key} has no comment");
                }
            }
        }
        assert!(doc.preamble[0].contains("embedded default"));
    }

    #[test]
    fn the_commented_conffile_changes_nothing_and_uncommented_is_the_default() {
        let doc = ConfigDoc::embedded();
        let conffile = doc.commented_conffile();
        // As installed: no table, no key.
        assert!(toml_keys(&conffile).is_empty(), "{conffile}");
        let default = Config::embedded_default().unwrap();
        let same = |mut c: Config| {
            // Where a value came from is not what it is.
            c.files.clone_from(&default.files);
            for (jail, d) in c.jails.iter_mut().zip(&default.jails) {
                jail.filter_at.clone_from(&d.filter_at);
            }
            assert_eq!(c, default);
        };
        same(Config::from_str_named(&conffile, "portcullis.toml").unwrap());
        // Every setting line uncommented: exactly the default's keys and values.
        let uncommented: String = conffile
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.starts_with(' ') && !rest.is_empty() => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let a: toml::Table = toml::from_str(&uncommented).unwrap();
        let b: toml::Table = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(a, b);
        same(Config::from_str_named(&uncommented, "portcullis.toml").unwrap());
    }

    #[test]
    fn notes_and_key_comments_are_kept_apart() {
        let doc = ConfigDoc::parse(
            "# head\n\n# about a\n[a]\n# x doc\nx = 1\n\n# a note\n\ny = \"s\"\n# tail\n",
        );
        assert_eq!(doc.preamble, ["head"]);
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].doc, ["about a"]);
        assert_eq!(
            doc.sections[0].items,
            [
                DocItem::Key {
                    key: "x".into(),
                    value: "1".into(),
                    doc: vec!["x doc".into()]
                },
                DocItem::Note(vec!["a note".into()]),
                DocItem::Key {
                    key: "y".into(),
                    value: "\"s\"".into(),
                    doc: vec![]
                },
                DocItem::Note(vec!["tail".into()]),
            ]
        );
    }
}
