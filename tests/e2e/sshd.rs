//! A real OpenSSH sshd inside a namespace, logging through syslog(3) to a `/dev/log` that the
//! test captures (bind-mounted in the server's own mount namespace) and writes out as
//! `Mmm dd HH:MM:SS host sshd[pid]: msg` lines, the format of Debian's auth.log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::netns::{Netns, Pair, SERVER4, SERVER6};
use super::{require_root_and, run};

/// A running sshd with its captured log.
pub struct Sshd {
    child: Child,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// The auth.log the daemon under test reads.
    pub log: PathBuf,
    /// The private key whose public half is authorised for root.
    pub client_key: PathBuf,
    /// The directory holding its config, keys and log (kept for tests to inspect).
    #[allow(dead_code)]
    pub dir: PathBuf,
}

/// What the sshd tests stand on: a scratch directory, a server/attacker namespace pair and
/// a real sshd in the server namespace (its files under `tmp/sshd`). Fields drop in order:
/// sshd, then the namespaces, then the directory.
pub struct SshdLab {
    pub sshd: Sshd,
    pub pair: Pair,
    pub tmp: tempfile::TempDir,
}

impl SshdLab {
    /// The lab, or `None` after the loud skip (a failure under `CI=true`) when root, `ip`,
    /// `sshd` or one of `tools` is missing.
    pub fn start(tools: &[&str], use_pam: bool) -> Option<SshdLab> {
        let mut all = vec!["ip", "sshd"];
        all.extend_from_slice(tools);
        if !require_root_and(&all) {
            return None;
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let pair = Pair::new();
        let sshd = Sshd::start(&pair.server, &tmp.path().join("sshd"), use_pam);
        Some(SshdLab { sshd, pair, tmp })
    }
}

impl Sshd {
    /// Start sshd in `ns`, listening on 192.0.2.1:22 and [2001:db8::1]:22.
    pub fn start(ns: &Netns, dir: &Path, use_pam: bool) -> Sshd {
        Sshd::start_with(ns, dir, use_pam, "")
    }

    /// [`start`](Self::start) with `first` (whole `sshd_config` lines) ahead of the usual
    /// configuration: sshd takes the first value of a keyword, so `LogLevel VERBOSE` there
    /// wins.
    pub fn start_with(ns: &Netns, dir: &Path, use_pam: bool, first: &str) -> Sshd {
        fs::create_dir_all(dir).expect("dir");
        fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let hostkey = dir.join("hostkey");
        let client_key = dir.join("client_key");
        for k in [&hostkey, &client_key] {
            if !k.exists() {
                run(Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(k));
            }
        }
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        let cfg = dir.join("sshd_config");
        fs::write(
            &cfg,
            format!(
                "{first}Port 22\nListenAddress {SERVER4}\nListenAddress {SERVER6}\nHostKey {}\nPidFile {}\n\
                 PermitRootLogin yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 UsePAM {}\nAuthorizedKeysFile {}\nStrictModes no\nSyslogFacility AUTH\nLogLevel INFO\n\
                 MaxAuthTries 6\nMaxStartups 200:30:400\nLoginGraceTime 20\nUseDNS no\n",
                hostkey.display(),
                dir.join("sshd.pid").display(),
                if use_pam { "yes" } else { "no" },
                dir.join("authorized_keys").display()
            ),
        )
        .expect("sshd_config");

        // The datagram socket that stands in for syslogd.
        let sock_path = dir.join("devlog.sock");
        let _ = fs::remove_file(&sock_path);
        let sock = UnixDatagram::bind(&sock_path).expect("bind devlog");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let log = dir.join("auth.log");
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let log = log.clone();
            std::thread::spawn(move || capture_syslog(sock, &log, &stop))
        };
        if !Path::new("/dev/log").exists() {
            // An empty file to bind-mount over; only ever mounted inside the test's namespace.
            let _ = fs::File::create("/dev/log");
        }
        // sshd also records logins in wtmp/btmp/lastlog: give it the test's own files (bound
        // over the host's inside this mount namespace only), so the host's stay untouched and
        // tests can read what this sshd recorded.
        let mut binds = String::new();
        for f in ["wtmp", "btmp", "lastlog"] {
            let host = format!("/var/log/{f}");
            if Path::new(&host).exists() {
                let mine = dir.join(f);
                fs::write(&mine, b"").expect("login record file");
                binds += &format!("mount --bind {} {host} && ", mine.display());
            }
        }
        let script = format!(
            "{binds}mount --bind {} /dev/log && exec /usr/sbin/sshd -D -f {}",
            sock_path.display(),
            cfg.display()
        );
        let child = ns
            .command("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sshd");
        let sshd = Sshd {
            child,
            stop,
            reader: Some(reader),
            log,
            client_key,
            dir: dir.to_path_buf(),
        };
        // Wait for the listener.
        for _ in 0..100 {
            if ns.exec_succeeds(&["sh", "-c", &format!("ss -ltn | grep -q '{SERVER4}:22'")]) {
                return sshd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not start listening");
    }

    /// Everything sshd logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An `ssh` client in `ns` that logs in with the key authorised for root, never prompts
    /// and checks no host key; the caller adds `root@ADDR` and the remote command.
    pub fn key_client(&self, ns: &Netns) -> Command {
        let mut c = ns.command("ssh");
        c.arg("-i").arg(&self.client_key);
        for opt in [
            "IdentitiesOnly=yes",
            "PreferredAuthentications=publickey",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "ConnectTimeout=5",
            "LogLevel=ERROR",
        ] {
            c.args(["-o", opt]);
        }
        c
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Turn `<PRI>Mmm dd HH:MM:SS ident[pid]: msg` datagrams into auth.log lines.
fn capture_syslog(sock: UnixDatagram, log: &Path, stop: &AtomicBool) {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("auth.log");
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let msg = String::from_utf8_lossy(&buf[..n]);
        let msg = msg.trim_end_matches(['\n', '\0']);
        let body = match msg.find('>') {
            Some(i) if msg.starts_with('<') => &msg[i + 1..],
            _ => msg,
        };
        // body = "Nov 25 08:07:24 sshd[123]: text"; the 15-char stamp, then the tag.
        let line = if body.len() > 16 && body.as_bytes()[15] == b' ' {
            format!("{} srv {}\n", &body[..15], &body[16..])
        } else {
            format!("{body}\n")
        };
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// One password login attempt with sshpass+ssh from `ns` to `addr`; returns whether the TCP
/// connection was accepted (ssh exit 255 with "Connection refused/timed out" means it was not).
pub fn password_attempt(ns: &Netns, addr: &str, user: &str, password: &str) -> bool {
    password_attempt_from(ns, None, addr, user, password)
}

/// [`password_attempt`] from the source address `bind` of `ns` (ssh's `BindAddress`).
pub fn password_attempt_from(
    ns: &Netns,
    bind: Option<&str>,
    addr: &str,
    user: &str,
    password: &str,
) -> bool {
    let mut cmd = ns.command("sshpass");
    cmd.args(["-p", password, "ssh"]);
    if let Some(bind) = bind {
        cmd.args(["-o", &format!("BindAddress={bind}")]);
    }
    let out = cmd
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@{addr}"))
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .expect("spawn ssh");
    let err = String::from_utf8_lossy(&out.stderr);
    !(err.contains("Connection refused")
        || err.contains("timed out")
        || err.contains("No route")
        || err.contains("Connection reset"))
}
