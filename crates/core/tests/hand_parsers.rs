//! The hand-written sshd parsers (`filter::hand`) give exactly what their rule's regex gives.
//!
//! For every built-in rule with a hand parser: on generated lines of every hot form with
//! hostile user names (spaces, `from ADDR port N ssh2`, `[preauth]`, addresses, newlines,
//! unicode, overlong), on every message of the sshd inventory and on every line of Fail2Ban's
//! sshd test logs (read from the installed package), the rule's answer (hand parser, fast
//! path or regex) equals the regex's alone: match or not, and every group's span. A parser
//! that says "no match" must be right; one that says "don't know" lets the regex decide.

use portcullis_core::Time;
use portcullis_core::date::DateParser;
use portcullis_core::filter::hand::{Form, Parsed};
use portcullis_core::filter::{self, Captures, Filter, Pattern, header};
use proptest::prelude::*;

fn sshd() -> Filter {
    Filter::from_toml(
        filter::builtin("sshd").expect("builtin sshd"),
        "builtin:sshd",
    )
    .expect("compiles")
}

/// The built-in sshd filter, and the same with its patterns alone.
fn filters() -> &'static (Filter, Filter) {
    static FILTERS: std::sync::OnceLock<(Filter, Filter)> = std::sync::OnceLock::new();
    FILTERS.get_or_init(|| (sshd(), sshd().without_hand_parsers()))
}

/// The filter's answer on `message` (cut or not) equals the one of its patterns alone; every
/// rule's pattern (fast path or regex) equals its regex alone; every hand parser that is sure
/// is right. Returns how many hand parsers answered for sure (match or no match).
fn agree(message: &str) -> usize {
    let (with, without) = filters();
    for cut in [false, true] {
        let Ok(mut a) = with.new_scratch();
        let Ok(mut b) = without.new_scratch();
        let Ok(got) = with.match_message(message, cut, &mut a);
        let Ok(want) = without.match_message(message, cut, &mut b);
        assert_eq!(
            got, want,
            "filter on {message:?} (cut {cut}): hand parsers change the answer"
        );
    }
    let mut sure = 0;
    for r in with.rules() {
        let id = &r.id;
        let p = &r.pattern;
        let want = p.regex_captures(message);
        let Ok(mut caps) = p.new_captures();
        let Ok(found) = p.captures_at(message, 0, &mut caps);
        let got = found.then(|| {
            (0..want.as_ref().map_or(0, Vec::len))
                .map(|i| caps.get(i))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            found,
            want.is_some(),
            "rule {id} on {message:?}: fast path and regex differ"
        );
        if found {
            assert_eq!(
                got, want,
                "rule {id} on {message:?}: fast path spans differ"
            );
        }
        match r.hand_parser().map(|f| f.parse(message)) {
            Some(Parsed::Match(s)) => {
                sure += 1;
                let w = want.as_ref().unwrap_or_else(|| {
                    panic!("rule {id}: hand parser matched {message:?}, the regex does not")
                });
                let idx = |n: &str| p.capture_index(n).and_then(|i| w[i]);
                assert_eq!(Some(s.host), idx("host"), "rule {id} host on {message:?}");
                assert_eq!(s.user, idx("user"), "rule {id} user on {message:?}");
                assert_eq!(s.method, idx("method"), "rule {id} method on {message:?}");
            }
            Some(Parsed::NoMatch) => {
                sure += 1;
                assert!(
                    want.is_none(),
                    "rule {id}: hand parser said no match on {message:?}, the regex matches"
                );
            }
            Some(Parsed::Unknown) | None => {}
        }
    }
    sure
}

/// How many built-in rules carry a hand parser.
fn hand_rules() -> usize {
    filters()
        .0
        .rules()
        .iter()
        .filter(|r| r.hand_parser().is_some())
        .count()
}

#[test]
fn every_hand_form_is_attached_to_a_builtin_rule() {
    let toml = filter::builtin("sshd").expect("builtin");
    for src in Form::sources() {
        assert!(
            toml.contains(&format!("regex = '{src}'")),
            "hand parser written for {src:?}, which is no longer a built-in sshd rule"
        );
    }
    assert_eq!(hand_rules(), Form::sources().count());
}

/// Ordinary lines of each hot form: the hand parser answers them itself (no regex).
#[test]
fn ordinary_hot_lines_are_parsed_by_hand() {
    let rules = filters().0.rules();
    let lines = [
        "Failed password for root from 198.51.100.7 port 52144 ssh2",
        "Failed password for invalid user admin from 2001:db8::5 port 22 ssh2",
        "Failed keyboard-interactive/pam for invalid user oracle from 203.0.113.9 port 1 ssh2",
        "Failed publickey for git from 192.0.2.1 port 3 ssh2",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::1",
        "Invalid user oracle from 198.51.100.7 port 4242",
        "Invalid user oracle from 198.51.100.7",
        "Connection closed by invalid user oracle 198.51.100.7 port 4242 [preauth]",
        "Connection reset by authenticating user root 2001:db8::9 port 4242 [preauth]",
        "Connection closed by 198.51.100.7 port 4242 [preauth]",
        "Connection closed by 198.51.100.7 [preauth]",
        "Disconnected from invalid user x 198.51.100.7 port 4242 [preauth]",
        "Disconnected from 198.51.100.7 port 4242 [preauth]",
        "error: PAM: Authentication failure for root from 198.51.100.7",
        "PAM: Authentication failure for illegal user oracle from 2001:db8::5",
        "error: maximum authentication attempts exceeded for root from 198.51.100.7 port 4242 ssh2 [preauth]",
        "maximum authentication attempts exceeded for invalid user x from 2001:db8::9 port 1 ssh2",
    ];
    for l in lines {
        let by_hand = rules
            .iter()
            .any(|r| matches!(r.hand_parser().map(|f| f.parse(l)), Some(Parsed::Match(_))));
        assert!(by_hand, "no hand parser took {l:?}");
        agree(l);
    }
}

#[test]
fn every_inventory_message_agrees() {
    #[derive(serde::Deserialize)]
    struct Inventory {
        entry: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        message: String,
    }
    let inv: Inventory =
        toml::from_str(include_str!("sshd_inventory.toml")).expect("inventory parses");
    let mut sure = 0;
    for e in &inv.entry {
        sure += agree(&e.message);
    }
    assert!(
        sure > inv.entry.len(),
        "hand parsers answered only {sure} times"
    );
}

#[test]
fn every_fail2ban_sample_line_agrees() {
    let dir = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
    let files = ["sshd", "sshd-journal", "zzz-sshd-obsolete-multiline"];
    if !std::path::Path::new(dir).join("sshd").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{dir}/sshd missing (install fail2ban)"
        );
        eprintln!("SKIPPED: {dir}/sshd missing (install fail2ban)");
        return;
    }
    let mut dates = DateParser::new(jiff::tz::TimeZone::UTC);
    let mut messages = 0;
    for f in files {
        let Ok(text) = std::fs::read(format!("{dir}/{f}")) else {
            continue;
        };
        for line in text.split(|&b| b == b'\n') {
            let s = String::from_utf8_lossy(line);
            // The whole line, and the message after its header (what rules see).
            agree(&s);
            let (_, h) = header::split_line(&mut dates, line, Time::from_secs(1_795_597_200));
            if let Some(h) = h {
                let msg = String::from_utf8_lossy(h.message);
                agree(&msg);
                if let Some(inner) = msg
                    .strip_prefix("message repeated ")
                    .and_then(|r| r.split_once(": [ "))
                    .and_then(|(_, r)| r.strip_suffix(']'))
                {
                    agree(inner);
                }
                messages += 1;
            }
        }
    }
    assert!(messages >= 100, "only {messages} messages read from {dir}");
}

