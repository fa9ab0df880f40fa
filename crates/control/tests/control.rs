//! The control server and client over real Unix sockets in a temporary directory.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_control::data::{
    ActivityData, BanData, BanEntry, BansData, FlushData, ReloadData, Reply, StatusData, UnbanData,
};
use portcullis_control::{
    AccessPolicy, BindError, Client, ClientError, Command, ErrorBody, ErrorKind, Handler, Peer,
    ServerConfig, Target, bind_socket, serve,
};
use serde_json::Value;

/// A small in-memory daemon: enough behaviour to check that commands, replies and errors
/// travel intact.
#[derive(Default)]
struct MemoryDaemon {
    bans: Mutex<Vec<BanEntry>>,
    reload_broken: AtomicBool,
    peers: Mutex<Vec<Peer>>,
    /// Milliseconds every request takes (a daemon busy with it).
    delay_ms: AtomicU64,
}

impl Handler for MemoryDaemon {
    async fn handle(&self, peer: Peer, command: Command) -> Result<Reply, ErrorBody> {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.peers.lock().unwrap().push(peer);
        let mut bans = self.bans.lock().unwrap();
        match command {
            Command::Status { .. } => Ok(Reply::Status(Box::new(StatusData {
                version: "test".into(),
                pid: std::process::id(),
                jails: vec![portcullis_control::data::JailStatus {
                    name: "sshd".into(),
                    active_bans: bans.len() as u64,
                    ..Default::default()
                }],
                ..Default::default()
            }))),
            Command::Bans { jail, .. } => {
                let bans: Vec<_> = bans
                    .iter()
                    .filter(|b| jail.as_ref().is_none_or(|j| *j == b.jail))
                    .cloned()
                    .collect();
                Ok(Reply::Bans(BansData {
                    total: bans.len() as u64,
                    bans,
                    ..Default::default()
                }))
            }
            // A manual ban in memory: loopback stands for the allowlist.
            Command::Ban { target, force, .. } if target.0.addr().is_loopback() && !force => {
                Err(ErrorBody::new(
                    ErrorKind::Allowlisted,
                    format!("{target} is allowlisted; use --force"),
                ))
            }
            Command::Ban {
                target,
                jail,
                duration,
                permanent,
                ..
            } => {
                let entry = BanEntry {
                    target,
                    jail: jail.unwrap_or_else(|| "manual".into()),
                    since: 1000,
                    until: if permanent {
                        None
                    } else {
                        Some(1000 + duration.unwrap_or(600) as i64)
                    },
                    ban_no: 1,
                    reason: "manual".into(),
                    origin: None,
                };
                bans.push(entry.clone());
                Ok(Reply::Ban(BanData {
                    ban: entry,
                    note: None,
                }))
            }
            Command::Unban { target, jail, all } => {
                let (removed, kept) = bans.drain(..).partition(|b: &BanEntry| {
                    (all || Some(b.target) == target) && jail.as_ref().is_none_or(|j| *j == b.jail)
                });
                *bans = kept;
                if removed.is_empty() {
                    return Err(ErrorBody::new(ErrorKind::NotFound, "no such ban"));
                }
                Ok(Reply::Unban(UnbanData { removed }))
            }
            Command::Reload => {
                if self.reload_broken.load(Ordering::SeqCst) {
                    Err(ErrorBody::new(
                        ErrorKind::ReloadFailed,
                        "conf.d/x.toml:3: unknown key `maxretyr`",
                    ))
                } else {
                    Ok(Reply::Reload(ReloadData {
                        jails: vec!["sshd".into()],
                        warnings: vec![],
                    }))
                }
            }
            Command::Activity { .. } => Ok(Reply::Activity(ActivityData {
                bans_total: bans.len() as u64,
                bans: bans.clone(),
                ..ActivityData::default()
            })),
            Command::Flush { .. } => {
                let n = bans.len() as u64;
                bans.clear();
                Ok(Reply::Flush(FlushData { removed: n }))
            }
        }
    }
}

