//! Page tests, including the real-browser check: headless Chromium renders the page, and the
//! screenshot must show each chart's colour over about the area the SVG geometry says.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_core::Time;
use portcullis_host::{RemoteConnections, Session, SshConnection, SshState, TcpSocket, TcpState};

use crate::chart::donut_arc_area;
use crate::*;

const HOSTILE: &str = "<script>alert(1)</script>";
const TERMINAL: &str = "\x1b[2J\x1b]0;owned\x07adm";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn sample() -> ReportModel {
    let t0 = 1_764_000_000i64;
    let buckets = (0..48)
        .map(|h| {
            let burst = if (20..30).contains(&h) {
                400 + h as u64 * 7
            } else {
                0
            };
            TimeBucket {
                start: Time::from_secs(t0 + h * 3600),
                failures: 20 + (h as u64 * 37) % 60 + burst,
                successes: if h % 6 == 0 { 60 } else { 3 },
            }
        })
        .collect();
    let top_addrs = (0..18u64)
        .map(|i| AddrAttempts {
            addr: if i == 3 {
                ip("2001:db8:dead:beef::17")
            } else {
                ip(&format!("203.0.113.{}", 10 + i))
            },
            attempts: 4000 / (i + 1),
            successes: u64::from(i == 0),
            first_seen: Some(Time::from_secs(t0 + i as i64 * 100)),
            last_seen: Some(Time::from_secs(t0 + 40 * 3600)),
            users: vec!["root".into(), HOSTILE.into()],
            banned: Some(i % 2 == 0),
            country: None,
            asn: None,
        })
        .collect();
    let mut top_users: Vec<UserAttempts> = [
        "root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "user", "pi", "ftp",
    ]
    .iter()
    .enumerate()
    .map(|(i, u)| UserAttempts {
        user: (*u).into(),
        attempts: 3000 / (i as u64 + 1),
    })
    .collect();
    top_users.insert(
        3,
        UserAttempts {
            user: HOSTILE.into(),
            attempts: 900,
        },
    );
    top_users.insert(
        5,
        UserAttempts {
            user: TERMINAL.into(),
            attempts: 500,
        },
    );
    let conn = |remote: &str, state: TcpState, ssh: SshState| SshConnection {
        socket: TcpSocket {
            local: "198.51.100.1:22".parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            uid: 0,
            inode: 1,
        },
        ssh,
        pids: vec![4242],
    };
    let mut states = BTreeMap::new();
    states.insert("ESTABLISHED".to_owned(), 2);
    ReportModel {
        title: "portcullis investigate: web1".into(),
        hostname: "web1".into(),
        generated: Time::from_secs(t0 + 48 * 3600),
        since: Some(Time::from_secs(t0)),
        until: None,
        bucket_secs: 3600,
        buckets,
        top_addrs,
        top_users,
        totals: Totals {
            failures: 31_337,
            successes: 4_100,
        },
        findings: vec![
            Finding {
                severity: Severity::Critical,
                title: "success after 37 failures".into(),
                addr: Some(ip("203.0.113.10")),
                user: Some(HOSTILE.into()),
                failures: 37,
                time: Some(Time::from_secs(t0 + 25 * 3600)),
                detail: format!(
                    "Accepted password for {TERMINAL} from 203.0.113.10 port 4242 ssh2"
                ),
            },
            Finding {
                severity: Severity::High,
                title: "root login".into(),
                addr: Some(ip("192.0.2.5")),
                user: Some("root".into()),
                failures: 0,
                time: Some(Time::from_secs(t0 + 30 * 3600)),
                detail: "publickey".into(),
            },
        ],
        sessions: vec![Session {
            user: "alice".into(),
            line: "pts/0".into(),
            host: "192.0.2.5".into(),
            addr: Some(ip("192.0.2.5")),
            since: Time::from_secs(t0 + 47 * 3600),
            pid: 4242,
        }],
        connections: vec![RemoteConnections {
            addr: ip("203.0.113.10"),
            count: 2,
            states: states.clone(),
            authenticated: 1,
            pre_auth: 1,
            users: vec![HOSTILE.into(), "root".into()],
            connections: vec![
                conn(
                    "203.0.113.10:5000",
                    TcpState::Established,
                    SshState::Authenticated {
                        user: HOSTILE.into(),
                        tty: Some("pts/1".into()),
                    },
                ),
                conn(
                    "203.0.113.10:5001",
                    TcpState::Established,
                    SshState::PreAuth {
                        user: Some("root".into()),
                    },
                ),
            ],
        }],
        logins: vec![LoginRow {
            time: Time::from_secs(t0 + 25 * 3600),
            user: HOSTILE.into(),
            addr: Some(ip("203.0.113.10")),
            method: Some("password".into()),
            source: "auth.log".into(),
            note: "still logged in".into(),
        }],
        by_country: Vec::new(),
        by_asn: Vec::new(),
        campaigns: vec![CampaignRow {
            kind: "campaign".into(),
            id: "campaign-1".into(),
            start: Time::from_secs(t0),
            end: Time::from_secs(t0 + 3 * 3600),
            active: false,
            participants: 1500,
            users: vec![HOSTILE.into(), TERMINAL.into()],
            confidence: 0.9,
        }],
    }
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let html = render_html(&sample());
    assert!(!html.contains("<script"), "raw script tag in output");
    assert!(
        !html.contains('\x1b') && !html.contains('\x07'),
        "raw control character in output"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("\\x1b[2J\\x1b]0;owned\\x07adm"));
    // No URL of any kind: nothing is fetched when the page opens.
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("url("));
    assert!(!html.contains(" src="));
}

