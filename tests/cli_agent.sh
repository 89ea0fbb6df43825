#!/usr/bin/env bash
# cli_agent.sh - `preshift agent` as a process: --help documents every flag,
# bad flags exit 2, an agent against a real `preshift serve` (ipc:// in a
# temporary directory) prints warming_up lines and then scored lines with a
# PFP and a top metric, --pid measures one process, SIGTERM stops it cleanly,
# and an agent whose server is not there reports the failures on stderr and
# exits 1 without crashing, one that starts before its server gets answers
# once the server is up. The transfer flags: documented, refused when they
# make no sense, a transfer-only agent (--server off) starts, writes its
# journal, refuses a second listener on its address and a broken journal,
# and stops cleanly (tests/test_transfer.c drives transfers through it).
# Nothing is left running.
# Usage: bash cli_agent.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
export PRESHIFT_MODEL="$src/models/default.psm"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
serve=("$bin" serve)
if ! "$bin" version >/dev/null 2>&1; then
  echo "the build's default backend is unusable here: serving with --backend cpu"
  serve+=(--backend cpu)
fi


expect 0 '' "$bin" agent --help
for flag in --server --interval --timeout --pid --id --count --tls-ca --tls-cert --tls-key \
  --tls-server-name --quiet --help --transfer-listen --name --any-processor --transfer-journal \
  --refuse-transfers --transfer-delay 'server off'; do
  grep -q -- "$flag" "$tmp/out" || fail "--help does not document $flag"
done
grep -q 'tcp://127.0.0.1:5555' "$tmp/out" || fail "--help does not give the default server"
expect 2 'unknown option' "$bin" agent --frobnicate
expect 2 'interval' "$bin" agent --interval 0
expect 2 'count' "$bin" agent --count -1
expect 2 'server' "$bin" agent --server udp://x:1
expect 2 'needs a value' "$bin" agent --server
expect 2 'tls' "$bin" agent --tls-ca x.pem
expect 2 'together' "$bin" agent --server tls+tcp://127.0.0.1:1 --tls-cert c.pem
expect 1 'no such process' "$bin" agent --pid 999999999 --count 1

# Transfer flags.
expect 2 'needs --transfer-listen' "$bin" agent --name p1
expect 2 'needs --transfer-listen' "$bin" agent --any-processor
expect 2 'needs --transfer-listen' "$bin" agent --refuse-transfers
expect 2 'needs --transfer-listen' "$bin" agent --transfer-journal "$tmp/j"
expect 2 'needs --transfer-listen' "$bin" agent --transfer-delay 1
expect 2 'needs --transfer-listen' "$bin" agent --server off
expect 2 'transfer-listen' "$bin" agent --transfer-listen udp://x:1
expect 2 'needs a value' "$bin" agent --transfer-listen
expect 2 'transfer-delay' "$bin" agent --transfer-listen "ipc://$tmp/x" --transfer-delay -1
expect 2 'transfer-delay' "$bin" agent --transfer-listen "ipc://$tmp/x" --transfer-delay 3601
expect 2 'name' "$bin" agent --transfer-listen "ipc://$tmp/x" --name 'a b'
expect 2 'count' "$bin" agent --server off --transfer-listen "ipc://$tmp/x" --count 3
expect 2 'tls-cert' "$bin" agent --server off --transfer-listen tls+tcp://127.0.0.1:1
expect 2 'tls-server-name' "$bin" agent --server off --transfer-listen tls+tcp://127.0.0.1:1 \
  --tls-cert c.pem --tls-key k.pem --tls-server-name x
expect 1 'c.pem' "$bin" agent --server off --transfer-listen tls+tcp://127.0.0.1:1 \
  --tls-cert "$tmp/c.pem" --tls-key "$tmp/k.pem"
printf 'not a journal\n' >"$tmp/bad.journal"
expect 1 'bad.journal' "$bin" agent --server off --transfer-listen "ipc://$tmp/x" \
  --transfer-journal "$tmp/bad.journal"

