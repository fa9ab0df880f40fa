//! `portcullis audit` (issue 15.5) end to end: the real sshd binary judging the test's own
//! configs (`sshd -T -f`, host keys made by the test), a real sshd with a real key login of
//! root, a real daemon protecting it in a network namespace, a real-format passwd/shadow
//! tree, and real accounts made with useradd (removed by a guard, also when a test fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use portcullis_host::utmp::{UtmpKind, UtmpRecord, encode_record};
use serde_json::Value;

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::{ATTACKER4, SERVER4};
use crate::e2e::sshd::SshdLab;
use crate::e2e::{require_root_and, run};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// `portcullis audit --json ARGS`: (exit code, document).
fn audit(args: &[&str]) -> (i32, Value) {
    audit_with(Command::new(bin()), args)
}

/// The same through `cmd` (the binary, or `ip netns exec NS` the binary).
fn audit_with(mut cmd: Command, args: &[&str]) -> (i32, Value) {
    let out: Output = cmd
        .arg("audit")
        .arg("--json")
        .args(args)
        .output()
        .expect("run audit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "audit printed no JSON ({e}):\n{stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), doc)
}

fn findings<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn one<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    let f = findings(doc, kind);
    assert_eq!(f.len(), 1, "one {kind} expected in {doc:#}");
    f[0]
}

fn kinds(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A host key and configs for `sshd -T -f`, in `dir`.
struct Configs {
    dir: PathBuf,
    hostkey: PathBuf,
}

impl Configs {
    fn new(dir: &Path) -> Configs {
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let hostkey = dir.join("hostkey");
        if !hostkey.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&hostkey));
        }
        Configs {
            dir: dir.to_path_buf(),
            hostkey,
        }
    }

    /// `name` with a HostKey line and `body`.
    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, format!("HostKey {}\n{body}", self.hostkey.display())).expect("config");
        p
    }
}

const HASH: &str = "$y$j9T$pcaudSALTsalt0123456$WnYz7y1Cq0pcaudFAKEhashBUTrealFORMATxyz12";

