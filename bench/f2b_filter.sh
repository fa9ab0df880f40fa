#!/usr/bin/env bash
# Fail2Ban's own sshd filter on the 1M-line bench file: `portcullis test-filter` (PCRE2
# engine) vs `fail2ban-regex`, measured in the same run. Prints wall and CPU time and the
# ratio (target: portcullis >= 20x faster).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/portcullis
LOG=bench/out/auth-1m.log
FILTER=/etc/fail2ban/filter.d/sshd.conf
mkdir -p bench/out
[ -x "$BIN" ] || cargo build --release -p portcullis -p portcullis-loggen
[ -f "$LOG" ] || "$TARGET/release/portcullis-loggen" --lines 1000000 --out "$LOG"
command -v fail2ban-regex >/dev/null || { echo "fail2ban-regex missing (apt-get install fail2ban)"; exit 1; }

measure() { # prints "wall cpu" seconds of the command
  local t0 t1 c
  t0=$(date +%s.%N)
  c=$( { /usr/bin/time -f '%U %S' "$@" >/dev/null 2>/dev/null; } 2>&1 | tail -1 | awk '{print $1+$2}')
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $c"
}

echo "portcullis test-filter $FILTER $LOG"
"$BIN" test-filter "$FILTER" "$LOG" | sed -n '1,2p'
read -r pw pc < <(measure "$BIN" test-filter "$FILTER" "$LOG")
echo "fail2ban-regex $LOG $FILTER"
read -r fw fc < <(measure fail2ban-regex "$LOG" "$FILTER")
printf 'portcullis:     wall %6.2f s  cpu %6.2f s\n' "$pw" "$pc"
printf 'fail2ban-regex: wall %6.2f s  cpu %6.2f s\n' "$fw" "$fc"
printf 'ratio (fail2ban-regex / portcullis): wall %.1fx  cpu %.1fx  (target >= 20x)\n' \
  "$(echo "$fw / $pw" | bc -l)" "$(echo "$fc / $pc" | bc -l)"
