#!/usr/bin/env bash
# Build preshift and run its main job: `preshift demo`, a simulated cluster of
# 2,000 processors replaying the bundled ASD server metrics (data/asd/), scored
# by the real scoring server and shifted by the real manager, watched live. It
# ends within two minutes with the comparison against reactive failover and a
# plot (preshift-demo.png); Ctrl-C stops it early with the summary so far.
# Arguments go to `preshift demo` (--help lists them). scripts/agent-demo.sh
# scores this machine's own metrics instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
bin=./build/server/preshift
args=()
if ! "$bin" version >/dev/null 2>&1; then
  echo "the build's default backend is unusable here: the demo scores with --backend cpu" >&2
  args+=(--backend cpu)
fi
exec "$bin" demo "${args[@]}" "$@"
