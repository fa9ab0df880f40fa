//! Issue 10, "trust under attack", items 6–9 at the level of the running daemon: sources that
//! are not regular files, bounded notification hooks, and not damaging the host (state
//! directory, control socket, ban lengths). Each test runs the real binary in its own network
//! namespace (firewall `none` unless it says otherwise).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::e2e::daemon::Daemon;
use crate::e2e::netns::Netns;
use crate::e2e::require_root_and;

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
}

/// `status --json`'s sources of the first jail, by key.
fn source_status(d: &Daemon, path: &Path) -> serde_json::Value {
    let key = format!("file:{}", path.display());
    d.status()["jails"][0]["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["key"] == key.as_str()).cloned())
        .unwrap_or_else(|| panic!("no source {key} in status"))
}

/// Time one control command; panics when it fails.
fn timed_ctl(d: &Daemon, args: &[&str]) -> Duration {
    let t0 = Instant::now();
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t0.elapsed()
}

/// Item 6: a FIFO and a symlink to /dev/zero as log files. Before, the daemon hung in its
/// start (opening the FIFO blocks until a writer appears, on the main task) and the
/// /dev/zero source spun a core on NUL "lines".
#[test]
fn i10_fifo_and_dev_zero_sources_are_refused_and_reload_and_sigterm_stay_prompt() {
    if !require_root_and(&["ip"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("fifo");
    let fifo = tmp.path().join("fifo.log");
    mkfifo(&fifo);
    let zero = tmp.path().join("zero.log");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let cfg = format!(
        "[firewall]\nbackend = \"none\"\n[jail.sshd]\nmaxretry = 1000000\nsources = [{{ file = \"{}\" }}, {{ file = \"{}\" }}]\n",
        fifo.display(),
        zero.display()
    );
    // Start answers on its socket (the harness waits up to 20 s, then fails).
    let mut daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);
    daemon.wait_for("both source errors in status", 10, |d| {
        source_status(d, &fifo)["error"].is_string() && source_status(d, &zero)["error"].is_string()
    });
    let e = source_status(&daemon, &fifo)["error"].to_string();
    assert!(
        e.contains(&fifo.display().to_string()) && e.contains("a FIFO"),
        "{e}"
    );
    let e = source_status(&daemon, &zero)["error"].to_string();
    assert!(e.contains("a character device"), "{e}");
    assert_eq!(source_status(&daemon, &zero)["lines"], 0);

    // Nothing spins: the daemon's CPU time stays small while it idles for 2 s.
    let pid = daemon.pid().expect("pid");
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let after = stat.rsplit_once(") ").expect("comm").1;
        let f: Vec<&str> = after.split_whitespace().collect();
        f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
    };
    let before = cpu(pid);
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu(pid) - before;
    assert!(
        ticks < 50,
        "the daemon used {ticks} clock ticks in 2 s idle"
    );

    let took = timed_ctl(&daemon, &["reload"]);
    assert!(took < Duration::from_secs(5), "reload took {took:?}");

    // The FIFO becomes a regular file: it is picked up by name, the error goes away.
    std::fs::remove_file(&fifo).expect("rm fifo");
    let text: String = (0..5).map(distinct_attempt).collect();
    std::fs::write(&fifo, text).expect("write");
    daemon.wait_for("the 5 lines of the new regular file", 20, |d| {
        source_status(d, &fifo)["lines"] == 5
    });
    assert!(source_status(&daemon, &fifo)["error"].is_null());
    assert!(source_status(&daemon, &zero)["error"].is_string());

    let took = daemon
        .stop_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("SIGTERM did not stop the daemon\n{}", daemon.log()));
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
}

/// `portcullis run --config CFG` in `ns`, stopped by `timeout` after `secs` if still running
/// (exit status 124 then).
fn run_for(ns: &Netns, config: &Path, secs: u64) -> std::process::Output {
    std::process::Command::new("timeout")
        .arg(secs.to_string())
        .args(["ip", "netns", "exec", &ns.name])
        .arg(crate::e2e::daemon::bin())
        .arg("run")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run portcullis")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

fn chmod(p: &Path, bits: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(bits)).expect("chmod");
}

