#!/usr/bin/env bash
# PUBLISH fan-out: messages delivered per second to S pattern subscribers, ferrocache against
# redis-server from apt, in the same run, rounds interleaved. What it measures: publishers
# (ferrobench, 10 connections, pipeline 16) PUBLISH on random channels while S clients each
# PSUBSCRIBE '*' and read everything (nc into /dev/null); delivered = published/s × S,
# since every PUBLISH reaches every subscriber (ferrobench checks the replies). What it does
# not measure: subscribers' own latency, or many channels with few subscribers each.
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
        for _ in $(seq 1 "$S"); do
            # nc into /dev/null keeps up with any server; a slow reader would be cut off at
            # the pub/sub output limit and measure the limit instead of delivery.
            (printf 'PSUBSCRIBE *\r\n'; sleep $((D * 4 + 30))) | "${load_pin[@]}" nc -q 0 127.0.0.1 "$port" >/dev/null &
            subs+=($!)
        done
        for _ in $(seq 1 100); do
            [ "$(redis-cli -p "$port" pubsub numpat)" -ge "$S" ] && break; sleep 0.05
        done
        ops=$("${load_pin[@]}" "$BENCH" -s "127.0.0.1:$port" -P resp -w publish -r 0:1 -c 10 -p 16 -n 100 -d 64 \
              -D "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["measured"]["ops_per_sec"])')
        for p in "${subs[@]}"; do kill "$p" 2>/dev/null || true; done
        wait "${subs[@]}" 2>/dev/null || true
        delivered=$(python3 -c "print(int($ops * $S))")
        echo "round $round $name: $(printf '%.0f' "$ops") PUBLISH/s, $delivered messages delivered/s"
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
