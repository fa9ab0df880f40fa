#!/usr/bin/env bash
# Time `portcullis investigate` over a generated 1M-line auth.log set with rotated .gz files,
# against just reading the same bytes (zcat + cat), and check its breach findings against the
# generator's ground truth.
#
# Run from the repository root:  bench/investigate.sh
#   LINES=1000000   lines in the set        RUNS=5   timed runs (the best is kept)
#   PARTS=5         files in the rotated set (the oldest PARTS-2 gzipped)
#   CARGO_TARGET_DIR honoured; binaries are taken from $CARGO_TARGET_DIR/release
#   SKIP_BUILD=1    use the binaries already built   LOGGEN=path  another portcullis-loggen
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LINES=${LINES:-1000000}
RUNS=${RUNS:-5}
PARTS=${PARTS:-5}
BIN=${CARGO_TARGET_DIR:-target}/release
OUT=bench/out/investigate
mkdir -p "$OUT"
LOGGEN=${LOGGEN:-$BIN/portcullis-loggen}
[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --release -p portcullis -p portcullis-loggen >&2
rm -rf "$OUT/logs" && mkdir -p "$OUT/logs"
"$LOGGEN" --lines "$LINES" --gzip-rotate "$OUT/logs" --rotate-parts "$PARTS" \
    --truth "$OUT/truth.json" >&2
FILES=("$OUT"/logs/*)
NONE=/nonexistent
ISOLATE=(--utmp $NONE --wtmp $NONE --btmp $NONE --socket $NONE --state-db $NONE)

# Best of RUNS: "wall user sys" in seconds.
best() {
    local best_line="" best_cpu=999999
    for _ in $(seq "$RUNS"); do
        local t
        /usr/bin/time -o "$OUT/time.txt" -f '%e %U %S' "$@" >/dev/null 2>&1 || true
        t=$(tail -1 "$OUT/time.txt")
        local cpu
        cpu=$(awk '{print $2 + $3}' <<<"$t")
        if awk -v a="$cpu" -v b="$best_cpu" 'BEGIN{exit !(a < b)}'; then
            best_cpu=$cpu best_line=$t
        fi
    done
    echo "$best_line"
}
read_only() { for f in "${FILES[@]}"; do case $f in *.gz) zcat "$f" ;; *) cat "$f" ;; esac; done; }
export -f read_only
export FILES_LIST="${FILES[*]}"

inv=$(best "$BIN/portcullis" investigate --logs "${FILES[@]}" "${ISOLATE[@]}" --json)
rd=$(best bash -c 'FILES=($FILES_LIST); read_only')
read -r iw iu is <<<"$inv"
read -r rw ru rs <<<"$rd"
printf 'lines            %s (%s files, %s gzipped)\n' "$LINES" "${#FILES[@]}" "$((PARTS - 2))"
printf 'investigate      wall %ss  cpu %ss (user %s + sys %s)\n' "$iw" "$(awk "BEGIN{print $iu+$is}")" "$iu" "$is"
printf 'read (zcat+cat)  wall %ss  cpu %ss\n' "$rw" "$(awk "BEGIN{print $ru+$rs}")"
printf 'beyond reading   cpu %ss\n' "$(awk "BEGIN{print ($iu+$is)-($ru+$rs)}")"

"$BIN/portcullis" investigate --logs "${FILES[@]}" "${ISOLATE[@]}" --json --limit 0 \
    >"$OUT/report.json" || true
python3 - "$OUT/report.json" "$OUT/truth.json" <<'EOF'
import json, sys
rep, truth = (json.load(open(p)) for p in sys.argv[1:3])
got = sorted((f["addr"], f["user"], f["failures"]) for f in rep["findings"]
             if f["kind"] == "success_after_failures" and f["severity"] == "critical")
want = sorted((b["addr"], b["user"], b["failures_before"]) for b in truth["breaches"])
t, g = truth["totals"], rep["totals"]
ok = got == want and (g["failures"], g["probes"], g["successes"]) == (t["attempts"], t["probes"], t["successes"])
print(f"breaches         {'match' if got == want else 'DIFFER'}: {got}")
print(f"totals           failures {g['failures']}/{t['attempts']} probes {g['probes']}/{t['probes']} "
      f"successes {g['successes']}/{t['successes']}")
sys.exit(0 if ok else 1)
EOF
