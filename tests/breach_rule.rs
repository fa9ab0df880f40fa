//! One breach rule (issue 9): `scan --json` and `investigate --json` over the same logs list
//! the same breaches (address, user, failures, time), because both judge a success with the
//! jail engine's rule; and they are the breaches the generator planted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

type Breach = (String, String, u64, String);

fn json(cmd: &mut Command, ok_codes: &[i32]) -> Value {
    let out = cmd.output().expect("run portcullis");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok_codes.contains(&code),
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn scan_breaches(log: &Path) -> BTreeSet<Breach> {
    let doc = json(
        Command::new(bin())
            .args(["scan", "--json", "--timezone", "UTC"])
            .arg(log),
        &[0],
    );
    doc["breaches"]
        .as_array()
        .expect("breaches")
        .iter()
        .map(|b| {
            (
                b["addr"].as_str().expect("addr").to_string(),
                b["user"].as_str().unwrap_or("?").to_string(),
                b["failures"].as_u64().expect("failures"),
                b["time"].as_str().expect("time").to_string(),
            )
        })
        .collect()
}

fn investigate_breaches(log: &Path, dir: &Path) -> BTreeSet<Breach> {
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let mut cmd = Command::new(bin());
    cmd.args([
        "investigate",
        "--json",
        "--timezone",
        "UTC",
        "--limit",
        "0",
        "--logs",
    ])
    .arg(log);
    for (flag, file) in [
        ("--utmp", "absent-utmp"),
        ("--wtmp", "absent-wtmp"),
        ("--btmp", "absent-btmp"),
        ("--socket", "control.sock"),
        ("--state-db", "state.db"),
        ("--sshd-config", "sshd_config"),
        ("--proc", "no-proc"),
    ] {
        cmd.arg(flag).arg(dir.join(file));
    }
    let doc = json(&mut cmd, &[0, 1]);
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "success_after_failures" && f["severity"] == "critical")
        .map(|f| {
            (
                f["addr"].as_str().expect("addr").to_string(),
                f["user"].as_str().unwrap_or("?").to_string(),
                f["failures"].as_u64().expect("failures"),
                f["time"].as_str().expect("time").to_string(),
            )
        })
        .collect()
}

#[test]
fn r9_scan_and_investigate_list_the_same_breaches() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    let mut config = portcullis_loggen::Config::default();
    config.lines = 40_000;
    config.attackers = 200;
    config.breaches = 3;
    config.seed = 9;
    let file = std::fs::File::create(&log).expect("create");
    let truth =
        portcullis_loggen::generate(&config, std::io::BufWriter::new(file)).expect("generate");
    let scanned = scan_breaches(&log);
    let investigated = investigate_breaches(&log, tmp.path());
    assert!(!scanned.is_empty(), "the corpus has breaches");
    assert_eq!(scanned, investigated);
    // And they are the generator's: each planted breach address is in the list.
    let planted: BTreeSet<String> = truth.breaches.iter().map(|b| b.addr.clone()).collect();
    let found: BTreeSet<String> = scanned.iter().map(|b| b.0.clone()).collect();
    assert!(
        planted.is_subset(&found),
        "planted {planted:?}, found {found:?}"
    );
}

#[test]
fn r9_failures_outside_the_window_are_no_breach_in_either() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    // Three failures, then the same address gets in two hours later (outside findtime, 10
    // minutes), and another address fails three times and gets in at once.
    let lines = [
        "2026-11-20T08:00:01+00:00 h sshd[10]: Failed password for bob from 203.0.113.7 port 1 ssh2",
        "2026-11-20T08:00:02+00:00 h sshd[10]: Failed password for bob from 203.0.113.7 port 1 ssh2",
        "2026-11-20T08:00:03+00:00 h sshd[10]: Failed password for bob from 203.0.113.7 port 1 ssh2",
        "2026-11-20T10:00:00+00:00 h sshd[11]: Accepted password for bob from 203.0.113.7 port 2 ssh2",
        "2026-11-20T10:00:01+00:00 h sshd[12]: Failed password for eve from 198.51.100.9 port 3 ssh2",
        "2026-11-20T10:00:02+00:00 h sshd[12]: Failed password for eve from 198.51.100.9 port 3 ssh2",
        "2026-11-20T10:00:03+00:00 h sshd[12]: Failed password for eve from 198.51.100.9 port 3 ssh2",
        "2026-11-20T10:00:04+00:00 h sshd[12]: Accepted password for eve from 198.51.100.9 port 3 ssh2",
    ];
    std::fs::write(&log, lines.join("\n") + "\n").expect("log");
    let scanned = scan_breaches(&log);
    let want: BTreeSet<Breach> = [(
        "198.51.100.9".to_string(),
        "eve".to_string(),
        3,
        "2026-11-20T10:00:04Z".to_string(),
    )]
    .into();
    assert_eq!(scanned, want);
    assert_eq!(investigate_breaches(&log, tmp.path()), want);
}

/// Issue 12 item 3: tries a login on the same connection retracts are no failures, so no
/// "success after failures": a pam_unix + SSSD stack where pam_unix fails first on every
/// login, and a git user whose agent offers keys before the accepted one. A real failure
/// before a login still is one. (Before: carol's pam_unix lines and git's keys counted, and
/// three logins were reported as breaches: carol's with 3 and 4 failures, git's with 5.)
#[test]
fn i12_tries_a_login_retracts_are_no_breach_in_either() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    let pam = |pid: u32, t: &str, ip: &str| {
        format!(
            "2026-11-20T08:{t}+00:00 h sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=carol"
        )
    };
    let mut lines = Vec::new();
    // carol logs in four times; each time pam_unix fails before SSSD says yes.
    for (pid, t) in [(10, "00:01"), (11, "01:01"), (12, "02:01"), (13, "03:01")] {
        lines.push(pam(pid, t, "203.0.113.7"));
        lines.push(format!(
            "2026-11-20T08:{t}+00:00 h sshd[{pid}]: Accepted password for carol from 203.0.113.7 port 1 ssh2"
        ));
    }
    // git offers five keys, the sixth is accepted.
    for _ in 0..5 {
        lines.push("2026-11-20T08:05:01+00:00 h sshd[20]: Failed publickey for git from 198.51.100.9 port 2 ssh2: ED25519 SHA256:AbCdEf0123".to_string());
    }
    lines.push("2026-11-20T08:05:02+00:00 h sshd[20]: Accepted publickey for git from 198.51.100.9 port 2 ssh2: ED25519 SHA256:ZzYyXx9876".to_string());
    // eve fails three passwords, then pam_unix fails and SSSD lets her in: 3 failures.
    for _ in 0..3 {
        lines.push(pam(30, "06:01", "192.0.2.44"));
        lines.push("2026-11-20T08:06:03+00:00 h sshd[30]: Failed password for carol from 192.0.2.44 port 3 ssh2".to_string());
    }
    lines.push(pam(30, "06:05", "192.0.2.44"));
    lines.push("2026-11-20T08:06:05+00:00 h sshd[30]: Accepted password for carol from 192.0.2.44 port 3 ssh2".to_string());
    std::fs::write(&log, lines.join("\n") + "\n").expect("log");
    let want: BTreeSet<Breach> = [(
        "192.0.2.44".to_string(),
        "carol".to_string(),
        3,
        "2026-11-20T08:06:05Z".to_string(),
    )]
    .into();
    assert_eq!(scan_breaches(&log), want);
    assert_eq!(investigate_breaches(&log, tmp.path()), want);
}
