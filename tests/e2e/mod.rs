//! End-to-end harness: network namespaces, a real OpenSSH sshd logging through a captured
//! `/dev/log`, and real clients. Everything is torn down on `Drop`, also when a test panics.

pub mod daemon;
pub mod netns;
pub mod sshd;

use std::path::PathBuf;
use std::process::Command;

/// Skip (loudly) or, under `CI=true`, fail when the test cannot run here.
/// Returns `false` when the caller should return early.
pub fn require(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    let msg = format!("END-TO-END TEST NOT RUN: {what}");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg} (CI=true: missing prerequisites are failures)");
    }
    eprintln!("\n!!!!! {msg} !!!!!\n");
    false
}

/// Root plus the given programs on PATH (or absolute paths).
pub fn require_root_and(tools: &[&str]) -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !require("needs root (network namespaces, firewall)", root) {
        return false;
    }
    for t in tools {
        if !require(&format!("needs `{t}` installed"), which(t).is_some()) {
            return false;
        }
    }
    true
}

/// Locate a program like `command -v`.
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.starts_with('/') {
        let p = PathBuf::from(tool);
        return p.exists().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&format!("{path}:/usr/sbin:/sbin"))
        .map(|d| d.join(tool))
        .find(|p| p.exists())
}

/// Run a command to completion, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
