//! systemd integration of `portcullis run` (issue 3, item 8), without systemd: the real binary
//! runs in its own network namespace (real nftables) with `NOTIFY_SOCKET` pointing at a Unix
//! datagram socket the test binds, as systemd's manager would. Checked: READY=1 only once the
//! control socket answers and the firewall table exists, WATCHDOG=1 at WATCHDOG_USEC/2 (and
//! none without it), SIGHUP reloads the configuration (a broken one is refused and the old
//! one keeps running, bans kept), SIGTERM sends STOPPING=1 and exits 0. The unit file in
//! packaging/ is checked with `systemd-analyze verify` and against the configuration defaults.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::daemon::bin;
use crate::e2e::netns::Netns;
use crate::e2e::{require, require_root_and, which};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/portcullis.service");

/// The daemon as a notify-type service, plus the manager's side of `NOTIFY_SOCKET`.
struct NotifiedDaemon {
    child: Option<Child>,
    notify: UnixDatagram,
    dir: PathBuf,
    socket: PathBuf,
    config: PathBuf,
}

impl NotifiedDaemon {
    fn start(ns: &Netns, dir: &Path, jails: &str, watchdog_usec: Option<u64>) -> NotifiedDaemon {
        let notify_path = dir.join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
        let socket = dir.join("ctl.sock");
        let config = dir.join("portcullis.toml");
        let mut d = NotifiedDaemon {
            child: None,
            notify,
            dir: dir.to_path_buf(),
            socket,
            config,
        };
        d.write_config(jails);
        let log = std::fs::File::create(dir.join("daemon.log")).expect("daemon.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(bin())
            .args(["run", "--config"])
            .arg(&d.config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("WATCHDOG_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(us) = watchdog_usec {
            cmd.env("WATCHDOG_USEC", us.to_string());
        }
        d.child = Some(cmd.spawn().expect("spawn daemon"));
        d
    }

    fn write_config(&self, jails: &str) {
        let text = format!(
            "[daemon]\nstate_dir = \"{}\"\nsocket = \"{}\"\nlog_level = \"debug\"\n\
             [firewall]\nbackend = \"nft\"\n{jails}",
            self.dir.join("state").display(),
            self.socket.display()
        );
        std::fs::write(&self.config, text).expect("config");
    }

    /// The next notification within `secs`, or `None`.
    fn recv(&self, secs: f64) -> Option<String> {
        self.notify
            .set_read_timeout(Some(Duration::from_secs_f64(secs)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        match self.notify.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Notifications until one contains `what` (returned with everything before it).
    fn wait_for(&self, what: &str, secs: u64) -> Vec<String> {
        let t0 = Instant::now();
        let mut seen = Vec::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            if let Some(m) = self.recv(0.2) {
                let hit = m.lines().any(|l| l == what);
                seen.push(m);
                if hit {
                    return seen;
                }
            }
            self.assert_running();
        }
        panic!("no {what} within {secs}s (got {seen:?})\n{}", self.log());
    }

    fn assert_running(&self) {
        if let Some(pid) = self.child.as_ref().map(Child::id) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = !stat.is_empty() && !stat.contains(") Z ");
            assert!(alive, "the daemon died:\n{}", self.log());
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .expect("ctl")
    }

    fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    fn jail_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.status()["jails"]
            .as_array()
            .expect("jails")
            .iter()
            .map(|j| j["name"].as_str().expect("name").to_string())
            .collect();
        names.sort();
        names
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for NotifiedDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn file_jail(name: &str, log: &Path) -> String {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    format!(
        "[jail.{name}]\nfilter = \"sshd\"\nsources = [{{ file = \"{}\" }}]\nmaxretry = 3\n",
        log.display()
    )
}

#[test]
fn r3_systemd_ready_watchdog_reload_on_sighup_stopping_on_sigterm() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("sd");
    let one = file_jail("sshd", &tmp.path().join("auth.log"));
    // Watchdog every 2 s: the daemon must ping every second.
    let d = NotifiedDaemon::start(&ns, tmp.path(), &one, Some(2_000_000));

    // READY=1 comes first, and only when the daemon is usable: socket answering at once,
    // the kernel table in place.
    let first = d.wait_for("READY=1", 30);
    assert!(
        first.iter().all(|m| !m.contains("WATCHDOG=1")),
        "watchdog before readiness: {first:?}"
    );
    assert!(
        d.socket.exists(),
        "READY=1 before the control socket exists"
    );
    let out = d.ctl(&["status"]);
    assert!(
        out.status.success(),
        "READY=1 but status fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        ns.exec_succeeds(&["nft", "list", "table", "inet", "portcullis"]),
        "READY=1 before the firewall table exists"
    );

    // WATCHDOG=1 at half the interval: at least 3 in 4 s.
    let t0 = Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_secs(4) {
        if let Some(m) = d.recv(0.5) {
            pings += m.lines().filter(|l| *l == "WATCHDOG=1").count();
        }
    }
    assert!(
        pings >= 3,
        "only {pings} WATCHDOG=1 in 4 s with WATCHDOG_USEC=2s"
    );

    // A ban made before the reload must survive it.
    let out = d.ctl(&["ban", "192.0.2.77", "--for", "1h"]);
    assert!(
        out.status.success(),
        "ban: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.jail_names(), ["sshd"]);

    // SIGHUP = reload: a second jail appears.
    let two = format!(
        "{one}{}",
        file_jail("sshd-extra", &tmp.path().join("other.log"))
    );
    d.write_config(&two);
    d.signal("-HUP");
    let t0 = Instant::now();
    while d.jail_names().len() != 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.jail_names(), ["sshd", "sshd-extra"]);
    let bans = d.ctl(&["bans", "--json"]);
    assert!(
        String::from_utf8_lossy(&bans.stdout).contains("192.0.2.77"),
        "ban lost by the reload"
    );
    let set = ns.exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
    assert!(
        set.contains("192.0.2.77"),
        "ban gone from the kernel after the reload:\n{set}"
    );

    // SIGHUP with a broken configuration: refused, the running one stays.
    std::fs::write(&d.config, "[daemon\nthis is not toml").expect("broken config");
    d.signal("-HUP");
    let t0 = Instant::now();
    while !d.log().contains("reload failed") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no reload failure logged:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.jail_names(),
        ["sshd", "sshd-extra"],
        "a broken config replaced the running one"
    );

    // SIGTERM: STOPPING=1, then a clean exit (status 0), socket removed.
    d.signal("-TERM");
    d.wait_for("STOPPING=1", 10);
    let mut d = d;
    let mut child = d.child.take().expect("child");
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        d.log()
    );
    assert!(!d.socket.exists(), "control socket left behind");
    // The bans stay in the kernel across a stop (flush_on_stop defaults to false).
    let set = ns.exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
    assert!(set.contains("192.0.2.77"), "{set}");
}

#[test]
fn r3_systemd_no_watchdog_pings_without_watchdog_usec() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("sdnw");
    let jail = file_jail("sshd", &tmp.path().join("auth.log"));
    let d = NotifiedDaemon::start(&ns, tmp.path(), &jail, None);
    d.wait_for("READY=1", 30);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Some(m) = d.recv(0.5) {
            assert!(
                !m.contains("WATCHDOG=1"),
                "WATCHDOG=1 without WATCHDOG_USEC: {m}"
            );
        }
    }
    d.assert_running();
}

