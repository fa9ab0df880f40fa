//! Fail2Ban's layer over configparser: a set of files read as one (`X.conf`, `X.d/*.conf`,
//! `X.local`, `X.d/*.local`, each with its `[INCLUDES] before/after`), merged section by
//! section with `KNOWN/<section>` keeping the values a later file overrode, and `%(var)s`
//! interpolation including `%(section/var)s`, `%(known/var)s` and `%(default/var)s`.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::{InterpolateError, LoadError};
use crate::ini::{DEFAULT_SECTION, IniFile, IniValue, Origin, Section, Sections};

/// Python's `MAX_INTERPOLATION_DEPTH`: `%(a)s` may nest this many values deep.
pub const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The longest text one [`ConfigSet::get`] may produce (all lines of the value together).
/// Depth alone does not bound the size: ten values of ten references each expand to 10^10
/// bytes. Fail2Ban's longest shipped value expands to a few KiB.
pub const MAX_INTERPOLATED_LEN: usize = 1 << 20;

/// The raw text one [`ConfigSet::get`] may scan while expanding (every referenced value
/// counted each time it is expanded): bounds the work of references that multiply but
/// expand to little or nothing.
pub const MAX_INTERPOLATION_WORK: usize = 16 << 20;

/// How deep `[INCLUDES]` may nest (Fail2Ban's own configuration nests three deep).
pub const MAX_INCLUDE_DEPTH: usize = 64;

/// The section holding include lists.
const INCLUDES_SECTION: &str = "INCLUDES";

/// Prefix of the sections that keep overridden values for `%(known/var)s`.
const KNOWN_PREFIX: &str = "KNOWN/";

/// A text with the file and line it was written on (one line of an interpolated value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The text (no `\n`).
    pub text: String,
    /// Where the line (or the `%(…)s` reference that produced it) was written.
    pub origin: Origin,
}

/// Extra values visible to interpolation ahead of the section's own keys (configparser's
/// `vars`): a jail's `filter = name[key=value]` arguments, for instance. Keys are
/// lower-cased on insertion, as configparser does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    map: BTreeMap<String, String>,
}

impl Vars {
    /// No extra values.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Set `key` (lower-cased) to `value`.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.map.insert(key.to_lowercase(), value.into());
    }

    /// The value of `key` (lower-case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Whether `key` (lower-case) is set.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in iter {
            vars.insert(k.as_ref(), v);
        }
        vars
    }
}

/// Several INI files read as one configuration, as Fail2Ban's
/// `SafeConfigParserWithIncludes.read` merges them.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigSet {
    files: Vec<Arc<Path>>,
    defaults: Section,
    sections: Sections,
}

impl ConfigSet {
    /// Read `BASEDIR/NAME.conf`, `BASEDIR/NAME.d/*.conf`, `BASEDIR/NAME.local` and
    /// `BASEDIR/NAME.d/*.local` (those that exist, in this order, each directory sorted by
    /// name), with their includes. `name` may contain a directory (`filter.d/sshd`).
    pub fn load(basedir: &Path, name: &str) -> Result<ConfigSet, LoadError> {
        let base = basedir.join(name);
        let mut candidates = vec![with_suffix(&base, ".conf")];
        let dropin = with_suffix(&base, ".d");
        candidates.extend(dir_files(&dropin, ".conf")?);
        candidates.push(with_suffix(&base, ".local"));
        candidates.extend(dir_files(&dropin, ".local")?);
        let existing: Vec<PathBuf> = candidates.into_iter().filter(|p| p.is_file()).collect();
        if existing.is_empty() {
            return Err(LoadError::NotFound {
                name: name.to_owned(),
                dir: basedir.to_path_buf(),
            });
        }
        ConfigSet::read_files(&existing)
    }

