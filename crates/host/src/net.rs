//! TCP connections from `/proc/net/tcp` and `/proc/net/tcp6`, labelled by the sshd process
//! that holds each socket, grouped by remote address.
//!
//! The kernel prints each address as the raw network-order bytes read as native 32-bit words
//! (`%08X` per word, so `0100007F` is 127.0.0.1 on little-endian machines) and each port as a
//! plain hexadecimal number.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use portcullis_core::event::normalize_addr;
use serde::{Deserialize, Serialize};

use crate::sshd_proc::{SshdProcess, SshdRole, SshdTitleError, sshd_processes};

/// The state of a TCP socket (the `st` column).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    /// 01: connected.
    Established,
    /// 02: connecting out.
    SynSent,
    /// 03: handshake half done (a SYN flood shows many of these).
    SynRecv,
    /// 04
    FinWait1,
    /// 05
    FinWait2,
    /// 06: closed, lingering.
    TimeWait,
    /// 07
    Close,
    /// 08: the peer closed, we have not.
    CloseWait,
    /// 09
    LastAck,
    /// 0A: a listening socket.
    Listen,
    /// 0B
    Closing,
    /// 0C: a request socket for a half-open connection.
    NewSynRecv,
    /// Any other value.
    Other(u8),
}

impl TcpState {
    /// The state for the kernel's numeric code.
    pub fn from_code(code: u8) -> TcpState {
        use TcpState::*;
        match code {
            0x01 => Established,
            0x02 => SynSent,
            0x03 => SynRecv,
            0x04 => FinWait1,
            0x05 => FinWait2,
            0x06 => TimeWait,
            0x07 => Close,
            0x08 => CloseWait,
            0x09 => LastAck,
            0x0A => Listen,
            0x0B => Closing,
            0x0C => NewSynRecv,
            other => Other(other),
        }
    }

    /// The name `ss`/`netstat` print (`ESTABLISHED`, `SYN_RECV`, …).
    pub fn name(self) -> String {
        use TcpState::*;
        match self {
            Established => "ESTABLISHED".into(),
            SynSent => "SYN_SENT".into(),
            SynRecv => "SYN_RECV".into(),
            FinWait1 => "FIN_WAIT1".into(),
            FinWait2 => "FIN_WAIT2".into(),
            TimeWait => "TIME_WAIT".into(),
            Close => "CLOSE".into(),
            CloseWait => "CLOSE_WAIT".into(),
            LastAck => "LAST_ACK".into(),
            Listen => "LISTEN".into(),
            Closing => "CLOSING".into(),
            NewSynRecv => "NEW_SYN_RECV".into(),
            Other(c) => format!("STATE_{c:02X}"),
        }
    }
}

/// One line of `/proc/net/tcp{,6}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSocket {
    /// Our side. IPv4-mapped IPv6 is shown as IPv4, so one host is one key.
    pub local: SocketAddr,
    /// The peer (`0.0.0.0:0` for a listener).
    pub remote: SocketAddr,
    /// Connection state.
    pub state: TcpState,
    /// Owner uid of the socket.
    pub uid: u32,
    /// Socket inode: the key to the process holding it (`/proc/PID/fd/* -> socket:[inode]`).
    /// 0 for sockets no process holds (TIME_WAIT, request sockets).
    pub inode: u64,
}

/// Why `/proc/net/tcp` text could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line does not have the kernel's format.
    #[error("line {line}: unexpected /proc/net/tcp format: {text:?}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// sshd processes could not be listed.
    #[error("cannot list sshd processes")]
    Processes(#[from] SshdTitleError),
}

/// Parse the text of `/proc/net/tcp` or `/proc/net/tcp6` (header line included).
pub fn parse_proc_net_tcp(text: &str) -> Result<Vec<TcpSocket>, ConnectionsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("sl") {
            continue;
        }
        let bad = || ConnectionsError::Format {
            line: i + 1,
            text: line.to_owned(),
        };
        out.push(parse_line(trimmed).ok_or_else(bad)?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Option<TcpSocket> {
    let mut f = line.split_ascii_whitespace();
    let _sl = f.next()?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = TcpState::from_code(u8::from_str_radix(f.next()?, 16).ok()?);
    let _queues = f.next()?;
    let _timer = f.next()?;
    let _retrnsmt = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    Some(TcpSocket {
        local,
        remote,
        state,
        uid,
        inode,
    })
}

fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (k, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(k * 8..k * 8 + 8)?)?);
            }
            normalize_addr(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Eight hex digits printed from a native-endian u32 holding network-order bytes.
fn word(hex: &str) -> Option<[u8; 4]> {
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

/// Read and parse `<proc_root>/net/tcp` and `<proc_root>/net/tcp6`; a missing tcp6 (IPv6
/// disabled) is not an error.
pub fn read_proc_net_tcp(proc_root: &Path) -> Result<Vec<TcpSocket>, ConnectionsError> {
    let mut all = Vec::new();
    for name in ["tcp", "tcp6"] {
        let path = proc_root.join("net").join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => all.extend(parse_proc_net_tcp(&text)?),
            Err(e) if name == "tcp6" && e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConnectionsError::Io { path, source }),
        }
    }
    Ok(unique_connections(all))
}

