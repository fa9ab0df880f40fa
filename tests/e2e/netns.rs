//! Network namespaces joined by a veth pair, removed on `Drop`.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::run;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pc{}-{}-{}", std::process::id() % 100_000, role, n);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run argv inside the namespace; panic on failure; return stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        run(&mut c)
    }

    /// Run argv inside the namespace; return whether it succeeded (output discarded).
    pub fn exec_status(&self, argv: &[&str]) -> bool {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then delete the namespace.
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

/// A server and an attacker namespace joined by veth:
/// server 192.0.2.1/24 + 2001:db8::1/64, attacker 192.0.2.2/24 + 2001:db8::2/64.
pub struct Pair {
    pub server: Netns,
    pub attacker: Netns,
}

pub const SERVER4: &str = "192.0.2.1";
pub const ATTACKER4: &str = "192.0.2.2";
pub const SERVER6: &str = "2001:db8::1";
pub const ATTACKER6: &str = "2001:db8::2";

impl Pair {
    pub fn new() -> Pair {
        let server = Netns::new("srv");
        let attacker = Netns::new("atk");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let a = format!("pcv{}a{}", std::process::id() % 10_000, n);
        let b = format!("pcv{}b{}", std::process::id() % 10_000, n);
        run(Command::new("ip").args([
            "link",
            "add",
            &a,
            "netns",
            &server.name,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &attacker.name,
        ]));
        for (ns, dev, v4, v6) in [
            (&server, &a, SERVER4, SERVER6),
            (&attacker, &b, ATTACKER4, ATTACKER6),
        ] {
            ns.exec_ok(&["ip", "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ns.exec_ok(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ns.exec_ok(&["ip", "link", "set", dev, "up"]);
        }
        Pair { server, attacker }
    }

    /// Whether a TCP connection from the attacker to `addr:port` succeeds within `secs`.
    pub fn attacker_can_connect(&self, addr: &str, port: u16, secs: u32) -> bool {
        let code = format!(
            "import socket,sys\ns=socket.create_connection(('{addr}',{port}),timeout={secs})\ns.close()"
        );
        self.attacker.exec_status(&["python3", "-c", &code])
    }
}
