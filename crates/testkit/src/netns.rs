//! Network namespaces joined by veth pairs, removed on `Drop` (also when a test panics).
//!
//! The veth ends are created directly inside their namespaces, so the host never sees them
//! and nothing here touches the host's own network or ruleset.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use crate::run;

/// The server end of a [`Pair`] (IPv4).
pub const SERVER4: &str = "192.0.2.1";
/// The attacker end of a [`Pair`] (IPv4).
pub const ATTACKER4: &str = "192.0.2.2";
/// The server end of a [`Pair`] (IPv6).
pub const SERVER6: &str = "2001:db8::1";
/// The attacker end of a [`Pair`] (IPv6).
pub const ATTACKER6: &str = "2001:db8::2";

/// Makes namespace names unique within this process (the pid makes them unique across
/// processes: test binaries run in parallel).
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One named network namespace (`ip netns add`) with its loopback up. On drop, whatever
/// still runs inside is killed and the namespace deleted.
pub struct Netns {
    /// The name under `/run/netns`.
    pub name: String,
}

impl Netns {
    /// A new namespace; `role` goes into its name, for whoever lists them while a test runs.
    pub fn new(role: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pc{}-{role}{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run `argv` inside the namespace; panic on failure; return its stdout.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        run(&mut c)
    }

    /// Run `argv` inside the namespace; return whether it succeeded (output discarded).
    pub fn exec_succeeds(&self, argv: &[&str]) -> bool {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().is_ok_and(|s| s.success())
    }

    /// Run `f` on a thread of this process that has entered this namespace.
    pub fn run_inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// A veth pair: `dev` in this namespace, `peer_dev` in `peer` (both down, no address).
    pub fn veth(&self, dev: &str, peer: &Netns, peer_dev: &str) {
        run(Command::new("ip").args([
            "link", "add", dev, "netns", &self.name, "type", "veth", "peer", "name", peer_dev,
            "netns", &peer.name,
        ]));
    }

    /// Accept (and drop) TCP connections on `addr` inside this namespace until the returned
    /// guard is dropped.
    pub fn listen(&self, addr: SocketAddr) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = self.path();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            enter(&path);
            let listener = TcpListener::bind(addr).expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => drop(conn),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listener did not start");
        Listener { stop }
    }

    /// A TCP connect from inside this namespace to `addr` within `timeout` (closed at once).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
        self.run_inside(move || TcpStream::connect_timeout(&addr, timeout).map(drop))
    }

    /// A TCP connect from inside this namespace to `dst`, from the local address `src`
    /// (one of several the namespace has), within `timeout` (closed at once).
    pub fn connect_from(
        &self,
        src: IpAddr,
        dst: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<()> {
        self.run_inside(move || {
            use rustix::net::{AddressFamily, SocketType, bind, connect, socket, sockopt};
            let family = if dst.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let fd = socket(family, SocketType::STREAM, None)?;
            // Linux applies the send timeout to a blocking connect.
            sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(timeout))?;
            bind(&fd, &SocketAddr::new(src, 0))?;
            connect(&fd, &dst)?;
            Ok(())
        })
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

/// Move the calling thread into the network namespace at `path`.
fn enter(path: &str) {
    let fd = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rustix::thread::move_into_link_name_space(
        fd.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns");
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside (sshd, the daemon), then delete the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A TCP listener on a thread inside a namespace ([`Netns::listen`]); stops on drop.
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A server and an attacker namespace joined by a veth pair ([`Pair::DEV`] on both sides):
/// server [`SERVER4`]/24 and [`SERVER6`]/64, attacker [`ATTACKER4`]/24 and [`ATTACKER6`]/64.
pub struct Pair {
    /// The namespace of the protected host.
    pub server: Netns,
    /// The namespace the attacks come from.
    pub attacker: Netns,
}

impl Pair {
    /// The veth device's name in both namespaces.
    pub const DEV: &str = "v0";

    /// Both namespaces, the link up, the addresses assigned (IPv6 without duplicate address
    /// detection, so they are usable at once).
    pub fn new() -> Pair {
        let server = Netns::new("srv");
        let attacker = Netns::new("atk");
        server.veth(Pair::DEV, &attacker, Pair::DEV);
        for (ns, v4, v6) in [
            (&server, SERVER4, SERVER6),
            (&attacker, ATTACKER4, ATTACKER6),
        ] {
            ns.exec(&["ip", "addr", "add", &format!("{v4}/24"), "dev", Pair::DEV]);
            ns.exec(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                Pair::DEV,
                "nodad",
            ]);
            ns.exec(&["ip", "link", "set", Pair::DEV, "up"]);
        }
        Pair { server, attacker }
    }

    /// Static neighbour entries on both sides. A banned on-link IPv6 peer's neighbour
    /// advertisements are filtered too, so neighbour discovery would fail and hide the
    /// firewall's verdict (remote attackers reach a real server through a router, whose
    /// link-local address is never banned).
    pub fn pin_neighbours(&self) {
        let mac = |ns: &Netns| {
            let out = ns.exec(&["cat", &format!("/sys/class/net/{}/address", Pair::DEV)]);
            out.trim().to_owned()
        };
        let (server_mac, attacker_mac) = (mac(&self.server), mac(&self.attacker));
        for (ns, peer4, peer6, peer_mac) in [
            (&self.server, ATTACKER4, ATTACKER6, &attacker_mac),
            (&self.attacker, SERVER4, SERVER6, &server_mac),
        ] {
            for peer in [peer4, peer6] {
                ns.exec(&[
                    "ip",
                    "neigh",
                    "replace",
                    peer,
                    "lladdr",
                    peer_mac,
                    "dev",
                    Pair::DEV,
                    "nud",
                    "permanent",
                ]);
            }
        }
    }

    /// Whether a TCP connection from the attacker to `addr:port` succeeds within `timeout`.
    pub fn attacker_connects(&self, addr: &str, port: u16, timeout: Duration) -> bool {
        let ip: IpAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{addr:?} is no address: {e}"));
        self.attacker
            .connect(SocketAddr::new(ip, port), timeout)
            .is_ok()
    }
}

impl Default for Pair {
    fn default() -> Pair {
        Pair::new()
    }
}
