//! nf_tables change notifications read from a netlink socket of our own (the multicast group
//! `nft monitor` reads), so that a lost notification is known: the kernel says `ENOBUFS`
//! when the socket's buffer overflowed, where `nft monitor` stays silent (measured: it
//! printed nothing for an `nft flush ruleset` of 100k elements).
//!
//! Only deletions concerning one `inet` table are reported. The parsing reads attribute
//! lengths defensively: a malformed message ends its parse, never a panic.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::net::netlink::{NETFILTER, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SocketType, bind, recv, socket};

/// The nf_tables multicast group (`NFNLGRP_NFTABLES`).
const GROUP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`: the high byte of an nf_tables message type.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFPROTO_INET`.
const FAMILY_INET: u8 = 1;
/// Socket buffer asked for (needs CAP_NET_ADMIN to exceed `rmem_max`; we run as root).
const BUFFER: usize = 16 << 20;

// nf_tables message types (`NFT_MSG_*`).
const DEL_TABLE: u16 = 2;
const DEL_CHAIN: u16 = 5;
const DEL_RULE: u16 = 8;
const DEL_SET: u16 = 11;
const DEL_SET_ELEM: u16 = 14;
const NEW_GEN: u16 = 15;
const DESTROY_TABLE: u16 = 26;
const DESTROY_SET_ELEM: u16 = 30;

/// What one notification says about our table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NfEvent {
    /// The table, a chain, a rule or a set was deleted.
    Structure,
    /// Elements deleted from set `set`: the addresses of an address set (an interval set's
    /// elements are ranges: `addrs` is empty, the set is named).
    Elements { set: String, addrs: Vec<IpAddr> },
    /// The end of one transaction's notifications, and the process that made it.
    Generation { pid: u32 },
    /// The socket overflowed: notifications were lost.
    Lost,
}

/// A socket subscribed to nf_tables notifications (of the network namespace it was opened
/// in).
#[derive(Debug)]
pub(crate) struct NfEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NfEvents {
    /// Subscribe in our own network namespace, or in the one at `netns`.
    pub(crate) fn open(netns: Option<&Path>) -> io::Result<NfEvents> {
        let fd = socket_in(netns)?;
        // Best effort: without the larger buffer overflows come sooner, and are reported.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, BUFFER).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, BUFFER);
        }
        bind(&fd, &SocketAddrNetlink::new(0, 1 << (GROUP_NFTABLES - 1)))?;
        Ok(NfEvents {
            fd,
            buf: vec![0; 1 << 16],
        })
    }

    /// Block until the next datagram; append what it says about `table` to `out`.
    pub(crate) fn read(&mut self, table: &str, out: &mut Vec<NfEvent>) -> io::Result<()> {
        match recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
            Ok((n, _)) => {
                parse_datagram(&self.buf[..n], table, out);
                Ok(())
            }
            Err(rustix::io::Errno::NOBUFS) => {
                out.push(NfEvent::Lost);
                Ok(())
            }
            Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A netfilter netlink socket of the network namespace at `netns` (a file such as
/// `/run/netns/NAME`), or of our own. A socket stays in the namespace it was made in, so a
/// short-lived thread enters the namespace, makes it and ends.
pub(crate) fn socket_in(netns: Option<&Path>) -> io::Result<OwnedFd> {
    let Some(path) = netns else {
        return Ok(socket(
            AddressFamily::NETLINK,
            SocketType::RAW,
            Some(NETFILTER),
        )?);
    };
    let file = std::fs::File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(socket(
                AddressFamily::NETLINK,
                SocketType::RAW,
                Some(NETFILTER),
            )?)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The netlink attributes of `b`: (type without flags, payload).
pub(crate) fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let kind = u16_at(b, 2)? & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((kind, payload))
    })
}

/// A NUL-terminated string attribute.
pub(crate) fn string(p: &[u8]) -> &[u8] {
    p.split(|&c| c == 0).next().unwrap_or(p)
}

