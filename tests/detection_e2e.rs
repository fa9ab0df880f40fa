//! Issue 12, "detection": what sshd logs, counted per connection, against the real sshd.

use std::path::Path;
use std::time::Duration;

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::{ATTACKER4, Pair, SERVER4};
use crate::e2e::require_root_and;
use crate::e2e::sshd::Sshd;

/// One connection of a user-name scanner: `ssh USER@server` with no key and no password
/// (BatchMode), so sshd ends it before authentication. Whether the TCP connection was
/// accepted (a banned address times out).
fn try_name(pair: &Pair, user: &str) -> bool {
    let out = pair
        .attacker
        .command("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityFile=/dev/null",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@{SERVER4}"))
        .arg("true")
        .output()
        .expect("ssh");
    let err = String::from_utf8_lossy(&out.stderr);
    !(err.contains("timed out") || err.contains("Connection refused"))
}

fn config(log: &Path) -> String {
    format!(
        "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nfindtime = \"10m\"\nmaxretry = 3\n",
        log.display()
    )
}

/// Issue 12 item 4: on a key-only server (`PasswordAuthentication no`) a bot cycling user
/// names logs `Invalid user U` and `Connection closed by invalid user U … [preauth]` (or
/// `… authenticating user root …`) per connection, each once weighed 0.2: it was banned
/// only after about 13 connections. Now a connection that tried a name is one attempt: the
/// third connection bans it (maxretry 3), and not the second.
#[test]
fn i12_a_user_name_scanner_on_a_key_only_server_is_banned_after_maxretry_connections() {
    if !require_root_and(&["ip", "sshd", "ssh", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = Pair::new();
    let sshd = Sshd::start_with(
        &pair.server,
        &tmp.path().join("sshd"),
        false,
        "PasswordAuthentication no\n",
    );
    let daemon = Daemon::start(&pair.server, &tmp.path().join("pc"), &config(&sshd.log));
    let attempts = |d: &Daemon| d.status()["jails"][0]["attempts"].as_u64().unwrap_or(0);
    for (n, user) in ["admin", "root"].iter().enumerate() {
        assert!(try_name(&pair, user), "connection {} refused", n + 1);
        daemon.wait_for("the connection counted", 20, |d| attempts(d) > n as u64);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            attempts(&daemon),
            n as u64 + 1,
            "one attempt per connection, not per line\n{}",
            sshd.log_text()
        );
        assert!(daemon.bans().is_empty(), "banned before maxretry");
    }
    assert!(try_name(&pair, "oracle"), "the third connection");
    daemon.wait_for("the scanner banned", 20, |d| {
        d.bans().iter().any(|b| b["target"] == ATTACKER4)
    });
    assert!(!try_name(&pair, "test"), "a banned scanner still connects");
    let log = sshd.log_text();
    assert!(
        log.contains("Invalid user admin from") && log.contains("authenticating user root"),
        "the real sshd's lines\n{log}"
    );
}
