#!/usr/bin/env bash
# replication_fullsync.sh: how fast a replica gets a full copy (issue 22), ferrocache ->
# ferrocache against redis-server -> redis-server in the same run.
#
# Each primary is filled with ITEMS items (16 B keys, VALUE B values; ferrobench --warm-only),
# then a fresh replica is started with --replicaof; the time is from the replica's start to
# its `master_link_status:up` (process start included, a few ms). Rate = ITEMS x (16 + VALUE)
# bytes of item data per second. redis runs with diskless sync and no delay
# (repl-diskless-sync yes, repl-diskless-sync-delay 0) and no persistence on either side.
# Does not measure: the client latency on the primary during the sync, RSS during it.
#
# Usage: bench/replication_fullsync.sh [ITEMS] [VALUE]
set -euo pipefail
SCRIPT=replication_fullsync.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERRO:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ITEMS=${1:-1000000}
VALUE=${2:-100}
source "$ROOT/bench/common.sh"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ms() { date +%s%3N; }
wait_up() {
    for _ in $(seq 1 6000); do
        redis-cli -p "$1" info replication 2>/dev/null | grep -q 'master_link_status:up' && return 0
        sleep 0.005
    done
    die "no sync on $1"
}
report() { # NAME START END
    local elapsed=$(( $3 - $2 ))
    python3 -c "
b = $ITEMS * (16 + $VALUE)
print(f'$1: {$ITEMS} items, {b / 1e6:.0f} MB of item data in {$elapsed} ms: {b / 1e6 / ($elapsed / 1000):.0f} MB/s')"
}

# ferrocache -> ferrocache
p=$(free_port); r=$(free_port)
"$FERRO" -l 127.0.0.1 -p "$p" --resp-port "$r" -t 1 -m 4096 --dir "$work" --dbfilename p.fcs >/dev/null 2>&1 &
pids+=($!)
wait_port "$r" || die "primary did not start"
"$BENCH" -s "127.0.0.1:$p" -P text -n "$ITEMS" -d "$VALUE" --warm-only >/dev/null
rp=$(free_port); rr=$(free_port)
start=$(ms)
"$FERRO" -l 127.0.0.1 -p "$rp" --resp-port "$rr" -t 1 -m 4096 --dir "$work" --dbfilename r.fcs \
    --replicaof 127.0.0.1 "$r" >/dev/null 2>&1 &
pids+=($!)
wait_port "$rr" || die "replica did not start"
wait_up "$rr"
report "ferrocache -> ferrocache" "$start" "$(ms)"
[ "$(redis-cli -p "$rr" dbsize)" = "$ITEMS" ] || die "replica holds $(redis-cli -p "$rr" dbsize) keys"
for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done; pids=()

# redis -> redis
r=$(free_port)
redis-server --port "$r" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0 --loglevel warning >/dev/null &
pids+=($!)
wait_port "$r" || die "redis primary did not start"
"$BENCH" -s "127.0.0.1:$r" -P resp -n "$ITEMS" -d "$VALUE" --warm-only >/dev/null
rr=$(free_port)
start=$(ms)
redis-server --port "$rr" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --replicaof 127.0.0.1 "$r" --loglevel warning >/dev/null &
pids+=($!)
wait_port "$rr" || die "redis replica did not start"
wait_up "$rr"
report "redis -> redis" "$start" "$(ms)"
[ "$(redis-cli -p "$rr" dbsize)" = "$ITEMS" ] || die "redis replica holds $(redis-cli -p "$rr" dbsize) keys"
