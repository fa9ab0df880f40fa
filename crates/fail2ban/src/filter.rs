//! A Fail2Ban filter definition (`filter.d/NAME.conf` + `.local` + includes) resolved as
//! Fail2Ban's `FilterReader` does: `[Definition]` interpolated with the jail's arguments,
//! `[Init]` values and arguments as tags, `<tag>` substitution, then split into regexes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::args::shell_words;
use crate::error::{InterpolateError, LoadError};
use crate::ini::Origin;
use crate::layer::{
    ConfigSet, Located, MAX_INTERPOLATED_LEN, MAX_INTERPOLATION_WORK, Vars, join_lines,
};

/// Fail2Ban's `MAX_TAG_REPLACE_COUNT`: one tag may be substituted this often in one value.
const MAX_TAG_REPLACE_COUNT: usize = 25;

/// The `[Definition]` options a filter reader takes (Fail2Ban's `FilterReader._configOpts`);
/// a jail may set them too, overriding the filter's.
pub(crate) const FILTER_OPTIONS: [&str; 7] = [
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// One `journalmatch` line split into journalctl words (`FIELD=value` or `+`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalMatch {
    /// Shell-split words (`shlex.split`), never given to a shell.
    pub words: Vec<String>,
    /// Where the line was written.
    pub origin: Origin,
}

/// A filter as Fail2Ban would hand it to its server: final regex texts (tags such as
/// `<HOST>` and `<F-USER>` still in them, for the regex engine to expand), each with the file
/// and line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterDef {
    /// The filter's name (`sshd`) or file stem.
    pub name: String,
    /// Every file read, in merge order (includes, `.conf`, `.local`).
    pub files: Vec<PathBuf>,
    /// `prefregex` (unset or empty: `None`).
    pub prefregex: Option<Located>,
    /// `failregex`, one per non-empty line.
    pub failregex: Vec<Located>,
    /// `ignoreregex`, one per non-empty line.
    pub ignoreregex: Vec<Located>,
    /// `datepattern` (unset or empty: `None`, meaning Fail2Ban's default date templates).
    pub datepattern: Option<Located>,
    /// `maxlines`: how many lines a multi-line failregex may span.
    pub maxlines: Option<(usize, Origin)>,
    /// `journalmatch`, one entry per non-empty line.
    pub journalmatch: Vec<JournalMatch>,
    /// `usedns` when the filter sets it (`yes`, `warn`, `no`, `raw`).
    pub usedns: Option<Located>,
    /// Every combined option after substitution (the seven above as text, plus `[Init]`
    /// values, `known/…` values and the arguments, e.g. `mode`), for options a caller needs
    /// that have no field (failJSON's per-file options, `mode`).
    pub options: BTreeMap<String, String>,
}

impl FilterDef {
    /// Load `BASEDIR/filter.d/NAME.conf` (+ `.d/`, `.local`, includes) with the arguments of
    /// `filter = NAME[key=value, …]` (they override `[Init]` and `[Definition]` values).
    pub fn load(
        basedir: &Path,
        name: &str,
        args: &[(String, String)],
    ) -> Result<FilterDef, LoadError> {
        let set = ConfigSet::load(basedir, &format!("filter.d/{name}"))?;
        FilterDef::from_set(&set, name, args, None)
    }

    /// [`FilterDef::load`] as a jail with `backend` loads it: unless the arguments or the
    /// filter's own `[Definition]` set `logtype`, it is `journal` for `systemd*` backends and
    /// `file` otherwise (Fail2Ban's `applyAutoOptions`).
    pub fn load_for_backend(
        basedir: &Path,
        name: &str,
        args: &[(String, String)],
        backend: &str,
    ) -> Result<FilterDef, LoadError> {
        let set = ConfigSet::load(basedir, &format!("filter.d/{name}"))?;
        FilterDef::from_set(&set, name, args, Some(backend))
    }

