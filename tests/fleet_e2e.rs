//! Fleet mode end to end (issue 16): Debian's nats-server with JetStream and the
//! permissions `portcullis fleet server-config` writes, three daemons in three network
//! namespaces each protecting its own real sshd, real sshpass attacks.
//!
//! Layout: a broker namespace with a bridge (203.0.113.254/24) and nats-server; per node
//! a server/attacker pair (192.0.2.1 ↔ 192.0.2.2, plus extra attacker addresses) whose
//! server also sits on the bridge (203.0.113.1/2/3). The attackers of the three pairs share
//! addresses, so a ban node B received from A is checked against B's own attacker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::daemon::{Daemon, bin};
use crate::e2e::netns::{Netns, Pair, SERVER4};
use crate::e2e::sshd::{Sshd, password_attempt_from};
use crate::e2e::{require_root_and, run};

const BROKER: &str = "203.0.113.254";
const PREFIX: &str = "pc";

/// nats-server inside the broker namespace; killed on drop.
struct Nats {
    child: Option<Child>,
    ns: String,
    conf: PathBuf,
    log: PathBuf,
}

impl Nats {
    fn start(ns: &Netns, conf: &Path, log: &Path) -> Nats {
        let mut n = Nats {
            child: None,
            ns: ns.name.clone(),
            conf: conf.to_path_buf(),
            log: log.to_path_buf(),
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("nats log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nats-server", "-c"])
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .matches("Server is ready")
                .count()
                > 0
                && self
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_none())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nats-server did not start:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One fleet node: its server/attacker pair, sshd and daemon.
struct Node {
    name: &'static str,
    daemon: Daemon,
    _sshd: Sshd,
    pair: Pair,
}

/// `portcullis fleet …` (the admin command) run inside `ns`, with the seed `seed`.
fn fleet_cmd(ns: &Netns, config: &Path, seed: &Path, args: &[&str]) -> std::process::Output {
    ns.command(bin().to_str().expect("utf-8 path"))
        .args(["fleet", "--config"])
        .arg(config)
        .arg("--nkey-seed-file")
        .arg(seed)
        .args(args)
        .output()
        .expect("run portcullis fleet")
}

/// One failed password login from `from` (an address of the attacker namespace) to the
/// node's sshd; whether the TCP connection was accepted.
fn attempt_from(pair: &Pair, from: &str) -> bool {
    password_attempt_from(
        &pair.attacker,
        Some(from),
        SERVER4,
        "root",
        "wrong-password",
    )
}

/// Attack `node` from `from` until it refuses the connection.
fn attack_until_banned(node: &Node, from: &str) {
    for _ in 0..12 {
        if !attempt_from(&node.pair, from) {
            return;
        }
        // Let the daemon read the lines before the next try (a loaded machine).
        std::thread::sleep(Duration::from_millis(150));
    }
    node.daemon
        .wait_for(&format!("{} to ban {from}", node.name), 10, |d| {
            ban_of(&d.bans(), from).is_some()
        });
    assert!(
        !attempt_from(&node.pair, from),
        "{from} still reaches {}",
        node.name
    );
}

fn ban_of(bans: &[serde_json::Value], addr: &str) -> Option<serde_json::Value> {
    let want = format!("{addr}/32");
    bans.iter()
        .find(|b| b["target"] == addr || b["target"] == want.as_str())
        .cloned()
}

/// Wait until `node` holds a fleet ban of `addr` with `origin`; return it.
fn wait_fleet_ban(node: &Node, addr: &str, origin: &str, secs: u64) -> serde_json::Value {
    let mut found = None;
    node.daemon.wait_for(
        &format!("{} to ban {addr} from {origin}", node.name),
        secs,
        |d| {
            found = ban_of(&d.bans(), addr)
                .filter(|b| b["jail"] == "fleet" && b["origin"].as_str() == Some(origin));
            found.is_some()
        },
    );
    found.expect("found")
}

/// Whether `addr` is an element of `node`'s kernel set (the ban really is in the kernel).
fn in_kernel(node: &Node, addr: &str) -> bool {
    let out = node
        .pair
        .server
        .command("nft")
        .args(["list", "set", "inet", "portcullis", "addr4"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).contains(addr)
}

fn counter(d: &Daemon, key: &str) -> u64 {
    d.status()["fleet"]["ignored"][key].as_u64().unwrap_or(0)
}

#[test]
fn i16_fleet_bans_spread_catch_up_survive_the_broker_and_bind_credentials() {
    if !require_root_and(&["ip", "sshd", "nft", "sshpass", "ssh", "nats-server"]) {
        return;
    }
    let t_start = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let broker = Netns::new("brk");
    broker.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
    broker.exec(&["ip", "addr", "add", &format!("{BROKER}/24"), "dev", "br0"]);
    broker.exec(&["ip", "link", "set", "br0", "up"]);

    // Keys: one per node and one admin (written by the command the docs tell admins to use).
    let plain = dir.join("plain.toml");
    std::fs::write(
        &plain,
        format!("[fleet]\nprefix = \"{PREFIX}\"\nservers = [\"nats://127.0.0.1:4222\"]\n"),
    )
    .expect("plain config");
    let keygen = |name: &str| {
        let seed = dir.join(format!("{name}.seed"));
        let public = run(Command::new(bin())
            .args(["fleet", "--config"])
            .arg(&plain)
            .arg("keygen")
            .arg(&seed));
        (seed, public.trim().to_owned())
    };
    let names = ["a", "b", "c"];
    let keys: Vec<(PathBuf, String)> = names.iter().map(|n| keygen(n)).collect();
    let (admin_seed, admin_pub) = keygen("admin");
    let mut sc = Command::new(bin());
    sc.args(["fleet", "--config"])
        .arg(&plain)
        .arg("server-config");
    for (n, (_, k)) in names.iter().zip(&keys) {
        sc.args(["--node", &format!("{n}={k}")]);
    }
    sc.args(["--admin", &admin_pub, "--store-dir"])
        .arg(dir.join("js"));
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, run(&mut sc)).expect("nats.conf");
    let mut nats = Nats::start(&broker, &conf, &dir.join("nats.log"));
    let init = fleet_cmd(&broker, &plain, &admin_seed, &["init"]);
    assert!(
        init.status.success(),
        "fleet init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // Retention = the longest ban: the embedded default's sshd maxtime, one week.
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(said.contains("max age 604800s"), "{said}");

    // Three nodes, each with its own sshd, on the bridge.
    let mut nodes: Vec<Node> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let pair = Pair::new();
        for extra in 3..=9 {
            pair.attacker.exec(&[
                "ip",
                "addr",
                "add",
                &format!("192.0.2.{extra}/24"),
                "dev",
                Pair::DEV,
            ]);
        }
        let dev = format!("f{i}");
        pair.server.veth("up0", &broker, &dev);
        pair.server.exec(&[
            "ip",
            "addr",
            "add",
            &format!("203.0.113.{}/24", i + 1),
            "dev",
            "up0",
        ]);
        pair.server.exec(&["ip", "link", "set", "up0", "up"]);
        broker.exec(&["ip", "link", "set", &dev, "master", "br0"]);
        broker.exec(&["ip", "link", "set", &dev, "up"]);
        let ndir = dir.join(name);
        let sshd = Sshd::start(&pair.server, &ndir.join("sshd"), false);
        let body = format!(
            "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 3\nfindtime = \"10m\"\n\
             bantime = \"10m\"\nallowlist = [\"198.51.100.7\"]\n\n\
             [fleet]\nenabled = true\nservers = [\"nats://{BROKER}:4222\"]\nnode = \"{name}\"\n\
             prefix = \"{PREFIX}\"\nnkey_seed_file = \"{}\"\nmembers = [\"203.0.113.0/24\"]\n\
             max_ban = \"1h\"\n",
            sshd.log.display(),
            keys[i].0.display()
        );
        let daemon = Daemon::start(&pair.server, &ndir, &body);
        nodes.push(Node {
            name,
            daemon,
            _sshd: sshd,
            pair,
        });
    }
    for n in &nodes {
        n.daemon.wait_for("the fleet link", 20, |d| {
            let f = &d.status()["fleet"];
            f["connected"] == true && f["consuming"] == true
        });
    }

    // 1. Attack A: B and C ban the attacker within 1 s of A's ban, origin A, in the kernel.
    attack_until_banned(&nodes[0], "192.0.2.2");
    let t_a = Instant::now();
    for n in &nodes[1..] {
        let b = wait_fleet_ban(n, "192.0.2.2", "a", 5);
        assert_eq!(b["reason"], "fleet", "{b}");
        assert!(
            in_kernel(n, "192.0.2.2"),
            "{} has no kernel element",
            n.name
        );
    }
    let spread = t_a.elapsed();
    eprintln!("B and C banned the attacker {spread:?} after A refused it");
    assert!(
        spread <= Duration::from_secs(1),
        "B and C banned the attacker {spread:?} after A (more than 1 s)"
    );
    assert!(
        !attempt_from(&nodes[1].pair, "192.0.2.2"),
        "B's own sshd still reachable from the attacker A reported"
    );
    let st = nodes[1].daemon.status();
    assert!(
        st["fleet"]["origins"]["a"].as_u64() >= Some(1),
        "{}",
        st["fleet"]
    );
    let text = nodes[1].daemon.ctl(&["status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("by origin: a 1"),
        "status (text): {}",
        String::from_utf8_lossy(&text.stdout)
    );
    let text = nodes[1].daemon.ctl(&["bans"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("origin a"),
        "bans (text) shows no origin: {}",
        String::from_utf8_lossy(&text.stdout)
    );

    // 2. B stopped; attacks on A and C; B started: it catches up with both.
    nodes[1].daemon.stop();
    attack_until_banned(&nodes[0], "192.0.2.3");
    attack_until_banned(&nodes[2], "192.0.2.4");
    wait_fleet_ban(&nodes[0], "192.0.2.4", "c", 5);
    nodes[1].daemon.restart();
    for (addr, origin) in [("192.0.2.2", "a"), ("192.0.2.3", "a"), ("192.0.2.4", "c")] {
        wait_fleet_ban(&nodes[1], addr, origin, 10);
        assert!(in_kernel(&nodes[1], addr), "B lacks {addr} in the kernel");
    }
    let applied = nodes[1].daemon.status()["fleet"]["applied_seq"]
        .as_u64()
        .unwrap_or(0);
    assert!(applied >= 3, "B's stored sequence: {applied}");

    // 3. The broker killed during an attack: every node keeps banning locally; broker back:
    // the queued reports flow.
    nats.kill();
    for n in &nodes {
        n.daemon
            .wait_for("the link to notice the broker's loss", 15, |d| {
                d.status()["fleet"]["connected"] == false
            });
    }
    attack_until_banned(&nodes[0], "192.0.2.5");
    attack_until_banned(&nodes[2], "192.0.2.6");
    for n in &nodes {
        assert!(
            in_kernel(n, "192.0.2.2"),
            "{} lost a fleet ban with the broker",
            n.name
        );
    }
    let queued = nodes[0].daemon.status()["fleet"]["queued"]
        .as_u64()
        .unwrap_or(0);
    assert!(queued >= 1, "A queued no report while the broker was down");
    nats.spawn();
    wait_fleet_ban(&nodes[1], "192.0.2.5", "a", 15);
    wait_fleet_ban(&nodes[1], "192.0.2.6", "c", 15);
    wait_fleet_ban(&nodes[2], "192.0.2.5", "a", 15);
    wait_fleet_ban(&nodes[0], "192.0.2.6", "c", 15);

    // 4. A node's credentials: an unban (admin subject) or a report in another node's name
    // is refused by the server; a permanent report is capped by the receivers.
    let (a_seed, _) = &keys[0];
    let refused = fleet_cmd(&broker, &plain, a_seed, &["unban", "192.0.2.2"]);
    assert!(
        !refused.status.success(),
        "node A's credentials published an unban: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let refused = fleet_cmd(&broker, &plain, a_seed, &["ban", "192.0.2.8"]);
    assert!(
        !refused.status.success(),
        "node A's credentials published an admin ban"
    );
    let published = publish_as(
        &broker,
        a_seed,
        &[
            // In B's name: refused by the server.
            (format!("{PREFIX}.ban.b.192-0-2-7_32"), "{}".to_string()),
            // Its own, "permanent": capped by the receivers.
            (format!("{PREFIX}.ban.a.192-0-2-9_32"), "{}".to_string()),
            // Allowlisted everywhere, a member's address, a /16: ignored by every receiver.
            (format!("{PREFIX}.ban.a.198-51-100-7_32"), "{}".to_string()),
            (format!("{PREFIX}.ban.a.203-0-113-2_32"), "{}".to_string()),
            (format!("{PREFIX}.ban.a.192-0-0-0_16"), "{}".to_string()),
        ],
    );
    assert_eq!(
        published,
        vec![false, true, true, true, true],
        "acknowledged publishes"
    );
    for n in &nodes[1..] {
        let b = wait_fleet_ban(n, "192.0.2.9", "a", 5);
        let secs = b["until"].as_i64().expect("a capped ban has an end")
            - b["since"].as_i64().expect("since");
        assert!(
            secs <= 3600,
            "{}: a node's permanent report lasts {secs}s",
            n.name
        );
        n.daemon
            .wait_for("the ignored reports to be counted", 5, |d| {
                counter(d, "protected") >= 2 && counter(d, "too_wide") >= 1
            });
        let bans = n.daemon.bans();
        for addr in ["192.0.2.7", "192.0.2.8", "198.51.100.7", "203.0.113.2"] {
            assert!(ban_of(&bans, addr).is_none(), "{} banned {addr}", n.name);
        }
        assert!(
            !bans.iter().any(|b| b["target"] == "192.0.0.0/16"),
            "{} banned a /16",
            n.name
        );
        assert!(
            ban_of(&n.daemon.bans(), "192.0.2.2").is_some(),
            "the refused unban lifted a ban"
        );
    }

    // The admin's credentials may: unban everywhere.
    let out = fleet_cmd(&broker, &plain, &admin_seed, &["unban", "192.0.2.2"]);
    assert!(
        out.status.success(),
        "admin unban: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in &nodes {
        n.daemon.wait_for("the admin's unban", 5, |d| {
            ban_of(&d.bans(), "192.0.2.2").is_none()
        });
    }
    // Allow everywhere: C's own jail ban and the fleet bans of it go on every node, and no
    // jail bans it again.
    let out = fleet_cmd(&broker, &plain, &admin_seed, &["allow", "192.0.2.4"]);
    assert!(
        out.status.success(),
        "admin allow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in &nodes {
        n.daemon.wait_for("the admin's allow", 5, |d| {
            ban_of(&d.bans(), "192.0.2.4").is_none()
        });
    }
    for _ in 0..4 {
        assert!(
            attempt_from(&nodes[2].pair, "192.0.2.4"),
            "C still refuses an allowed address"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ban_of(&nodes[2].daemon.bans(), "192.0.2.4").is_none(),
        "C banned it again"
    );
    // 5. The stream trimmed past what B applied while it was away: B takes the
    // last-per-subject snapshot and still gets what is left.
    nodes[1].daemon.stop();
    let ok = publish_as(
        &broker,
        a_seed,
        &[
            (format!("{PREFIX}.ban.a.192-0-2-7_32"), "{}".to_string()),
            (format!("{PREFIX}.ban.a.2001-db8-77--_48"), "{}".to_string()),
        ],
    );
    assert_eq!(ok, vec![true, true]);
    // Only the newest message is left: B's next sequence is gone.
    purge_keeping_last(&broker, &admin_seed);
    nodes[1].daemon.restart();
    let b = wait_fleet_ban(&nodes[1], "2001:db8:77::/48", "a", 10);
    assert_eq!(b["reason"], "fleet");
    assert!(
        nodes[1].daemon.log().contains("trimmed past"),
        "B did not take the snapshot"
    );

    let status = fleet_cmd(&broker, &plain, &admin_seed, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("stream PORTCULLIS"),
        "{text}"
    );
    eprintln!("fleet e2e took {:?}", t_start.elapsed());
    drop(nats);
}

/// Publish `msgs` (subject, JSON) to JetStream with the nkey `seed`, from inside `ns`;
/// whether each was acknowledged by the stream.
fn publish_as(ns: &Netns, seed: &Path, msgs: &[(String, String)]) -> Vec<bool> {
    let seed = std::fs::read_to_string(seed)
        .expect("seed")
        .trim()
        .to_owned();
    let msgs = msgs.to_vec();
    ns.run_inside(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = async_nats::ConnectOptions::with_nkey(seed)
                .connect("nats://127.0.0.1:4222")
                .await
                .expect("connect");
            let js = async_nats::jetstream::new(client);
            let mut out = Vec::new();
            for (subject, body) in msgs {
                let ok = match js.publish(subject, body.into()).await {
                    Ok(ack) => tokio::time::timeout(Duration::from_secs(3), ack)
                        .await
                        .is_ok_and(|r| r.is_ok()),
                    Err(_) => false,
                };
                out.push(ok);
            }
            out
        })
    })
}

/// Purge the stream down to its last message, with the admin's seed (the stream is then
/// trimmed past every node's stored sequence but the newest).
fn purge_keeping_last(ns: &Netns, seed: &Path) {
    let seed = std::fs::read_to_string(seed)
        .expect("seed")
        .trim()
        .to_owned();
    ns.run_inside(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = async_nats::ConnectOptions::with_nkey(seed)
                .connect("nats://127.0.0.1:4222")
                .await
                .expect("connect");
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream("PORTCULLIS").await.expect("stream");
            stream.purge().keep(1).await.expect("purge");
        })
    });
}
