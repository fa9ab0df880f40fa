//! One INI file read with the line grammar of Python's
//! `RawConfigParser(inline_comment_prefixes=(';',), strict=False)`, as Fail2Ban reads its
//! `.conf` and `.local` files, keeping the file and line of every value.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The section Python's configparser treats as defaults for every other section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Where a value (or an error) comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file, shared by all values read from it.
    pub file: Arc<Path>,
    /// 1-based line of the key (for a multi-line value: the line holding `key =`).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One raw (not interpolated) value with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniValue {
    /// The value as configparser returns it: continuation lines joined with `\n`, each line
    /// stripped, trailing blank lines removed, inline comments gone.
    pub text: String,
    /// File and line of the key.
    pub origin: Origin,
    /// The line of each `\n`-separated part of `text`, so an error in the third regex of a
    /// multi-line `failregex` can name its own line.
    pub part_lines: Vec<usize>,
}

impl IniValue {
    /// The line the `index`-th `\n`-separated part of [`IniValue::text`] was written on
    /// (the key's line when out of range).
    pub fn line_of_part(&self, index: usize) -> usize {
        self.part_lines
            .get(index)
            .copied()
            .unwrap_or(self.origin.line)
    }
}

/// Keys and values of one section, in first-definition order (a later duplicate key keeps
/// the first position and takes the later value, as Python's dict does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    entries: Vec<(String, IniValue)>,
}

impl Section {
    /// The value of `key` (keys are stored lower-cased; `key` must be lower-case).
    pub fn get(&self, key: &str) -> Option<&IniValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Set `key`, replacing an earlier value in place.
    pub fn insert(&mut self, key: String, value: IniValue) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<IniValue> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Whether `key` is set in this section itself.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Keys and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &IniValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the section has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn value_mut(&mut self, key: &str) -> Option<&mut IniValue> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Named sections in order of first appearance; names are case-sensitive, as in Python. The
/// one list behind [`IniFile`] and [`crate::ConfigSet`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sections(Vec<(String, Section)>);

impl Sections {
    /// The section called `name`.
    pub fn get(&self, name: &str) -> Option<&Section> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Where the section called `name` stands, if it exists.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| n == name)
    }

    /// Where the section called `name` stands, appending an empty one if it is new.
    pub fn position_or_insert(&mut self, name: &str) -> usize {
        self.position(name).unwrap_or_else(|| {
            self.0.push((name.to_owned(), Section::default()));
            self.0.len() - 1
        })
    }

    /// The section at `index` (from [`Sections::position`]).
    pub fn at(&self, index: usize) -> &Section {
        &self.0[index].1
    }

    /// The section at `index`, to change it.
    pub fn at_mut(&mut self, index: usize) -> &mut Section {
        &mut self.0[index].1
    }

    /// Names and sections in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.0.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// The sections in order, to change them.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Section> {
        self.0.iter_mut().map(|(_, s)| s)
    }
}

/// A parsed INI file: the `[DEFAULT]` section apart, the others in first-appearance order
/// (a repeated section header continues the same section, as with `strict=False`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniFile {
    /// The file the text came from (used in every [`Origin`]).
    pub path: Arc<Path>,
    /// `[DEFAULT]`: seen by every section of the same configparser.
    pub defaults: Section,
    sections: Sections,
}

/// Why an INI text could not be parsed. Displays as `FILE:LINE: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IniError {
    /// A key/value line came before any `[section]` header.
    #[error("{}:{line}: key or value before the first [section] header", file.display())]
    MissingSectionHeader {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A line that is neither a header, a `key = value` nor a continuation.
    #[error("{}:{line}: expected `[section]`, `key = value` or an indented continuation, found {text:?}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The offending line, comments removed.
        text: String,
    },
}

impl IniError {
    /// The file and line the error points at.
    pub fn location(&self) -> (&Path, usize) {
        match self {
            IniError::MissingSectionHeader { file, line } | IniError::Syntax { file, line, .. } => {
                (file, *line)
            }
        }
    }
}

/// Where the current value goes: the DEFAULT section or a section index.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Target {
    Defaults,
    Section(usize),
}

