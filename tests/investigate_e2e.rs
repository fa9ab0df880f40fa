//! `portcullis investigate` (issue 4): a real sshd in network namespaces with a session kept
//! open and an attacker that fails passwords and then gets in; and hostile user names in
//! every output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use portcullis_core::Time;
use portcullis_host::utmp::{UtmpKind, UtmpRecord, encode_record};
use serde_json::Value;

use crate::e2e::netns::{ATTACKER4, ATTACKER6, SERVER4, SERVER6};
use crate::e2e::run;
use crate::e2e::sshd::{Sshd, SshdLab, password_attempt};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// Flags that keep a test away from the host's own login records, daemon and store.
fn isolated(dir: &Path) -> Vec<String> {
    [
        ("--utmp", "absent-utmp"),
        ("--wtmp", "wtmp"),
        ("--btmp", "btmp"),
        ("--socket", "control.sock"),
        ("--state-db", "state.db"),
        ("--sshd-config", "sshd_config"),
    ]
    .iter()
    .flat_map(|(flag, file)| [flag.to_string(), dir.join(file).display().to_string()])
    .collect()
}

/// `portcullis investigate INPUT … EXTRA` on the fixture host in `dir` (see [`isolated`]; no
/// `/proc`). `EXTRA` comes after other flags: `--logs` takes several values.
fn investigate_offline(dir: &Path, input: &[&str], extra: &[&str]) -> Output {
    Command::new(bin())
        .arg("investigate")
        .args(input)
        .args(isolated(dir))
        .args(["--proc", &dir.join("no-proc").display().to_string()])
        .args(extra)
        .output()
        .expect("run investigate")
}