struct TestServer {
    _dir: tempfile::TempDir,
    path: PathBuf,
    daemon: Arc<MemoryDaemon>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    fn start(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/control.sock");
        let listener = bind_socket(&path).unwrap();
        let daemon = Arc::new(MemoryDaemon::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, daemon.clone(), config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            _dir: dir,
            path,
            daemon,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
    }
}

/// Run blocking client code off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A fresh connection to `path` gets a successful `status` answer.
fn assert_serves(path: &Path) {
    let mut c = Client::connect(path).unwrap();
    let reply = c.request(Command::Status { jail: None }).unwrap();
    assert!(reply.result.is_ok(), "{:?}", reply.result);
}

fn target(s: &str) -> Target {
    Target::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_every_command() {
    let server = TestServer::start(ServerConfig::default());
    let path = server.path.clone();
    let daemon = server.daemon.clone();
    blocking(move || {
        let mut c = Client::connect(&path).unwrap();
        let status: StatusData = c
            .request(Command::Status { jail: None })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(status.pid, std::process::id());
        assert_eq!(status.jails[0].name, "sshd");

        let ban = Command::Ban {
            target: target("192.0.2.1"),
            jail: Some("sshd".into()),
            duration: Some(60),
            permanent: false,
            force: false,
        };
        let r = c.request(ban).unwrap();
        assert_eq!(r.id, 2);
        let b: BanData = r.data_as().unwrap();
        assert_eq!(
            (b.ban.target, b.ban.until),
            (target("192.0.2.1"), Some(1060))
        );
        let perm = Command::Ban {
            target: target("2001:db8::/64"),
            jail: None,
            duration: None,
            permanent: true,
            force: false,
        };
        assert_eq!(
            c.request(perm)
                .unwrap()
                .data_as::<BanData>()
                .unwrap()
                .ban
                .until,
            None
        );

        // Allowlisted needs force; the error kind survives the trip.
        let lo = Command::Ban {
            target: target("127.0.0.1"),
            jail: None,
            duration: None,
            permanent: false,
            force: false,
        };
        let e = c.request(lo.clone()).unwrap().result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Allowlisted);
        let Command::Ban { target: t, .. } = lo else {
            unreachable!()
        };
        let forced = Command::Ban {
            target: t,
            jail: None,
            duration: None,
            permanent: false,
            force: true,
        };
        assert!(c.request(forced).unwrap().result.is_ok());

        let bans: BansData = c
            .request(Command::Bans {
                jail: None,
                net: None,
                limit: None,
            })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(bans.bans.len(), 3);
        let sshd: BansData = c
            .request(Command::Bans {
                jail: Some("sshd".into()),
                net: None,
                limit: None,
            })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(sshd.bans.len(), 1);

        // Unban of the permanent ban.
        let u: UnbanData = c
            .request(Command::Unban {
                target: Some(target("2001:db8::/64")),
                jail: None,
                all: false,
            })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(u.removed.len(), 1);
        assert_eq!(u.removed[0].until, None);
        let again = c
            .request(Command::Unban {
                target: Some(target("2001:db8::/64")),
                jail: None,
                all: false,
            })
            .unwrap();
        assert_eq!(again.result.unwrap_err().kind, ErrorKind::NotFound);

        let rl: ReloadData = c.request(Command::Reload).unwrap().data_as().unwrap();
        assert_eq!(rl.jails, ["sshd"]);
        daemon.reload_broken.store(true, Ordering::SeqCst);
        let e = c.request(Command::Reload).unwrap().result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ReloadFailed);
        assert!(e.message.contains("maxretyr"));

        let f: FlushData = c
            .request(Command::Flush { jail: None })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(f.removed, 2);
        let status: StatusData = c
            .request(Command::Status { jail: None })
            .unwrap()
            .data_as()
            .unwrap();
        assert_eq!(status.jails[0].active_bans, 0);
        // The handler saw our real credentials.
        let peers = daemon.peers.lock().unwrap();
        assert!(
            peers
                .iter()
                .all(|p| p.uid == effective_uid() && p.pid == Some(std::process::id() as i32))
        );
    })
    .await;
    server.shutdown().await;
}

