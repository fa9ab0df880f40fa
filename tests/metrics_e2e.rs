//! Issue 14 item 3: the Prometheus endpoint of a real daemon in the server namespace, scraped
//! with real curl, checked with `promtool check metrics` (Debian's prometheus package), while
//! a real sshd there is attacked with sshpass+ssh from the attacker namespace.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::{Netns, SERVER4};
use crate::e2e::sshd::{SshdLab, password_attempt};

/// What promtool's linter says of the Fail2Ban exporter's own names, which are kept so
/// dashboards work (docs/metrics.md, "Deviations"); the unit test in src/daemon/metrics
/// holds the same list.
const PROMTOOL_DEVIATIONS: &[&str] =
    &["f2b_jail_count non-histogram and non-summary metrics should not have \"_count\" suffix"];

/// `curl` from inside `ns`: the HTTP status line and body, or `None` when it cannot connect.
fn scrape(ns: &Netns, url: &str) -> Option<(String, String)> {
    let out = ns
        .command("curl")
        .args(["-sS", "--max-time", "5", "-D", "-", url])
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The value of the sample line that starts with `series` (name and labels), if present.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn promtool_problems(body: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    if out.status.success() {
        return Vec::new();
    }
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s += &String::from_utf8_lossy(&out.stderr);
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

const URL: &str = "http://127.0.0.1:9191/metrics";

#[test]
fn metrics_are_off_by_default_and_a_real_scrape_sees_an_attack_banned() {
    let Some(SshdLab { sshd, pair, tmp }) =
        SshdLab::start(&["nft", "sshpass", "curl", "promtool"], false)
    else {
        return;
    };
    let jail = format!(
        "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nfindtime = \"10m\"\nmaxretry = 3\nbantime = \"10m\"\n",
        sshd.log.display()
    );
    // Off by default: nothing listens.
    {
        let mut off = Daemon::start(&pair.server, &tmp.path().join("off"), &jail);
        assert!(
            scrape(&pair.server, URL).is_none(),
            "metrics are served without [metrics] enabled"
        );
        off.stop();
    }

    let config = format!("{jail}[metrics]\nenabled = true\nlisten = \"127.0.0.1:9191\"\n");
    let daemon = Daemon::start(&pair.server, &tmp.path().join("pc"), &config);
    let (status, body) = scrape(&pair.server, URL).expect("the endpoint answers");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(value(&body, "f2b_up"), Some(1.0), "{body}");
    assert_eq!(
        value(&body, "f2b_jail_banned_current{jail=\"sshd\"}"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(promtool_problems(&body), PROMTOOL_DEVIATIONS, "{body}");
    // Loopback of the server's namespace: the attacker cannot reach it.
    assert!(
        scrape(&pair.attacker, &format!("http://{SERVER4}:9191/metrics")).is_none(),
        "the metrics endpoint is reachable from the network"
    );

    // The attack: failed passwords until the attacker's connection is refused.
    let mut tries = 0;
    while password_attempt(&pair.attacker, SERVER4, "root", "wrong-password") {
        tries += 1;
        assert!(tries < 20, "never banned:\n{}", daemon.log());
    }
    assert!(tries >= 3, "banned after {tries} tries");
    let t0 = Instant::now();
    let body = loop {
        let (_, body) = scrape(&pair.server, URL).expect("the endpoint answers");
        if value(&body, "f2b_jail_banned_current{jail=\"sshd\"}") == Some(1.0) {
            break body;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "banned_current never became 1:\n{body}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let source = format!("{{source=\"file:{}\"}}", sshd.log.display());
    let read = value(
        &body,
        &format!("portcullis_source_lines_read_total{source}"),
    )
    .expect("lines read");
    let logged = sshd.log_text().lines().count() as f64;
    assert!(
        read >= 3.0 && read <= logged,
        "lines read {read}, the log has {logged}:\n{body}"
    );
    assert_eq!(
        value(&body, "f2b_jail_banned_total{jail=\"sshd\"}"),
        Some(1.0),
        "{body}"
    );
    let failed = value(&body, "f2b_jail_failed_total{jail=\"sshd\"}").expect("failed_total");
    assert!(failed >= 3.0, "{body}");
    assert_eq!(
        value(
            &body,
            "portcullis_bans_total{jail=\"sshd\",kind=\"threshold\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "portcullis_ban_latency_seconds_count"),
        Some(1.0),
        "{body}"
    );
    let attempts = value(
        &body,
        "portcullis_events_total{jail=\"sshd\",kind=\"attempt\"}",
    )
    .expect("attempt events");
    assert!(attempts >= 3.0, "{body}");
    let matched = value(
        &body,
        &format!(
            "portcullis_lines_matched_total{{source=\"file:{}\",jail=\"sshd\"}}",
            sshd.log.display()
        ),
    )
    .expect("matched");
    assert!(matched >= 3.0 && matched <= read, "{body}");
    assert_eq!(promtool_problems(&body), PROMTOOL_DEVIATIONS, "{body}");
    // The scrape agrees with `status`.
    let st = daemon.status();
    assert_eq!(
        st["jails"][0]["attempts"].as_f64(),
        Some(failed),
        "status {st} vs metrics"
    );
}

/// The fault: the metrics port is taken. The daemon says so and protects without metrics.
#[test]
fn a_taken_metrics_port_is_logged_and_the_daemon_protects_without_metrics() {
    if !crate::e2e::require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = crate::e2e::netns::Pair::new();
    let _taken = pair
        .server
        .listen("127.0.0.1:9191".parse().expect("address"));
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let config = format!(
        "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 2\n\
         [metrics]\nenabled = true\nlisten = \"127.0.0.1:9191\"\n",
        log.display()
    );
    let daemon = Daemon::start(&pair.server, &tmp.path().join("pc"), &config);
    daemon.wait_for("the metrics error in the log", 10, |d| {
        d.log()
            .contains("no metrics: metrics: cannot listen on 127.0.0.1:9191")
    });
    // Still banning.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log");
    // Now, in the local zone (the daemon's zone for syslog dates).
    let stamp = crate::e2e::run(std::process::Command::new("date").arg("+%b %e %H:%M:%S"));
    let stamp = stamp.trim_end();
    for pid in [100, 101] {
        use std::io::Write;
        writeln!(
            f,
            "{stamp} srv sshd[{pid}]: Failed password for root from 203.0.113.9 port 4000 ssh2"
        )
        .expect("write");
    }
    daemon.wait_for("the ban", 10, |d| {
        d.bans().iter().any(|b| b["target"] == "203.0.113.9")
    });
}
