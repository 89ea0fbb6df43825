#!/usr/bin/env bash
# cli_calibrate.sh - `preshift calibrate` end to end: a calibration fitted on
# labelled incidents is written into the model, its reliability table is
# printed, `preshift score` then maps scores through it monotonically, and
# bad labels are refused.
# Usage: bash cli_calibrate.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
export PRESHIFT_MODEL="$src/models/default.psm"
backend=()
if ! "$bin" version >/dev/null 2>&1; then
  echo "the build's default backend is unusable here: using --backend cpu"
  backend=(--backend cpu)
fi

expect() { # CODE PATTERN CMD...: exit status and a pattern on stderr+stdout
  local code=$1 pattern=$2; shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code: $*: $(tail -3 "$tmp/out")"
  [ -z "$pattern" ] || grep -Eq -- "$pattern" "$tmp/out" || fail "output lacks '$pattern': $*"
}

# Two metrics; incidents: rows 150-159, 300-309 and 450-459 jump on metric 1.
awk 'BEGIN { srand(5); for (t = 0; t < 300; t++) printf "%.3f,%.3f\n", sin(t / 8) + rand(), rand() }' \
  >"$tmp/hist.csv"
awk 'BEGIN { srand(6); for (t = 0; t < 600; t++) {
  inc = (t >= 150 && t < 160) || (t >= 300 && t < 310) || (t >= 450 && t < 460)
  printf "%.3f,%.3f\n", sin(t / 8) + rand() + (inc ? 6 : 0), rand() } }' >"$tmp/in.csv"
awk 'BEGIN { for (t = 0; t < 600; t++)
  print ((t >= 150 && t < 160) || (t >= 300 && t < 310) || (t >= 450 && t < 460)) ? 1 : 0 }' \
  >"$tmp/labels.txt"

for method in platt isotonic; do
  expect 0 'Brier score' "$bin" calibrate "${backend[@]}" --method "$method" --horizon 3 \
    --history "$tmp/hist.csv" --labels "$tmp/labels.txt" -o "$tmp/$method.psm" "$tmp/in.csv"
  grep -q 'reliability on the held-out rows' "$tmp/out" || fail "$method: no reliability table"
  [ -s "$tmp/$method.psm" ] || fail "$method: no model written"
  "$bin" score "${backend[@]}" --model "$tmp/$method.psm" --history "$tmp/hist.csv" "$tmp/in.csv" \
    >"$tmp/$method.scores" 2>"$tmp/err" || fail "$method: score: $(cat "$tmp/err")"
  # PFP never decreases as the score grows.
  tail -n +2 "$tmp/$method.scores" | sort -t, -k1,1g |
    awk -F, 'NR > 1 && $2 < last - 1e-12 { bad = 1 } { last = $2 } END { exit bad }' ||
    fail "$method: calibrated PFP is not monotone in the score"
done
"$bin" score "${backend[@]}" --history "$tmp/hist.csv" "$tmp/in.csv" >"$tmp/plain.scores"
cmp -s "$tmp/plain.scores" "$tmp/platt.scores" && fail "the calibration did not change the PFPs"
cut -d, -f1 "$tmp/plain.scores" | cmp -s - <(cut -d, -f1 "$tmp/platt.scores") ||
  fail "the calibration changed the scores themselves"

# Bad labels and usage.
head -100 "$tmp/labels.txt" >"$tmp/short.txt"
expect 1 'one label a row' "$bin" calibrate "${backend[@]}" --history "$tmp/hist.csv" \
  --labels "$tmp/short.txt" -o "$tmp/x.psm" "$tmp/in.csv"
sed '7s/.*/2/' "$tmp/labels.txt" >"$tmp/two.txt"
expect 1 'two.txt:7: label 2' "$bin" calibrate "${backend[@]}" --history "$tmp/hist.csv" \
  --labels "$tmp/two.txt" -o "$tmp/x.psm" "$tmp/in.csv"
[ ! -e "$tmp/x.psm" ] || fail "a model was written from bad labels"
expect 2 'labels' "$bin" calibrate -o "$tmp/x.psm" "$tmp/in.csv"
expect 2 'required' "$bin" calibrate --labels "$tmp/labels.txt" "$tmp/in.csv"
expect 2 'platt or isotonic' "$bin" calibrate --method magic --labels "$tmp/labels.txt" \
  -o "$tmp/x.psm" "$tmp/in.csv"
expect 0 'horizon' "$bin" calibrate --help

verdict cli_calibrate
