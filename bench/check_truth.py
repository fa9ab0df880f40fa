#!/usr/bin/env python3
"""Compare `portcullis scan --json` per-address counts with portcullis-loggen's ground truth.

usage: check_truth.py TRUTH.json SCAN.json [--users] [--times] [--max N]

Exit status 0 when attempts, probes and successes are equal for every address (an address
missing on one side counts as all zeros), 1 on any count mismatch, 2 on unreadable input.
With --users, differing user lists are mismatches too, with --times first/last-seen times
(to the second) too; otherwise both are only reported.
"""

import argparse
import datetime
import ipaddress
import json
import sys

FIELDS = ("attempts", "probes", "successes")


def canonical(addr):
    """Same text for the same address (RFC 5952 for IPv6, no zone, no ::ffff: mapping)."""
    text = str(addr).strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def second(text):
    """A timestamp as whole Unix seconds, or None when absent or unparsable."""
    if not text:
        return None
    try:
        t = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp())


def entries(doc, what):
    """Per-address dicts from either an array of objects with "addr" or a map keyed by it."""
    raw = doc.get("addresses")
    if raw is None:
        sys.exit(f"check_truth: {what} has no \"addresses\" field")
    if isinstance(raw, dict):
        raw = [dict(v, addr=k) for k, v in raw.items()]
    out = {}
    for e in raw:
        key = e.get("addr", e.get("address", e.get("ip")))
        if key is None:
            sys.exit(f"check_truth: an entry of {what} has no addr: {e!r}")
        out[canonical(key)] = e
    return out


def load(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_truth: cannot read {what} {path}: {e}", file=sys.stderr)
        sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("truth")
    ap.add_argument("scan")
    ap.add_argument("--users", action="store_true", help="user lists must match too")
    ap.add_argument("--times", action="store_true", help="first/last seen must match too")
    ap.add_argument("--max", type=int, default=20, help="mismatches to print (default 20)")
    args = ap.parse_args()

    truth_doc = load(args.truth, "truth")
    scan_doc = load(args.scan, "scan output")
    truth = entries(truth_doc, "the truth")
    scan = entries(scan_doc, "the scan output")

    count_bad = []
    user_bad = []
    time_bad = []
    for addr in sorted(set(truth) | set(scan)):
        t = truth.get(addr, {})
        s = scan.get(addr, {})
        want = tuple(int(t.get(f, 0)) for f in FIELDS)
        got = tuple(int(s.get(f, 0) or 0) for f in FIELDS)
        if want != got:
            count_bad.append((addr, want, got))
        if t and s and "users" in s:
            tu, su = sorted(set(t.get("users", []))), sorted(set(s.get("users") or []))
            # scan may cut a long list and count the rest in "more_users": then its list
            # must be a subset of the truth and the sizes must add up.
            more = int(s.get("more_users", 0) or 0)
            if more:
                same = set(su) <= set(tu) and len(su) + more == len(tu)
            else:
                same = tu == su
            if not same:
                user_bad.append((addr, tu, su))
        if t and s and ("first_seen" in s or "last_seen" in s):
            want_t = (second(t.get("first_seen")), second(t.get("last_seen")))
            got_t = (second(s.get("first_seen")), second(s.get("last_seen")))
            if want_t != got_t:
                time_bad.append((addr, (t.get("first_seen"), t.get("last_seen")),
                                 (s.get("first_seen"), s.get("last_seen"))))

    sums = {f: sum(int(e.get(f, 0) or 0) for e in scan.values()) for f in FIELDS}
    totals = truth_doc.get("totals", {})
    print(f"addresses: truth {len(truth)}, scan {len(scan)}")
    for f in FIELDS:
        mark = "ok" if sums[f] == totals.get(f) else "DIFFERENT"
        print(f"{f:>9}: truth {totals.get(f)}, scan {sums[f]}  {mark}")
    if "failure_lines" in totals:
        print(f"(a line-counting filter would report {totals['failure_lines']} failures "
              f"for {totals.get('attempts')} real attempts)")

    for addr in truth_doc.get("injected", []):
        s = scan.get(canonical(addr))
        if s and any(int(s.get(f, 0) or 0) for f in FIELDS):
            print(f"INJECTION: {addr} only appears inside user names but scan counted it: {s}")

    want_breaches = {canonical(b["addr"]) for b in truth_doc.get("breaches", [])}
    got_breaches = set()
    for b in scan_doc.get("breaches", []) or []:
        if isinstance(b, dict):
            a = b.get("addr", b.get("address"))
            if a is not None:
                got_breaches.add(canonical(a))
    print(f" breaches: truth {sorted(want_breaches)}, scan {sorted(got_breaches)}"
          + ("" if want_breaches <= got_breaches else "  (missing some)"))

    for addr, want, got in count_bad[: args.max]:
        print(f"MISMATCH {addr}: truth attempts/probes/successes {want}, scan {got}")
    if len(count_bad) > args.max:
        print(f"... and {len(count_bad) - args.max} more count mismatches")
    for addr, tu, su in user_bad[: args.max]:
        print(f"users differ {addr}: truth {tu}, scan {su}")
    if len(user_bad) > args.max:
        print(f"... and {len(user_bad) - args.max} more user-list differences")

    for addr, want, got in time_bad[: min(args.max, 5)]:
        print(f"times differ {addr}: truth first/last {want}, scan {got}")
    if time_bad:
        print(f"({len(time_bad)} addresses with different first/last seen; syslog lines carry "
              "no year or zone: run scan with TZ=UTC and a log that is not in the future)")

    failed = (bool(count_bad) or (args.users and bool(user_bad))
              or (args.times and bool(time_bad)))
    print(f"RESULT: {'FAIL' if failed else 'OK'} ({len(count_bad)} count mismatches, "
          f"{len(user_bad)} user-list differences, {len(time_bad)} time differences)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