/// One entry per (local, remote) pair. The kernel fills `/proc/net/tcp` a page at a time and
/// walks its hash table afresh for each page, so a socket opened or closed while we read can
/// shift the walk and list another socket twice; counted as is, one connection would look
/// like two. The last listing wins (it is the newer state).
fn unique_connections(sockets: Vec<TcpSocket>) -> Vec<TcpSocket> {
    let mut seen: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut out: Vec<TcpSocket> = Vec::with_capacity(sockets.len());
    for s in sockets {
        match seen.get(&(s.local, s.remote)) {
            Some(&i) => out[i] = s,
            None => {
                seen.insert((s.local, s.remote), out.len());
                out.push(s);
            }
        }
    }
    out
}

/// The sockets that are connections (not listeners) to one of `ports` on our side.
pub fn to_ports(sockets: &[TcpSocket], ports: &[u16]) -> Vec<TcpSocket> {
    sockets
        .iter()
        .filter(|s| s.state != TcpState::Listen && ports.contains(&s.local.port()))
        .cloned()
        .collect()
}

/// Where an SSH connection stands, judged from the sshd processes holding its socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SshState {
    /// A process titled `user@tty` / `user@notty` holds it: the user got in.
    Authenticated {
        /// The logged-in user.
        user: String,
        /// The terminal, `None` for `notty` (commands, sftp, tunnels).
        tty: Option<String>,
    },
    /// Only pre-authentication sshd processes hold it (`[priv]`, `[net]`, `[accepted]`, …).
    PreAuth {
        /// The user name the client asked for, when sshd's title shows it (`unknown` for
        /// names that do not exist is reported as `None`).
        user: Option<String>,
    },
    /// No sshd process we could see holds the socket (TIME_WAIT, a half-open handshake, or
    /// a process whose fds we may not read).
    Unknown,
}

/// One connection with its SSH state and the pids of the sshd processes holding it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshConnection {
    /// The socket.
    pub socket: TcpSocket,
    /// Authenticated, pre-auth or unknown.
    pub ssh: SshState,
    /// sshd processes holding the socket (monitor and child), for `kill` or `ps`.
    pub pids: Vec<u32>,
}

/// Label each socket with the SSH state its holders' titles show. An authenticated holder
/// wins over pre-auth ones (the `[priv]` monitor of a logged-in session stays `user [priv]`).
pub fn label_connections(sockets: &[TcpSocket], processes: &[SshdProcess]) -> Vec<SshConnection> {
    let mut holders: HashMap<u64, Vec<&SshdProcess>> = HashMap::new();
    for p in processes {
        for &inode in &p.socket_inodes {
            holders.entry(inode).or_default().push(p);
        }
    }
    sockets
        .iter()
        .map(|s| {
            let procs = if s.inode == 0 {
                &[][..]
            } else {
                holders.get(&s.inode).map(Vec::as_slice).unwrap_or(&[])
            };
            SshConnection {
                socket: s.clone(),
                ssh: state_of(procs),
                pids: procs.iter().map(|p| p.pid).collect(),
            }
        })
        .collect()
}

fn state_of(procs: &[&SshdProcess]) -> SshState {
    let mut pre_user: Option<String> = None;
    let mut pre = false;
    for p in procs {
        match &p.role {
            SshdRole::Session { user, tty } => {
                return SshState::Authenticated {
                    user: user.clone(),
                    tty: tty.clone(),
                };
            }
            SshdRole::PreAuth { user } => {
                pre = true;
                if pre_user.is_none() {
                    pre_user.clone_from(user);
                }
            }
            SshdRole::Listener | SshdRole::Other => {}
        }
    }
    if pre {
        SshState::PreAuth { user: pre_user }
    } else {
        SshState::Unknown
    }
}

