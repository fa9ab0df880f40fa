//! The state directory (bans, offender history, logins, source positions): created private
//! when missing; an existing one is never chmod'ed or chown'ed (a typo such as
//! `state_dir = "/tmp"` must not strip the sticky bit of `/tmp`), only checked, and refused
//! when someone else could change what is in it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Make sure `dir` exists and is safe: create it (mode 0700, parents as the umask gives)
/// when missing; refuse it unless it is a directory owned by root (or by the daemon's own
/// user) and not writable by group or others. A symlink at `dir` is followed only when it
/// belongs to root or to us as well.
pub fn prepare(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir)?,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot inspect state directory {}", dir.display()));
        }
    }
    check(dir, rustix::process::geteuid().as_raw())
}

fn create(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create the parent of state directory {}",
                dir.display()
            )
        })?;
    }
    // The umask can only take bits away from 0700.
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "created the state directory (mode 0700)");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create state directory {}", dir.display()))
        }
    }
}

/// The checks of [`prepare`] on an existing `dir`, for a daemon running as `euid`.
fn check(dir: &Path, euid: u32) -> Result<()> {
    let trusted = |uid: u32| uid == 0 || uid == euid;
    let link = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect state directory {}", dir.display()))?;
    if link.file_type().is_symlink() && !trusted(link.uid()) {
        bail!(
            "refusing state directory {}: it is a symbolic link owned by uid {}; it must \
             belong to root",
            dir.display(),
            link.uid()
        );
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot inspect state directory {}", dir.display()))?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_dir() {
        bail!("state directory {} is not a directory", dir.display());
    }
    if !trusted(meta.uid()) || mode & 0o022 != 0 {
        bail!(
            "refusing state directory {}: owned by uid {} with mode {mode:04o}; it must be \
             owned by root and not writable by group or others. portcullis never changes \
             the permissions of an existing directory: give it a directory of its own (e.g. \
             /var/lib/portcullis, created 0700 when missing)",
            dir.display(),
            meta.uid()
        );
    }
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            "the state directory is readable by other users (mode {mode:04o}); it holds \
             addresses and user names: consider chmod 700"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    }

    fn set_mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b/state");
        prepare(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        prepare(&dir).expect("and accepted next time");
    }

    #[test]
    fn an_existing_directory_is_never_chmodded_and_refused_when_writable_by_others() {
        let tmp = tempfile::tempdir().expect("tmp");
        let me = rustix::process::geteuid().as_raw();
        for (bits, ok) in [
            (0o700, true),
            (0o755, true),
            (0o750, true),
            (0o1777, false),
            (0o777, false),
            (0o770, false),
            (0o702, false),
        ] {
            let dir = tmp.path().join(format!("s{bits:o}"));
            std::fs::create_dir(&dir).expect("mkdir");
            set_mode(&dir, bits);
            let r = check(&dir, me);
            assert_eq!(r.is_ok(), ok, "{bits:o}: {r:?}");
            if let Err(e) = r {
                let e = e.to_string();
                assert!(e.contains(&dir.display().to_string()), "{e}");
                assert!(e.contains(&format!("mode {bits:04o}")), "{e}");
                assert!(e.contains(&format!("uid {me}")), "{e}");
            }
            assert_eq!(mode(&dir), bits, "mode changed");
        }
        // Owned by someone else than root and us.
        let dir = tmp.path().join("other");
        std::fs::create_dir(&dir).expect("mkdir");
        let e = check(&dir, me.wrapping_add(1).max(1)).map_err(|e| e.to_string());
        if me == 0 {
            assert!(e.is_ok(), "root's directory: {e:?}");
        } else {
            assert!(e.expect_err("not ours").contains(&format!("uid {me}")));
        }
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").expect("write");
        assert!(check(&file, me).is_err());
    }
}
