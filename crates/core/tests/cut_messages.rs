//! Issue 10.1: a message sshd cut at 500 bytes never names an address the client wrote.
//!
//! Every form of the sshd inventory (`sshd_inventory.toml`, from OpenSSH's source) that logs
//! a client-chosen user name (an unknown user's, after `invalid user `) before the address
//! becomes an attack: the user name is padding
//! followed by the message's own tail with a forged address (` 203.0.113.66 port 22
//! [preauth]`, or whatever that form ends with), so that sshd's `%.500s` cut falls right
//! after the forged tail, or anywhere else. For every full message length from 400 to 600
//! bytes, with plain padding and with vis-encoded control bytes (`\ooo`, and `\\ooo` for
//! messages the pre-auth child relays), as a syslog line and as a journal record: the
//! forged address is never an event. Where the message fits, the real address still is
//! whatever the form gives (checked by the inventory's own test).

use std::net::IpAddr;

use portcullis_core::date::DateParser;
use portcullis_core::filter::{self, Filter, LineMatcher, Record};
use portcullis_core::{Event, Time};
use proptest::prelude::*;
use serde::Deserialize;

const DATA: &str = include_str!("sshd_inventory.toml");
const FORGED: &str = "203.0.113.66";
const CUT: usize = filter::cut::SSHD_MESSAGE_CUT;

#[derive(Debug, Deserialize)]
struct Inventory {
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    message: String,
    addr: Option<String>,
    user: Option<String>,
}

/// A form as an attack template: `before` + user + `after`, the real address in `after`.
struct Template {
    id: String,
    before: String,
    after: String,
    forged_after: String,
}

fn templates() -> Vec<Template> {
    let inv: Inventory = toml::from_str(DATA).expect("inventory parses");
    let mut out = Vec::new();
    for e in inv.entry {
        let (Some(user), Some(addr)) = (&e.user, &e.addr) else {
            continue;
        };
        let Some(u) = e.message.find(&format!(" {user} ")).map(|i| i + 1) else {
            continue;
        };
        // Only an unknown user's name is the client's own text: sshd names a valid user
        // by its account (no spaces, no invention), an unknown one after `invalid user `.
        let before = &e.message[..u];
        if !["invalid user ", "illegal user ", "Invalid user "]
            .iter()
            .any(|m| before.ends_with(m))
        {
            continue;
        }
        let after = &e.message[u + user.len()..];
        if !after.contains(addr.as_str()) {
            continue; // the address comes first: nothing of the client's precedes it
        }
        out.push(Template {
            id: e.id.clone(),
            before: e.message[..u].to_string(),
            after: after.to_string(),
            forged_after: after.replacen(addr.as_str(), FORGED, 1),
        });
    }
    out
}

