#!/usr/bin/env bash
# Fail2Ban's own sshd filter on the 1M-line bench file: `portcullis test-filter` (PCRE2
# engine) vs `fail2ban-regex`, measured in the same run. Prints wall and CPU time and the
# ratios (target: portcullis >= 20x faster), and fails when the two tools disagree on the
# number of matched lines.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/portcullis
LOG=${LOG:-bench/out/auth-1m.log}
FILTER=/etc/fail2ban/filter.d/sshd.conf
OUT=bench/out
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release -p portcullis -p portcullis-loggen
[ -f "$LOG" ] || "$TARGET/release/portcullis-loggen" --lines 1000000 --out "$LOG"
command -v fail2ban-regex >/dev/null || { echo "fail2ban-regex missing (apt-get install fail2ban)"; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing (apt-get install time)"; exit 1; }

# measure NAME CMD...: runs CMD once, stdout to $OUT/NAME.out; prints "wall cpu" seconds.
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %U %S' -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || true
  awk '{printf "%s %.2f\n", $1, $2 + $3}' "$OUT/$name.time"
}

echo "portcullis test-filter $FILTER $LOG"
read -r pw pc < <(measure f2b_filter.portcullis "$BIN" test-filter "$FILTER" "$LOG")
echo "fail2ban-regex $LOG $FILTER"
read -r fw fc < <(measure f2b_filter.fail2ban fail2ban-regex "$LOG" "$FILTER")

pm=$(sed -n 's/^Matched: \([0-9]*\).*/\1/p' "$OUT/f2b_filter.portcullis.out")
fm=$(sed -n 's/^Lines: .* \([0-9]*\) matched,.*/\1/p' "$OUT/f2b_filter.fail2ban.out")
printf 'matched lines: portcullis %s, fail2ban-regex %s\n' "${pm:-?}" "${fm:-?}"
printf 'portcullis:     wall %6.2f s  cpu %6.2f s\n' "$pw" "$pc"
printf 'fail2ban-regex: wall %6.2f s  cpu %6.2f s\n' "$fw" "$fc"
printf 'ratio (fail2ban-regex / portcullis): wall %.1fx  cpu %.1fx  (target >= 20x)\n' \
  "$(echo "$fw / $pw" | bc -l)" "$(echo "$fc / $pc" | bc -l)"
if [ -z "$pm" ] || [ "$pm" != "$fm" ]; then
  echo "FAIL: matched-line counts differ (see $OUT/f2b_filter.*.out)"
  exit 1
fi