#[test]
fn structure() {
    let m = sample();
    let html = render_html(&m);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
    assert_eq!(html.matches("class=\"bar fail\"").count(), 48);
    assert_eq!(html.matches("class=\"bar ok\"").count(), 48);
    assert_eq!(
        html.matches(&format!("fill=\"{}\"", colours::ADDRS))
            .count(),
        15,
        "address chart capped at 15 bars"
    );
    assert_eq!(html.matches("<tr><td><span class=\"sev").count(), 2);
    assert!(html.contains("2001:db8:dead:beef::17"));
    assert!(html.contains("2 serious findings"));
    let campaigns = &html[html.find("id=\"campaigns\"").unwrap()..];
    assert!(campaigns.contains("<td class=\"num\">1500</td>"));
    // The attackers table shows all 18, the chart 15.
    let attackers = &html[html.find("id=\"attackers\"").unwrap()..];
    assert_eq!(attackers.matches("<tr>").count(), 18 + 1);
}

#[test]
fn geoip_charts_show_only_with_data_and_escape_database_text() {
    let plain = render_html(&sample());
    assert!(!plain.contains("chart-countries") && !plain.contains("chart-asns"));
    assert!(!plain.contains("<th>Country</th>"));
    let mut m = sample();
    m.by_country = vec![
        OriginBar {
            label: "NL".into(),
            addresses: 9,
            attempts: 900,
        },
        OriginBar {
            label: "BR".into(),
            addresses: 4,
            attempts: 40,
        },
        OriginBar {
            label: "unknown".into(),
            addresses: 1,
            attempts: 3,
        },
    ];
    m.by_asn = vec![
        OriginBar {
            label: format!("AS64501 {HOSTILE}"),
            addresses: 5,
            attempts: 50,
        },
        OriginBar {
            label: "AS64500 Example Hosting".into(),
            addresses: 3,
            attempts: 30,
        },
    ];
    m.top_addrs[0].country = Some("NL".into());
    m.top_addrs[0].asn = Some(format!("AS64501 {HOSTILE}"));
    let html = render_html(&m);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 6);
    let countries = &html[html.find("id=\"chart-countries\"").unwrap()..];
    let countries = &countries[..countries.find("</svg>").unwrap()];
    assert_eq!(
        countries
            .matches(&format!("fill=\"{}\"", colours::COUNTRIES))
            .count(),
        3
    );
    assert!(countries.contains(">NL<") && countries.contains(">unknown<"));
    let asns = &html[html.find("id=\"chart-asns\"").unwrap()..];
    assert_eq!(
        asns[..asns.find("</svg>").unwrap()]
            .matches(&format!("fill=\"{}\"", colours::ASNS))
            .count(),
        2
    );
    assert!(
        !html.contains("<script"),
        "raw script tag from a database label"
    );
    assert!(html.contains("AS64501 &lt;script&gt;"));
    assert!(html.contains("<th>Country</th>") || html.contains(">Country<"));
}

