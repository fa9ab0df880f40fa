//! A user's `authorized_keys` files as sshd sees them, for `portcullis audit`: where they are
//! (sshd's `AuthorizedKeysFile` tokens expanded), how many keys they hold, and whether their
//! ownership and modes pass sshd's `StrictModes` check.
//!
//! The check is the one sshd makes (`auth_secure_path`): the file must be a regular file
//! owned by root or the user and not writable by group or others; so must every directory
//! above it, up to and including the user's home directory (or `/` for files outside it).
//! A file that fails is ignored by sshd under `StrictModes yes` and, under `StrictModes no`,
//! lets whoever can write it add a key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem with a key file or a directory above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermProblem {
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong: `owned by uid 1001`, `writable by group`, `writable by others`,
    /// `not a regular file`.
    pub what: String,
    /// Its mode bits (`0o777` part).
    pub mode: u32,
    /// Its owner.
    pub uid: u32,
    /// A directory with the sticky bit (`/tmp`): others may add entries but not replace
    /// ones they do not own. sshd refuses it all the same.
    pub sticky: bool,
}

/// What one `authorized_keys` path holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyFile {
    /// The path after token expansion.
    pub path: PathBuf,
    /// Whether it exists (and could be read).
    pub exists: bool,
    /// Key lines (not empty, not comments).
    pub keys: usize,
    /// Ownership and mode problems, file first; empty when sshd's check passes.
    pub problems: Vec<PermProblem>,
    /// Why it could not be read, if it exists but did not read.
    pub error: Option<String>,
}

/// The path of one `AuthorizedKeysFile` word for a user: `%h` home, `%u` name, `%U` uid,
/// `%%` a percent sign; a relative result is relative to the home directory.
pub fn expand_key_path(pattern: &str, user: &str, uid: u32, home: &Path) -> PathBuf {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&home.to_string_lossy()),
            Some('u') => out.push_str(user),
            Some('U') => out.push_str(&uid.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    let p = PathBuf::from(out);
    if p.is_absolute() { p } else { home.join(p) }
}

/// Inspect `path`, the key file of the user with `uid` whose home is `home`. `root` is a
/// directory the paths are read under (`/` for the live host; a test tree otherwise): the
/// check walks the directories of `root.join(path)` up to `root.join(home)` or `root`.
pub fn inspect_key_file(root: &Path, path: &Path, uid: u32, home: &Path) -> KeyFile {
    let full = under(root, path);
    let mut kf = KeyFile {
        path: path.to_owned(),
        exists: false,
        keys: 0,
        problems: Vec::new(),
        error: None,
    };
    let meta = match std::fs::metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return kf,
        Err(e) => {
            kf.error = Some(e.to_string());
            return kf;
        }
    };
    kf.exists = true;
    if meta.is_file() {
        match count_keys(&full) {
            Ok(n) => kf.keys = n,
            Err(e) => kf.error = Some(e.to_string()),
        }
    }
    if !meta.is_file() {
        kf.problems
            .push(problem(path, &meta, "not a regular file".into()));
    }
    check(&mut kf.problems, path, &meta, uid);
    let home_full = under(root, home);
    let root_full = under(root, Path::new("/"));
    let mut dir = full.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let shown = shown_path(root, &d);
        match std::fs::metadata(&d) {
            Ok(m) => check(&mut kf.problems, &shown, &m, uid),
            Err(e) => kf.problems.push(PermProblem {
                path: shown,
                what: format!("cannot stat: {e}"),
                mode: 0,
                uid: 0,
                sticky: false,
            }),
        }
        if d == home_full || d == root_full || !d.starts_with(&root_full) {
            break;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    kf
}

/// Key lines in the first [`MAX_KEY_FILE`] bytes of a regular file. The file is opened
/// without blocking and checked to be regular after opening: its owner may swap in a FIFO or
/// a device between our `stat` and `open`.
fn count_keys(path: &Path) -> std::io::Result<usize> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count())
}