fn matcher() -> LineMatcher {
    static SSHD: std::sync::OnceLock<Filter> = std::sync::OnceLock::new();
    let f = SSHD.get_or_init(|| {
        Filter::from_toml(filter::builtin("sshd").expect("built in"), "builtin:sshd")
            .expect("compiles")
    });
    LineMatcher::new(f.clone(), DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher")
}

/// What sshd writes for `t` with a user name of `pad` + the forged tail: `%.500s`.
fn logged(t: &Template, pad: &str) -> String {
    let full = format!("{}{pad}{}{}", t.before, t.forged_after, t.after);
    let mut end = full.len().min(CUT);
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    full[..end].to_string()
}

/// Padding of exactly `len` bytes: plain letters, or vis-encoded control bytes (`\001`,
/// four bytes, or `\\001`, five, as the monitor relays a pre-auth message) with letters.
fn pad(len: usize, style: u8) -> String {
    let unit = match style {
        0 => "a",
        1 => "\\001",
        _ => "\\\\001",
    };
    let mut p = unit.repeat(len / unit.len());
    p.push_str(&"b".repeat(len - p.len()));
    p
}

fn events_of(m: &mut LineMatcher, message: &str, pid: u32) -> Vec<Event> {
    let mut out = Vec::new();
    m.feed_line(
        format!("Nov 25 08:00:01 web1 sshd[{pid}]: {message}").as_bytes(),
        Time::from_secs(1_800_000_000),
        &mut out,
    );
    let rec = Record {
        time: Time::from_secs(1_800_000_000),
        program: Some(b"sshd-session"),
        pid: Some(pid + 1),
        message: message.as_bytes(),
    };
    m.feed_record(&rec, &mut out);
    out
}

fn forged() -> IpAddr {
    FORGED.parse().expect("an address")
}

#[test]
fn every_length_from_400_to_600_plain_and_vis_encoded() {
    let ts = templates();
    assert!(ts.len() >= 10, "only {} templates", ts.len());
    let mut m = matcher();
    let mut pid = 1000;
    let mut cut_seen = 0;
    for t in &ts {
        let fixed = t.before.len() + t.forged_after.len() + t.after.len();
        for total in 400..=600usize {
            let Some(n) = total.checked_sub(fixed) else {
                continue;
            };
            for style in 0..3 {
                let msg = logged(t, &pad(n, style));
                pid += 2;
                for e in events_of(&mut m, &msg, pid) {
                    assert_ne!(e.addr, forged(), "{}: {msg:?}", t.id);
                }
                cut_seen += usize::from(msg.len() >= CUT);
            }
        }
        // The worst case exactly: the cut right after the forged tail.
        let n = CUT - t.before.len() - t.forged_after.len();
        let msg = logged(t, &pad(n, 0));
        assert!(msg.ends_with(&t.forged_after), "{}", t.id);
        pid += 2;
        for e in events_of(&mut m, &msg, pid) {
            assert_ne!(e.addr, forged(), "{}: {msg:?}", t.id);
        }
    }
    assert!(cut_seen > 1000);
    assert!(m.stats().cut > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random mixtures of padding (letters, spaces, vis-encoded bytes, sshd-like words) at
    /// random lengths around the cut.
    #[test]
    fn mixed_padding_never_yields_the_forged_address(
        which in any::<prop::sample::Index>(),
        total in 380usize..640,
        words in prop::collection::vec(prop_oneof![
            Just("a"), Just(" "), Just("\\001"), Just("\\\\033"), Just(" from "),
            Just(" port 22"), Just(" [preauth]"), Just("invalid user "), Just(" ssh2"),
        ], 0..200),
    ) {
        static TS: std::sync::OnceLock<Vec<Template>> = std::sync::OnceLock::new();
        let ts = TS.get_or_init(templates);
        let t = &ts[which.index(ts.len())];
        let mut p: String = words.concat();
        let fixed = t.before.len() + t.forged_after.len() + t.after.len();
        let want = total.saturating_sub(fixed);
        if p.len() > want {
            p.truncate(want);
        } else {
            p.push_str(&"x".repeat(want - p.len()));
        }
        let msg = logged(t, &p);
        let mut m = matcher();
        for e in events_of(&mut m, &msg, 7) {
            prop_assert_ne!(e.addr, forged(), "{}: {:?}", t.id, msg);
        }
    }
}

/// A valid user's certificate: sshd writes the real address before the key ID, which the
/// client chooses whole (any length, `:` and spaces included; control bytes vis-encoded,
/// four characters each, by the monitor). Key IDs that end in a forged tail — the rest of
/// the strict rule (`(serial 0) CA …`), an address with the text rules put after one — at
/// every full length from 400 to 600 bytes, plain and vis-encoded, as a line and as a
/// journal record: a line sshd cut is exactly one attempt, of the real address; a whole one
/// too, unless its key ID holds `:` (then the strict rule's pin is gone and it names
/// nobody); none ever names the forged address. (Before: every cut line named nobody — the
/// rule for them was computed unsafe — and so would a key ID ending right at the cut in a
/// forged `(serial 0) CA ED25519 SHA256:x`, which the strict rule matched.)
#[test]
fn certificate_key_ids_never_hide_or_move_the_real_address() {
    const REAL: &str = "192.0.2.160";
    let head = format!(
        "Failed publickey for bob from {REAL} port 7200 ssh2: ED25519-CERT SHA256:{} ID ",
        "r".repeat(43)
    );
    let tail = format!(" (serial 0) CA ED25519 SHA256:{}", "c".repeat(43));
    let forged_tails = [
        String::new(),
        format!(" (serial 0) CA ED25519 SHA256:{}", "f".repeat(43)),
        format!(" from {FORGED} port 22 ssh2"),
        format!(" for invalid user x from {FORGED} port 22 ssh2"),
        format!(" {FORGED} port 22 [preauth]"),
        format!(" from {FORGED}"),
    ];
    let (mut pid, mut cut) = (5000, 0);
    for forged in &forged_tails {
        for total in 400..=600usize {
            let Some(n) = total.checked_sub(head.len() + forged.len() + tail.len()) else {
                continue;
            };
            for style in 0..2 {
                let full = format!("{head}{}{forged}{tail}", pad(n, style));
                let msg = &full[..full.len().min(CUT)];
                cut += usize::from(msg.len() >= CUT);
                pid += 2;
                // A fresh matcher: a valid user's key try is held for its connection's
                // outcome (see core's filter::coalesce), released here by `finish`.
                let mut m = matcher();
                let mut events = events_of(&mut m, msg, pid);
                m.finish(&mut events);
                let whole_with_colon = msg.len() < CUT && forged.contains(':');
                if !whole_with_colon {
                    assert_eq!(
                        events.len(),
                        4,
                        "a held try and its release per form: {msg:?}"
                    );
                    let attempts: u32 = events.iter().map(|e| e.count).sum();
                    assert_eq!(attempts, 2, "one attempt per form: {msg:?}");
                }
                for e in &events {
                    assert_eq!(e.addr, REAL.parse::<IpAddr>().unwrap(), "{msg:?}");
                    assert_eq!(e.user.as_deref(), Some("bob"), "{msg:?}");
                    assert_eq!(e.kind, portcullis_core::EventKind::Attempt, "{msg:?}");
                }
            }
        }
    }
    assert!(cut > 1000, "{cut} cut lines");
}

/// The same long key ID on a successful login: the success (which the breach rule and the
/// login protection need) is still the real address's.
#[test]
fn a_cut_success_still_names_the_real_address() {
    let msg = format!(
        "Accepted publickey for bob from 192.0.2.161 port 7201 ssh2: ED25519-CERT SHA256:{} ID {}",
        "r".repeat(43),
        "k".repeat(600)
    );
    let msg = &msg[..CUT];
    let mut m = matcher();
    let events = events_of(&mut m, msg, 11);
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e.kind, portcullis_core::EventKind::Success);
        assert_eq!(e.addr, "192.0.2.161".parse::<IpAddr>().unwrap());
    }
    assert_eq!(m.stats().cut, 2);
}

