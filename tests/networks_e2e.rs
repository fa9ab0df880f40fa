//! Network aggregation (issue 15 part 3) in a real kernel: the daemon in its own network
//! namespace with nftables bans three reported addresses of 198.51.100.0/24, then the
//! network; a host of that network that was never reported is dropped, an allowlisted
//! host inside it still gets through, `unban 198.51.100.0/24` lifts the network and the
//! members stay banned. The daemon's `bans` and `status` also say where they come from
//! (GeoIP from a database the test writes).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portcullis_testkit::mmdb::{self, Layout};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::{Pair, SERVER4};
use crate::e2e::require_root_and;

const REPORTED: [&str; 3] = ["198.51.100.10", "198.51.100.11", "198.51.100.12"];
const BYSTANDER: &str = "198.51.100.50";
const ALLOWED: &str = "198.51.100.77";
const PORT: u16 = 2222;

fn connects(pair: &Pair, src: &str) -> bool {
    let src: IpAddr = src.parse().expect("literal");
    let dst = SocketAddr::new(SERVER4.parse().expect("literal"), PORT);
    pair.attacker
        .connect_from(src, dst, Duration::from_millis(800))
        .is_ok()
}

fn append(log: &std::path::Path, addr: &str, n: usize) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("log");
    for i in 0..n {
        writeln!(
            f,
            "{now} srv sshd[{}]: Failed password for root from {addr} port {} ssh2",
            4000 + i,
            40_000 + i
        )
        .expect("write");
    }
}

fn reasons(d: &Daemon) -> Vec<(String, String)> {
    d.bans()
        .iter()
        .map(|b| {
            (
                b["target"].as_str().unwrap_or("").to_owned(),
                b["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn r15_a_banned_24_drops_its_unreported_hosts_but_not_the_allowlisted_one() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    scenario(Backend::NftNetlink);
}

#[test]
fn r15_network_bans_through_the_nft_cli_and_ipset() {
    if !require_root_and(&["ip", "nft", "ipset", "iptables"]) {
        return;
    }
    scenario(Backend::NftCli);
    scenario(Backend::Ipset);
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    NftNetlink,
    NftCli,
    Ipset,
}

fn scenario(backend: Backend) {
    let firewall = match backend {
        Backend::NftNetlink => "[firewall]\nbackend = \"nft\"\n",
        Backend::NftCli => "[firewall]\nbackend = \"nft\"\nnetlink = false\n",
        Backend::Ipset => "[firewall]\nbackend = \"ipset\"\n",
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = Pair::new();
    // The attacker side holds several addresses of 198.51.100.0/24; the server reaches
    // them on the link.
    for a in REPORTED.iter().chain([&BYSTANDER, &ALLOWED]) {
        pair.attacker
            .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", Pair::DEV]);
    }
    pair.server
        .exec(&["ip", "route", "add", "198.51.100.0/24", "dev", Pair::DEV]);
    let _listener = pair
        .server
        .listen(SocketAddr::new(SERVER4.parse().expect("literal"), PORT));
    for a in REPORTED.iter().chain([&BYSTANDER, &ALLOWED]) {
        assert!(
            connects(&pair, a),
            "{a} cannot reach the server before any ban"
        );
    }

    let geo = tmp.path().join("GeoLite2-ASN.mmdb");
    mmdb::write(&geo, Layout::IpinfoLite, false, &mmdb::sample_entries());
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let daemon = Daemon::start(
        &pair.server,
        &tmp.path().join("pc"),
        &format!(
            "{firewall}[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 2\nbantime = \"1h\"\n\
             allowlist = [\"127.0.0.0/8\", \"::1\", \"{ALLOWED}\"]\n\
             [networks]\nthreshold = 3\nbantime = \"30m\"\n\
             [geoip]\ndatabases = [\"{}\"]\n",
            log.display(),
            geo.display()
        ),
    );
    daemon.wait_for("the daemon's socket", 20, |d| {
        d.ctl(&["status"]).status.success()
    });

    append(&log, REPORTED[0], 2);
    append(&log, REPORTED[1], 2);
    daemon.wait_for("two member bans", 20, |d| d.bans().len() == 2);
    // Two members: the network is not banned yet, the bystander gets through.
    assert!(connects(&pair, BYSTANDER));
    append(&log, REPORTED[2], 2);
    daemon.wait_for("the network ban", 20, |d| {
        reasons(d).iter().any(|(_, r)| r == "network: 3 members")
    });
    let listed = reasons(&daemon);
    let parts: Vec<&str> = listed
        .iter()
        .filter(|(_, r)| r == "network: 3 members")
        .map(|(t, _)| t.as_str())
        .collect();
    // Carved around the allowlisted address: the upper /25 is one of the parts.
    assert!(parts.contains(&"198.51.100.128/25"), "{listed:?}");
    assert!(!parts.contains(&"198.51.100.0/24"), "{listed:?}");

    // The kernel: the unreported bystander is dropped, the allowlisted host is not.
    assert!(
        !connects(&pair, BYSTANDER),
        "{backend:?}: an unreported host of the banned /24 got through"
    );
    assert!(
        connects(&pair, ALLOWED),
        "{backend:?}: the allowlisted host inside the /24 was dropped"
    );
    for a in REPORTED {
        assert!(!connects(&pair, a), "{a} got through");
    }
    let set = match backend {
        Backend::Ipset => pair.server.exec(&["ipset", "list", "portcullis-net4"]),
        _ => pair
            .server
            .exec(&["nft", "list", "set", "inet", "portcullis", "net4"]),
    };
    assert!(set.contains("198.51.100.128/25"), "{backend:?}: {set}");

    // Visible with its origin: bans --json and status --json.
    let out = daemon.ctl(&["bans", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["origins"][REPORTED[0]]["country"], "BR", "{doc}");
    assert_eq!(doc["origins"][REPORTED[0]]["asn"], 64501, "{doc}");
    let human = String::from_utf8_lossy(&daemon.ctl(&["bans"]).stdout).into_owned();
    assert!(
        human.contains("network: 3 members") && human.contains("AS64501"),
        "{human}"
    );
    let status = daemon.status();
    assert!(
        status["networks"]["network_bans"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    assert!(
        status["networks"]["rules"]
            .as_str()
            .unwrap_or("")
            .starts_with("3 banned addresses of a /24"),
        "{status}"
    );
    assert_eq!(
        status["geoip"]["bans_by_country"][0]["label"], "BR",
        "{:#}",
        status["geoip"]
    );
    assert!(
        status["geoip"]["databases"][0]
            .as_str()
            .unwrap_or("")
            .contains("GeoLite2-ASN.mmdb"),
        "{status}"
    );
    let out = daemon.ctl(&["status", "sshd", "--json"]);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let banned_list = one["jails"][0]["banned"].to_string();
    assert!(banned_list.contains("198.51.100.128/25"), "{banned_list}");

    // Reversible: unban of the /24 lifts every part; the members stay banned.
    let out = daemon.ctl(&["unban", "198.51.100.0/24"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_for("the network lifted", 10, |d| {
        !reasons(d).iter().any(|(_, r)| r.starts_with("network"))
    });
    assert!(
        connects(&pair, BYSTANDER),
        "the bystander is still dropped after the unban"
    );
    assert!(
        !connects(&pair, REPORTED[0]),
        "a member's own ban was lifted with the network"
    );
    assert_eq!(daemon.bans().len(), 3);
}