/// Every message of a datagram.
fn parse_datagram(mut b: &[u8], table: &str, out: &mut Vec<NfEvent>) {
    while let Some(len) = u32_at(b, 0) {
        let len = len as usize;
        if len < 16 || len > b.len() {
            return;
        }
        if let Some(e) = parse_message(&b[..len], table) {
            out.push(e);
        }
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
}

/// One message: header (16 bytes), `nfgenmsg` (4), attributes.
fn parse_message(m: &[u8], table: &str) -> Option<NfEvent> {
    let kind = u16_at(m, 4)?;
    if kind >> 8 != SUBSYS_NFTABLES {
        return None;
    }
    let msg = kind & 0xff;
    let attrs = m.get(20..)?;
    if msg == NEW_GEN {
        // NFTA_GEN_PROC_PID (2), big-endian.
        let pid = attributes(attrs)
            .find(|(t, _)| *t == 2)
            .and_then(|(_, p)| Some(u32::from_be_bytes(p.get(..4)?.try_into().ok()?)))?;
        return Some(NfEvent::Generation { pid });
    }
    if *m.get(16)? != FAMILY_INET {
        return None;
    }
    // Attribute 1 names the table in every message kind we read.
    let ours = attributes(attrs).any(|(t, p)| t == 1 && string(p) == table.as_bytes());
    if !ours {
        return None;
    }
    match msg {
        DEL_TABLE | DEL_CHAIN | DEL_RULE | DEL_SET => Some(NfEvent::Structure),
        DESTROY_TABLE..DESTROY_SET_ELEM => Some(NfEvent::Structure),
        DEL_SET_ELEM | DESTROY_SET_ELEM => {
            let set = attributes(attrs)
                .find(|(t, _)| *t == 2)
                .map(|(_, p)| String::from_utf8_lossy(string(p)).into_owned())?;
            let mut addrs = Vec::new();
            // ELEMENTS (3) > LIST_ELEM (1) > KEY (1) > DATA_VALUE (1).
            for (_, list) in attributes(attrs).filter(|(t, _)| *t == 3) {
                for (_, elem) in attributes(list).filter(|(t, _)| *t == 1) {
                    for (_, key) in attributes(elem).filter(|(t, _)| *t == 1) {
                        for (_, value) in attributes(key).filter(|(t, _)| *t == 1) {
                            match value.len() {
                                4 => addrs.push(IpAddr::V4(Ipv4Addr::from(
                                    <[u8; 4]>::try_from(value).ok()?,
                                ))),
                                16 => addrs.push(IpAddr::V6(Ipv6Addr::from(
                                    <[u8; 16]>::try_from(value).ok()?,
                                ))),
                                _ => {}
                            }
                        }
                    }
                }
            }
            Some(NfEvent::Elements { set, addrs })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn message(msg: u16, family: u8, attrs: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&((SUBSYS_NFTABLES << 8) | msg).to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(&[family, 0, 0, 0]);
        v.extend_from_slice(attrs);
        v
    }

    #[test]
    fn deletions_of_our_table_are_read() {
        let table = attr(1, b"portcullis\0");
        let mut d = message(DEL_TABLE, FAMILY_INET, &table);
        d.extend(message(DEL_TABLE, FAMILY_INET, &attr(1, b"other\0")));
        d.extend(message(DEL_RULE, 2, &table)); // family ip: not ours
        let key = attr(1, &attr(1, &[192, 0, 2, 7]));
        let elem = attr(1, &key);
        let mut attrs = table.clone();
        attrs.extend(attr(2, b"addr4\0"));
        attrs.extend(attr(3 | 0x8000, &elem));
        d.extend(message(DEL_SET_ELEM, FAMILY_INET, &attrs));
        d.extend(message(NEW_GEN, 0, &attr(2, &4242u32.to_be_bytes())));
        let mut out = Vec::new();
        parse_datagram(&d, "portcullis", &mut out);
        assert_eq!(
            out,
            [
                NfEvent::Structure,
                NfEvent::Elements {
                    set: "addr4".into(),
                    addrs: vec!["192.0.2.7".parse().unwrap()]
                },
                NfEvent::Generation { pid: 4242 }
            ]
        );
    }

    #[test]
    fn malformed_messages_end_the_parse_without_a_panic() {
        let mut out = Vec::new();
        for bytes in [
            &[0xffu8; 3][..],
            &[40, 0, 0, 0, 2, 10][..],
            &[
                20, 0, 0, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 9,
            ][..],
        ] {
            parse_datagram(bytes, "portcullis", &mut out);
        }
        let mut m = message(DEL_SET_ELEM, FAMILY_INET, &attr(1, b"portcullis\0"));
        m.extend_from_slice(&[200, 0, 3, 0]); // an attribute longer than the message
        parse_datagram(&m, "portcullis", &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