    /// Read `paths` in order (each followed by its `.local` sibling when that exists and is
    /// not listed), expanding `[INCLUDES] before/after` recursively. Includes name files
    /// relative to the including file's directory; a missing include is skipped (as in
    /// Fail2Ban); an include cycle is an error naming the files.
    ///
    /// Every file is parsed once and merged once, at its last place in Fail2Ban's order
    /// (see [`Includes`]), so includes that share files (diamonds) stay linear; includes
    /// nest at most [`MAX_INCLUDE_DEPTH`] deep.
    pub fn read_files(paths: &[PathBuf]) -> Result<ConfigSet, LoadError> {
        let mut includes = Includes::default();
        let ordered = includes.expand(paths, &mut Vec::new())?;
        let mut set = ConfigSet {
            files: Vec::new(),
            defaults: Section::default(),
            sections: Sections::default(),
        };
        for path in ordered {
            if let Some(file) = includes.parsed.get(&path) {
                set.merge(file);
            }
        }
        Ok(set)
    }

    /// Build from already parsed files, merged in order (no include expansion).
    pub fn from_files(files: impl IntoIterator<Item = IniFile>) -> ConfigSet {
        let mut set = ConfigSet {
            files: Vec::new(),
            defaults: Section::default(),
            sections: Sections::default(),
        };
        for file in files {
            set.merge(&file);
        }
        set
    }

    /// Merge one file: DEFAULT keys override; a section's keys override the same section's
    /// earlier keys, the overridden values going to `KNOWN/<section>`; a conditional section
    /// `[Name?cond]` adds its keys to `Name` as `key?cond`.
    fn merge(&mut self, file: &IniFile) {
        self.files.push(file.path.clone());
        for (key, value) in file.defaults.iter() {
            self.defaults.insert(key.to_owned(), value.clone());
        }
        for (name, section) in file.sections() {
            let (name, suffix) = split_conditional(name);
            let incoming: Vec<(String, IniValue)> = section
                .iter()
                .map(|(k, v)| (format!("{k}{suffix}"), v.clone()))
                .collect();
            match self.sections.position(name) {
                Some(index) => {
                    let known: Vec<(String, IniValue)> = incoming
                        .iter()
                        .filter_map(|(k, _)| {
                            let old = self.sections.at(index).get(k)?;
                            Some((k.clone(), old.clone()))
                        })
                        .collect();
                    let known_name = format!("{KNOWN_PREFIX}{name}");
                    let known_section = self.section_mut_or_insert(&known_name);
                    for (k, v) in known {
                        known_section.insert(k, v);
                    }
                    let target = self.sections.at_mut(index);
                    for (k, v) in incoming {
                        target.insert(k, v);
                    }
                }
                None => {
                    let index = self.sections.position_or_insert(name);
                    let fresh = self.sections.at_mut(index);
                    for (k, v) in incoming {
                        fresh.insert(k, v);
                    }
                }
            }
        }
    }

    fn section_mut_or_insert(&mut self, name: &str) -> &mut Section {
        let index = self.sections.position_or_insert(name);
        self.sections.at_mut(index)
    }

    /// The files read, in merge order.
    pub fn files(&self) -> &[Arc<Path>] {
        &self.files
    }

    /// `[DEFAULT]` after merging.
    pub fn defaults(&self) -> &Section {
        &self.defaults
    }

    /// Add or replace a `[DEFAULT]` value (Fail2Ban adds `fail2ban_version` and
    /// `fail2ban_confpath` this way).
    pub fn set_default(&mut self, key: &str, value: IniValue) {
        self.defaults.insert(key.to_lowercase(), value);
    }

