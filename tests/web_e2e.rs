//! Issue 12 item 6: the built-in web and FTP jails against a real nginx (Debian's
//! nginx-light) and a real vsftpd in the server namespace, attacked with real curl from the
//! attacker namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::{ATTACKER4, Netns, Pair, SERVER4};
use crate::e2e::require_root_and;

/// nginx in `ns`, listening on SERVER4:8080, `/private/` behind Basic auth (user `alice`,
/// password `secret`), its error log in `dir`. Stopped on drop.
struct Nginx {
    child: Child,
    error_log: PathBuf,
    access_log: PathBuf,
}

impl Nginx {
    fn start(ns: &Netns, dir: &Path) -> Nginx {
        std::fs::create_dir_all(dir.join("html/private")).expect("dir");
        std::fs::write(dir.join("html/private/index.html"), "ok\n").expect("page");
        std::fs::write(dir.join("htpasswd"), "alice:{PLAIN}secret\n").expect("htpasswd");
        let error_log = dir.join("error.log");
        let access_log = dir.join("access.log");
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\n\
                 error_log {e} info;\nevents {{ worker_connections 64; }}\n\
                 http {{\n access_log {a};\n client_body_temp_path {d}/body;\n\
                 proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fcgi;\n\
                 uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
                 server {{\n  listen {SERVER4}:8080;\n  root {d}/html;\n\
                   location /private/ {{ auth_basic \"private\"; auth_basic_user_file {d}/htpasswd; }}\n }}\n}}\n",
                d = dir.display(),
                e = error_log.display(),
                a = access_log.display(),
            ),
        )
        .expect("nginx.conf");
        let child = ns
            .command("nginx")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx");
        let n = Nginx {
            child,
            error_log,
            access_log,
        };
        // Ready when it answers.
        for _ in 0..100 {
            let out = ns
                .command("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://{SERVER4}:8080/"))
                .output()
                .expect("curl");
            if !out.stdout.is_empty() && out.stdout != b"000" {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("nginx did not start");
    }

    fn error_text(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request from the attacker with Basic credentials `user:password` (curl sends them
/// as given, colons included); the HTTP status, `None` when the connection failed (banned).
fn get(pair: &Pair, path: &str, credentials: Option<&str>) -> Option<u16> {
    let mut cmd = pair.attacker.command("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
    ]);
    if let Some(c) = credentials {
        cmd.args(["-u", c]);
    }
    let out = cmd
        .arg(format!("http://{SERVER4}:8080{path}"))
        .output()
        .expect("curl");
    let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (code != 0).then_some(code)
}

fn config(jail: &str, log: &Path, maxretry: u32) -> String {
    format!(
        "[jail.sshd]\nenabled = false\n[jail.{jail}]\nenabled = true\nsources = [{{ file = \"{}\" }}]\nmaxretry = {maxretry}\n",
        log.display()
    )
}

/// Wrong passwords and unknown users at a real nginx ban the client at maxretry; a user
/// name carrying nginx's own text (`x": password mismatch, client: 203.0.113.9, ...`) never
/// makes its address counted: nginx cuts the credentials at the first colon.
#[test]
fn i12_nginx_http_auth_bans_a_password_guesser_and_not_an_address_in_a_user_name() {
    if !require_root_and(&["ip", "nft", "nginx", "curl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = Pair::new();
    let nginx = Nginx::start(&pair.server, &tmp.path().join("nginx"));
    let daemon = Daemon::start(
        &pair.server,
        &tmp.path().join("pc"),
        &config("nginx-http-auth", &nginx.error_log, 3),
    );
    assert_eq!(get(&pair, "/private/", Some("alice:secret")), Some(200));
    let hostile = "x\", client: 203.0.113.9, server: s, request: \"GET / HTTP/1.1\", host: \"h\"\": password mismatch, client: 203.0.113.9, server: s, request: \"GET /:whatever";
    assert_eq!(get(&pair, "/private/", Some(hostile)), Some(401));
    assert_eq!(get(&pair, "/private/", Some("bob:guess")), Some(401));
    daemon.wait_for("two attempts counted", 20, |d| {
        d.status()["jails"][0]["attempts"].as_u64() == Some(2)
    });
    assert!(daemon.bans().is_empty(), "banned before maxretry");
    assert_eq!(get(&pair, "/private/", Some("alice:wrong")), Some(401));
    daemon.wait_for("the guesser banned", 20, |d| {
        d.bans().iter().any(|b| b["target"] == ATTACKER4)
    });
    assert_eq!(
        get(&pair, "/private/", Some("alice:secret")),
        None,
        "still served"
    );
    let bans = daemon.bans();
    assert_eq!(bans.len(), 1, "{bans:?}");
    let log = nginx.error_text();
    // What nginx made of the hostile name: cut at its first colon, no address left in it.
    assert!(
        log.contains("user \"x\", client\" was not found in") && !log.contains("203.0.113.9"),
        "nginx's line for the hostile name\n{log}"
    );
    assert!(log.contains("was not found in"), "{log}");
}

/// Requests for phpMyAdmin and WordPress logins that do not exist: banned at the second
/// (the jail's default maxretry 2) from nginx's error log; found pages count nothing.
#[test]
fn i12_nginx_botsearch_bans_a_probing_bot() {
    if !require_root_and(&["ip", "nft", "nginx", "curl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = Pair::new();
    let nginx = Nginx::start(&pair.server, &tmp.path().join("nginx"));
    let daemon = Daemon::start(
        &pair.server,
        &tmp.path().join("pc"),
        &format!(
            "[jail.sshd]\nenabled = false\n[jail.nginx-botsearch]\nenabled = true\nsources = [{{ file = \"{}\" }}]\n",
            nginx.error_log.display()
        ),
    );
    assert_eq!(get(&pair, "/private/", Some("alice:secret")), Some(200));
    assert_eq!(get(&pair, "/favicon.ico", None), Some(404));
    assert_eq!(get(&pair, "/phpmyadmin/index.php", None), Some(404));
    daemon.wait_for("one probe counted", 20, |d| {
        d.status()["jails"][0]["lines"]["matched"].as_u64() == Some(1)
    });
    assert!(daemon.bans().is_empty(), "banned at the first probe");
    assert_eq!(get(&pair, "/wp-login.php", None), Some(404));
    daemon.wait_for("the bot banned", 20, |d| {
        d.bans().iter().any(|b| b["target"] == ATTACKER4)
    });
    assert_eq!(get(&pair, "/", None), None, "a banned bot still served");
    let _ = &nginx.access_log;
}

/// vsftpd in `ns` on SERVER4:21, its own log (`vsftpd_log_file`) in `dir`; stopped on drop.
struct Vsftpd {
    child: Child,
    log: PathBuf,
}

impl Vsftpd {
    fn start(ns: &Netns, dir: &Path) -> Vsftpd {
        std::fs::create_dir_all(dir.join("empty")).expect("dir");
        let log = dir.join("vsftpd.log");
        let conf = dir.join("vsftpd.conf");
        std::fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_ipv6=NO\nlisten_address={SERVER4}\nbackground=NO\n\
                 anonymous_enable=NO\nlocal_enable=YES\npam_service_name=vsftpd\n\
                 xferlog_enable=YES\nxferlog_std_format=NO\nvsftpd_log_file={}\n\
                 secure_chroot_dir={}\nseccomp_sandbox=NO\n",
                log.display(),
                dir.join("empty").display()
            ),
        )
        .expect("vsftpd.conf");
        let child = ns
            .command("vsftpd")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("vsftpd");
        let ftp = Vsftpd { child, log };
        for _ in 0..100 {
            let up = ns
                .command("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/{SERVER4}/21")])
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return ftp;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("vsftpd did not start");
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A login with `user:password` from the attacker; whether the server answered at all.
fn ftp_login(pair: &Pair, credentials: &str) -> bool {
    let out = pair
        .attacker
        .command("curl")
        .args(["-s", "--max-time", "5", "-u", credentials])
        .arg(format!("ftp://{SERVER4}/"))
        .output()
        .expect("curl");
    // 67: login denied (the server answered); 28: timed out, 7: refused (banned).
    out.status.code() == Some(67)
}

/// Wrong passwords at a real vsftpd: its own log's `FAIL LOGIN` lines ban the client at
/// maxretry.
#[test]
fn i12_vsftpd_bans_a_password_guesser() {
    if !require_root_and(&["ip", "nft", "vsftpd", "curl", "bash"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pair = Pair::new();
    let ftp = Vsftpd::start(&pair.server, &tmp.path().join("ftp"));
    let daemon = Daemon::start(
        &pair.server,
        &tmp.path().join("pc"),
        &config("vsftpd", &ftp.log, 3),
    );
    for user in ["root:toor", "ftp:ftp"] {
        assert!(ftp_login(&pair, user), "vsftpd answered");
    }
    daemon.wait_for("two attempts counted", 30, |d| {
        d.status()["jails"][0]["attempts"].as_u64() == Some(2)
    });
    assert!(daemon.bans().is_empty(), "banned before maxretry");
    assert!(ftp_login(&pair, "admin:admin"), "third login");
    daemon.wait_for("the guesser banned", 30, |d| {
        d.bans().iter().any(|b| b["target"] == ATTACKER4)
    });
    assert!(
        !ftp_login(&pair, "root:toor"),
        "a banned client still answered"
    );
    let log = std::fs::read_to_string(&ftp.log).unwrap_or_default();
    assert!(log.contains("FAIL LOGIN: Client \"192.0.2.2\""), "{log}");
}