/// What an attacker puts in a user name: sshd's own text, addresses, the other forms'
/// tails, whitespace, newlines, unicode, nothing.
fn hostile_user() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("root".to_string()),
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("from".to_string()),
        Just(" from ".to_string()),
        Just("port".to_string()),
        Just(" port ".to_string()),
        Just(" port 22".to_string()),
        Just(" ssh2".to_string()),
        Just(" [preauth]".to_string()),
        Just("invalid user ".to_string()),
        Just("authenticating user ".to_string()),
        Just("user=".to_string()),
        Just(" rhost=".to_string()),
        Just("6.6.6.6".to_string()),
        Just("2001:db8::66".to_string()),
        Just("fe80::1%eth0".to_string()),
        Just("1.2.3".to_string()),
        Just(":".to_string()),
        Just("%".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("é✓\u{202e}".to_string()),
        Just("ssh2: RSA SHA256:abc".to_string()),
        "[0-9]{1,5}".prop_map(|s| s),
        "[a-z]{1,8}".prop_map(|s| s),
        "\\PC{0,6}".prop_map(|s| s),
        ".{300,700}".prop_map(|s| s),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn addr() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("198.51.100.7".to_string()),
        Just("2001:db8::5".to_string()),
        Just("::ffff:192.0.2.1".to_string()),
        Just("fe80::1%eth0".to_string()),
        Just("1.2.3".to_string()),
        Just("host.example".to_string()),
        Just("".to_string()),
        "[0-9.:a-f]{1,12}".prop_map(|s| s),
    ]
}

