#!/usr/bin/env bash
# cli_sim.sh - `preshift sim` end to end on a tiny dataset written here
# (3 entities, 2 metrics, 3 labelled events, one file gzip'd): the JSON lines
# (every key, numbers, the policies in order), the oracle never worse than
# reactive, the same seed giving the same bytes and another seed another
# scenario, the table, the reference runs behind the comparisons, usage
# errors (exit 2, naming the flag), a malformed dataset refused with
# file:line:col (exit 1), the `preshift` policy (the real server and
# manager: its JSON, thresholds, --keep-files), the plot (a PNG when gnuplot is
# installed; skipped with exit 0 when it is not), and no temporary files
# left behind.
# Usage: bash cli_sim.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
cd "$tmp" || exit 1
# The plot's temporary files go here, so that the test can see them removed.
mkdir "$tmp/tmpdir"
export TMPDIR="$tmp/tmpdir"


# The dataset: entity e-1 has two events, e-2 one, e-3 none; the first metric
# runs high during the events (so that naive has something to see).
ds=$tmp/ds
mkdir -p "$ds/train" "$ds/test" "$ds/test_label"
for e in 1 2 3; do
  awk -v e=$e 'BEGIN { srand(e); for (i = 0; i < 30; i++)
    printf "%.2f,%.2f\n", 0.3 + 0.1 * rand(), 0.4 + 0.1 * rand() }' >"$ds/train/e-$e.txt"
  ev='(e == 1 && ((i >= 10 && i <= 12) || (i >= 35 && i <= 37))) || (e == 2 && i >= 20 && i <= 24)'
  awk -v e=$e "BEGIN { srand(10 + e); for (i = 0; i < 60; i++) {
    hi = $ev; printf \"%.2f,%.2f\\n\", (hi ? 0.95 : 0.3) + 0.04 * rand(), 0.4 + 0.1 * rand() } }" \
    >"$ds/test/e-$e.txt"
  awk -v e=$e "BEGIN { for (i = 0; i < 60; i++) { hi = $ev; print hi ? 1 : 0 } }" \
    >"$ds/test_label/e-$e.txt"
done
gzip "$ds/test/e-2.txt"
sim=("$bin" sim --dataset "$ds" --processors 20 --workloads 60)

# --help documents every flag.
expect 0 '' "$bin" sim --help
for flag in --dataset --policies --seed --processors --workloads --ticks --tick-seconds \
  --horizon --repair --failure-timeout --restart --transfer-fail --bandwidth --noise \
  --max-offset --fail-delay --cpu-capacity --mem-capacity --cpu-demand --mem-demand --state \
  --criticality --replica-groups --replica-size --layers --out-degree --naive-cpu-col \
  --naive-mem-col --naive-threshold --naive-hold --oracle-margin --backend --warmup \
  --serve-config --manage-config --classes --tcp --processes --keep-files --json --plot --quiet; do
  grep -q -- "$flag" "$tmp/out" || fail "--help does not document $flag"
done

# JSON: one line per policy, in order, every key with a number (or null where allowed).
expect 0 'reactive: 60 ticks in' "${sim[@]}" --json --plot off
cp "$tmp/out" "$tmp/json1"
[ "$(wc -l <"$tmp/json1")" -eq 3 ] || fail "$(wc -l <"$tmp/json1") JSON lines, not 3"
[ "$(sed -E 's/^\{"policy":"([a-z]+)".*/\1/' "$tmp/json1" | paste -sd,)" = reactive,naive,oracle ] ||
  fail "policies: $(cut -c1-30 "$tmp/json1")"
num='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'
for key in seed processors workloads ticks tick_seconds failures failures_averted \
  failures_partial failures_missed failures_idle interruptions interrupted_workload_minutes \
  interrupted_crit_minutes transfers committed transfer_failed dest_failed source_failed \
  in_flight averted unnecessary disruptive pending overloaded failovers; do
  [ "$(grep -cE "\"$key\":${num}[,}]" "$tmp/json1")" -eq 3 ] || fail "key $key missing or not a number"
done
for key in lead_minutes_median lead_minutes_p10 lead_minutes_p90 unnecessary_per_averted \
  reduction_vs_reactive share_of_oracle_reduction; do
  [ "$(grep -cE "\"$key\":(${num}|null)[,}]" "$tmp/json1")" -eq 3 ] || fail "key $key missing"
