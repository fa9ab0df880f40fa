//! Set elements written and read over netlink, without `nft` and without JSON: the hot path
//! of the nftables backend (bans, unbans, the reconcile at start).
//!
//! Writes are nfnetlink batches (`NFNL_MSG_BATCH_BEGIN`, `NFT_MSG_NEWSETELEM` /
//! `NFT_MSG_DELSETELEM`, `NFNL_MSG_BATCH_END`): one batch is one kernel transaction and must
//! arrive in one `sendmsg`, so a plan is cut into batches of at most [`BATCH_BYTES`] (one
//! for 100k IPv6 bans) at message boundaries, and each message holds at most
//! [`MESSAGE_ELEMENTS_BYTES`] of elements (the element list is a netlink attribute, whose
//! length is 16 bits). Every message asks for an acknowledgement; a batch is done when each
//! of its messages is answered, and one refused message fails (and rolls back) its whole
//! batch. Elements are encoded the way `nft` 1.0.6 encodes them (compared with
//! `nft --debug=netlink`): an address is its key; a network in an interval set is a start
//! element (with the timeout) and an end element at the first address after it, flagged
//! `NFT_SET_ELEM_INTERVAL_END`, or, for a network reaching the top of the address space, the
//! start alone marked open in its user data; the first addition to an interval set also
//! carries the end element at address zero that `nft` puts there. Timeouts are whole
//! seconds, as through `nft`, sent in milliseconds.
//!
//! Reads are `NFT_MSG_GETSETELEM` dumps parsed here; interval elements are paired back
//! into networks. An element this module would not have written (a range that is not a
//! network) is counted as foreign, so the caller can fall back to a flush and refill.
//!
//! Everything runs on the calling thread with a receive timeout: the caller puts it on a
//! blocking thread.

use std::collections::HashSet;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{RecvFlags, SendFlags, bind, recv, sendto};

use crate::change::{Plan, SetKind, timeout_secs};
use crate::netlink::{attributes, socket_in, u16_at, u32_at};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS_NFTABLES: u16 = 10;
const MSG_NEWSETELEM: u16 = 12;
const MSG_GETSETELEM: u16 = 13;
const MSG_DELSETELEM: u16 = 14;
const MSG_NEWGEN: u16 = 15;
const MSG_GETGEN: u16 = 16;
/// NFTA_GEN_ID.
const GEN_ID: u16 = 1;
/// `NFPROTO_INET`.
const FAMILY_INET: u8 = 1;
const NLA_F_NESTED: u16 = 0x8000;
// NFTA_SET_ELEM_LIST_*
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;
/// NFTA_LIST_ELEM.
const LIST_ELEM: u16 = 1;
// NFTA_SET_ELEM_*
const ELEM_KEY: u16 = 1;
const ELEM_FLAGS: u16 = 3;
const ELEM_TIMEOUT: u16 = 4;
const ELEM_EXPIRATION: u16 = 5;
const ELEM_USERDATA: u16 = 6;
/// NFTA_DATA_VALUE.
const DATA_VALUE: u16 = 1;
/// NFT_SET_ELEM_INTERVAL_END.
const INTERVAL_END: u32 = 1;
/// nft's user data of an open interval: `NFTNL_UDATA_SET_ELEM_FLAGS` (1), length 4,
/// `NFTNL_SET_ELEM_F_INTERVAL_OPEN` (1) in host order.
const OPEN_INTERVAL_UDATA: [u8; 6] = [1, 4, 1, 0, 0, 0];

/// Element bytes per message (the element list's attribute length is a u16).
pub(crate) const MESSAGE_ELEMENTS_BYTES: usize = 60_000;
/// Bytes per batch (one `sendmsg`, one transaction).
pub(crate) const BATCH_BYTES: usize = 8 << 20;
/// The largest refill sent as one transaction (flush and refill of all four sets, atomic):
/// 1M IPv6 addresses are about 40 MB.
pub(crate) const REFILL_BYTES: usize = 48 << 20;
/// Send and receive buffers asked for (forced: we run as root): a refill fits.
const SOCKET_BUFFER: usize = 64 << 20;
/// The longest element timeout written, as through `nft`'s JSON (whole seconds as u32).
pub(crate) const MAX_TIMEOUT_SECS: u64 = u32::MAX as u64;

