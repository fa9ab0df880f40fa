#!/usr/bin/env python3
"""Recovery after `nft flush ruleset` with N active bans (issue 11 target: all back <= 1 s).

The daemon runs in a throwaway network namespace with N bans (maxretry failure lines for N
distinct addresses of 198.18.0.0/15, appended in one write; the script waits until the kernel
set holds them all). Then, ROUNDS times: `nft flush ruleset` inside the namespace (what
`systemctl restart nftables` or a careless admin does), and the clock runs until the last and
the first address are back in `inet portcullis addr4` and a full listing counts all N. The
daemon notices through `nft monitor` (no polling); it sets the table up again and re-applies
every ban in one transaction.

Fail2Ban has no such recovery: after a flush its bans stay gone until each jail is restarted
(its actions re-run `actionstart` only then), so the ratio is against "never".

usage: sudo bench/kernel_heal.py [--count 100000] [--rounds 5] [--bin target/release/portcullis]
"""
import argparse, datetime, ipaddress, json, os, re, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Bench, load_line, need_root

ap = argparse.ArgumentParser()
ap.add_argument("--count", type=int, default=100_000)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                              "release", "portcullis"))
ap.add_argument("--timeout", type=float, default=60.0)
args = ap.parse_args()
need_root("kernel_heal.py")
if args.count > 131_000:
    sys.exit("at most 131000 addresses fit in 198.18.0.0/15")

base = ipaddress.IPv4Address("198.18.0.0")
addrs = [str(base + 1 + i) for i in range(args.count)]
results = {"count": args.count, "load": load_line(), "rounds": []}
print(results["load"])
def logged_at(b, after, text):
    """Wall time of the daemon's first log line containing `text` after `after`."""
    with open(os.path.join(b.dir, "daemon.log")) as f:
        for line in f:
            if text not in line:
                continue
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
            if not m:
                continue
            t = datetime.datetime.fromisoformat(m.group(1)).replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if t > after:
                return t
    return None


def healed_at(b, after):
    """Wall time of the daemon's first "firewall healed" log line after `after`: the heal's nft
    transaction has committed by then (the line is written after nft exited successfully)."""
    return logged_at(b, after, "firewall healed")

with Bench(args.bin, 'maxretry = 3\nfindtime = "10m"\nbantime = "1h"\nbantime_factor = 1.0\n'
           'v6_net_threshold = false\n', log_level="info") as b:
    b.start()
    stamp = time.strftime("%b %e %H:%M:%S")
    data = "".join(
        f"{stamp} srv sshd[{10000 + i % 50000}]: Failed password for root from {a} port {20000 + k} ssh2\n"
        for i, a in enumerate(addrs) for k in range(3)).encode()
    fd = os.open(b.log, os.O_WRONLY | os.O_APPEND)
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    os.close(fd)
    t0 = time.perf_counter()
    while not b.has_element("addr4", addrs[-1]):
        if time.perf_counter() - t0 > args.timeout:
            sys.exit(f"the {args.count} bans never reached the kernel:\n{b.daemon_log()}")
        time.sleep(0.05)
    while b.set_count("addr4") < args.count:
        time.sleep(0.1)
    print(f"{args.count} bans in the kernel; flushing the ruleset {args.rounds} times")
    time.sleep(1.0)
    for r in range(args.rounds):
        t_wall = time.time()
        out = b.nft("flush", "ruleset")
        t0 = time.perf_counter()
        if out.returncode != 0:
            sys.exit(f"nft flush ruleset failed: {out.stderr}")
        # Reading the daemon's log costs nothing; polling nft would (at 100k elements one
        # `nft get element` takes ~0.4 s of CPU on this 2-core machine, slowing the heal).
        healed = None
        while healed is None and time.perf_counter() - t0 < args.timeout:
            time.sleep(0.02)
            healed = healed_at(b, t_wall)
        back = time.perf_counter() - t0 if (b.has_element("addr4", addrs[-1])
                                            and b.has_element("addr4", addrs[0])) else None
        n = b.set_count("addr4")
        secs = healed and round(healed - t_wall, 3)
        noticed = logged_at(b, t_wall, "the kernel lost our")
        noticed = noticed and round(noticed - t_wall, 3)
        ok = back is not None and n >= args.count and secs is not None
        results["rounds"].append({"secs": secs, "noticed_s": noticed,
                                  "elements": n})
        print(f"round {r}: noticed after {noticed} s, the heal's transaction committed {secs} s after "
              f"the flush (daemon log); "
              f"then checked: first and last present, {n} elements "
              f"[{'MET (<= 1 s)' if ok and secs <= 1.0 else 'MISSED'}]")
        if not ok:
            results["error"] = True
        time.sleep(1.0)
    secs = sorted(x["secs"] for x in results["rounds"] if x["secs"] is not None)
    if secs:
        results["median_s"] = secs[len(secs) // 2]
        results["max_s"] = secs[-1]
        print(f"recovery after nft flush ruleset with {args.count} bans: median {results['median_s']} s, "
              f"max {results['max_s']} s (target <= 1 s); Fail2Ban: not until its jails restart")
print(json.dumps(results))
sys.exit(1 if results.get("error") else 0)