/// Item 9: `state_dir` naming a shared directory (here one like /tmp: root, 1777) is refused
/// and left exactly as it was; an existing private-enough one is used without a chmod; the
/// control socket is not put in a world-writable directory. Before, the daemon chmod'ed any
/// state directory to 0700 (stripping /tmp's sticky bit) and bound its socket anywhere.
#[test]
fn i10_state_dir_and_socket_dir_are_checked_never_chmodded() {
    if !require_root_and(&["ip", "timeout"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("dirs");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, b"").expect("log");
    let config = |state: &Path, socket: &Path| {
        let cfg = tmp.path().join("portcullis.toml");
        std::fs::write(
            &cfg,
            format!(
                "[daemon]\nstate_dir = \"{}\"\nsocket = \"{}\"\n[firewall]\nbackend = \"none\"\n\
                 [jail.sshd]\nsources = [{{ file = \"{}\" }}]\n",
                state.display(),
                socket.display(),
                log.display()
            ),
        )
        .expect("config");
        cfg
    };
    let private = tmp.path().join("run");
    std::fs::create_dir(&private).expect("mkdir");
    let socket = private.join("ctl.sock");

    // A typo'd state_dir that names a shared sticky directory.
    let shared = tmp.path().join("shared-tmp");
    std::fs::create_dir(&shared).expect("mkdir");
    chmod(&shared, 0o1777);
    let out = run_for(&ns, &config(&shared, &socket), 15);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        mode(&shared),
        0o1777,
        "the sticky directory was changed\n{stderr}"
    );
    assert!(
        !out.status.success() && out.status.code() != Some(124),
        "the daemon ran with state_dir {}: {:?}\n{stderr}",
        shared.display(),
        out.status
    );
    assert!(
        stderr.contains(&shared.display().to_string())
            && stderr.contains("uid 0")
            && stderr.contains("mode 1777"),
        "{stderr}"
    );
    assert!(!shared.join("state.db").exists());

    // An existing root-owned 0750 directory: used, its mode kept.
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).expect("mkdir");
    chmod(&kept, 0o750);
    let out = run_for(&ns, &config(&kept, &socket), 3);
    assert_eq!(
        out.status.code(),
        Some(124),
        "the daemon did not run with a 0750 state directory\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&kept), 0o750, "the state directory's mode was changed");
    assert!(kept.join("state.db").exists());

    // A missing one is created 0700.
    let fresh = tmp.path().join("var/lib/portcullis");
    let out = run_for(&ns, &config(&fresh, &socket), 3);
    assert_eq!(
        out.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&fresh), 0o700);

    // The control socket in a world-writable directory.
    let open_dir = tmp.path().join("open");
    std::fs::create_dir(&open_dir).expect("mkdir");
    chmod(&open_dir, 0o777);
    let out = run_for(&ns, &config(&fresh, &open_dir.join("ctl.sock")), 15);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(124),
        "the daemon bound its socket in a 0777 directory: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&open_dir.display().to_string()) && stderr.contains("mode 0777"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&open_dir).expect("ls").count(), 0);
    assert_eq!(mode(&open_dir), 0o777);
}

