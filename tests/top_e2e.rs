//! `portcullis top` in a real terminal (issue 14): the dashboard runs in a detached 80×24
//! tmux session against a real daemon whose sshd is attacked by sshpass from the attacker
//! namespace; the test reads the screen with `capture-pane` and types with `send-keys`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::daemon::{Daemon, bin};
use crate::e2e::netns::{ATTACKER4, ATTACKER6, SERVER4, SERVER6};
use crate::e2e::sshd::{SshdLab, password_attempt};

/// A private tmux server (its own socket name, never the user's) with one 80×24 session;
/// killed on drop, also when the test fails.
struct Tmux {
    server: String,
}

impl Tmux {
    /// Start `command` (run by tmux's shell) in a detached 80×24 session named `name`.
    fn start(name: &str, command: &str) -> Tmux {
        let server = format!("portcullis-top-{}-{name}", std::process::id());
        let tmux = Tmux { server };
        let out = tmux
            .cmd()
            .args(["new-session", "-d", "-s", name, "-x", "80", "-y", "24"])
            .arg(command)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        // No user configuration: the size and the terminal type are the test's.
        c.args(["-L", &self.server, "-f", "/dev/null"]);
        c
    }

    /// The screen as text; with `escapes`, with the SGR sequences tmux would draw.
    fn capture(&self, escapes: bool) -> String {
        let mut c = self.cmd();
        c.args(["capture-pane", "-p"]);
        if escapes {
            c.arg("-e");
        }
        let out = c.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let out = self
            .cmd()
            .arg("send-keys")
            .args(keys)
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success(), "send-keys {keys:?}");
    }

    /// Wait until the screen satisfies `cond`; panic with the last screen and `what`.
    fn wait_for(&self, what: &str, secs: u64, cond: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        let mut screen = String::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            screen = self.capture(false);
            if cond(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; the screen:\n{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// The line of `screen` that shows `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

/// SGR sequences that set a colour (30-38, 40-48, 90-107), anywhere in `text`. 39 and 49
/// (back to the terminal's default colours) set none; tmux writes them after every reset.
fn colour_codes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for seq in text.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if !params.bytes().all(|b| b.is_ascii_digit() || b == b';') {
            continue;
        }
        let colour = params
            .split(';')
            .any(|p| matches!(p.parse::<u32>(), Ok(30..=38 | 40..=48 | 90..=107)));
        if colour {
            found.push(format!("ESC[{params}m"));
        }
    }
    found
}

fn top_command(socket: &Path, no_colour: bool) -> String {
    // The shell stays after top exits, so its exit status (and any error) can be read.
    format!(
        "{}TERM=xterm-256color {} top --socket {}; echo \"top exited $?\"; sleep 60",
        if no_colour { "NO_COLOR=1 " } else { "" },
        bin().display(),
        socket.display()
    )
}

#[test]
fn top_shows_the_attack_and_a_breach_unbans_with_u_and_refuses_allowlisted_bans_without_colour() {
    let Some(SshdLab { sshd, pair, tmp }) =
        SshdLab::start(&["nft", "sshpass", "ssh", "tmux", "setpriv"], false)
    else {
        return;
    };
    let config = format!(
        "[jail.sshd]\nsources = [{{ file = \"{}\" }}]\nfindtime = \"10m\"\nmaxretry = 3\n\
         bantime = \"1h\"\nbreach_after = 2\nallowlist = [\"{ATTACKER6}\"]\n",
        sshd.log.display()
    );
    let daemon = Daemon::start(&pair.server, &tmp.path().join("pc"), &config);
    daemon.wait_for("the control socket", 20, |d| d.socket.exists());
    // The socket is root's: a non-root top is refused like `status` (exit 4), before it
    // takes the terminal.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["top", "--socket"])
        .arg(&daemon.socket)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv");
    assert_eq!(
        out.status.code(),
        Some(4),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tmux = Tmux::start("top", &top_command(&daemon.socket, true));
    tmux.wait_for("the dashboard", 20, |s| s.contains("portcullis top"));

    // Two failures: the attacker is in the failing pane with 2 of 3 attempts.
    for _ in 0..2 {
        assert!(password_attempt(&pair.attacker, SERVER4, "root", "wrong"));
    }
    let screen = tmux.wait_for("the attacker failing", 30, |s| {
        line_with(s, ATTACKER4).is_some_and(|l| l.contains("2.0/3.0"))
    });
    assert!(screen.contains("attempts/s"), "{screen}");
    // The source: healthy, read to its end, named by its path (its tail, when long).
    let source = line_with(&screen, "lines lag").unwrap_or_default();
    assert!(
        source.contains(" ok ") && source.contains("lag 0B") && source.contains("sshd/auth.log"),
        "{screen}"
    );
    assert!(screen.contains("sources (1)"), "{screen}");

    // A root login with the key after those failures: a breach alert on the screen.
    let login = sshd
        .key_client(&pair.attacker)
        .arg(format!("root@{SERVER4}"))
        .arg("true")
        .stdin(std::process::Stdio::null())
        .status()
        .expect("ssh");
    assert!(login.success(), "key login failed:\n{}", sshd.log_text());
    let screen = tmux.wait_for("the breach alert", 30, |s| {
        line_with(s, &format!("breach {ATTACKER4} as root after 2 failures")).is_some()
    });
    assert!(!screen.contains("breach alerts (0)"), "{screen}");

    // Until it is refused: it moves to the bans pane, with its time left.
    let t0 = Instant::now();
    while password_attempt(&pair.attacker, SERVER4, "root", "wrong") {
        assert!(t0.elapsed() < Duration::from_secs(60), "never banned");
    }
    let screen = tmux.wait_for("the attacker banned", 30, |s| {
        line_with(s, ATTACKER4).is_some_and(|l| l.contains("threshold") && l.contains("59m"))
    });
    assert!(screen.contains("1 active"), "{screen}");

    // No colour anywhere with NO_COLOR (reverse video and bold are allowed).
    let raw = tmux.capture(true);
    assert_eq!(colour_codes(&raw), Vec::<String>::new(), "{raw:?}");

    // Tab to the bans pane (its only row is selected), u: the daemon lifts it.
    tmux.keys(&["Tab"]);
    tmux.wait_for("the bans pane focused", 10, |s| {
        s.contains("[bans, newest first")
    });
    tmux.keys(&["u"]);
    tmux.wait_for("the unban reported", 20, |s| {
        s.contains(&format!("unbanned {ATTACKER4} (sshd)"))
    });
    // It stays listed below the active bans as lifted (recent bans).
    tmux.wait_for("the lifted ban listed", 10, |s| {
        s.lines()
            .any(|l| l.contains(ATTACKER4) && l.contains("lifted"))
            && s.contains("(0 active, 1 ended)")
    });
    daemon.wait_for("the ban gone from bans --json", 10, |d| {
        !d.bans().iter().any(|b| b["target"] == ATTACKER4)
    });
    assert!(
        pair.attacker_connects(SERVER4, 22, Duration::from_secs(2)),
        "the attacker should reach sshd again"
    );

    // An allowlisted attacker: counted, listed, and `b` + `y` is refused by the daemon's
    // allowlist rule (top never forces).
    for _ in 0..2 {
        assert!(password_attempt(&pair.attacker, SERVER6, "root", "wrong"));
    }
    tmux.keys(&["Tab"]);
    tmux.wait_for("the allowlisted attacker failing", 30, |s| {
        line_with(s, ATTACKER6).is_some_and(|l| l.contains("2.0/3.0")) && s.contains("[failing")
    });
    // Select it (the IPv4 attacker's window still holds its failures too).
    let screen = tmux.capture(false);
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("address"))
        .skip(1)
        .take_while(|l| !l.contains('─'))
        .collect();
    let row = rows
        .iter()
        .position(|l| l.contains(ATTACKER6))
        .unwrap_or_else(|| panic!("{ATTACKER6} not in the failing pane:\n{screen}"));
    for _ in 0..row {
        tmux.keys(&["j"]);
    }
    tmux.wait_for("the allowlisted attacker selected", 10, |s| {
        s.contains(&format!(">{ATTACKER6}"))
    });
    tmux.keys(&["b"]);
    tmux.wait_for("the confirmation", 10, |s| {
        s.contains(&format!("ban {ATTACKER6}? y to confirm"))
    });
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the refusal", 20, |s| s.contains("refused:"));
    let status = line_with(&screen, "refused:").unwrap_or_default();
    assert!(status.contains("allowlist"), "{status}");
    assert!(
        !daemon.bans().iter().any(|b| b["target"] == ATTACKER6),
        "an allowlisted address was banned"
    );

    // q quits, with status 0 and the terminal given back.
    tmux.keys(&["q"]);
    tmux.wait_for("top to quit", 10, |s| s.contains("top exited 0"));

    // The same dashboard without NO_COLOR does draw colour: the check above can fail.
    let coloured = Tmux::start("colour", &top_command(&daemon.socket, false));
    coloured.wait_for("the coloured dashboard", 20, |s| {
        s.contains("portcullis top")
    });
    std::thread::sleep(Duration::from_millis(500));
    let raw = coloured.capture(true);
    assert!(
        !colour_codes(&raw).is_empty(),
        "no colour without NO_COLOR: {raw:?}"
    );
}
