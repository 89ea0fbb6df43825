#!/usr/bin/env bash
# cli_serve.sh - `preshift serve` as a process: --help documents every flag
# with its default, bad flags and bad configuration files exit 2 naming the
# problem, a configuration file is applied and flags override it, the
# effective configuration is printed, /healthz answers, and SIGTERM stops the
# server cleanly (exit 0). The protocol itself is tested in test_serve.c.
# Usage: bash cli_serve.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
export PRESHIFT_MODEL="$src/models/default.psm"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
serve=("$bin" serve)
if ! "$bin" version >/dev/null 2>&1; then
  echo "the build's default backend is unusable here: serving with --backend cpu"
  serve+=(--backend cpu)
fi


expect 0 '' "${serve[@]}" --help
for flag in --config --listen --publish --http --tls-cert --tls-key --tls-ca --model --metrics \
  --max-processors --warmup --contexts --max-batch --max-queue --batch-delay --stale-after \
  --backend --threads --lstm-weight --arima --smoothing --seasonal-weight; do
  grep -q -- "$flag" "$tmp/out" || fail "--help does not document $flag"
done
[ "$(grep -c default "$tmp/out")" -ge 20 ] || fail "--help gives few defaults"

expect 2 'unknown option' "${serve[@]}" --frobnicate 1
expect 2 'contexts' "${serve[@]}" --contexts 0
expect 2 'listen' "${serve[@]}" --listen udp://x:1
expect 2 'tls-cert' "${serve[@]}" --listen tls+tcp://127.0.0.1:0
expect 2 'warmup' "${serve[@]}" --warmup 16
printf 'metrics = 3\nthis line is wrong\n' >"$tmp/bad.conf"
expect 2 'bad.conf:2' "${serve[@]}" --config "$tmp/bad.conf"
expect 2 'nope.conf' "${serve[@]}" --config "$tmp/nope.conf"
expect 1 'metrics' "${serve[@]}" --listen "ipc://$tmp/x" --publish off --http off
expect 1 'model' "${serve[@]}" --metrics 2 --model "$tmp/none.psm" --http off

cat >"$tmp/serve.conf" <<CONF
# the file sets these; the command line overrides contexts
listen = ipc://$tmp/rep
publish = ipc://$tmp/pub
http = http://127.0.0.1:0
metrics = 4
max-processors = 100
contexts = 3
warmup = 40
CONF
"${serve[@]}" --config "$tmp/serve.conf" --contexts 5 2>"$tmp/log" &
pid=$!
for _ in $(seq 300); do
  grep -q 'preshift serve: ready' "$tmp/log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
grep -q 'preshift serve: ready' "$tmp/log" || fail "server did not start: $(cat "$tmp/log")"
grep -Eq 'contexts += 5$' "$tmp/log" || fail "flag did not override the file: $(grep contexts "$tmp/log")"
grep -Eq 'max-processors += 100$' "$tmp/log" || fail "file not applied"
grep -Eq 'warmup += 40$' "$tmp/log" || fail "file warmup not applied"
port=$(sed -n 's/.*http .*(port \([0-9]*\)).*/\1/p' "$tmp/log")
[ -n "$port" ] || fail "HTTP port not printed: $(cat "$tmp/log")"
if [ -n "$port" ] && command -v curl >/dev/null; then
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] ||
    fail "/healthz is not 200"
  curl -s "http://127.0.0.1:$port/metrics" | grep -q '^preshift_batches_total 0$' ||
    fail "/metrics lacks preshift_batches_total 0"
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(cat "$tmp/log")"
grep -q 'preshift serve: stopped' "$tmp/log" || fail "no clean stop: $(cat "$tmp/log")"

verdict cli_serve