/// Item 9: a manual ban longer than the kernel can time (here 200 years; the nft backend's
/// limit is u32::MAX seconds, about 136 years) is a permanent ban, in the daemon and in the
/// kernel, and the reply says so. Before, the daemon recorded an end in the year 2226 while
/// the kernel element silently had no timeout.
#[test]
fn i10_a_manual_ban_beyond_the_kernel_limit_is_permanent_and_says_so() {
    if !require_root_and(&["ip", "nft"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("banlen");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, b"").expect("log");
    let cfg = format!(
        "[firewall]\nbackend = \"nft\"\n[jail.sshd]\nsources = [{{ file = \"{}\" }}]\n",
        log.display()
    );
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);
    let ban = |addr: &str, length: &str| -> serde_json::Value {
        let out = daemon.ctl(&["ban", addr, "--for", length, "--json"]);
        assert!(
            out.status.success(),
            "ban failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let long = ban("192.0.2.9", "200y");
    assert!(long["ban"]["until"].is_null(), "{long}");
    let note = long["note"]
        .as_str()
        .unwrap_or_else(|| panic!("no note: {long}"));
    assert!(
        note.contains("permanently") && note.contains("4294967295"),
        "{note}"
    );
    let text = daemon.ctl(&["ban", "192.0.2.11", "--for", "1000y"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("permanent") && text.contains("note: "),
        "{text}"
    );

    let timed = ban("192.0.2.10", "100y");
    assert!(timed["ban"]["until"].is_i64(), "{timed}");
    assert!(timed.get("note").is_none(), "{timed}");

    let set = ns.exec(&["nft", "list", "set", "inet", "portcullis", "addr4"]);
    let element = |addr: &str| -> String {
        set.split([',', '{', '}'])
            .find(|e| e.split_whitespace().next() == Some(addr))
            .unwrap_or_else(|| panic!("{addr} not in the kernel set:\n{set}"))
            .to_string()
    };
    assert!(!element("192.0.2.9").contains("timeout"), "{set}");
    assert!(element("192.0.2.10").contains("timeout"), "{set}");
    let bans = daemon.bans();
    let until = |t: &str| {
        bans.iter()
            .find(|b| b["target"] == t)
            .map(|b| b["until"].clone())
            .unwrap_or_else(|| panic!("no ban of {t}: {bans:?}"))
    };
    assert!(until("192.0.2.9").is_null());
    assert!(until("192.0.2.10").is_i64());
}

/// A failed password line, dated now, from the `i`-th of 762 documentation addresses.
fn distinct_attempt(i: usize) -> String {
    let net = ["192.0.2", "198.51.100", "203.0.113"][i / 254 % 3];
    let now = jiff::tz::TimeZone::system()
        .to_datetime(jiff::Timestamp::now())
        .strftime("%b %e %H:%M:%S");
    format!(
        "{now} srv sshd[{}]: Failed password for root from {net}.{} port 4242 ssh2\n",
        10_000 + i,
        1 + i % 254
    )
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Item 7: 700 bans with a webhook on a listener that accepts and never answers. Before,
/// every event got its own blocking thread (516 threads) and a reload waited ~40 s behind
/// them for the runtime's blocking pool.
#[test]
fn i10_seven_hundred_bans_against_a_silent_webhook_cost_no_threads_and_are_counted() {
    if !require_root_and(&["ip", "python3"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("hooks");
    // Accepts every connection and never sends a byte.
    let mut silent = ns
        .command("python3")
        .args([
            "-c",
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('127.0.0.1',8090))\ns.listen(4096)\nkeep=[]\nwhile True:\n    keep.append(s.accept())\n",
        ])
        .spawn()
        .expect("listener");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, b"").expect("log");
    let cfg = format!(
        "[firewall]\nbackend = \"none\"\n\
         [notify]\nwebhooks = [\"http://127.0.0.1:8090/hook\"]\nevents = [\"ban\"]\ntimeout = \"3s\"\nretries = 1\nqueue = 64\n\
         [jail.sshd]\nmaxretry = 1\nbantime = \"1h\"\nsources = [{{ file = \"{}\" }}]\n",
        log.display()
    );
    let mut daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);
    let pid = daemon.pid().expect("pid");
    let idle = threads(pid);

    let text: String = (0..700).map(distinct_attempt).collect();
    std::fs::write(&log, text).expect("write");
    daemon.wait_for("700 bans", 30, |d| {
        d.status()["jails"][0]["total_bans"].as_u64() == Some(700)
    });
    let mut most = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        most = most.max(threads(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    let reload = timed_ctl(&daemon, &["reload"]);
    let ban = timed_ctl(&daemon, &["ban", "192.0.2.254", "--for", "10m"]);
    most = most.max(threads(pid));
    eprintln!("threads: {idle} idle, at most {most} with 700 bans; reload {reload:?}, ban {ban:?}");
    assert!(
        most <= idle + 2,
        "{most} threads with 700 bans, {idle} before"
    );
    assert!(reload < Duration::from_secs(3), "reload took {reload:?}");
    assert!(ban < Duration::from_secs(3), "a manual ban took {ban:?}");

    let hooks = daemon.status()["hooks"].clone();
    let count = |k: &str| {
        hooks[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no hooks.{k}: {hooks}"))
    };
    // 701 runs: at most 2 running and 64 waiting, the rest dropped.
    assert!(
        count("dropped") >= 701 - 64 - 2 - count("failed"),
        "{hooks}"
    );
    assert_eq!(count("delivered"), 0, "{hooks}");
    let logged = daemon.log().matches("notification queue full").count();
    assert!((1..=3).contains(&logged), "{logged} queue-full log lines");

    let took = daemon
        .stop_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("SIGTERM did not stop the daemon\n{}", daemon.log()));
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let _ = silent.kill();
    let _ = silent.wait();
}

/// Item 7: an exec hook that does not read its stdin, sleeps and leaves a child behind is
/// killed at the timeout with its whole process group. Before, only the direct child was
/// killed and the grandchild lived on.
#[test]
fn i10_a_hanging_exec_hook_is_killed_with_its_whole_process_group() {
    if !require_root_and(&["ip"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ns = Netns::new("exec");
    let pids = tmp.path().join("pids");
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nsleep 300 &\necho $! > {p}.grandchild\necho $$ > {p}.child\nexec sleep 300\n",
            p = pids.display()
        ),
    )
    .expect("hook");
    chmod(&hook, 0o755);
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, b"").expect("log");
    let cfg = format!(
        "[firewall]\nbackend = \"none\"\n\
         [notify]\nexec = [[\"{}\"]]\nevents = [\"ban\"]\ntimeout = \"1s\"\n\
         [jail.sshd]\nsources = [{{ file = \"{}\" }}]\n",
        hook.display(),
        log.display()
    );
    let daemon = Daemon::start(&ns, &tmp.path().join("pc"), &cfg);
    let t0 = Instant::now();
    timed_ctl(&daemon, &["ban", "192.0.2.77", "--for", "10m"]);
    let pid_of = |which: &str| -> Option<u32> {
        std::fs::read_to_string(format!("{}.{which}", pids.display()))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    daemon.wait_for("the hook to start", 10, |_| {
        pid_of("child").is_some() && pid_of("grandchild").is_some()
    });
    let (child, grandchild) = (
        pid_of("child").expect("pid"),
        pid_of("grandchild").expect("pid"),
    );
    let gone = |pid: u32| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    };
    daemon.wait_for("the hook and its child to be killed", 15, |_| {
        gone(child) && gone(grandchild)
    });
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "killed before its timeout"
    );
    daemon.wait_for("the failure counted", 10, |d| {
        d.status()["hooks"]["failed"] == 1
    });
    assert!(daemon.log().contains("timed out"), "{}", daemon.log());
}
