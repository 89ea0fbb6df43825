#!/usr/bin/env bash
# cli_score.sh - `preshift score` end to end: both output layouts, row count
# and order, online-ness through the command line, several inputs at once,
# and every kind of bad input refused with file, line and column before any
# output is written.
# Usage: bash cli_score.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
export PRESHIFT_MODEL="$src/models/default.psm"
score=("$bin" score)
# A cuda build on a machine without a GPU scores on the CPU backend instead.
if ! "$bin" version >/dev/null 2>&1; then
  echo "the build's default backend is unusable here: scoring with --backend cpu"
  score+=(--backend cpu)
fi

# NAB style: 400 rows, a daily-ish wave, a spike at row 300.
awk 'BEGIN { srand(2); print "timestamp,value";
  for (t = 0; t < 400; t++) printf "2024-01-01 %02d:%02d:00,%.3f\n", int(t / 60) % 24, t % 60,
    20 + 5 * sin(t * 0.1) + rand() + (t == 300 ? 40 : 0) }' >"$tmp/nab.csv"
expect 0 '' "${score[@]}" "$tmp/nab.csv"
cp "$tmp/out" "$tmp/nab.out"
[ "$(head -1 "$tmp/nab.out")" = "timestamp,value,anomaly_score" ] || fail "NAB header: $(head -1 "$tmp/nab.out")"
[ "$(wc -l <"$tmp/nab.out")" -eq 401 ] || fail "NAB output has $(wc -l <"$tmp/nab.out") lines, not 401"
cut -d, -f1 "$tmp/nab.csv" | cmp -s - <(cut -d, -f1 "$tmp/nab.out") || fail "timestamps not echoed in order"
awk -F, 'NR > 1 && !($3 >= 0 && $3 <= 1) { bad = 1 } END { exit bad }' "$tmp/nab.out" ||
  fail "anomaly_score outside [0,1]"
# The spike (data row 300 = line 302) is the most anomalous row.
top=$(awk -F, 'NR > 1 { print NR, $3 }' "$tmp/nab.out" | sort -k2,2g | tail -1 | cut -d' ' -f1)
[ "$top" = 302 ] || fail "highest anomaly_score on line $top, not on the spike's line 302"

# Online: changing input lines after 350 (same row count) leaves output lines
# up to 350 alone.
awk -F, 'NR > 350 { printf "%s,%.3f\n", $1, $2 * 3; next } { print }' "$tmp/nab.csv" >"$tmp/nab2.csv"
expect 0 '' "${score[@]}" "$tmp/nab2.csv"
head -350 "$tmp/out" | cmp -s - <(head -350 "$tmp/nab.out") || fail "rows before the change changed"
cmp -s "$tmp/out" "$tmp/nab.out" && fail "changed rows did not change their scores"

# One metric: the seasonal term is on by default (auto = 1 for one metric).
# 2,000 rows of a wave with a period of 50 rows: the warm-up (300) holds 6 cycles.
awk 'BEGIN { srand(5); print "timestamp,value"; for (t = 0; t < 2000; t++)
  printf "2024-01-%02d %02d:%02d:00,%.3f\n", 1 + int(t / 288), int(t / 12) % 24, 5 * (t % 12),
    10 * ((t % 50) < 20) + rand() + (t > 1500 && t < 1520 ? -10 : 0) }' \
  >"$tmp/wave.csv"
expect 0 '' "${score[@]}" "$tmp/wave.csv"
cp "$tmp/out" "$tmp/wave.out"
expect 0 '' "${score[@]}" --seasonal-weight 1 "$tmp/wave.csv"
cmp -s "$tmp/out" "$tmp/wave.out" || fail "one metric: the default is not --seasonal-weight 1"
expect 0 '' "${score[@]}" --seasonal-weight 0 "$tmp/wave.csv"
cmp -s "$tmp/out" "$tmp/wave.out" && fail "--seasonal-weight 0 scored like the default"
expect 2 "--seasonal-weight: 'x'" "${score[@]}" --seasonal-weight x "$tmp/wave.csv"

