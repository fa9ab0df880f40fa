#!/usr/bin/env python3
"""Sustained ingest from a tailed file (issue 3 target: >= 1M lines/s with bans keeping up).

`portcullis-loggen` writes N lines (default 3M, realistic sshd mix with 2000 attackers, 20 %
IPv6, 40 % noise) with their ground truth. The daemon follows an empty auth.log in a throwaway
network namespace; the whole file is appended to it as fast as it can be written
(8 MiB writes from the page cache), and the clock runs until `portcullis status --json` shows (a) all N lines
read and (b) the jail's counted attempts equal to the truth's, i.e. every line went through
the filter and the jail engine, not just the reader. Bans land in the namespace's nft set;
their count is checked against the daemon's.

The log is dated so that it ends now (syslog time stamps, findtime 1 day), so the attackers
are banned while the lines stream in: "bans keeping up".

Fail2Ban's daemon ingests about 22.6k lines/s on this machine (brief section 5).

usage: sudo bench/ingest.py [--lines 3000000] [--bin target/release/portcullis]
"""
import argparse, datetime, json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Bench, F2B_INGEST_LINES_PER_SEC, load_line, need_root

tdir = os.environ.get("CARGO_TARGET_DIR", "target")
ap = argparse.ArgumentParser()
ap.add_argument("--lines", type=int, default=3_000_000)
ap.add_argument("--bin", default=os.path.join(tdir, "release", "portcullis"))
ap.add_argument("--loggen", default=os.path.join(tdir, "release", "portcullis-loggen"))
ap.add_argument("--timeout", type=float, default=300.0)
args = ap.parse_args()
need_root("ingest.py")

gen_dir = tempfile.mkdtemp(prefix="pcingest")
src = os.path.join(gen_dir, "gen.log")
truth_path = os.path.join(gen_dir, "truth.json")
try:
    # The generator's connections stretch the log over hours whatever the gap: generate once
    # to learn the span, then again so that it ends about now.
    def generate(start):
        subprocess.run([args.loggen, "--lines", str(args.lines), "--mean-gap-ms", "0",
                        "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "--truth", truth_path, "--out", src], check=True)
        with open(truth_path) as f:
            return json.load(f)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    truth = generate(now - datetime.timedelta(days=1))
    first = min(a["first_seen"] for a in truth["addresses"])
    last = max(a["last_seen"] for a in truth["addresses"])
    span = (datetime.datetime.fromisoformat(last.replace("Z", "+00:00"))
            - datetime.datetime.fromisoformat(first.replace("Z", "+00:00")))
    truth = generate(now - span - datetime.timedelta(seconds=60))
    attempts = truth["totals"]["attempts"]
    size = os.path.getsize(src)
    print(load_line())
    print(f"input: {args.lines} lines, {size / 1e6:.0f} MB, {truth['totals']['addresses']} "
          f"addresses, {attempts} attempts, log span {span}")

    with Bench(args.bin, 'maxretry = 5\nfindtime = "1d"\nbantime = "1h"\n'
               'bantime_factor = 1.0\n', log_level="warn") as b:
        b.start()
        subprocess.run(["cat", src], stdout=subprocess.DEVNULL)  # warm the page cache
        fin = os.open(src, os.O_RDONLY)
        fout = os.open(b.log, os.O_WRONLY | os.O_APPEND)
        prof = b.profile("ingest", 10)
        cpu0 = b.cpu_secs()
        t0 = time.perf_counter()
        while True:
            chunk = os.read(fin, 8 << 20)
            if not chunk:
                break
            while chunk:
                chunk = chunk[os.write(fout, chunk):]
        os.close(fout)
        os.close(fin)
        t_write = time.perf_counter() - t0
        t_read = t_done = None
        st = None
        while time.perf_counter() - t0 < args.timeout:
            st = b.status()
            jail = st["jails"][0]
            lines = sum(s["lines"] for s in jail["sources"])
            if t_read is None and lines >= args.lines:
                t_read = time.perf_counter() - t0
            if jail["attempts"] >= attempts and t_read is not None:
                t_done = time.perf_counter() - t0
                break
            time.sleep(0.02)
        cpu = b.cpu_secs() - cpu0
        b.end_profile(prof)
        jail = st["jails"][0]
        bans_engine = jail["total_bans"]
        k4, k6 = b.set_count("addr4"), b.set_count("addr6")
        kn4, kn6 = b.set_count("net4"), b.set_count("net6")
        res = {"lines": args.lines, "bytes": size, "write_s": round(t_write, 3),
               "read_s": t_read and round(t_read, 3), "processed_s": t_done and round(t_done, 3),
               "attempts": jail["attempts"], "truth_attempts": attempts,
               "bans": bans_engine, "active_bans": jail["active_bans"],
               "kernel_elements": k4 + k6 + kn4 + kn6, "daemon_cpu_s": round(cpu, 3)}
        print(f"appended in {t_write:.3f} s; all lines read after "
              f"{t_read if t_read is None else round(t_read, 3)} s, all attempts counted "
              f"({jail['attempts']} of {attempts}) after "
              f"{t_done if t_done is None else round(t_done, 3)} s; daemon CPU {cpu:.2f} s")
        if t_done:
            rate = args.lines / t_done
            res["lines_per_s"] = round(rate)
            print(f"ingest: {rate / 1e6:.2f} M lines/s wall, {args.lines / cpu / 1e6:.2f} M lines "
                  f"per CPU-second [{'MET' if rate >= 1e6 else 'MISSED'} (>= 1M lines/s)] = "
                  f"x{rate / F2B_INGEST_LINES_PER_SEC:.0f} Fail2Ban "
                  f"({F2B_INGEST_LINES_PER_SEC / 1e3:.1f}k lines/s)")
        print(f"bans: {bans_engine} decided, {jail['active_bans']} active, {res['kernel_elements']} "
              f"in the kernel sets (addr4 {k4}, addr6 {k6}, net4 {kn4}, net6 {kn6})")
        print(json.dumps(res))
        ok = t_done is not None and jail["attempts"] == attempts
        if not ok:
            print("ERROR: not all lines/attempts were processed (or counted differently)",
                  file=sys.stderr)
        sys.exit(0 if ok else 1)
finally:
    for p in (src, truth_path):
        if os.path.exists(p):
            os.remove(p)
    os.rmdir(gen_dir)