done
grep -Eq 'nan|inf' "$tmp/json1" && fail "NaN or infinity in the JSON"
# val POLICY KEY FILE: the value of KEY on POLICY's line.
val() { grep "\"policy\":\"$1\"" "$3" | sed -E "s/.*\"$2\":([^,}]*).*/\1/"; }
[ "$(val reactive processors "$tmp/json1")" = 20 ] || fail "processors is not 20"
[ "$(val reactive workloads "$tmp/json1")" = 60 ] || fail "workloads is not 60"
[ "$(val reactive ticks "$tmp/json1")" = 60 ] || fail "ticks is not the test series' 60"
failures=$(val reactive failures "$tmp/json1")
[ "$failures" -gt 0 ] || fail "no failure in the run"
for p in naive oracle; do
  [ "$(val $p failures "$tmp/json1")" = "$failures" ] || fail "$p saw other failures"
done
r=$(val reactive interrupted_workload_minutes "$tmp/json1")
o=$(val oracle interrupted_workload_minutes "$tmp/json1")
awk -v r="$r" -v o="$o" 'BEGIN { exit !(o <= r && r > 0) }' || fail "oracle $o > reactive $r minutes"
[ "$(val reactive transfers "$tmp/json1")" = 0 ] || fail "reactive made transfers"
[ "$(val reactive unnecessary_per_averted "$tmp/json1")" = null ] ||
  fail "reactive averted nothing: unnecessary per averted should be null"
[ "$(val reactive reduction_vs_reactive "$tmp/json1")" = 0 ] || fail "reactive vs itself is not 0"
[ "$(val oracle share_of_oracle_reduction "$tmp/json1")" = 1 ] || fail "oracle's share is not 1"

# The same seed: the same bytes; another seed: another scenario.
expect 0 '' "${sim[@]}" --json --plot off --seed 1
cmp -s "$tmp/out" "$tmp/json1" || fail "seed 1 given explicitly differs from the default seed"
expect 0 '' "${sim[@]}" --json --plot off --seed 7 -q
[ -s "$tmp/err" ] && fail "-q printed: $(cat "$tmp/err")"
cmp -s "$tmp/out" "$tmp/json1" && fail "seed 7 gave the same output as seed 1"
[ "$(val reactive interrupted_workload_minutes "$tmp/out")" != "$r" ] ||
  [ "$(val reactive failures "$tmp/out")" != "$failures" ] ||
  fail "seed 7: the same failures and interrupted minutes as seed 1"
expect 0 '' "${sim[@]}" --json --plot off --seed 7 -q
cp "$tmp/out" "$tmp/json7"
expect 0 '' "${sim[@]}" --json --plot off --seed 7 -q
cmp -s "$tmp/out" "$tmp/json7" || fail "seed 7 twice differs"

# One policy alone: reactive and the oracle run as references, only it is reported.
expect 0 'reference' "${sim[@]}" --json --plot off --policies naive
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "--policies naive printed $(wc -l <"$tmp/out") lines"
grep "\"policy\":\"naive\"" "$tmp/json1" | cmp -s - "$tmp/out" ||
  fail "naive alone differs from naive among the others"

# The table: the scenario, a column per policy, the comparisons, the plot line.
expect 0 '' "${sim[@]}" --plot off
for want in 'dataset' '3 entities \(e-1 ... e-3\), 2 metrics, 3 labelled events' \
  'seed 1: 20 processors, 60 workloads, 60 ticks' "failures +$failures in the run" \
  'reactive +naive +oracle' 'interrupted workload-minutes' 'reduction vs reactive' \
  "share of the oracle's reduction" 'lead time' 'unnecessary per averted'; do
  grep -Eq -- "$want" "$tmp/out" || fail "table lacks '$want'"
done
grep -q '^plot' "$tmp/out" && fail "--plot off still reports a plot"