/// Elements read back with their remaining time (`None` = permanent), and how many were
/// not ours to read.
pub(crate) type Listing = (Vec<(IpNet, Option<Duration>)>, usize);

/// A batch the kernel did not take whole.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Sending or reading the answers failed (or timed out): the state of the last batch is
    /// unknown.
    Transport(io::Error),
    /// The kernel refused a message (`errno`) and rolled its batch back; `committed`
    /// batches before it went in.
    Refused { errno: i32, committed: u32 },
}

/// An element as a dump shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RawElem {
    key: Vec<u8>,
    end: bool,
    open: bool,
    expires_ms: Option<u64>,
    timeout_ms: Option<u64>,
}

/// A netfilter netlink socket for element writes and dumps.
#[derive(Debug)]
pub(crate) struct NfTables {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl NfTables {
    /// A socket in our network namespace or the one at `netns`; answers are awaited at most
    /// `timeout` each.
    pub(crate) fn open(netns: Option<&Path>, timeout: Duration) -> io::Result<NfTables> {
        let fd = socket_in(netns)?;
        if sockopt::set_socket_send_buffer_size_force(&fd, SOCKET_BUFFER).is_err() {
            sockopt::set_socket_send_buffer_size(&fd, SOCKET_BUFFER)?;
        }
        if sockopt::set_socket_recv_buffer_size_force(&fd, SOCKET_BUFFER).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, SOCKET_BUFFER);
        }
        sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(timeout))?;
        bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        Ok(NfTables {
            fd,
            seq: 1,
            buf: vec![0; 1 << 18],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send `messages` (from [`plan_messages`]) as batches; returns how many.
    pub(crate) fn transact(&mut self, messages: &[Vec<u8>]) -> Result<u32, WriteError> {
        let mut committed = 0;
        let mut at = 0;
        while at < messages.len() {
            let mut size = 0;
            let mut end = at;
            while end < messages.len() && (end == at || size + messages[end].len() <= BATCH_BYTES) {
                size += messages[end].len();
                end += 1;
            }
            self.batch(&messages[at..end]).map_err(|e| match e {
                WriteError::Refused { errno, .. } => WriteError::Refused { errno, committed },
                other => other,
            })?;
            committed += 1;
            at = end;
        }
        Ok(committed)
    }

    /// `messages` as one transaction, whatever their size (the caller keeps it within
    /// [`REFILL_BYTES`]).
    pub(crate) fn transact_one(&mut self, messages: &[Vec<u8>]) -> Result<(), WriteError> {
        self.batch(messages)
    }

    /// One transaction.
    fn batch(&mut self, messages: &[Vec<u8>]) -> Result<(), WriteError> {
        let size: usize = messages.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(size + 40);
        let begin_seq = self.next_seq();
        control(&mut out, BATCH_BEGIN, begin_seq);
        let first = begin_seq.wrapping_add(1);
        for m in messages {
            let seq = self.next_seq();
            let start = out.len();
            out.extend_from_slice(m);
            out[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
        }
        let end_seq = self.next_seq();
        control(&mut out, BATCH_END, end_seq);
        let kernel = SocketAddrNetlink::new(0, 0);
        let sent = sendto(&self.fd, &out, SendFlags::empty(), &kernel)
            .map_err(|e| WriteError::Transport(e.into()))?;
        if sent != out.len() {
            return Err(WriteError::Transport(io::Error::other(format!(
                "netlink sent {sent} of {} bytes",
                out.len()
            ))));
        }
        drop(out);
        // One answer per message (each asked for an ACK); an error on the batch header means
        // none of it was read.
        let mut waiting: HashSet<u32> = (0..messages.len() as u32)
            .map(|i| first.wrapping_add(i))
            .collect();
        let mut refused = None;
        while !waiting.is_empty() {
            let n = match recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(WriteError::Transport(e.into())),
            };
            for (kind, _, seq, payload) in messages_of(&self.buf[..n.min(self.buf.len())]) {
                if kind != NLMSG_ERROR {
                    continue;
                }
                let Some(code) = payload.get(..4).and_then(|b| b.try_into().ok()) else {
                    continue;
                };
                let errno = -i32::from_ne_bytes(code);
                // The answer names the request by the sequence number in its header.
                let orig_seq = u32_at(payload, 4 + 8).unwrap_or(seq);
                let header = orig_seq == begin_seq && errno != 0;
                if !(header || waiting.remove(&orig_seq)) {
                    continue; // an answer to an earlier exchange
                }
                if errno != 0 {
                    refused.get_or_insert(errno);
                }
                if header {
                    waiting.clear();
                }
            }
        }
        match refused {
            None => Ok(()),
            Some(errno) => Err(WriteError::Refused {
                errno,
                committed: 0,
            }),
        }
    }

    /// Every element of `set` (of kind `kind`) in table `inet <table>`, and how many
    /// elements were not ours to read (ranges that are not networks).
    pub(crate) fn list(&mut self, table: &str, kind: SetKind) -> io::Result<Listing> {
        // A dump interrupted by a concurrent change is flagged; read it again.
        for _ in 0..5 {
            if let Some(raws) = self.dump(table, kind.nft_name())? {
                return Ok(decode(kind, raws));
            }
        }
        Err(io::Error::other(
            "the set changed during every dump (NLM_F_DUMP_INTR)",
        ))
    }

    /// One dump: `None` when it was interrupted.
    fn dump(&mut self, table: &str, set: &str) -> io::Result<Option<Vec<RawElem>>> {
        let seq = self.next_seq();
        let mut m = header(MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP);
        attr(&mut m, LIST_TABLE, &cstr(table));
        attr(&mut m, LIST_SET, &cstr(set));
        finish(&mut m);
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        let mut out = Vec::new();
        let mut interrupted = false;
        self.exchange(&m, seq, |kind, flags, payload| {
            interrupted |= flags & NLM_F_DUMP_INTR != 0;
            match kind {
                NLMSG_DONE => Some(Ok((!interrupted).then(|| std::mem::take(&mut out)))),
                NLMSG_ERROR => match error_code(payload) {
                    0 => None,
                    code => Some(Err(io::Error::from_raw_os_error(-code))),
                },
                k if k == (SUBSYS_NFTABLES << 8) | MSG_NEWSETELEM => {
                    parse_elements(payload.get(4..).unwrap_or(&[]), &mut out);
                    None
                }
                _ => None,
            }
        })
    }
}

impl NfTables {
    /// The ruleset generation: the kernel counts every committed nf_tables transaction of
    /// the network namespace (any table's, anyone's), so an unchanged generation means
    /// nothing was changed since it was read.
    pub(crate) fn generation(&mut self) -> io::Result<u32> {
        let seq = self.next_seq();
        let mut m = header(MSG_GETGEN, NLM_F_REQUEST);
        finish(&mut m);
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.exchange(&m, seq, |kind, _, payload| {
            if kind == NLMSG_ERROR {
                return Some(Err(io::Error::from_raw_os_error(
                    -error_code(payload).min(-1),
                )));
            }
            if kind != (SUBSYS_NFTABLES << 8) | MSG_NEWGEN {
                return None;
            }
            for (t, v) in attributes(payload.get(4..).unwrap_or(&[])) {
                if t & !NLA_F_NESTED == GEN_ID
                    && let Some(b) = v.get(..4).and_then(|b| b.try_into().ok())
                {
                    return Some(Ok(u32::from_be_bytes(b)));
                }
            }
            Some(Err(io::Error::other("NEWGEN without a generation id")))
        })
    }

    /// Whether the single address `target` (/32 or /128) is an element of its set in
    /// table `inet <table>`: one point lookup (`NFT_MSG_GETSETELEM` without a dump), O(1)
    /// whatever the set's size.
    pub(crate) fn has_element(&mut self, table: &str, target: &IpNet) -> io::Result<bool> {
        let kind = SetKind::of(target);
        let seq = self.next_seq();
        let mut m = header(MSG_GETSETELEM, NLM_F_REQUEST);
        attr(&mut m, LIST_TABLE, &cstr(table));
        attr(&mut m, LIST_SET, &cstr(kind.nft_name()));
        let list = nest(&mut m, LIST_ELEMENTS);
        let at = nest(&mut m, LIST_ELEM);
        key_attr(&mut m, &key(&target.addr()));
        end_nest(&mut m, at);
        end_nest(&mut m, list);
        finish(&mut m);
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.exchange(&m, seq, |kind, _, payload| {
            if kind == NLMSG_ERROR {
                return Some(match -error_code(payload) {
                    0 => Ok(true),
                    2 => Ok(false), // ENOENT
                    errno => Err(io::Error::from_raw_os_error(errno)),
                });
            }
            (kind == (SUBSYS_NFTABLES << 8) | MSG_NEWSETELEM).then_some(Ok(true))
        })
    }

    /// Send the request `m` (sequence number `seq`) and read the replies until `answer`,
    /// given each reply's type, flags and payload, has the answer.
    fn exchange<T>(
        &mut self,
        m: &[u8],
        seq: u32,
        mut answer: impl FnMut(u16, u16, &[u8]) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        sendto(
            &self.fd,
            m,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        loop {
            let n = match recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n.min(self.buf.len()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for (kind, flags, mseq, payload) in messages_of(&self.buf[..n]) {
                if mseq == seq
                    && let Some(result) = answer(kind, flags, payload)
                {
                    return result;
                }
            }
        }
    }
}

/// The (negative) errno of an `NLMSG_ERROR` payload; 0 is an acknowledgement.
fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .unwrap_or(-libc_eio())
}

fn libc_eio() -> i32 {
    5
}

/// The messages of a datagram: (type, flags, seq, payload after the 16-byte header).
fn messages_of(mut b: &[u8]) -> impl Iterator<Item = (u16, u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        let len = u32_at(b, 0)? as usize;
        if len < 16 || len > b.len() {
            return None;
        }
        let m = (u16_at(b, 4)?, u16_at(b, 6)?, u32_at(b, 8)?, &b[16..len]);
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(m)
    })
}

