#!/usr/bin/env bash
# cli_demo.sh - `preshift demo` end to end on a small dataset written here
# (3 entities, 2 metrics, 600 test rows with labelled events): a run to
# the last tick (exit 0, the table of reactive, preshift and the oracle,
# the plot when gnuplot is installed), the time budget ending a run early
# (the table over the ticks run), SIGINT mid-run (exit 130 with the
# summary so far, or a plain stop during the warm-up), the temporary
# directory removed in every case, usage errors (exit 2, naming the flag).
# Usage: bash cli_demo.sh <path-to-preshift>
. "$(dirname "$0")/lib/cli.sh" "$@"
cd "$tmp" || exit 1

ds=$tmp/ds
mkdir -p "$ds/train" "$ds/test" "$ds/test_label"
for e in 1 2 3; do
  awk -v e=$e 'BEGIN { srand(e); for (i = 0; i < 200; i++)
    printf "%.3f,%.3f\n", 0.3 + 0.1 * rand(), 0.4 + 0.1 * rand() }' >"$ds/train/e-$e.txt"
  # An event every 150 rows (e-3 has none); the first metric climbs through it.
  awk -v e=$e 'BEGIN { srand(10 + e); for (i = 0; i < 600; i++) {
    k = (i + 40 * e) % 150; hi = e < 3 && k >= 120 && k < 130
    printf "%.3f,%.3f\n", (hi ? 0.5 + 0.04 * (k - 120) : 0.3) + 0.1 * rand(), 0.4 + 0.1 * rand()
    print (hi ? 1 : 0) >"'"$ds/test_label/e-"'" e ".txt" } }' >"$ds/test/e-$e.txt"
done
demo=("$bin" demo --dataset "$ds" --warmup 21 --start-row 0 --max-offset 20 --backend cpu
  --view lines)

# run ARGS...: the demo in the background; sets rc, out, err, dir (its temporary directory).
run() {
  "${demo[@]}" "$@" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
}
finish() {
  wait "$pid"
  rc=$?
  dir=$(sed -n "s/^demo: the manager's store and the sockets are in \(.*\) (removed at the end)$/\1/p" "$tmp/err")
  [ -n "$dir" ] || fail "the demo did not say where its files are: $(cat "$tmp/err")"
  [ -n "$dir" ] && [ -e "$dir" ] && fail "$dir left behind"
  kill -0 "$pid" 2>/dev/null && fail "the demo is still running"
}

# To the last tick: exit 0, the three columns, the comparison.
run --processors 30 --workloads 90 --ticks 120 --seconds 300 --plot "$tmp/d.png"
finish
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$tmp/err")"
grep -Eq '^ +reactive +preshift +oracle$' "$tmp/out" || fail "no table: $(cat "$tmp/out")"
grep -q '120 ticks of 300 s' "$tmp/out" || fail "not all 120 ticks: $(head -3 "$tmp/out")"
grep -q 'Reactive failover left workloads interrupted for' "$tmp/out" || fail "no comparison"
grep -q '^demo: .* tick [0-9]* of 120' "$tmp/out" || fail "no progress lines"
if command -v gnuplot >/dev/null 2>&1; then
  [ -s "$tmp/d.png" ] && grep -q "^plot: $tmp/d.png" "$tmp/out" || fail "no plot"
fi

# The budget ends it early: the table covers the ticks run, fewer than asked.
run --processors 200 --workloads 600 --ticks 600 --seconds 4 --plot off
finish
[ "$rc" -eq 0 ] || fail "exit $rc with a budget: $(cat "$tmp/err")"
grep -q 'the time budget ended it' "$tmp/out" || fail "the budget did not end it: $(head -3 "$tmp/out")"
ticks=$(sed -n 's/.* workloads, \([0-9]*\) ticks of .*/\1/p' "$tmp/out")
[ -n "$ticks" ] && [ "$ticks" -lt 600 ] || fail "ticks run: '$ticks'"

# SIGINT: exit 130, the summary so far (or a stop during the warm-up), nothing left.
run --processors 200 --workloads 600 --ticks 600 --seconds 300 --plot off
for _ in $(seq 300); do
  grep -q 'sockets are in' "$tmp/err" && break
  sleep 0.1
done
sleep 1.5
kill -INT "$pid"
finish
[ "$rc" -eq 130 ] || fail "exit $rc after SIGINT: $(cat "$tmp/err")"
grep -Eq 'stopped by a signal|stopped during the warm-up' "$tmp/out" ||
  fail "no word of the stop: $(tail -5 "$tmp/out")"

# Usage errors.
for args in "--processors 1" "--seconds 0" "--view fancy" "--frobnicate 1" "stray"; do
  # shellcheck disable=SC2086
  "$bin" demo $args >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 2 ] || fail "demo $args: exit $rc, expected 2"
  flag=${args%% *}
  grep -q -- "$flag" "$tmp/err" || fail "demo $args: the error does not name $flag: $(cat "$tmp/err")"
done
"$bin" demo --help >"$tmp/out" || fail "--help failed"
for flag in --dataset --processors --workloads --seed --seconds --ticks --start-row --max-offset \
  --warmup --backend --plot --view; do
  grep -q -- "$flag" "$tmp/out" || fail "--help does not document $flag"
done
"$bin" demo --dataset "$tmp/none" --backend cpu >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "$tmp/none" "$tmp/err" || fail "a missing dataset: $(cat "$tmp/err")"

verdict cli_demo
