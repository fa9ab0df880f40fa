//! Times the firewall backends for bench/firewall.sh. Run it as root inside a throwaway
//! network namespace (`ip netns exec NS fwbench nft 100000`); it creates and deletes its
//! own table/sets there. Addresses come from 2001:db8::/32 (documentation range).
//!
//! Backends: `nft` (set elements over netlink), `nft-cli` (everything through `nft -j -f`,
//! the fallback and the path before netlink), `ipset`.
//!
//! Prints `key=value` lines the script turns into a report.

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use portcullis_firewall::{Change, Firewall, FirewallConfig};

/// CPU seconds used so far by this process and its reaped children (the tools):
/// utime + stime + cutime + cstime from /proc/self/stat, in clock ticks of 1/100 s.
/// Wall time on a loaded machine mostly measures the other processes; this does not.
fn cpu_secs() -> f64 {
    let (own, tools) = cpu_split();
    own + tools
}

/// (this process, its reaped children) CPU seconds.
fn cpu_split() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime is field 14 overall.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|x| x.parse().unwrap())
        .collect();
    ((f[0] + f[1]) as f64 / 100.0, (f[2] + f[3]) as f64 / 100.0)
}

/// Run `f`, print `<key>_secs=` (wall) and `<key>_cpu=` (CPU of us + tools).
async fn timed<T>(key: &str, f: impl std::future::Future<Output = T>) -> T {
    let (t, (own, tools)) = (Instant::now(), cpu_split());
    let out = f.await;
    let (own2, tools2) = cpu_split();
    println!("{key}_secs={:.4}", t.elapsed().as_secs_f64());
    println!("{key}_cpu={:.2}", own2 - own + tools2 - tools);
    println!("{key}_cpu_tools={:.2}", tools2 - tools);
    out
}

fn target(i: u32) -> IpNet {
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, (i >> 16) as u16, i as u16);
    IpNet::from(IpAddr::V6(ip))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "nft".into());
    let n: u32 = args.next().map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let singles: u32 = args.next().map(|s| s.parse().unwrap()).unwrap_or(300);
    let config = FirewallConfig {
        table: "pcbench".into(),
        ..FirewallConfig::default()
    };
    let mut fw = match backend.as_str() {
        "nft" => Firewall::nft(config).unwrap(),
        "nft-cli" => Firewall::nft(FirewallConfig {
            netlink: false,
            ..config
        })
        .unwrap(),
        "ipset" => Firewall::ipset(config).unwrap(),
        other => panic!("unknown backend {other}"),
    };
    let hour = Some(Duration::from_secs(3600));
    fw.teardown(true).await.unwrap();
    fw.setup().await.unwrap();

    // 1. n distinct bans decided at once: one apply.
    let changes: Vec<Change> = (0..n)
        .map(|i| Change::Add {
            target: target(i),
            timeout: hour,
        })
        .collect();
    let report = timed("apply", fw.apply(&changes)).await.unwrap();
    assert_eq!(report.netlink_fallback, None);
    println!("apply_transactions={}", report.transactions);
    let listed = timed("list", fw.list()).await.unwrap();
    assert_eq!(listed.len(), n as usize, "not all bans are in the kernel");

    // 2. Restart with an intact kernel: reconcile finds nothing to do.
    let desired: Vec<(IpNet, Option<Duration>)> = (0..n).map(|i| (target(i), hour)).collect();
    let report = timed("reconcile_intact", fw.reconcile(&desired))
        .await
        .unwrap();
    assert!(report.rejected.is_empty());

    // 3. Restart after the sets were lost (reboot): reconcile n from scratch.
    fw.teardown(true).await.unwrap();
    fw.setup().await.unwrap();
    let report = timed("reconcile_scratch", fw.reconcile(&desired))
        .await
        .unwrap();
    assert_eq!(report.added, n as usize);
    assert_eq!(fw.list().await.unwrap().len(), n as usize);

    // 4. The per-ban way (one tool process per ban, as Fail2Ban's actions do), on the
    //    same sets, for comparison in the same run.
    fw.teardown(true).await.unwrap();
    fw.setup().await.unwrap();
    let (t, c) = (Instant::now(), cpu_secs());
    for i in 0..singles {
        let ip = target(i).addr().to_string();
        let ok = match backend.as_str() {
            "nft" | "nft-cli" => Command::new("nft")
                .args(["add", "element", "inet", "pcbench", "addr6"])
                .arg(format!("{{ {ip} timeout 3600s }}"))
                .status(),
            _ => Command::new("ipset")
                .args(["add", "pcbench6", &ip, "timeout", "3600", "-exist"])
                .status(),
        }
        .unwrap()
        .success();
        assert!(ok);
    }
    let per_process = t.elapsed();
    println!(
        "single_process_cpu_per_ban_ms={:.2}",
        (cpu_secs() - c) * 1000.0 / f64::from(singles)
    );
    println!(
        "single_process_bans_per_sec={:.1}",
        f64::from(singles) / per_process.as_secs_f64()
    );
    fw.teardown(true).await.unwrap();
}