/// The elements of one NEWSETELEM (attributes after `nfgenmsg`).
fn parse_elements(attrs: &[u8], out: &mut Vec<RawElem>) {
    for (_, list) in attributes(attrs).filter(|(t, _)| *t == LIST_ELEMENTS) {
        for (_, elem) in attributes(list).filter(|(t, _)| *t == LIST_ELEM) {
            let mut raw = RawElem {
                key: Vec::new(),
                end: false,
                open: false,
                expires_ms: None,
                timeout_ms: None,
            };
            for (t, p) in attributes(elem) {
                match t {
                    ELEM_KEY => {
                        if let Some((_, v)) = attributes(p).find(|(t, _)| *t == DATA_VALUE) {
                            raw.key = v.to_vec();
                        }
                    }
                    ELEM_FLAGS => {
                        raw.end = p
                            .get(..4)
                            .and_then(|b| b.try_into().ok())
                            .is_some_and(|b| u32::from_be_bytes(b) & INTERVAL_END != 0);
                    }
                    ELEM_TIMEOUT => raw.timeout_ms = be64(p),
                    ELEM_EXPIRATION => raw.expires_ms = be64(p),
                    ELEM_USERDATA => raw.open = p == OPEN_INTERVAL_UDATA,
                    _ => {}
                }
            }
            if !raw.key.is_empty() {
                out.push(raw);
            }
        }
    }
}

