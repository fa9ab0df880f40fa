//! A Fail2Ban filter definition turned into [`FilterOptions`].
//!
//! Reading `filter.d` files (includes, `.local`, `%(…)s`, `known/`, `[Init]`, arguments,
//! `<tag>` substitution) is `portcullis-fail2ban`'s [`FilterDef`]: there is one reader, and
//! every value keeps the file and line it was written on, so errors here name them too.

use std::path::{Path, PathBuf};

use portcullis_fail2ban::{FilterDef, Located};

use crate::filter::FilterOptions;
use crate::tags::UseDns;

/// Why a filter definition could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The files could not be read or resolved (the message names file and line).
    #[error(transparent)]
    Read(#[from] portcullis_fail2ban::LoadError),
    /// A value the engine needs is unusable (`usedns`).
    #[error("{origin}: {key}: unusable value {value:?}")]
    BadValue {
        /// `FILE:LINE` where the value was written.
        origin: String,
        /// The option.
        key: &'static str,
        /// Its value.
        value: String,
    },
}

impl FilterOptions {
    /// The engine settings of a resolved Fail2Ban filter definition (other fields keep
    /// their defaults: match limit, local time zone, first-match mode).
    pub fn from_def(def: &FilterDef) -> Result<FilterOptions, LoadError> {
        let text = |v: &Option<Located>| {
            v.as_ref()
                .map(|l| l.text.clone())
                .filter(|t| !t.trim().is_empty())
        };
        let lines = |v: &[Located]| v.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        let mut opts = FilterOptions {
            prefregex: text(&def.prefregex),
            failregex: lines(&def.failregex),
            ignoreregex: lines(&def.ignoreregex),
            datepattern: text(&def.datepattern),
            journalmatch: def.journalmatch.iter().map(|m| m.words.join(" ")).collect(),
            ..FilterOptions::default()
        };
        if let Some((n, _)) = def.maxlines {
            opts.maxlines = n;
        }
        if let Some(u) = &def.usedns {
            opts.usedns = UseDns::parse(&u.text).ok_or_else(|| LoadError::BadValue {
                origin: u.origin.to_string(),
                key: "usedns",
                value: u.text.clone(),
            })?;
        }
        Ok(opts)
    }
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

/// Read a Fail2Ban filter (`path` is its `.conf`; `NAME.d/`, `.local` and includes are read
/// too) with jail arguments `args` (like `mode=aggressive`), as Fail2Ban's `FilterReader`
/// does, through [`FilterDef::load_file`].
pub fn load_filter(path: &Path, args: &[(String, String)]) -> Result<FilterOptions, LoadError> {
    FilterOptions::from_def(&FilterDef::load_file(path, args)?)
}
