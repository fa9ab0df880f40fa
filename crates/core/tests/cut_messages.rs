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