fn be64(p: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(..8)?.try_into().ok()?))
}

/// A key as a number (big-endian bytes of an address), and the address it is.
fn key_value(key: &[u8]) -> Option<u128> {
    match key.len() {
        4 => Some(u128::from(u32::from_be_bytes(key.try_into().ok()?))),
        16 => Some(u128::from_be_bytes(key.try_into().ok()?)),
        _ => None,
    }
}

fn remaining(r: &RawElem) -> Option<Duration> {
    r.expires_ms.or(r.timeout_ms).map(Duration::from_millis)
}

/// Dumped elements back into targets; the second value counts what is not ours.
fn decode(kind: SetKind, mut raws: Vec<RawElem>) -> Listing {
    let bits: u32 = if kind.is_v6() { 128 } else { 32 };
    let mut out = Vec::with_capacity(raws.len());
    let mut foreign = 0;
    let addr = |v: u128, len: u8| -> Option<IpNet> {
        if kind.is_v6() {
            IpNet::new(std::net::Ipv6Addr::from(v).into(), len).ok()
        } else {
            IpNet::new(std::net::Ipv4Addr::from(u32::try_from(v).ok()?).into(), len).ok()
        }
    };
    if !kind.is_net() {
        for r in &raws {
            match key_value(&r.key).and_then(|v| addr(v, bits as u8)) {
                Some(t) if !r.end => out.push((t, remaining(r))),
                _ => foreign += 1,
            }
        }
        return (out, foreign);
    }
    raws.sort_by_key(|r| (key_value(&r.key), !r.end));
    let mut i = 0;
    while i < raws.len() {
        let r = &raws[i];
        i += 1;
        let Some(start) = key_value(&r.key) else {
            foreign += 1;
            continue;
        };
        if r.end {
            // The end at zero nft puts first, or the end of an interval already read.
            continue;
        }
        // The interval runs to the next element's key (an end, or an adjacent start), or to
        // the top of the address space.
        let next = raws.get(i).and_then(|n| key_value(&n.key));
        let size: u128 = match next {
            Some(n) if n > start => n - start,
            None if r.open || next.is_none() => {
                let top = if bits == 128 {
                    u128::MAX
                } else {
                    u128::from(u32::MAX)
                };
                match (top - start).checked_add(1) {
                    Some(s) => s,
                    None => {
                        // ::/0 covers all of it.
                        if start == 0 {
                            out.push((addr(0, 0).unwrap_or_default(), remaining(r)));
                        } else {
                            foreign += 1;
                        }
                        continue;
                    }
                }
            }
            _ => {
                foreign += 1;
                continue;
            }
        };
        if size.is_power_of_two() && start % size == 0 {
            let len = bits - size.trailing_zeros();
            match addr(start, len as u8) {
                Some(t) => out.push((t, remaining(r))),
                None => foreign += 1,
            }
        } else {
            foreign += 1;
        }
    }
    (out, foreign)
}

