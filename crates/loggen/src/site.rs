//! Site mode: days of a whole site's sshd traffic (legitimate users with their typos, the
//! internet's usual scanners) with an optional distributed campaign or user-targeted
//! attack, and the ground truth of its participants (issue 15's evaluation).
//!
//! Events are planned first (each with its own time), sorted, then written, so the output
//! is in time order and byte-identical for the same options.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::clock::{Format, Stamp};
use crate::rng::Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// First second (Unix).
    pub start: i64,
    /// Length in days.
    pub days: u32,
    /// Legitimate users (each with one or two home addresses, logging in 3 times a day).
    pub users: u32,
    /// Share of a user's logins with a mistyped password first.
    pub typo_rate: f64,
    /// New scanner addresses per hour (each 1 to 6 tries within minutes, common names).
    pub scanners_per_hour: f64,
    /// Campaign addresses (0: none).
    pub campaign_addrs: u32,
    /// Tries per campaign address: 1 to this many.
    pub campaign_tries: u32,
    /// The campaign starts this many hours after `start`.
    pub campaign_start_hour: u32,
    /// It lasts this many hours.
    pub campaign_hours: u32,
    /// Target one existing account (`Failed password for NAME`) instead of a dictionary.
    pub campaign_user: Option<String>,
    /// PRNG seed.
    pub seed: u64,
    /// Host name in each line.
    pub host: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            start: 1_793_577_600,
            days: 14,
            users: 40,
            typo_rate: 0.1,
            scanners_per_hour: 3.0,
            campaign_addrs: 0,
            campaign_tries: 3,
            campaign_start_hour: 24 * 7,
            campaign_hours: 72,
            campaign_user: None,
            seed: 1,
            host: "gate".into(),
        }
    }
}

/// The ground truth of a site log.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SiteTruth {
    /// The campaign's first and last line (Unix seconds), when there is one.
    pub campaign_start: Option<i64>,
    /// See `campaign_start`.
    pub campaign_end: Option<i64>,
    /// Its participants.
    pub participants: BTreeSet<Ipv4Addr>,
    /// Its failed attempts.
    pub campaign_attempts: u64,
    /// Scanner addresses of the background.
    pub scanners: u64,
    /// The legitimate users' addresses.
    pub user_addrs: BTreeSet<Ipv4Addr>,
    /// Lines written.
    pub lines: u64,
}

const SCANNER_NAMES: &[&str] = &[
    "root", "admin", "test", "user", "ubuntu", "oracle", "postgres", "git", "pi", "guest",
    "ftpuser", "deploy",
];
const CAMPAIGN_NAMES: &[&str] = &[
    "root", "admin", "support", "nagios", "deploy", "ftpuser", "webadmin", "backup",
];

/// One planned line.
struct Line {
    t_us: i64,
    pid: u32,
    msg: String,
}

fn addr_of(rng: &mut Rng) -> Ipv4Addr {
    // Public-looking unicast, outside the documentation and private ranges used for users.
    loop {
        let a = rng.range(11, 223) as u8;
        if a == 127 || a == 100 || a == 169 || a == 172 || a == 192 || a == 198 || a == 203 {
            continue;
        }
        return Ipv4Addr::new(
            a,
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.range(1, 255) as u8,
        );
    }
}

/// One failed try as sshd logs it: `Invalid user` + `Failed password for invalid user`
/// for a name that does not exist, `Failed password for NAME` for one that does.
fn failure(
    out: &mut Vec<Line>,
    t_us: i64,
    pid: u32,
    name: &str,
    exists: bool,
    addr: Ipv4Addr,
    port: u64,
) {
    if exists {
        out.push(Line {
            t_us,
            pid,
            msg: format!("Failed password for {name} from {addr} port {port} ssh2"),
        });
    } else {
        out.push(Line {
            t_us,
            pid,
            msg: format!("Invalid user {name} from {addr} port {port}"),
        });
        out.push(Line {
            t_us: t_us + 1500,
            pid,
            msg: format!("Failed password for invalid user {name} from {addr} port {port} ssh2"),
        });
    }
}