/// Bytes of a key file read to count its keys (a user's file may be any size).
const MAX_KEY_FILE: u64 = 1 << 20;

fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn shown_path(root: &Path, full: &Path) -> PathBuf {
    match full.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => full.to_owned(),
    }
}

fn problem(path: &Path, meta: &std::fs::Metadata, what: String) -> PermProblem {
    PermProblem {
        path: path.to_owned(),
        what,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        sticky: meta.is_dir() && meta.mode() & 0o1000 != 0,
    }
}

fn check(out: &mut Vec<PermProblem>, path: &Path, meta: &std::fs::Metadata, uid: u32) {
    if meta.uid() != 0 && meta.uid() != uid {
        out.push(problem(path, meta, format!("owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o020 != 0 {
        out.push(problem(path, meta, "writable by group".into()));
    }
    if meta.mode() & 0o002 != 0 {
        out.push(problem(path, meta, "writable by others".into()));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn tokens() {
        let home = Path::new("/home/al");
        assert_eq!(
            expand_key_path(".ssh/authorized_keys", "al", 1000, home),
            Path::new("/home/al/.ssh/authorized_keys")
        );
        assert_eq!(
            expand_key_path("/etc/ssh/keys/%u.%U", "al", 1000, home),
            Path::new("/etc/ssh/keys/al.1000")
        );
        assert_eq!(
            expand_key_path("%h/k%%", "al", 1, home),
            Path::new("/home/al/k%")
        );
    }

    #[test]
    fn modes_like_strict_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let me = rustix_uid();
        let ssh = root.join("home/al/.ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        for d in [root.join("home"), root.join("home/al"), ssh.clone()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let file = ssh.join("authorized_keys");
        std::fs::write(&file, "# comment\n\nssh-ed25519 AAAA k1\nssh-rsa AAAA k2\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let home = Path::new("/home/al");
        let kf = inspect_key_file(root, Path::new("/home/al/.ssh/authorized_keys"), me, home);
        assert!(kf.exists);
        assert_eq!(kf.keys, 2);
        assert!(kf.problems.is_empty(), "{:?}", kf.problems);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::set_permissions(root.join("home/al"), std::fs::Permissions::from_mode(0o775))
            .unwrap();
        // Above the home directory nothing is checked.
        std::fs::set_permissions(root.join("home"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let kf = inspect_key_file(root, Path::new("/home/al/.ssh/authorized_keys"), me, home);
        let got: Vec<(String, String)> = kf
            .problems
            .iter()
            .map(|p| (p.path.display().to_string(), p.what.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/home/al/.ssh/authorized_keys".into(),
                    "writable by group".into()
                ),
                (
                    "/home/al/.ssh/authorized_keys".into(),
                    "writable by others".into()
                ),
                ("/home/al".into(), "writable by group".into()),
            ]
        );
        // A FIFO in place of the file: reported, never read (reading would block).
        let fifo = ssh.join("authorized_keys2");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let kf = inspect_key_file(root, Path::new("/home/al/.ssh/authorized_keys2"), me, home);
            assert!(kf.exists && kf.keys == 0);
            assert_eq!(kf.problems[0].what, "not a regular file");
            std::fs::remove_file(&fifo).unwrap();
        }
        let missing = inspect_key_file(root, Path::new("/home/al/.ssh/authorized_keys2"), me, home);
        assert!(!missing.exists && missing.problems.is_empty());
    }

    fn rustix_uid() -> u32 {
        std::fs::metadata(std::env::temp_dir())
            .map(|_| ())
            .ok()
            .and_then(|()| {
                let p = std::env::temp_dir().join(format!("uidprobe-{}", std::process::id()));
                std::fs::write(&p, "").ok()?;
                let uid = std::fs::metadata(&p).ok()?.uid();
                let _ = std::fs::remove_file(&p);
                Some(uid)
            })
            .unwrap_or(0)
    }
}
