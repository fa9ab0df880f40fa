//! The fleet's subjects and payloads (pure: no I/O), shared by the daemon's fleet task and
//! `portcullis fleet`.
//!
//! Subjects (PREFIX is `fleet.prefix`):
//! - `PREFIX.ban.NODE.KEY`: node NODE banned the address or network KEY (its own
//!   observation; the server lets NODE's credentials publish only under `PREFIX.ban.NODE.>`);
//! - `PREFIX.admin.ban.KEY`, `PREFIX.admin.unban.KEY`, `PREFIX.admin.allow.KEY`: an admin's
//!   decision (only admin credentials may publish under `PREFIX.admin.>`).
//!
//! KEY is the target with `.` and `:` turned into `-` and the prefix length after `_`
//! (`192-0-2-7_32`, `2001-db8--1_128`), so it is one subject token. The target is read
//! from the subject only, never from the payload, and the origin is the subject's NODE: the
//! server's permissions vouch for both. The payload (JSON) says until when, and for whom.

use ipnet::IpNet;
use portcullis_core::Time;
use serde::{Deserialize, Serialize};

use crate::daemon::jail_set::fleet::Received;

/// The largest payload read (a report is ~100 bytes).
pub const MAX_PAYLOAD: usize = 1024;

/// The subject token of `target`.
pub fn address_key(target: &IpNet) -> String {
    let addr = target.addr().to_string().replace(['.', ':'], "-");
    format!("{addr}_{}", target.prefix_len())
}

/// The target of a subject token, `None` unless it is exactly what [`address_key`] writes
/// (host bits set, a stray character or a prefix out of range: refused).
pub fn parse_address_key(key: &str) -> Option<IpNet> {
    let (addr, len) = key.rsplit_once('_')?;
    let len: u8 = len.parse().ok()?;
    if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return None;
    }
    let net = if let Ok(v4) = addr.replace('-', ".").parse::<std::net::Ipv4Addr>() {
        IpNet::new(v4.into(), len).ok()?
    } else {
        let v6: std::net::Ipv6Addr = addr.replace('-', ":").parse().ok()?;
        IpNet::new(v6.into(), len).ok()?
    };
    // Canonical only: one target has one subject (so last-per-subject is per target).
    (net.trunc() == net && address_key(&net) == key).then_some(net)
}

/// What a report or an admin's ban says besides its subject.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The ban's end, Unix microseconds (wall time); `None`: permanent (as the sender says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_us: Option<i64>,
    /// The sender's jail (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jail: Option<String>,
    /// When the sender decided it, Unix microseconds (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_us: Option<i64>,
}

/// The subject of node `node`'s report of `target`.
pub fn ban_subject(prefix: &str, node: &str, target: &IpNet) -> String {
    format!("{prefix}.ban.{node}.{}", address_key(target))
}

/// An admin's decision (`ban`, `unban` or `allow`) of `target`.
pub fn admin_subject(prefix: &str, action: &str, target: &IpNet) -> String {
    format!("{prefix}.admin.{action}.{}", address_key(target))
}

/// Why a message from the stream was not understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not `PREFIX.ban.NODE.KEY` nor `PREFIX.admin.ACTION.KEY`.
    Subject,
    /// The address key is not one [`address_key`] writes.
    Address,
    /// The payload is no JSON [`Payload`] (or too long).
    Payload,
}

/// The decision a stream message carries, wall times as they are (the caller moves them
/// onto engine time).
pub fn decode(prefix: &str, subject: &str, payload: &[u8]) -> Result<Received, Malformed> {
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or(Malformed::Subject)?;
    let tokens: Vec<&str> = rest.split('.').collect();
    let (kind, who, key) = match tokens.as_slice() {
        [kind, who, key] => (*kind, *who, *key),
        _ => return Err(Malformed::Subject),
    };
    let target = parse_address_key(key).ok_or(Malformed::Address)?;
    let payload = || -> Result<Payload, Malformed> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Malformed::Payload);
        }
        if payload.is_empty() {
            return Ok(Payload::default());
        }
        serde_json::from_slice(payload).map_err(|_| Malformed::Payload)
    };
    match (kind, who) {
        ("ban", node) if portcullis_config::valid_node_name(node) => Ok(Received::Ban {
            node: node.into(),
            target,
            until: payload()?.until_us.map(Time::from_micros),
        }),
        ("admin", "ban") => Ok(Received::AdminBan {
            target,
            until: payload()?.until_us.map(Time::from_micros),
        }),
        ("admin", "unban") => Ok(Received::AdminUnban { target }),
        ("admin", "allow") => Ok(Received::AdminAllow { target }),
        _ => Err(Malformed::Subject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        portcullis_control::Target::parse(s).expect("target").0
    }

    #[test]
    fn address_keys_are_one_token_and_round_trip() {
        for (t, key) in [
            ("192.0.2.7", "192-0-2-7_32"),
            ("198.51.100.0/24", "198-51-100-0_24"),
            ("2001:db8::1", "2001-db8--1_128"),
            ("2001:db8:1::/48", "2001-db8-1--_48"),
            ("::", "--_128"),
        ] {
            let n = net(t);
            assert_eq!(address_key(&n), key);
            assert!(!key.contains(['.', ':', '*', '>', ' ']));
            assert_eq!(parse_address_key(key), Some(n), "{key}");
        }
        for bad in [
            "192-0-2-7",
            "192-0-2-7_33",
            "192-0-2-1_24",
            "0192-0-2-7_32",
            "2001-DB8--1_128",
            "2001-db8-0-0-0-0-0-1_128",
            "x_32",
            "_32",
            "192-0-2-7_+32",
        ] {
            assert_eq!(parse_address_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn subjects_decode_with_origin_and_target_from_the_subject() {
        let t = net("192.0.2.7");
        let s = ban_subject("pc", "node-a", &t);
        assert_eq!(s, "pc.ban.node-a.192-0-2-7_32");
        let body = serde_json::to_vec(&Payload {
            until_us: Some(5_000_000),
            jail: Some("sshd".into()),
            since_us: None,
        })
        .expect("json");
        assert_eq!(
            decode("pc", &s, &body),
            Ok(Received::Ban {
                node: "node-a".into(),
                target: t,
                until: Some(Time::from_micros(5_000_000)),
            })
        );
        assert_eq!(
            decode("pc", &admin_subject("pc", "unban", &t), b""),
            Ok(Received::AdminUnban { target: t })
        );
        assert_eq!(
            decode("pc", &admin_subject("pc", "ban", &t), b"{}"),
            Ok(Received::AdminBan {
                target: t,
                until: None
            })
        );
        assert_eq!(
            decode("pc", "pc.ban.a.b.192-0-2-7_32", b""),
            Err(Malformed::Subject)
        );
        assert_eq!(decode("other", &s, b""), Err(Malformed::Subject));
        assert_eq!(
            decode("pc", "pc.admin.drop.192-0-2-7_32", b""),
            Err(Malformed::Subject)
        );
        assert_eq!(decode("pc", &s, b"not json"), Err(Malformed::Payload));
        assert_eq!(
            decode("pc", &s, &vec![b' '; MAX_PAYLOAD + 1]),
            Err(Malformed::Payload)
        );
        assert_eq!(
            decode("pc", "pc.ban.a.192-0-2-1_24", b""),
            Err(Malformed::Address)
        );
    }
}