    /// Load a filter file given by path (as `fail2ban-regex` does with a file argument, and
    /// as `portcullis_config::FilterRef::Fail2Ban` names it): for `DIR/NAME.conf`, the same
    /// set as [`FilterDef::load`] (`NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local`,
    /// includes); for any other name, that file, its `.local` sibling and includes.
    pub fn load_file(path: &Path, args: &[(String, String)]) -> Result<FilterDef, LoadError> {
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let set = match (path.extension(), path.parent()) {
            (Some(ext), Some(dir)) if ext == "conf" => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                ConfigSet::load(dir, &name)?
            }
            _ => ConfigSet::read_files(&[path.to_path_buf()])?,
        };
        FilterDef::from_set(&set, &name, args, None)
    }

    /// The filter a jail's [`portcullis_config::FilterRef::Fail2Ban`] names (what the daemon
    /// calls for such a jail); `None` for native filter references.
    pub fn from_ref(filter: &portcullis_config::FilterRef) -> Option<Result<FilterDef, LoadError>> {
        match filter {
            portcullis_config::FilterRef::Fail2Ban { path, args } => {
                Some(FilterDef::load_file(path, args))
            }
            _ => None,
        }
    }

    /// The `logtype` Fail2Ban's `applyAutoOptions` adds for a jail with `backend`: `journal`
    /// for `systemd*`, else `file`; `None` when the arguments or the filter's own
    /// `[Definition]` already set it.
    pub fn auto_logtype(
        set: &ConfigSet,
        args: &[(String, String)],
        backend: &str,
    ) -> Option<&'static str> {
        let has_arg = args.iter().any(|(k, v)| k == "logtype" && !v.is_empty());
        let own = set
            .section("Definition")
            .is_some_and(|d| d.contains("logtype"));
        if has_arg || own {
            return None;
        }
        Some(if backend.starts_with("systemd") {
            "journal"
        } else {
            "file"
        })
    }

    /// Resolve a filter from an already merged file set. `backend`: see
    /// [`FilterDef::load_for_backend`].
    pub fn from_set(
        set: &ConfigSet,
        name: &str,
        args: &[(String, String)],
        backend: Option<&str>,
    ) -> Result<FilterDef, LoadError> {
        let args_origin = Origin {
            file: Arc::from(Path::new("<filter arguments>")),
            line: 0,
        };
        // `_initOpts`: the arguments, in order, later duplicates winning.
        let mut init: Vec<(String, Vec<Located>)> = Vec::new();
        let set_init = |init: &mut Vec<(String, Vec<Located>)>,
                        key: String,
                        value: Vec<Located>| {
            match init.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => init.push((key, value)),
            }
        };
        for (k, v) in args {
            set_init(&mut init, k.clone(), located_lines(v, &args_origin));
        }
        if let Some(logtype) = backend.and_then(|b| FilterDef::auto_logtype(set, args, b)) {
            set_init(
                &mut init,
                "logtype".to_owned(),
                located_lines(logtype, &args_origin),
            );
        }
        let vars: Vars = init
            .iter()
            .map(|(k, v)| (k.as_str(), join_lines(v)))
            .collect();
        // `getOptions`: the Definition options not given as arguments.
        let mut combined: Vec<(String, Vec<Located>)> = Vec::new();
        for opt in FILTER_OPTIONS {
            if init.iter().any(|(k, _)| k == opt) {
                continue;
            }
            if let Some(value) = set.get("Definition", opt, &vars)? {
                combined.push((opt.to_owned(), value));
            }
        }
        if let Some(section) = set.section("Init") {
            let keys: Vec<String> = section.iter().map(|(k, _)| k.to_owned()).collect();
            for key in keys {
                let Some(value) = set.get("Init", &key, &Vars::new())? else {
                    continue;
                };
                if !key.starts_with("known/") {
                    set_init(&mut init, format!("known/{key}"), value.clone());
                }
                if !init.iter().any(|(k, _)| *k == key) {
                    set_init(&mut init, key, value);
                }
            }
        }
        for (k, v) in init {
            match combined.iter_mut().find(|(ck, _)| *ck == k) {
                Some(slot) => slot.1 = v,
                None => combined.push((k, v)),
            }
        }
        let mut tags = TagResolver {
            set,
            vars: &vars,
            combined: &combined,
            ignore: combined
                .iter()
                .filter_map(|(k, _)| conditional_base(k))
                .map(str::to_owned)
                .collect(),
            cache: HashMap::new(),
        };
        let mut options = BTreeMap::new();
        let mut resolved: HashMap<String, Vec<Located>> = HashMap::new();
        for (key, value) in &combined {
            let value = if tags.ignore.iter().any(|i| i == key) {
                value.clone()
            } else {
                tags.substitute(key, value.clone())?
            };
            options.insert(key.clone(), join_lines(&value));
            resolved.insert(key.clone(), value);
        }
        let single = |key: &str| -> Option<Located> {
            let lines = resolved.get(key)?;
            let text = join_lines(lines);
            let origin = lines.first()?.origin.clone();
            (!text.is_empty()).then_some(Located { text, origin })
        };
        let multi = |key: &str| -> Vec<Located> {
            resolved
                .get(key)
                .map(|lines| {
                    lines
                        .iter()
                        .filter(|l| !l.text.is_empty())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let maxlines = match single("maxlines") {
            None => None,
            Some(v) => Some((
                v.text
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| LoadError::Invalid {
                        origin: v.origin.clone(),
                        key: "maxlines".to_owned(),
                        message: format!("expected a number of lines, found {:?}", v.text),
                    })?,
                v.origin,
            )),
        };
        let mut journalmatch = Vec::new();
        for line in multi("journalmatch") {
            let words = shell_words(&line.text).map_err(|message| LoadError::Invalid {
                origin: line.origin.clone(),
                key: "journalmatch".to_owned(),
                message,
            })?;
            journalmatch.push(JournalMatch {
                words,
                origin: line.origin,
            });
        }
        Ok(FilterDef {
            name: name.to_owned(),
            files: set.files().iter().map(|p| p.to_path_buf()).collect(),
            prefregex: single("prefregex"),
            failregex: multi("failregex"),
            ignoreregex: multi("ignoreregex"),
            datepattern: single("datepattern"),
            maxlines,
            journalmatch,
            usedns: single("usedns"),
            options,
        })
    }

    /// A combined option by name (`mode`, `logtype`, `known/failregex`, …).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// `text` as lines, each with `origin`.
fn located_lines(text: &str, origin: &Origin) -> Vec<Located> {
    text.split('\n')
        .map(|t| Located {
            text: t.to_owned(),
            origin: origin.clone(),
        })
        .collect()
}

/// `name?cond` → `name` (Fail2Ban's `CONDITIONAL_RE`).
fn conditional_base(key: &str) -> Option<&str> {
    let (base, cond) = key.split_at(key.find('?')?);
    (!base.is_empty() && cond.len() > 1 && base.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then_some(base)
}

/// The first `<tag>` (`<([^ <>]+)>`) in `text` at or after byte `from`: (start, end, name).
fn find_tag(text: &str, from: usize) -> Option<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(rel) = text.get(at..)?.find('<') {
        let start = at + rel;
        let name_len = text[start + 1..]
            .find([' ', '<', '>'])
            .unwrap_or(text.len() - start - 1);
        let end = start + 1 + name_len;
        if name_len > 0 && bytes.get(end) == Some(&b'>') {
            return Some((start, end + 1, &text[start + 1..end]));
        }
        at = start + 1;
    }
    None
}

/// Fail2Ban's `substituteRecursiveTags` with `getCombOption` as the fallback lookup.
struct TagResolver<'a> {
    set: &'a ConfigSet,
    vars: &'a Vars,
    combined: &'a [(String, Vec<Located>)],
    ignore: Vec<String>,
    /// `getCombOption`'s cache: `[Definition]` (or `section/key`) values by tag.
    cache: HashMap<String, Option<Vec<Located>>>,
}