# A transfer-only agent: starts, creates its journal, keeps its address, stops on SIGTERM.
"$bin" agent --server off --transfer-listen "ipc://$tmp/xfer" --any-processor \
  --transfer-journal "$tmp/xfer.journal" >"$tmp/xfer.out" 2>"$tmp/xfer.err" &
xagent=$!
pids+=($xagent)
for _ in $(seq 100); do
  grep -q 'transfers on' "$tmp/xfer.err" && break
  sleep 0.1
done
grep -q "transfers on ipc://$tmp/xfer for any processor, journal kept" "$tmp/xfer.err" ||
  fail "transfer agent did not start: $(cat "$tmp/xfer.err")"
[ "$(head -1 "$tmp/xfer.journal")" = 'preshift transfer journal 1' ] ||
  fail "no journal header: $(cat "$tmp/xfer.journal")"
expect 1 'cannot listen' "$bin" agent --server off --transfer-listen "ipc://$tmp/xfer" --name p1
kill -TERM "$xagent"
wait "$xagent"
rc=$?
[ "$rc" -eq 0 ] || fail "transfer agent exit $rc after SIGTERM: $(cat "$tmp/xfer.err")"
grep -q '0 transfer request(s)' "$tmp/xfer.err" || fail "no transfer summary: $(cat "$tmp/xfer.err")"
grep -q 'stopped by signal' "$tmp/xfer.err" || fail "no stop line: $(cat "$tmp/xfer.err")"
[ ! -s "$tmp/xfer.out" ] || fail "lines without transfers: $(cat "$tmp/xfer.out")"
pids=() # (the server's checks below look at pids[0])

# A server with a short warm-up: 21 heartbeats kept, then scores.
"${serve[@]}" --listen "ipc://$tmp/rep" --publish off --http off --metrics 6 --warmup 21 \
  2>"$tmp/log" &
pids+=($!)
for _ in $(seq 300); do
  grep -q 'preshift serve: ready' "$tmp/log" && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
grep -q 'preshift serve: ready' "$tmp/log" || fail "server did not start: $(cat "$tmp/log")"

"$bin" agent --server "ipc://$tmp/rep" --interval 0.05 --count 40 >"$tmp/agent.out" \
  2>"$tmp/agent.err"
rc=$?
[ "$rc" -eq 0 ] || fail "agent exit $rc: $(cat "$tmp/agent.err")"
lines=$(wc -l <"$tmp/agent.out")
[ "$lines" -eq 40 ] || fail "$lines lines for 40 heartbeats: $(cat "$tmp/agent.out")"
warming=$(grep -c ' warming_up ' "$tmp/agent.out")
scored=$(grep -Ec ' scored +score +[0-9.]+ +pfp [01]\.[0-9]{6} +top (cpu|mem|net_rx|net_tx|disk_rd|disk_wr|-)$' \
  "$tmp/agent.out")
[ "$warming" -eq 21 ] || fail "$warming warming_up lines, expected 21: $(cat "$tmp/agent.out")"
[ "$scored" -eq 19 ] || fail "$scored scored lines with a PFP, expected 19: $(cat "$tmp/agent.out")"
# warming_up lines come first
grep -n ' scored ' "$tmp/agent.out" | head -1 | grep -q '^22:' ||
  fail "scored lines do not follow the warm-up: $(cat "$tmp/agent.out")"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{3} ' "$tmp/agent.out" ||
  fail "lines do not start with the time"
grep -q '40 answered, 0 failed' "$tmp/agent.err" || fail "summary: $(cat "$tmp/agent.err")"