# Usage errors: exit 2 and the flag named.
expect 2 '--processors' "${sim[@]}" --processors 0
expect 2 '--workloads' "${sim[@]}" --workloads lots
expect 2 '--seed' "${sim[@]}" --seed -1
expect 2 '--seed needs a value' "${sim[@]}" --seed
expect 2 '--transfer-fail' "${sim[@]}" --transfer-fail 1.5
expect 2 '--cpu-demand' "${sim[@]}" --cpu-demand 3,1
expect 2 '--cpu-demand' "${sim[@]}" --cpu-demand 1,20
expect 2 '--policies' "${sim[@]}" --policies reactive,bogus
expect 2 '--policies' "${sim[@]}" --policies naive,naive
expect 2 '--policies' "${sim[@]}" --policies ''
expect 2 "unknown option '--frobnicate'" "${sim[@]}" --frobnicate 1
expect 2 'unexpected argument' "${sim[@]}" stray
expect 2 '--replica-groups' "${sim[@]}" --replica-groups 40
expect 2 '--naive-cpu-col' "${sim[@]}" --naive-cpu-col off --naive-mem-col off
# ... and those that depend on the dataset: 30 train rows, 60 test rows, 2 metrics.
expect 2 '--max-offset 31' "${sim[@]}" --max-offset 31
expect 2 '--ticks 61' "${sim[@]}" --ticks 61
expect 2 '--naive-mem-col 2' "${sim[@]}" --naive-mem-col 2
expect 0 '' "${sim[@]}" --naive-mem-col 2 --policies reactive,oracle --plot off
expect 2 'do not fit' "${sim[@]}" --workloads 1000 --replica-groups 0

# The preshift policy: the real server and manager, in-process. Its JSON object
# carries the thresholds' trajectory; --keep-files leaves the store behind.
pre=("${sim[@]}" --max-offset 5 --warmup 21 --backend cpu --plot off)
expect 0 'preshift kept its files' "${pre[@]}" --policies reactive,preshift --json --keep-files
[ "$(wc -l <"$tmp/out")" -eq 2 ] && grep -q '"policy":"reactive"' "$tmp/out" ||
  fail "reactive and preshift not both reported: $(cat "$tmp/out")"
line=$(grep '"policy":"preshift"' "$tmp/out")
for key in interrupted_workload_minutes averted unnecessary transfers thresholds; do
  echo "$line" | grep -q "\"$key\":" || fail "preshift's JSON lacks $key: $line"
done
# A class (and threshold) per entity replayed, by default: e-1, e-2, e-3.
classes=$(echo "$line" | grep -o '"class":"[^"]*","start":0\.999,' | cut -d'"' -f4 | paste -sd,)
[ "$classes" = e-1,e-2,e-3 ] ||
  fail "preshift's thresholds: classes '$classes', not e-1,e-2,e-3 starting at 0.999: $line"
kept=$(sed -n 's/.*preshift kept its files .* in //p' "$tmp/err")
[ -n "$kept" ] && [ -s "$kept/manage.db" ] || fail "--keep-files: no store in '$kept'"
[ -n "$kept" ] && ls "$kept" | grep -q -- '-wal$' && fail "the store's WAL was left open in $kept"
[ -n "$kept" ] && rm -rf "$kept"
expect 0 '' "${pre[@]}" --policies preshift
grep -q '^thresholds of preshift' "$tmp/out" || fail "the table lacks the thresholds"
# Over tcp loopback instead of ipc://: the same results, byte for byte.
expect 0 '' "${pre[@]}" --policies preshift --json
cp "$tmp/out" "$tmp/ipc.json"
expect 0 '' "${pre[@]}" --policies preshift --json --tcp
cmp -s "$tmp/out" "$tmp/ipc.json" || fail "--tcp changed the results: $(cat "$tmp/out")"
# End to end: `preshift serve` and `preshift manage` as processes, configured by
# files: the same results again, the files kept, no process left behind.
# leftover DIR: processes still running with a configuration file in DIR.
leftover() { [ -n "$1" ] && pgrep -f -- "--config $1/"; }
expect 0 'preshift kept its files' "${pre[@]}" --policies preshift --json --processes --keep-files
grep '^{' "$tmp/out" | cmp -s - "$tmp/ipc.json" ||
  fail "--processes changed the results: $(cat "$tmp/out")"
kept=$(sed -n 's/.*preshift kept its files .* in //p' "$tmp/err")
for f in serve.conf manage.conf manage.db; do
  [ -n "$kept" ] && [ -s "$kept/$f" ] || fail "--processes --keep-files: no $f in '$kept'"
done
[ -n "$kept" ] && grep -q '^http = http://127.0.0.1:' "$kept/manage.conf" ||
  fail "manage.conf has no HTTP address"
