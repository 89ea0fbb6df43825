# tests/lib/cli.sh - how every tests/cli_*.sh starts. Source it with the
# script's arguments (the preshift binary, the source tree):
#   . "$(dirname "$0")/lib/cli.sh" "$@"
# bin: the binary, absolute; src: the source tree ("" when not given);
# tmp: a fresh directory, removed at exit (a script that sets its own EXIT
# trap removes it there); fail MSG: count a failure and go on; expect CODE
# PATTERN CMD...: exit status CODE and PATTERN (grep -E, "" for any) on
# stderr, the output left in $tmp/out and $tmp/err; verdict NAME: the
# summary line and the exit status.
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

expect() {
  local code=$1 pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code: $*: $(cat "$tmp/err")"
  [ -z "$pattern" ] || grep -Eq -- "$pattern" "$tmp/err" ||
    fail "stderr lacks '$pattern': $*: $(cat "$tmp/err")"
}

verdict() {
  if [ "$fails" -ne 0 ]; then
    echo "$1: $fails check(s) failed" >&2
    exit 1
  fi
  echo "$1: ok"
}
