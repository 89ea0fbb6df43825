#!/bin/bash
# cli_bench_serve.sh - `preshift bench serve` end to end on a tiny fleet.
#
# Checks what the benchmark says and that it says it for every run, never
# how fast anything was (CI machines are shared): JSON lines with the keys
# the issue asks for, every heartbeat of the measured phase scored, no
# error replies, shares that add up; and bad usage refused before anything
# runs.
#
# usage: bash cli_bench_serve.sh <path-to-preshift> <source-dir>
set -u

bin=${1:?usage: cli_bench_serve.sh <preshift> <source-dir>}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

field() {
    printf '%s\n' "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | cut -d: -f2- | tr -d ' "'
}

is_positive() {
    awk -v v="$1" 'BEGIN { exit !(v ~ /^[0-9.eE+-]+$/ && v + 0 > 0) }'
}

"$bin" bench serve --backend cpu --processors 50,300 --metrics 3 --clients 2 --request 64 --window 2 \
    --duration 1.5 --json >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "bench serve exited $rc: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "expected 4 runs (2 sizes x paced, max): $(cat "$tmp/out")"
grep -q "warmed up 300 processors" "$tmp/err" || fail "no progress on stderr: $(cat "$tmp/err")"
while IFS= read -r line; do
    for key in processors metrics heartbeats_per_s values_per_s p50_ms p99_ms p999_ms \
        kernel_values_per_s scored requests; do
        is_positive "$(field "$line" "$key")" || fail "$key not positive in: $line"
    done
    [ "$(field "$line" errors)" = 0 ] || fail "error replies in: $line"
    [ "$(field "$line" metrics)" = 3 ] || fail "metrics in: $line"
    mode=$(field "$line" mode)
    [ "$mode" = paced ] || [ "$mode" = max ] || fail "mode '$mode' in: $line"
    # Paced: every processor once per second for the whole run, all scored.
    if [ "$mode" = paced ]; then
        p=$(field "$line" processors)
        s=$(field "$line" scored)
        awk -v p="$p" -v s="$s" 'BEGIN { exit !(s == 2 * p) }' ||
            fail "paced run scored $s heartbeats of $p processors over 2 ticks: $line"
    fi
    sum=0
    for st in decode batch score reply publish; do
        sum=$(awk -v a="$sum" -v b="$(field "$line" "${st}_share")" 'BEGIN { print a + b }')
    done
    awk -v s="$sum" 'BEGIN { exit !(s > 0.99 && s < 1.01) }' || fail "shares sum to $sum: $line"
    awk -v p="$(field "$line" p50_ms)" -v q="$(field "$line" p99_ms)" 'BEGIN { exit !(p <= q) }' ||
        fail "p50 above p99: $line"
done <"$tmp/out"

# --state: the stop writes a snapshot of every processor, and says how big.
"$bin" bench serve --backend cpu --processors 40 --metrics 2 --mode max --duration 0.3 --state "$tmp" \
    --json >"$tmp/state.json" 2>"$tmp/err" || fail "bench serve --state: $(cat "$tmp/err")"
is_positive "$(field "$(cat "$tmp/state.json")" state_mb)" || fail "no state_mb: $(cat "$tmp/state.json")"
[ -z "$(ls "$tmp"/*.state 2>/dev/null)" ] || fail "the state file was left behind"

"$bin" bench serve --mode sometimes >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q -- "--mode" "$tmp/err" || fail "bad --mode not refused: $(cat "$tmp/err")"
"$bin" bench serve --warmup 5 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "--warmup 5 not refused"
"$bin" bench serve --help | grep -q -- "--processors" || fail "--help lacks --processors"

[ $failures -eq 0 ] && echo "cli_bench_serve: ok"
exit $((failures > 0))
