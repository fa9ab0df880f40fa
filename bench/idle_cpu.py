#!/usr/bin/env python3
"""Idle CPU of the daemon (issue 3 target: about 0).

Starts `portcullis run` (one sshd jail on a tailed file, nft backend, in a throwaway network
namespace), lets it settle, then reads utime+stime of the process (all threads) from
/proc/PID/stat before and after --secs (default 30) seconds of idling, once without and once
with the systemd watchdog enabled (WATCHDOG_USEC=30 s, so WATCHDOG=1 every 15 s to a datagram
socket this script binds). Reports CPU ticks, CPU milliseconds and wakeups (voluntary +
involuntary context switches of all threads) per second.

usage: sudo bench/idle_cpu.py [--secs 30] [--bin target/release/portcullis]
"""
import argparse, glob, json, os, socket, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Bench, TICKS_PER_SEC, load_line, need_root, proc_cpu_ticks

ap = argparse.ArgumentParser()
ap.add_argument("--secs", type=float, default=30.0)
ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                              "release", "portcullis"))
args = ap.parse_args()
need_root("idle_cpu.py")


def switches(pid):
    total = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(st) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


print(load_line())
results = {}
for case in ("plain", "watchdog"):
    sockdir = tempfile.mkdtemp(prefix="pcidle")
    notify_path = os.path.join(sockdir, "notify")
    sock = None
    if case == "watchdog":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        os.environ["NOTIFY_SOCKET"] = notify_path
        os.environ["WATCHDOG_USEC"] = "30000000"
    try:
        with Bench(args.bin, 'maxretry = 5\nbantime = "1h"\n') as b:
            if case == "watchdog":
                # sd_notify checks WATCHDOG_PID when set: leave it unset (any pid accepted).
                os.environ.pop("WATCHDOG_PID", None)
            b.start()
            time.sleep(3)  # settle: the first position write, maintenance tick, etc.
            pid = b.daemon.pid
            c0, s0, t0 = proc_cpu_ticks(pid), switches(pid), time.perf_counter()
            time.sleep(args.secs)
            c1, s1, t1 = proc_cpu_ticks(pid), switches(pid), time.perf_counter()
            secs = t1 - t0
            ticks = c1 - c0
            msgs = []
            if sock:
                sock.setblocking(False)
                while True:
                    try:
                        msgs.append(sock.recv(4096).decode())
                    except BlockingIOError:
                        break
            r = {"secs": round(secs, 1), "cpu_ticks": ticks,
                 "cpu_ms": round(ticks * 1000 / TICKS_PER_SEC, 1),
                 "cpu_percent": round(100 * ticks / TICKS_PER_SEC / secs, 3),
                 "wakeups_per_s": round((s1 - s0) / secs, 2)}
            if sock:
                r["watchdog_pings"] = sum("WATCHDOG=1" in m for m in msgs)
            results[case] = r
            print(f"idle {case}: {ticks} ticks ({r['cpu_ms']} ms CPU) in {secs:.1f} s = "
                  f"{r['cpu_percent']} % of one CPU; {r['wakeups_per_s']} thread wakeups/s"
                  + (f"; {r['watchdog_pings']} WATCHDOG=1 pings" if sock else ""))
    finally:
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            os.environ.pop(k, None)
        if sock:
            sock.close()
        if os.path.exists(notify_path):
            os.remove(notify_path)
        os.rmdir(sockdir)
print(json.dumps(results))
