//! Ordering of rotated log sets given on the command line.

use std::path::{Path, PathBuf};

/// Where one file sits in its rotation set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Generation {
    /// `auth.log-20261120` (dateext): older than any numbered or current file.
    Dated(String),
    /// `auth.log.N[.gz]`: larger N is older, so it sorts as `-N`.
    Numbered(i64),
    /// `auth.log`: the live file, newest.
    Current,
}

fn split_generation(path: &Path) -> (String, Generation) {
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if let Some((base, n)) = name.rsplit_once('.')
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        let n: i64 = n.parse().unwrap_or(0);
        return (base.to_string(), Generation::Numbered(-n));
    }
    if let Some((base, d)) = name.rsplit_once('-')
        && d.len() >= 8
        && d.bytes().all(|b| b.is_ascii_digit())
    {
        return (base.to_string(), Generation::Dated(d.to_string()));
    }
    (name.to_string(), Generation::Current)
}

/// Order files so each rotation set reads oldest first (`auth.log.4.gz` … `auth.log.1`,
/// `auth.log`); sets keep the order in which their first member was given.
pub fn rotation_order(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut bases: Vec<String> = Vec::new();
    let mut keyed: Vec<(usize, Generation, PathBuf)> = files
        .iter()
        .map(|p| {
            let (base, generation) = split_generation(p);
            let idx = match bases.iter().position(|b| *b == base) {
                Some(i) => i,
                None => {
                    bases.push(base);
                    bases.len() - 1
                }
            };
            (idx, generation, p.clone())
        })
        .collect();
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    keyed.into_iter().map(|(_, _, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(names: &[&str]) -> Vec<String> {
        let files: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        rotation_order(&files)
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn rotated_sets_read_oldest_first() {
        assert_eq!(
            order(&[
                "auth.log",
                "auth.log.1",
                "auth.log.3.gz",
                "auth.log.2.gz",
                "auth.log.10.gz"
            ]),
            [
                "auth.log.10.gz",
                "auth.log.3.gz",
                "auth.log.2.gz",
                "auth.log.1",
                "auth.log"
            ]
        );
        assert_eq!(
            order(&["secure", "secure-20261118.gz", "secure-20261111"]),
            ["secure-20261111", "secure-20261118.gz", "secure"]
        );
        assert_eq!(
            order(&["b.log", "a.log.1", "a.log"]),
            ["b.log", "a.log.1", "a.log"]
        );
    }
}
