#!/usr/bin/env python3
"""Growth curve (issue 13 item 7): time and peak memory against size, for portcullis and,
where it finishes within a cap, Fail2Ban, in one run.

Phases (each in a throwaway network namespace via daemonlib.Bench, like the other daemon
benches; the host ruleset is never touched):

- bans N (default 10k, 100k, 1M): N failure lines for N distinct addresses of 2001:db8::/32
  (maxretry = 1, one line each) appended in one write; time until the daemon holds all N
  bans (and, with nft, the last one is in the kernel set); the daemon's peak RSS (VmHWM).
  Then `status` and `bans --limit 100` latency (RUNS calls each, min/median), and a kill -9
  + restart: time to READY=1 (the stored bans reconciled into the firewall) and VmHWM.
- track N (default 1M): N distinct addresses with ONE failure each (below maxretry = 5):
  time until all N lines are read and counted, and the daemon's VmHWM (issue 13 item 6:
  <= 256 MiB at 1M).
- scan L (default 1M, 10M lines): `portcullis scan --json` of a portcullis-loggen log with
  /usr/bin/time (wall, peak RSS), and `fail2ban-regex` on the same file under a cap
  (`--cap`, default 600 s; past it: "did not finish in N s").

Fail2Ban's daemon is not run here (it bans ~121/s on this machine, so 100k bans take
~14 min and 1M ~2.3 h); its measured rate is printed as a reference line, labelled so.

Prints a table, writes bench/out/scale.json and bench/out/scale.svg (hand-written SVG:
log-log time and memory against size).

usage: sudo bench/scale.py [--bans 10000,100000,1000000] [--track 1000000]
                           [--scan 1000000,10000000] [--backend nft|dry-run] [--cap 600]
                           [--runs 5] [--skip fail2ban] [--quick]

--quick (a few minutes on 2 busy cores): bans 10k and 100k, track 1M, scan 1M lines,
Fail2Ban capped at 120 s, 3 calls each; any size given explicitly still wins.
"""
import argparse, json, math, os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Bench, F2B_BANS_PER_SEC, load_line, need_root

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target"))
ap = argparse.ArgumentParser()
ap.add_argument("--bans", default="10000,100000,1000000")
ap.add_argument("--track", default="1000000")
ap.add_argument("--scan", default="1000000,10000000")
ap.add_argument("--backend", default="nft", choices=["nft", "dry-run"])
ap.add_argument("--cap", type=float, default=600.0, help="seconds before a peer run is abandoned")
ap.add_argument("--runs", type=int, default=5, help="calls of status / bans --limit 100")
ap.add_argument("--timeout", type=float, default=900.0)
ap.add_argument("--skip", default="", help="comma list: fail2ban")
ap.add_argument("--bin", default=os.path.join(TARGET, "release", "portcullis"))
ap.add_argument("--loggen", default=os.path.join(TARGET, "release", "portcullis-loggen"))
ap.add_argument("--out", default=os.path.join(HERE, "out"))
ap.add_argument("--quick", action="store_true", help="small sizes: see the docstring")
QUICK = {"bans": "10000,100000", "track": "1000000", "scan": "1000000", "cap": 120.0, "runs": 3}
args = ap.parse_args()
if args.quick:
    given = {a.split("=")[0].lstrip("-") for a in sys.argv[1:] if a.startswith("--")}
    for k, v in QUICK.items():
        if k not in given:
            setattr(args, k, v)
sizes = lambda s: [int(x) for x in s.split(",") if x.strip()]
skip = set(args.skip.split(","))
need_root("scale.py")
os.makedirs(args.out, exist_ok=True)


def addr(i):
    """The i-th distinct address of 2001:db8::/32 (one per /64: no aggregation rule joins them)."""
    return f"2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::{1 + (i >> 32):x}"


def failure_lines(n):
    stamp = time.strftime("%b %e %H:%M:%S")
    return "".join(f"{stamp} srv sshd[{10000 + i % 50000}]: Failed password for root from "
                   f"{addr(i)} port {20000 + i % 40000} ssh2\n" for i in range(n)).encode()