/// `out`, after checking it exited with `code`.
fn exited(out: Output, code: i32) -> Output {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    out
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// An ssh client kept running; killed on drop.
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn findings_of<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

#[test]
fn r4_investigate_sees_the_open_session_the_attacker_and_the_success_after_failures() {
    let Some(SshdLab { sshd, pair, tmp }) = SshdLab::start(&["sshpass", "ssh", "ss"], false) else {
        return;
    };
    let dir = tmp.path().join("sshd");

    // An admin session from the attacker namespace's IPv6 address, with a terminal (so sshd
    // records it in wtmp), kept open.
    let keeper = Client(
        sshd.key_client(&pair.attacker)
            .args(["-tt", &format!("root@{SERVER6}"), "sleep 120"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh"),
    );
    wait_until("the kept session's login", 15, || {
        sshd.log_text()
            .contains(&format!("Accepted publickey for root from {ATTACKER6}"))
            && std::fs::metadata(dir.join("wtmp")).is_ok_and(|m| m.len() > 0)
    });

    // The attacker fails four passwords from its IPv4 address, then gets in with a key.
    for _ in 0..4 {
        assert!(password_attempt(
            &pair.attacker,
            SERVER4,
            "root",
            "wrong-password"
        ));
    }
    run(sshd
        .key_client(&pair.attacker)
        .args([&format!("root@{SERVER4}"), "true"]));
    wait_until("the attacker's login in the log", 10, || {
        sshd.log_text()
            .contains(&format!("Accepted publickey for root from {ATTACKER4}"))
    });

    // sshd retitles the session process a moment after the login.
    let html = tmp.path().join("report.html");
    let investigate = |extra: &[&str]| -> Output {
        let mut c = pair.server.command(bin().to_str().expect("utf-8 path"));
        c.arg("investigate")
            .args(["--logs", &frozen_or_live(&tmp, &sshd), "--json"])
            .args(isolated(&dir))
            .args(extra);
        c.output().expect("run investigate")
    };
    let mut doc = Value::Null;
    wait_until("the authenticated connection in /proc", 10, || {
        let out = investigate(&["--html", &html.display().to_string()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "findings give exit code 1; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        doc = serde_json::from_slice(&out.stdout).expect("json");
        doc["now"]["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .any(|g| g["addr"] == ATTACKER6 && g["authenticated"].as_u64() >= Some(1))
    });
    // Late lines (disconnects) settle, then the log is frozen for exact comparisons.
    std::thread::sleep(Duration::from_secs(1));
    let log = sshd.log_text();
    let frozen = tmp.path().join("frozen.log");
    std::fs::write(&frozen, &log).expect("frozen log");

    // The breach: exactly this address and user, with the failures before it.
    let breaches = findings_of(&doc, "success_after_failures");
    assert_eq!(breaches.len(), 1, "{breaches:#?}\nlog:\n{log}");
    let b = breaches[0];
    assert_eq!(b["addr"], ATTACKER4);
    assert_eq!(b["user"], "root");
    assert_eq!(b["failures"], 4, "{b:#}\nlog:\n{log}");
    assert_eq!(b["severity"], "critical");
    assert_eq!(b["title"], "success after 4 failures");
    assert_eq!(
        doc["findings"][0]["kind"], "success_after_failures",
        "most serious first"
    );

    // The attacker, top of the list, with its user name and unknown ban state.
    let top = &doc["attackers"][0];
    assert_eq!(top["addr"], ATTACKER4);
    assert_eq!(top["attempts"], 4);
    assert_eq!(top["successes"], 1);
    assert_eq!(top["users"], serde_json::json!(["root"]));
    assert_eq!(top["banned"], Value::Null);
    assert_eq!(doc["attackers"].as_array().map(Vec::len), Some(1));

    // The session kept open: in wtmp (this host has no utmp for the test) and as an
    // authenticated connection from its address.
    let sessions = doc["now"]["sessions"].as_array().expect("sessions");
    assert!(
        sessions
            .iter()
            .any(|s| s["addr"] == ATTACKER6 && s["user"] == "root"),
        "{sessions:#?}"
    );
    let conns = doc["now"]["connections"].as_array().expect("connections");
    let g = conns
        .iter()
        .find(|g| g["addr"] == ATTACKER6)
        .expect("v6 group");
    assert_eq!(g["users"], serde_json::json!(["root"]));
    assert_eq!(doc["now"]["ports"], serde_json::json!([22]));

    // Both logins are listed, the kept one merged with its wtmp record.
    let logins = doc["logins"]["successful"].as_array().expect("logins");
    let kept = logins
        .iter()
        .find(|l| l["addr"] == ATTACKER6)
        .expect("kept login");
    assert_eq!(kept["method"], "publickey");
    assert!(
        kept["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("+wtmp")),
        "{kept}"
    );
    assert_eq!(kept["note"], "still logged in");
    assert!(
        logins
            .iter()
            .any(|l| l["addr"] == ATTACKER4 && l["user"] == "root")
    );
    // Whatever sshd recorded in btmp (it does under PAM) is read, record by record.
    let btmp_records = std::fs::metadata(dir.join("btmp")).map_or(0, |m| m.len() / 384);
    assert_eq!(
        doc["logins"]["failed_total"], btmp_records,
        "{:#}",
        doc["logins"]
    );
    // No breach from the clean admin address, and no open-session alarm for it.
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| !(f["kind"] == "success_after_failures" && f["addr"] == ATTACKER6))
    );

    let page = std::fs::read_to_string(&html).expect("html report");
    assert!(page.contains("success after 4 failures"));
    assert!(page.contains(ATTACKER4));

    // `investigate ADDR`: the attacker's lines in order, attempts per user, its connection.
    let out = investigate(&[ATTACKER4]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let a = &doc["address"];
    assert_eq!(a["addr"], ATTACKER4);
    assert_eq!(
        a["attempts_per_user"],
        serde_json::json!([{"user": "root", "attempts": 4}])
    );
    let lines: Vec<&str> = a["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["line"].as_str())
        .collect();
    let expected: Vec<&str> = log.lines().filter(|l| mentions(l, ATTACKER4)).collect();
    assert_eq!(lines, expected);
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("Failed password"))
            .count()
            == 4
    );
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| f["addr"] == ATTACKER4)
    );
    drop(keeper);
}

/// The frozen copy of the log once it exists, else the live one.
fn frozen_or_live(tmp: &tempfile::TempDir, sshd: &Sshd) -> String {
    let frozen = tmp.path().join("frozen.log");
    if frozen.exists() {
        frozen
    } else {
        sshd.log.clone()
    }
    .display()
    .to_string()
}

/// Whether `line` names `addr` as a whole address (not a longer one it prefixes).
fn mentions(line: &str, addr: &str) -> bool {
    line.match_indices(addr).any(|(i, _)| {
        !line[i + addr.len()..].starts_with(|c: char| c.is_ascii_digit())
            && !line[..i].ends_with(|c: char| c.is_ascii_digit() || c == '.')
    })
}

/// A syslog line at `secs` after 08:00:00 on Nov 25.
fn line(secs: u32, pid: u32, msg: &str) -> String {
    format!(
        "Nov 25 08:{:02}:{:02} srv sshd[{pid}]: {msg}\n",
        secs / 60,
        secs % 60
    )
}

fn utmp_rec(kind: UtmpKind, pid: i32, line: &str, user: &str, host: &str, secs: i64) -> Vec<u8> {
    let time = Time::from_secs(secs);
    encode_record(&UtmpRecord::new(kind, pid, line, user, host, time)).to_vec()
}

#[test]
fn r4_hostile_user_names_are_escaped_in_text_json_and_html() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let evil = "\x1b[2J\x1b]0;owned\x07<script>alert(1)</script>";
    let evil2 = "<img/src=x/onerror=alert(2)>\x1b[31m";
    let attacker = "203.0.113.50";
    let mut log = String::new();
    for i in 0..5 {
        log += &line(
            i,
            100 + i,
            &format!("Invalid user {evil} from {attacker} port 4000"),
        );
        log += &line(
            i,
            100 + i,
            &format!("Failed password for invalid user {evil} from {attacker} port 4000 ssh2"),
        );
    }
    log += &line(
        30,
        200,
        &format!("Accepted password for {evil2} from {attacker} port 4001 ssh2"),
    );
    log += &line(
        40,
        201,
        &format!("error: something about {attacker} and {evil}"),
    );
    let log_path = dir.join("auth.log");
    std::fs::write(&log_path, &log).expect("log");
    // wtmp: a login under another hostile name from an address of its own.
    let start = jiff::Timestamp::now().as_second() - 60;
    let mut wtmp = utmp_rec(
        UtmpKind::UserProcess,
        999_999,
        "pts/7",
        evil,
        "198.51.100.9",
        start,
    );
    wtmp.extend(utmp_rec(
        UtmpKind::DeadProcess,
        999_999,
        "pts/7",
        "",
        "",
        start + 5,
    ));
    std::fs::write(dir.join("wtmp"), &wtmp).expect("wtmp");
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let html = dir.join("r.html");

    let log_arg = log_path.display().to_string();
    let go = |extra: &[&str]| -> Output {
        exited(investigate_offline(dir, &["--logs", &log_arg], extra), 1)
    };
    let text = go(&["--html", &html.display().to_string()]).stdout;
    let json = go(&["--json"]).stdout;
    let addr_text = go(&[attacker]).stdout;
    let page = std::fs::read(&html).expect("html");

    for (name, bytes) in [
        ("text", &text),
        ("json", &json),
        ("html", &page),
        ("addr text", &addr_text),
    ] {
        assert!(!bytes.contains(&0x1b), "{name}: raw ESC in output");
        assert!(!bytes.contains(&0x07), "{name}: raw BEL in output");
    }
    let text = String::from_utf8(text).expect("utf-8");
    assert!(
        text.contains("\\x1b[2J\\x1b]0;owned\\x07<script>"),
        "{text}"
    );
    // Each connection (`Invalid user` + `Failed password for invalid user`) is one attempt:
    // five failures before the success.
    assert!(text.contains("success after 5 failures"), "{text}");
    let page = String::from_utf8(page).expect("utf-8");
    assert!(
        !page.contains("<script>") && !page.contains("<img"),
        "markup got through"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img/src=x/onerror=alert(2)&gt;"));
    // JSON carries the names exactly (escaped by JSON itself).
    let doc: Value = serde_json::from_slice(&json).expect("json");
    let b = &findings_of(&doc, "success_after_failures")[0];
    assert_eq!(b["user"], evil2);
    assert_eq!(doc["attackers"][0]["users"], serde_json::json!([evil]));
    assert!(
        doc["logins"]["successful"]
            .as_array()
            .expect("logins")
            .iter()
            // ut_user holds 32 bytes: the name arrives cut, escapes included.
            .any(|l| l["user"].as_str() == Some(&evil[..32]) && l["source"] == "wtmp")
    );
    // The line about the address that no rule matched is listed too.
    let addr_text = String::from_utf8(addr_text).expect("utf-8");
    assert!(
        addr_text.contains("error: something about 203.0.113.50"),
        "{addr_text}"
    );
    assert_eq!(
        addr_text
            .matches("Failed password for invalid user")
            .count(),
        5
    );
}

/// An RFC 3339 line at `secs` after 2026-11-25T08:00:00Z.
fn rfc_line(secs: u32, pid: u32, msg: &str) -> String {
    format!(
        "2026-11-25T08:{:02}:{:02}+00:00 srv sshd[{pid}]: {msg}\n",
        secs / 60,
        secs % 60
    )
}

#[test]
fn r4_period_user_and_quiet_logs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let line = rfc_line;
    let mut log = String::new();
    log += &line(
        0,
        1,
        "Accepted publickey for alice from 192.0.2.10 port 1 ssh2: ED25519 SHA256:x",
    );
    for i in 0..3 {
        log += &line(
            60 + i,
            2,
            "Failed password for bob from 203.0.113.7 port 2 ssh2",
        );
    }
    log += &line(
        600,
        3,
        "Accepted password for bob from 203.0.113.7 port 3 ssh2",
    );
    let path = dir.join("auth.log");
    let mut f = std::fs::File::create(&path).expect("log");
    f.write_all(log.as_bytes()).expect("write");
    drop(f);
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let log_arg = path.display().to_string();
    let go = |extra: &[&str]| -> (Option<i32>, Value) {
        let input = ["--logs", &log_arg, "--json", "--timezone", "UTC"];
        let out = investigate_offline(dir, &input, extra);
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), doc)
    };
    let (code, doc) = go(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(findings_of(&doc, "success_after_failures").len(), 1);
    // A period that ends before bob got in: nothing alarming.
    let (code, doc) = go(&["--until", "2026-11-25 08:05"]);
    assert_eq!(code, Some(0), "{:#}", doc["findings"]);
    assert_eq!(doc["totals"]["failures"], 3);
    // Only alice: nothing alarming either.
    let (code, doc) = go(&["--user", "alice"]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["totals"]["failures"], 0);
    assert_eq!(doc["totals"]["successes"], 1);
    // A period from a date: only bob's success is reported, but it is still a breach: the
    // period selects what is reported, the breach rule sees the failures before it (within
    // findtime), as `scan` and the daemon do.
    let (code, doc) = go(&["--since", "2026-11-25T08:09:00Z", "--limit", "0"]);
    assert_eq!(code, Some(1), "{:#}", doc["findings"]);
    assert_eq!(doc["totals"]["successes"], 1);
    assert_eq!(doc["totals"]["failures"], 0);
    let b = findings_of(&doc, "success_after_failures");
    assert_eq!(b.len(), 1, "{:#}", doc["findings"]);
    assert_eq!(b[0]["failures"], 3);
    // Bad period arguments are errors (exit 2).
    let (code, _) = {
        let out = Command::new(bin())
            .args(["investigate", "--since", "yesterday-ish"])
            .output()
            .expect("run");
        (out.status.code(), ())
    };
    assert_eq!(code, Some(2));
}

#[test]
fn r4_journal_source_gives_the_same_findings() {
    let remote = "/lib/systemd/systemd-journal-remote";
    if !crate::e2e::require(
        "needs journalctl and systemd-journal-remote",
        Path::new(remote).exists() && crate::e2e::which("journalctl").is_some(),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let base_us: i64 = 1_764_057_600_000_000; // 2025-11-25T08:00:00Z
    let messages = [
        "Failed password for bob from 203.0.113.7 port 4000 ssh2",
        "Failed password for bob from 203.0.113.7 port 4001 ssh2",
        "Failed password for admin from 203.0.113.7 port 4002 ssh2",
        "Accepted password for bob from 203.0.113.7 port 4003 ssh2",
        "Accepted publickey for alice from 192.0.2.10 port 4004 ssh2: ED25519 SHA256:abc",
    ];
    let mut export = String::new();
    for (i, msg) in messages.iter().enumerate() {
        export += &format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=srv\n\
             SYSLOG_IDENTIFIER=sshd\n_PID={}\n_UID=0\n_COMM=sshd\n_EXE=/usr/sbin/sshd\n\
             MESSAGE={msg}\n\n",
            base_us + i as i64 * 1_000_000,
            i + 1,
            500 + i
        );
    }
    let export_path = dir.join("in.export");
    std::fs::write(&export_path, export).expect("export");
    let journal = dir.join("sshd.journal");
    run(Command::new(remote)
        .arg("-o")
        .arg(&journal)
        .arg(&export_path));
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let journal_arg = journal.display().to_string();
    let input = ["--json", "--journal-file", &journal_arg];
    let out = exited(investigate_offline(dir, &input, &["203.0.113.7"]), 1);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let b = findings_of(&doc, "success_after_failures");
    assert_eq!(b.len(), 1, "{:#}", doc["findings"]);
    assert_eq!(b[0]["addr"], "203.0.113.7");
    assert_eq!(b[0]["user"], "bob");
    assert_eq!(b[0]["failures"], 3);
    assert_eq!(b[0]["time"], "2025-11-25T08:00:03Z");
    assert_eq!(doc["sources"][0]["name"], "journal");
    let lines: Vec<&str> = doc["address"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["line"].as_str())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("sshd[500]: Failed password for bob"),
        "{lines:?}"
    );
}

