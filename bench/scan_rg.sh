#!/usr/bin/env bash
# `portcullis scan` against `rg -c '<one sshd regex>'` on the 1M-line bench file, timed in one
# hyperfine run (several runs each; min and median), with the ratio; optionally against other
# portcullis binaries (e.g. a build of main) whose `scan --json` must give the same counts.
#
#   bench/scan_rg.sh [OTHER_PORTCULLIS_BINARY...]
#
# Knobs: RUNS (default 7), FILE (default bench/out/auth-1m.log, generated like compare.sh
# does when missing), BIN (default target/release/portcullis). Needs hyperfine, rg, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
FILE=${FILE:-bench/out/auth-1m.log}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/portcullis}
REGEX='Failed password for .* from [0-9.]+ port' # the same as compare.sh's
OUT=bench/out
mkdir -p "$OUT"
for t in hyperfine rg python3; do
    command -v "$t" >/dev/null || { echo "scan_rg.sh: $t is missing" >&2; exit 1; }
done
if [[ ! -f $FILE ]]; then
    gen=$(dirname "$BIN")/portcullis-loggen
    "$gen" --lines 1000000 --attackers 2000 --seed 1 --out "$FILE" --truth "${FILE%.log}.truth.json"
fi

# Same counts: every binary's report, without its timing, must be identical.
strip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.get("totals",{}).pop("seconds",None); print(json.dumps(d,sort_keys=True))' "$1"; }
"$BIN" scan --json "$FILE" >"$OUT/scan_rg.this.json"
strip "$OUT/scan_rg.this.json" >"$OUT/scan_rg.this.norm"
cmds=("$BIN scan --json $FILE" "rg -c '$REGEX' $FILE")
for other in "$@"; do
    "$other" scan --json "$FILE" >"$OUT/scan_rg.other.json"
    strip "$OUT/scan_rg.other.json" >"$OUT/scan_rg.other.norm"
    if cmp -s "$OUT/scan_rg.this.norm" "$OUT/scan_rg.other.norm"; then
        echo "same report: $BIN and $other"
    else
        echo "scan_rg.sh: $BIN and $other report different counts" >&2
        exit 1
    fi
    cmds+=("$other scan --json $FILE")
done
truth=${FILE%.log}.truth.json
[[ -f $truth ]] && python3 bench/check_truth.py "$truth" "$OUT/scan_rg.this.json" | tail -1

cat "$FILE" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --output=null --export-json "$OUT/scan_rg.json" "${cmds[@]}" >&2
python3 - "$OUT/scan_rg.json" <<'EOF'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
rg = next(r for r in res if r["command"].startswith("rg "))
rg_min, rg_med = min(rg["times"]), statistics.median(rg["times"])
print(f"{'command':<60} {'min s':>7} {'median s':>9} {'min/rg':>7} {'med/rg':>7}")
for r in res:
    mn, md = min(r["times"]), statistics.median(r["times"])
    print(f"{r['command'][:60]:<60} {mn:7.3f} {md:9.3f} {mn/rg_min:7.2f} {md/rg_med:7.2f}")
EOF
