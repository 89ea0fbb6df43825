#!/usr/bin/env bash
# cli_train.sh - `preshift train` end to end: a tiny model from a generated
# CSV (plain, gzip and stdin), and the exit codes and messages of the ways a
# user gets it wrong (2: usage, 1: data or file).
# Usage: bash cli_train.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"

# Stricter than lib/cli.sh's expect: exit status CODE and PATTERN (grep -E) on stderr,
# or nothing at all on stderr when PATTERN is empty.
expect() {
  local code=$1 pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code: $*: $(cat "$tmp/err")"
  if [ -z "$pattern" ]; then
    [ ! -s "$tmp/err" ] || fail "unexpected stderr: $*: $(cat "$tmp/err")"
  else
    grep -Eq -- "$pattern" "$tmp/err" || fail "stderr lacks '$pattern': $*: $(cat "$tmp/err")"
  fi
}

# Two metrics over 600 ticks, with a header: a noisy sine and a slow ramp.
awk 'BEGIN { srand(1); print "cpu,mem";
  for (t = 0; t < 600; t++) printf "%.4f,%.4f\n", 50 + 10 * sin(t * 0.2) + rand(), 0.3 + t / 6000 }' \
  >"$tmp/m.csv"
tiny=(--hidden 4 --window 16 --burn-in 4 --batch 8 --epochs 2 --seed 3)

expect 0 'wrote .*model.psm' "$bin" train "${tiny[@]}" -o "$tmp/model.psm" "$tmp/m.csv"
[ -s "$tmp/model.psm" ] || fail "no model file written"
# The model file's magic: \x89 P S M.
[ "$(head -c 4 "$tmp/model.psm" | tail -c 3)" = PSM ] || fail "model file lacks the PSM magic"

# Same command, same bytes (the command line is recorded in the file, so both
# runs use the same relative names).
mkdir "$tmp/a" "$tmp/b"
(cd "$tmp/a" && "$bin" train -q "${tiny[@]}" -o model.psm ../m.csv) || fail "run a failed"
(cd "$tmp/b" && "$bin" train -q "${tiny[@]}" -o model.psm ../m.csv) || fail "run b failed"
cmp -s "$tmp/a/model.psm" "$tmp/b/model.psm" || fail "same seed, different model files"
# gzip and stdin inputs.
if command -v gzip >/dev/null; then
  gzip -c "$tmp/m.csv" >"$tmp/m.csv.gz"
  "$bin" train -q "${tiny[@]}" -o "$tmp/gz.psm" "$tmp/m.csv.gz" || fail "gzip input failed"
  [ "$(wc -c <"$tmp/gz.psm")" -gt 100 ] || fail "gzip model too small"
fi
"$bin" train -q "${tiny[@]}" -o "$tmp/stdin.psm" - <"$tmp/m.csv" || fail "stdin input failed"
[ -s "$tmp/stdin.psm" ] || fail "stdin model missing"

# Multivariate, quiet.
expect 0 '' "$bin" train -q --multivariate "${tiny[@]}" -o "$tmp/mv.psm" "$tmp/m.csv"
[ -s "$tmp/mv.psm" ] || fail "no multivariate model written"

# Help goes to stdout and exits 0.
"$bin" train --help >"$tmp/help" 2>&1 || fail "--help exit status"
grep -q -- '--hidden' "$tmp/help" || fail "--help does not document --hidden"

# Usage errors: exit 2, with the reason.
expect 2 "unknown option '--bogus'" "$bin" train --bogus -o "$tmp/x.psm" "$tmp/m.csv"
expect 2 "--hidden: 'abc' is not an integer" "$bin" train --hidden abc -o "$tmp/x.psm" "$tmp/m.csv"
expect 2 "--epochs: 0 is out of range" "$bin" train --epochs 0 -o "$tmp/x.psm" "$tmp/m.csv"
expect 2 "--lr: 'x' is not a finite number" "$bin" train --lr=x -o "$tmp/x.psm" "$tmp/m.csv"
expect 2 "-o MODEL is required" "$bin" train "$tmp/m.csv"
expect 2 "no input file" "$bin" train -o "$tmp/x.psm"
expect 2 "--window needs a value" "$bin" train -o "$tmp/x.psm" "$tmp/m.csv" --window
expect 2 "burn-in .* must be smaller" "$bin" train --window 8 --burn-in 8 -o "$tmp/x.psm" "$tmp/m.csv"

# Data and file errors: exit 1, naming the file and the place.
expect 1 "missing.csv: cannot open" "$bin" train -o "$tmp/x.psm" "$tmp/missing.csv"
printf 'a,b\n1,2\n3,oops\n' >"$tmp/bad.csv"
expect 1 "bad.csv:3:2: 'oops' is not a number" "$bin" train -o "$tmp/x.psm" "$tmp/bad.csv"
printf '1\n2\n3\n' >"$tmp/short.csv"
expect 1 "long enough" "$bin" train -o "$tmp/x.psm" "$tmp/short.csv"
expect 1 "cannot|No such" "$bin" train "${tiny[@]}" -o "$tmp/no/such/dir/x.psm" "$tmp/m.csv"
[ ! -e "$tmp/x.psm" ] || fail "a failed run left a model file"

verdict cli_train