/// The cut-safety computation: only literal text and digits before the address. A
/// space-free field is refused too: `\S+` matches the first word of a client's text, and the
/// forged rest lines up with the rule. (Before, only a `user` group or a field admitting a
/// space was refused, and the banner rule below named 203.0.113.66.)
#[test]
fn only_literals_and_digits_before_the_address_are_cut_safe() {
    let safe = |re: &str| filter::cut_safe("r", re).expect("compiles");
    assert!(safe(r"^Disconnected from <HOST> port <PORT> \[preauth\]$"));
    assert!(safe(
        r"^drop connection #[0-9]+ from \[<HOST>\]:<PORT> on .*$"
    ));
    assert!(safe(
        r"^(?:error: )?Connection (?:closed|reset) by <HOST>.*$"
    ));
    assert!(!safe(r"^Invalid user <USER> from <HOST>$"));
    assert!(!safe(
        r"^Invalid user (?P<user>\S+) from <HOST>(?: port <PORT>)?$"
    ));
    assert!(!safe(
        r"^Bad protocol version identification '\S+' from <HOST> port <PORT>$"
    ));
    assert!(!safe(r"^x.y from <HOST>$"));

    // And the matcher: a client banner `x…x' from 203.0.113.66 port 22 …`, cut by sshd right
    // after `port 22`, gives nothing; a whole message still names its address.
    let f = Filter::from_toml(
        r#"[filter]
programs = ["sshd", "sshd-session"]
[[rule]]
id = "bad-version"
kind = "probe"
weight = 0.5
regex = '''^Bad protocol version identification '\S+' from <HOST> port <PORT>$'''
"#,
        "test",
    )
    .expect("filter");
    let mut m = LineMatcher::new(f, DateParser::new(jiff::tz::TimeZone::UTC)).expect("matcher");
    let head = "Bad protocol version identification '";
    let forged = format!("' from {FORGED} port 22");
    let banner = format!(
        "{}{forged} and more",
        "x".repeat(CUT - head.len() - forged.len())
    );
    let full = format!("{head}{banner}' from 192.0.2.9 port 4000");
    let attack = &full[..CUT];
    assert!(attack.ends_with(&forged), "{attack}");
    assert!(events_of(&mut m, attack, 3).is_empty());
    let whole = format!("{head}SSH-1.0-x' from 192.0.2.9 port 4000");
    let events = events_of(&mut m, &whole, 5);
    assert_eq!(events.len(), 2, "{whole}");
    assert!(
        events
            .iter()
            .all(|e| e.addr == "192.0.2.9".parse::<IpAddr>().unwrap())
    );
    assert_eq!(m.stats().cut, 2);
}
