#!/usr/bin/env bash
# Runs Redis's own Tcl test units in external mode against a fresh ferrocache per unit, and
# prints one line per unit: its name and how many tests passed (ok), failed (err), threw an
# exception, and were skipped or ignored by the harness.
#
#   tests/redis_suite.sh REDIS_SRC_DIR [unit ...]
#
# REDIS_SRC_DIR is an extracted redis source tree at the version ferrocache reports (e.g.
# `git archive 7.0.15 | tar -x -C /tmp/redis-7.0`); nothing is fetched. Without units, the
# issue #29 and #26 list runs. The tree is copied to a scratch directory and run unchanged.
# Tests tagged needs:debug, needs:repl and needs:config-maxmemory are left out, as are
# encoding and digest checks (--ignore-encoding --ignore-digest).
#
# Environment: FERROCACHE_BIN (default target/debug/ferrocache, built if missing),
# REDIS_SUITE_TIMEOUT (seconds per unit, default 600), REDIS_SUITE_OUT (a directory to keep
# each unit's full output in). Exit status: 0 when every unit ran with no err and no
# exception, 1 otherwise, 2 on bad usage or when a server does not start.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/tests/test_helper.tcl" ]; then
    echo "usage: $0 REDIS_SRC_DIR [unit ...]  (REDIS_SRC_DIR/tests/test_helper.tcl must exist)" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
shift
units=("$@")
if [ ${#units[@]} -eq 0 ]; then
    units=(unit/type/list unit/type/list-2 unit/type/list-3 unit/type/set unit/type/hash
        unit/type/zset unit/type/string unit/type/incr unit/keyspace unit/expire unit/pubsub
        unit/multi unit/scan unit/sort unit/dump unit/info-command unit/protocol
        unit/scripting unit/functions unit/type/stream unit/type/stream-cgroups)
fi
command -v tclsh >/dev/null || { echo "tclsh is needed (apt-get install tcl)" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FERROCACHE_BIN:-$root/target/debug/ferrocache}
if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --quiet)
fi
timeout_s=${REDIS_SUITE_TIMEOUT:-600}

scratch=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT
cp -r "$src/." "$scratch/redis"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

failed=0
for unit in "${units[@]}"; do
    port=$(free_port)
    mc_port=$(free_port)
    "$bin" -p "$mc_port" -l 127.0.0.1 --resp-port "$port" -m 256 >"$scratch/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "ferrocache did not start for $unit:" >&2
        cat "$scratch/server.log" >&2
        exit 2
    fi
    # The harness's own listener lives below --baseport: keep it away from other runs.
    baseport=$((20000 + RANDOM % 20000))
    out="$scratch/out.txt"
    (cd "$scratch/redis" && timeout "$timeout_s" tclsh tests/test_helper.tcl --host 127.0.0.1 \
        --port "$port" --single "$unit" --singledb --ignore-encoding --ignore-digest \
        --tags "-needs:debug -needs:repl -needs:config-maxmemory" --clients 1 \
        --baseport "$baseport" --timeout "$timeout_s") >"$out" 2>&1 || true
    # A server that does not stop on SIGTERM (a script still looping: Redis too waits for a
    # running script before it shuts down) gets SIGKILL after 5 s.
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    plain=$(sed 's/\x1b\[[0-9;]*m//g' "$out")
    count() { grep -c "$1" <<<"$plain" || true; }
    ok=$(count '^\[ok\]:')
    err=$(count '^\[err\]:')
    exception=$(count '^\[exception\]:')
    skipped=$(count '^\[\(skip\|ignore\)\]:')
    finished=yes
    grep -q 'All tests passed\|tests failed\|\[exception\]' <<<"$plain" || finished=no
    echo "$unit ok=$ok err=$err exception=$exception skipped=$skipped finished=$finished"
    if [ -n "${REDIS_SUITE_OUT:-}" ]; then
        mkdir -p "$REDIS_SUITE_OUT"
        printf '%s\n' "$plain" >"$REDIS_SUITE_OUT/$(tr / _ <<<"$unit").txt"
    fi
    if [ "$err" -ne 0 ] || [ "$exception" -ne 0 ] || [ "$finished" != yes ]; then
        failed=1
    fi
done
exit "$failed"