# Signal only once the agent blocks SIGTERM (bit 15 of SigBlk): before it
# does, the default action would kill it, which is not what is tested.
wait_blocked() {
  local blk
  for _ in $(seq 200); do
    blk=$(awk '/^SigBlk:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    [ -n "$blk" ] && [ $((0x$blk & 0x4000)) -ne 0 ] && break
    sleep 0.05
  done
  sleep 0.2
}

# SIGTERM while the main thread waits for a reply: a thread a library
# started before main() (OpenBLAS's pool) must not take it and die.
"$bin" agent --server "ipc://$tmp/nobody" --interval 10 --timeout 3 -q 2>"$tmp/sig.err" &
agent=$!
pids+=($agent)
wait_blocked "$agent"
kill -TERM "$agent"
wait "$agent"
rc=$?
[ "$rc" -ne 143 ] || fail "SIGTERM during a heartbeat killed the agent instead of stopping it"

# One process (this shell's sleep), a fixed id, quiet; then SIGTERM stops it.
sleep 30 &
sleeper=$!
pids+=($sleeper)
"$bin" agent --server "ipc://$tmp/rep" --interval 0.05 --pid "$sleeper" --id 77 -q \
  >"$tmp/pid.out" 2>"$tmp/pid.err" &
agent=$!
pids+=($agent)
wait_blocked "$agent"
kill -TERM "$agent"
wait "$agent"
rc=$?
[ "$rc" -eq 0 ] || fail "agent --pid exit $rc after SIGTERM: $(cat "$tmp/pid.err")"
[ ! -s "$tmp/pid.out" ] || fail "-q printed lines: $(head -3 "$tmp/pid.out")"
[ ! -s "$tmp/pid.err" ] || fail "agent --pid complained: $(cat "$tmp/pid.err")"
kill "$sleeper" 2>/dev/null

# A server that answers an error (K 6 against a server for 3 metrics): reported, not fatal.
"${serve[@]}" --listen "ipc://$tmp/rep3" --publish off --http off --metrics 3 --warmup 21 \
  2>"$tmp/log3" &
pids+=($!)
for _ in $(seq 300); do
  grep -q 'preshift serve: ready' "$tmp/log3" && break
  sleep 0.1
done
expect 1 'k_mismatch.*--metrics 6' "$bin" agent --server "ipc://$tmp/rep3" --interval 0.05 \
  --count 3
[ "$(grep -c 'k_mismatch' "$tmp/err")" -eq 3 ] || fail "3 errors expected: $(cat "$tmp/err")"

# No server at all: each heartbeat's failure on stderr, no crash, exit 1.
expect 1 'ipc:///nonexistent' timeout 60 "$bin" agent --count 3 --server ipc:///nonexistent \
  --interval 0.1 --timeout 0.3
[ "$(grep -c 'heartbeat [0-9]: ' "$tmp/err")" -eq 3 ] ||
  fail "3 failures expected on stderr: $(cat "$tmp/err")"
grep -q '3 heartbeat(s) sent, 0 answered, 3 failed' "$tmp/err" || fail "summary: $(cat "$tmp/err")"

# A server that comes up late: the first heartbeats fail, the agent keeps going and
# is answered once the server is there.
"$bin" agent --server "ipc://$tmp/late" --interval 0.1 --timeout 0.3 --count 30 \
  >"$tmp/late.out" 2>"$tmp/late.err" &
agent=$!
pids+=($agent)
sleep 1
"${serve[@]}" --listen "ipc://$tmp/late" --publish off --http off --metrics 6 --warmup 21 \
  2>"$tmp/log4" &
pids+=($!)
wait "$agent"
rc=$?
[ "$rc" -eq 0 ] || fail "late server: agent exit $rc: $(cat "$tmp/late.err")"
grep -q 'heartbeat 1: ' "$tmp/late.err" || fail "late server: no failure reported"
answered=$(wc -l <"$tmp/late.out")
[ "$answered" -ge 5 ] || fail "late server: $answered answers: $(cat "$tmp/late.err")"

# Stop the servers; nothing of ours is left running.
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null && fail "process $p still running"
done
pids=()
grep -q 'preshift serve: stopped' "$tmp/log" || fail "no clean stop: $(cat "$tmp/log")"

verdict cli_agent
