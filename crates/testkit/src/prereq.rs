//! What a test needs from the machine: skip loudly without it, fail under `CI=true`.

use std::path::PathBuf;

/// `ok`, or else skip (loudly) — or, under `CI=true`, fail — because the test needs `what`.
/// Returns `false` when the caller should return early.
pub fn require(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    let msg = format!("TEST NOT RUN: {what}");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg} (CI=true: missing prerequisites are failures)");
    }
    eprintln!("\n!!!!! {msg} !!!!!\n");
    false
}

/// Root plus the given programs (on `PATH`, in `/usr/sbin` or `/sbin`, or absolute paths);
/// everything missing is named in one message (see [`require`]).
pub fn require_root_and(tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push("root (network namespaces, firewall)".to_owned());
    }
    missing.extend(
        tools
            .iter()
            .filter(|t| which(t).is_none())
            .map(|t| format!("`{t}` installed")),
    );
    require(&format!("needs {}", missing.join(", ")), missing.is_empty())
}

/// Locate a program like `command -v`, also in `/usr/sbin` and `/sbin`.
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.starts_with('/') {
        let p = PathBuf::from(tool);
        return p.exists().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&format!("{path}:/usr/sbin:/sbin"))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