/// `systemd-analyze verify` accepts the shipped unit (with ExecStart pointed at the binary
/// under test, since verify checks that it exists), and the unit's directories are the ones
/// the daemon uses by default.
#[test]
fn r3_systemd_unit_file_verifies_and_matches_the_defaults() {
    let unit = std::fs::read_to_string(UNIT).expect("packaging/portcullis.service");
    let value = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(value("Type"), ["notify"]);
    assert_eq!(value("ExecStart"), ["/usr/sbin/portcullis run"]);
    let config = portcullis_config::Config::load(None, None).expect("embedded default config");
    let state = Path::new("/var/lib").join(value("StateDirectory").concat());
    assert_eq!(
        config.daemon.state_dir, state,
        "StateDirectory is not the default state_dir"
    );
    let runtime = Path::new("/run").join(value("RuntimeDirectory").concat());
    assert_eq!(
        config.daemon.socket.parent(),
        Some(runtime.as_path()),
        "RuntimeDirectory does not hold the default socket"
    );
    let writable = value("ReadWritePaths").join(" ");
    for dir in [&state, &runtime] {
        assert!(
            writable
                .split_whitespace()
                .any(|w| Path::new(w) == dir.as_path()),
            "{} not in ReadWritePaths",
            dir.display()
        );
    }

    let Some(analyze) = which("systemd-analyze") else {
        require("needs `systemd-analyze` (package systemd)", false);
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let copy = tmp.path().join("portcullis.service");
    let exe = bin();
    std::fs::write(
        &copy,
        unit.replace("/usr/sbin/portcullis", &exe.display().to_string()),
    )
    .expect("copy");
    let out = Command::new(&analyze)
        .arg("verify")
        // Documentation= names the man pages the .deb installs, not installed here.
        .arg("--man=no")
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}