/// Write the site's log to `out`; returns its truth.
pub fn generate_site<W: Write>(cfg: &SiteConfig, mut out: W) -> std::io::Result<SiteTruth> {
    let mut rng = Rng::new(cfg.seed);
    let mut lines: Vec<Line> = Vec::new();
    let mut truth = SiteTruth::default();
    let mut pid = 1000u32;
    let mut next_pid = || {
        pid = pid.wrapping_add(1).max(1000);
        pid
    };
    let day_us = 86_400_000_000i64;
    let hour_us = 3_600_000_000i64;
    let t0 = cfg.start * 1_000_000;
    let user_names: Vec<String> = (0..cfg.users).map(|u| format!("staff{u:02}")).collect();
    // Legitimate users.
    for (u, name) in user_names.iter().enumerate() {
        let home = Ipv4Addr::new(198, 51, 100, (u % 250) as u8 + 1);
        let away = Ipv4Addr::new(100, 64, (u / 250) as u8, (u % 250) as u8 + 1);
        truth.user_addrs.insert(home);
        truth.user_addrs.insert(away);
        for d in 0..i64::from(cfg.days) {
            for _ in 0..3 {
                let t = t0 + d * day_us + 7 * hour_us + rng.below(14 * hour_us as u64) as i64;
                let addr = if rng.chance(0.8) { home } else { away };
                let p = next_pid();
                let port = rng.range(30000, 65000);
                if rng.chance(cfg.typo_rate) {
                    lines.push(Line {
                        t_us: t,
                        pid: p,
                        msg: format!("Failed password for {name} from {addr} port {port} ssh2"),
                    });
                }
                lines.push(Line {
                    t_us: t + 4_000_000,
                    pid: p,
                    msg: format!("Accepted password for {name} from {addr} port {port} ssh2"),
                });
            }
        }
    }
    // Background scanners.
    let hours = i64::from(cfg.days) * 24;
    for h in 0..hours {
        let n = poisson(&mut rng, cfg.scanners_per_hour);
        for _ in 0..n {
            truth.scanners += 1;
            let addr = addr_of(&mut rng);
            let mut t = t0 + h * hour_us + rng.below(hour_us as u64) as i64;
            for _ in 0..rng.range(1, 7) {
                let name = SCANNER_NAMES[rng.below(SCANNER_NAMES.len() as u64) as usize];
                let port = rng.range(30000, 65000);
                failure(&mut lines, t, next_pid(), name, name == "root", addr, port);
                t += rng.range(2, 20) as i64 * 1_000_000;
            }
        }
    }
    // The campaign.
    if cfg.campaign_addrs > 0 {
        let c0 = t0 + i64::from(cfg.campaign_start_hour) * hour_us;
        let span = (i64::from(cfg.campaign_hours) * hour_us).max(1);
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        while truth.participants.len() < cfg.campaign_addrs as usize {
            let addr = addr_of(&mut rng);
            if !truth.participants.insert(addr) {
                continue;
            }
            let tries = rng.range(1, u64::from(cfg.campaign_tries.max(1)) + 1);
            // Tries of one address are spread too (minutes to hours apart).
            let mut t = c0 + rng.below(span as u64) as i64;
            for _ in 0..tries {
                let (name, exists) = match &cfg.campaign_user {
                    Some(u) => (u.as_str(), true),
                    None => {
                        let n = CAMPAIGN_NAMES[rng.below(CAMPAIGN_NAMES.len() as u64) as usize];
                        (n, n == "root")
                    }
                };
                let port = rng.range(30000, 65000);
                failure(&mut lines, t, next_pid(), name, exists, addr, port);
                truth.campaign_attempts += 1;
                first = first.min(t);
                last = last.max(t);
                t += rng.range(300, 4 * 3600) as i64 * 1_000_000;
            }
        }
        truth.campaign_start = Some(first.div_euclid(1_000_000));
        truth.campaign_end = Some(last.div_euclid(1_000_000));
    }
    lines.sort_by_key(|l| (l.t_us, l.pid));
    let mut stamp = Stamp::new(Format::Rfc3339);
    let mut buf = Vec::with_capacity(256);
    for l in &lines {
        buf.clear();
        stamp.push(&mut buf, l.t_us);
        let _ = writeln!(buf, "{} sshd[{}]: {}", cfg.host, l.pid, l.msg);
        out.write_all(&buf)?;
    }
    out.flush()?;
    truth.lines = lines.len() as u64;
    Ok(truth)
}

/// Poisson by inversion (small means).
fn poisson(rng: &mut Rng, mean: f64) -> u64 {
    let l = (-mean).exp();
    let (mut k, mut p) = (0u64, 1.0);
    loop {
        p *= rng.unit();
        if p <= l || k > 1000 {
            return k;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_logs_are_deterministic_and_carry_their_truth() {
        let cfg = SiteConfig {
            days: 3,
            campaign_addrs: 200,
            campaign_start_hour: 24,
            campaign_hours: 24,
            ..SiteConfig::default()
        };
        let mut a = Vec::new();
        let ta = generate_site(&cfg, &mut a).unwrap();
        let mut b = Vec::new();
        let tb = generate_site(&cfg, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_eq!(ta.participants.len(), 200);
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count() as u64, ta.lines);
        for p in ta.participants.iter().take(20) {
            assert!(text.contains(&format!(" from {p} port ")), "{p}");
        }
        let (s, e) = (ta.campaign_start.unwrap(), ta.campaign_end.unwrap());
        assert!(s >= cfg.start + 24 * 3600 && e <= cfg.start + 48 * 3600 + 4 * 3600 * 3);
        // Time order.
        let stamps: Vec<&str> = text.lines().map(|l| &l[..26]).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    }
}
