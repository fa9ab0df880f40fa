#!/usr/bin/env bash
# Benchmark portcullis scan against its peers on generated auth.logs, in one run.
#
# Run from the repository root:  bench/compare.sh
# Environment knobs (all optional):
#   LINES=1000000        lines per generated file
#   ATTACKERS=2000       distinct attackers of the default-mix file
#   MANY=100000          distinct attackers of the second file
#   RUNS=2               timed runs per tool and file (the best is kept)
#   SLOW_RUNS=$RUNS      timed runs for fail2ban-regex (≈25 s per run on 1M lines)
#   SKIP="fail2ban"      space-separated tool names to skip (portcullis fail2ban sshguard rg grep cat);
#                        SKIP=portcullis also skips building it
#   STRICT=1             exit non-zero when a performance target is missed (counts always are)
#   CARGO_TARGET_DIR     honoured; binaries are taken from $CARGO_TARGET_DIR/release
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LINES=${LINES:-1000000}
ATTACKERS=${ATTACKERS:-2000}
MANY=${MANY:-100000}
RUNS=${RUNS:-2}
SLOW_RUNS=${SLOW_RUNS:-$RUNS}
SKIP=" ${SKIP:-} "
STRICT=${STRICT:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release
OUT=bench/out
TIME=/usr/bin/time
F2B_FILTER=/etc/fail2ban/filter.d/sshd.conf
SSHG_PARSER=/usr/libexec/sshguard/sshg-parser
# The one sshd regex of the rg/grep baseline (IPv4 only, like most hand-written ones).
REGEX='Failed password for .* from [0-9.]+ port'

mkdir -p "$OUT"
say() { printf '%s\n' "$*" >&2; }

if [[ ! -x $TIME ]]; then
    say "compare.sh: $TIME is missing (Debian package 'time'); cannot measure peak RSS"
    exit 1
fi

# ---- build ---------------------------------------------------------------------------
say "== building release binaries (portcullis-loggen, portcullis)"
cargo build --release -p portcullis-loggen
have_portcullis=1
if [[ $SKIP == *" portcullis "* ]]; then
    have_portcullis=0
elif ! cargo build --release -p portcullis; then
    say "compare.sh: building portcullis failed; measuring the peers only"
    have_portcullis=0
fi
if [[ $have_portcullis == 1 ]] && ! "$BIN/portcullis" scan --help >/dev/null 2>&1; then
    say "compare.sh: '$BIN/portcullis scan' is not available yet; measuring the peers only"
    have_portcullis=0
fi

# ---- generate ------------------------------------------------------------------------
FILES=(auth-1m auth-100k)
say "== generating $OUT/auth-1m.log ($LINES lines, $ATTACKERS attackers) and" \
    "$OUT/auth-100k.log ($LINES lines, $MANY attackers)"
"$BIN/portcullis-loggen" --lines "$LINES" --attackers "$ATTACKERS" --seed 1 \
    --out "$OUT/auth-1m.log" --truth "$OUT/auth-1m.truth.json"
"$BIN/portcullis-loggen" --lines "$LINES" --attackers "$MANY" --seed 2 \
    --out "$OUT/auth-100k.log" --truth "$OUT/auth-100k.truth.json"

# ---- tools ---------------------------------------------------------------------------
TOOLS=(portcullis fail2ban sshguard rg grep cat)
declare -A LABEL=(
    [portcullis]="portcullis scan --json"
    [fail2ban]="fail2ban-regex (sshd.conf)"
    [sshguard]="sshg-parser"
    [rg]="rg -c <regex>"
    [grep]="LC_ALL=C grep -cE <regex>"
    [cat]="cat"
)

available() {
    case $1 in
        portcullis) [[ $have_portcullis == 1 ]] || { say "skip portcullis: not built or no scan subcommand"; return 1; } ;;
        fail2ban) command -v fail2ban-regex >/dev/null && [[ -r $F2B_FILTER ]] \
            || { say "skip fail2ban: fail2ban-regex or $F2B_FILTER missing (apt-get install fail2ban)"; return 1; } ;;
        sshguard) [[ -x $SSHG_PARSER ]] \
            || { say "skip sshguard: $SSHG_PARSER missing (apt-get install sshguard)"; return 1; } ;;
        rg) command -v rg >/dev/null || { say "skip rg: not installed (apt-get install ripgrep)"; return 1; } ;;
        grep | cat) command -v "$1" >/dev/null || { say "skip $1: not installed"; return 1; } ;;
    esac
}