#[test]
fn r4_ban_state_and_history_from_the_store_read_only() {
    use portcullis_core::event::{Ban, BanReason, Decision, Weight};
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let mut log = String::new();
    for i in 0..3 {
        log += &rfc_line(i, 2, "Failed password for bob from 203.0.113.7 port 2 ssh2");
    }
    log += &rfc_line(
        30,
        3,
        "Failed password for root from 198.51.100.3 port 2 ssh2",
    );
    let path = dir.join("auth.log");
    std::fs::write(&path, log).expect("log");
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let now = Time::from_secs(jiff::Timestamp::now().as_second());
    let ban = |target: &str, since: i64, until: Option<i64>, ban_no| {
        Decision::Ban(Ban {
            target: target.parse().expect("net"),
            jail: "sshd".into(),
            since: Time::from_secs(now.as_secs() + since),
            until: until.map(|u| Time::from_secs(now.as_secs() + u)),
            ban_no,
            reason: BanReason::Threshold {
                score: Weight(3000),
            },
        })
    };
    let db = dir.join("state.db");
    {
        let mut store = portcullis_store::Store::open(&db).expect("store");
        store
            .apply(&[ban("203.0.113.7/32", -7200, Some(-3600), 1)], now)
            .expect("first ban");
        store
            .apply(&[ban("203.0.113.7/32", -60, Some(3600), 2)], now)
            .expect("second ban");
    }
    let before = std::fs::read(&db).expect("db");
    let log_arg = path.display().to_string();
    let go = |extra: &[&str]| -> Value {
        let out = exited(
            investigate_offline(dir, &["--json", "--logs", &log_arg], extra),
            0,
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let doc = go(&[]);
    assert_eq!(doc["bans_from"], "store");
    let banned: Vec<(&str, &Value)> = doc["attackers"]
        .as_array()
        .expect("attackers")
        .iter()
        .map(|a| (a["addr"].as_str().unwrap_or(""), &a["banned"]))
        .collect();
    assert_eq!(
        banned,
        [
            ("203.0.113.7", &Value::Bool(true)),
            ("198.51.100.3", &Value::Bool(false))
        ]
    );
    let doc = go(&["203.0.113.7"]);
    let a = &doc["address"];
    assert_eq!(a["banned"], true);
    assert_eq!(a["bans_active"].as_array().map(Vec::len), Some(1));
    assert_eq!(a["bans_active"][0]["ban_no"], 2);
    assert_eq!(a["ban_history"].as_array().map(Vec::len), Some(2));
    assert_eq!(a["summary"]["attempts"], 3);
    assert_eq!(
        std::fs::read(&db).expect("db"),
        before,
        "the store was written to"
    );
}