/// The netlink messages (sequence numbers left zero) that carry out `plan`, and how many
/// bans were too long for a timeout and go in as permanent. Per set: every removal added
/// (no timeout) and deleted, so removing an absent element is not an error; then every
/// addition.
pub(crate) fn plan_messages(table: &str, plan: &Plan) -> (Vec<Vec<u8>>, usize) {
    let mut messages = Vec::new();
    let mut made_permanent = 0;
    let mut zero_end_sent: HashSet<SetKind> = HashSet::new();
    for kind in SetKind::ALL {
        let targets: Vec<&IpNet> = plan
            .remove
            .iter()
            .filter(|t| SetKind::of(t) == kind)
            .collect();
        if targets.is_empty() {
            continue;
        }
        let units = targets.iter().map(|t| element(t, None));
        let zero = zero_end(kind, targets.iter().copied(), &mut zero_end_sent);
        set_messages(
            &mut messages,
            table,
            kind,
            MSG_NEWSETELEM,
            zero.into_iter().chain(units),
        );
        let units = targets.iter().map(|t| element(t, None));
        set_messages(&mut messages, table, kind, MSG_DELSETELEM, units);
    }
    for kind in SetKind::ALL {
        let adds: Vec<&(IpNet, Option<Duration>)> = plan
            .add
            .iter()
            .filter(|(t, _)| SetKind::of(t) == kind)
            .collect();
        if adds.is_empty() {
            continue;
        }
        let zero = zero_end(kind, adds.iter().map(|(t, _)| t), &mut zero_end_sent);
        let units = adds.iter().map(|(t, timeout)| {
            let ms = match timeout.map(timeout_secs) {
                Some(s) if s <= MAX_TIMEOUT_SECS => Some(s * 1000),
                Some(_) => {
                    made_permanent += 1;
                    None
                }
                None => None,
            };
            element(t, ms)
        });
        set_messages(
            &mut messages,
            table,
            kind,
            MSG_NEWSETELEM,
            zero.into_iter().chain(units),
        );
    }
    (messages, made_permanent)
}

/// Messages that empty each of our four sets (`NFT_MSG_DELSETELEM` without an element
/// list flushes the set), to go first in a refill's transaction.
pub(crate) fn flush_messages(table: &str) -> Vec<Vec<u8>> {
    SetKind::ALL
        .iter()
        .map(|kind| {
            let mut m = header(MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK);
            attr(&mut m, LIST_TABLE, &cstr(table));
            attr(&mut m, LIST_SET, &cstr(kind.nft_name()));
            finish(&mut m);
            m
        })
        .collect()
}