impl TagResolver<'_> {
    /// The replacement for `<tag>`: a combined option, else the interpolated `[Definition]`
    /// value (`get_ex`), else none (the tag stays, e.g. `<HOST>`).
    fn lookup(&mut self, tag: &str) -> Result<Option<Vec<Located>>, InterpolateError> {
        if let Some((_, v)) = self.combined.iter().find(|(k, _)| k == tag) {
            return Ok(Some(v.clone()));
        }
        if let Some(found) = self.cache.get(tag) {
            return Ok(found.clone());
        }
        let found = self.set.get_ex("Definition", tag, self.vars)?;
        self.cache.insert(tag.to_owned(), found.clone());
        Ok(found)
    }

    /// Replace every resolvable `<tag>` in `value` (the value of `key`), rescanning inserted
    /// text; a tag equal to `key` or replaced too often is an error.
    ///
    /// Bounded like `%(…)s` interpolation: the value may not grow beyond
    /// [`MAX_INTERPOLATED_LEN`] (25 replacements of each of many tags that double the text
    /// would be exponential), and the text rebuilt by replacements may not exceed
    /// [`MAX_INTERPOLATION_WORK`].
    fn substitute(
        &mut self,
        key: &str,
        mut lines: Vec<Located>,
    ) -> Result<Vec<Located>, InterpolateError> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut work = 0usize;
        // Passes until nothing changes: replacing `<mode>` in `<re-<mode>>` makes a new tag
        // that starts before the scan position (Fail2Ban's outer `while repFlag` loop).
        loop {
            let (next, changed) = self.substitute_pass(key, lines, &mut counts, &mut work)?;
            lines = next;
            if !changed {
                return Ok(lines);
            }
        }
    }

    /// One scan over `lines`; whether anything was replaced.
    fn substitute_pass(
        &mut self,
        key: &str,
        mut lines: Vec<Located>,
        counts: &mut HashMap<String, usize>,
        work: &mut usize,
    ) -> Result<(Vec<Located>, bool), InterpolateError> {
        let mut changed = false;
        let mut index = 0;
        let mut pos = 0;
        while index < lines.len() {
            let Some((start, end, tag)) = find_tag(&lines[index].text, pos) else {
                index += 1;
                pos = 0;
                continue;
            };
            let tag = tag.to_owned();
            if self.ignore.contains(&tag) {
                pos = end;
                continue;
            }
            let count = counts.entry(tag.clone()).or_insert(0);
            if tag == key || *count >= MAX_TAG_REPLACE_COUNT {
                return Err(InterpolateError::TagRecursion {
                    origin: lines[index].origin.clone(),
                    key: key.to_owned(),
                    tag,
                });
            }
            let Some(replacement) = self.lookup(&tag)? else {
                pos = end;
                continue;
            };
            *count += 1;
            changed = true;
            let replacement: Vec<String> = replacement.into_iter().map(|l| l.text).collect();
            let pattern = format!("<{tag}>");
            let mut rebuilt: Vec<Located> = lines[..index].to_vec();
            for (j, line) in lines.iter().enumerate().skip(index) {
                let from = if j == index { start } else { 0 };
                rebuilt.extend(replace_in_line(line, from, &pattern, &replacement));
            }
            let len: usize = rebuilt.iter().map(|l| l.text.len() + 1).sum();
            *work += len;
            if len > MAX_INTERPOLATED_LEN {
                return Err(InterpolateError::TooLarge {
                    origin: lines[index].origin.clone(),
                    key: key.to_owned(),
                    limit: MAX_INTERPOLATED_LEN,
                });
            }
            if *work > MAX_INTERPOLATION_WORK {
                return Err(InterpolateError::TooMuchWork {
                    origin: lines[index].origin.clone(),
                    key: key.to_owned(),
                    limit: MAX_INTERPOLATION_WORK,
                });
            }
            lines = rebuilt;
            pos = start;
        }
        Ok((lines, changed))
    }
}