def vm(pid, key):
    """VmHWM / VmRSS of a process in MiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def append(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    os.close(fd)


def timed_ctl(b, *argv):
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        out = b.ctl(*argv)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise RuntimeError(f"{argv}: {out.stderr}")
    return min(times), statistics.median(times)


def jail_of(st):
    return next(j for j in st["jails"] if j["name"] == "sshd")


def bench_extra(maxretry):
    return (f'maxretry = {maxretry}\nfindtime = "10m"\nbantime = "1d"\nbantime_factor = 1.0\n'
            'v6_net_threshold = false\n')


def make_bench(maxretry):
    backend = "nft" if args.backend == "nft" else "none"
    b = Bench(args.bin, bench_extra(maxretry), backend=backend)
    return b


def phase_bans(n):
    r = {"size": n}
    with make_bench(1) as b:
        b.start(timeout=args.timeout)
        data = failure_lines(n)
        t0 = time.perf_counter()
        append(b.log, data)
        done = None
        while time.perf_counter() - t0 < args.timeout:
            time.sleep(0.2)
            st = b.status()
            if jail_of(st)["active_bans"] >= n:
                if args.backend == "nft":
                    while not b.has_element("addr6", addr(n - 1)):
                        time.sleep(0.05)
                done = time.perf_counter() - t0
                break
        r["bans_secs"] = done and round(done, 3)
        r["bans_hwm_mib"] = vm(b.daemon.pid, "VmHWM")
        r["status_ms"] = [round(x * 1000, 1) for x in timed_ctl(b, "status", "--json")]
        r["bans_limit_ms"] = [round(x * 1000, 1)
                              for x in timed_ctl(b, "bans", "--limit", "100", "--json")]
        r["state_db_mib"] = round(sum(
            os.path.getsize(os.path.join(b.dir, "state", f)) for f in os.listdir(
                os.path.join(b.dir, "state")) if f.startswith("state.db")) / 1048576, 1)
        b.kill9()
        t_ready = b.start(timeout=args.timeout)
        r["restart_secs"] = round(t_ready, 3)
        r["restart_hwm_mib"] = vm(b.daemon.pid, "VmHWM")
        r["restart_bans"] = jail_of(b.status())["active_bans"]
    print(f"bans {n}: {r}", flush=True)
    return r


def phase_track(n):
    r = {"size": n}
    with make_bench(5) as b:
        b.start(timeout=args.timeout)
        hwm0 = vm(b.daemon.pid, "VmHWM")
        data = failure_lines(n)
        t0 = time.perf_counter()
        append(b.log, data)
        done = None
        while time.perf_counter() - t0 < args.timeout:
            time.sleep(0.5)
            j = jail_of(b.status())
            read = sum(s["lines"] for s in j["sources"])
            if read >= n and j["attempts"] >= n:
                done = time.perf_counter() - t0
                break
        time.sleep(2)  # the next position write carries the windows: let it land
        r.update(track_secs=done and round(done, 3), idle_hwm_mib=hwm0,
                 track_hwm_mib=vm(b.daemon.pid, "VmHWM"), track_rss_mib=vm(b.daemon.pid, "VmRSS"),
                 status_ms=[round(x * 1000, 1) for x in timed_ctl(b, "status", "--json")])
        b.kill9()
        t_ready = b.start(timeout=args.timeout)
        r["restart_secs"] = round(t_ready, 3)
        r["restart_hwm_mib"] = vm(b.daemon.pid, "VmHWM")
    print(f"track {n}: {r}", flush=True)
    return r


def time_cmd(argv, cap, stdout=subprocess.DEVNULL):
    """(wall s, peak RSS MiB) of argv under /usr/bin/time, or (None, None) past `cap`."""
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", *argv], stdout=stdout,
                         stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        p.kill()
        subprocess.run(["pkill", "-KILL", "-P", str(p.pid)], check=False)
        p.wait()
        return None, None
    last = err.strip().splitlines()[-1].split()
    return float(last[0]) if time.perf_counter() - t > 0 else None, int(last[1]) / 1024.0


def phase_scan(lines):
    log = os.path.join(args.out, f"scale-{lines}.log")
    if not os.path.exists(log):
        subprocess.run([args.loggen, "--lines", str(lines), "--attackers", "2000",
                        "--out", log], check=True)
    subprocess.run(["cat", log], stdout=subprocess.DEVNULL, check=True)  # page cache
    r = {"size": lines}
    best = None
    for _ in range(2):
        w, m = time_cmd([args.bin, "scan", "--json", log], args.timeout)
        if w is not None and (best is None or w < best[0]):
            best = (w, m)
    r["scan_secs"], r["scan_rss_mib"] = best or (None, None)
    if "fail2ban" not in skip and os.path.exists("/usr/bin/fail2ban-regex"):
        w, m = time_cmd(["fail2ban-regex", log, "/etc/fail2ban/filter.d/sshd.conf"], args.cap)
        r["f2b_secs"], r["f2b_rss_mib"] = w, m
        r["f2b_cap"] = args.cap
    print(f"scan {lines}: {r}", flush=True)
    return r


def svg(results, path):
    """Two log-log panels: seconds and MiB against size, one polyline per series."""
    series_t = [("bans at once", "bans", "bans_secs", "#c0392b"),
                ("restart to READY=1", "bans", "restart_secs", "#2980b9"),
                ("portcullis scan", "scan", "scan_secs", "#27ae60"),
                ("fail2ban-regex", "scan", "f2b_secs", "#7f8c8d"),
                ("track (1 failure each)", "track", "track_secs", "#8e44ad")]
    series_m = [("daemon, bans", "bans", "bans_hwm_mib", "#c0392b"),
                ("daemon, restarted", "bans", "restart_hwm_mib", "#2980b9"),
                ("portcullis scan", "scan", "scan_rss_mib", "#27ae60"),
                ("fail2ban-regex", "scan", "f2b_rss_mib", "#7f8c8d"),
                ("daemon, tracking", "track", "track_hwm_mib", "#8e44ad")]
    W, H, pad = 460, 320, 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 40}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="10" y="16" font-size="13">portcullis growth curve ({load_line()})</text>']
    for panel, (title, series) in enumerate([("wall seconds", series_t), ("peak RSS, MiB", series_m)]):
        pts = [(r["size"], r[k]) for _, ph, k, _ in series for r in results[ph] if r.get(k)]
        if not pts:
            continue
        x0, y0 = panel * W + pad, 30
        xs = [math.log10(p[0]) for p in pts]
        ys = [math.log10(p[1]) for p in pts]
        xmin, xmax = math.floor(min(xs)), math.ceil(max(xs))
        ymin, ymax = math.floor(min(ys)), math.ceil(max(ys))
        xmax, ymax = max(xmax, xmin + 1), max(ymax, ymin + 1)
        pw, ph_ = W - pad - 20, H - pad - 10
        X = lambda v: x0 + (math.log10(v) - xmin) / (xmax - xmin) * pw
        Y = lambda v: y0 + ph_ - (math.log10(v) - ymin) / (ymax - ymin) * ph_
        out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph_}" fill="none" stroke="#333"/>')
        out.append(f'<text x="{x0}" y="{y0 - 4}">{title} (log) vs size (lines or addresses, log)</text>')
        for e in range(xmin, xmax + 1):
            out.append(f'<text x="{X(10 ** e) - 10}" y="{y0 + ph_ + 14}">1e{e}</text>')
        for e in range(ymin, ymax + 1):
            out.append(f'<text x="{x0 - 40}" y="{Y(10 ** e) + 4}">1e{e}</text>')
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{Y(10 ** e)}" y2="{Y(10 ** e)}" stroke="#ddd"/>')
        for i, (label, ph, key, colour) in enumerate(series):
            p = sorted((r["size"], r[key]) for r in results[ph] if r.get(key))
            if not p:
                continue
            coords = " ".join(f"{X(a):.1f},{Y(v):.1f}" for a, v in p)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for a, v in p:
                out.append(f'<circle cx="{X(a):.1f}" cy="{Y(v):.1f}" r="3" fill="{colour}"/>')
            out.append(f'<text x="{x0 + 8}" y="{y0 + 14 + 13 * i}" fill="{colour}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


print(load_line(), "; backend", args.backend, flush=True)
results = {"load": load_line(), "backend": args.backend,
           "bans": [phase_bans(n) for n in sizes(args.bans)],
           "track": [phase_track(n) for n in sizes(args.track)],
           "scan": [phase_scan(n) for n in sizes(args.scan)]}
results["load_after"] = load_line()
with open(os.path.join(args.out, "scale.json"), "w") as f:
    json.dump(results, f, indent=1)
svg(results, os.path.join(args.out, "scale.svg"))

print(f"\n{'what':<34}{'size':>10}{'wall s':>10}{'peak MiB':>10}  notes")
for r in results["bans"]:
    n = r["size"]
    print(f"{'bans at once':<34}{n:>10}{fmt(r['bans_secs']):>10}{fmt(r['bans_hwm_mib']):>10}  "
          f"status {r['status_ms'][0]}/{r['status_ms'][1]} ms, bans --limit 100 "
          f"{r['bans_limit_ms'][0]}/{r['bans_limit_ms'][1]} ms (min/median of {args.runs}); "
          f"state.db {r['state_db_mib']} MiB; Fail2Ban at {F2B_BANS_PER_SEC:.0f} bans/s "
          f"(measured earlier, not run): {n / F2B_BANS_PER_SEC:.0f} s")
    print(f"{'restart to READY=1':<34}{n:>10}{fmt(r['restart_secs']):>10}"
          f"{fmt(r['restart_hwm_mib']):>10}  {r['restart_bans']} bans restored")
for r in results["track"]:
    print(f"{'track distinct addresses':<34}{r['size']:>10}{fmt(r['track_secs']):>10}"
          f"{fmt(r['track_hwm_mib']):>10}  RSS now {fmt(r['track_rss_mib'])} MiB; restart "
          f"{r['restart_secs']} s, {fmt(r['restart_hwm_mib'])} MiB")
for r in results["scan"]:
    print(f"{'portcullis scan (lines)':<34}{r['size']:>10}{fmt(r['scan_secs']):>10}"
          f"{fmt(r['scan_rss_mib']):>10}")
    if "f2b_cap" in r:
        if r["f2b_secs"] is None:
            print(f"{'fail2ban-regex (lines)':<34}{r['size']:>10}{'-':>10}{'-':>10}  "
                  f"did not finish in {r['f2b_cap']:.0f} s")
        else:
            print(f"{'fail2ban-regex (lines)':<34}{r['size']:>10}{fmt(r['f2b_secs']):>10}"
                  f"{fmt(r['f2b_rss_mib']):>10}  x{r['f2b_secs'] / r['scan_secs']:.0f} portcullis")
print(f"\n{results['load_after']} (after); wrote {args.out}/scale.json and {args.out}/scale.svg")