/// The connections from one remote address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteConnections {
    /// The peer address.
    pub addr: IpAddr,
    /// How many connections it has to the SSH ports.
    pub count: usize,
    /// Connections per state name (`ESTABLISHED` → 3).
    pub states: BTreeMap<String, usize>,
    /// How many are authenticated sessions.
    pub authenticated: usize,
    /// How many are still before authentication.
    pub pre_auth: usize,
    /// Users of authenticated sessions and user names tried in pre-auth ones, sorted, unique.
    pub users: Vec<String>,
    /// Every connection, for the detailed view.
    pub connections: Vec<SshConnection>,
}

/// Group connections by remote address, most connections first (ties by address).
pub fn group_by_remote(conns: Vec<SshConnection>) -> Vec<RemoteConnections> {
    let mut by_addr: BTreeMap<IpAddr, RemoteConnections> = BTreeMap::new();
    for c in conns {
        let addr = c.socket.remote.ip();
        let g = by_addr.entry(addr).or_insert_with(|| RemoteConnections {
            addr,
            count: 0,
            states: BTreeMap::new(),
            authenticated: 0,
            pre_auth: 0,
            users: Vec::new(),
            connections: Vec::new(),
        });
        g.count += 1;
        *g.states.entry(c.socket.state.name()).or_default() += 1;
        match &c.ssh {
            SshState::Authenticated { user, .. } => {
                g.authenticated += 1;
                g.users.push(user.clone());
            }
            SshState::PreAuth { user } => {
                g.pre_auth += 1;
                g.users.extend(user.iter().cloned());
            }
            SshState::Unknown => {}
        }
        g.connections.push(c);
    }
    let mut out: Vec<RemoteConnections> = by_addr.into_values().collect();
    for g in &mut out {
        g.users.sort();
        g.users.dedup();
    }
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.addr.cmp(&b.addr)));
    out
}

