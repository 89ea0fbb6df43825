#!/usr/bin/env bash
# Build and run every test: a normal build, an AddressSanitizer +
# UndefinedBehaviorSanitizer build, and (where nvcc is installed) the cuda
# build, whose GPU tests skip without a device.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

run_suite() { # name, cmake args...
  local dir="build-test-$1"; shift
  echo "== $dir: configure $*" >&2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

# Release, as the demo builds: -O3 finds warnings (maybe-uninitialized) that
# -O2 does not. A later -D wins over run_suite's default.
run_suite plain -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite sanitize -DPRESHIFT_SANITIZER=address+undefined
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null; then
  run_suite cuda -DPRESHIFT_BACKEND=cuda
else
  echo "== cuda build skipped: no nvcc (install the CUDA toolkit to build it)" >&2
fi
echo "all tests passed" >&2
