//! Administrator commands and their errors.

use std::time::Duration;

use ipnet::IpNet;

/// The longest manual ban that still ends: `u32::MAX` seconds (about 136 years), the
/// longest element timeout the nft backend writes (nft's JSON carries whole seconds in 32
/// bits; the kernel itself refuses timeouts of 2^64 ns, about 584 years, and more with
/// `ERANGE`). A [`Command::Ban`] asking for longer is a permanent ban. (ipset's own limit,
/// 2147483 s or 24.8 days, is lower: that backend writes longer bans as permanent kernel
/// elements, which the daemon removes when the ban ends.)
pub const MAX_BAN_DURATION: Duration = Duration::from_secs(u32::MAX as u64);

/// Something an administrator asks a jail to do (through the control socket or the CLI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ban an address or network by hand. A target that is already banned in this jail gets
    /// the new ban in place of the old one (a new [`Decision::Ban`](crate::Decision::Ban) for
    /// the same target, which the firewall driver applies as a replacement).
    Ban {
        /// The address (as a /32 or /128) or network. Host bits are cleared and IPv4-mapped
        /// IPv6 becomes IPv4, as for events.
        target: IpNet,
        /// How long; `None` applies the jail's escalation rule (which may give a permanent
        /// ban once the offender has enough bans in its history). Longer than
        /// [`MAX_BAN_DURATION`]: permanent.
        duration: Option<Duration>,
        /// Ban until an administrator unbans (wins over `duration`).
        permanent: bool,
        /// Ban even if the target overlaps the allowlist.
        force: bool,
    },
    /// Lift the ban of exactly this target. The offender's history is kept, so a later ban
    /// still escalates.
    Unban {
        /// The banned address or network, as it was banned.
        target: IpNet,
    },
    /// Lift every ban of this jail.
    UnbanAll,
    /// Forget every sliding window (the counted failures); bans, history and protection
    /// stay.
    Flush,
}

/// Why [`JailEngine::handle_command`](super::JailEngine::handle_command) refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A manual ban without `force` would cover an allowlisted address.
    #[error("{target} overlaps the allowlist entry {allowed}; use force to ban it anyway")]
    Allowlisted {
        /// The requested target.
        target: IpNet,
        /// The allowlist entry it overlaps.
        allowed: IpNet,
    },
    /// Unban of a target this jail has no ban for (an address inside a banned network is not
    /// banned by itself: unban the network).
    #[error("{target} is not banned in this jail")]
    NotBanned {
        /// The requested target.
        target: IpNet,
    },
}
