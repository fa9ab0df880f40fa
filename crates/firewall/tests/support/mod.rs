//! The firewall tests' lab, on the shared namespace fixtures of `portcullis-testkit`: a
//! "server" and an "attacker" namespace joined by a veth pair, a TCP listener in the server,
//! connection probes from the attacker. Everything is removed on drop, also when a test panics.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
#![allow(dead_code)]

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_firewall::FirewallConfig;
pub use portcullis_testkit::{ATTACKER4, ATTACKER6, Listener, Netns, Pair, SERVER4, SERVER6};

pub const PORT: u16 = 8022;

/// Whether this machine can run the namespace tests (root, `ip` and `tools`). Prints a loud
/// message when not; panics instead when `CI=true`, so CI never silently skips.
pub fn can_run(tools: &[&str]) -> bool {
    let mut all = vec!["ip"];
    all.extend_from_slice(tools);
    portcullis_testkit::require_root_and(&all)
}

/// A firewall configuration managing the namespace `ns`: the tools run there through
/// `ip netns exec`, the netlink socket is opened there.
pub fn config(ns: &Netns) -> FirewallConfig {
    FirewallConfig {
        command_prefix: vec!["ip".into(), "netns".into(), "exec".into(), ns.name.clone()],
        netns: Some(format!("/run/netns/{}", ns.name).into()),
        ..FirewallConfig::default()
    }
}

/// A [`Pair`] with pinned neighbours and a listener on the server's v4 and v6 addresses.
pub struct Lab {
    pub pair: Pair,
    _listeners: Vec<Listener>,
}

impl Lab {
    pub fn new() -> Lab {
        let pair = Pair::new();
        pair.pin_neighbours();
        let listeners = [SERVER4, SERVER6]
            .iter()
            .map(|ip| {
                pair.server
                    .listen(SocketAddr::new(ip.parse().unwrap(), PORT))
            })
            .collect();
        let lab = Lab {
            pair,
            _listeners: listeners,
        };
        // The link needs a moment to come up; wait until both families connect.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(lab.connects(SERVER4) && lab.connects(SERVER6)) {
            assert!(Instant::now() < deadline, "lab network never came up");
            thread::sleep(Duration::from_millis(50));
        }
        lab
    }

    /// Whether the attacker can open a TCP connection to `server_ip` within 500 ms.
    pub fn connects(&self, server_ip: &str) -> bool {
        self.connect(server_ip).is_ok()
    }

    /// The attacker's TCP connect to the server (500 ms timeout).
    pub fn connect(&self, server_ip: &str) -> std::io::Result<()> {
        self.connect_within(server_ip, Duration::from_millis(500))
    }

    /// The attacker's TCP connect to the server with a chosen timeout.
    pub fn connect_within(&self, server_ip: &str, timeout: Duration) -> std::io::Result<()> {
        let addr = SocketAddr::new(server_ip.parse().unwrap(), PORT);
        self.pair.attacker.connect(addr, timeout)
    }

    /// Poll until the attacker connects again; returns how long it took, or `None` if it
    /// did not within `limit`.
    pub fn wait_until_connects(&self, server_ip: &str, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.connects(server_ip) {
                return Some(start.elapsed());
            }
            thread::sleep(Duration::from_millis(100));
        }
        None
    }
}