declare -A SECS CPU RSS FOUND
measure() { # tool file
    local tool=$1 name=$2 file=$OUT/$2.log runs=$RUNS best_t="" best_m="" best_c="" t m u k i status
    [[ $tool == fail2ban ]] && runs=$SLOW_RUNS
    local out=$OUT/$tool.$name.out err=$OUT/$tool.$name.err stats=$OUT/.time.$$
    local cmd=() input=/dev/null sink=$out
    case $tool in
        portcullis) cmd=("$BIN/portcullis" scan --json "$file") sink=/dev/null ;;
        fail2ban) cmd=(fail2ban-regex "$file" "$F2B_FILTER") ;;
        sshguard) cmd=("$SSHG_PARSER") input=$file ;;
        rg) cmd=(rg -c "$REGEX" "$file") ;;
        grep) cmd=(grep -cE "$REGEX" "$file") ;;
        cat) cmd=(cat "$file") sink=/dev/null ;;
    esac
    for ((i = 1; i <= runs; i++)); do
        status=0
        # No shell in between: /usr/bin/time runs the tool itself, so its RSS and time are
        # the tool's. portcullis and cat write to /dev/null (as specified); the others'
        # output is tiny and kept to report what they found.
        LC_ALL=C $TIME -f '%e %M %U %S' -o "$stats" "${cmd[@]}" <"$input" >"$sink" 2>"$err" || status=$?
        # rg/grep exit 1 when nothing matched; that is a result, not a failure.
        if ((status > 1)) || { ((status == 1)) && [[ $tool != rg && $tool != grep ]]; }; then
            say "$tool on $name failed (exit $status); see $err"
            SECS[$tool.$name]="fail"
            CPU[$tool.$name]="-"
            RSS[$tool.$name]="-"
            return 0
        fi
        read -r t m u k < <(tail -n 1 "$stats")
        if [[ -z $best_t ]] || awk -v a="$t" -v b="$best_t" 'BEGIN{exit !(a<b)}'; then
            best_t=$t
            best_c=$(awk -v u="$u" -v k="$k" 'BEGIN{printf "%.2f", u+k}')
        fi
        if [[ -z $best_m ]] || ((m < best_m)); then best_m=$m; fi
    done
    rm -f "$stats"
    SECS[$tool.$name]=$best_t
    CPU[$tool.$name]=$best_c
    RSS[$tool.$name]=$best_m
    case $tool in
        fail2ban) FOUND[$tool.$name]=$(sed -n 's/^Lines: .*, \([0-9]*\) matched.*/\1 matched lines/p' "$out" | head -n 1) ;;
        sshguard) FOUND[$tool.$name]="$(wc -l < "$out") attacks" ;;
        rg | grep) FOUND[$tool.$name]="$(head -n 1 "$out") lines" ;;
        *) FOUND[$tool.$name]="" ;;
    esac
}

for name in "${FILES[@]}"; do
    say "== timing on $OUT/$name.log (best of $RUNS; fail2ban-regex: $SLOW_RUNS)"
    cat "$OUT/$name.log" >/dev/null # warm the page cache
    for tool in "${TOOLS[@]}"; do
        [[ $SKIP == *" $tool "* ]] && { say "skip $tool (SKIP)"; continue; }
        available "$tool" || continue
        say "   $tool"
        measure "$tool" "$name"
    done
done

