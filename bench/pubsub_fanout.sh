#!/usr/bin/env bash
# PUBLISH fan-out: messages delivered per second to S pattern subscribers, ferrocache against
# redis-server from apt, in the same run, rounds interleaved. What it measures: publishers
# (ferrobench, 10 connections, pipeline 16) PUBLISH on random channels while S clients each
# PSUBSCRIBE '*' and read everything (nc); each subscriber counts the `pmessage` frames it
# received, and delivered/s = the frames all subscribers received / the publishers' wall-clock
# time. The PUBLISH replies' own figure (published/s × S) is printed beside it as a check: a
# server that answered PUBLISH but dropped messages would show the gap. What it does not
# measure: subscribers' own latency, or many channels with few subscribers each.
# Usage: bench/pubsub_fanout.sh [SUBSCRIBERS] [DURATION_S] [ROUNDS]
set -euo pipefail
S=${1:-10}
D=${2:-5}
ROUNDS=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
FERRO=$root/target/release/ferrocache
BENCH=$root/target/release/ferrobench
for need in "$FERRO" "$BENCH"; do
    [ -x "$need" ] || { echo "build first: cargo build --release -p ferrocache -p ferrocache-bench"; exit 1; }
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v nc >/dev/null || {
    echo "needs redis-server, redis-cli and nc: apt-get install redis-server netcat-openbsd"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server_pin=(); load_pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    server_pin=(taskset -c 1); load_pin=(taskset -c 0)
    echo "pinned: servers on CPU 1, publishers and subscribers on CPU 0"
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fp=$(free_port); fr=$(free_port); rp=$(free_port)
"${server_pin[@]}" "$FERRO" -l 127.0.0.1 -p "$fp" --resp-port "$fr" -t 1 -m 1024 & pids+=($!)
"${server_pin[@]}" redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & pids+=($!)
for port in "$fr" "$rp"; do
    for _ in $(seq 1 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for name in redis ferrocache; do
        port=$rp; [ "$name" = ferrocache ] && port=$fr
        subs=()
        counts=$(mktemp -d)
        for i in $(seq 1 "$S"); do
            # nc keeps up with any server (a slow reader would be cut off at the pub/sub output
            # limit and measure the limit instead of delivery); grep counts the frames it got.
            # $! is nc's pid: killing it ends the count, which lands in $counts/$i.
            (printf 'PSUBSCRIBE *\r\n'; sleep $((D * 4 + 30))) | "${load_pin[@]}" nc -q 0 127.0.0.1 "$port" \
                > >(grep -a -o pmessage | wc -l >"$counts/$i") &
            subs+=($!)
        done
        for _ in $(seq 1 100); do
            [ "$(redis-cli -p "$port" pubsub numpat)" -ge "$S" ] && break; sleep 0.05
        done
        started=$(date +%s.%N)
        ops=$("${load_pin[@]}" "$BENCH" -s "127.0.0.1:$port" -P resp -w publish -r 0:1 -c 10 -p 16 -n 100 -d 64 \
              -D "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["measured"]["ops_per_sec"])')
        ended=$(date +%s.%N)
        sleep 1 # let the last messages reach the subscribers
        for p in "${subs[@]}"; do kill "$p" 2>/dev/null || true; done
        # The `sleep` that kept each subscriber's input open is a child of this script: end it,
        # or waiting for the subscribers' pipelines waits for it.
        pkill -P $$ -x sleep 2>/dev/null || true
        wait "${subs[@]}" 2>/dev/null || true
        for _ in $(seq 1 100); do
            [ "$(find "$counts" -type f -size +0 | wc -l)" -ge "$S" ] && break; sleep 0.05
        done
        frames=$(cat "$counts"/* | python3 -c 'import sys; print(sum(int(x) for x in sys.stdin.read().split()))')
        rm -rf "$counts"
        delivered=$(python3 -c "print(int($frames / ($ended - $started)))")
        echo "round $round $name: $(printf '%.0f' "$ops") PUBLISH/s (x $S = $(python3 -c "print(int($ops * $S))")), $frames messages received in $(python3 -c "print(round($ended - $started, 2))") s: $delivered delivered/s"
        RESULTS[$name]+="$delivered "
    done
done
python3 - "${RESULTS[redis]}" "${RESULTS[ferrocache]}" "$S" <<'PY'
import statistics, sys
redis = [float(x) for x in sys.argv[1].split()]
ferro = [float(x) for x in sys.argv[2].split()]
r, f = statistics.median(redis), statistics.median(ferro)
print(f"median messages delivered/s to {sys.argv[3]} subscribers: redis-server {r:,.0f}, ferrocache {f:,.0f}, ratio {f / r:.2f}")
PY