/// The end element at address zero `nft` adds to an interval set, once per set and batch
/// list, unless a network starting at zero is among `targets`.
fn zero_end<'a>(
    kind: SetKind,
    mut targets: impl Iterator<Item = &'a IpNet>,
    sent: &mut HashSet<SetKind>,
) -> Option<Vec<u8>> {
    if !kind.is_net()
        || sent.contains(&kind)
        || targets.any(|t| key_value(&key(&t.network())) == Some(0))
    {
        return None;
    }
    sent.insert(kind);
    let zero = vec![0u8; if kind.is_v6() { 16 } else { 4 }];
    let mut b = Vec::with_capacity(32);
    let at = nest(&mut b, LIST_ELEM);
    key_attr(&mut b, &zero);
    attr(&mut b, ELEM_FLAGS, &INTERVAL_END.to_be_bytes());
    end_nest(&mut b, at);
    Some(b)
}

fn key(a: &std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(v) => v.octets().to_vec(),
        std::net::IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// One target's list elements: an address, or a network's start (and end) element.
fn element(target: &IpNet, timeout_ms: Option<u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    let start = key(&target.network());
    let at = nest(&mut b, LIST_ELEM);
    key_attr(&mut b, &start);
    if let Some(ms) = timeout_ms {
        attr(&mut b, ELEM_TIMEOUT, &ms.to_be_bytes());
    }
    let is_net = SetKind::of(target).is_net();
    // The first address after the network, unless it reaches the top.
    let after =
        key(&target.broadcast())
            .iter()
            .rev()
            .fold((Vec::new(), true), |(mut v, carry), &byte| {
                let (sum, next) = if carry {
                    byte.overflowing_add(1)
                } else {
                    (byte, false)
                };
                v.push(sum);
                (v, next)
            });
    let (mut after, overflow) = after;
    after.reverse();
    if is_net && overflow {
        attr(&mut b, ELEM_USERDATA, &OPEN_INTERVAL_UDATA);
    }
    end_nest(&mut b, at);
    if is_net && !overflow {
        let at = nest(&mut b, LIST_ELEM);
        key_attr(&mut b, &after);
        attr(&mut b, ELEM_FLAGS, &INTERVAL_END.to_be_bytes());
        end_nest(&mut b, at);
    }
    b
}

/// Messages of `msg` for set `kind`, each with at most [`MESSAGE_ELEMENTS_BYTES`] of
/// elements (one target's elements never split).
fn set_messages(
    out: &mut Vec<Vec<u8>>,
    table: &str,
    kind: SetKind,
    msg: u16,
    units: impl Iterator<Item = Vec<u8>>,
) {
    let flags = if msg == MSG_NEWSETELEM {
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK
    } else {
        NLM_F_REQUEST | NLM_F_ACK
    };
    let open = |table: &str| {
        let mut m = header(msg, flags);
        attr(&mut m, LIST_TABLE, &cstr(table));
        attr(&mut m, LIST_SET, &cstr(kind.nft_name()));
        let at = nest(&mut m, LIST_ELEMENTS);
        (m, at)
    };
    let mut current: Option<(Vec<u8>, usize)> = None;
    for unit in units {
        if let Some((m, at)) = &current
            && m.len() - at + unit.len() > MESSAGE_ELEMENTS_BYTES
        {
            let (mut m, at) = (m.clone(), *at);
            end_nest(&mut m, at);
            finish(&mut m);
            out.push(m);
            current = None;
        }
        let (m, _) = current.get_or_insert_with(|| open(table));
        m.extend_from_slice(&unit);
    }
    if let Some((mut m, at)) = current {
        end_nest(&mut m, at);
        finish(&mut m);
        out.push(m);
    }
}

/// An nfnetlink message header (length patched by [`finish`], sequence number at send).
fn header(msg: u16, flags: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(MESSAGE_ELEMENTS_BYTES + 128);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&((SUBSYS_NFTABLES << 8) | msg).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    m.extend_from_slice(&[FAMILY_INET, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
    m
}

fn finish(m: &mut [u8]) {
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
}

/// BATCH_BEGIN / BATCH_END: `nfgenmsg` with res_id = the nf_tables subsystem.
fn control(out: &mut Vec<u8>, kind: u16, seq: u32) {
    out.extend_from_slice(&20u32.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&SUBSYS_NFTABLES.to_be_bytes());
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn attr(b: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    b.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(payload);
    b.resize(b.len().next_multiple_of(4), 0);
}

fn key_attr(b: &mut Vec<u8>, key: &[u8]) {
    let at = nest(b, ELEM_KEY);
    attr(b, DATA_VALUE, key);
    end_nest(b, at);
}

fn nest(b: &mut Vec<u8>, kind: u16) -> usize {
    let at = b.len();
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    at
}

fn end_nest(b: &mut [u8], at: usize) {
    let len = (b.len() - at) as u16;
    b[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// What a dump would return for what `plan_messages` wrote.
    fn written(plan: &Plan, kind: SetKind) -> Vec<RawElem> {
        let (msgs, _) = plan_messages("pc", plan);
        let mut out = Vec::new();
        for m in msgs {
            let kind_of = u16_at(&m, 4).unwrap() & 0xff;
            let set_name = attributes(&m[20..])
                .find(|(t, _)| *t == LIST_SET)
                .map(|(_, p)| p.to_vec())
                .unwrap();
            if kind_of == MSG_NEWSETELEM && set_name == cstr(kind.nft_name()) {
                parse_elements(&m[20..], &mut out);
            }
        }
        out
    }

    #[test]
    fn networks_round_trip_through_the_encoding() {
        let plan = Plan {
            add: vec![
                (net("198.51.100.0/24"), Some(Duration::from_millis(1500))),
                (net("203.0.113.128/25"), None),
                (net("255.255.255.0/24"), None),
            ],
            ..Plan::default()
        };
        let raws = written(&plan, SetKind::Net4);
        // zero end, 3 starts, 2 ends (the top network is open).
        assert_eq!(raws.len(), 6, "{raws:?}");
        assert!(raws[0].end && raws[0].key == [0, 0, 0, 0]);
        assert_eq!(raws[1].timeout_ms, Some(2000));
        assert_eq!(raws[2].key, [198, 51, 101, 0]);
        assert!(raws[2].end);
        assert!(raws[5].open);
        let (got, foreign) = decode(SetKind::Net4, raws);
        assert_eq!(foreign, 0);
        let mut got: Vec<IpNet> = got.into_iter().map(|(t, _)| t).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                net("198.51.100.0/24"),
                net("203.0.113.128/25"),
                net("255.255.255.0/24")
            ]
        );
    }

    #[test]
    fn addresses_and_v6_networks_round_trip() {
        let plan = Plan {
            add: vec![
                (net("2001:db8::1/128"), Some(Duration::from_secs(60))),
                (net("2001:db8:1::/48"), None),
            ],
            ..Plan::default()
        };
        let (a, _) = decode(SetKind::Addr6, written(&plan, SetKind::Addr6));
        assert_eq!(
            a,
            vec![(net("2001:db8::1/128"), Some(Duration::from_secs(60)))]
        );
        let (n, foreign) = decode(SetKind::Net6, written(&plan, SetKind::Net6));
        assert_eq!((n, foreign), (vec![(net("2001:db8:1::/48"), None)], 0));
    }

    #[test]
    fn a_range_that_is_not_a_network_is_foreign() {
        let raw = |k: [u8; 4], end| RawElem {
            key: k.to_vec(),
            end,
            open: false,
            expires_ms: None,
            timeout_ms: None,
        };
        let (got, foreign) = decode(
            SetKind::Net4,
            vec![raw([192, 0, 2, 0], false), raw([192, 0, 2, 3], true)],
        );
        assert_eq!((got.len(), foreign), (0, 1));
    }

    #[test]
    fn removals_are_added_then_deleted_and_messages_stay_small() {
        let plan = Plan {
            remove: (0..20_000u32)
                .map(|i| {
                    IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                        0xc000_0000 + i,
                    )))
                })
                .collect(),
            ..Plan::default()
        };
        let (msgs, _) = plan_messages("pc", &plan);
        let types: Vec<u16> = msgs.iter().map(|m| u16_at(m, 4).unwrap() & 0xff).collect();
        let adds = types.iter().filter(|t| **t == MSG_NEWSETELEM).count();
        assert_eq!(adds * 2, types.len());
        assert!(types[..adds].iter().all(|t| *t == MSG_NEWSETELEM));
        for m in &msgs {
            assert!(m.len() <= MESSAGE_ELEMENTS_BYTES + 64, "{}", m.len());
            assert_eq!(u32_at(m, 0).unwrap() as usize, m.len());
        }
    }
}
