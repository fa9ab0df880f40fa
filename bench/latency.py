#!/usr/bin/env python3
"""Ban latency: a failure line written to a tailed log -> the address present in the kernel set.

Runs `portcullis run` in a throwaway network namespace (never the host's firewall) and watches
the kernel with `nft monitor` (netlink events, so no polling delay). For each trial, maxretry
lines for a fresh address are appended; the clock stops when nft reports the element added.
Prints p50/p90/p99/max over N trials and the ratio to Fail2Ban's measured median (300-460 ms).

Under faults (issue 11 target: p99 <= 20 ms): `--rate 10000` appends an attack of that many
failure lines per second (from the 254 addresses of 203.0.113.0/24 and 2001:db8:a::/112
rotating, written every 10 ms) to the same log during the trials, and `--reload-every 1`
reloads the daemon (`portcullis reload`) every second meanwhile.

Metrics (issue 14 item 3): `--metrics` enables `[metrics]` on 127.0.0.1:9191 in the namespace;
`--scrape-every 0.1` scrapes it meanwhile (a thread inside the namespace, plain sockets) and
reports scrape latency and size. Run with and without to compare ban latency.

usage: sudo bench/latency.py [--trials 250] [--bin target/release/portcullis]
                             [--rate 10000] [--reload-every 1] [--metrics [--scrape-every 0.1]]
"""
import argparse, ctypes, json, os, socket, subprocess, sys, tempfile, threading, time, select, signal

ap = argparse.ArgumentParser()
ap.add_argument("--trials", type=int, default=250)
ap.add_argument("--bin", default="target/release/portcullis")
ap.add_argument("--backend", default="nft", choices=["nft", "ipset"])
ap.add_argument("--rate", type=int, default=0, help="background attack lines per second")
ap.add_argument("--reload-every", type=float, default=0.0, help="seconds between reloads")
ap.add_argument("--metrics", action="store_true", help="enable [metrics] on 127.0.0.1:9191")
ap.add_argument("--scrape-every", type=float, default=0.0, help="seconds between scrapes")
args = ap.parse_args()
stop = threading.Event()
stats = {"attack_lines": 0, "reloads": 0, "reload_failures": 0, "reload_max_s": 0.0}
scrapes = []  # (seconds, bytes)


def scraper(ns):
    """GET /metrics every `args.scrape_every` s from inside the namespace (setns on this
    thread only), timing connect to last byte."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
    while not stop.wait(args.scrape_every):
        t0 = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", 9191), timeout=5) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as e:
            print(f"scrape failed: {e}", file=sys.stderr)
            continue
        dt = time.perf_counter() - t0
        body = data.split(b"\r\n\r\n", 1)[-1]
        if not data.startswith(b"HTTP/1.1 200"):
            print(f"scrape answered {data[:40]!r}", file=sys.stderr)
            continue
        scrapes.append((dt, len(body)))


def attack(log):
    """Append `args.rate` failure lines per second, in 10 ms chunks."""
    w = open(log, "a")
    i = 0
    t_next = time.perf_counter()
    per_chunk = max(1, args.rate // 100)
    while not stop.is_set():
        stamp = time.strftime("%b %e %H:%M:%S")
        chunk = []
        for _ in range(per_chunk):
            a = (f"203.0.113.{1 + i % 254}" if i % 2 else f"2001:db8:a::{1 + (i // 2) % 65000:x}")
            chunk.append(f"{stamp} srv sshd[{40000 + i % 20000}]: Failed password for root from {a} port 4000 ssh2\n")
            i += 1
        w.write("".join(chunk))
        w.flush()
        stats["attack_lines"] += per_chunk
        t_next += 0.01
        time.sleep(max(0.0, t_next - time.perf_counter()))


def reloads(sock):
    while not stop.wait(args.reload_every):
        t0 = time.perf_counter()
        r = subprocess.run([args.bin, "reload", "--socket", sock], capture_output=True)
        stats["reloads"] += 1
        stats["reload_max_s"] = max(stats["reload_max_s"], time.perf_counter() - t0)
        if r.returncode != 0:
            stats["reload_failures"] += 1

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
                f'v6_net_threshold = false\n'
                + ('[metrics]\nenabled = true\nlisten = "127.0.0.1:9191"\n' if args.metrics else ""))
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
    workers = []
    if args.rate:
        workers.append(threading.Thread(target=attack, args=(log,), daemon=True))
    if args.reload_every:
        workers.append(threading.Thread(target=reloads, args=(f"{d}/ctl.sock",), daemon=True))
    if args.scrape_every:
        workers.append(threading.Thread(target=scraper, args=(ns,), daemon=True))
    for t in workers:
        t.start()
    time.sleep(1.0 if workers else 0)
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
    stop.set()
    for t in workers:
        t.join(5)
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    out = {"trials": args.trials, "seen": len(lat), "p50_ms": round(pct(0.5), 2),
           "p90_ms": round(pct(0.9), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(lat[-1] * 1000, 2),
           "rate": args.rate, "reload_every": args.reload_every, "metrics": args.metrics, **stats}
    if scrapes:
        ss = sorted(s[0] for s in scrapes)
        out.update({"scrapes": len(ss), "scrape_p50_ms": round(ss[len(ss) // 2] * 1000, 3),
                    "scrape_p99_ms": round(ss[min(len(ss) - 1, int(0.99 * len(ss)))] * 1000, 3),
                    "scrape_max_ms": round(ss[-1] * 1000, 3),
                    "scrape_bytes": max(s[1] for s in scrapes)})
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
    if os.environ.get("PCBENCH_KEEP"):
        print(open(os.path.join(d, "daemon.log")).read()[-3000:], file=sys.stderr)
    subprocess.run(["ip", "netns", "del", ns])