# Onsets: the PFP where it beats each of the --onset-rows rows before (0 before
# the first), 0 elsewhere; as online as the PFP.
expect 0 '' "${score[@]}" --anomaly-score onset --onset-rows 20 "$tmp/nab.csv"
cut -d, -f1,2 "$tmp/out" | cmp -s - <(cut -d, -f1,2 "$tmp/nab.out") ||
  fail "onset changed the other columns"
awk -F, 'NR == FNR { if (FNR > 1) p[FNR - 2] = $3; next }
  FNR > 1 { t = FNR - 2; hi = 0
    for (k = t - 20; k < t; k++) if (k >= 0 && p[k] + 0 > hi) hi = p[k] + 0
    want = p[t] + 0 > hi ? p[t] + 0 : 0
    if ($3 + 0 != want) { printf "row %d: onset %s, expected %.17g\n", t, $3, want; bad = 1 } }
  END { exit bad }' "$tmp/nab.out" "$tmp/out" >"$tmp/err" || fail "onsets: $(head -3 "$tmp/err")"
[ "$(awk -F, 'NR > 1 && $3 > 0' "$tmp/out" | wc -l)" -lt 200 ] || fail "onsets on most rows"
cp "$tmp/out" "$tmp/onset.out"
expect 0 '' "${score[@]}" --anomaly-score onset --onset-rows 20 "$tmp/nab2.csv"
head -350 "$tmp/out" | cmp -s - <(head -350 "$tmp/onset.out") || fail "onsets are not online"
expect 2 "--anomaly-score: 'max'" "${score[@]}" --anomaly-score max "$tmp/nab.csv"
expect 2 "--onset-rows" "${score[@]}" --onset-rows 0 "$tmp/nab.csv"

# gzip input and stdin give the same output.
gzip -c "$tmp/nab.csv" >"$tmp/nab.csv.gz"
expect 0 '' "${score[@]}" "$tmp/nab.csv.gz"
cmp -s "$tmp/out" "$tmp/nab.out" || fail "gzip input scored differently"
"${score[@]}" - <"$tmp/nab.csv" >"$tmp/stdin.out" 2>"$tmp/err" || fail "stdin: $(cat "$tmp/err")"
cmp -s "$tmp/stdin.out" "$tmp/nab.out" || fail "stdin input scored differently"

# Multivariate, headerless, with a history: score,pfp,top_metric.
awk 'BEGIN { srand(3); for (t = 0; t < 300; t++) printf "%.3f,%.3f,%.3f\n",
  sin(t * 0.1) + rand(), 5 + rand(), 2 * rand() }' >"$tmp/hist.csv"
awk 'BEGIN { srand(4); for (t = 0; t < 100; t++) printf "%.3f,%.3f,%.3f\n",
  sin(t * 0.1) + rand(), 5 + rand() + (t == 60 ? 30 : 0), 2 * rand() }' >"$tmp/mv.csv"
expect 0 '' "${score[@]}" --history "$tmp/hist.csv" -o "$tmp/mv.out" "$tmp/mv.csv"
[ "$(head -1 "$tmp/mv.out")" = "score,pfp,top_metric" ] || fail "multivariate header"
[ "$(wc -l <"$tmp/mv.out")" -eq 101 ] || fail "multivariate output has $(wc -l <"$tmp/mv.out") lines"
[ "$(sed -n 62p "$tmp/mv.out" | cut -d, -f3)" = 2 ] || fail "spike on metric 2 not reported: $(sed -n 62p "$tmp/mv.out")"
expect 1 'onset: .*mv.csv is not NAB style' "${score[@]}" --anomaly-score onset --history \
  "$tmp/hist.csv" -o "$tmp/mv2.out" "$tmp/mv.csv"
[ -e "$tmp/mv2.out" ] && fail "an output was written for a refused --anomaly-score onset"