# ---- correctness: per-address counts against the truth ---------------------------------
check_status=0
if [[ $have_portcullis == 1 ]]; then
    for name in "${FILES[@]}"; do
        "$BIN/portcullis" scan --json "$OUT/$name.log" >"$OUT/scan.$name.json"
        FOUND[portcullis.$name]="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(a.get("attempts",0) for a in d["addresses"]))' "$OUT/scan.$name.json" 2>/dev/null || echo '?') attempts"
    done
fi

# ---- report --------------------------------------------------------------------------
ratio() { # value base
    awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a/b; else printf "-" }'
}
mib() { awk -v k="$1" 'BEGIN{ if (k ~ /^[0-9]+$/) printf "%.1f", k/1024; else printf "-" }'; }

for name in "${FILES[@]}"; do
    truth_attempts=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["attempts"])' "$OUT/$name.truth.json")
    printf '\n%s  (%s lines, %s bytes; truth: %s attempts)\n' "$OUT/$name.log" "$LINES" \
        "$(stat -c %s "$OUT/$name.log")" "$truth_attempts"
    printf '%-28s %8s %8s %8s %10s %9s  %s\n' tool seconds 'cpu s' 'RSS MiB' 'time/scan' 'RSS/scan' found
    base_t=${SECS[portcullis.$name]:-}
    base_m=${RSS[portcullis.$name]:-}
    for tool in "${TOOLS[@]}"; do
        [[ -n ${SECS[$tool.$name]:-} ]] || continue
        printf '%-28s %8s %8s %8s %10s %9s  %s\n' "${LABEL[$tool]}" "${SECS[$tool.$name]}" \
            "${CPU[$tool.$name]}" "$(mib "${RSS[$tool.$name]}")" "$(ratio "${SECS[$tool.$name]}" "$base_t")" \
            "$(ratio "${RSS[$tool.$name]}" "$base_m")" "${FOUND[$tool.$name]:-}"
    done
done

printf '\nseconds: wall clock, best of the runs; cpu s: user+system of that run (less sensitive\n'
printf 'to a busy machine); RSS: peak resident set (rg maps the file, so its RSS includes it).\n'
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n== targets\n'
perf_fail=0
target() { # description ok(0/1/-)
    case $2 in
        1) printf 'PASS  %s\n' "$1" ;;
        0) printf 'FAIL  %s\n' "$1"; perf_fail=1 ;;
        *) printf 'n/a   %s\n' "$1" ;;
    esac
}
scan_t=${SECS[portcullis.auth-1m]:-}
rg_t=${SECS[rg.auth-1m]:-}
ok=$(awk -v s="$scan_t" -v r="$rg_t" 'BEGIN{ if (s ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/) print (s <= 2*r) ? 1 : 0; else print "-" }')
target "scan of the 1M-line file <= 2x rg -c (issue 13) (scan ${scan_t:-?} s, rg ${rg_t:-?} s, ratio $(ratio "$scan_t" "$rg_t"))" "$ok"
rss=${RSS[portcullis.auth-100k]:-}
ok=$(awk -v k="$rss" 'BEGIN{ if (k ~ /^[0-9]+$/) print (k <= 64*1024) ? 1 : 0; else print "-" }')
target "peak RSS with $MANY distinct attackers <= 64 MiB (scan $(mib "$rss") MiB)" "$ok"

if [[ $have_portcullis == 1 ]]; then
    for name in "${FILES[@]}"; do
        printf '\n== per-address counts: scan --json vs truth (%s)\n' "$name"
        if ! python3 bench/check_truth.py "$OUT/$name.truth.json" "$OUT/scan.$name.json"; then
            check_status=1
        fi
    done
    if [[ $check_status == 0 ]]; then target "per-address counts equal the truth" 1; else target "per-address counts equal the truth" 0; fi
else
    target "per-address counts equal the truth (portcullis scan not available)" -
fi

if ((check_status != 0)); then exit 1; fi
if [[ $STRICT == 1 ]] && ((perf_fail != 0)); then exit 1; fi
exit 0
