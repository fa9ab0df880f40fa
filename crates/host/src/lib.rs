//! Reads what the live host knows about logins and SSH connections, for `portcullis investigate`,
//! the host's own addresses, which the daemon never bans, and, for `portcullis audit`, the
//! accounts, their key files and sshd's effective configuration (`sshd -T`).
//!
//! Key decision: every reader takes the path it reads (`/var/run/utmp`, `/proc`,
//! `/etc/ssh/sshd_config`) as a parameter and every parser has a pure `parse_*` twin over bytes
//! or text, so tests run on fixtures written in the real formats and on the live machine alike.
//! Nothing here links libc: `struct utmp` is decoded from its glibc x86_64/aarch64 byte layout.
//! All user names and host names read here are attacker-influenced text: display them escaped.
#![deny(missing_docs)]

pub mod accounts;
pub mod addresses;
pub mod key_files;
pub mod net;
pub mod snapshot;
pub mod sshd_config;
pub mod sshd_effective;
pub mod sshd_proc;
pub mod time_serde;
pub mod utmp;

pub use addresses::{OwnAddressesError, own_addresses, parse_ip_addr_json};
pub use net::{
    ConnectionsError, RemoteConnections, SshConnection, SshState, TcpSocket, TcpState,
    connections_to_ports, group_by_remote, label_connections, parse_proc_net_tcp,
    read_proc_net_tcp, to_ports,
};
pub use snapshot::{HostPaths, HostSnapshot, snapshot};
pub use sshd_config::{SSHD_CONFIG_PATH, SshPortsError, parse_ssh_ports, ssh_ports};
pub use sshd_proc::{SshdProcess, SshdRole, classify_title, sshd_processes};
pub use utmp::{
    BTMP_PATH, FailedLogin, Login, LoginEnd, Session, UTMP_PATH, UtmpError, UtmpFile, UtmpKind,
    UtmpRecord, WTMP_PATH, current_sessions, failed_logins, logins, parse_utmp, pid_alive,
    read_utmp,
};
