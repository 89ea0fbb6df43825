#!/bin/bash
# gpu-check.sh - the CUDA backend on a machine with a GPU, in one call.
#
# Configures and builds the cuda variant (Release, -DPRESHIFT_BACKEND=cuda)
# in build-gpu/, runs the kernel tests (which compare the CUDA backend with
# the CPU backend and the naive reference), runs the kernel benchmark with
# the CUDA rows at 100,000 and 1,000,000 rows (hidden 64) and prints a short
# table. Every stage has a time limit, and all of them together stay under
# ten minutes. It installs nothing and needs no network: the toolchain, CUDA
# and the Debian packages of scripts/deps.sh must already be there.
#
# usage: bench/gpu-check.sh [build-dir]      (default: build-gpu in the source tree)
# Exit status: 0 all stages passed, 1 a stage failed (it says which and why).
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-gpu}
budget=570 # seconds for everything, leaving the caller a margin under ten minutes
start=$SECONDS
summary=()

die() {
    echo "gpu-check: FAIL: $*" >&2
    print_summary
    exit 1
}

print_summary() {
    echo
    echo "gpu-check summary ($((SECONDS - start)) s)"
    printf '  %-10s %-8s %s\n' stage result detail
    local line
    for line in "${summary[@]}"; do
        printf '  %s\n' "$line"
    done
}

note() { # stage result detail
    summary+=("$(printf '%-10s %-8s %s' "$1" "$2" "$3")")
}

# The seconds a stage may take: its own cap, or what is left of the budget.
limit() {
    local left=$((budget - (SECONDS - start)))
    # Out of time: a one-second limit makes the stage fail and say which.
    [ "$left" -gt 10 ] || { echo "gpu-check: out of time before the $2 stage" >&2; echo 1; return; }
    if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

# 1. A device, a driver and a compiler, or a clear no.
command -v nvidia-smi >/dev/null 2>&1 ||
    die "nvidia-smi not found: this machine has no NVIDIA driver (run this on the GPU machine)"
gpus=$(nvidia-smi -L 2>&1) || die "nvidia-smi cannot reach a device: $gpus"
[ -n "$gpus" ] || die "nvidia-smi lists no device"
nvcc=${CUDACXX:-}
[ -n "$nvcc" ] || nvcc=$(command -v nvcc 2>/dev/null || true)
[ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; }
[ -n "$nvcc" ] || die "no nvcc on PATH or at /usr/local/cuda/bin/nvcc"
command -v cmake >/dev/null 2>&1 || die "cmake not found"
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
note device ok "$(echo "$gpus" | head -n 1 | cut -c1-60), driver ${driver:-?}"
echo "gpu-check: $gpus"
echo "gpu-check: nvcc $("$nvcc" --version | tail -n 1)"

# 2. Configure and build.
mkdir -p "$build" || die "cannot create $build"
t0=$SECONDS
timeout "$(limit 120 configure)" cmake -S "$src" -B "$build" -DPRESHIFT_BACKEND=cuda \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" >"$build/gpu-check-configure.log" 2>&1 ||
    { tail -n 30 "$build/gpu-check-configure.log" >&2; die "configure failed (log: $build/gpu-check-configure.log)"; }
timeout "$(limit 330 build)" cmake --build "$build" -j"$(nproc)" >"$build/gpu-check-build.log" 2>&1 ||
    { grep -E 'error|Error' "$build/gpu-check-build.log" | head -n 30 >&2; die "build failed (log: $build/gpu-check-build.log)"; }
note build ok "$((SECONDS - t0)) s, Release, $build"

# 3. The kernel tests. Where a device answers, a "skip cuda" line means the
# backend did not start: that is a failure here, not a skip.
t0=$SECONDS
tests='^(test_cuda_backend|test_kernels|test_arma_kernel|test_lstm_torch)$'
timeout "$(limit 240 tests)" ctest --test-dir "$build" -R "$tests" -j 4 --output-on-failure \
    >"$build/gpu-check-tests.log" 2>&1
rc=$?
cat "$build/gpu-check-tests.log"
testlog=$build/Testing/Temporary/LastTest.log
if [ $rc -ne 0 ]; then
    note tests FAIL "ctest exited $rc (log: $build/gpu-check-tests.log)"
    die "kernel tests failed"
fi
if grep -q 'skip cuda:' "$testlog" 2>/dev/null; then
    grep 'skip cuda:' "$testlog" | head -n 3 >&2
    note tests FAIL "the CUDA backend did not start"
    die "a device is present but the tests skipped the CUDA backend"
fi
if grep -q '^SKIP' "$testlog" 2>/dev/null; then
    note tests FAIL "test_cuda_backend skipped"
    die "test_cuda_backend skipped although a device is present"
fi
checked=$(grep -c '^checked.*cuda (' "$testlog" 2>/dev/null || true)
graphs="graphs on"
grep -q 'cuda graphs off' "$testlog" 2>/dev/null && graphs="GRAPHS OFF (see $testlog)"
note tests ok "$((SECONDS - t0)) s, ${checked:-0} CUDA check runs, $graphs"

# 4. The benchmark: CPU rows with every core, CUDA rows beside the floors.
t0=$SECONDS
bin=$build/server/preshift
timeout "$(limit 200 bench)" "$bin" bench kernels --backend cuda --rows 100000,1000000 \
    --hidden 64 --threads "$(nproc)" --no-pytorch --min-time 0.5 \
    >"$build/gpu-check-bench.txt" 2>"$build/gpu-check-bench.err"
rc=$?
cat "$build/gpu-check-bench.txt"
if [ $rc -ne 0 ]; then
    tail -n 20 "$build/gpu-check-bench.err" >&2
    note bench FAIL "exited $rc (log: $build/gpu-check-bench.err)"
    die "the benchmark failed"
fi
grep -q 'cuda backend unavailable' "$build/gpu-check-bench.err" &&
    { note bench FAIL "cuda backend unavailable"; die "the benchmark could not start the CUDA backend"; }
# The CUDA table's header and rows go into the summary as they are.
while IFS= read -r line; do
    note bench ok "$line"
done < <(awk '/^CUDA:/ { on = 1 } on && ($1 == "impl" || $1 == "cuda")' "$build/gpu-check-bench.txt")
note bench ok "$((SECONDS - t0)) s (table above; saved in $build/gpu-check-bench.txt)"

print_summary
exit 0