fn effective_uid() -> u32 {
    // The effective uid, read from /proc to avoid a libc dependency.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap() // effective uid
}

/// Send raw lines and read raw responses.
fn raw(path: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn read_json(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_wrong_version_lines_get_errors_and_serving_continues() {
    let server = TestServer::start(ServerConfig::default());
    let path = server.path.clone();
    blocking(move || {
        let (mut w, mut r) = raw(&path);
        w.write_all(b"this is not json\n").unwrap();
        let v = read_json(&mut r);
        assert_eq!(
            (v["ok"].as_bool(), v["error"]["kind"].as_str()),
            (Some(false), Some("bad_request"))
        );
        assert_eq!(v["v"], 1);

        // Oversized: 100 KiB without a newline for a while, then the newline.
        let big = vec![b'a'; 100 * 1024];
        w.write_all(&big).unwrap();
        w.write_all(b"\n").unwrap();
        let v = read_json(&mut r);
        assert_eq!(v["error"]["kind"], "line_too_long");

        w.write_all(b"{\"v\":2,\"id\":9,\"cmd\":\"status\"}\n")
            .unwrap();
        let v = read_json(&mut r);
        assert_eq!(
            (v["id"].as_u64(), v["error"]["kind"].as_str()),
            (Some(9), Some("unsupported_version"))
        );

        w.write_all(b"{\"v\":1,\"id\":10,\"cmd\":\"nope\"}\n")
            .unwrap();
        let v = read_json(&mut r);
        assert_eq!(
            (v["id"].as_u64(), v["error"]["kind"].as_str()),
            (Some(10), Some("bad_request"))
        );

        // Invalid UTF-8 and binary junk.
        w.write_all(b"\xff\xfe\x00{\n").unwrap();
        assert_eq!(read_json(&mut r)["error"]["kind"], "bad_request");

        // Blank lines are skipped; the same connection still serves a good request.
        w.write_all(b"\n\n{\"v\":1,\"id\":11,\"cmd\":\"status\"}\n")
            .unwrap();
        let v = read_json(&mut r);
        assert_eq!(
            (v["id"].as_u64(), v["ok"].as_bool()),
            (Some(11), Some(true))
        );

        // And a new connection works too.
        assert_serves(&path);
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_time_out_and_the_limit_answers_busy() {
    let config = ServerConfig {
        max_connections: 1,
        read_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let server = TestServer::start(config);
    let path = server.path.clone();
    blocking(move || {
        // Hold the only slot with a fresh connection (within the grace time).
        let (mut w, mut r) = raw(&path);
        let (_w2, mut r2) = raw(&path);
        let v = read_json(&mut r2);
        assert_eq!(v["error"]["kind"], "busy");
        // Half a request, then silence: the server answers `timeout` and closes.
        w.write_all(b"{\"v\":1,").unwrap();
        assert_eq!(read_json(&mut r)["error"]["kind"], "timeout");
        let mut rest = String::new();
        assert_eq!(
            r.read_line(&mut rest).unwrap(),
            0,
            "connection should be closed"
        );
        // A connection that got its answer gives its slot to a new one at once.
        let (mut w, mut r) = raw(&path);
        w.write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n")
            .unwrap();
        assert_eq!(read_json(&mut r)["ok"], true);
        assert_serves(&path);
        assert_eq!(read_json(&mut r)["error"]["kind"], "busy");
        // The slot is free again.
        assert_serves(&path);
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_closes_idle_connections() {
    let server = TestServer::start(ServerConfig::default());
    let path = server.path.clone();
    let (mut w, mut r) = raw(&path);
    w.write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n")
        .unwrap();
    let r = blocking(move || {
        assert_eq!(read_json(&mut r)["ok"], true);
        r
    })
    .await;
    server.shutdown().await;
    let mut r = r;
    let mut rest = String::new();
    assert_eq!(r.read_line(&mut rest).unwrap(), 0);
    match Client::connect(&path) {
        Err(ClientError::NotRunning { .. }) => {}
        other => panic!("expected NotRunning after shutdown, got {other:?}"),
    }
}

#[test]
fn client_says_not_running_for_missing_and_stale_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.sock");
    let e = Client::connect(&missing).unwrap_err();
    assert!(matches!(e, ClientError::NotRunning { .. }), "{e:?}");
    assert!(e.to_string().contains("not running"));
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(matches!(
        Client::connect(&stale),
        Err(ClientError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn bind_socket_is_careful() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/portcullis/control.sock");
    let listener = bind_socket(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o755);
    // A live socket is not stolen.
    assert!(matches!(
        bind_socket(&path),
        Err(BindError::AlreadyRunning { .. })
    ));
    // A stale one (listener gone, file left) is replaced.
    drop(listener);
    assert!(path.exists());
    let _listener = bind_socket(&path).unwrap();
    // A regular file is never removed.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        bind_socket(&file),
        Err(BindError::NotASocket { .. })
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// Issue 10 item 9: the socket's directory must be one nobody else can change, and a symlink
/// at the socket path is refused, not followed (`chmod` by name would follow it).
#[tokio::test]
async fn bind_socket_refuses_unsafe_directories_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for bits in [0o777, 0o1777, 0o775, 0o757] {
        let shared = dir.path().join(format!("shared{bits:o}"));
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(bits)).unwrap();
        let e = bind_socket(shared.join("control.sock")).expect_err("an unsafe directory");
        assert!(matches!(e, BindError::UnsafeDir { .. }), "{bits:o}: {e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&shared.display().to_string()) && text.contains(&format!("{bits:04o}")),
            "{text}"
        );
        assert_eq!(mode(&shared), bits, "the directory's mode was changed");
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    }
    // A directory of another user, even 0700.
    if effective_uid() == 0 {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = bind_socket(theirs.join("control.sock")).expect_err("another user's directory");
        assert!(
            matches!(e, BindError::UnsafeDir { uid: 65534, .. }),
            "{e:?}"
        );
    }
    // A symlink at the path: neither followed nor removed, its target untouched.
    let safe = dir.path().join("run");
    std::fs::create_dir(&safe).unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, b"keep").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = safe.join("control.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = bind_socket(&link).expect_err("a symlink");
    assert!(matches!(e, BindError::Symlink { .. }), "{e:?}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert_eq!(mode(&target), 0o644);
    // A dangling symlink too (bind would fail on it; it is not removed either).
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    assert!(matches!(bind_socket(&link), Err(BindError::Symlink { .. })));
    assert!(std::fs::symlink_metadata(&link).is_ok());
}

const CHILD_ENV: &str = "PORTCULLIS_CONTROL_CHILD_SOCKET";

/// Not a test on its own: the unprivileged client of the peer-credential tests.
#[test]
#[ignore = "child process of the peer-credential tests"]
fn unprivileged_client_child() {
    let path = std::env::var(CHILD_ENV).expect("run by the peer-credential tests only");
    let outcome = match Client::connect(&path)
        .and_then(|mut c| c.request(Command::Status { jail: None }))
    {
        Ok(r) if r.result.is_ok() => "ok".to_string(),
        Ok(r) => format!("error {:?}", r.result),
        Err(ClientError::PermissionDenied { detail, .. }) => format!("permission_denied {detail}"),
        Err(e) => format!("client_error {e}"),
    };
    println!("CHILD_RESULT uid={} {outcome}", effective_uid());
}

/// Root and `setpriv`, which the peer-credential tests need to run a client as uid 65534:
/// skipped loudly without them, a failure under `CI=true`.
fn can_run_as_nobody() -> bool {
    portcullis_testkit::require_root_and(&["setpriv"])
}

/// The child test `unprivileged_client_child` run as nobody (65534) against `path`.
fn child_as_nobody(path: &Path) -> std::process::Output {
    Process::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unprivileged_client_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .output()
        .expect("run setpriv")
}

/// Run the child test as nobody (65534) against `path`; returns its CHILD_RESULT line.
fn run_as_nobody(path: &Path) -> Option<String> {
    if !can_run_as_nobody() {
        return None;
    }
    // The socket must be reachable by nobody so that the daemon's own check is what refuses.
    let dir = path.parent().unwrap();
    for d in [dir, dir.parent().unwrap()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = child_as_nobody(path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints "test name ... " before the child's own output on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("CHILD_RESULT").map(|i| &l[i..]));
    assert!(
        line.is_some(),
        "child gave no result: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    line.map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_peer_is_refused() {
    let server = TestServer::start(ServerConfig::default());
    let path = server.path.clone();
    if let Some(line) = blocking(move || run_as_nobody(&path)).await {
        assert!(
            line.starts_with("CHILD_RESULT uid=65534 permission_denied"),
            "{line}"
        );
        assert!(line.contains("uid 65534 is not allowed"), "{line}");
        // The refused peer never reached the handler.
        assert!(server.daemon.peers.lock().unwrap().is_empty());
        // And root still gets served afterwards.
        let path = server.path.clone();
        blocking(move || {
            assert_serves(&path);
        })
        .await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_non_root_uid_is_served() {
    let config = ServerConfig {
        access: AccessPolicy {
            uids: vec![0, 65534],
            gids: vec![],
        },
        ..Default::default()
    };
    let server = TestServer::start(config);
    let path = server.path.clone();
    if let Some(line) = blocking(move || run_as_nobody(&path)).await {
        assert_eq!(line, "CHILD_RESULT uid=65534 ok");
        assert_eq!(server.daemon.peers.lock().unwrap()[0].uid, 65534);
    }
    server.shutdown().await;
}

#[test]
fn the_0600_socket_itself_keeps_others_out() {
    // Without loosening the mode, nobody cannot even connect: the client reports it clearly.
    if !can_run_as_nobody() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("control.sock");
    let _listener = rt.block_on(async { bind_socket(&path) }).unwrap();
    let out = child_as_nobody(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CHILD_RESULT uid=65534 permission_denied"),
        "{stdout}"
    );
}

#[test]
fn client_times_out_and_rejects_garbage_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let fake = std::thread::spawn(move || {
        // First connection: read the request, never answer, hold it open.
        let (silent, _) = listener.accept().unwrap();
        // Second: answer with something that is not a response.
        let (mut garbage, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(garbage.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        garbage.write_all(b"{\"hello\":\"world\"}\n").unwrap();
        // Third: answer a different id.
        let (mut wrong, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(wrong.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        wrong
            .write_all(b"{\"v\":1,\"id\":99,\"ok\":true,\"data\":null}\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(silent);
    });
    let mut c = Client::connect_with_timeout(&path, Duration::from_millis(200)).unwrap();
    let e = c.request(Command::Reload).unwrap_err();
    assert!(matches!(e, ClientError::Timeout(_)), "{e:?}");
    let mut c = Client::connect(&path).unwrap();
    let e = c.request(Command::Reload).unwrap_err();
    assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    let mut c = Client::connect(&path).unwrap();
    let e = c.request(Command::Reload).unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol(ref m) if m.contains("99")),
        "{e:?}"
    );
    fake.join().unwrap();
}

/// Every slot taken by connections that keep the server waiting (one idle, one with half a
/// request): past the grace time a new client gets the slot of the one that waited longest,
/// which is told `busy` and closed; nothing queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_give_their_slots_to_new_ones() {
    let config = ServerConfig {
        max_connections: 2,
        client_grace: Duration::from_millis(200),
        ..Default::default()
    };
    let server = TestServer::start(config);
    let path = server.path.clone();
    blocking(move || {
        let (_idle, mut idle_r) = raw(&path);
        std::thread::sleep(Duration::from_millis(50));
        let (mut half, mut half_r) = raw(&path);
        half.write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"sta").unwrap();
        // Within the grace time the stalled ones keep their slots: busy at once.
        let (_w, mut r) = raw(&path);
        assert_eq!(read_json(&mut r)["error"]["kind"], "busy");
        std::thread::sleep(Duration::from_millis(300));
        // Past it, a new client is served; the oldest stalled connection made room.
        let (mut w, mut r) = raw(&path);
        w.write_all(b"{\"v\":1,\"id\":7,\"cmd\":\"status\"}\n")
            .unwrap();
        let v = read_json(&mut r);
        assert_eq!((v["id"].as_u64(), v["ok"].as_bool()), (Some(7), Some(true)));
        let v = read_json(&mut idle_r);
        assert_eq!(v["error"]["kind"], "busy", "{v}");
        let mut rest = String::new();
        assert_eq!(idle_r.read_line(&mut rest).unwrap(), 0, "closed");
        // The next one takes the slot of the client that had its answer (it had its turn),
        // before that of the half request.
        assert_serves(&path);
        let v = read_json(&mut r);
        assert_eq!(v["error"]["kind"], "busy", "{v}");
        half_r
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut rest = String::new();
        assert!(half_r.read_line(&mut rest).is_err(), "still open: {rest:?}");
        drop(half);
    })
    .await;
    server.shutdown().await;
}

/// A connection whose request the daemon is working on keeps its slot, however long that
/// takes: the new client is refused `busy`, and the CLI's client retries until it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_the_daemon_keep_their_slots_and_the_client_retries_busy() {
    let config = ServerConfig {
        max_connections: 1,
        client_grace: Duration::from_millis(50),
        ..Default::default()
    };
    let server = TestServer::start(config);
    server.daemon.delay_ms.store(800, Ordering::Relaxed);
    let path = server.path.clone();
    blocking(move || {
        let (mut w, mut r) = raw(&path);
        w.write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let (_w2, mut r2) = raw(&path);
        assert_eq!(read_json(&mut r2)["error"]["kind"], "busy");
        // The client is refused too, and tries again until the slot is free.
        let t0 = Instant::now();
        let mut c = Client::connect(&path).unwrap();
        let reply = c.request(Command::Status { jail: None }).unwrap();
        assert!(reply.result.is_ok(), "{:?}", reply.result);
        assert!(
            t0.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t0.elapsed()
        );
        // The first request was answered, not dropped.
        assert_eq!(read_json(&mut r)["ok"], true);
    })
    .await;
    server.shutdown().await;
}

/// An answer the client never reads (a `bans` list far larger than a socket buffer) is
/// given up after the write timeout: the connection is closed and its slot free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_nobody_reads_is_given_up_after_the_write_timeout() {
    let config = ServerConfig {
        max_connections: 1,
        // No eviction here: only the write timeout can free the slot.
        client_grace: Duration::from_secs(3600),
        write_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let server = TestServer::start(config);
    {
        let mut bans = server.daemon.bans.lock().unwrap();
        for i in 0..20_000u32 {
            bans.push(BanEntry {
                target: target(&format!("2001:db8::{i:x}")),
                jail: "sshd".into(),
                since: 0,
                until: None,
                ban_no: 1,
                reason: "manual".into(),
                origin: None,
            });
        }
    }
    let path = server.path.clone();
    blocking(move || {
        let (mut w, _never_read) = raw(&path);
        w.write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"bans\"}\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (_w2, mut r2) = raw(&path);
        assert_eq!(read_json(&mut r2)["error"]["kind"], "busy", "slot held");
        std::thread::sleep(Duration::from_millis(500));
        assert_serves(&path);
    })
    .await;
    server.shutdown().await;
}