#[test]
fn empty_model_renders() {
    let html = render_html(&ReportModel::default());
    assert!(html.contains("Nothing alarming found."));
    assert_eq!(html.matches("no data").count(), 3);
}

#[test]
fn model_round_trips_through_json() {
    let m = sample();
    let json = serde_json::to_string(&m).unwrap();
    let back: ReportModel = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["findings"][0]["severity"], "critical");
    assert_eq!(v["generated"], "2025-11-26T16:00:00Z");
}

// ---------------------------------------------------------------------------------------------
// Real browser.

/// Chromium on this machine, or a loud skip (a failure under CI=true).
fn chromium() -> Option<PathBuf> {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return Some(p.into());
        }
    }
    let msg = "SKIPPED: headless Chromium not found (apt-get install -y chromium); the HTML \
               report was not checked in a real browser";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true)");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    None
}

/// Run Chromium headless with its own profile dir; stdout, or a panic with stderr.
fn run_chromium(bin: &Path, profile: &Path, extra: &[String], page: &Path) -> Vec<u8> {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn chromium");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Area in CSS pixels of the `<rect>`s filled with `colour` in the page source.
fn rect_area(html: &str, colour: &str) -> f64 {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[start..].split('"').next()?.parse().ok()
    };
    html.split("<rect ")
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap()])
        .filter(|t| t.contains(&format!("fill=\"{colour}\"")))
        .map(|t| attr(t, "width").unwrap() * attr(t, "height").unwrap())
        .sum()
}

struct Painted {
    count: u64,
    min: (u32, u32),
    max: (u32, u32),
}

fn painted(img: &[u8], width: u32, channels: usize, colour: [u8; 3]) -> Painted {
    let mut p = Painted {
        count: 0,
        min: (u32::MAX, u32::MAX),
        max: (0, 0),
    };
    for (i, px) in img.chunks_exact(channels).enumerate() {
        let close = px[..3].iter().zip(colour).all(|(&a, b)| a.abs_diff(b) <= 6);
        if close {
            let (x, y) = (i as u32 % width, i as u32 / width);
            p.count += 1;
            p.min = (p.min.0.min(x), p.min.1.min(y));
            p.max = (p.max.0.max(x), p.max.1.max(y));
        }
    }
    p
}

