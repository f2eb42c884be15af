#!/usr/bin/env bash
# replication.sh: what a replica costs the primary (issue 22).
#
# For each round, a fresh primary (`-t 1`, pinned to CPU 0) takes the same load with 0, 1 and
# 2 ferrocache replicas attached (the replicas and the load generator on CPU 1; hash: 0 and 1):
#   kv:   ferrobench -P text, get:set 1:1, 50 connections, pipeline 16, 100 B values;
#   hash: redis-benchmark HSET of random fields of ONE hash growing to 1,000 fields, pipeline
#         16: every write ships the whole hash (the record is the key's whole state).
# Prints ops/s and the primary's CPU µs per op (utime+stime from /proc over the run), and the
# median of the rounds. Does not measure: replication lag, stock-Redis replicas, large values.
#
# Usage: bench/replication.sh [--rounds N] [--duration S]
# Needs release builds: cargo build --release -p ferrocache -p ferrocache-bench
set -euo pipefail
SCRIPT=replication.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERRO:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ROUNDS=3
DURATION=3
MODES="0 1 2"
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--duration S]" >&2; exit 2 ;;
    esac
done
source "$ROOT/bench/common.sh"
for bin in "$FERRO" "$BENCH"; do [ -x "$bin" ] || die "missing $bin (build --release)"; done
command -v redis-benchmark >/dev/null || die "redis-benchmark missing (redis-tools)"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)

start() { # start NAME CPU ARGS...; sets PID, PORT, RESP
    local name=$1 cpu=$2; shift 2
    for _attempt in 1 2 3; do # a port taken meanwhile: try others
        PORT=$(free_port); RESP=$(free_port)
        taskset -c "$cpu" "$FERRO" -l 127.0.0.1 -p "$PORT" --resp-port "$RESP" -t 1 -m 1024 \
            --dir "$work" --dbfilename "$name.fcs" "$@" >/dev/null 2>&1 &
        PID=$!
        pids+=("$PID")
        wait_port "$RESP" && kill -0 "$PID" 2>/dev/null && return 0
    done
    die "$name did not start"
}
link_up() {
    for _ in $(seq 1 500); do
        redis-cli -p "$1" info replication | grep -q 'master_link_status:up' && return 0
        sleep 0.02
    done
    die "the replica never synced"
}

run() { # run MODE WORKLOAD -> "ops_per_sec cpu_us_per_op"
    local mode=$1 workload=$2 ppid pport presp ops before after seconds
    start primary 0
    ppid=$PID; pport=$PORT; presp=$RESP
    for n in $(seq 1 "$mode"); do
        start "replica$n" 1 --replicaof 127.0.0.1 "$presp"
        link_up "$RESP"
    done
    before=$(cpu_ticks "$ppid")
    if [ "$workload" = kv ]; then
        ops=$(taskset -c 1 "$BENCH" -s "127.0.0.1:$pport" -P text -r 1:1 -c 50 -p 16 -n 100000 \
            -d 100 -D "$DURATION" --json 2>/dev/null |
            python3 -c 'import json,sys; m=json.load(sys.stdin)["measured"]; print(m["ops"], m["seconds"])')
    else
        local start_ns end_ns n=200000
        start_ns=$(date +%s%N)
        taskset -c 1 redis-benchmark -p "$presp" -c 20 -P 16 -n "$n" -r 1000 \
            hset bighash __rand_int__ some-value-of-30-bytes-........ >/dev/null
        end_ns=$(date +%s%N)
        ops="$n $(python3 -c "print(($end_ns - $start_ns) / 1e9)")"
    fi
    after=$(cpu_ticks "$ppid")
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    pids=()
    python3 -c "
n, s = $(echo "$ops" | awk '{print $1", "$2}')
print(f'{n / s:.0f} {($after - $before) / $tick * 1e6 / n:.2f}')"
}

declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for workload in kv hash; do
        for mode in $MODES; do
            [ "$workload" = hash ] && [ "$mode" = 2 ] && continue
            result=$(run "$mode" "$workload")
            RESULTS[$workload-$mode]+="$result"$'\n'
            echo "round $round $workload replicas=$mode: $result (ops/s, primary cpu us/op)"
        done
    done
done
echo
echo "| workload | replicas | ops/s (median of $ROUNDS) | primary CPU µs/op |"
echo "|---|---:|---:|---:|"
for workload in kv hash; do
    for mode in $MODES; do
        [ "$workload" = hash ] && [ "$mode" = 2 ] && continue
        ops=$(printf '%s' "${RESULTS[$workload-$mode]}" | awk 'NF {print $1}' | median)
        cpu=$(printf '%s' "${RESULTS[$workload-$mode]}" | awk 'NF {print $2}' | median)
        echo "| $workload | $mode | $ops | $cpu |"
    done
done
