#!/usr/bin/env python3
"""Ban latency: a failure line written to a tailed log -> the address present in the kernel set.

Runs `portcullis run` in a throwaway network namespace (never the host's firewall) and watches
the kernel with `nft monitor` (netlink events, so no polling delay). For each trial, maxretry
lines for a fresh address are appended; the clock stops when nft reports the element added.
Prints p50/p90/p99/max over N trials and the ratio to Fail2Ban's measured median (300-460 ms).

usage: sudo bench/latency.py [--trials 250] [--bin target/release/portcullis]
"""
import argparse, json, os, subprocess, sys, tempfile, time, select, signal

ap = argparse.ArgumentParser()
ap.add_argument("--trials", type=int, default=250)
ap.add_argument("--bin", default="target/release/portcullis")
ap.add_argument("--backend", default="nft", choices=["nft", "ipset"])
args = ap.parse_args()
if os.geteuid() != 0:
    sys.exit("latency.py needs root (network namespace, nftables)")

ns = f"pcbench{os.getpid()}"
subprocess.run(["ip", "netns", "add", ns], check=True)
daemon = monitor = None
try:
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    d = tempfile.mkdtemp(prefix="pclat")
    log = os.path.join(d, "auth.log")
    open(log, "w").close()
    cfg = os.path.join(d, "cfg.toml")
    with open(cfg, "w") as f:
        f.write(f'[daemon]\nstate_dir = "{d}/state"\nsocket = "{d}/ctl.sock"\nlog_level = "warn"\n'
                f'[firewall]\nbackend = "{args.backend}"\n'
                f'[jail.sshd]\nsources = [{{ file = "{log}" }}]\nmaxretry = 3\nbantime = "1h"\n'
                f'v6_net_threshold = false\n')
    daemon = subprocess.Popen(["ip", "netns", "exec", ns, args.bin, "run", "--config", cfg],
                              stderr=open(os.path.join(d, "daemon.log"), "w"))
    for _ in range(200):
        if os.path.exists(f"{d}/ctl.sock"):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    if args.backend == "nft":
        monitor = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "monitor", "elements"],
                                   stdout=subprocess.PIPE, bufsize=0)
    else:
        sys.exit("only nft has a monitor; use --backend nft")
    time.sleep(0.3)
    w = open(log, "a", buffering=1)
    buf = b""
    lat = []
    for i in range(args.trials):
        ip = f"198.51.{100 + (i // 250)}.{1 + i % 250}"
        stamp = time.strftime("%b %e %H:%M:%S")
        for k in range(3):
            line = f"{stamp} srv sshd[{10000 + i * 3 + k}]: Failed password for root from {ip} port {2000 + k} ssh2\n"
            if k == 2:
                t0 = time.perf_counter()
            w.write(line)
            w.flush()
        deadline = time.time() + 5
        seen = False
        while time.time() < deadline and not seen:
            r, _, _ = select.select([monitor.stdout], [], [], 0.5)
            if r:
                buf += os.read(monitor.stdout.fileno(), 65536)
                while b"\n" in buf:
                    ln, buf = buf.split(b"\n", 1)
                    if ip.encode() + b" " in ln + b" " and b"add element" in ln:
                        lat.append(time.perf_counter() - t0)
                        seen = True
        if not seen:
            print(f"trial {i}: no ban seen for {ip} within 5 s", file=sys.stderr)
        time.sleep(0.01)
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    out = {"trials": args.trials, "seen": len(lat), "p50_ms": round(pct(0.5), 2),
           "p90_ms": round(pct(0.9), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(lat[-1] * 1000, 2)}
    print(json.dumps(out))
    print(f"ban latency p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms (targets 5 / 20 ms); "
          f"Fail2Ban median 300-460 ms here: {300 / out['p50_ms']:.0f}-{460 / out['p50_ms']:.0f}x faster")
finally:
    for p in (monitor, daemon):
        if p:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except Exception:
                p.kill()
    subprocess.run(["ip", "netns", "del", ns])