/// `line` with every `pattern` at or after byte `from` replaced by the (multi-line)
/// `replacement`; all resulting lines keep `line`'s origin.
fn replace_in_line(
    line: &Located,
    from: usize,
    pattern: &str,
    replacement: &[String],
) -> Vec<Located> {
    let mut out = Vec::new();
    let mut current = line.text[..from].to_owned();
    let mut rest = &line.text[from..];
    while let Some(at) = rest.find(pattern) {
        current.push_str(&rest[..at]);
        for (k, piece) in replacement.iter().enumerate() {
            if k > 0 {
                out.push(Located {
                    text: std::mem::take(&mut current),
                    origin: line.origin.clone(),
                });
            }
            current.push_str(piece);
        }
        rest = &rest[at + pattern.len()..];
    }
    current.push_str(rest);
    out.push(Located {
        text: current,
        origin: line.origin.clone(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ini::IniFile;

    fn filter(files: &[(&str, &str)], args: &[(&str, &str)]) -> Result<FilterDef, LoadError> {
        let set = ConfigSet::from_files(
            files
                .iter()
                .map(|(name, text)| IniFile::parse(text, name).expect("valid ini")),
        );
        let args: Vec<(String, String)> = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        FilterDef::from_set(&set, "t", &args, None)
    }

    const MODAL: &str = "[INCLUDES]\n[Init]\nmaxlines = 2\n[Definition]\n\
        _p = ^pre \nmode = normal\nre-normal = ^n <HOST>$\nre-extra = ^x1 <HOST>$\n   ^x2 <HOST>$\n\
        failregex = %(_p)s<F-USER>\\S+</F-USER> <HOST>\n            <re-<mode>>\n\
        ignoreregex =\njournalmatch = _SYSTEMD_UNIT=a.service + _COMM=a\n";

    #[test]
    fn tags_modes_and_init_resolve_with_lines() {
        let f = filter(&[("t.conf", MODAL)], &[]).expect("ok");
        let texts: Vec<&str> = f.failregex.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["^pre<F-USER>\\S+</F-USER> <HOST>", "^n <HOST>$"]);
        assert_eq!(f.failregex[1].origin.line, 11);
        assert_eq!(f.maxlines.as_ref().map(|m| m.0), Some(2));
        assert!(f.ignoreregex.is_empty());
        assert_eq!(
            f.journalmatch[0].words,
            ["_SYSTEMD_UNIT=a.service", "+", "_COMM=a"]
        );
        assert_eq!(f.option("known/maxlines"), Some("2"));
        let f = filter(
            &[("t.conf", MODAL)],
            &[("mode", "extra"), ("maxlines", "5")],
        )
        .expect("ok");
        let texts: Vec<&str> = f.failregex.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "^pre<F-USER>\\S+</F-USER> <HOST>",
                "^x1 <HOST>$",
                "^x2 <HOST>$"
            ]
        );
        assert_eq!(f.maxlines.as_ref().map(|m| m.0), Some(5));
        assert_eq!(f.option("known/maxlines"), Some("2"));
    }

    #[test]
    fn local_extends_with_known() {
        let f = filter(
            &[
                ("t.conf", "[Definition]\nfailregex = ^a <HOST>\n"),
                ("t.local", "[Definition]\nfailregex = %(known/failregex)s\n  ^b <HOST>\nignoreregex = ^ok\n"),
            ],
            &[],
        )
        .expect("ok");
        let got: Vec<String> = f
            .failregex
            .iter()
            .map(|l| format!("{} {}", l.origin, l.text))
            .collect();
        assert_eq!(got, ["t.local:2 ^a <HOST>", "t.local:3 ^b <HOST>"]);
        assert_eq!(f.ignoreregex[0].text, "^ok");
    }

    #[test]
    fn self_referencing_tags_are_errors() {
        let e = filter(
            &[("t.conf", "[Definition]\nfailregex = x <failregex>\n")],
            &[],
        )
        .expect_err("loop");
        assert!(
            e.to_string().contains("tag <failregex> refers to itself"),
            "{e}"
        );
        let e = filter(
            &[(
                "t.conf",
                "[Definition]\na = <b>\nb = <a>\nfailregex = <a>\n",
            )],
            &[],
        )
        .expect_err("loop");
        assert!(e.to_string().starts_with("t.conf:4: failregex: "), "{e}");
    }

    #[test]
    fn find_tag_follows_fail2bans_pattern() {
        assert_eq!(find_tag("a <b c> <d<e>>", 0).map(|t| t.2), Some("e"));
        assert_eq!(find_tag("<HOST>", 0), Some((0, 6, "HOST")));
        assert_eq!(find_tag("<>", 0), None);
    }
}
