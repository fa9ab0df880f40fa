//! Site-wide detection through `scan --json` (issue 15.1/15.2): loggen's site mode plants a
//! distributed campaign (or a user-targeted attack) over two weeks of legitimate users and
//! scanners; the campaign `scan` reports is bracketed around the planted one and its
//! participants are the planted ones; a campaign-free fortnight reports none.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_loggen::{SiteConfig, SiteTruth, generate_site};
use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

fn site(dir: &Path, cfg: &SiteConfig) -> (PathBuf, SiteTruth) {
    let path = dir.join("auth.log");
    let file = std::fs::File::create(&path).expect("create log");
    let truth = generate_site(cfg, std::io::BufWriter::new(file)).expect("generate");
    (path, truth)
}

fn scan(log: &Path, config: &str, dir: &Path) -> Value {
    let conf = dir.join("portcullis.toml");
    std::fs::write(&conf, config).expect("config");
    let out = Command::new(bin())
        .args(["scan", "--json", "--timezone", "UTC", "--config"])
        .arg(&conf)
        .arg(log)
        .output()
        .expect("run portcullis");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

const SSHD: &str = "[jail.sshd]\n";

fn kinds(doc: &Value, kind: &str) -> Vec<Value> {
    doc["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect()
}

fn secs(t: &Value) -> i64 {
    let ts: jiff::Timestamp = t.as_str().expect("time").parse().expect("timestamp");
    ts.as_second()
}

#[test]
fn scan_json_reports_the_planted_campaign_and_its_participants() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = SiteConfig {
        days: 14,
        campaign_addrs: 1500,
        campaign_start_hour: 24 * 7,
        campaign_hours: 72,
        seed: 15,
        ..SiteConfig::default()
    };
    let (log, truth) = site(dir.path(), &cfg);
    // Root is every scanner's favourite: keep the user-targeted detector off here.
    let doc = scan(
        &log,
        &format!("[campaign]\ntargeted = false\n{SSHD}"),
        dir.path(),
    );
    let found = kinds(&doc, "campaign");
    assert_eq!(found.len(), 1, "{found:#?}");
    let c = &found[0];
    let (start, end) = (
        truth.campaign_start.expect("s"),
        truth.campaign_end.expect("e"),
    );
    assert!(
        (secs(&c["start"]) - start).abs() <= 2 * 3600,
        "start {} vs {start}",
        c["start"]
    );
    assert!(
        (secs(&c["end"]) - end).abs() <= 4 * 3600,
        "end {} vs {end}",
        c["end"]
    );
    let got: BTreeSet<String> = c["participants"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a.as_str().expect("addr").to_owned())
        .collect();
    let want: BTreeSet<String> = truth.participants.iter().map(ToString::to_string).collect();
    let hit = got.intersection(&want).count() as f64;
    assert!(
        hit / want.len() as f64 >= 0.9,
        "recall {hit}/{}",
        want.len()
    );
    assert!(
        hit / got.len() as f64 >= 0.85,
        "precision {hit}/{}",
        got.len()
    );
    for u in &truth.user_addrs {
        assert!(
            !got.contains(&u.to_string()),
            "a site user is a participant: {u}"
        );
    }
    assert_eq!(c["participant_count"].as_u64(), Some(got.len() as u64));
}

#[test]
fn scan_json_reports_no_campaign_on_a_clean_fortnight() {
    let dir = tempfile::tempdir().expect("tmp");
    for seed in [1, 2] {
        let cfg = SiteConfig {
            days: 14,
            seed,
            ..SiteConfig::default()
        };
        let (log, _) = site(dir.path(), &cfg);
        let doc = scan(
            &log,
            &format!("[campaign]\ntargeted = false\n{SSHD}"),
            dir.path(),
        );
        assert!(
            kinds(&doc, "campaign").is_empty(),
            "seed {seed}: {}",
            doc["campaigns"]
        );
    }
}

#[test]
fn scan_json_reports_a_user_targeted_attack_on_an_existing_account() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = SiteConfig {
        days: 3,
        scanners_per_hour: 0.5,
        campaign_addrs: 40,
        campaign_start_hour: 30,
        campaign_hours: 12,
        campaign_user: Some("staff03".into()),
        ..SiteConfig::default()
    };
    let (log, truth) = site(dir.path(), &cfg);
    let doc = scan(
        &log,
        &format!("[campaign]\ntargeted_min_addresses = 15\n{SSHD}"),
        dir.path(),
    );
    let found: Vec<Value> = kinds(&doc, "user-targeted")
        .into_iter()
        .filter(|c| c["users"][0]["user"] == "staff03")
        .collect();
    assert_eq!(found.len(), 1, "{}", doc["campaigns"]);
    let got: BTreeSet<String> = found[0]["participants"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a.as_str().expect("addr").to_owned())
        .collect();
    let want: BTreeSet<String> = truth.participants.iter().map(ToString::to_string).collect();
    assert_eq!(
        got, want,
        "exactly the attackers: the owner's own typos are cleared by their logins"
    );
    // Scanners guess invalid names mostly: no other account but root may be reported.
    for c in kinds(&doc, "user-targeted") {
        let u = c["users"][0]["user"].as_str().expect("user");
        assert!(u == "staff03" || u == "root", "{u}");
    }
}

#[test]
fn investigate_json_and_html_show_the_campaign() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = SiteConfig {
        days: 10,
        campaign_addrs: 800,
        campaign_start_hour: 24 * 5,
        campaign_hours: 48,
        seed: 3,
        ..SiteConfig::default()
    };
    let (log, truth) = site(dir.path(), &cfg);
    let conf = dir.path().join("portcullis.toml");
    std::fs::write(&conf, format!("[campaign]\ntargeted = false\n{SSHD}")).expect("config");
    let html = dir.path().join("report.html");
    let out = Command::new(bin())
        .args(["investigate", "--json", "--timezone", "UTC", "--config"])
        .arg(&conf)
        .arg("--logs")
        .arg(&log)
        .arg("--html")
        .arg(&html)
        .arg("--socket")
        .arg(dir.path().join("none.sock"))
        .arg("--state-db")
        .arg(dir.path().join("none.db"))
        .output()
        .expect("run portcullis");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let found = kinds(&doc, "campaign");
    assert_eq!(found.len(), 1, "{}", doc["campaigns"]);
    let n = found[0]["participant_count"].as_u64().expect("count") as usize;
    assert!(n >= truth.participants.len() * 9 / 10, "{n}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("id=\"campaigns\""));
    assert!(page.contains(&format!("<td class=\"num\">{n}</td>")));
}