    /// The merged section `name` (own keys only), including `KNOWN/…` sections.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(name)
    }

    /// Names of the merged sections in first-appearance order, without `KNOWN/…` sections.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with(KNOWN_PREFIX))
    }

    /// Whether section `name` exists (`DEFAULT` always does).
    pub fn has_section(&self, name: &str) -> bool {
        name == DEFAULT_SECTION || self.section(name).is_some()
    }

    /// The raw value of `key` in `section`, falling back to `[DEFAULT]`; `None` when the
    /// section or the key is missing.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&IniValue> {
        if section == DEFAULT_SECTION {
            return self.defaults.get(key);
        }
        self.section(section)?
            .get(key)
            .or_else(|| self.defaults.get(key))
    }

    /// configparser's `get(section, key, vars=vars)` with Fail2Ban's interpolation: `vars`
    /// first, then the section, then `[DEFAULT]`; the result split into lines, each with the
    /// origin of the raw line it came from. `Ok(None)` when the section or the key is
    /// missing.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &Vars,
    ) -> Result<Option<Vec<Located>>, InterpolateError> {
        let key = key.to_lowercase();
        if !self.has_section(section) {
            return Ok(None);
        }
        if let Some(text) = vars.get(&key) {
            // A var has no file of its own: name the key's place in the section if any.
            let origin = self.get_raw(section, &key).map_or_else(
                || Origin {
                    file: Arc::from(Path::new("<arguments>")),
                    line: 0,
                },
                |v| v.origin.clone(),
            );
            let ctx = Context {
                set: self,
                section,
                vars,
                origin: &origin,
                work: &Cell::new(0),
            };
            let text = ctx.interpolate(&key, text, 1)?;
            return Ok(Some(split_located(&text, &origin)));
        }
        let Some(value) = self.get_raw(section, &key) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        // Shared by the parts: the bounds are on the whole value.
        let work = Cell::new(0);
        let mut len = 0usize;
        for (index, part) in value.text.split('\n').enumerate() {
            let origin = Origin {
                file: value.origin.file.clone(),
                line: value.line_of_part(index),
            };
            let ctx = Context {
                set: self,
                section,
                vars,
                origin: &origin,
                work: &work,
            };
            let text = ctx.interpolate(&key, part, 1)?;
            len += text.len() + 1;
            if len > MAX_INTERPOLATED_LEN {
                return Err(ctx.too_large(&key));
            }
            out.extend(split_located(&text, &origin));
        }
        Ok(Some(out))
    }

    /// [`ConfigSet::get`] joined back into one string.
    pub fn get_text(
        &self,
        section: &str,
        key: &str,
        vars: &Vars,
    ) -> Result<Option<String>, InterpolateError> {
        Ok(self
            .get(section, key, vars)?
            .map(|lines| join_lines(&lines)))
    }

    /// Fail2Ban's `get_ex`: a key `sec/opt` reads `opt` of section `sec` (`known/opt`: the
    /// overridden value of `section`, else its current one; `default/opt`: `[DEFAULT]`),
    /// interpolated in that section; otherwise (or when not found) a plain
    /// [`ConfigSet::get`].
    pub fn get_ex(
        &self,
        section: &str,
        key: &str,
        vars: &Vars,
    ) -> Result<Option<Vec<Located>>, InterpolateError> {
        if let Some((sec, opt)) = split_section_key(key) {
            let lower = sec.to_lowercase();
            let candidates: Vec<String> = if lower == "known" {
                vec![format!("{KNOWN_PREFIX}{section}"), section.to_owned()]
            } else if lower == "default" {
                vec![DEFAULT_SECTION.to_owned()]
            } else {
                vec![sec.to_owned()]
            };
            for candidate in candidates {
                if let Some(found) = self.get(&candidate, opt, &Vars::new())? {
                    return Ok(Some(found));
                }
            }
        }
        self.get(section, key, vars)
    }
}

/// Lines joined with `\n`.
pub(crate) fn join_lines(lines: &[Located]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line.text);
    }
    out
}

/// `text` split at `\n`, every line with `origin`.
pub(crate) fn split_located(text: &str, origin: &Origin) -> Vec<Located> {
    text.split('\n')
        .map(|t| Located {
            text: t.to_owned(),
            origin: origin.clone(),
        })
        .collect()
}

/// `sec/opt` as Fail2Ban's `^([\w\-]+)/([^\s>]+)$`.
fn split_section_key(key: &str) -> Option<(&str, &str)> {
    let (sec, opt) = key.split_once('/')?;
    let sec_ok = !sec.is_empty()
        && sec
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let opt_ok = !opt.is_empty() && !opt.chars().any(|c| c.is_whitespace() || c == '>');
    (sec_ok && opt_ok).then_some((sec, opt))
}

/// `Name?cond` → (`Name`, `?cond`) when `Name` is a word (Fail2Ban's `^(\w+)(\?.+)$`),
/// otherwise (`name`, ``).
fn split_conditional(name: &str) -> (&str, &str) {
    if let Some(q) = name.find('?') {
        let (base, cond) = name.split_at(q);
        if !base.is_empty()
            && base.chars().all(|c| c.is_alphanumeric() || c == '_')
            && cond.len() > 1
        {
            return (base, cond);
        }
    }
    (name, "")
}

