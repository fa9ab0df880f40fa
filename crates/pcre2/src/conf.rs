//! A compact reader for `filter.d` files (sections, `[INCLUDES]`, `%(…)s` and `<…>`
//! substitution, `[Init]`, arguments), enough to turn a Fail2Ban filter into
//! [`FilterOptions`]. The full configuration reader (jails, actions, errors with file and
//! line for every value) is `portcullis-fail2ban`; this one serves `test-filter` and the
//! corpus tests until that crate exposes filter definitions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::filter::FilterOptions;
use crate::tags::UseDns;

/// Interpolation and include nesting bound (configparser's is 10).
const MAX_DEPTH: usize = 10;
/// Fail2Ban's bound on replacing one tag inside one value.
const MAX_TAG_REPLACE: usize = 25;

/// Why a filter definition could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither `NAME.conf` nor `NAME.local` exists.
    #[error("filter {0:?} not found")]
    NotFound(String),
    /// Interpolation did not terminate or referenced itself.
    #[error("{0}")]
    Interpolation(String),
    /// `maxlines` or `usedns` has an unusable value.
    #[error("bad value for {key}: {value:?}")]
    BadValue {
        /// The option.
        key: &'static str,
        /// Its value.
        value: String,
    },
}

/// Section → key → values in the order files set them (the last is current, the one
/// before is what `known/` refers to).
#[derive(Default, Debug)]
struct Config {
    sections: HashMap<String, HashMap<String, Vec<String>>>,
    /// Keys in first-seen order per section (Fail2Ban iterates `[Init]` in order).
    order: HashMap<String, Vec<String>>,
}

impl Config {
    fn read(&mut self, path: &Path, depth: usize) -> Result<(), LoadError> {
        if depth > MAX_DEPTH {
            return Err(LoadError::Interpolation(format!("{}: includes nested too deep", path.display())));
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
        let parsed = parse_ini(&text);
        let dir = path.parent().unwrap_or(Path::new("."));
        let include = |key: &str| -> Vec<PathBuf> {
            parsed
                .iter()
                .filter(|(s, k, _)| s == "INCLUDES" && k == key)
                .flat_map(|(_, _, v)| v.split_whitespace().map(|f| dir.join(f)).collect::<Vec<_>>())
                .collect()
        };
        for f in include("before") {
            self.read_with_local(&f, depth + 1)?;
        }
        for (s, k, v) in &parsed {
            if s == "INCLUDES" {
                continue;
            }
            let sec = self.sections.entry(s.clone()).or_default();
            let slot = sec.entry(k.clone()).or_default();
            if slot.is_empty() {
                self.order.entry(s.clone()).or_default().push(k.clone());
            }
            slot.push(v.clone());
        }
        for f in include("after") {
            self.read_with_local(&f, depth + 1)?;
        }
        Ok(())
    }

    fn read_with_local(&mut self, conf: &Path, depth: usize) -> Result<(), LoadError> {
        if conf.is_file() {
            self.read(conf, depth)?;
        }
        let local = conf.with_extension("local");
        if local.is_file() {
            self.read(&local, depth)?;
        }
        Ok(())
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        let get = |s: &str| self.sections.get(s).and_then(|m| m.get(key)).and_then(|v| v.last()).map(String::as_str);
        get(section).or_else(|| get("DEFAULT"))
    }

    fn known(&self, section: &str, key: &str) -> Option<&str> {
        let own = self.sections.get(section).and_then(|m| m.get(key));
        let default = self.sections.get("DEFAULT").and_then(|m| m.get(key)).and_then(|v| v.last());
        match own {
            Some(v) if v.len() >= 2 => Some(v[v.len() - 2].as_str()),
            Some(v) => default.or(v.last()).map(String::as_str),
            None => default.map(String::as_str),
        }
    }

    /// configparser `get` with `vars`, and Fail2Ban's `known/` and `section/opt` lookups.
    fn get(&self, section: &str, key: &str, vars: &HashMap<String, String>, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        let raw = match vars.get(key) {
            Some(v) => v.clone(),
            None => match key.split_once('/') {
                Some(("known", k)) => self.known(section, k).or_else(|| self.raw(section, k))?.to_owned(),
                Some(("default", k)) => self.raw("DEFAULT", k)?.to_owned(),
                Some((s, k)) if self.sections.contains_key(s) => return self.get(s, k, &HashMap::new(), depth + 1),
                _ => self.raw(section, key)?.to_owned(),
            },
        };
        Some(self.interpolate(section, &raw, vars, depth))
    }

    fn interpolate(&self, section: &str, raw: &str, vars: &HashMap<String, String>, depth: usize) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push('%');
                rest = r;
            } else if let Some((name, r)) = after.strip_prefix('(').and_then(|a| a.split_once(")s")) {
                let name = name.to_ascii_lowercase();
                match self.get(section, &name, vars, depth + 1) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("%(");
                        out.push_str(&name);
                        out.push_str(")s");
                    }
                }
                rest = r;
            } else {
                out.push('%');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }
}

