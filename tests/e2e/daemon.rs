//! The portcullis daemon under test, run inside the server namespace (so its firewall is that
//! namespace's), with its state, socket and config in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::netns::Netns;

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// A running `portcullis run`.
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    ns_name: String,
    /// What follows `portcullis run` (the configuration flags).
    run_args: Vec<std::ffi::OsString>,
}

impl Daemon {
    /// Write `config_body` (jails etc.; the [daemon] paths are added) and start the daemon in
    /// `ns`.
    pub fn start(ns: &Netns, dir: &Path, config_body: &str) -> Daemon {
        std::fs::create_dir_all(dir).expect("dir");
        let socket = dir.join("ctl.sock");
        let config = dir.join("portcullis.toml");
        let text = format!(
            "[daemon]\nstate_dir = \"{}\"\nsocket = \"{}\"\nlog_level = \"debug\"\n{config_body}",
            dir.join("state").display(),
            socket.display()
        );
        std::fs::write(&config, text).expect("config");
        let run_args = vec!["--config".into(), config.clone().into_os_string()];
        let mut d = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            socket,
            config,
            ns_name: ns.name.clone(),
            run_args,
        };
        d.spawn();
        d
    }

    /// Start `portcullis run --fail2ban-config FAIL2BAN_DIR` in `ns`, with its state and
    /// socket in `dir` (given as flags: a Fail2Ban configuration has no [daemon] table).
    pub fn start_fail2ban(ns: &Netns, dir: &Path, fail2ban_dir: &Path) -> Daemon {
        std::fs::create_dir_all(dir).expect("dir");
        let socket = dir.join("ctl.sock");
        let run_args = vec![
            "--fail2ban-config".into(),
            fail2ban_dir.as_os_str().to_owned(),
            "--state-dir".into(),
            dir.join("state").into_os_string(),
            "--socket".into(),
            socket.clone().into_os_string(),
        ];
        let mut d = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            socket,
            config: fail2ban_dir.to_path_buf(),
            ns_name: ns.name.clone(),
            run_args,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .expect("daemon.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns_name])
            .arg(bin())
            .arg("run")
            .args(&self.run_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if self.ctl(&["status"]).status.success() {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("daemon exited at start ({st}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not answer on its socket:\n{}", self.log());
    }

    /// Restart after [`kill9`](Self::kill9) or [`stop`](Self::stop).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// The daemon's process id (of `ip netns exec`, which execs the daemon).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, and how long the daemon took to exit; `None` (and SIGKILL) when it did not
    /// exit within `limit`.
    pub fn stop_within(&mut self, limit: Duration) -> Option<Duration> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Run a control command (`status`, `bans --json`, …) against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .expect("run portcullis")
    }

    /// `bans --json` parsed.
    pub fn bans(&self) -> Vec<serde_json::Value> {
        let out = self.ctl(&["bans", "--json"]);
        assert!(
            out.status.success(),
            "bans failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bans json");
        v["bans"].as_array().cloned().unwrap_or_default()
    }

    /// `status --json` parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    /// The daemon's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Wait until `cond` holds (polling), or panic with `what` and the daemon log.
    pub fn wait_for(&self, what: &str, secs: u64, mut cond: impl FnMut(&Daemon) -> bool) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}\n--- daemon log ---\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