/// A real-format passwd/shadow tree under `root`: root (a password, home /root), pcaudalice
/// (a password, no key), pcaudlocked (`!` hash), pcaudsvc (nologin), pcaudold (expired).
fn account_tree(root: &Path) {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\n\
         daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         pcaudalice:x:1000:1000:Alice,,,:/home/pcaudalice:/bin/bash\n\
         pcaudlocked:x:1001:1001::/home/pcaudlocked:/bin/bash\n\
         pcaudsvc:x:1002:1002::/home/pcaudsvc:/usr/sbin/nologin\n\
         pcaudold:x:1003:1003::/home/pcaudold:/bin/bash\n",
    )
    .expect("passwd");
    std::fs::write(
        etc.join("shadow"),
        format!(
            "root:{HASH}:20000:0:99999:7:::\n\
             daemon:*:20000:0:99999:7:::\n\
             pcaudalice:{HASH}:20000:0:99999:7:::\n\
             pcaudlocked:!{HASH}:20000:0:99999:7:::\n\
             pcaudsvc:{HASH}:20000:0:99999:7:::\n\
             pcaudold:{HASH}:20000:0:99999:7::20001:\n"
        ),
    )
    .expect("shadow");
    for d in ["root/.ssh", "home/pcaudalice", "home/pcaudold"] {
        std::fs::create_dir_all(root.join(d)).expect("home");
    }
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// The door wide open and the way to close it: a real sshd with `PermitRootLogin yes` and
/// passwords, root logged in with a key (so the log has "Accepted publickey for root"), a
/// real daemon protecting it; then a hardened config, judged with the same daemon.
#[test]
fn a1_password_root_with_a_used_key_is_safe_to_close_and_the_hardened_config_passes() {
    let Some(SshdLab { sshd, pair, tmp }) = SshdLab::start(&["ssh", "nft", "ssh-keygen"], false)
    else {
        return;
    };
    run(sshd
        .key_client(&pair.attacker)
        .args([&format!("root@{SERVER4}"), "true"]));
    wait_until("root's key login in the log", 10, || {
        sshd.log_text()
            .contains(&format!("Accepted publickey for root from {ATTACKER4}"))
    });
    let jail = format!(
        "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nmaxretry = 3\n",
        sshd.log.display()
    );
    let daemon = Daemon::start(&pair.server, &tmp.path().join("pc"), &jail);
    daemon.wait_for("the daemon's status", 20, |d| {
        d.ctl(&["status", "--json"]).status.success()
    });
    let tree = tmp.path().join("tree");
    account_tree(&tree);
    let prefix = format!("ip netns exec {}", pair.server.name);
    let common = |config: &Path| -> Vec<String> {
        [
            "--sshd-config",
            &config.display().to_string(),
            "--passwd",
            &tree.join("etc/passwd").display().to_string(),
            "--shadow",
            &tree.join("etc/shadow").display().to_string(),
            "--logs",
            &sshd.log.display().to_string(),
            "--socket",
            &daemon.socket.display().to_string(),
            "--config",
            &daemon.config.display().to_string(),
            "--firewall-prefix",
            &prefix,
            "--now",
            "2024-11-01T00:00:00Z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = common(&sshd.dir.join("sshd_config"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, doc) = audit(&argv);
    assert_eq!(code, 1, "critical findings exit 1: {doc:#}");

    let root = one(&doc, "root_password_login");
    assert_eq!(root["severity"], "critical");
    assert_eq!(root["fix"][0], "PermitRootLogin prohibit-password");
    let wh = text(&root["fix_where"]);
    assert!(
        wh.contains("sshd_config:") && wh.contains("`permitrootlogin yes`"),
        "the line that sets it now: {wh}"
    );
    let safe = &root["safe_now"];
    assert_eq!(safe["verdict"], "yes", "{safe:#}");
    let why = text(&safe["why"]);
    assert!(
        why.contains("was used to log in on") && why.contains(ATTACKER4),
        "the key login that proves the key works: {why}"
    );

    // pcaudalice has a password; the lab's AuthorizedKeysFile is one absolute file for every
    // user, so sshd would take root's key for her too, but no key login of hers was seen:
    // check first.
    let pw = one(&doc, "password_login");
    assert_eq!(pw["severity"], "high");
    assert_eq!(pw["fix"][0], "PasswordAuthentication no");
    assert_eq!(pw["safe_now"]["verdict"], "check", "{pw:#}");
    let why = text(&pw["safe_now"]["why"]);
    assert!(
        why.contains(&format!(
            "pcaudalice has {} (1 key) but the logs read show no key login of pcaudalice",
            sshd.dir.join("authorized_keys").display()
        )),
        "{why}"
    );
    for not in ["pcaudlocked", "pcaudsvc", "pcaudold", "daemon"] {
        assert!(
            !text(&pw["title"]).contains(not),
            "{not} cannot log in: {pw:#}"
        );
    }
    // The lab's sshd limits and portcullis itself: the daemon runs, has the sshd jail, and
    // its table is in the namespace's kernel.
    assert_eq!(one(&doc, "max_startups")["severity"], "low");
    assert_eq!(
        doc["facts"]["portcullis"]["daemon"]["state"], "running",
        "{doc:#}"
    );
    assert_eq!(doc["facts"]["portcullis"]["firewall"]["state"], "present");
    assert!(
        !kinds(&doc).iter().any(|k| k.starts_with("portcullis")),
        "{:?}",
        kinds(&doc)
    );

    // Run inside the server's namespace, audit sees the lab's sshd listening.
    let (_, inside) = audit_with(
        pair.server.command(bin().to_str().expect("utf-8 path")),
        &argv,
    );
    let l = one(&inside, "listening");
    assert!(
        text(&l["why"]).contains(&format!("listening now: {SERVER4}:22")),
        "{l:#}"
    );

    // Hardened: root by key only, no passwords. Nothing critical or high: exit 0.
    let configs = Configs::new(&tmp.path().join("configs"));
    let hardened = configs.write(
        "hardened",
        &format!(
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAuthorizedKeysFile {}\n",
            sshd.dir.join("authorized_keys").display()
        ),
    );
    let args = common(&hardened);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, doc) = audit(&argv);
    assert_eq!(code, 0, "{doc:#}");
    for k in [
        "root_password_login",
        "password_login",
        "root_login_permitted",
    ] {
        assert!(findings(&doc, k).is_empty(), "{k} in {doc:#}");
    }

    // The daemon stopped: audit says portcullis is not protecting sshd (exit 1).
    drop(daemon);
    let (code, doc) = audit(&argv);
    assert_eq!(code, 1);
    assert_eq!(one(&doc, "portcullis_not_running")["severity"], "high");
}

/// Configs judged without a running sshd: root without any key (not safe yet), a Match block
/// opening passwords to a network (high outside the allowlist, low inside), a drop-in that
/// sets a keyword before the main file (the fix names the drop-in's line), and sshd refusing
/// a config.
#[test]
fn a2_match_blocks_missing_keys_and_first_value_wins() {
    if !require_root_and(&["sshd", "ssh-keygen"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let tree = tmp.path().join("tree");
    account_tree(&tree);
    let configs = Configs::new(&tmp.path().join("configs"));
    let root_arg = tree.display().to_string();
    let sock = tmp.path().join("none.sock").display().to_string();
    let base = |config: &Path| -> Vec<String> {
        [
            "--root",
            &root_arg,
            "--sshd-config",
            &config.display().to_string(),
            "--socket",
            &sock,
            "--now",
            "2024-11-01T00:00:00Z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let go = |args: Vec<String>| {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        audit(&argv)
    };

    // Password root, and root has no key at all: not safe yet (wtmp shows how root got in:
    // a remote login, method unrecorded, so by password).
    std::fs::create_dir_all(tree.join("var/log")).expect("log dir");
    let login = UtmpRecord::new(
        UtmpKind::UserProcess,
        4242,
        "pts/0",
        "root",
        "198.51.100.3",
        portcullis_core::Time::from_secs(1_727_000_000),
    );
    std::fs::write(tree.join("var/log/wtmp"), encode_record(&login)).expect("wtmp");
    let open = configs.write("open", "PermitRootLogin yes\nPasswordAuthentication yes\n");
    let (code, doc) = go(base(&open));
    assert_eq!(code, 1);
    let root = one(&doc, "root_password_login");
    assert_eq!(root["safe_now"]["verdict"], "no", "{root:#}");
    let why = text(&root["safe_now"]["why"]);
    assert!(why.contains("no key for root: add one first"), "{root:#}");
    assert!(
        why.contains("wtmp: root last logged in on 2024-09-22") && why.contains("198.51.100.3"),
        "{root:#}"
    );
    // A key appears (never seen used in any log): check first.
    std::fs::write(
        tree.join("root/.ssh/authorized_keys"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPcaudTestKeyOnlyForAuditXXXXXXXXXXXXXXXXXX t\n",
    )
    .expect("key");
    let (_, doc) = go(base(&open));
    assert_eq!(
        one(&doc, "root_password_login")["safe_now"]["verdict"],
        "check"
    );
    // The log shows the key used: yes.
    std::fs::create_dir_all(tree.join("var/log")).expect("log dir");
    std::fs::write(
        tree.join("var/log/auth.log"),
        "Sep 30 10:00:00 h sshd[42]: Accepted publickey for root from 192.0.2.10 port 50022 \
         ssh2: ED25519 SHA256:pcaudTESTfingerprint\n",
    )
    .expect("auth.log");
    let (_, doc) = go(base(&open));
    let safe = &one(&doc, "root_password_login")["safe_now"];
    assert_eq!(safe["verdict"], "yes", "{safe:#}");
    assert!(text(&safe["why"]).contains("192.0.2.10"), "{safe:#}");
    assert!(text(&safe["why"]).contains("/var/log/auth.log"), "{safe:#}");

    // A Match block opens passwords for 198.51.100.0/24 only.
    let matched = configs.write(
        "match",
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         Match Address 198.51.100.0/24\n    PasswordAuthentication yes\n",
    );
    let (code, doc) = go(base(&matched));
    assert_eq!(code, 1);
    assert!(findings(&doc, "password_login").is_empty(), "{doc:#}");
    let m = one(&doc, "match_allows_passwords");
    assert_eq!(m["severity"], "high");
    assert!(text(&m["title"]).contains("pcaudalice"), "{m:#}");
    assert!(
        !text(&m["title"]).contains("root"),
        "root is key-only there: {m:#}"
    );
    assert!(
        text(&m["fix_where"]).contains(&format!("{}:5", matched.display())),
        "the block's own line: {m:#}"
    );
    // A second port with passwords: anyone connecting to it (sshd -T -C needs lport).
    let port = configs.write(
        "port",
        "Port 22\nPort 2222\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nMatch LocalPort 2222\n    PasswordAuthentication yes\n",
    );
    let (_, doc) = go(base(&port));
    assert!(findings(&doc, "password_login").is_empty(), "{doc:#}");
    assert!(
        doc["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .all(|w| !text(w).contains("lport")),
        "{doc:#}"
    );
    let m = one(&doc, "match_allows_passwords");
    assert!(
        text(&m["title"]).contains("on port 2222 from anywhere"),
        "{m:#}"
    );

    // The same network allowlisted in portcullis: a low note.
    let pc = tmp.path().join("portcullis.toml");
    std::fs::write(&pc, "[jail.sshd]\nallowlist = [\"198.51.100.0/24\"]\n")
        .expect("portcullis.toml");
    let mut args = base(&matched);
    args.extend(["--config".into(), pc.display().to_string()]);
    let (_, doc) = go(args);
    assert!(
        findings(&doc, "match_allows_passwords").is_empty(),
        "{doc:#}"
    );
    assert_eq!(
        one(&doc, "match_allows_passwords_allowlisted")["severity"],
        "low"
    );

    // sshd keeps the first value: a drop-in included first wins over the main file.
    std::fs::create_dir_all(configs.dir.join("d")).expect("d");
    std::fs::write(
        configs.dir.join("d/50-cloud-init.conf"),
        "PasswordAuthentication yes\n",
    )
    .expect("drop-in");
    let dropin = configs.write(
        "dropin",
        &format!(
            "Include {}/d/*.conf\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nMaxAuthTries 10\nLoginGraceTime 0\n",
            configs.dir.display()
        ),
    );
    let (_, doc) = go(base(&dropin));
    let pw = one(&doc, "password_login");
    let wh = text(&pw["fix_where"]);
    assert!(wh.contains("50-cloud-init.conf:1"), "{wh}");
    assert!(
        wh.contains(&format!("{}:4 have no effect", dropin.display())),
        "{wh}"
    );
    assert_eq!(one(&doc, "max_auth_tries")["fix"][0], "MaxAuthTries 3");
    assert_eq!(one(&doc, "login_grace_time")["severity"], "medium");
    // This Debian's sshd: PerSourcePenalties said to be unavailable, by version.
    let v = &doc["facts"]["sshd"]["version"]["ok"];
    let (major, minor) = (
        v["major"].as_u64().unwrap_or(0),
        v["minor"].as_u64().unwrap_or(0),
    );
    let pen = one(&doc, "per_source_penalties");
    if (major, minor) < (9, 8) {
        assert!(
            text(&pen["title"]).contains("not available in this version"),
            "{pen:#}"
        );
    }

    // investigate shows the top audit findings of the whole host (its --sshd-config is
    // sshd's -f), and none about one address.
    let investigate = |extra: &[&str]| -> Value {
        let d = tmp.path();
        let out = Command::new(bin())
            .arg("investigate")
            .args([
                "--logs",
                &tree.join("var/log/auth.log").display().to_string(),
            ])
            .args([
                "--sshd-config",
                &open.display().to_string(),
                "--socket",
                &sock,
            ])
            .args(["--utmp", &d.join("no-utmp").display().to_string()])
            .args(["--wtmp", &d.join("no-wtmp").display().to_string()])
            .args(["--btmp", &d.join("no-btmp").display().to_string()])
            .args(["--proc", &d.join("no-proc").display().to_string()])
            .args(["--state-db", &d.join("state.db").display().to_string()])
            .arg("--json")
            .args(extra)
            .output()
            .expect("investigate");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let inv = investigate(&[]);
    let top = inv["audit"]["findings"].as_array().expect("audit findings");
    assert!(!top.is_empty() && top.len() <= 3, "{inv:#}");
    assert!(
        top.iter().any(|f| f["kind"] == "portcullis_not_running"),
        "{top:#?}"
    );
    assert!(investigate(&["192.0.2.10"]).get("audit").is_none());

    // sshd refuses a config: said, not guessed.
    let bad = configs.write("bad", "PermitRootLogin maybe\n");
    let (code, doc) = go(base(&bad));
    assert_eq!(code, 1);
    let s = one(&doc, "sshd_unreadable");
    assert!(
        text(&s["why"]).contains("maybe") || text(&s["why"]).contains("bad"),
        "{s:#}"
    );
}

/// Accounts made for the test with useradd, removed on drop (even when the test fails).
struct Accounts(Vec<String>);

impl Drop for Accounts {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("userdel").args(["-r", "-f", name]).output();
        }
    }
}

/// Real accounts: one with a password and no key, one with a password and a key its log
/// shows used, one locked, one with nologin, one whose authorized_keys others can write.
#[test]
fn a3_real_accounts_made_with_useradd() {
    if !require_root_and(&[
        "sshd",
        "ssh-keygen",
        "useradd",
        "userdel",
        "chpasswd",
        "usermod",
    ]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let configs = Configs::new(&tmp.path().join("configs"));
    let p = format!("pcaud{}", std::process::id() % 100_000);
    let name = |s: &str| format!("{p}{s}");
    let mut guard = Accounts(Vec::new());
    for s in ["a", "k", "l", "n", "b"] {
        guard.0.push(name(s));
        let shell = if s == "n" {
            "/usr/sbin/nologin"
        } else {
            "/bin/bash"
        };
        run(Command::new("useradd").args(["-m", "-s", shell, &name(s)]));
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    {
        use std::io::Write;
        let stdin = chpasswd.stdin.as_mut().expect("stdin");
        for s in ["a", "k", "l", "n", "b"] {
            writeln!(stdin, "{}:pcaud-Test-pw-{s}-9", name(s)).expect("write");
        }
    }
    assert!(chpasswd.wait().expect("chpasswd").success());
    run(Command::new("usermod").args(["-L", &name("l")]));
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPcaudTestKeyOnlyForAuditXXXXXXXXXXXXXXXXXX t\n";
    for (s, mode) in [("k", 0o600), ("b", 0o666)] {
        let user = name(s);
        let ssh = PathBuf::from(format!("/home/{user}/.ssh"));
        std::fs::create_dir_all(&ssh).expect(".ssh");
        let f = ssh.join("authorized_keys");
        std::fs::write(&f, key).expect("key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
        run(Command::new("chown").args(["-R", &format!("{user}:"), &ssh.display().to_string()]));
    }
    let log = tmp.path().join("auth.log");
    std::fs::write(
        &log,
        format!(
            "Sep 30 10:00:00 h sshd[42]: Accepted publickey for {} from 198.51.100.20 port 40000 \
             ssh2: ED25519 SHA256:pcaudTESTfingerprint\n",
            name("k")
        ),
    )
    .expect("auth.log");
    let config = configs.write(
        "users",
        "PermitRootLogin prohibit-password\nPasswordAuthentication yes\nStrictModes yes\n\
         AuthorizedKeysFile .ssh/authorized_keys\n",
    );
    let (code, doc) = audit(&[
        "--sshd-config",
        &config.display().to_string(),
        "--logs",
        &log.display().to_string(),
        "--socket",
        &tmp.path().join("none.sock").display().to_string(),
    ]);
    assert_eq!(code, 1);
    let pw = one(&doc, "password_login");
    let why = text(&pw["safe_now"]["why"]);
    assert_eq!(pw["safe_now"]["verdict"], "no", "{pw:#}");
    assert!(
        why.contains(&format!("no key for {}: add one first", name("a"))),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "{}'s key in /home/{}/.ssh/authorized_keys",
            name("k"),
            name("k")
        )) && why.contains("198.51.100.20"),
        "{why}"
    );
    // b's key file is ignored (StrictModes), so b has no usable key either.
    assert!(
        why.contains(&format!(
            "{}'s /home/{}/.ssh/authorized_keys is ignored",
            name("b"),
            name("b")
        )),
        "{why}"
    );
    for s in ["l", "n"] {
        assert!(
            !why.contains(&name(s)),
            "{} cannot log in with a password: {why}",
            name(s)
        );
    }
    let ignored = findings(&doc, "key_file_ignored");
    let b = ignored
        .iter()
        .find(|f| text(&f["title"]).contains(&name("b")))
        .unwrap_or_else(|| panic!("b's key file: {doc:#}"));
    assert_eq!(
        b["commands"][0],
        format!("chmod go-w /home/{}/.ssh/authorized_keys", name("b"))
    );
    // The accounts as facts: states from the real shadow file, never the hash.
    let accounts = doc["facts"]["accounts"].as_array().expect("accounts");
    let state = |s: &str| {
        accounts
            .iter()
            .find(|a| a["passwd"]["name"] == name(s))
            .map(|a| a["shadow"]["password"].clone())
    };
    assert_eq!(state("a"), Some(Value::from("usable")));
    assert_eq!(state("l"), Some(Value::from("locked")));
    assert_eq!(state("n"), None, "nologin accounts are not listed");
    assert!(!doc.to_string().contains("$y$") && !doc.to_string().contains("$6$"));
    drop(guard);
    let left = std::fs::read_to_string("/etc/passwd").expect("passwd");
    assert!(!left.contains(&p), "the guard removed the accounts");
}

/// Faults: no sshd program, an unreadable shadow file, a missing passwd file, a FIFO in
/// place of a key file (must not hang), unreadable logs.
#[test]
fn a4_faults_have_a_defined_answer() {
    if !require_root_and(&["sshd", "ssh-keygen", "mkfifo"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let tree = tmp.path().join("tree");
    account_tree(&tree);
    let configs = Configs::new(&tmp.path().join("configs"));
    let open = configs.write("open", "PermitRootLogin yes\nPasswordAuthentication yes\n");
    let root_arg = tree.display().to_string();
    let sock = tmp.path().join("none.sock").display().to_string();
    let cfg = open.display().to_string();
    let common = [
        "--root",
        &root_arg,
        "--socket",
        &sock,
        "--sshd-config",
        &cfg,
    ];

    // No sshd: said, nothing about sshd judged.
    let mut args = common.to_vec();
    args.extend(["--sshd", "/nonexistent/sshd"]);
    let (code, doc) = audit(&args);
    assert_eq!(code, 1);
    assert!(
        text(&one(&doc, "sshd_unreadable")["why"]).contains("cannot run /nonexistent/sshd"),
        "{doc:#}"
    );
    assert!(findings(&doc, "root_password_login").is_empty());

    // Shadow unreadable: passwords assumed set, and said.
    let mut args = common.to_vec();
    args.extend(["--shadow", "/nonexistent/shadow"]);
    let (_, doc) = audit(&args);
    assert!(
        text(&one(&doc, "root_password_login")["why"]).contains("password state is unknown"),
        "{doc:#}"
    );
    assert!(
        doc["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| text(w).contains("/nonexistent/shadow")),
        "{doc:#}"
    );

    // Not root: shadow unreadable and sshd -T refused (host keys), both said.
    if crate::e2e::which("runuser").is_some() {
        // A copy nobody can run, wherever the checkout is (/root is 0700).
        use std::os::unix::fs::PermissionsExt;
        let open_dir = tmp.path().join("for-nobody");
        std::fs::create_dir(&open_dir).expect("dir");
        let copy = open_dir.join("portcullis");
        std::fs::copy(bin(), &copy).expect("copy the binary");
        for (p, mode) in [
            (tmp.path(), 0o755),
            (open_dir.as_path(), 0o755),
            (copy.as_path(), 0o755),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&copy)
            .args(["audit", "--json", "--socket", &sock])
            .output()
            .expect("runuser");
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&one(&doc, "sshd_unreadable")["why"]).contains("run audit as root"),
            "{doc:#}"
        );
        assert!(
            doc["warnings"]
                .as_array()
                .expect("warnings")
                .iter()
                .any(|w| text(w).contains("/etc/shadow") && text(w).contains("unknown")),
            "{doc:#}"
        );
    }

    // No passwd: nothing meaningful to say, exit 2 with the path.
    let out = Command::new(bin())
        .arg("audit")
        .args(common)
        .args(["--passwd", "/nonexistent/passwd"])
        .output()
        .expect("audit");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/passwd"));

    // root's authorized_keys is a FIFO: reported (sshd ignores it), never read.
    run(Command::new("mkfifo").arg(tree.join("root/.ssh/authorized_keys")));
    let mut args = common.to_vec();
    args.extend(["--logs", "/nonexistent/auth.log"]);
    let t0 = Instant::now();
    let (_, doc) = audit(&args);
    assert!(t0.elapsed() < Duration::from_secs(20));
    let ignored = one(&doc, "key_file_ignored");
    assert!(
        text(&ignored["why"]).contains("not a regular file"),
        "{ignored:#}"
    );
    assert_eq!(
        one(&doc, "root_password_login")["safe_now"]["verdict"],
        "no",
        "a FIFO is no key"
    );
    assert!(
        doc["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| text(w).contains("key logins not read") || text(w).contains("auth.log")),
        "{doc:#}"
    );
}
