#!/usr/bin/env bash
# Build preshift and watch this machine scored live: the scoring server
# (`preshift serve`) and a heartbeat agent (`preshift agent`) that sends this
# machine's CPU, memory, network and disk use five times a second and prints
# each heartbeat's Instability Score and PFP. The first 30 heartbeats (6 s)
# warm the models up; live PFPs follow, and the demo stops by itself after a
# minute (or on Ctrl-C), stopping the server: nothing is left running.
# Arguments go to the agent (e.g. --interval 1 --count 0 to run until Ctrl-C).
# The kernel benchmark is `build/server/preshift bench kernels`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
bin=./build/server/preshift
serve=("$bin" serve --metrics 6 --warmup 30 --http off)
if ! "$bin" version; then
  echo "the build's default backend is unusable here: serving with --backend cpu" >&2
  serve+=(--backend cpu)
fi

# Private addresses (ipc:// in a fresh directory): nothing to collide with.
tmp=$(mktemp -d)
server= agent=
cleanup() {
  for p in $agent $server; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${serve[@]}" --listen "ipc://$tmp/scoring" --publish "ipc://$tmp/stream" 2>"$tmp/serve.log" &
server=$!
for _ in $(seq 300); do
  grep -q 'preshift serve: ready' "$tmp/serve.log" && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q 'preshift serve: ready' "$tmp/serve.log"; then
  cat "$tmp/serve.log" >&2
  exit 1
fi
echo "scoring server ready (ipc://$tmp/scoring); agent: 300 heartbeats, 0.2 s apart" >&2
# In the background, so that a signal to this script interrupts the wait at once.
"$bin" agent --server "ipc://$tmp/scoring" --interval 0.2 --count 300 "$@" &
agent=$!
status=0
wait "$agent" || status=$?
agent=
exit "$status"
