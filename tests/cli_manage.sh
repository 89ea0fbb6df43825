#!/usr/bin/env bash
# cli_manage.sh - `preshift manage` as a process: --help documents every flag
# with its default, bad flags and bad configuration files exit 2 naming the
# problem, a configuration file is applied and flags override it, the
# effective configuration is printed, the workload file is loaded into a new
# store, `preshift manage --ctl` changes and shows the cluster of a running
# manager, /healthz and /readyz answer, and SIGTERM stops it cleanly (exit 0).
# The manager's behaviour over a stream is tested in test_manage_loop.c.
# Usage: bash cli_manage.sh <path-to-preshift> <source-dir>
. "$(dirname "$0")/lib/cli.sh" "$@"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# lib/cli.sh's expect, with the pattern looked for on stdout too.
expect() {
  local code=$1 pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code: $*: $(cat "$tmp/err")"
  [ -z "$pattern" ] || grep -Eq -- "$pattern" "$tmp/err" "$tmp/out" ||
    fail "output lacks '$pattern': $*: $(cat "$tmp/err" "$tmp/out")"
}

expect 0 '' "$bin" manage --help
for flag in --config --subscribe --server --workloads --reload-workloads --store --control \
  --http --hold-ticks --cooldown-ticks --residual-share --max-moves --max-utilization \
  --threshold-initial --threshold-min --threshold-max --failure-timeout --horizon \
  --max-transfers --transfer-timeout --cpu-metric --mem-metric --net-metric --ctl; do
  grep -q -- "$flag" "$tmp/out" || fail "--help does not document $flag"
done
[ "$(grep -c default "$tmp/out")" -ge 30 ] || fail "--help gives few defaults"

expect 2 'unknown option' "$bin" manage --subscribe ipc:///x --frobnicate 1
expect 2 'give the PUB address' "$bin" manage
expect 2 'hold-ticks' "$bin" manage --subscribe ipc:///x --hold-ticks 0
expect 2 '1 --server for 2 --subscribe' "$bin" manage --subscribe ipc:///x --subscribe ipc:///y \
  --server ipc:///z
printf 'subscribe = ipc:///x\nthis line is wrong\n' >"$tmp/bad.conf"
expect 2 'bad.conf:2' "$bin" manage --config "$tmp/bad.conf"
expect 2 'nope.conf' "$bin" manage --config "$tmp/nope.conf"
printf 'class std\nprocessor p1 class=std cpu=8 mem=1GiB net=1GB/s\nworkload w on=p9\n' \
  >"$tmp/bad.workloads"
expect 1 "bad.workloads:3:15: unknown processor 'p9'" "$bin" manage --subscribe "ipc://$tmp/pub" \
  --workloads "$tmp/bad.workloads" --store "$tmp/bad.db" --control off --http off
expect 1 'ctl' "$bin" manage --ctl "ipc://$tmp/nobody.ctl" show

cp "$src/docs/examples/cluster.workloads" "$tmp/cluster.workloads"
cat >"$tmp/manage.conf" <<CONF
# the file sets these; the command line overrides horizon
subscribe = ipc://$tmp/pub
workloads = $tmp/cluster.workloads
store = $tmp/manage.db
control = ipc://$tmp/ctl
http = http://127.0.0.1:0
horizon = 300
failure-timeout = 12
CONF
"$bin" manage --config "$tmp/manage.conf" --horizon 90 2>"$tmp/log" &
pid=$!
for _ in $(seq 300); do
  grep -q 'preshift manage: ready' "$tmp/log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
grep -q 'preshift manage: ready' "$tmp/log" || fail "manager did not start: $(cat "$tmp/log")"
grep -Eq 'horizon += 90$' "$tmp/log" || fail "flag did not override the file: $(grep horizon "$tmp/log")"
grep -Eq 'failure-timeout += 12$' "$tmp/log" || fail "file not applied"
grep -q '6 processor(s), 13 workload(s), 16 dependencies, 2 class(es)' "$tmp/log" ||
  fail "the example was not loaded: $(cat "$tmp/log")"

ctl=(manage --ctl "ipc://$tmp/ctl")
expect 0 '^ok' "$bin" "${ctl[@]}" processor rack3-a class=standard cpu=8 mem=32GiB net=10Gbit/s
expect 0 '^ok' "$bin" "${ctl[@]}" 'workload batch on=rack3-a cpu=2 mem=4GiB'
expect 0 '^ok' "$bin" "${ctl[@]}" depends batch on store
expect 1 "^error: .*already holds 'db-1'" "$bin" "${ctl[@]}" workload db-4 on=rack1-a group=db
expect 0 'depends on \(1\): store' "$bin" "${ctl[@]}" show batch
expect 0 '7 processor\(s\), 14 workload\(s\), 17 dependencies' "$bin" "${ctl[@]}" show
expect 0 '^ok' "$bin" "${ctl[@]}" remove workload batch
expect 0 '^ok' "$bin" "${ctl[@]}" remove processor rack3-a

port=$(sed -n 's/.*http .*(port \([0-9]*\)).*/\1/p' "$tmp/log")
[ -n "$port" ] || fail "HTTP port not printed: $(cat "$tmp/log")"
if [ -n "$port" ] && command -v curl >/dev/null; then
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] ||
    fail "/healthz is not 200"
  [ "$(curl -s "http://127.0.0.1:$port/readyz")" = ready ] || fail "/readyz is not ready"
  curl -s "http://127.0.0.1:$port/metrics" |
    grep -q '^preshift_manage_control_requests_total{result="ok"} 7$' ||
    fail "/metrics lacks 7 control requests: $(curl -s "http://127.0.0.1:$port/metrics")"
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"
grep -q 'preshift manage: stopped' "$tmp/log" || fail "no clean stop: $(tail -3 "$tmp/log")"

# Started again from the store: the same file is fine, a changed one is refused.
echo "# changed" >>"$tmp/cluster.workloads"
expect 1 'differs from the workload file' "$bin" manage --config "$tmp/manage.conf" --http off
verdict cli_manage
