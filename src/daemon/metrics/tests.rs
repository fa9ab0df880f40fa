//! The encoding of a snapshot, checked by promtool when it is installed, and the HTTP
//! responder over a real socket.

use std::sync::Arc;

use portcullis_core::event::{Ban, BanReason};
use portcullis_core::{Decision, Time};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::server::{MAX_HEAD, Request, parse_request};
use super::*;

fn sample() -> Snapshot {
    let mut latency = Histogram::default();
    latency.observe(0.003);
    latency.observe(0.2);
    latency.observe(99.0);
    Snapshot {
        version: "0.1.0",
        uptime_secs: 12.5,
        jails: vec![JailSnapshot {
            name: "sshd".into(),
            banned_current: 2,
            banned_total: 3,
            failed_current: 4,
            failed_total: 17,
            bantime_secs: 600.0,
            findtime_secs: 600.0,
            maxretry: 5.0,
            events: [17, 2, 1, 0],
        }],
        sources: vec![SourceSnapshot {
            key: "file:/var/log/auth.log".into(),
            read: 100,
            untrusted: 0,
            truncated: 1,
            lag_secs: 0.0004,
            error: false,
            filters: vec![FilterSnapshot {
                jail: "sshd".into(),
                matched: 20,
                unmatched: 79,
                unparsed: 1,
                oversized: 1,
                bad: 1,
            }],
        }],
        bans: vec![("sshd".into(), "threshold", 3)],
        latency,
        store_errors: 1,
        store_healthy: true,
        firewall_errors: 0,
        firewall_healthy: true,
        hooks_delivered: 0,
        hooks_failed: 0,
        hooks_dropped: 5,
        hooks_waiting: 0,
    }
}

fn encoded(s: Snapshot) -> String {
    let (_tx, rx) = watch::channel(Arc::new(s));
    encode(&registry(rx))
}

#[test]
fn the_fail2ban_exporter_names_and_labels_are_there() {
    let text = encoded(sample());
    for line in [
        "f2b_up 1\n",
        "f2b_jail_count 1\n",
        "f2b_jail_banned_current{jail=\"sshd\"} 2\n",
        "f2b_jail_banned_total{jail=\"sshd\"} 3\n",
        "f2b_jail_failed_current{jail=\"sshd\"} 4\n",
        "f2b_jail_failed_total{jail=\"sshd\"} 17\n",
        "f2b_errors{type=\"db\"} 1\n",
        "f2b_jail_config_ban_time{jail=\"sshd\"} 600",
        "f2b_jail_config_fail_threshold{jail=\"sshd\"} 5",
        "portcullis_source_lines_read_total{source=\"file:/var/log/auth.log\"} 100\n",
        "portcullis_source_lines_truncated_total{source=\"file:/var/log/auth.log\"} 1\n",
        "portcullis_lines_unparsed_total{source=\"file:/var/log/auth.log\",jail=\"sshd\"} 1\n",
        "portcullis_events_total{jail=\"sshd\",kind=\"probe\"} 2\n",
        "portcullis_bans_total{jail=\"sshd\",kind=\"threshold\"} 3\n",
        "portcullis_ban_latency_seconds_bucket{le=\"0.005\"} 1\n",
        "portcullis_ban_latency_seconds_bucket{le=\"0.25\"} 2\n",
        "portcullis_ban_latency_seconds_bucket{le=\"+Inf\"} 3\n",
        "portcullis_ban_latency_seconds_count 3\n",
        "portcullis_hook_queue_dropped_total 5\n",
        "# TYPE f2b_jail_banned_total counter\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("# EOF"),
        "Prometheus text format, not OpenMetrics"
    );
}

#[test]
fn label_values_from_paths_are_escaped() {
    let mut s = sample();
    s.sources[0].key = "file:/var/log/a\"b\\c\nd".into();
    let text = encoded(s);
    assert!(
        text.contains(r#"{source="file:/var/log/a\"b\\c\nd"} 100"#),
        "{text}"
    );
}

#[test]
fn bans_from_lines_are_timed_and_manual_ones_are_not() {
    let mut c = Counters::default();
    let ban = |reason| {
        Decision::Ban(Ban {
            target: "192.0.2.1/32".parse().unwrap(),
            jail: "sshd".into(),
            since: Time::from_micros(0),
            until: None,
            ban_no: 1,
            reason,
        })
    };
    let read = Time::from_micros(1_000_000);
    let applied = Time::from_micros(1_004_000);
    c.decisions(
        &[
            ban(BanReason::Threshold {
                score: portcullis_core::Weight::ONE,
            }),
            ban(BanReason::Manual),
        ],
        Some(read),
        applied,
    );
    assert_eq!(c.latency.count, 1);
    assert!((c.latency.sum - 0.004).abs() < 1e-9);
    assert_eq!(c.latency.buckets[2], 1, "0.004 s falls in le=0.005");
    assert_eq!(c.bans.get(&("sshd".into(), "threshold")), Some(&1));
    assert_eq!(c.bans.get(&("sshd".into(), "manual")), Some(&1));
}

/// `promtool check metrics` on the encoding: the Debian `prometheus` package's own linter.
#[test]
fn promtool_accepts_the_encoding() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("promtool is missing (Debian package prometheus)");
        }
        eprintln!(
            "SKIPPED promtool_accepts_the_encoding: promtool is not installed (apt install prometheus)"
        );
        return;
    };
    assert!(out.status.success());
    let text = encoded(sample());
    assert_eq!(
        promtool_problems(&text),
        PROMTOOL_DEVIATIONS,
        "promtool check metrics:\n{text}"
    );
}

