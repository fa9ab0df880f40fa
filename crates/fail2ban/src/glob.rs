//! Expanding Fail2Ban `logpath` globs (`*`, `?`, `[…]` within one path component), as
//! Python's `glob.glob` does: a leading `.` is matched only by a literal `.`, results sorted.

use std::path::{Path, PathBuf};

/// Whether `pattern` has glob characters.
pub fn has_magic(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The existing paths `pattern` matches, sorted; a pattern without glob characters gives
/// itself when it exists.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    if !has_magic(pattern) {
        let p = PathBuf::from(pattern);
        return if p.exists() { vec![p] } else { Vec::new() };
    }
    let absolute = pattern.starts_with('/');
    let mut current = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }];
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for base in &current {
            if has_magic(part) {
                let Ok(entries) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                    .filter(|n| matches(part, n))
                    .collect();
                names.sort();
                for n in names {
                    let p = join(base, &n, absolute);
                    if last || p.is_dir() {
                        next.push(p);
                    }
                }
            } else {
                let p = join(base, part, absolute);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
}

fn join(base: &Path, name: &str, absolute: bool) -> PathBuf {
    if !absolute && base == Path::new(".") {
        PathBuf::from(name)
    } else {
        base.join(name)
    }
}

/// fnmatch of one component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|k| match_from(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && match_from(&p[1..], &n[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                return n.first() == Some(&'[') && match_from(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else { return false };
            let (negate, set) = match p[1] {
                '!' => (true, &p[2..close]),
                _ => (false, &p[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_from(&p[close + 1..], &n[1..])
        }
        Some(&c) => n.first() == Some(&c) && match_from(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_rules() {
        assert!(matches("*.log", "auth.log"));
        assert!(!matches("*.log", "auth.log.1"));
        assert!(matches("auth.lo?", "auth.log"));
        assert!(matches("access[0-9].log", "access3.log"));
        assert!(!matches("access[!0-9].log", "access3.log"));
    }

    #[test]
    fn globs_walk_directories() {
        let dir = std::env::temp_dir().join(format!("pc-f2b-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).expect("mkdir");
        std::fs::create_dir_all(dir.join("b")).expect("mkdir");
        for f in ["a/x.log", "b/y.log", "b/z.txt", "a/.hidden.log"] {
            std::fs::write(dir.join(f), "").expect("write");
        }
        let got = glob(&format!("{}/*/*.log", dir.display()));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(got, vec![dir.join("a/x.log"), dir.join("b/y.log")]);
    }
}