impl IniFile {
    /// Parse `text`, naming it `path` in origins and errors.
    ///
    /// Lines end at `\n`, `\r\n` or `\r` (Python's universal newlines). The first bad line is
    /// the error (Python reports them all at the end; Fail2Ban then rejects the file).
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<IniFile, IniError> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        let mut file = IniFile {
            path: path.clone(),
            defaults: Section::default(),
            sections: Sections::default(),
        };
        let mut target: Option<Target> = None;
        // The key whose value continuation lines extend.
        let mut current_key: Option<String> = None;
        let mut indent_level = 0usize;
        // Pending blank lines inside a value (configparser appends them, then rstrips).
        for (index, raw_line) in split_lines(text).enumerate() {
            let lineno = index + 1;
            let comment_start = comment_start(raw_line);
            let value = match comment_start {
                Some(start) => raw_line[..start].trim(),
                None => raw_line.trim(),
            };
            if value.is_empty() {
                // An empty line (not a comment line) is kept inside a multi-line value.
                if comment_start.is_none()
                    && let (Some(t), Some(key)) = (target, current_key.as_deref())
                    && let Some(v) = file.section_mut(t).value_mut(key)
                {
                    v.text.push('\n');
                    v.part_lines.push(lineno);
                }
                continue;
            }
            let indent = raw_line
                .char_indices()
                .find(|(_, c)| !c.is_whitespace())
                .map_or(0, |(i, _)| i);
            if let (Some(t), Some(key)) = (target, current_key.as_deref())
                && indent > indent_level
            {
                if let Some(v) = file.section_mut(t).value_mut(key) {
                    v.text.push('\n');
                    v.text.push_str(value);
                    v.part_lines.push(lineno);
                }
                continue;
            }
            indent_level = indent;
            if let Some(name) = section_header(value) {
                target = Some(if name == DEFAULT_SECTION {
                    Target::Defaults
                } else {
                    Target::Section(file.sections.position_or_insert(name))
                });
                current_key = None;
                continue;
            }
            let Some(t) = target else {
                return Err(IniError::MissingSectionHeader {
                    file: path.to_path_buf(),
                    line: lineno,
                });
            };
            let Some((key, val)) = split_option(value) else {
                return Err(IniError::Syntax {
                    file: path.to_path_buf(),
                    line: lineno,
                    text: value.to_owned(),
                });
            };
            let key = key.to_lowercase();
            file.section_mut(t).insert(
                key.clone(),
                IniValue {
                    text: val.to_owned(),
                    origin: Origin {
                        file: path.clone(),
                        line: lineno,
                    },
                    part_lines: vec![lineno],
                },
            );
            current_key = Some(key);
        }
        file.finish_values();
        Ok(file)
    }

    /// Read and parse the file at `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<IniFile, crate::LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| crate::LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(IniFile::parse(&text, path)?)
    }

    /// The section called `name` (case-sensitive, as in Python); `DEFAULT` is
    /// [`IniFile::defaults`], not a section.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(name)
    }

    /// Section names in order of first appearance (without `DEFAULT`).
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n)
    }

    /// Sections in order of first appearance (without `DEFAULT`).
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.sections.iter()
    }

    /// The value of `key` in `section` itself, falling back to `[DEFAULT]` (raw, as
    /// configparser's `get(..., raw=True)`).
    pub fn get(&self, section: &str, key: &str) -> Option<&IniValue> {
        self.section(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
    }

    fn section_mut(&mut self, target: Target) -> &mut Section {
        match target {
            Target::Defaults => &mut self.defaults,
            Target::Section(i) => self.sections.at_mut(i),
        }
    }

    /// configparser's `_join_multiline_values`: `'\n'.join(lines).rstrip()`.
    fn finish_values(&mut self) {
        let all = std::iter::once(&mut self.defaults).chain(self.sections.values_mut());
        for section in all {
            for (_, value) in section.entries.iter_mut() {
                let kept = value.text.trim_end().len();
                value.text.truncate(kept);
                let parts = value.text.split('\n').count();
                value.part_lines.truncate(parts);
            }
        }
    }
}

/// Lines as Python's universal-newline reading yields them (without the terminator).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\n', '\r']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

