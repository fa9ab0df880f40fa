//! What the firewall backends need to know: names, hook, verdict, and how to run the tools.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What happens to a packet from a banned source.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Silently discard: the attacker waits for its own timeout (the cheapest for us).
    #[default]
    Drop,
    /// Answer with ICMP/ICMPv6 "port unreachable" (nft `reject`, iptables `REJECT`): the
    /// peer learns at once that it is blocked, and we answer every packet it sends.
    Reject,
}

/// Settings shared by every backend.
///
/// Defaults suit a normal host: `inet portcullis` on the input hook at priority -10, drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallConfig {
    /// Name of our nftables table (family `inet`) and prefix of our ipset names. Everything
    /// portcullis creates lives under this name, so nothing else on the host is touched.
    /// ASCII letters, digits, `_` and `-`, at most 20 characters (ipset names are limited
    /// to 31 and we append up to `-net6`).
    pub table: String,
    /// Priority of our nftables base chains. The standard `filter` priority is 0; -10
    /// runs our drop before other filter chains spend work on a banned packet.
    /// Not used by the ipset backend, which inserts its rules first in `INPUT`.
    pub priority: i32,
    /// What to do with banned packets.
    pub verdict: Verdict,
    /// Also filter the forward hook (container and router hosts, where attacks on
    /// published ports are forwarded, not delivered locally).
    pub hook_forward: bool,
    /// Words put before every command we run, for example `["ip", "netns", "exec", "ns1"]`
    /// when the firewall to manage lives in another network namespace. Empty on a normal
    /// host.
    pub command_prefix: Vec<String>,
    /// Write and read set elements over netlink (nfnetlink batches, see `nfnl`) when the
    /// kernel to manage is reachable: `command_prefix` is empty or `netns` names its
    /// namespace. `false`: everything goes through `nft` (the fallback, also used when the
    /// socket cannot be opened or a transfer fails). Table, chain and set setup always
    /// goes through `nft`.
    pub netlink: bool,
    /// The network namespace the firewall to manage lives in, as a file
    /// (`/run/netns/NAME`), for the netlink socket when `command_prefix` runs the tools
    /// there. `None`: our own namespace.
    pub netns: Option<PathBuf>,
    /// The `nft` binary (searched in `PATH` unless absolute).
    pub nft: PathBuf,
    /// The `ipset` binary.
    pub ipset: PathBuf,
    /// The `iptables` binary (IPv4 rules of the ipset backend).
    pub iptables: PathBuf,
    /// The `ip6tables` binary (IPv6 rules of the ipset backend).
    pub ip6tables: PathBuf,
    /// Upper bound on one tool invocation; a hung tool is killed and reported, so the
    /// daemon never blocks forever. 100k elements take well under a second.
    #[serde(with = "duration_secs")]
    pub command_timeout: Duration,
    /// Capacity of each ipset (`maxelem`); the ipset default of 65536 is too small for a
    /// large attack. nftables sets have no such limit.
    pub ipset_maxelem: u32,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            table: "portcullis".to_owned(),
            priority: -10,
            verdict: Verdict::Drop,
            hook_forward: false,
            command_prefix: Vec::new(),
            netlink: true,
            netns: None,
            nft: PathBuf::from("nft"),
            ipset: PathBuf::from("ipset"),
            iptables: PathBuf::from("iptables"),
            ip6tables: PathBuf::from("ip6tables"),
            command_timeout: Duration::from_secs(30),
            ipset_maxelem: 1 << 21,
        }
    }
}

impl FirewallConfig {
    /// Whether set elements go over netlink (see [`FirewallConfig::netlink`]).
    pub(crate) fn uses_netlink(&self) -> bool {
        self.netlink && (self.command_prefix.is_empty() || self.netns.is_some())
    }

    /// Check the values that end up in command arguments and object names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = !self.table.is_empty()
            && self.table.len() <= 20
            && self
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !self.table.starts_with('-');
        if !name_ok {
            return Err(ConfigError::TableName {
                name: self.table.clone(),
            });
        }
        if self.command_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.ipset_maxelem == 0 {
            return Err(ConfigError::ZeroMaxelem);
        }
        Ok(())
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert!(FirewallConfig::default().validate().is_ok());
    }

    #[test]
    fn table_names_are_checked() {
        for bad in ["", "a b", "x;rm", "-flag", "abcdefghijklmnopqrstu"] {
            let c = FirewallConfig {
                table: bad.to_owned(),
                ..FirewallConfig::default()
            };
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }
        let c = FirewallConfig {
            table: "pc_test-1".to_owned(),
            ..FirewallConfig::default()
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn zero_timeout_is_refused() {
        let c = FirewallConfig {
            command_timeout: Duration::ZERO,
            ..FirewallConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::ZeroTimeout)));
    }
}
