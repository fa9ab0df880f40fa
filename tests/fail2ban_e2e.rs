//! Issue 5 end to end: `portcullis run --fail2ban-config DIR` runs an unchanged Fail2Ban
//! configuration (a copy of the installed /etc/fail2ban, made at test time in a temporary
//! directory, plus a jail.local) against a real sshd in a network namespace, and bans as
//! Fail2Ban would; and a Fail2Ban filter that hits the PCRE2 match limit does not stop the
//! daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::daemon::{Daemon, bin};
use crate::e2e::netns::{ATTACKER4, Pair, SERVER4};
use crate::e2e::require;
use crate::e2e::sshd::{SshdLab, password_attempt};

const FAIL2BAN_ETC: &str = "/etc/fail2ban";

/// The jail.local policy of the sshd + recidive test (written into jail.local from these).
const MAXRETRY: u32 = 3;
const BANTIME_SECS: u64 = 5;
const RECIDIVE_MAXRETRY: u32 = 3;

/// Copy a directory tree (regular files and directories; symlinks followed).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else if src.is_file() {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// A copy of the installed Fail2Ban configuration with `jail_local` added; `None` (after a
/// loud message, or a failure under CI=true) when Fail2Ban is not installed.
fn fail2ban_copy(tmp: &Path, jail_local: &str) -> Option<PathBuf> {
    let etc = Path::new(FAIL2BAN_ETC);
    if !require(
        "needs the Debian fail2ban package (/etc/fail2ban)",
        etc.join("jail.conf").is_file(),
    ) {
        return None;
    }
    let dir = tmp.join("fail2ban");
    copy_dir(etc, &dir);
    std::fs::write(dir.join("jail.local"), jail_local).expect("jail.local");
    Some(dir)
}

/// One ban as the test observed it: address, and duration in seconds (`None` = permanent).
type ObservedBan = (String, Option<u64>);

/// What Fail2Ban 1.0 does with this jail.local when one address fails `MAXRETRY` times,
/// `rounds` times over, each round after the previous ban expired:
/// - jail `sshd` (no `bantime.increment`): every ban lasts `bantime` = 5 s, and a ban
///   resets the address's failure count, so each round of `maxretry` failures is one ban;
/// - jail `recidive` reads Fail2Ban's own log, where every ban writes
///   `NOTICE [sshd] Ban ADDR`; its `maxretry` = 3 such lines within its `findtime` (1 day)
///   ban the address with `bantime = -1`, i.e. for ever. So the third sshd ban is followed
///   at once by a permanent recidive ban: bans 1 and 2 last 5 s, ban 3 never ends.
fn fail2ban_expected_bans(addr: &str, rounds: u32) -> Vec<ObservedBan> {
    let mut out = Vec::new();
    let mut ban_notices = 0;
    for _ in 0..rounds {
        ban_notices += 1; // the sshd ban of this round
        let permanent = ban_notices >= RECIDIVE_MAXRETRY;
        out.push((
            addr.to_owned(),
            if permanent { None } else { Some(BANTIME_SECS) },
        ));
    }
    out
}

fn jail_attempts(d: &Daemon, jail: &str) -> u64 {
    let status = d.status();
    status["jails"]
        .as_array()
        .and_then(|js| js.iter().find(|j| j["name"] == jail))
        .and_then(|j| j["attempts"].as_u64())
        .unwrap_or(0)
}

fn ban_of(d: &Daemon, target: &str) -> Option<serde_json::Value> {
    d.bans().into_iter().find(|b| b["target"] == target)
}

fn wait_connectable(pair: &Pair, secs: u64) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if pair.attacker_connects(SERVER4, 22, Duration::from_secs(1)) {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{SERVER4}:22 did not become reachable within {secs}s");
}

