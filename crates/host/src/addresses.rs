//! The host's own addresses, from `ip -j addr show` (iproute2's JSON output).
//!
//! The daemon allowlists them in every jail, so the host never bans itself (a local
//! monitoring probe or a test login must not cut the machine off its own services).
//!
//! [`parse_ip_addr_json`] is the pure parser over the command's bytes, tested on fixtures in
//! the real format; [`own_addresses`] runs the command and hands its output to the parser.
//! Only each address entry's `local` counts: on a point-to-point link `address` is the peer,
//! which is not ours. `ip` prints `{}` for entries it filtered out; they carry no address.

use std::net::IpAddr;
use std::process::{Command, ExitStatus};

use serde::Deserialize;

/// Why the host's addresses could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnAddressesError {
    /// `ip` could not be started (not installed, not in `PATH`).
    #[error("cannot run `ip -j addr show`")]
    Spawn {
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `ip` ran and failed.
    #[error("`ip -j addr show` failed ({status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// The output is not the JSON `ip -j addr` prints.
    #[error("cannot read the output of `ip -j addr show`")]
    Json {
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// An entry's `local` is not an IP address.
    #[error("`ip -j addr show` printed {text:?} as an address of interface {interface:?}")]
    BadAddress {
        /// The interface (`ifname`), as printed.
        interface: String,
        /// The text that did not parse.
        text: String,
        /// What the address parser said.
        #[source]
        source: std::net::AddrParseError,
    },
}

/// One interface of `ip -j addr` (only the fields used; the rest are ignored).
#[derive(Deserialize)]
struct Interface {
    #[serde(default)]
    ifname: String,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

/// One address entry of an interface.
#[derive(Deserialize)]
struct AddrInfo {
    local: Option<String>,
}

/// The addresses in the output of `ip -j addr show`, in the order printed (duplicates
/// kept, e.g. one address on two interfaces).
pub fn parse_ip_addr_json(json: &[u8]) -> Result<Vec<IpAddr>, OwnAddressesError> {
    let interfaces: Vec<Interface> =
        serde_json::from_slice(json).map_err(|source| OwnAddressesError::Json { source })?;
    let mut out = Vec::new();
    for interface in &interfaces {
        for local in interface
            .addr_info
            .iter()
            .filter_map(|a| a.local.as_deref())
        {
            let addr = local
                .parse::<IpAddr>()
                .map_err(|source| OwnAddressesError::BadAddress {
                    interface: interface.ifname.clone(),
                    text: local.to_string(),
                    source,
                })?;
            out.push(addr);
        }
    }
    Ok(out)
}

/// The addresses configured on this host's interfaces (in the caller's network namespace),
/// by running `ip -j addr show`.
pub fn own_addresses() -> Result<Vec<IpAddr>, OwnAddressesError> {
    let out = Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .map_err(|source| OwnAddressesError::Spawn { source })?;
    if !out.status.success() {
        return Err(OwnAddressesError::Failed {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    parse_ip_addr_json(&out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip -j addr show` of iproute2 6.1 (Debian 12) with loopback, a down interface without
    /// addresses, an Ethernet interface with IPv4 and IPv6, a point-to-point tunnel (whose
    /// `address` is the peer) and the `{}` entry `ip` prints for a filtered address.
    const FIXTURE: &str = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"ifname":"ifb0","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether","address":"9e:cb:a1:5e:e2:88","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::fc:ff:fe00:1","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295},{}]},{"ifindex":5,"ifname":"tun0","flags":["POINTOPOINT","MULTICAST","NOARP","UP","LOWER_UP"],"mtu":1500,"qdisc":"fq_codel","operstate":"UNKNOWN","group":"default","txqlen":500,"link_type":"none","addr_info":[{"family":"inet","local":"198.51.100.1","address":"198.51.100.2","prefixlen":32,"scope":"global","label":"tun0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]"#;

    fn addrs(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().expect("literal")).collect()
    }

    #[test]
    fn every_local_address_in_order_and_never_a_peer() {
        let got = parse_ip_addr_json(FIXTURE.as_bytes()).expect("fixture parses");
        assert_eq!(
            got,
            addrs(&[
                "127.0.0.1",
                "::1",
                "192.0.2.2",
                "2001:db8::2",
                "fe80::fc:ff:fe00:1",
                "198.51.100.1",
            ])
        );
        assert!(!got.contains(&"198.51.100.2".parse().expect("literal")));
    }

    #[test]
    fn no_interfaces_is_no_addresses() {
        assert_eq!(
            parse_ip_addr_json(b"[]").expect("parses"),
            Vec::<IpAddr>::new()
        );
    }

    #[test]
    fn output_that_is_not_ip_json_is_an_error_with_its_cause() {
        for bad in [
            &b""[..],
            b"1: lo: <LOOPBACK,UP> mtu 65536",
            b"{\"ifname\":\"lo\"}",
        ] {
            let err = parse_ip_addr_json(bad).expect_err("not ip -j output");
            assert!(matches!(err, OwnAddressesError::Json { .. }), "{err:?}");
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    #[test]
    fn a_local_that_is_not_an_address_names_interface_and_text() {
        let json = br#"[{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.300"}]}]"#;
        let err = parse_ip_addr_json(json).expect_err("bad address");
        let msg = err.to_string();
        assert!(msg.contains("eth0") && msg.contains("192.0.2.300"), "{msg}");
        assert!(matches!(err, OwnAddressesError::BadAddress { .. }));
    }
}
