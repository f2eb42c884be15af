#!/usr/bin/env bash
# snapshot.sh: how fast ferrocache and redis-server save a dataset to disk and load it back.
#
# For each dataset (default: 1,000,000 values of 100 bytes, and 10,000 of 100 KB) and each
# server: start it fresh on a free 127.0.0.1 port with snapshots in a temporary directory,
# write the items once with `ferrobench --warm-only` (RESP SET for both), run a foreground
# SAVE and time it (wall clock around `redis-cli SAVE`), note the file's size, stop the
# server with SIGKILL, start it again on the same directory and time the load (ferrocache's
# and redis-server's own log lines, which measure the load alone), then check DBSIZE.
# Reports per run: items, file MiB, save seconds and item-data GB/s (keys + values over the
# save time), load seconds and items/s. RUNS rounds; a markdown table of the medians.
# It does not measure BGSAVE's effect on serving, or RSS during a save.
#
# Needs redis-server and redis-cli, and release builds of ferrocache and ferrobench (paths
# from FERROCACHE and FERROBENCH if set).
#
# Usage: bench/snapshot.sh [--datasets "1000000x100 10000x100000"] [--runs R] [--threads T]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
DATASETS="1000000x100 10000x100000"
RUNS=3
THREADS=2
KEY_SIZE=32

while [ $# -gt 0 ]; do
    case "$1" in
        --datasets) DATASETS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "snapshot.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "snapshot.sh: $tool not found (apt-get install redis-server)" >&2; exit 1; }
done
for bin in "$FERRO" "$BENCH"; do
    [ -x "$bin" ] || { echo "snapshot.sh: $bin not found; cargo build --release -p ferrocache -p ferrocache-bench" >&2; exit 1; }
done

SCRIPT=snapshot.sh
# free_port and median (its EXIT trap is replaced below).
. "$ROOT/bench/common.sh"

PID=""
WORK=$(mktemp -d)
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

wait_long() {
    for _ in $(seq 1 6000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.01; done
    return 1
}
now_ns() { date +%s%N; }

# start SERVER DIR LOG: sets PID and PORT.
start() {
    local server=$1 dir=$2 log=$3
    PORT=$(free_port)
    case "$server" in
        ferrocache)
            "$FERRO" -l 127.0.0.1 -p "$(free_port)" --resp-port "$PORT" -t "$THREADS" -m 8192 -I 1m \
                --dir "$dir" -v >"$log" 2>&1 & ;;
        redis)
            redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb \
                --save '' --appendonly no --maxmemory 0 --logfile "$log" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    wait_long "$PORT" || { echo "snapshot.sh: $server did not start: $(tail -2 "$log")" >&2; exit 1; }
}

# The load time the server itself logged, in seconds.
load_seconds() {
    local server=$1 log=$2
    case "$server" in
        # "snapshot ... loaded: N items (...) in 1.234567s" (or ms / µs)
        ferrocache) grep -o 'refused) in [0-9.]*[µm]*s' "$log" | tail -1 | awk '{
            v = $3; if (v ~ /µs$/) { sub(/µs$/, "", v); v /= 1e6 } else if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1e3 } else { sub(/s$/, "", v) } print v }' ;;
        # "DB loaded from disk: 0.123 seconds"
        redis) grep -o 'DB loaded from disk: [0-9.]* seconds' "$log" | tail -1 | awk '{print $5}' ;;
    esac
}

printf '%-11s %9s %8s %9s %9s %9s %9s %12s\n' server items value "file MiB" "save s" "save GB/s" "load s" "load it/s"
ROWS=$WORK/rows
for run in $(seq 1 "$RUNS"); do
    for dataset in $DATASETS; do
        items=${dataset%x*}; size=${dataset#*x}
        for server in redis ferrocache; do
            dir=$WORK/$server-$run-$dataset; mkdir -p "$dir"
            log=$dir/server.log
            start "$server" "$dir" "$log"
            "$BENCH" -s "127.0.0.1:$PORT" -P resp -n "$items" --key-size "$KEY_SIZE" -d "$size" \
                -c 16 -p 32 --warm-only --warm-timeout 600 --json >"$dir/load.json" 2>&1 || {
                echo "snapshot.sh: loading $server failed: $(tail -3 "$dir/load.json")" >&2; exit 1; }
            t0=$(now_ns)
            redis-cli -p "$PORT" SAVE >/dev/null
            t1=$(now_ns)
            file=$(ls "$dir"/dump.* | head -1)
            bytes=$(stat -c %s "$file")
            kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
            start "$server" "$dir" "$log.2"
            # redis-server opens its port before it loads (answering -LOADING meanwhile).
            for _ in $(seq 1 60000); do
                [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break
                sleep 0.01
            done
            keys=$(redis-cli -p "$PORT" DBSIZE)
            load=$(load_seconds "$server" "$log.2")
            kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
            save=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
            [ "$keys" = "$items" ] || echo "snapshot.sh: $server came back with $keys of $items keys" >&2
            awk -v s="$server" -v n="$items" -v v="$size" -v f="$bytes" -v sv="$save" -v ld="$load" -v k="$KEY_SIZE" 'BEGIN {
                printf "%-11s %9d %8d %9.1f %9.3f %9.2f %9.3f %12.0f\n", s, n, v, f / 1048576, sv, n * (v + k) / sv / 1e9, ld, (ld > 0 ? n / ld : 0) }' | tee -a "$ROWS"
            rm -rf "$dir"
        done
    done
done

echo
echo "Medians of $RUNS runs:"
echo
echo "| server | items × value | file MiB | save s | save GB/s of item data | load s | load items/s |"
echo "|---|---|---:|---:|---:|---:|---:|"
for dataset in $DATASETS; do
    items=${dataset%x*}; size=${dataset#*x}
    for server in redis ferrocache; do
        med() { awk -v s="$server" -v n="$items" -v v="$size" -v c="$1" '$1 == s && $2 == n && $3 == v {print $c}' "$ROWS" | median; }
        printf '| %s | %s × %s B | %s | %s | %s | %s | %s |\n' "$server" "$items" "$size" "$(med 4)" "$(med 5)" "$(med 6)" "$(med 7)" "$(med 8)"
    done
done