/// `fail2ban-regex LOG FILTER`'s count of matched lines (Fail2Ban's own tool).
fn fail2ban_regex_matched(log: &Path, filter: &Path) -> Option<u64> {
    let out = Command::new("fail2ban-regex")
        .arg(log)
        .arg(filter)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "Lines: 30 lines, 0 ignored, 9 matched, 21 missed"
    let line = text.lines().find(|l| l.starts_with("Lines:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("matched"))?;
    words.get(at - 1)?.parse().ok()
}

#[test]
fn f5_fail2ban_config_sshd_recidive_bans_like_fail2ban() {
    let Some(SshdLab { sshd, pair, tmp }) =
        SshdLab::start(&["nft", "sshpass", "ssh", "fail2ban-regex"], false)
    else {
        return;
    };
    // recidive reads Fail2Ban's own log; Fail2Ban refuses a jail whose log is missing.
    let f2b_log = tmp.path().join("fail2ban.log");
    std::fs::write(&f2b_log, "").expect("fail2ban.log");
    let jail_local = format!(
        "[DEFAULT]\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\n\n\
         [sshd]\nenabled = true\nbackend = auto\nlogpath = {}\nmaxretry = {MAXRETRY}\n\
         bantime = {BANTIME_SECS}s\nfindtime = 10m\n\n\
         [recidive]\nenabled = true\nlogpath = {}\nmaxretry = {RECIDIVE_MAXRETRY}\n\
         findtime = 1d\nbantime = -1\n",
        sshd.log.display(),
        f2b_log.display()
    );
    let Some(f2b) = fail2ban_copy(tmp.path(), &jail_local) else {
        return;
    };
    let daemon = Daemon::start_fail2ban(&pair.server, &tmp.path().join("pc"), &f2b);

    // The import report went to the log as warnings (recidive is folded into sshd).
    let log = daemon.log();
    assert!(
        log.contains("WARN") && log.contains("fail2ban import") && log.contains("recidive"),
        "import report not logged:\n{log}"
    );
    let jails: Vec<String> = daemon.status()["jails"]
        .as_array()
        .expect("jails")
        .iter()
        .map(|j| j["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        jails,
        ["sshd"],
        "recidive is a policy, not a jail that reads a log"
    );

    let rounds = 3;
    let mut observed: Vec<ObservedBan> = Vec::new();
    let mut expected_attempts = 0u64;
    for round in 1..=rounds {
        // maxretry - 1 failures: counted, no ban.
        for _ in 1..MAXRETRY {
            assert!(
                password_attempt(&pair.attacker, SERVER4, "root", "wrong-password"),
                "round {round}: connection refused before maxretry"
            );
            expected_attempts += 1;
        }
        daemon.wait_for("the failures to be counted", 15, |d| {
            jail_attempts(d, "sshd") == expected_attempts
        });
        assert!(
            ban_of(&daemon, ATTACKER4).is_none(),
            "round {round}: banned before maxretry"
        );
        assert!(pair.attacker_connects(SERVER4, 22, Duration::from_secs(1)));
        // The maxretry-th failure bans: the next TCP connect fails.
        assert!(password_attempt(
            &pair.attacker,
            SERVER4,
            "root",
            "wrong-password"
        ));
        expected_attempts += 1;
        daemon.wait_for("the ban", 15, |d| ban_of(d, ATTACKER4).is_some());
        // The decision is recorded, then the kernel set is written in the same loop turn.
        let t0 = Instant::now();
        while pair.attacker_connects(SERVER4, 22, Duration::from_secs(1)) {
            assert!(
                t0.elapsed() < Duration::from_secs(3),
                "round {round}: banned address still connects"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let ban = ban_of(&daemon, ATTACKER4).expect("ban");
        assert_eq!(ban["ban_no"], round, "{ban}");
        assert_eq!(ban["jail"], "sshd");
        let secs = ban["until"]
            .as_u64()
            .map(|u| u - ban["since"].as_u64().expect("since"));
        observed.push((ban["target"].as_str().unwrap_or("").to_owned(), secs));
        match secs {
            Some(s) => {
                // The kernel lifts it when its time is up.
                let waited = wait_connectable(&pair, s + 10);
                assert!(
                    waited <= Duration::from_secs(s + 3),
                    "a {s}s ban lasted {waited:?}"
                );
            }
            None => {
                // Permanent: still in force well after a temporary ban would have ended.
                std::thread::sleep(Duration::from_secs(BANTIME_SECS + 2));
                assert!(
                    !pair.attacker_connects(SERVER4, 22, Duration::from_secs(1)),
                    "permanent ban lifted"
                );
                let set = pair
                    .server
                    .exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
                assert!(
                    set.contains(ATTACKER4) && !set.contains(&format!("{ATTACKER4} timeout")),
                    "permanent ban not in the kernel without timeout:\n{set}"
                );
            }
        }
    }
    let target = format!("{ATTACKER4}/32");
    let observed_addrs: Vec<ObservedBan> = observed
        .iter()
        .map(|(t, s)| (t.trim_end_matches("/32").to_owned(), *s))
        .collect();
    assert!(observed.iter().all(|(t, _)| *t == target || t == ATTACKER4));
    assert_eq!(
        observed_addrs,
        fail2ban_expected_bans(ATTACKER4, rounds),
        "portcullis's bans differ from Fail2Ban's for this configuration"
    );

    // Same counting as Fail2Ban: its own fail2ban-regex finds exactly as many failures in
    // the sshd log as the daemon counted attempts.
    let matched = fail2ban_regex_matched(&sshd.log, &f2b.join("filter.d/sshd.conf"))
        .expect("fail2ban-regex output");
    assert_eq!(
        matched,
        jail_attempts(&daemon, "sshd"),
        "fail2ban-regex and portcullis disagree on the failures in:\n{}",
        sshd.log_text()
    );
    assert_eq!(matched, expected_attempts);
}

/// Kills the daemon of the match-limit test however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ctl_json(socket: &Path, args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new(bin())
        .args(args)
        .arg("--json")
        .arg("--socket")
        .arg(socket)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn f5_match_limit_in_a_fail2ban_filter_does_not_stop_the_daemon() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("evil.log");
    std::fs::write(&log, "").expect("log");
    let jail_local = format!(
        "[sshd]\nenabled = false\n\n[evil]\nenabled = true\nfilter = evil\nbackend = auto\n\
         logpath = {}\nmaxretry = 1\nbantime = 1h\nbanaction = nftables-multiport\n",
        log.display()
    );
    let Some(f2b) = fail2ban_copy(tmp.path(), &jail_local) else {
        return;
    };
    // `(a+)+` before a mismatch backtracks exponentially: only the match limit stops it.
    std::fs::write(
        f2b.join("filter.d/evil.conf"),
        "[INCLUDES]\nbefore = common.conf\n\n[Definition]\n_daemon = evil\n\
         failregex = ^%(__prefix_line)s(a+)+ from <HOST>$\nignoreregex =\n",
    )
    .expect("evil.conf");
    let state = tmp.path().join("state");
    let socket = tmp.path().join("ctl.sock");
    let daemon_log = tmp.path().join("daemon.log");
    let out = std::fs::File::create(&daemon_log).expect("daemon.log");
    let child = Command::new(bin())
        .arg("run")
        .arg("--fail2ban-config")
        .arg(&f2b)
        .arg("--state-dir")
        .arg(&state)
        .arg("--socket")
        .arg(&socket)
        .arg("--dry-run")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("spawn portcullis run");
    let mut daemon = Running(child);
    let daemon_text = || std::fs::read_to_string(&daemon_log).unwrap_or_default();
    let wait = |what: &str, secs: u64, daemon: &mut Running, cond: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if let Ok(Some(st)) = daemon.0.try_wait() {
                panic!(
                    "daemon exited ({st}) waiting for {what}:\n{}",
                    daemon_text()
                );
            }
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}:\n{}", daemon_text());
    };
    wait("the control socket", 20, &mut daemon, &|| {
        ctl_json(&socket, &["status"]).is_some()
    });

    let stamp = jiff::tz::TimeZone::system()
        .to_datetime(jiff::Timestamp::now())
        .strftime("%b %e %H:%M:%S")
        .to_string();
    let evil = format!(
        "{stamp} srv evil[7]: {}! from 192.0.2.66\n",
        "a".repeat(4000)
    );
    let normal = format!("{stamp} srv evil[8]: aaa from 192.0.2.9\n");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    std::io::Write::write_all(&mut f, evil.as_bytes()).expect("write");
    std::io::Write::write_all(&mut f, normal.as_bytes()).expect("write");
    drop(f);

    wait(
        "the ban of the normal line's address",
        30,
        &mut daemon,
        &|| {
            ctl_json(&socket, &["bans"]).is_some_and(|b| {
                b["bans"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["target"] == "192.0.2.9/32" || x["target"] == "192.0.2.9")
                })
            })
        },
    );
    let bans = ctl_json(&socket, &["bans"]).expect("bans");
    assert_eq!(
        bans["bans"].as_array().map(Vec::len),
        Some(1),
        "only the normal line bans: {bans}"
    );
    assert!(
        daemon.0.try_wait().expect("try_wait").is_none(),
        "daemon stopped"
    );
    let status = ctl_json(&socket, &["status"]).expect("status after the crafted line");
    assert_eq!(status["jails"][0]["name"], "evil");
    let text = daemon_text();
    assert!(
        text.contains("match limit"),
        "the cut-off search was not reported:\n{text}"
    );

    // Reload reads the Fail2Ban configuration again (same flag) and keeps the ban.
    let out = Command::new(bin())
        .args(["reload", "--socket"])
        .arg(&socket)
        .output()
        .expect("reload");
    assert!(
        out.status.success(),
        "reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bans = ctl_json(&socket, &["bans"]).expect("bans after reload");
    assert_eq!(bans["bans"].as_array().map(Vec::len), Some(1), "{bans}");
    assert!(
        daemon.0.try_wait().expect("try_wait").is_none(),
        "daemon stopped at reload"
    );
}

/// `scan` runs the same Fail2Ban filter whether the jails come from `--fail2ban-config` or
/// from portcullis TOML naming the filter file (`filter = { fail2ban = …, args = … }`).
#[test]
fn f5_scan_runs_fail2ban_filters_from_toml_and_from_fail2ban_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    let mut text = String::new();
    // 4 password failures of 192.0.2.20, 2 of 198.51.100.4.
    for (i, (addr, user)) in [
        ("192.0.2.20", "root"),
        ("192.0.2.20", "admin"),
        ("198.51.100.4", "root"),
        ("192.0.2.20", "root"),
        ("198.51.100.4", "oracle"),
        ("192.0.2.20", "test"),
    ]
    .iter()
    .enumerate()
    {
        text += &format!(
            "Nov 25 08:00:{i:02} srv sshd[{}]: Failed password for {user} from {addr} port {} ssh2\n",
            100 + i,
            40000 + i
        );
    }
    std::fs::write(&log, &text).expect("log");
    let jail_local = format!(
        "[sshd]\nenabled = true\nbackend = auto\nlogpath = {}\nmaxretry = 3\nbantime = 1h\n\
         findtime = 10m\nbanaction = nftables-multiport\n",
        log.display()
    );
    let Some(f2b) = fail2ban_copy(tmp.path(), &jail_local) else {
        return;
    };
    let toml = tmp.path().join("portcullis.toml");
    std::fs::write(
        &toml,
        "[jail.sshd]\nfilter = { fail2ban = \"fail2ban/filter.d/sshd.conf\", args = { mode = \"normal\" } }\n\
         maxretry = 3\nfindtime = \"10m\"\nbantime = \"1h\"\nmaxtime = \"1h\"\n\
         v6_net_threshold = false\nprotect_after_success = false\n",
    )
    .expect("toml");
    let scan = |flag: &str, value: &Path| -> serde_json::Value {
        let out = Command::new(bin())
            .args(["scan", "--json", "--timezone", "UTC", flag])
            .arg(value)
            .arg(&log)
            .output()
            .expect("scan");
        assert!(
            out.status.success(),
            "scan {flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("scan json")
    };
    for (flag, value) in [("--fail2ban-config", &f2b), ("--config", &toml)] {
        let v = scan(flag, value);
        let totals = &v["totals"];
        assert_eq!(totals["matched"], 6, "{flag}: {v}");
        assert_eq!(totals["attempts"], 6, "{flag}: {v}");
        assert_eq!(totals["bans"], 1, "{flag}: only 192.0.2.20 reaches 3: {v}");
        let text = v.to_string();
        assert!(text.contains("192.0.2.20"), "{flag}: {v}");
    }
}

/// `Lines: N lines, I ignored, M matched, X missed` of fail2ban-regex or test-filter.
fn line_counts(text: &str) -> Option<[u64; 4]> {
    let line = text.lines().find(|l| l.starts_with("Lines:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |w: &str| -> Option<u64> {
        let at = words.iter().position(|x| x.trim_end_matches(',') == w)?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    };
    Some([
        before("lines")?,
        before("ignored")?,
        before("matched")?,
        before("missed")?,
    ])
}

/// Issue 12 item 7: `test-filter` reads like `fail2ban-regex`. On a generated corpus with
/// every sshd line shape, Debian's sshd filter in each mode gives the same lines, ignored
/// (`<F-NOFAIL>`, pending multi-line and ignoreregex matches), matched and missed counts in
/// both tools (before: test-filter said 0 ignored and counted those lines missed), and
/// `--json` lists the addresses with their failures.
#[test]
fn f7_test_filter_counts_lines_as_fail2ban_regex_does() {
    let filter = Path::new("/etc/fail2ban/filter.d/sshd.conf");
    if !require("fail2ban-regex and Debian's sshd filter", filter.exists()) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("auth.log");
    let mut config = portcullis_loggen::Config::default();
    config.lines = 20_000;
    config.attackers = 200;
    config.seed = 5;
    let file = std::fs::File::create(&log).expect("create");
    portcullis_loggen::generate(&config, std::io::BufWriter::new(file)).expect("generate");
    for mode in ["normal", "aggressive", "ddos", "extra"] {
        let theirs = Command::new("fail2ban-regex")
            .arg(&log)
            .arg(format!("{}[mode={mode}]", filter.display()))
            .output()
            .expect("fail2ban-regex");
        let theirs = line_counts(&String::from_utf8_lossy(&theirs.stdout))
            .unwrap_or_else(|| panic!("fail2ban-regex output ({mode})"));
        let ours = Command::new(bin())
            .args(["test-filter"])
            .arg(filter)
            .arg(&log)
            .args(["--arg", &format!("mode={mode}")])
            .output()
            .expect("test-filter");
        let ours = line_counts(&String::from_utf8_lossy(&ours.stdout))
            .unwrap_or_else(|| panic!("test-filter output ({mode})"));
        assert_eq!(
            ours, theirs,
            "mode {mode}: [lines, ignored, matched, missed]"
        );
        assert!(theirs[1] > 0 && theirs[2] > 0, "{mode}: {theirs:?}");
    }
    let out = Command::new(bin())
        .args(["test-filter", "sshd"])
        .arg(&log)
        .arg("--json")
        .output()
        .expect("test-filter --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let addrs = v["addresses"].as_array().expect("addresses");
    assert!(!addrs.is_empty(), "{v}");
    let counts: Vec<u64> = addrs
        .iter()
        .map(|a| a["failures"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "sorted by failures"
    );
    assert!(addrs.iter().all(|a| {
        a["addr"]
            .as_str()
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok())
    }));
}