/// (section, lowercased key, value) triples in file order; continuation lines joined
/// with `\n`, comments (`#`, `;` at line start, ` ;` inline) removed.
fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut section = String::from("DEFAULT");
    let mut open = false;
    for line in text.lines() {
        let stripped = line.trim();
        if stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        let stripped = match stripped.find(" ;").or_else(|| stripped.find("\t;")) {
            Some(i) => stripped[..i].trim_end(),
            None => stripped,
        };
        let indented = line.starts_with([' ', '\t']);
        if indented && open {
            if let Some(last) = out.last_mut() {
                last.2.push('\n');
                last.2.push_str(stripped);
            }
            continue;
        }
        if stripped.is_empty() {
            if let Some(last) = out.last_mut().filter(|_| open) {
                last.2.push('\n');
            }
            continue;
        }
        if let Some(name) = stripped.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_owned();
            open = false;
            continue;
        }
        let Some(i) = stripped.find(['=', ':']) else { continue };
        let key = stripped[..i].trim().to_ascii_lowercase();
        let value = stripped[i + 1..].trim().to_owned();
        out.push((section.clone(), key, value));
        open = true;
    }
    for v in &mut out {
        let t = v.2.trim_end_matches('\n').len();
        v.2.truncate(t);
    }
    out
}

/// Fail2Ban's `substituteRecursiveTags`: `<name>` inside values replaced by other
/// options (or `Definition` lookups through `lookup`) until nothing changes.
fn substitute_tags(
    tags: &mut Vec<(String, String)>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), LoadError> {
    let ignore: Vec<String> = tags.iter().filter_map(|(k, _)| k.split_once('?').map(|(n, _)| n.to_owned())).collect();
    for _round in 0..MAX_TAG_REPLACE * 4 {
        let mut changed = false;
        for i in 0..tags.len() {
            let tag = tags[i].0.clone();
            if ignore.contains(&tag) {
                continue;
            }
            let mut value = tags[i].1.clone();
            let mut counts: HashMap<String, usize> = HashMap::new();
            let mut from = 0;
            while let Some((s, e)) = find_tag(&value, from) {
                let rtag = value[s + 1..e - 1].to_owned();
                if ignore.contains(&rtag) {
                    from = e;
                    continue;
                }
                let n = counts.entry(rtag.clone()).or_insert(0);
                if rtag == tag || *n > MAX_TAG_REPLACE {
                    return Err(LoadError::Interpolation(format!("self-referencing tag <{rtag}> in {tag}")));
                }
                let repl = tags.iter().find(|(k, _)| *k == rtag).map(|(_, v)| v.clone()).or_else(|| lookup(&rtag));
                match repl {
                    Some(r) => {
                        value = value.replace(&format!("<{rtag}>"), &r);
                        *n += 1;
                        from = s;
                    }
                    None => from = e,
                }
            }
            if value != tags[i].1 {
                tags[i].1 = value;
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
    Ok(())
}

/// The next `<name>` (no spaces or angle brackets inside) at or after `from`.
fn find_tag(v: &str, from: usize) -> Option<(usize, usize)> {
    let b = v.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' && j > i + 1 {
                return Some((i, j + 1));
            }
        }
        i += 1;
    }
    None
}

/// Where a filter's files are: `NAME` in `DIR/filter.d`, or a path to a `.conf` file.
pub fn filter_path(config_dir: &Path, name_or_path: &str) -> PathBuf {
    let p = Path::new(name_or_path);
    if p.is_file() || name_or_path.contains('/') {
        return p.to_owned();
    }
    let name = name_or_path.strip_suffix(".conf").unwrap_or(name_or_path);
    config_dir.join("filter.d").join(format!("{name}.conf"))
}

/// Read a Fail2Ban filter (`path` is its `.conf`; its `.local` and includes are read too)
/// with jail arguments `args` (like `mode=aggressive`), as Fail2Ban's `FilterReader` does.
pub fn load_filter(path: &Path, args: &[(String, String)]) -> Result<FilterOptions, LoadError> {
    let mut cfg = Config::default();
    let local = path.with_extension("local");
    if !path.is_file() && !local.is_file() {
        return Err(LoadError::NotFound(path.display().to_string()));
    }
    cfg.read_with_local(path, 0)?;
    let vars: HashMap<String, String> = args.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let mut combined: Vec<(String, String)> = Vec::new();
    for key in ["usedns", "prefregex", "ignoreregex", "failregex", "maxlines", "datepattern", "journalmatch"] {
        if let Some(v) = cfg.get("Definition", key, &vars, 0) {
            combined.push((key.to_owned(), v));
        }
    }
    let mut init: Vec<(String, String)> = args.to_vec();
    let init_keys = cfg.order.get("Init").cloned().unwrap_or_default();
    for k in init_keys {
        let v = cfg.get("Init", &k, &HashMap::new(), 0).unwrap_or_default();
        if !k.starts_with("known/") {
            init.push((format!("known/{k}"), v.clone()));
        }
        if !init.iter().any(|(x, _)| *x == k) {
            init.push((k, v));
        }
    }
    for (k, v) in init {
        match combined.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => slot.1 = v,
            None => combined.push((k, v)),
        }
    }
    let lookup = |name: &str| cfg.get("Definition", name, &vars, 0);
    substitute_tags(&mut combined, &lookup)?;
    let get = |k: &str| combined.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let lines = |k: &str| -> Vec<String> {
        get(k).map(|v| v.split('\n').filter(|l| !l.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
    };
    let mut opts = FilterOptions {
        prefregex: get("prefregex").filter(|p| !p.is_empty()),
        failregex: lines("failregex"),
        ignoreregex: lines("ignoreregex"),
        datepattern: get("datepattern").filter(|d| !d.trim().is_empty()),
        journalmatch: lines("journalmatch"),
        ..FilterOptions::default()
    };
    if let Some(m) = get("maxlines") {
        opts.maxlines =
            m.trim().parse().map_err(|_| LoadError::BadValue { key: "maxlines", value: m.clone() })?;
    }
    if let Some(u) = get("usedns") {
        opts.usedns = UseDns::parse(&u).ok_or(LoadError::BadValue { key: "usedns", value: u })?;
    }
    Ok(opts)
}