#[test]
fn chromium_draws_the_charts() {
    let Some(bin) = chromium() else { return };
    let m = sample();
    let html = render_html(&m);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();

    // 1. The DOM after load: every chart and bar is there, nothing was turned into script.
    let dom = run_chromium(
        &bin,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into()],
        &page,
    );
    let dom = String::from_utf8_lossy(&dom);
    assert_eq!(
        dom.matches("<svg class=\"chart\"").count(),
        4,
        "svg charts in the DOM"
    );
    assert_eq!(
        dom.matches("<rect class=\"bar").count(),
        html.matches("<rect class=\"bar").count()
    );
    assert_eq!(dom.matches("<circle class=\"arc").count(), 2);
    assert!(
        !dom.contains("<script"),
        "hostile name became a script element"
    );
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // 2. The pixels: each chart colour covers about the area its geometry says.
    let shot = dir.path().join("shot.png");
    run_chromium(
        &bin,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
        &page,
    );
    if let Ok(keep) = std::env::var("PORTCULLIS_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    assert_eq!((info.width, info.height), (1280, 2000));
    let img = &buf[..info.buffer_size()];

    let total = m.totals.failures + m.totals.successes;
    let expected = [
        (
            colours::TIME_FAILURES,
            rect_area(&html, colours::TIME_FAILURES),
        ),
        (
            colours::TIME_SUCCESSES,
            rect_area(&html, colours::TIME_SUCCESSES),
        ),
        (colours::ADDRS, rect_area(&html, colours::ADDRS)),
        (colours::USERS, rect_area(&html, colours::USERS)),
        (
            colours::DONUT_FAILURES,
            rect_area(&html, colours::DONUT_FAILURES) + donut_arc_area(m.totals.failures, total),
        ),
        (
            colours::DONUT_SUCCESSES,
            rect_area(&html, colours::DONUT_SUCCESSES) + donut_arc_area(m.totals.successes, total),
        ),
    ];
    let mut boxes = Vec::new();
    for (colour, area) in expected {
        let p = painted(img, info.width, channels, hex(colour));
        eprintln!(
            "{colour}: {} px painted, {area:.0} expected, box {:?}-{:?}",
            p.count, p.min, p.max
        );
        assert!(area > 1000.0, "sample chart {colour} too small to judge");
        let ratio = p.count as f64 / area;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "{colour}: painted {} px, geometry says {area:.0}",
            p.count
        );
        boxes.push(p);
    }
    // Layout: time chart top-left, donut top-right, addresses bottom-left, users bottom-right.
    let centre = |p: &Painted| ((p.min.0 + p.max.0) / 2, (p.min.1 + p.max.1) / 2);
    let (time, donut, addrs, users) = (
        centre(&boxes[0]),
        centre(&boxes[4]),
        centre(&boxes[2]),
        centre(&boxes[3]),
    );
    assert!(
        time.0 < 640 && donut.0 > 640,
        "time chart left of donut: {time:?} {donut:?}"
    );
    assert!(
        addrs.0 < 640 && users.0 > 640,
        "addresses left of users: {addrs:?} {users:?}"
    );
    assert!(
        addrs.1 > time.1 && users.1 > donut.1,
        "bar charts below the first row"
    );
    // The time chart really is a set of bars spread over its width.
    assert!(
        boxes[0].max.0 - boxes[0].min.0 > 400,
        "time bars span the chart"
    );
}

#[test]
fn chromium_draws_the_by_country_and_by_as_charts() {
    let Some(bin) = chromium() else { return };
    let mut m = sample();
    m.by_country = ["NL", "BR", "JP", "US", "unknown"]
        .iter()
        .enumerate()
        .map(|(i, c)| OriginBar {
            label: (*c).into(),
            addresses: 50 / (i as u64 + 1),
            attempts: 1000 / (i as u64 + 1),
        })
        .collect();
    m.by_asn = (0..6u64)
        .map(|i| OriginBar {
            label: format!("AS{} Example {HOSTILE}", 64_500 + i),
            addresses: 40 / (i + 1),
            attempts: 400 / (i + 1),
        })
        .collect();
    let html = render_html(&m);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = dir.path().join("shot.png");
    run_chromium(
        &bin,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600".into(),
        ],
        &page,
    );
    if let Ok(keep) = std::env::var("PORTCULLIS_KEEP_GEO_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let img = &buf[..info.buffer_size()];
    let mut centres = Vec::new();
    for colour in [colours::COUNTRIES, colours::ASNS] {
        let area = rect_area(&html, colour);
        let p = painted(img, info.width, channels, hex(colour));
        assert!(area > 1000.0, "{colour}: sample too small to judge");
        let ratio = p.count as f64 / area;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "{colour}: painted {} px, geometry says {area:.0}",
            p.count
        );
        centres.push(((p.min.0 + p.max.0) / 2, (p.min.1 + p.max.1) / 2));
    }
    // Side by side, below the address and user charts.
    let addrs = painted(img, info.width, channels, hex(colours::ADDRS));
    assert!(centres[0].0 < 640 && centres[1].0 > 640, "{centres:?}");
    assert!(
        centres[0].1 > addrs.max.1,
        "{centres:?} below {:?}",
        addrs.max
    );
}
