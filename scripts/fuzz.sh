#!/usr/bin/env bash
# Fuzz the wire protocol's decoders (tests/fuzz/fuzz_protocol.c) for SECONDS
# (default 600), on a corpus kept in build-fuzz/corpus: it starts from the
# seeds in tests/fuzz/corpus and keeps what every run adds. Crashes, leaks,
# timeouts and broken invariants are written to build-fuzz/crashes/. Extra
# arguments go to libFuzzer (e.g. -max_len=1048576, -fork=4).
# Usage: scripts/fuzz.sh [SECONDS] [libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
scripts/deps.sh
dir=build-fuzz
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRESHIFT_FUZZ=ON >/dev/null
cmake --build "$dir" --target fuzz_protocol
mkdir -p "$dir/corpus" "$dir/crashes"
cp -n tests/fuzz/corpus/* "$dir/corpus/"
echo "== fuzzing for ${secs} s; corpus $dir/corpus ($(ls "$dir/corpus" | wc -l) inputs)" >&2
echo "== crashes go to $dir/crashes/ (replay one: $dir/tests/fuzz/fuzz_protocol FILE)" >&2
rc=0
"$dir/tests/fuzz/fuzz_protocol" -max_total_time="$secs" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -dict=tests/fuzz/protocol.dict -artifact_prefix="$dir/crashes/" "$@" "$dir/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "== the fuzzer found something (exit $rc): see $dir/crashes/" >&2
  exit 1
fi
echo "== no crash in ${secs} s; corpus now $(ls "$dir/corpus" | wc -l) inputs" >&2