/// What promtool's linter says of the Fail2Ban exporter's own names, kept so dashboards work
/// (docs/metrics.md, "Deviations").
pub const PROMTOOL_DEVIATIONS: &[&str] =
    &["f2b_jail_count non-histogram and non-summary metrics should not have \"_count\" suffix"];

/// promtool's complaints about `text`, one per line (empty when it passes).
pub fn promtool_problems(text: &str) -> Vec<String> {
    let out = promtool_check(text);
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// promtool's complaints about `text` (empty when none).
pub fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s += &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        String::new()
    } else {
        s
    }
}

#[test]
fn request_lines() {
    assert_eq!(
        parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        Request::Metrics { head_only: false }
    );
    assert_eq!(
        parse_request(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
        Request::Metrics { head_only: true }
    );
    assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
    assert_eq!(
        parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
        Request::MethodNotAllowed
    );
    assert_eq!(parse_request(b"GET /metrics\r\n\r\n"), Request::Bad);
    assert_eq!(parse_request(b"\x00\xff garbage"), Request::Bad);
}

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(request).await.expect("write");
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_responder_answers_over_tcp_and_refuses_the_rest() {
    let (tx, rx) = watch::channel(Arc::new(sample()));
    let listen = portcullis_config::MetricsListen::Tcp("127.0.0.1:0".parse().unwrap());
    let server = MetricsServer::start(&listen, Arc::new(registry(rx))).expect("binds");
    let addr: std::net::SocketAddr = server.local.parse().unwrap();

    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Content-Type: text/plain; version=0.0.4"),
        "{ok}"
    );
    assert!(
        ok.contains("f2b_jail_banned_current{jail=\"sshd\"} 2\n"),
        "{ok}"
    );

    // A new snapshot is what the next scrape shows.
    let mut s = sample();
    s.jails[0].banned_current = 9;
    tx.send_replace(Arc::new(s));
    let ok = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(
        ok.contains("f2b_jail_banned_current{jail=\"sshd\"} 9\n"),
        "{ok}"
    );

    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let nf = exchange(addr, b"GET /admin HTTP/1.1\r\n\r\n").await;
    assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
    let post = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let bad = exchange(addr, b"hello\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    // A head without end, longer than the bound: refused, never buffered further.
    let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', MAX_HEAD * 4));
    let big = exchange(addr, &long).await;
    assert!(big.starts_with("HTTP/1.1 431 "), "{big}");
    server.stop();
}

#[tokio::test]
async fn a_slow_client_is_dropped_after_the_read_timeout() {
    let (mut client, server_side) = tokio::io::duplex(1024);
    let (_tx, rx) = watch::channel(Arc::new(sample()));
    let reg = registry(rx);
    let t0 = std::time::Instant::now();
    let serving = tokio::spawn(async move {
        server::serve_within(server_side, &reg, std::time::Duration::from_millis(200)).await
    });
    // Half a request line, then nothing: the connection is closed without an answer.
    client.write_all(b"GET /metr").await.unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    serving.await.expect("serve returns");
    assert!(out.is_empty(), "{out:?}");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn the_responder_answers_over_a_unix_socket_with_mode_0660() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/metrics.sock");
    // A stale socket file from an earlier run is replaced.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let (_tx, rx) = watch::channel(Arc::new(sample()));
    let listen = portcullis_config::MetricsListen::Unix(path.clone());
    let server = MetricsServer::start(&listen, Arc::new(registry(rx))).expect("binds");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("f2b_up 1\n"), "{out}");
    server.stop();
    assert!(!path.exists(), "the socket file goes with the server");

    // A regular file in its place is not replaced.
    std::fs::write(&path, "keep").unwrap();
    let (_tx, rx) = watch::channel(Arc::new(sample()));
    let err = MetricsServer::start(&listen, Arc::new(registry(rx)))
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("not a socket"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
}
