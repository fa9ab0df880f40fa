//! GeoIP (issue 15 part 4) through the binary: `scan` and `investigate` (text, JSON, HTML)
//! with small .mmdb files the test writes itself in each layout (testkit::mmdb), no
//! database (silent), and missing or corrupt ones (a warning naming the file).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use portcullis_testkit::mmdb::{self, Layout};
use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// An auth.log: 6 failures each from two NL addresses (one IPv6), 4 from a BR one, 3 from
/// one no database knows.
fn auth_log(dir: &Path) -> PathBuf {
    let mut log = String::new();
    let mut sec = 0;
    for (addr, n) in [
        ("192.0.2.10", 6),
        ("2001:db8:1::10", 6),
        ("198.51.100.20", 4),
        ("203.0.113.200", 3),
    ] {
        for _ in 0..n {
            sec += 1;
            log += &format!(
                "Nov 25 08:{:02}:{:02} srv sshd[{}]: Failed password for root from {addr} port 4000 ssh2\n",
                sec / 60,
                sec % 60,
                100 + sec
            );
        }
    }
    let path = dir.join("auth.log");
    std::fs::write(&path, log).expect("log");
    path
}

/// A config that switches GeoIP off unless the command line names databases, so the
/// host's own /var/lib/GeoIP never changes what the test sees.
fn config(dir: &Path, geoip: &str) -> PathBuf {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, format!("[geoip]\n{geoip}\n")).expect("config");
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run portcullis")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn r15_scan_shows_country_and_as_per_address_and_tallies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let log = auth_log(dir);
    let country = dir.join("GeoLite2-Country.mmdb");
    let asn = dir.join("GeoLite2-ASN.mmdb");
    mmdb::write(
        &country,
        Layout::GeoLite2Country,
        false,
        &mmdb::sample_entries(),
    );
    mmdb::write(&asn, Layout::GeoLite2Asn, false, &mmdb::sample_entries());
    let cfg = config(dir, "databases = false");
    let (log, cfg, country, asn) = (
        log.display().to_string(),
        cfg.display().to_string(),
        country.display().to_string(),
        asn.display().to_string(),
    );
    let base = [
        "scan",
        log.as_str(),
        "--config",
        cfg.as_str(),
        "--timezone",
        "UTC",
    ];

    // Off: nothing GeoIP anywhere, and no warning.
    let out = run(&base);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("by country"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let out = run(&[&base[..], &["--json"]].concat());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc["addresses"][0].get("origin").is_none());
    assert!(doc.get("by_country").is_none());

    // A country and an ASN database on the command line (they override the config).
    let geo = ["--geoip", country.as_str(), "--geoip", asn.as_str()];
    let out = run(&[&base[..], &geo[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    assert!(
        human.contains("by country (addresses (attempts)): NL 2 (12), BR 1 (4), unknown 1 (3)"),
        "{human}"
    );
    assert!(
        human.contains("AS64500 Example Hosting B.V. 2 (12)"),
        "{human}"
    );
    let row = human
        .lines()
        .find(|l| l.starts_with("198.51.100.20"))
        .expect(&human);
    assert!(
        row.contains(" BR ") && row.contains("AS64501 Exemplo"),
        "{row}"
    );
    let row = human
        .lines()
        .find(|l| l.starts_with("2001:db8:1::10"))
        .expect(&human);
    assert!(row.contains(" NL ") && row.contains("AS64500"), "{row}");

    let out = run(&[&base[..], &geo[..], &["--json"]].concat());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let by_addr = |a: &str| {
        doc["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["addr"] == a)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_addr("2001:db8:1::10")["origin"]["country"], "NL");
    assert_eq!(by_addr("2001:db8:1::10")["origin"]["asn"], 64500);
    assert_eq!(
        by_addr("198.51.100.20")["origin"]["org"],
        "Exemplo Telecom <script>"
    );
    assert!(by_addr("203.0.113.200").get("origin").is_none());
    assert_eq!(doc["by_country"][0]["label"], "NL");
    assert_eq!(doc["by_country"][0]["addresses"], 2);
    assert_eq!(
        doc["by_asn"][1]["label"],
        "AS64501 Exemplo Telecom <script>"
    );

    // A named database that is missing or corrupt: a warning naming it, the rest works.
    let garbage = dir.join("garbage.mmdb");
    std::fs::write(&garbage, "not a database").expect("garbage");
    let missing = dir.join("missing.mmdb");
    let out = run(&[
        &base[..],
        &[
            "--geoip",
            &missing.display().to_string(),
            "--geoip",
            &garbage.display().to_string(),
            "--geoip",
            country.as_str(),
        ],
    ]
    .concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    assert!(
        text(&out.stdout).contains("NL 2 (12)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn r15_investigate_text_json_and_html_charts_from_an_ipinfo_lite_database() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let log = auth_log(dir);
    let geo_dir = dir.join("GeoIP");
    std::fs::create_dir(&geo_dir).expect("dir");
    // Found in the configured directory by its usual file name ("auto").
    mmdb::write(
        &geo_dir.join("ipinfo_lite.mmdb"),
        Layout::IpinfoLite,
        false,
        &mmdb::sample_entries(),
    );
    let cfg = config(
        dir,
        &format!(
            "directory = \"{}\"\ndatabases = \"auto\"",
            geo_dir.display()
        ),
    );
    std::fs::write(dir.join("sshd_config"), "Port 22\n").expect("sshd_config");
    let html = dir.join("report.html");
    let isolated: Vec<String> = [
        ("--utmp", "absent-utmp"),
        ("--wtmp", "wtmp"),
        ("--btmp", "btmp"),
        ("--socket", "control.sock"),
        ("--state-db", "state.db"),
        ("--sshd-config", "sshd_config"),
        ("--proc", "no-proc"),
    ]
    .iter()
    .flat_map(|(f, p)| [f.to_string(), dir.join(p).display().to_string()])
    .collect();
    let investigate = |extra: &[&str]| {
        Command::new(bin())
            .arg("investigate")
            .args(isolated.iter())
            .args(["--config", &cfg.display().to_string(), "--timezone", "UTC"])
            .args(extra)
            .args(["--logs", &log.display().to_string()])
            .output()
            .expect("investigate")
    };
    let out = investigate(&["--html", &html.display().to_string()]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("Where attackers come from"),
        "{shown}\n{}",
        text(&out.stderr)
    );
    assert!(
        shown.contains("by country: NL 2 (12), BR 1 (4), unknown 1 (3)"),
        "{shown}"
    );
    assert!(
        shown.contains("AS64501 Exemplo Telecom <script> 1 (4)"),
        "{shown}"
    );
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("id=\"chart-countries\"") && page.contains("id=\"chart-asns\""));
    assert!(
        !page.contains("<script"),
        "unescaped database text in the page"
    );
    assert!(page.contains("Exemplo Telecom &lt;script&gt;"));
    assert!(page.contains("<th>Country</th>"));

    let out = investigate(&["--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["origins"]["by_country"][0]["label"], "NL");
    assert!(
        doc["origins"]["databases"][0]
            .as_str()
            .unwrap()
            .contains("ipinfo_lite.mmdb")
    );
    let v6 = doc["attackers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["addr"] == "2001:db8:1::10")
        .expect("v6 attacker");
    assert_eq!(v6["origin"]["country"], "NL");
    assert_eq!(v6["origin"]["country_name"], "Netherlands");
    assert_eq!(v6["origin"]["asn"], 64500);

    // investigate ADDR: the address's own origin.
    let out = investigate(&["198.51.100.20", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["address"]["summary"]["origin"]["country"], "BR");

    // A corrupt database in the configuration: a warning of the report naming it.
    let bad = dir.join("bad.mmdb");
    std::fs::write(&bad, [0u8; 64]).expect("bad");
    std::fs::write(
        &cfg,
        format!("[geoip]\ndatabases = [\"{}\"]\n", bad.display()),
    )
    .expect("cfg");
    let out = investigate(&["--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("bad.mmdb"), "{warnings}");
    assert!(doc.get("origins").is_none() || doc["origins"].is_null());
}

/// The daemon with a configured database that is missing and one that is corrupt: it
/// starts, bans, answers `bans` and `status`, and says which files (log and status).
#[test]
fn r15_daemon_with_missing_and_corrupt_databases_warns_and_runs() {
    use crate::e2e::daemon::Daemon;
    use crate::e2e::netns::Netns;
    if !crate::e2e::require_root_and(&["ip"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("geo");
    let missing = tmp.path().join("GeoLite2-Country.mmdb");
    let corrupt = tmp.path().join("GeoLite2-ASN.mmdb");
    std::fs::write(&corrupt, vec![0xab; 4096]).expect("corrupt");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let daemon = Daemon::start(
        &ns,
        &tmp.path().join("pc"),
        &format!(
            "[firewall]\nbackend = \"none\"\n[jail.sshd]\nsources = [{{ file = \"{}\" }}]\n\
             maxretry = 2\n[geoip]\ndatabases = [\"{}\", \"{}\"]\n",
            log.display(),
            missing.display(),
            corrupt.display()
        ),
    );
    daemon.wait_for("the daemon's socket", 20, |d| {
        d.ctl(&["status"]).status.success()
    });
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    std::fs::write(
        &log,
        format!(
            "{now} srv sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2\n\
             {now} srv sshd[2]: Failed password for root from 203.0.113.9 port 2 ssh2\n"
        ),
    )
    .expect("log");
    daemon.wait_for("the ban", 20, |d| d.bans().len() == 1);
    let status = daemon.status();
    let warnings = status["geoip"]["warnings"].to_string();
    assert!(
        warnings.contains(&missing.display().to_string()),
        "{status}"
    );
    assert!(
        warnings.contains(&corrupt.display().to_string()),
        "{status}"
    );
    let log_text = daemon.log();
    assert!(
        log_text.contains(&corrupt.display().to_string()),
        "{log_text}"
    );
    let out = daemon.ctl(&["bans", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc.get("origins").is_none(), "{doc}");
    let human = String::from_utf8_lossy(&daemon.ctl(&["status"]).stdout).into_owned();
    assert!(human.contains("GeoLite2-ASN.mmdb"), "{human}");
}
