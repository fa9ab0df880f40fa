//! Shared by the golden tests: where the installed Fail2Ban lives, and the loud skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The installed Debian Fail2Ban configuration.
pub const FAIL2BAN_DIR: &str = "/etc/fail2ban";
/// Where Debian installs Fail2Ban's Python package.
pub const FAIL2BAN_PYTHONPATH: &str = "/usr/lib/python3/dist-packages";

/// `/etc/fail2ban` when it and `python3` are there; otherwise a loud message, and a
/// failure when `CI=true`.
pub fn fail2ban_dir() -> Option<PathBuf> {
    let dir = Path::new(FAIL2BAN_DIR);
    let python = Command::new("python3")
        .arg("-c")
        .arg("import fail2ban")
        .env("PYTHONPATH", FAIL2BAN_PYTHONPATH)
        .output();
    let missing = if !dir.join("jail.conf").is_file() {
        Some(format!(
            "{FAIL2BAN_DIR}/jail.conf is missing (apt-get install fail2ban)"
        ))
    } else if !python.as_ref().is_ok_and(|o| o.status.success()) {
        Some("python3 with the fail2ban package is missing (apt-get install fail2ban)".to_owned())
    } else {
        None
    };
    match missing {
        None => Some(dir.to_path_buf()),
        Some(why) => {
            eprintln!("\n!!!!!!!! SKIPPED: {why} !!!!!!!!\n");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and {why}"
            );
            None
        }
    }
}

/// Run a Python snippet with Fail2Ban importable; its stdout parsed as JSON.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", FAIL2BAN_PYTHONPATH)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// The files of `dir` whose names end in `.conf`, sorted.
pub fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

/// Copy a directory tree (test set-up: a scratch copy of `/etc/fail2ban`, never in the repo).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
