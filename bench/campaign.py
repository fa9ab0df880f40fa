#!/usr/bin/env python3
"""Site-wide campaign detection (issue 15.1): detection delay, participants attributed
(recall, precision) and false alarms on campaign-free weeks, for several campaign
intensities and CUSUM thresholds. No peer does this (Fail2Ban, sshguard and CrowdSec are
per address), so the numbers stand alone; the per-address jail is the implicit baseline:
with 1-3 tries per address it bans none of the participants (maxretry 5).

Each run: `portcullis-loggen --site-days` writes a site's log (40 users logging in 3 times a
day from their own addresses, 10 % typos; 3 new scanner addresses an hour with 1-6 tries
each; optionally a campaign of N addresses with 1-3 tries each spread over 72 h, starting on
day 8), then `portcullis scan --json` with `[campaign] targeted = false` reads it; the
campaign report is compared with loggen's truth.

- delay: `detected` (the end of the bin that raised the alarm) minus the campaign's first
  line, in hours;
- recall / precision: of the reported participants against the planted ones;
- false alarms: distributed-campaign reports on campaign-free 28-day logs, per month
  (30 days), and the same on the campaign runs outside the campaign's interval.

usage: bench/campaign.py [--seeds 3] [--clean-seeds 12] [--intensities 100,250,500,1000,3000]
                         [--thresholds 4,6,8,12] [--quick]

Writes bench/out/campaign.json and prints markdown tables for bench/README.md.
"""
import argparse, json, os, subprocess, sys, tempfile, time, statistics

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target"))
ap = argparse.ArgumentParser()
ap.add_argument("--seeds", type=int, default=3)
ap.add_argument("--clean-seeds", type=int, default=12)
ap.add_argument("--intensities", default="100,250,500,1000,3000")
ap.add_argument("--thresholds", default="4,6,8,12")
ap.add_argument("--profile", default="release")
ap.add_argument("--quick", action="store_true")
args = ap.parse_args()
if args.quick:
    args.seeds, args.clean_seeds = 2, 4

BIN = os.path.join(TARGET, args.profile)
LOGGEN = os.path.join(BIN, "portcullis-loggen")
PORTCULLIS = os.path.join(BIN, "portcullis")
for b in (LOGGEN, PORTCULLIS):
    if not os.path.exists(b):
        sys.exit(f"{b} missing: cargo build --{args.profile} -p portcullis -p portcullis-loggen")

START = "2026-11-02T00:00:00Z"
START_S = 1793577600
CAMPAIGN_START_HOUR = 24 * 7
HOURS = 72


def run(tmp, days, seed, addrs, threshold):
    log, truth_p, conf = (os.path.join(tmp, n) for n in ("auth.log", "truth.json", "p.toml"))
    cmd = [LOGGEN, "--site-days", str(days), "--seed", str(seed), "--start", START,
           "--out", log, "--truth", truth_p, "--campaign-addrs", str(addrs),
           "--campaign-start-hour", str(CAMPAIGN_START_HOUR), "--campaign-hours", str(HOURS)]
    subprocess.run(cmd, check=True)
    with open(conf, "w") as f:
        f.write(f"[campaign]\ntargeted = false\nthreshold = {threshold}\n[jail.sshd]\n")
    t0 = time.monotonic()
    out = subprocess.run([PORTCULLIS, "scan", "--json", "--timezone", "UTC", "--config", conf, log],
                         check=True, capture_output=True).stdout
    secs = time.monotonic() - t0
    doc = json.loads(out)
    truth = json.load(open(truth_p))
    camps = [c for c in doc["campaigns"] if c["kind"] == "campaign"]
    banned = sum(1 for a in doc["addresses"] if a["bans"] and a["addr"] in set(truth["participants"]))
    return doc, truth, camps, secs, banned


def ts(s):
    from datetime import datetime
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