/// A line of one hot form (or a near miss of it) around `user` and `addr`.
fn hot_line(form: usize, user: &str, addr: &str, port: &str, tail: &str) -> String {
    match form % 16 {
        12 => format!("error: PAM: Authentication failure for {user} from {addr}{tail}"),
        13 => format!("PAM: Authentication failure for illegal user {user} from {addr}{tail}"),
        14 => format!(
            "error: maximum authentication attempts exceeded for {user} from {addr} port {port}{tail}"
        ),
        15 => format!(
            "maximum authentication attempts exceeded for invalid user {user} from {addr} port {port}{tail}"
        ),
        0 => format!("Failed password for {user} from {addr} port {port}{tail}"),
        1 => format!("Failed password for invalid user {user} from {addr} port {port}{tail}"),
        2 => format!("Failed keyboard-interactive/pam for {user} from {addr} port {port}{tail}"),
        3 => format!("Failed publickey for {user} from {addr} port {port}{tail}"),
        4 => format!(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={addr}{tail}  user={user}"
        ),
        5 => format!(
            "pam_sss(sshd:auth): authentication failure; logname={user} uid=0 euid=0 tty=ssh ruser= rhost={addr}{tail}"
        ),
        6 => format!("Invalid user {user} from {addr} port {port}{tail}"),
        7 => format!("Invalid user {user} from {addr}{tail}"),
        8 => format!("Connection closed by invalid user {user} {addr} port {port}{tail}"),
        9 => format!("Connection reset by {addr} port {port}{tail}"),
        10 => format!("Disconnected from authenticating user {user} {addr} port {port}{tail}"),
        _ => format!("Disconnected from {addr}{tail}"),
    }
}

fn tail() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ssh2".to_string()),
        Just(" ssh2 [preauth]".to_string()),
        Just(" [preauth]".to_string()),
        Just("".to_string()),
        Just(" ssh2: RSA SHA256:abc".to_string()),
        Just(" ssh2: RSA ssh2".to_string()),
        Just(" port 22 [preauth]".to_string()),
        Just(" [preauth] ".to_string()),
        Just(" ssh2\n".to_string()),
        ".{0,12}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn hand_parsers_agree_with_the_regex_on_hostile_lines(
        form in 0usize..16,
        user in hostile_user(),
        addr in addr(),
        port in prop_oneof![Just("22".to_string()), Just("".to_string()), "[0-9]{1,6}".prop_map(|s| s), Just("x".to_string())],
        tail in tail(),
    ) {
            let line = hot_line(form, &user, &addr, &port, &tail);
        agree(&line);
        // Cut where sshd's %.500s cuts, and anywhere in the last bytes.
        for cut in [500usize, line.len().saturating_sub(1), line.len().saturating_sub(7)] {
            if let Some(prefix) = line.get(..cut.min(line.len())) {
                agree(prefix);
            }
        }
    }
}

/// The tail sshd writes after each [`hot_line`] form.
fn real_tail(form: usize) -> &'static str {
    match form % 16 {
        0..=3 => " ssh2",
        14 => " ssh2 [preauth]",
        15 => " ssh2",
        12 | 13 => "",
        8..=11 => " [preauth]",
        _ => "",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the user name holds, the address counted is the one sshd wrote: on whole
    /// lines the user-first forms always match it, and on lines cut at sshd's 500 bytes a
    /// match (trusted, `cut`) never names another.
    #[test]
    fn the_user_name_never_chooses_the_address(
        form in 0usize..16,
        user in hostile_user(),
        addr in prop_oneof![Just("198.51.100.7"), Just("2001:db8::5"), Just("203.0.113.250")],
        port in 1u32..65536,
    ) {
        let (with, _) = filters();
        let line = hot_line(form, &user, addr, &port.to_string(), real_tail(form));
        let host_of = |m: &str, cut: bool| {
            let Ok(mut s) = with.new_scratch();
            let Ok(got) = with.match_message(m, cut, &mut s);
            match got {
                filter::MessageMatch::Matched(r) => m.get(r.host.0..r.host.1).map(str::to_string),
                _ => None,
            }
        };
        let got = host_of(&line, false);
        if let Some(h) = &got {
            prop_assert_eq!(h.as_str(), addr, "{:?}", line);
        }
        if matches!(form, 0..=3 | 6 | 8 | 10) && !user.contains('\n') {
            prop_assert!(got.is_some(), "not matched: {:?}", line);
        }
        let mut end = 500.min(line.len());
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let cut = &line[..end];
        if let Some(h) = host_of(cut, cut.len() < line.len()) {
            prop_assert_eq!(h.as_str(), addr, "cut {:?}", cut);
        }
    }
}