# Several inputs at once into a directory: the same rows as one by one, and
# the same PFPs up to rounding (one series alone is a one-row sgemm, several
# are one sgemm of several rows, and BLAS does not promise the same
# summation order for both; the recurrent state and the tail fit carry a
# rounding difference on, so allow 0.1 per row and 0.02 on average). In
# one batch a series' results do not depend on its place: swapping the
# files changes nothing, bit for bit.
cp "$tmp/nab.csv" "$tmp/a.csv"
cp "$tmp/nab2.csv" "$tmp/b.csv"
expect 0 '' "${score[@]}" -o "$tmp/outdir" "$tmp/a.csv" "$tmp/b.csv"
cmp -s <(cut -d, -f1,2 "$tmp/outdir/a.csv") <(cut -d, -f1,2 "$tmp/nab.out") ||
  fail "batched a.csv has other rows than its solo run"
paste -d, "$tmp/outdir/a.csv" "$tmp/nab.out" | awk -F, 'NR > 1 {
    d = $3 - $6; if (d < 0) d = -d; if (d > max) max = d; sum += d; n++ }
  END { if (max > 0.1 || sum / n > 0.02) { printf "max %g mean %g\n", max, sum / n; exit 1 } }' ||
  fail "batched a.csv's PFPs are far from its solo run's"
expect 0 '' "${score[@]}" -o "$tmp/outdir3" "$tmp/b.csv" "$tmp/a.csv"
cmp -s "$tmp/outdir3/a.csv" "$tmp/outdir/a.csv" || fail "a.csv's results depend on its place in the batch"
mkdir "$tmp/in" && cp "$tmp/a.csv" "$tmp/b.csv" "$tmp/in/"
expect 0 '' "${score[@]}" --batch-files "$tmp/in" -o "$tmp/outdir2"
cmp -s "$tmp/outdir2/b.csv" "$tmp/outdir/b.csv" || fail "--batch-files differs from listing the files"

# Bad input: refused with file:line:column, exit 1, no output file.
printf '1,2\n3,x\n' >"$tmp/nonnum.csv"
expect 1 'nonnum.csv:2:2' "${score[@]}" -o "$tmp/o1" "$tmp/nonnum.csv"
[ ! -e "$tmp/o1" ] || fail "output written for bad input"
printf '1,2\n3\n' >"$tmp/ragged.csv"
expect 1 'ragged.csv:2' "${score[@]}" -o "$tmp/o2" "$tmp/ragged.csv"
printf '1,2\n3,nan\n' >"$tmp/nan.csv"
expect 1 'nan.csv:2:2' "${score[@]}" -o "$tmp/o3" "$tmp/nan.csv"
: >"$tmp/empty.csv"
expect 1 'empty.csv' "${score[@]}" -o "$tmp/o4" "$tmp/empty.csv"
expect 1 'history .* has 3' "${score[@]}" --history "$tmp/hist.csv" -o "$tmp/o5" "$tmp/nab.csv"
[ ! -e "$tmp/o2" ] && [ ! -e "$tmp/o3" ] && [ ! -e "$tmp/o4" ] && [ ! -e "$tmp/o5" ] ||
  fail "output written for bad input"
expect 1 'missing.csv' "${score[@]}" "$tmp/missing.csv"
expect 1 'model' "${score[@]}" --model "$tmp/nope.psm" "$tmp/nab.csv"

# Usage errors exit 2.
expect 2 'no input' "${score[@]}"
expect 2 'unknown option' "${score[@]}" --frobnicate "$tmp/nab.csv"
expect 2 'warmup' "${score[@]}" --warmup 3 "$tmp/nab.csv"
expect 2 'lstm-weight' "${score[@]}" --lstm-weight 2 "$tmp/nab.csv"
expect 2 'arima' "${score[@]}" --arima 1,2 "$tmp/nab.csv"
expect 2 'several inputs' "${score[@]}" "$tmp/a.csv" "$tmp/b.csv"
expect 2 'history' "${score[@]}" --history "$tmp/hist.csv" -o "$tmp/x" "$tmp/a.csv" "$tmp/b.csv"
expect 0 '' "${score[@]}" --help

verdict cli_score
