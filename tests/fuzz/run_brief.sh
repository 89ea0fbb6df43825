#!/usr/bin/env bash
# fuzz_protocol_brief: SECONDS of libFuzzer over the protocol decoders,
# starting from a copy of the seed corpus in WORKDIR (the source tree is
# never written). Exits non-zero on any crash, leak or broken invariant.
# Usage: run_brief.sh FUZZER SEEDS WORKDIR SECONDS
#        run_brief.sh --skip REASON     (no fuzzer here: ctest reports a skip)
set -euo pipefail
if [ "${1:-}" = "--skip" ]; then
  echo "SKIP: ${2:-no fuzzer}"
  exit 77
fi
fuzzer=$1 seeds=$2 work=$3 secs=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
echo "fuzz_protocol: ${secs} s from $(ls "$seeds" | wc -l) seeds; findings go to $work/artifacts/"
# libFuzzer reports a crash with exit code 77 unless told otherwise, which
# ctest would take for a skip.
rc=0
"$fuzzer" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -dict="$(dirname "$0")/protocol.dict" -artifact_prefix="$work/artifacts/" "$work/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "fuzz_protocol: failed (exit $rc); the input is in $work/artifacts/:" >&2
  ls -l "$work/artifacts/" >&2
  exit 1
fi
