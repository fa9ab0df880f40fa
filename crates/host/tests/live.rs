//! Live checks against this machine's /proc: a process with an sshd session title holding a
//! real loopback connection, and a real OpenSSH sshd on loopback with a pre-auth connection.

#![allow(clippy::unwrap_used)] // test harness: a panic is how a failure is reported

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_host::{
    RemoteConnections, SshState, SshdRole, TcpState, connections_to_ports, read_proc_net_tcp,
    ssh_ports, sshd_processes,
};

/// Kills and reaps the child on drop, so a failing test leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary the test needs, or a loud skip (a failure under CI=true).
fn need(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    let msg = format!("SKIPPED: {path} not found; live sshd check not run");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (CI=true)"
    );
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

#[test]
fn session_title_labels_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, peer) = listener.accept().unwrap();
    // A stand-in for sshd's session process: argv[0] is the title, the socket is its stdin.
    let child = Reaped(
        Command::new("sleep")
            .arg0("sshd: bob@pts/9")
            .arg("60")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(server)))
            .spawn()
            .unwrap(),
    );
    let groups = connections_to_ports(Path::new("/proc"), &[port]).unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = &groups[0];
    assert_eq!(g.addr, peer.ip());
    assert_eq!((g.count, g.authenticated, g.pre_auth), (1, 1, 0));
    assert_eq!(g.users, ["bob"]);
    assert_eq!(g.connections[0].pids, [child.0.id()]);
    assert_eq!(
        g.connections[0].ssh,
        SshState::Authenticated {
            user: "bob".into(),
            tty: Some("pts/9".into())
        }
    );
    drop(client);
}

/// A real sshd on 127.0.0.1 with a throwaway host key, killed on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Reaped,
}

fn keygen(path: &Path) {
    let st = Command::new("/usr/bin/ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

fn start_sshd() -> Option<Sshd> {
    if !need("/usr/sbin/sshd") || !need("/usr/bin/ssh-keygen") || !need("/usr/bin/ssh") {
        return None;
    }
    // sshd's privilege separation and the root key login need root.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    if uid != 0 {
        let msg = "SKIPPED: not root; live sshd checks not run";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg} (CI=true)"
        );
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_ed25519");
    keygen(&key);
    keygen(&dir.path().join("client"));
    std::fs::copy(
        dir.path().join("client.pub"),
        dir.path().join("authorized_keys"),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\n\
             LoginGraceTime 60\nPasswordAuthentication yes\nStrictModes no\n\
             AuthorizedKeysFile {}\n",
            key.display(),
            dir.path().join("authorized_keys").display()
        ),
    )
    .unwrap();
    assert_eq!(ssh_ports(&cfg).unwrap(), [port]);
    // sshd needs its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let child = Reaped(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    // Wait for the listening socket without connecting: a probe connection would be one
    // more pre-auth connection in the counts below.
    let listening = || {
        read_proc_net_tcp(Path::new("/proc"))
            .unwrap()
            .iter()
            .any(|s| s.state == TcpState::Listen && s.local.port() == port)
    };
    while !listening() {
        assert!(Instant::now() < deadline, "sshd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Sshd { dir, port, child })
}

/// Poll until `done` accepts the grouped connections to `port` (or 10 s pass); the last view.
fn wait_for(port: u16, done: impl Fn(&RemoteConnections) -> bool) -> RemoteConnections {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let groups = connections_to_ports(Path::new("/proc"), &[port]).unwrap();
        let g = groups.into_iter().next();
        match g {
            Some(g) if done(&g) || Instant::now() > deadline => return g,
            None if Instant::now() > deadline => panic!("no connection to {port} found"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn real_sshd_preauth_connection() {
    let Some(sshd) = start_sshd() else { return };
    let stream = TcpStream::connect(("127.0.0.1", sshd.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut banner = String::new();
    reader.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner:?}");
    (&stream).write_all(b"SSH-2.0-portcullis_test\r\n").unwrap();

    // The forked per-connection processes retitle themselves shortly after accept.
    let g = wait_for(sshd.port, |g| g.pre_auth == 1);
    assert_eq!(g.addr, stream.local_addr().unwrap().ip());
    assert_eq!((g.count, g.authenticated, g.pre_auth), (1, 0, 1), "{g:?}");
    assert!(matches!(
        g.connections[0].ssh,
        SshState::PreAuth { user: None }
    ));

    let procs = sshd_processes(Path::new("/proc")).unwrap();
    let listener = procs
        .iter()
        .find(|p| p.pid == sshd.child.0.id())
        .expect("listener listed");
    assert_eq!(listener.role, SshdRole::Listener, "{:?}", listener.title);
    let holders: Vec<_> = procs
        .iter()
        .filter(|p| g.connections[0].pids.contains(&p.pid))
        .map(|p| p.title.as_str())
        .collect();
    eprintln!("pre-auth holders of our connection: {holders:?}");
}

#[test]
fn real_sshd_authenticated_and_password_prompt() {
    let Some(sshd) = start_sshd() else { return };
    let d = sshd.dir.path();
    let common = |cmd: &mut Command| {
        cmd.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ])
        .arg(sshd.port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    };
    // A key login that stays open (a command, so `notty`). The remote `sleep` and the
    // askpass below outlive the test by at most 30 s: they are not ours to kill by name.
    let mut key_login = Command::new("/usr/bin/ssh");
    common(&mut key_login);
    key_login.arg("-i").arg(d.join("client")).args([
        "-o",
        "BatchMode=yes",
        "root@127.0.0.1",
        "sleep",
        "30",
    ]);
    let _key_login = Reaped(key_login.spawn().unwrap());
    // A password login left waiting at the prompt: askpass never answers.
    let askpass = d.join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut pw_login = Command::new("/usr/bin/ssh");
    common(&mut pw_login);
    pw_login
        .args([
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "root@127.0.0.1",
            "true",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0");
    let _pw_login = Reaped(pw_login.spawn().unwrap());

    let authenticated = SshState::Authenticated {
        user: "root".into(),
        tty: None,
    };
    let at_prompt = SshState::PreAuth {
        user: Some("root".into()),
    };
    // The password connection passes through `[accepted]` and `[net]` before the user name
    // shows, so wait for the final states, not just the counts.
    let g = wait_for(sshd.port, |g| {
        g.connections.iter().any(|c| c.ssh == authenticated)
            && g.connections.iter().any(|c| c.ssh == at_prompt)
    });
    let titles: Vec<String> = sshd_processes(Path::new("/proc"))
        .unwrap()
        .into_iter()
        .map(|p| p.title)
        .collect();
    assert_eq!(
        (g.count, g.authenticated, g.pre_auth),
        (2, 1, 1),
        "{g:#?}\n{titles:?}"
    );
    assert_eq!(g.users, ["root"]);
    let states: Vec<&SshState> = g.connections.iter().map(|c| &c.ssh).collect();
    assert!(states.contains(&&authenticated), "{states:?}");
    assert!(states.contains(&&at_prompt), "{states:?}");
    eprintln!("sshd titles: {titles:?}");
}
