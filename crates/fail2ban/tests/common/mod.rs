//! Shared by the golden tests: where the installed Fail2Ban lives, the loud skip, scratch
//! copies of its configuration, and the JSON form both sides of a comparison are put in.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_fail2ban::{IniFile, Section};
use serde_json::{Map, Value, json};

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

/// A scratch copy of the configuration in `etc` whose `jail.local` is `jail_local` with
/// `LOGS` standing for a fresh log directory holding the (empty) files `logs`. Returns the
/// temporary directory (keep it alive) and the copied configuration directory.
pub fn scratch_config(etc: &Path, jail_local: &str, logs: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fail2ban");
    copy_dir(etc, &dir);
    let log_dir = tmp.path().join("logs");
    std::fs::create_dir_all(&log_dir).expect("mkdir logs");
    for f in logs {
        std::fs::write(log_dir.join(f), "").expect("log");
    }
    let local = jail_local.replace("LOGS", &log_dir.display().to_string());
    std::fs::write(dir.join("jail.local"), local).expect("jail.local");
    (tmp, dir)
}

/// A parsed INI file as JSON, in the shape the Python side prints: `{section: {key: value}}`
/// with `DEFAULT` first.
pub fn ini_json(file: &IniFile) -> Value {
    let section = |s: &Section| {
        Value::Object(
            s.iter()
                .map(|(k, v)| (k.to_owned(), json!(v.text)))
                .collect(),
        )
    };
    let mut d = Map::new();
    d.insert("DEFAULT".to_owned(), section(&file.defaults));
    for (name, s) in file.sections() {
        d.insert(name.to_owned(), section(s));
    }
    Value::Object(d)
}