results = {"intensities": [], "clean": []}
thresholds = [float(t) for t in args.thresholds.split(",")]
intensities = [int(i) for i in args.intensities.split(",")]
with tempfile.TemporaryDirectory() as tmp:
    for th in thresholds:
        # False alarms on campaign-free 28-day logs.
        alarms, days = 0, 0
        for seed in range(1, args.clean_seeds + 1):
            _, _, camps, _, _ = run(tmp, 28, 100 + seed, 0, th)
            alarms += len(camps)
            days += 28
        results["clean"].append({"threshold": th, "alarms": alarms, "days": days,
                                 "per_month": alarms * 30 / days})
        for n in intensities:
            rows = []
            for seed in range(1, args.seeds + 1):
                doc, truth, camps, secs, jail_banned = run(tmp, 14, seed, n, th)
                cs, ce = truth["campaign_start"], truth["campaign_end"]
                hit = [c for c in camps if ts(c["start"]) <= ce and ts(c["end"]) >= cs]
                other = len(camps) - len(hit)
                if not hit:
                    rows.append({"seed": seed, "detected": False, "false_alarms": other,
                                 "jail_banned": jail_banned, "scan_secs": secs})
                    continue
                c = min(hit, key=lambda c: ts(c["detected"]))
                got = set().union(*[set(h["participants"]) for h in hit])
                want = set(truth["participants"])
                tp = len(got & want)
                rows.append({
                    "seed": seed, "detected": True,
                    "delay_h": (ts(c["detected"]) - cs) / 3600,
                    "start_err_h": (ts(c["start"]) - cs) / 3600,
                    "end_err_h": (max(ts(h["end"]) for h in hit) - ce) / 3600,
                    "recall": tp / len(want), "precision": tp / len(got) if got else 0,
                    "reports": len(hit), "false_alarms": other, "jail_banned": jail_banned,
                    "scan_secs": secs,
                })
            results["intensities"].append({"threshold": th, "addresses": n, "runs": rows})
            det = [r for r in rows if r["detected"]]
            print(f"threshold {th} addrs {n}: {len(det)}/{len(rows)} detected", file=sys.stderr)

os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
with open(os.path.join(HERE, "out", "campaign.json"), "w") as f:
    json.dump(results, f, indent=1)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


print("| threshold h | false alarms / month (campaign-free) | " +
      " | ".join(f"delay, {n} addr" for n in intensities) + " |")
print("|---|---|" + "---|" * len(intensities))
for cl in results["clean"]:
    th = cl["threshold"]
    cells = []
    for n in intensities:
        rows = next(r["runs"] for r in results["intensities"] if r["threshold"] == th and r["addresses"] == n)
        det = [r for r in rows if r["detected"]]
        cells.append(f"{med([r['delay_h'] for r in det]):.0f} h ({len(det)}/{len(rows)})" if det else f"missed (0/{len(rows)})")
    print(f"| {th:g} | {cl['per_month']:.2f} ({cl['alarms']} in {cl['days']} d) | " + " | ".join(cells) + " |")
print()
print("| threshold h | addresses (1-3 tries, 72 h) | detected | delay (median) | start error | end error | recall | precision | per-address jail banned |")
print("|---|---|---|---|---|---|---|---|---|")
for r in results["intensities"]:
    det = [x for x in r["runs"] if x["detected"]]
    jb = sum(x["jail_banned"] for x in r["runs"])
    if not det:
        print(f"| {r['threshold']:g} | {r['addresses']} | 0/{len(r['runs'])} | – | – | – | – | – | {jb} |")
        continue
    print(f"| {r['threshold']:g} | {r['addresses']} | {len(det)}/{len(r['runs'])} | {med([x['delay_h'] for x in det]):.1f} h | "
          f"{med([x['start_err_h'] for x in det]):+.1f} h | {med([x['end_err_h'] for x in det]):+.1f} h | "
          f"{med([x['recall'] for x in det]):.3f} | {med([x['precision'] for x in det]):.3f} | {jb} |")