/// One interpolation: which section's map and vars apply, and where the outer value was
/// written (for errors).
struct Context<'a> {
    set: &'a ConfigSet,
    section: &'a str,
    vars: &'a Vars,
    origin: &'a Origin,
    /// Raw bytes scanned so far for this value (see [`MAX_INTERPOLATION_WORK`]).
    work: &'a Cell<usize>,
}

impl Context<'_> {
    fn too_large(&self, key: &str) -> InterpolateError {
        InterpolateError::TooLarge {
            origin: self.origin.clone(),
            key: key.to_owned(),
            limit: MAX_INTERPOLATED_LEN,
        }
    }

    /// configparser's `BasicInterpolation._interpolate_some` with Fail2Ban's additions
    /// (`__name__` and `%(section/key)s`).
    fn interpolate(&self, key: &str, rest: &str, depth: usize) -> Result<String, InterpolateError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(InterpolateError::Depth {
                origin: self.origin.clone(),
                key: key.to_owned(),
                limit: MAX_INTERPOLATION_DEPTH,
            });
        }
        self.work.set(self.work.get() + rest.len() + 1);
        if self.work.get() > MAX_INTERPOLATION_WORK {
            return Err(InterpolateError::TooMuchWork {
                origin: self.origin.clone(),
                key: key.to_owned(),
                limit: MAX_INTERPOLATION_WORK,
            });
        }
        let mut out = String::new();
        let mut rest = rest;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if rest.starts_with("%(") {
                let close = rest
                    .find(")s")
                    .filter(|&c| c > 2 && !rest[2..c].contains(')'));
                let Some(close) = close else {
                    return Err(InterpolateError::Syntax {
                        origin: self.origin.clone(),
                        key: key.to_owned(),
                        message: format!("bad interpolation variable reference {rest:?}"),
                    });
                };
                let name = &rest[2..close];
                rest = &rest[close + 2..];
                let Some(value) = self.lookup(name) else {
                    return Err(InterpolateError::Missing {
                        origin: self.origin.clone(),
                        key: key.to_owned(),
                        reference: name.to_owned(),
                    });
                };
                if value.contains('%') {
                    out.push_str(&self.interpolate(key, &value, depth + 1)?);
                } else {
                    out.push_str(&value);
                }
                if out.len() > MAX_INTERPOLATED_LEN {
                    return Err(self.too_large(key));
                }
            } else {
                return Err(InterpolateError::Syntax {
                    origin: self.origin.clone(),
                    key: key.to_owned(),
                    message: format!("'%' must be followed by '%' or '(', found {rest:?}"),
                });
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The raw value `%(name)s` refers to: `__name__`, vars, the section, `[DEFAULT]`, then
    /// Fail2Ban's `section/key` mapping.
    fn lookup(&self, name: &str) -> Option<String> {
        let var = name.to_lowercase();
        if var == "__name__" {
            return Some(self.section.to_owned());
        }
        if let Some(v) = self.vars.get(&var) {
            return Some(v.to_owned());
        }
        if let Some(v) = self.set.get_raw(self.section, &var) {
            return Some(v.text.clone());
        }
        let (sec, opt) = name.split_once('/')?;
        if sec.is_empty()
            || !sec
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        let opt = opt.to_lowercase();
        let lower = sec.to_lowercase();
        let own = if lower == "default" {
            None
        } else if lower == "known" {
            Some(
                self.set
                    .section(&format!("{KNOWN_PREFIX}{}", self.section))
                    .and_then(|s| s.get(&opt)),
            )
        } else {
            // An unknown section is no mapping at all (Python: `continue`).
            Some(self.set.section(sec)?.get(&opt))
        };
        match own {
            Some(Some(v)) => Some(v.text.clone()),
            _ => self.set.defaults.get(&opt).map(|v| v.text.clone()),
        }
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `dir/*SUFFIX` sorted by name; a missing directory is empty.
fn dir_files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, LoadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(source) => {
            return Err(LoadError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(suffix) && !name.to_string_lossy().starts_with('.') {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A path without `.` and `..` components (lexically), to recognise the same file named
/// two ways in an include cycle.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The expansion of `[INCLUDES]` for one [`ConfigSet::read_files`]: every file is parsed
/// once and expanded once, however often it is included.
///
/// Fail2Ban lists an included file once per path to it, so a "diamond" (two files that
/// both include a third) merges the shared file twice, and 30 levels of diamonds 2^30
/// times. Here each file is merged once, at its *last* place in Fail2Ban's order: every
/// key ends with the value Fail2Ban gives it (the last file setting it is the same), and
/// the list stays linear in the number of files. Only `%(known/…)s` can differ, when a file
/// overrides a value that its own second inclusion would set again.
#[derive(Default)]
struct Includes {
    /// Parsed files, by normalized path.
    parsed: HashMap<PathBuf, Arc<IniFile>>,
    /// Each finished file's expansion (its includes and itself, in merge order).
    expanded: HashMap<PathBuf, Arc<[PathBuf]>>,
}

impl Includes {
    /// `_expandConfFilesWithLocal` then the includes of each: `paths`, each followed by its
    /// `.local` sibling when that exists and is not listed; `stack` holds the including
    /// files (for cycles). Returns normalized paths in merge order, each once.
    fn expand(
        &mut self,
        paths: &[PathBuf],
        stack: &mut Vec<(PathBuf, Option<Origin>)>,
    ) -> Result<Vec<PathBuf>, LoadError> {
        let mut with_local: Vec<PathBuf> = Vec::new();
        for path in paths {
            with_local.push(path.clone());
            let local = path.with_extension("local");
            if !paths.contains(&local) && local != *path && local.is_file() {
                with_local.push(local);
            }
        }
        let mut order = Vec::new();
        for path in with_local {
            if !path.is_file() {
                // Fail2Ban (configparser) silently skips files it cannot find.
                continue;
            }
            order.extend(self.expand_file(&path, stack)?.iter().cloned());
        }
        Ok(keep_last(order))
    }

    /// One file: its before-includes, itself, its after-includes.
    fn expand_file(
        &mut self,
        path: &Path,
        stack: &mut Vec<(PathBuf, Option<Origin>)>,
    ) -> Result<Arc<[PathBuf]>, LoadError> {
        let me = normalize(path);
        if let Some(done) = self.expanded.get(&me) {
            return Ok(done.clone());
        }
        let file = IniFile::read(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut before = Vec::new();
        let mut after = Vec::new();
        if file.section(INCLUDES_SECTION).is_some() {
            for (option, list) in [("before", &mut before), ("after", &mut after)] {
                let Some(value) = file.get(INCLUDES_SECTION, option) else {
                    continue;
                };
                for (index, name) in value.text.split('\n').enumerate() {
                    let target = if Path::new(name).is_absolute() {
                        PathBuf::from(name)
                    } else {
                        dir.join(name)
                    };
                    let origin = Origin {
                        file: value.origin.file.clone(),
                        line: value.line_of_part(index),
                    };
                    list.push((target, origin));
                }
            }
        }
        self.parsed.insert(me.clone(), Arc::new(file));
        let mut order = Vec::new();
        for (list, is_before) in [(before, true), (after, false)] {
            if !is_before {
                order.push(me.clone());
            }
            for (target, origin) in list {
                let norm = normalize(&target);
                if norm == me || stack.iter().any(|(p, _)| normalize(p) == norm) {
                    let mut chain: Vec<String> =
                        stack.iter().map(|(p, _)| p.display().to_string()).collect();
                    chain.push(path.display().to_string());
                    chain.push(target.display().to_string());
                    return Err(LoadError::IncludeCycle { origin, chain });
                }
                if stack.len() >= MAX_INCLUDE_DEPTH {
                    return Err(LoadError::IncludeDepth {
                        origin,
                        limit: MAX_INCLUDE_DEPTH,
                    });
                }
                stack.push((path.to_path_buf(), Some(origin)));
                let result = self.expand(&[target], stack);
                stack.pop();
                order.extend(result?);
            }
        }
        let order: Arc<[PathBuf]> = keep_last(order).into();
        self.expanded.insert(me, order.clone());
        Ok(order)
    }
}

/// `paths` with each path kept only at its last place.
fn keep_last(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<PathBuf> = paths
        .into_iter()
        .rev()
        .filter(|p| seen.insert(p.clone()))
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> ConfigSet {
        ConfigSet::from_files(
            files
                .iter()
                .map(|(name, text)| IniFile::parse(text, name).expect("valid ini")),
        )
    }

    #[test]
    fn interpolation_uses_vars_section_defaults_and_section_refs() {
        let s = set(&[(
            "a.conf",
            "[DEFAULT]\nd = D\n[lt_file]\np = P%(d)s\n[Definition]\nx = %(d)s-%(y)s-%(lt_file/p)s-%(default/d)s-%(__name__)s-100%%\ny = Y\n",
        )]);
        let v = s
            .get_text("Definition", "x", &Vars::new())
            .expect("ok")
            .expect("set");
        assert_eq!(v, "D-Y-PD-D-Definition-100%");
        let vars: Vars = [("Y", "V")].into_iter().collect();
        let v = s
            .get_text("Definition", "x", &vars)
            .expect("ok")
            .expect("set");
        assert_eq!(v, "D-V-PD-D-Definition-100%");
        assert_eq!(s.get("Definition", "nope", &Vars::new()).expect("ok"), None);
        assert_eq!(s.get("Nope", "x", &Vars::new()).expect("ok"), None);
    }

    #[test]
    fn interpolation_depth_limit_is_an_error_naming_the_line() {
        let s = set(&[("a.conf", "[s]\na = %(b)s\nb = %(a)s\n")]);
        let e = s.get("s", "a", &Vars::new()).expect_err("loop");
        assert!(matches!(e, InterpolateError::Depth { .. }), "{e}");
        assert!(e.to_string().starts_with("a.conf:2: "), "{e}");
        // Ten levels are fine, eleven are not.
        let mut text = String::from("[s]\nv0 = end\n");
        for i in 1..=11 {
            text.push_str(&format!("v{i} = %(v{})s\n", i - 1));
        }
        let s = set(&[("d.conf", &text)]);
        assert_eq!(
            s.get_text("s", "v9", &Vars::new()).expect("ok").as_deref(),
            Some("end")
        );
        assert_eq!(
            s.get_text("s", "v10", &Vars::new()).expect("ok").as_deref(),
            Some("end")
        );
        assert!(s.get("s", "v11", &Vars::new()).is_err());
    }

    #[test]
    fn missing_reference_and_bad_syntax_are_errors() {
        let s = set(&[("a.conf", "[s]\na = x\n  %(nope)s\nb = 5%\n")]);
        let e = s.get("s", "a", &Vars::new()).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "a.conf:3: a: bad interpolation: %(nope)s is not defined"
        );
        assert!(s.get("s", "b", &Vars::new()).is_err());
    }

    #[test]
    fn later_files_override_and_known_keeps_the_previous_value() {
        let s = set(&[
            ("f.conf", "[Definition]\nfailregex = ^conf$\nother = 1\n"),
            (
                "f.local",
                "[Definition]\nfailregex = %(known/failregex)s\n            ^local$\n",
            ),
        ]);
        let lines = s
            .get("Definition", "failregex", &Vars::new())
            .expect("ok")
            .expect("set");
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["^conf$", "^local$"]);
        assert_eq!(lines[0].origin.to_string(), "f.local:2");
        assert_eq!(lines[1].origin.to_string(), "f.local:3");
        assert_eq!(s.section_names().collect::<Vec<_>>(), ["Definition"]);
        // known/ of a key nobody overrode falls back to DEFAULT (missing there: an error).
        let s = set(&[(
            "f.conf",
            "[DEFAULT]\nz = dz\n[Definition]\na = %(known/z)s\n",
        )]);
        assert_eq!(
            s.get_text("Definition", "a", &Vars::new())
                .expect("ok")
                .as_deref(),
            Some("dz")
        );
    }

    #[test]
    fn conditional_sections_become_suffixed_keys() {
        let s = set(&[(
            "a.conf",
            "[Definition]\nx = 4\n[Definition?family=inet6]\nx = 6\n",
        )]);
        let d = s.section("Definition").expect("merged");
        assert_eq!(d.get("x").expect("x").text, "4");
        assert_eq!(d.get("x?family=inet6").expect("x6").text, "6");
    }
}
