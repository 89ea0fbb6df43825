#!/bin/bash
# cli_bench.sh - `preshift bench kernels` end to end on a tiny grid.
#
# Checks the shape of what the benchmark says, never how fast anything was:
# CI machines are shared and a timing assertion would only measure the
# neighbours. JSON is checked with grep and awk because CI images may have
# no python; the PyTorch peer is exercised only where /usr/bin/python3 can
# import torch, and its absence must be reported and survived.
#
# usage: bash cli_bench.sh <path-to-preshift> <source-dir>
set -u

bin=${1:?usage: cli_bench.sh <preshift> <source-dir>}
src=${2:?usage: cli_bench.sh <preshift> <source-dir>}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The value of "key": in one JSON line (numbers and bare words only).
field() {
    printf '%s\n' "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | cut -d: -f2- | tr -d ' "'
}

is_positive() {
    awk -v v="$1" 'BEGIN { exit !(v ~ /^[0-9.eE+-]+$/ && v + 0 > 0) }'
}

# Every line a JSON object with the required keys; numbers positive (a peak
# record's hidden is 0 by definition).
check_lines() {
    local file=$1 line n=0 key v
    while IFS= read -r line; do
        n=$((n + 1))
        case $line in
        \{*\}) ;;
        *)
            fail "not a JSON object: $line"
            continue
            ;;
        esac
        v=$(field "$line" impl)
        case $v in
        preshift | sgemm | pytorch) ;;
        *) fail "impl '$v' in: $line" ;;
        esac
        for key in rows threads steps_per_s gflops median_s; do
            v=$(field "$line" "$key")
            is_positive "$v" || fail "$key '$v' is not a positive number in: $line"
        done
        v=$(field "$line" hidden)
        if [ "$(field "$line" shape)" = peak ]; then
            [ "$v" = 0 ] || fail "peak record with hidden '$v': $line"
        else
            is_positive "$v" || fail "hidden '$v' is not a positive number in: $line"
        fi
    done <"$file"
    [ "$n" -gt 0 ] || fail "no output lines in $file"
}

has_record() { # file impl shape
    grep "\"impl\":\"$2\"" "$1" | grep -q "\"shape\":\"$3\""
}

# 1. The tiny grid without PyTorch.
"$bin" bench kernels --json --rows 1000 --hidden 8 --threads 1 --min-time 0.01 --no-pytorch \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "bench exited $rc: $(cat "$tmp/err")"
check_lines "$tmp/out"
has_record "$tmp/out" preshift step || fail "no preshift step record"
has_record "$tmp/out" sgemm step || fail "no sgemm step record"
has_record "$tmp/out" sgemm peak || fail "no sgemm peak record"
grep -q '"impl":"pytorch"' "$tmp/out" && fail "a pytorch record despite --no-pytorch"
# OpenBLAS before 0.3.25 runs its SSE3 (Prescott) kernels on CPUs newer than
# itself; preshift restarts itself with OPENBLAS_CORETYPE set then (main.c).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    core=$(field "$(grep '"impl":"sgemm"' "$tmp/out" | head -n 1)" isa)
    [ "$core" != Prescott ] || fail "OpenBLAS runs its Prescott kernels on an AVX2 CPU"
fi
line=$(grep '"impl":"preshift"' "$tmp/out" | head -n 1)
if [ "$(field "$line" rows)" != 1000 ] || [ "$(field "$line" hidden)" != 8 ] ||
    [ "$(field "$line" threads)" != 1 ]; then
    fail "preshift record for the wrong cell: $line"
fi
[ "$(wc -l <"$tmp/out")" = 3 ] || fail "expected 3 records, got: $(cat "$tmp/out")"
grep -q preshift "$tmp/err" || fail "no progress on stderr"

# 2. An interpreter that does not exist: said once, then the rest goes on.
"$bin" bench kernels --json --rows 1000 --hidden 8 --threads 1 --min-time 0.01 \
    --python "$tmp/no-such-python" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "bench without a python exited $rc"
grep -q "PyTorch peer not measured" "$tmp/err" || fail "missing PyTorch not reported"
has_record "$tmp/out" preshift step || fail "no preshift record without a python"
check_lines "$tmp/out"

# 3. The PyTorch peer, where this machine has it.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    "$bin" bench kernels --json --rows 1000 --hidden 8 --threads 1 --min-time 0.01 \
        --python-script "$src/bench/pytorch_lstmcell.py" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 0 ] || fail "bench with PyTorch exited $rc: $(cat "$tmp/err")"
    check_lines "$tmp/out"
    has_record "$tmp/out" pytorch step || fail "no pytorch record: $(cat "$tmp/err")"
    grep '"impl":"preshift"' "$tmp/out" | grep -q '"vs_pytorch":' ||
        fail "preshift record without its ratio to PyTorch"
else
    echo "note: /usr/bin/python3 has no torch here; PyTorch peer not exercised"
fi

# 4. The table form prints a header and the rows.
"$bin" bench kernels --rows 1000 --hidden 8 --threads 1 --min-time 0.01 --no-pytorch \
    >"$tmp/out" 2>"$tmp/err" || fail "table form failed: $(cat "$tmp/err")"
grep -q '^impl' "$tmp/out" || fail "no table header"
grep -q '^preshift' "$tmp/out" || fail "no preshift row in the table"

# 5. Usage errors exit 2 before measuring anything; --help exits 0.
expect_usage_error() {
    "$bin" bench "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    [ $rc = 2 ] || fail "'preshift bench $*' exited $rc, not 2"
    [ -s "$tmp/err" ] || fail "'preshift bench $*' said nothing on stderr"
}
expect_usage_error kernels --no-such-flag
expect_usage_error kernels --rows 0
expect_usage_error kernels --rows 12x
expect_usage_error kernels --rows
expect_usage_error kernels --hidden 1,,2
expect_usage_error kernels --threads -1
expect_usage_error kernels --min-time abc
expect_usage_error kernels --isa sse9
expect_usage_error kernels --backend tpu
expect_usage_error no-such-benchmark
expect_usage_error

"$bin" bench kernels --help >"$tmp/help" || fail "--help did not exit 0"
for flag in --json --rows --hidden --threads --min-time --no-pytorch --python \
    --python-script --backend --isa --help; do
    grep -q -- "$flag" "$tmp/help" || fail "--help does not mention $flag"
done

if [ $failures -ne 0 ]; then
    echo "cli_bench: $failures failure(s)" >&2
    exit 1
fi
echo "cli_bench: ok"