/// Where the comment of `line` starts: 0 for a full-line `#`/`;` comment, else the first `;`
/// at the start of the line or after whitespace (configparser's inline comment rule).
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        return Some(0);
    }
    let mut prev: Option<char> = None;
    for (i, c) in line.char_indices() {
        if c == ';' && prev.is_none_or(char::is_whitespace) {
            return Some(i);
        }
        prev = Some(c);
    }
    None
}

/// `[name]` at the start of the (stripped) line: the name runs to the last `]` (Python's
/// greedy `\[(?P<header>.+)\]`), must not be empty, and text after it is ignored.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then(|| &rest[..close])
}

/// `key = value` or `key : value` split at the first `=` or `:`; `None` when there is no
/// delimiter or the key is empty.
fn split_option(value: &str) -> Option<(&str, &str)> {
    let at = value.find(['=', ':'])?;
    let key = value[..at].trim_end();
    if key.is_empty() {
        return None;
    }
    Some((key, value[at + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> IniFile {
        IniFile::parse(text, "t.conf").expect("valid ini")
    }

    #[test]
    fn multi_line_values_keep_newlines_and_lines() {
        let f = parse(
            "[Definition]\nfailregex = ^a$\n            ^b$\n\n            ^c$\n\nignoreregex =\n",
        );
        let v = f.get("Definition", "failregex").expect("set");
        assert_eq!(v.text, "^a$\n^b$\n\n^c$");
        assert_eq!(v.part_lines, vec![2, 3, 4, 5]);
        assert_eq!(v.line_of_part(3), 5);
        assert_eq!(f.get("Definition", "ignoreregex").expect("set").text, "");
    }

    #[test]
    fn comments_full_line_and_inline() {
        let f = parse(
            "# c\n; c\n[S]\na = x ; comment\nb = x;not-comment\nc = y\n    # dropped\n    z\nd = \t;only comment\n",
        );
        assert_eq!(f.get("S", "a").expect("a").text, "x");
        assert_eq!(f.get("S", "b").expect("b").text, "x;not-comment");
        assert_eq!(f.get("S", "c").expect("c").text, "y\nz");
        assert_eq!(f.get("S", "d").expect("d").text, "");
    }

    #[test]
    fn keys_lowercased_delimiters_and_duplicates() {
        let f = parse("[S]\nKey: v1:x\nother = a=b\nkey = later\n[S]\nmore = 1\n");
        let s = f.section("S").expect("S");
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("key").expect("key").text, "later");
        assert_eq!(s.get("key").expect("key").origin.line, 4);
        assert_eq!(s.get("other").expect("other").text, "a=b");
        assert_eq!(
            s.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["key", "other", "more"]
        );
    }

    #[test]
    fn defaults_fall_back_and_headers_are_greedy() {
        let f = parse("[DEFAULT]\nd = 1\n[a]b] trailing\nx = 2\n");
        assert_eq!(f.section_names().collect::<Vec<_>>(), ["a]b"]);
        assert_eq!(f.get("a]b", "d").expect("default").text, "1");
        assert!(f.section("DEFAULT").is_none());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = IniFile::parse("x = 1\n", "f.conf").expect_err("no header");
        assert_eq!(
            e.to_string(),
            "f.conf:1: key or value before the first [section] header"
        );
        let e = IniFile::parse("[s]\n\nno delimiter here\n", "f.conf").expect_err("bad line");
        assert_eq!(e.location().1, 3);
        assert!(e.to_string().starts_with("f.conf:3: "));
        let e = IniFile::parse("[s]\n= v\n", "f.conf").expect_err("empty key");
        assert_eq!(e.location().1, 2);
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let f = parse("[s]\r\na = 1\r\n  2\rb = 3");
        assert_eq!(f.get("s", "a").expect("a").text, "1\n2");
        assert_eq!(f.get("s", "b").expect("b").origin.line, 4);
    }

    #[test]
    fn indented_key_after_header_then_same_indent_is_a_new_key() {
        let f = parse("[s]\n  a = 1\n  b = 2\n    c\n");
        assert_eq!(f.get("s", "a").expect("a").text, "1");
        assert_eq!(f.get("s", "b").expect("b").text, "2\nc");
    }
}