leftover "$kept" && fail "processes left running after --processes"
[ -n "$kept" ] && rm -rf "$kept"
# A child that cannot start is reported as such: exit 1, nothing left running.
printf 'model = %s/no-such-model\n' "$tmp" >"$tmp/nomodel.conf"
expect 1 'preshift serve exited with status 1' "${pre[@]}" --policies preshift --processes \
  --serve-config "$tmp/nomodel.conf" --keep-files
grep -q 'no-such-model' "$tmp/err" || fail "the server's own message is not shown: $(cat "$tmp/err")"
kept=$(sed -n 's/.*(files in \(.*\))$/\1/p' "$tmp/err")
[ -n "$kept" ] || fail "a failed --keep-files run does not say where its files are"
leftover "$kept" && fail "processes left running after a failed start"
[ -n "$kept" ] && rm -rf "$kept"
# The manager's and the server's options from files (preshift manage/serve --config).
printf 'threshold-initial = 0.995\nhold-ticks = 1\n' >"$tmp/manage.conf"
expect 0 '' "${pre[@]}" --policies preshift --json --manage-config "$tmp/manage.conf" \
  --classes one
grep -q '"thresholds":\[{"class":"sim","start":0.995,' "$tmp/out" ||
  fail "--manage-config (and --classes one) did not set the initial threshold: $(cat "$tmp/out")"
expect 2 "--classes: 'two'" "${pre[@]}" --policies preshift --classes two
printf 'hold-ticks 1\n' >"$tmp/bad.conf"
expect 2 'bad.conf:1: ' "${pre[@]}" --policies preshift --manage-config "$tmp/bad.conf"
printf 'warmup = 25\nbackend = cpu\n' >"$tmp/serve.conf"
expect 1 'too short to fit ARIMA' "${sim[@]}" --max-offset 5 --warmup 16 --policies preshift \
  --plot off --serve-config "$tmp/serve.conf"
expect 1 'too short to fit ARIMA' "${sim[@]}" --max-offset 5 --warmup 16 --backend cpu \
  --policies preshift --plot off

# A malformed dataset: refused with file:line:col, exit 1.
cp -r "$ds" "$tmp/bad"
sed -i '3s/.*/0.31,n\/a/' "$tmp/bad/train/e-3.txt"
expect 1 'train/e-3.txt:3:2: .*n/a' "$bin" sim --dataset "$tmp/bad" --processors 20 --workloads 60
rm -r "$tmp/bad" && cp -r "$ds" "$tmp/bad" && echo 0 >>"$tmp/bad/test_label/e-1.txt"
expect 1 'test_label/e-1.txt' "$bin" sim --dataset "$tmp/bad" --processors 20 --workloads 60
expect 1 "$tmp/none" "$bin" sim --dataset "$tmp/none"

# The plot: without gnuplot on PATH, a message, exit 0, no file.
mkdir "$tmp/nopath"
PATH="$tmp/nopath" "${sim[@]}" --plot "$tmp/np.png" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc without gnuplot: $(cat "$tmp/err")"
grep -q 'gnuplot is not installed' "$tmp/err" || fail "no message without gnuplot: $(cat "$tmp/err")"
[ -e "$tmp/np.png" ] && fail "a plot was written without gnuplot"
grep -q '^plot: not written' "$tmp/out" || fail "the table does not say the plot is missing"
if command -v gnuplot >/dev/null 2>&1; then
  expect 0 'plot written to' "${sim[@]}" --json --plot "$tmp/p.png"
  cmp -s "$tmp/out" "$tmp/json1" || fail "--plot changed the JSON"
  [ -s "$tmp/p.png" ] || fail "--plot wrote no PNG"
  [ "$(head -c 8 "$tmp/p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "$tmp/p.png is not a PNG"
  # The default: sim.png in the working directory, named in the output.
  expect 0 '' "${sim[@]}"
  [ -s sim.png ] || fail "no sim.png by default"
  grep -q '^plot: sim.png' "$tmp/out" || fail "the table does not say where the plot is"
  # A destination that cannot be written: exit 1, the results still printed.
  expect 1 'nodir' "${sim[@]}" --json --plot "$tmp/nodir/p.png"
  [ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "results not printed when the plot failed"
else
  echo "gnuplot is not installed: the PNG checks are skipped (Debian: gnuplot-nox)"
fi
[ -z "$(ls -A "$tmp/tmpdir")" ] || fail "temporary files left: $(ls -A "$tmp/tmpdir")"

verdict cli_sim