/// Everything at once, live: the connections to `ports` from `<proc_root>/net/tcp{,6}`,
/// labelled through the sshd processes in `<proc_root>`, grouped by remote address.
pub fn connections_to_ports(
    proc_root: &Path,
    ports: &[u16],
) -> Result<Vec<RemoteConnections>, ConnectionsError> {
    let sockets = to_ports(&read_proc_net_tcp(proc_root)?, ports);
    let procs = sshd_processes(proc_root)?;
    Ok(group_by_remote(label_connections(&sockets, &procs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written for this crate in the kernel's format (little-endian words).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 02:0000A1B2 00000000     0        0 1002 2 0000000000000000 20 4 30 10 -1
   2: 0A6433C6:0016 070200C0:C350 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0A6433C6:0016 070200C0:C351 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
   4: 0A6433C6:0016 070200C0:C352 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   5: 0A6433C6:01BB 090200C0:C353 01 00000000:00000000 00:00000000 00000000    33        0 1006 1 0000000000000000 20 4 30 10 -1
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: B80D0120000000000000000001000000:0016 B80D0120000000000000000005000000:E0F1 01 00000000:00000000 02:00000ABC 00000000     0        0 2002 1 0000000000000000 20 4 29 10 -1
   2: 0000000000000000FFFF00000A6433C6:0016 0000000000000000FFFF00000A7100CB:9C41 01 00000000:00000000 02:00000ABC 00000000  1000        0 2003 1 0000000000000000 20 4 29 10 -1
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv4_fixture() {
        let s = parse_proc_net_tcp(TCP).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].local, sa("0.0.0.0:22"));
        assert_eq!(s[0].state, TcpState::Listen);
        assert_eq!(s[1].local, sa("127.0.0.1:22"));
        assert_eq!(s[1].remote, sa("127.0.0.1:54321"));
        assert_eq!(s[2].local, sa("198.51.100.10:22"));
        assert_eq!(s[2].remote, sa("192.0.2.7:50000"));
        assert_eq!(s[2].inode, 1003);
        assert_eq!(s[3].state, TcpState::SynRecv);
        assert_eq!(s[4].state, TcpState::TimeWait);
        assert_eq!(s[5].uid, 33);
        assert_eq!(s[5].local.port(), 443);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn a_socket_listed_twice_counts_once() {
        let mut s = parse_proc_net_tcp(TCP).unwrap();
        let again = s[2].clone();
        s.push(again);
        let s = unique_connections(s);
        assert_eq!(s.len(), 6);
        let groups = group_by_remote(label_connections(&to_ports(&s, &[22]), &[]));
        let g = groups
            .iter()
            .find(|g| g.addr == sa("192.0.2.7:0").ip())
            .unwrap();
        assert_eq!(g.count, 3);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv6_fixture_and_maps_v4() {
        let s = parse_proc_net_tcp(TCP6).unwrap();
        assert_eq!(s[0].local, sa("[::]:22"));
        assert_eq!(s[1].local, sa("[2001:db8::1]:22"));
        assert_eq!(s[1].remote, sa("[2001:db8::5]:57585"));
        assert_eq!(s[2].local, sa("198.51.100.10:22"));
        assert_eq!(s[2].remote, sa("203.0.113.10:40001"));
        assert_eq!(s[2].uid, 1000);
    }

    #[test]
    fn rejects_garbage() {
        let err = parse_proc_net_tcp("sl x\n 0: zz:0016 00000000:0000 0A\n").unwrap_err();
        assert!(matches!(err, ConnectionsError::Format { line: 2, .. }));
        assert!(parse_proc_net_tcp("0: 0100007F:0016 0100007F:0016 01 0:0 0:0 0 x 0 1").is_err());
    }

    #[test]
    fn state_names() {
        assert_eq!(TcpState::from_code(0x03).name(), "SYN_RECV");
        assert_eq!(TcpState::from_code(0x06).name(), "TIME_WAIT");
        assert_eq!(TcpState::from_code(0x42).name(), "STATE_42");
    }

    fn proc_(pid: u32, role: SshdRole, inodes: &[u64]) -> SshdProcess {
        SshdProcess {
            pid,
            title: String::new(),
            role,
            socket_inodes: inodes.to_vec(),
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn labels_and_groups() {
        let mut sockets = parse_proc_net_tcp(TCP).unwrap();
        sockets.extend(parse_proc_net_tcp(TCP6).unwrap());
        let ssh = to_ports(&sockets, &[22]);
        assert_eq!(ssh.len(), 6, "listeners and port 443 dropped");
        let procs = vec![
            proc_(1, SshdRole::Listener, &[1001, 2001]),
            proc_(10, PreAuthUser("bob"), &[1002]),
            proc_(11, SessionUser("bob"), &[1002]),
            proc_(20, PreAuthUser("root"), &[1003]),
            proc_(21, SshdRole::PreAuth { user: None }, &[1003]),
            proc_(30, SessionUser("carol"), &[2003]),
        ];
        let labelled = label_connections(&ssh, &procs);
        assert_eq!(
            labelled[0].ssh,
            SshState::Authenticated {
                user: "bob".into(),
                tty: Some("pts/2".into())
            }
        );
        assert_eq!(labelled[0].pids, [10, 11]);
        assert_eq!(
            labelled[1].ssh,
            SshState::PreAuth {
                user: Some("root".into())
            }
        );
        assert_eq!(labelled[2].ssh, SshState::Unknown);
        let groups = group_by_remote(labelled);
        let top = &groups[0];
        assert_eq!(top.addr, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(top.count, 3);
        assert_eq!(top.states["ESTABLISHED"], 1);
        assert_eq!(top.states["SYN_RECV"], 1);
        assert_eq!(top.states["TIME_WAIT"], 1);
        assert_eq!((top.authenticated, top.pre_auth), (0, 1));
        assert_eq!(top.users, ["root"]);
        let carol = groups
            .iter()
            .find(|g| g.addr == "203.0.113.10".parse::<IpAddr>().unwrap())
            .unwrap();
        assert_eq!(carol.authenticated, 1);
        assert_eq!(groups.len(), 4);
        let json = serde_json::to_value(&groups[0]).unwrap();
        assert_eq!(json["connections"][0]["ssh"]["state"], "pre_auth");
        assert_eq!(json["connections"][0]["socket"]["state"], "ESTABLISHED");
    }

    #[allow(non_snake_case)]
    fn PreAuthUser(u: &str) -> SshdRole {
        SshdRole::PreAuth {
            user: Some(u.into()),
        }
    }

    #[allow(non_snake_case)]
    fn SessionUser(u: &str) -> SshdRole {
        SshdRole::Session {
            user: u.into(),
            tty: Some("pts/2".into()),
        }
    }

    #[test]
    fn live_loopback_connection_is_found() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let sockets = read_proc_net_tcp(Path::new("/proc")).unwrap();
        let found = to_ports(&sockets, &[port]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].state, TcpState::Established);
        assert_eq!(found[0].remote, peer);
        assert_eq!(found[0].remote, client.local_addr().unwrap());
        assert_ne!(found[0].inode, 0);
        // The socket belongs to this process: its inode is among our fds.
        let ours = crate::sshd_proc::socket_inodes(Path::new("/proc/self/fd"));
        assert!(ours.contains(&found[0].inode));
        let groups = connections_to_ports(Path::new("/proc"), &[port]).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].addr, peer.ip());
        assert_eq!(groups[0].connections[0].ssh, SshState::Unknown);
    }
}
